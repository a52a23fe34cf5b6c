"""GADF DL3 data store: index tables, observation selection and loading (spec §1).

A data store is a directory holding ``obs-index.fits[.gz]`` (HDU ``OBS_INDEX``) and
``hdu-index.fits[.gz]`` (HDU ``HDU_INDEX``); when a file lacks the standard EXTNAME, its first
binary table with the index's columns is used (the MAGIC release names its HDU index table
``OBS_INDEX``).  IRF files may live anywhere (``FILE_DIR`` relative to the index file, ``..``
allowed), gzipped or not.

GADF variants read: energy columns ``ENERG_*`` or ``ETRUE_*``; one-bin offset axes (the IRF
holds inside that bin only, :func:`extspec.irf.single_bin_as_nodes`); units as written in the
file (converted with astropy units at load time when they are not the defaults TeV, deg, m2,
s-1 MeV-1 sr-1); point-like IRFs (``HDUCLAS3 = POINT-LIKE``) with their ``RAD_MAX`` keyword or
``RAD_MAX_2D`` HDU; obs-index tables without the optional columns (the pointing then comes
from the EVENTS header); runs without a background IRF.  :func:`open_datastore` opens one; the
location is resolved by :func:`resolve_datastore_path` in this order:

1. an explicit path (config key ``datastore``),
2. ``$GAMMAPY_DATA/hess-dl3-dr1``,
3. ``data/hess-dl3-dr1`` in the working directory (where a fetched DR1 goes by default),
4. ``../shared/data/hess-dl3-dr1`` relative to the working directory.

Every problem with the store, a file or an HDU raises :class:`~extspec.errors.DataStoreError`
with a one-line message naming the culprit.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataStoreError
from ..irf import (FULL_ENCLOSURE, POINT_LIKE, Aeff2D, Bkg2D, Bkg3D, EDisp2D, Psf3Gauss, PsfKing, PsfTable, RadMax2D,
                   make_axis, single_bin_as_nodes)
from ..timebins import TIME_REF_KEYS

__all__ = [
    "DataStore",
    "Observation",
    "open_datastore",
    "resolve_datastore_path",
    "candidate_datastore_paths",
    "candidate_data_paths",
    "is_datastore",
    "REQUIRED_HDUS",
    "TIME_REF_KEYS",
]

REQUIRED_HDUS = ("events", "gti", "aeff", "edisp")
"""HDU types an observation must have for this chain (bkg and psf are optional)."""

_INDEX_NAMES = {
    "obs": ("obs-index.fits.gz", "obs-index.fits"),
    "hdu": ("hdu-index.fits.gz", "hdu-index.fits"),
}


LOCAL_STORE = Path("data") / "hess-dl3-dr1"
"""Where DR1 is installed, relative to the working directory, when it is fetched without
``$GAMMAPY_DATA`` or an explicit destination."""


def candidate_data_paths(name: str, base: str | os.PathLike | None = None) -> list[Path]:
    """The places a data folder ``name`` (e.g. ``hess-dl3-dr1``) is looked for, in order:
    ``$GAMMAPY_DATA/name``, ``data/name`` and ``../shared/data/name`` relative to ``base``
    (default: the working directory)."""
    base = Path.cwd() if base is None else Path(base)
    paths = [Path(os.environ["GAMMAPY_DATA"]) / name] if os.environ.get("GAMMAPY_DATA") else []
    return paths + [base / "data" / name, base / ".." / "shared" / "data" / name]


def candidate_datastore_paths(explicit: str | os.PathLike | None = None,
                              base: str | os.PathLike | None = None) -> list[Path]:
    """The places searched for a data store, in order (see module docstring)."""
    paths = []
    if explicit:
        paths.append(Path(os.path.expandvars(os.path.expanduser(str(explicit)))))
    return paths + candidate_data_paths(LOCAL_STORE.name, base)


def is_datastore(path) -> bool:
    """True if ``path`` is a directory holding both index files (gzipped or not)."""
    path = Path(path)
    return path.is_dir() and all(
        any((path / n).is_file() for n in names) for names in _INDEX_NAMES.values()
    )


def resolve_datastore_path(explicit: str | os.PathLike | None = None) -> Path:
    """Return the data store directory, or raise with where it looked and how to get DR1.

    An explicit path is used as given (no fallback): a wrong explicit path is an error.
    """
    cands = candidate_datastore_paths(explicit)
    if explicit:
        cands = cands[:1]
    for p in cands:
        if is_datastore(p):
            return p.resolve()
    looked = ", ".join(str(p) for p in cands)
    raise DataStoreError(
        f"no DL3 data store found (looked in: {looked}); get HESS DL3 DR1 from its public "
        "release (Zenodo record 1421099, or a $GAMMAPY_DATA folder holding hess-dl3-dr1), "
        "run `snakemake download`, or set the config key 'datastore'"
    )


def read_file_tables(path: Path, what: str, only: set | None = None) -> dict:
    """The binary tables of a FITS file keyed by EXTNAME (all, or those named in ``only``);
    one-line DataStoreError on bad input."""
    from .fitsread import Corrupt, read_tables_any

    path = Path(path)
    if not path.is_file():
        raise DataStoreError(f"{what}: file {path} does not exist")
    try:
        return read_tables_any(path, only)
    except Corrupt as exc:
        raise DataStoreError(f"{what}: cannot read {path}: corrupt or truncated file ({exc})") from None
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, TypeError, KeyError) as exc:
        raise DataStoreError(f"{what}: cannot read {path}: corrupt or truncated file ({exc})") from None


_INDEX_COLUMNS = {
    "OBS_INDEX": {"OBS_ID"},
    "HDU_INDEX": {"OBS_ID", "HDU_TYPE", "FILE_DIR", "FILE_NAME", "HDU_NAME"},
}


def _read_index_table(path: Path, hdu_name: str, what: str):
    """The index table of ``path``: HDU ``hdu_name``, else the first binary table holding the
    index's columns (releases that name the table differently)."""
    tables = read_file_tables(path, what)
    if hdu_name in tables:
        return tables[hdu_name]
    need = _INDEX_COLUMNS[hdu_name]
    for t in tables.values():
        if need <= set(t.columns):
            return t
    raise DataStoreError(
        f"{what}: file {path} has no HDU '{hdu_name}' (it has {', '.join(tables) or 'no table'}) and no "
        f"table with the columns {', '.join(sorted(need))}"
    )


