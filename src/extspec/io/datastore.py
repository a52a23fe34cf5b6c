"""GADF DL3 data store: index tables, observation selection and loading (spec §1).

A data store is a directory holding ``obs-index.fits[.gz]`` (HDU ``OBS_INDEX``) and
``hdu-index.fits[.gz]`` (HDU ``HDU_INDEX``).  :func:`open_datastore` opens one; the
location is resolved by :func:`resolve_datastore_path` in this order:

1. an explicit path (config key ``datastore``),
2. ``$GAMMAPY_DATA/hess-dl3-dr1``,
3. ``../shared/data/hess-dl3-dr1`` relative to the working directory.

Every problem with the store, a file or an HDU raises :class:`~extspec.errors.DataStoreError`
with a one-line message naming the culprit.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataStoreError
from ..irf import Aeff2D, Bkg3D, EDisp2D, PsfTable, make_axis

__all__ = [
    "DataStore",
    "Observation",
    "open_datastore",
    "resolve_datastore_path",
    "candidate_datastore_paths",
    "is_datastore",
    "REQUIRED_HDUS",
]

REQUIRED_HDUS = ("events", "gti", "aeff", "edisp")
"""HDU types an observation must have for this chain (bkg and psf are optional)."""

_INDEX_NAMES = {
    "obs": ("obs-index.fits.gz", "obs-index.fits"),
    "hdu": ("hdu-index.fits.gz", "hdu-index.fits"),
}


def candidate_datastore_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """The places searched for a data store, in order (see module docstring)."""
    paths = []
    if explicit:
        paths.append(Path(os.path.expandvars(os.path.expanduser(str(explicit)))))
    if os.environ.get("GAMMAPY_DATA"):
        paths.append(Path(os.environ["GAMMAPY_DATA"]) / "hess-dl3-dr1")
    paths.append(Path.cwd() / ".." / "shared" / "data" / "hess-dl3-dr1")
    return paths


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


def _read_fits_hdu(path: Path, hdu_name: str, what: str):
    """(header, table) of extension ``hdu_name`` of ``path``; clear errors."""
    tables = read_file_tables(path, what)
    if hdu_name.upper() not in tables:
        raise DataStoreError(
            f"{what}: file {path} has no HDU '{hdu_name}' (it has {', '.join(tables) or 'no table'})"
        )
    t = tables[hdu_name.upper()]
    return t.header, t


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

    @property
    def obs_ids(self) -> np.ndarray:
        return np.asarray(self.obs_table["OBS_ID"], dtype=np.int64)

    def _rows(self, obs_id: int, hdu_type: str) -> np.ndarray:
        t = self.hdu_table
        return np.flatnonzero((t["OBS_ID"] == obs_id) & (t["HDU_TYPE"] == hdu_type))

    def check_obs_ids(self, obs_ids) -> None:
        """Raise if any of ``obs_ids`` is not in the obs index (naming a few that are)."""
        known = set(self.obs_ids.tolist()) | set(np.unique(self.hdu_table["OBS_ID"]).tolist())
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
        """Pointing RA, Dec (deg, ICRS) of every observation in the obs index."""
        return (
            np.asarray(self.obs_table["RA_PNT"], float),
            np.asarray(self.obs_table["DEC_PNT"], float),
        )

    def select_cone(self, lon: float, lat: float, radius: float, frame: str = "icrs") -> list[int]:
        """Obs ids whose pointing lies within ``radius`` deg of (lon, lat) in ``frame``."""
        from ..sky import separation, transform_point

        ra, dec = self.pointings()
        tra, tdec = transform_point(float(lon), float(lat), frame, "icrs")
        sep = separation(ra, dec, tra, tdec)
        return [int(o) for o in self.obs_ids[sep <= radius]]

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

    def load(self, obs_id: int, load_bkg: bool = True, load_psf: bool = False) -> "Observation":
        """Load one observation (events, GTI, AEFF_2D, EDISP_2D; BKG_3D and PSF_TABLE if present)."""
        return load_observation(self, int(obs_id), load_bkg=load_bkg, load_psf=load_psf)


def open_datastore(path: str | os.PathLike | None = None) -> DataStore:
    """Open a GADF data store (see :func:`resolve_datastore_path` for the search order)."""
    root = resolve_datastore_path(path) if path is None else Path(path)
    if not root.is_dir():
        raise DataStoreError(f"data store {root}: not a directory")
    tables = {}
    for key, names in _INDEX_NAMES.items():
        f = next((root / n for n in names if (root / n).is_file()), None)
        if f is None:
            raise DataStoreError(
                f"{root} is not a DL3 data store: it has no {names[0]} (or {names[1]})"
            )
        hdu_name = "OBS_INDEX" if key == "obs" else "HDU_INDEX"
        _, data = _read_fits_hdu(f, hdu_name, f"data store {root}")
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
    aeff, edisp, bkg : IRFs (bkg may be None)
    lo_thres, hi_thres : safe-range keywords of the AEFF header (TeV), or None
    source_file : path of the events file; checksum : its sha256
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
    psf: PsfTable | None = None
    lo_thres: float | None = None
    hi_thres: float | None = None
    source_file: str = ""
    checksum: str = ""
    meta: dict = field(default_factory=dict)

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


def _axis(data, stem, what, log):
    lo = np.asarray(_col(data, f"{stem}_LO", what)[0], dtype=np.float64)
    hi = np.asarray(_col(data, f"{stem}_HI", what)[0], dtype=np.float64)
    try:
        return make_axis(stem, lo, hi, log)
    except ValueError as exc:
        raise DataStoreError(f"{what}: {exc}") from None


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

    The PSF table is read only with ``load_psf=True``: the chain never uses it.
    """
    what = f"obs {obs_id}"
    locs = {t: store.hdu_location(obs_id, t) for t in REQUIRED_HDUS}
    has_bkg = load_bkg and store._rows(obs_id, "bkg").size > 0
    if has_bkg:
        locs["bkg"] = store.hdu_location(obs_id, "bkg")
    psf_rows = store._rows(obs_id, "psf") if load_psf and "HDU_CLASS" in store.hdu_table else []
    has_psf = len(psf_rows) > 0 and str(store.hdu_table["HDU_CLASS"][psf_rows[0]]).lower() == "psf_table"
    if has_psf:
        locs["psf"] = store.hdu_location(obs_id, "psf")
    wanted: dict[Path, set] = {}
    for p, name in locs.values():
        wanted.setdefault(p, set()).add(str(name).upper())
    files = {p: read_file_tables(p, what, names) for p, names in wanted.items()}  # only the HDUs used

    def get(t):
        p, name = locs[t]
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
    time = _col(data, "TIME", w).astype(np.float64) if "TIME" in data.columns else np.zeros(len(ra))
    for key in ("RA_PNT", "DEC_PNT"):
        if key not in hdr:
            raise DataStoreError(f"{w}: header keyword {key} missing")
    deadc = float(hdr.get("DEADC", 1.0))
    pointing = (float(hdr["RA_PNT"]), float(hdr["DEC_PNT"]))
    # gti
    _, gdata, gw = get("gti")
    gti = np.stack([_col(gdata, "START", gw), _col(gdata, "STOP", gw)], axis=1).astype(np.float64)
    # aeff
    ahdr, adata, aw = get("aeff")
    ae = _axis(adata, "ENERG", aw, True)
    at = _axis(adata, "THETA", aw, False)
    area = _irf_cell(adata, "EFFAREA", aw, 2)
    _check_shape(area, (ae, at), aw, "EFFAREA")
    lo = ahdr.get("LO_THRES")
    hi = ahdr.get("HI_THRES")
    aeff = Aeff2D(ae, at, area, None if lo is None else float(lo), None if hi is None else float(hi))
    # edisp
    _, edata, ew = get("edisp")
    ee = _axis(edata, "ENERG", ew, True)
    em = _axis(edata, "MIGRA", ew, False)
    et = _axis(edata, "THETA", ew, False)
    matrix = _irf_cell(edata, "MATRIX", ew, 3)
    _check_shape(matrix, (ee, em, et), ew, "MATRIX")
    edisp = EDisp2D(ee, em, et, matrix)
    # bkg (optional)
    bkg = None
    if has_bkg:
        bhdr, bdata, bw = get("bkg")
        be = _axis(bdata, "ENERG", bw, True)
        bx = _axis(bdata, "DETX", bw, False)
        by = _axis(bdata, "DETY", bw, False)
        rate = _irf_cell(bdata, "BKG", bw, 3)  # (detx, dety, energy) after transpose
        rate = np.transpose(rate, (2, 1, 0))  # -> (energy, dety, detx)
        _check_shape(rate, (be, by, bx), bw, "BKG")
        bkg = Bkg3D(be, bx, by, rate, unit=bdata.units.get("BKG", ""),
                    fovalign=str(bhdr.get("FOVALIGN", "RADEC")).strip())
    # psf (optional, on request only; PSF_TABLE only -- the chain does not use it)
    psf = None
    if has_psf:
        _, pdata, pw = get("psf")
        pe = _axis(pdata, "ENERG", pw, True)
        pt = _axis(pdata, "THETA", pw, False)
        pr = _axis(pdata, "RAD", pw, False)
        rpsf = _irf_cell(pdata, "RPSF", pw, 3)  # (energy, theta, rad) after transpose
        _check_shape(rpsf, (pe, pt, pr), pw, "RPSF")
        psf = PsfTable(pe, pt, pr, rpsf, unit=pdata.units.get("RPSF", ""))
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
        meta={"OBJECT": str(hdr.get("OBJECT", "")), "OBS_MODE": str(hdr.get("OBS_MODE", ""))},
    )