def _strip(a) -> np.ndarray:
    return np.char.strip(np.asarray(a).astype(str))


@dataclass
class DataStore:
    """A GADF DL3 data store: its root directory and both index tables.

    Attributes
    ----------
    path : Path
        Store root.
    obs_table : dict of column name -> ndarray
        The obs-index columns (OBS_ID, RA_PNT, DEC_PNT, ...).
    hdu_table : dict of column name -> ndarray
        The hdu-index columns, with strings stripped.
    """

    path: Path
    obs_table: dict
    hdu_table: dict
    # lookups built once on first use (a store of 10,000 runs is asked 10,000 times)
    _row_index: dict | None = field(default=None, init=False, repr=False, compare=False)
    _known_ids: set | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def obs_ids(self) -> np.ndarray:
        return np.asarray(self.obs_table["OBS_ID"], dtype=np.int64)

    def _rows(self, obs_id: int, hdu_type: str) -> np.ndarray:
        """The hdu-index rows of one HDU type of one observation, in index order."""
        if self._row_index is None:
            t = self.hdu_table
            index: dict = {}
            for i, key in enumerate(zip(np.asarray(t["OBS_ID"]).tolist(), np.asarray(t["HDU_TYPE"]).tolist())):
                index.setdefault(key, []).append(i)
            self._row_index = index
        return np.asarray(self._row_index.get((int(obs_id), hdu_type), []), dtype=np.intp)

    def check_obs_ids(self, obs_ids) -> None:
        """Raise if any of ``obs_ids`` is not in the obs index (naming a few that are)."""
        if self._known_ids is None:
            self._known_ids = set(self.obs_ids.tolist()) | set(np.unique(self.hdu_table["OBS_ID"]).tolist())
        known = self._known_ids
        missing = [int(o) for o in obs_ids if int(o) not in known]
        if missing:
            few = ", ".join(str(o) for o in sorted(known)[:5])
            raise DataStoreError(
                f"data store {self.path}: obs id(s) {', '.join(map(str, missing))} not in the "
                f"index ({len(known)} observations, e.g. {few})"
            )

    def hdu_location(self, obs_id: int, hdu_type: str) -> tuple[Path, str]:
        """File path and extension name of one HDU (§1.1: first matching row wins)."""
        self.check_obs_ids([obs_id])
        rows = self._rows(int(obs_id), hdu_type)
        if rows.size == 0:
            raise DataStoreError(
                f"data store {self.path}: obs {obs_id} has no '{hdu_type}' HDU in the hdu index"
            )
        r = rows[0]
        t = self.hdu_table
        fdir = t["FILE_DIR"][r]
        path = self.path / fdir / t["FILE_NAME"][r] if fdir else self.path / t["FILE_NAME"][r]
        return path, t["HDU_NAME"][r]

    def obs_files(self, obs_id: int) -> list[Path]:
        """All distinct files an observation's required HDUs live in."""
        files = []
        for t in REQUIRED_HDUS:
            p = self.hdu_location(obs_id, t)[0]
            if p not in files:
                files.append(p)
        return files

    def pointings(self) -> tuple[np.ndarray, np.ndarray]:
        """Pointing RA, Dec (deg, ICRS) of every observation in the obs index.

        From the obs-index columns RA_PNT/DEC_PNT, or, when the index lacks them, from the
        EVENTS header of each observation.
        """
        t = self.obs_table
        if "RA_PNT" in t and "DEC_PNT" in t:
            return np.asarray(t["RA_PNT"], float), np.asarray(t["DEC_PNT"], float)
        ra, dec = [], []
        for o in self.obs_ids:
            path, name = self.hdu_location(int(o), "events")
            tables = read_file_tables(path, f"obs {o}", {name.upper()})
            hdr = tables.get(name.upper())
            if hdr is None or "RA_PNT" not in hdr.header or "DEC_PNT" not in hdr.header:
                raise DataStoreError(f"obs {o}: no pointing (RA_PNT/DEC_PNT) in the obs index nor in the "
                                     f"EVENTS header of {path}")
            ra.append(float(hdr.header["RA_PNT"]))
            dec.append(float(hdr.header["DEC_PNT"]))
        return np.array(ra), np.array(dec)

    def has_hdu(self, obs_id: int, hdu_type: str) -> bool:
        """True when the hdu index lists an HDU of ``hdu_type`` for ``obs_id``."""
        return self._rows(int(obs_id), hdu_type).size > 0

    def irf_offset_max(self, obs_id: int) -> float:
        """Largest offset (deg) of the observation's effective-area table (THETA_HI), read from
        its AEFF HDU alone."""
        p, name = self.hdu_location(obs_id, "aeff")
        what = f"obs {obs_id}"
        tables = read_file_tables(p, what, only={name.upper()})
        if name.upper() not in tables:
            raise DataStoreError(f"{what}: file {p} has no HDU '{name}'")
        hi = _col(tables[name.upper()], "THETA_HI", f"{what}: HDU '{name}' of {p}")
        return float(np.max(np.asarray(hi, dtype=np.float64)))

    def select_cone(self, lon: float, lat: float, radius: float, frame: str = "icrs") -> list[int]:
        """Obs ids whose pointing lies within ``radius`` deg of (lon, lat) in ``frame``."""
        sep = self.pointing_offsets(lon, lat, frame)
        return [int(o) for o in self.obs_ids[sep <= radius]]

    def pointing_offsets(self, lon: float, lat: float, frame: str = "icrs") -> np.ndarray:
        """Angular distance (deg) of every pointing (obs-index order) from (lon, lat) in ``frame``."""
        from ..sky import separation, transform_point

        ra, dec = self.pointings()
        tra, tdec = transform_point(float(lon), float(lat), frame, "icrs")
        return separation(ra, dec, tra, tdec)

    def select(self, obs_ids=None, cone=None) -> list[int]:
        """Observation selection by id list and/or sky cone (union, in obs-index order).

        Parameters
        ----------
        obs_ids : list of int, optional
            Explicit ids (kept in the given order, checked against the index).
        cone : dict, optional
            ``{"lon": deg, "lat": deg, "radius": deg, "frame": "icrs"|"galactic"}``.
        """
        out: list[int] = []
        if obs_ids:
            self.check_obs_ids(obs_ids)
            out.extend(int(o) for o in obs_ids)
        if cone:
            for o in self.select_cone(cone["lon"], cone["lat"], cone["radius"], cone.get("frame", "icrs")):
                if o not in out:
                    out.append(o)
        return out

    def hdu_header(self, obs_id: int, hdu_type: str) -> dict:
        """The header of one HDU (its file is read, but only that table is decoded)."""
        path, name = self.hdu_location(obs_id, hdu_type)
        what = f"obs {obs_id}"
        tables = read_file_tables(path, what, only={name.upper()})
        if name.upper() not in tables:
            raise DataStoreError(f"{what}: file {path} has no HDU '{name}'")
        return tables[name.upper()].header

    def irf_class(self, obs_id: int) -> str:
        """``full-enclosure`` or ``point-like``: HDUCLAS3 of the observation's effective area."""
        return _irf_class(self.hdu_header(obs_id, "aeff"))

    def summary(self, obs_ids=None) -> list[dict]:
        """One row per observation (default: all of the obs index), for listing a store.

        Keys: ``obs_id``, ``ra_pnt``, ``dec_pnt`` (deg, ICRS), ``livetime`` (s, the obs-index
        LIVETIME, else ONTIME x DEADC), ``zenith`` (deg, ZEN_PNT, else 90 - ALT_PNT),
        ``irf_class`` (``full-enclosure`` or ``point-like``, HDUCLAS3 of the effective area;
        ``?`` with the reason in ``error`` when that header cannot be read) and ``bkg``
        (whether the hdu index has a background IRF).  Missing index columns give NaN.
        """
        t = self.obs_table
        n = len(self.obs_ids)
        index = {int(o): i for i, o in enumerate(self.obs_ids)}

        def col(name, default):
            return np.asarray(t[name], float) if name in t else default

        ra, dec = self.pointings()
        livetime = col("LIVETIME", col("ONTIME", np.full(n, np.nan)) * col("DEADC", np.ones(n)))
        zenith = col("ZEN_PNT", 90.0 - col("ALT_PNT", np.full(n, np.nan)))
        rows = []
        for o in (self.obs_ids.tolist() if obs_ids is None else obs_ids):
            o = int(o)
            self.check_obs_ids([o])
            i = index.get(o)
            value = (lambda a: float(a[i])) if i is not None else (lambda a: float("nan"))
            row = {"obs_id": o, "ra_pnt": value(ra), "dec_pnt": value(dec), "livetime": value(livetime),
                   "zenith": value(zenith), "irf_class": "?", "bkg": self.has_hdu(o, "bkg"), "error": None}
            try:
                row["irf_class"] = self.irf_class(o)
            except DataStoreError as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def load(self, obs_id: int, load_bkg: bool = True, load_psf: bool = False) -> "Observation":
        """Load one observation (events, GTI, AEFF_2D, EDISP_2D; BKG_3D and PSF_TABLE if present)."""
        return load_observation(self, int(obs_id), load_bkg=load_bkg, load_psf=load_psf)


_OPENED, _OPENED_LOCK = {}, threading.Lock()  # resolved root -> (index files' paths and bytes, DataStore), <= 8


def open_datastore(path: str | os.PathLike | None = None, cached: bool = True) -> DataStore:
    """Open a GADF data store (see :func:`resolve_datastore_path` for the search order).

    ``cached``: the index tables parsed once per process and store (rule reduce's jobs share a
    process), again when an index file's bytes change (read and compared: far cheaper than
    parsing, no file times); the :class:`DataStore` is then shared (read-only).  ``False``: afresh."""
    root = resolve_datastore_path(path) if path is None else Path(path)
    if not root.is_dir():
        raise DataStoreError(f"data store {root}: not a directory")
    files = {key: next((root / n for n in names if (root / n).is_file()), None) for key, names in _INDEX_NAMES.items()}
    for key, names in _INDEX_NAMES.items():
        if files[key] is None:
            raise DataStoreError(f"{root} is not a DL3 data store: it has no {names[0]} (or {names[1]})")
    try:  # an unreadable index file: the reading afresh says so in one line
        stamp = [(str(f), f.read_bytes()) for f in files.values()] if cached else None
    except OSError:
        stamp = None
    if stamp is None:
        return _read_datastore(root, files)
    key = str(root.resolve())
    if (hit := _OPENED.get(key)) is not None and hit[0] == stamp:
        return hit[1]
    store = _read_datastore(root, files)
    with _OPENED_LOCK:
        if len(_OPENED) >= 8 and key not in _OPENED:  # a process seldom opens more stores: start afresh
            _OPENED.clear()
        _OPENED[key] = (stamp, store)
    return store


def _read_datastore(root: Path, files: dict) -> DataStore:
    """The store at ``root`` with its index tables read from ``files`` ({"obs": path, "hdu": path})."""
    tables = {}
    for key, f in files.items():
        hdu_name = "OBS_INDEX" if key == "obs" else "HDU_INDEX"
        data = _read_index_table(f, hdu_name, f"data store {root}")
        cols = {}
        for name, col in data.columns.items():
            col = np.asarray(col)
            cols[name] = _strip(col) if col.dtype.kind in "SU" else col
        tables[key] = cols
    need_hdu = {"OBS_ID", "HDU_TYPE", "FILE_DIR", "FILE_NAME", "HDU_NAME"}
    miss = need_hdu - set(tables["hdu"])
    if miss:
        raise DataStoreError(f"data store {root}: HDU_INDEX lacks column(s) {', '.join(sorted(miss))}")
    if "OBS_ID" not in tables["obs"]:
        raise DataStoreError(f"data store {root}: OBS_INDEX lacks column OBS_ID")
    tables["hdu"]["HDU_TYPE"] = np.char.lower(tables["hdu"]["HDU_TYPE"])
    tables["hdu"]["OBS_ID"] = np.asarray(tables["hdu"]["OBS_ID"], dtype=np.int64)
    return DataStore(path=root.resolve(), obs_table=tables["obs"], hdu_table=tables["hdu"])


# --------------------------------------------------------------------------- observation --


@dataclass
class Observation:
    """One DL3 observation, with the quantities the chain uses (§1.2).

    Attributes
    ----------
    obs_id : int
    ra, dec : float32 arrays (deg, ICRS)  -- kept float32 as in the file (§2.2)
    energy : float32 array (TeV)
    time : float64 array (s, MET)
    gti : (n, 2) float64 array of [START, STOP] (s, MET)
    deadc : float
    pointing_radec : (ra, dec) in deg, ICRS, from the EVENTS header
    aeff, edisp, bkg : IRFs (bkg may be None: a Bkg3D, or a Bkg2D for an offset-only BKG_2D)
    psf : PsfTable, Psf3Gauss or PsfKing (read with ``load_psf=True``), else None; psf_error: why
    lo_thres, hi_thres : safe-range keywords of the AEFF header (TeV), or None
    irf_class : "full-enclosure" or "point-like" (HDUCLAS3 of the effective area)
    rad_max : RadMax2D of point-like IRFs (fixed or energy-dependent), else None
    source_file : path of the events file; checksum : its sha256
    meta : OBJECT, OBS_MODE, TELESCOP, INSTRUME of the EVENTS header

    bkg_error : why the background IRF the hdu index lists could not be read (bkg is then
        None; a reflected-regions spectrum does not need it), else None
    """

    obs_id: int
    ra: np.ndarray
    dec: np.ndarray
    energy: np.ndarray
    time: np.ndarray
    gti: np.ndarray
    deadc: float
    pointing_radec: tuple[float, float]
    aeff: Aeff2D
    edisp: EDisp2D
    bkg: Bkg3D | None = None
    psf: PsfTable | Psf3Gauss | PsfKing | None = None
    lo_thres: float | None = None
    hi_thres: float | None = None
    source_file: str = ""
    checksum: str = ""
    meta: dict = field(default_factory=dict)
    irf_class: str = FULL_ENCLOSURE
    rad_max: RadMax2D | None = None
    bkg_error: str | None = None
    psf_error: str | None = None

    @property
    def ontime(self) -> float:
        """Sum of GTI durations in s (§1.2)."""
        return float(np.sum(self.gti[:, 1] - self.gti[:, 0]))

    @property
    def livetime(self) -> float:
        """Ontime times DEADC in s (§1.2; the LIVETIME keyword is not used)."""
        return self.ontime * self.deadc


def _col(data, name, what):
    try:
        return np.asarray(data.columns[name])
    except KeyError:
        raise DataStoreError(f"{what}: missing column {name}") from None


def _irf_cell(data, name, what, ndim):
    arr = _col(data, name, what)
    if arr.shape[0] != 1:
        raise DataStoreError(f"{what}: expected a single-row table, found {arr.shape[0]} rows")
    cell = np.asarray(arr[0], dtype=np.float64)
    if cell.ndim != ndim:
        raise DataStoreError(f"{what}: column {name} has {cell.ndim} dimensions, expected {ndim}")
    # FITS TDIM (n1, n2, n3) arrives as (n3, n2, n1): transpose to (n1, n2, n3).
    return cell.T


_UNITS = {"energy": "TeV", "angle": "deg", "area": "m2", "bkg": "s-1 MeV-1 sr-1"}
def _unit_factor(unit: str, kind: str, what: str, column: str) -> float:
    """Factor converting values in ``unit`` (as written in the file) to the unit extspec uses
    for ``kind`` (:func:`extspec.io.units.unit_factor`); an empty unit is taken as that unit."""
    from .units import unit_factor

    unit = (unit or "").strip()
    default = _UNITS[kind]
    if not unit:
        return 1.0
    try:
        return unit_factor(unit, default)
    except ValueError as exc:
        raise DataStoreError(
            f"{what}: column {column} has unit '{unit}', which is not convertible to {default} ({exc})"
        ) from None


def _stem(data, stems, what):
    """The first column stem of ``stems`` with ``<stem>_LO`` present (e.g. ENERG or ETRUE)."""
    for stem in stems:
        if f"{stem}_LO" in data.columns:
            return stem
    raise DataStoreError(f"{what}: missing column {stems[0]}_LO (nor {', '.join(s + '_LO' for s in stems[1:])})")


def _axis(data, stem, what, log, kind=None):
    if isinstance(stem, tuple):
        stem = _stem(data, stem, what)
    lo = np.asarray(_col(data, f"{stem}_LO", what)[0], dtype=np.float64)
    hi = np.asarray(_col(data, f"{stem}_HI", what)[0], dtype=np.float64)
    if kind is not None:
        f = _unit_factor(data.units.get(f"{stem}_LO", ""), kind, what, f"{stem}_LO")
        if f != 1.0:
            lo, hi = lo * f, hi * f
    try:
        return make_axis(stem, lo, hi, log)
    except ValueError as exc:
        raise DataStoreError(f"{what}: {exc}") from None


_ENERGY_STEMS = ("ENERG", "ETRUE")


def _energy_offset_table(data, column: str, what: str, kind: str):
    """(energy axis, offset axis, values) of a 2D IRF table (AEFF_2D, RAD_MAX_2D), values in
    extspec's unit of ``kind``; a one-bin offset axis becomes two nodes at its edges."""
    energy = _axis(data, _ENERGY_STEMS, what, True, "energy")
    offset = _axis(data, "THETA", what, False, "angle")
    values = _irf_cell(data, column, what, 2)
    _check_shape(values, (energy, offset), what, column)
    values = values * _unit_factor(data.units.get(column, ""), kind, what, column)
    offset, values = single_bin_as_nodes(offset, values, 1)
    return energy, offset, values


def _irf_class(header) -> str:
    """IRF class of an AEFF/EDISP header: ``HDUCLAS3`` (absent: full-enclosure)."""
    c = str(header.get("HDUCLAS3", "") or "").strip().upper()
    return POINT_LIKE if c == "POINT-LIKE" else FULL_ENCLOSURE


def _check_shape(arr, axes, what, name):
    want = tuple(a.nodes.size for a in axes)
    if arr.shape != want:
        raise DataStoreError(
            f"{what}: {name} has shape {arr.shape}, expected {want} from its axes"
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_observation(store: DataStore, obs_id: int, load_bkg: bool = True, load_psf: bool = False) -> Observation:
    """Load one observation; see :class:`Observation`.  Raises DataStoreError on bad input.

    The PSF (PSF_TABLE, PSF_3GAUSS or PSF_KING) is read only with ``load_psf=True`` (the workflow's
    reductions ask for it: ``model.spatial`` and the containment note need it); one that is
    missing or cannot be read leaves ``psf`` None and says why in ``psf_error``.
    """
    what = f"obs {obs_id}"
    locs = {t: store.hdu_location(obs_id, t) for t in REQUIRED_HDUS}
    has_bkg = load_bkg and store._rows(obs_id, "bkg").size > 0
    if has_bkg:
        locs["bkg"] = store.hdu_location(obs_id, "bkg")
    psf_rows = store._rows(obs_id, "psf") if load_psf else []
    psf_class = (str(store.hdu_table["HDU_CLASS"][psf_rows[0]]).strip().lower()
                 if len(psf_rows) and "HDU_CLASS" in store.hdu_table else "")
    has_psf = len(psf_rows) > 0
    if has_psf:
        locs["psf"] = store.hdu_location(obs_id, "psf")
    has_rad_max = store.has_hdu(obs_id, "rad_max")
    if has_rad_max:
        locs["rad_max"] = store.hdu_location(obs_id, "rad_max")
    wanted: dict[Path, set] = {}
    for t, (p, name) in locs.items():
        if t not in ("bkg", "psf"):
            wanted.setdefault(p, set()).add(str(name).upper())
    for t in ("bkg", "psf"):  # a background IRF or PSF in a file of its own is read on its own
        if t in locs and locs[t][0] in wanted:
            wanted[locs[t][0]].add(str(locs[t][1]).upper())
    files = {p: read_file_tables(p, what, names) for p, names in wanted.items()}  # only the HDUs used

    def get(t):
        p, name = locs[t]
        if p not in files:  # the background IRF's own file: absent or unreadable is not fatal
            files[p] = read_file_tables(p, what, {str(name).upper()})
        hdus = files[p]
        if name.upper() not in hdus:
            raise DataStoreError(
                f"{what}: file {p} has no binary table HDU '{name}'"
            )
        t = hdus[name.upper()]
        return t.header, t, f"{what}: HDU '{name}' of {p}"

    # events
    hdr, data, w = get("events")
    ra = _col(data, "RA", w)
    dec = _col(data, "DEC", w)
    energy = _col(data, "ENERGY", w)
    f = _unit_factor(data.units.get("ENERGY", ""), "energy", w, "ENERGY")
    if f != 1.0:
        energy = (energy * f).astype(energy.dtype)
    time = _col(data, "TIME", w).astype(np.float64) if "TIME" in data.columns else np.zeros(len(ra))
    pointing = _pointing(store, obs_id, hdr, w)
    deadc = _deadc(store, obs_id, hdr)
    # gti
    _, gdata, gw = get("gti")
    gti = np.stack([_col(gdata, "START", gw), _col(gdata, "STOP", gw)], axis=1).astype(np.float64)
    # aeff
    ahdr, adata, aw = get("aeff")
    ae, at, area = _energy_offset_table(adata, "EFFAREA", aw, "area")
    lo = ahdr.get("LO_THRES")
    hi = ahdr.get("HI_THRES")
    aeff = Aeff2D(ae, at, area, None if lo is None else float(lo), None if hi is None else float(hi))
    irf_class = _irf_class(ahdr)
    # edisp
    ehdr, edata, ew = get("edisp")
    ee = _axis(edata, _ENERGY_STEMS, ew, True, "energy")
    em = _axis(edata, "MIGRA", ew, False)
    et = _axis(edata, "THETA", ew, False, "angle")
    matrix = _irf_cell(edata, "MATRIX", ew, 3)
    _check_shape(matrix, (ee, em, et), ew, "MATRIX")
    et, matrix = single_bin_as_nodes(et, matrix, 2)
    edisp = EDisp2D(ee, em, et, matrix)
    if _irf_class(ehdr) != irf_class:
        raise DataStoreError(f"{what}: the effective area is {irf_class} but the energy dispersion is "
                             f"{_irf_class(ehdr)} (HDUCLAS3); both must be of one IRF class")
    rad_max = None
    if irf_class == POINT_LIKE:
        rad_max = _rad_max(ahdr, aw, get if has_rad_max else None, what)
    # bkg (optional): an unreadable one leaves bkg None and says why in bkg_error
    bkg = bkg_error = None
    if has_bkg:
        try:
            bkg = _background(*get("bkg"))
        except DataStoreError as exc:
            bkg_error = str(exc)
    # psf (optional, on request only): an unreadable or unknown one leaves psf None, psf_error why
    psf = psf_error = None
    if load_psf and not has_psf:
        psf_error = "no PSF in the hdu index"
    if has_psf:
        try:
            psf = _psf(*get("psf"), psf_class)
        except DataStoreError as exc:
            psf_error = str(exc)
    src = locs["events"][0]
    return Observation(
        obs_id=int(obs_id),
        ra=ra,
        dec=dec,
        energy=energy,
        time=time,
        gti=gti,
        deadc=deadc,
        pointing_radec=pointing,
        aeff=aeff,
        edisp=edisp,
        bkg=bkg,
        psf=psf,
        lo_thres=aeff.lo_thres,
        hi_thres=aeff.hi_thres,
        source_file=str(src),
        checksum=_sha256(src),
        meta={"OBJECT": str(hdr.get("OBJECT", "")), "OBS_MODE": str(hdr.get("OBS_MODE", "")),
              **{k: hdr[k] for k in TIME_REF_KEYS if hdr.get(k) is not None}, **_instrument(hdr)},
        irf_class=irf_class,
        rad_max=rad_max,
        bkg_error=bkg_error,
        psf_error=psf_error,
    )


PSF_FORMATS = ("psf_table", "psf_3gauss", "psf_king")
"""The GADF PSF formats read (HDU_CLASS of the hdu index, else the columns decide)."""

_PSF_3GAUSS_COLUMNS = ("SCALE", "SIGMA_1", "AMPL_2", "SIGMA_2", "AMPL_3", "SIGMA_3")


def _psf(header, data, what, hdu_class: str = ""):
    """The PSF of one HDU: PSF_TABLE (RPSF), PSF_3GAUSS (SCALE, SIGMA_i, AMPL_i) or PSF_KING
    (GAMMA, SIGMA); the form follows ``hdu_class`` (the hdu index's HDU_CLASS) or the columns."""
    cols = data.columns
    kind = hdu_class if hdu_class in PSF_FORMATS else (
        "psf_table" if "RPSF" in cols else "psf_3gauss" if "SIGMA_1" in cols else
        "psf_king" if "GAMMA" in cols else "")
    if kind == "psf_table":
        pe = _axis(data, _ENERGY_STEMS, what, True, "energy")
        pt = _axis(data, "THETA", what, False, "angle")
        pr = _axis(data, "RAD", what, False, "angle")
        rpsf = _irf_cell(data, "RPSF", what, 3)  # (energy, theta, rad) after transpose
        _check_shape(rpsf, (pe, pt, pr), what, "RPSF")
        pt, rpsf = single_bin_as_nodes(pt, rpsf, 1)
        return PsfTable(pe, pt, pr, rpsf, unit=data.units.get("RPSF", ""))
    if kind not in ("psf_3gauss", "psf_king"):
        raise DataStoreError(f"{what}: PSF of HDU_CLASS '{hdu_class}' is not one of {', '.join(PSF_FORMATS)}")
    names = _PSF_3GAUSS_COLUMNS if kind == "psf_3gauss" else ("GAMMA", "SIGMA")
    params = []
    for name in names:
        if name not in cols:
            raise DataStoreError(f"{what}: {kind.upper()} without its column {name}")
        kind_unit = "angle" if name.startswith("SIGMA") else None
        energy, offset = _axis(data, _ENERGY_STEMS, what, True, "energy"), _axis(data, "THETA", what, False, "angle")
        v = _irf_cell(data, name, what, 2)
        _check_shape(v, (energy, offset), what, name)
        if kind_unit:
            v = v * _unit_factor(data.units.get(name, ""), kind_unit, what, name)
        offset, v = single_bin_as_nodes(offset, v, 1)
        params.append(v)
    table = np.stack(params, axis=-1).astype(np.float64)
    return (Psf3Gauss if kind == "psf_3gauss" else PsfKing)(energy, offset, table)


BKG_COLUMNS = ("BKG", "BGD")
"""Names of the background-rate column: GADF's ``BKG``; ``BGD`` in the CTA first data
challenge's IRF files (``caldb/data/cta/1dc/bcf/*/irf_file.fits``)."""


def _background(header, data, what) -> Bkg3D | Bkg2D:
    """The background IRF of one HDU: BKG_3D (DETX, DETY) or BKG_2D (THETA, radially symmetric).

    The rate column is ``BKG`` or ``BGD`` (:data:`BKG_COLUMNS`).  The form follows the axis
    columns (DETX/DETY: 3D, THETA: 2D).  For 3D tables the order of the axis columns in the
    table is the order of the array's FITS dimensions (TDIM): H.E.S.S. DR1 and CTA 1DC write
    DETX, DETY, ENERG, CTA prod5 ENERG, DETX, DETY.
    """
    column = next((c for c in BKG_COLUMNS if c in data.columns), None)
    if column is None:
        raise DataStoreError(f"{what}: missing column {' or '.join(BKG_COLUMNS)} (the background rate)")
    factor = _unit_factor(data.units.get(column, ""), "bkg", what, column)
    if "DETX_LO" not in data.columns and "THETA_LO" in data.columns:  # BKG_2D
        energy, offset, rate = _energy_offset_table(data, column, what, "bkg")
        return Bkg2D(energy, offset, rate, unit=_UNITS["bkg"])
    energy = _axis(data, _ENERGY_STEMS, what, True, "energy")
    bx = _axis(data, "DETX", what, False, "angle")
    by = _axis(data, "DETY", what, False, "angle")
    cell = _irf_cell(data, column, what, 3)  # in the FITS order of its dimensions
    order = sorted(("E", "X", "Y"), key=lambda a: list(data.columns).index(
        {"E": f"{energy.name}_LO", "X": "DETX_LO", "Y": "DETY_LO"}[a]))
    rate = np.transpose(cell, [order.index(a) for a in ("E", "Y", "X")])  # -> (energy, dety, detx)
    _check_shape(rate, (energy, by, bx), what, column)
    return Bkg3D(energy, bx, by, rate * factor, unit=_UNITS["bkg"],
                 fovalign=str(header.get("FOVALIGN", "RADEC")).strip())


def _instrument(hdr) -> dict:
    """TELESCOP/INSTRUME of the EVENTS header (travel into the OGIP files and the fit result)."""
    out = {}
    for key in ("TELESCOP", "INSTRUME"):
        v = str(hdr.get(key, "") or "").strip()
        if v:
            out[key] = v
    return out


def _pointing(store: DataStore, obs_id: int, hdr, what: str) -> tuple[float, float]:
    """Pointing (RA, Dec) from the EVENTS header, else from the obs index."""
    if "RA_PNT" in hdr and "DEC_PNT" in hdr:
        return float(hdr["RA_PNT"]), float(hdr["DEC_PNT"])
    t = store.obs_table
    rows = np.flatnonzero(store.obs_ids == obs_id) if "RA_PNT" in t and "DEC_PNT" in t else []
    if len(rows):
        return float(t["RA_PNT"][rows[0]]), float(t["DEC_PNT"][rows[0]])
    raise DataStoreError(f"{what}: header keyword RA_PNT missing (and no RA_PNT/DEC_PNT in the obs index)")


def _deadc(store: DataStore, obs_id: int, hdr) -> float:
    """Dead-time correction: DEADC of the EVENTS header, else of the obs index, else
    LIVETIME/ONTIME of the header, else 1 (livetime = GTI sum x DEADC)."""
    if "DEADC" in hdr:
        return float(hdr["DEADC"])
    t = store.obs_table
    if "DEADC" in t:
        rows = np.flatnonzero(store.obs_ids == obs_id)
        if rows.size:
            return float(t["DEADC"][rows[0]])
    if hdr.get("LIVETIME") and hdr.get("ONTIME"):
        return float(hdr["LIVETIME"]) / float(hdr["ONTIME"])
    return 1.0


def _rad_max(aeff_header, aeff_what, get, what) -> RadMax2D:
    """RAD_MAX of point-like IRFs: the ``RAD_MAX`` HDU (RAD_MAX_2D) if listed, else the
    ``RAD_MAX`` keyword of the effective-area header (a fixed cut)."""
    if get is not None:
        _, rdata, rw = get("rad_max")
        re_, rt, values = _energy_offset_table(rdata, "RAD_MAX", rw, "angle")
        re_, values = single_bin_as_nodes(re_, values, 0)
        return RadMax2D(re_, rt, values)
    if aeff_header.get("RAD_MAX") is not None:
        return RadMax2D.fixed(float(aeff_header["RAD_MAX"]))
    raise DataStoreError(f"{aeff_what}: point-like IRF (HDUCLAS3 = POINT-LIKE) without its directional cut: "
                         "no RAD_MAX header keyword and no rad_max HDU in the hdu index")
