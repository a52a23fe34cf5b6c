"""OGIP spectrum files of one ON/OFF spectrum (:class:`extspec.spectrum.SpectrumDataset`).

:func:`write_spectrum` writes four files into one directory; :func:`read_spectrum` reads
them back and reproduces every field of the dataset.  Energies are in TeV everywhere
(``TUNIT`` set), all columns that enter a fit are float64.

``pha.fits`` (written last: its presence means the set is complete)
    * ``SPECTRUM`` -- type I PHA: ``CHANNEL`` (J, 0-based), ``COUNTS`` (J, ON counts),
      ``QUALITY`` (I: 0 = good, 5 = bad, i.e. outside the safe range), ``BACKSCAL`` (D, ON
      acceptance per bin), ``AREASCAL`` (D, 1.0).  Header: ``HDUCLASS='OGIP'``,
      ``HDUCLAS1='SPECTRUM'``, ``HDUCLAS2='TOTAL'``, ``HDUCLAS3='COUNT'``,
      ``HDUCLAS4='TYPE:I'``, ``HDUVERS='1.2.1'``, ``POISSERR=T``, ``CHANTYPE='PI'``,
      ``DETCHANS``, ``EXPOSURE`` (= livetime, s), ``BACKFILE='bkg.fits'``,
      ``ANCRFILE='arf.fits'``, ``RESPFILE='rmf.fits'`` (names relative to the PHA file),
      ``CORRFILE='none'``, ``TELESCOP``/``INSTRUME`` (meta, default 'HESS'),
      ``OBS_ID``, ``ONTIME``, ``LIVETIME``, ``USABLE`` (T/F), ``REASON``, ``ONREGION``
      (DS9 string of the ON region; long strings use ``CONTINUE`` cards, ``LONGSTRN``).
    * ``GTI`` -- ``START``, ``STOP`` (D, s).
    * ``OFFREGS`` -- one row per OFF region, column ``REGION`` (DS9 string); header
      ``RA_PNT``, ``DEC_PNT`` (pointing, deg ICRS; absent when unknown = NaN).
    * ``EXTSPEC`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``EDISP_WEIGHT`` (D, m2 s) per true
      bin; header ``FORMAT='extspec-ogip'``, ``FMTVERS`` (1), ``OBS_ID`` and the meta
      dictionary as indexed cards ``NMETA``, ``MKEYn`` (key), ``MVALn`` (value; str, bool,
      int, finite float and None round-trip exactly; a non-finite float is stored as a string
      with ``MTYPn='float'``; anything else is stored as ``str()``).
``bkg.fits``
    ``SPECTRUM`` like the PHA with ``HDUCLAS2='BKG'``: ``COUNTS`` = OFF counts,
    ``BACKSCAL`` = OFF acceptance per bin, same ``QUALITY``, ``EXPOSURE`` = livetime.
    So alpha = BACKSCAL(pha) / BACKSCAL(bkg).
``arf.fits``
    ``SPECRESP`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``SPECRESP`` (D, cm2) =
    exposure [m2 s] / livetime * 1e4 (0 when the livetime is 0); the reader returns
    exposure = SPECRESP * EXPOSURE / 1e4.
``rmf.fits``
    * ``MATRIX`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``N_GRP`` (I), ``F_CHAN`` (J),
      ``N_CHAN`` (J), ``MATRIX`` (D, fixed width n_reco): one group per row spanning all
      channels (N_GRP=1, F_CHAN=0, N_CHAN=n_reco; ``TLMIN`` of F_CHAN = 0).
      ``HDUCLAS1='RESPONSE'``, ``HDUCLAS2='RSP_MATRIX'``, ``HDUCLAS3='REDIST'``,
      ``DETCHANS``.  The reader also accepts general (grouped, variable-length) RMFs.
    * ``EBOUNDS`` -- ``CHANNEL`` (J), ``E_MIN``, ``E_MAX`` (D, TeV).

Each file is written to a temporary file in the output directory; when all four are
complete an existing ``pha.fits`` is removed, the siblings are renamed into place and the
PHA last.  Missing or malformed files raise :class:`extspec.errors.FormatError` with a
one-line message naming the file.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import FormatError

__all__ = ["write_spectrum", "read_spectrum", "PHA_FILE", "BKG_FILE", "ARF_FILE", "RMF_FILE"]

PHA_FILE = "pha.fits"
BKG_FILE = "bkg.fits"
ARF_FILE = "arf.fits"
RMF_FILE = "rmf.fits"

FORMAT_NAME = "extspec-ogip"
FORMAT_VERSION = 1

QUALITY_GOOD = 0
QUALITY_BAD = 5

DEFAULT_TELESCOP = "HESS"

EXT_SPECTRUM = "SPECTRUM"
EXT_GTI = "GTI"
EXT_OFFREGS = "OFFREGS"
EXT_EXTSPEC = "EXTSPEC"
EXT_SPECRESP = "SPECRESP"
EXT_MATRIX = "MATRIX"
EXT_EBOUNDS = "EBOUNDS"

_INT32_MAX = np.iinfo(np.int32).max


# ------------------------------------------------------------------------------ helpers --


def _fits():
    from astropy.io import fits

    return fits


def _card(key: str, value, comment: str = ""):
    """A header card whose value reads back exactly (floats longer than astropy's 20 chars too)."""
    fits = _fits()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"keyword {key}: non-finite value {value} cannot be written to a FITS header")
        card = fits.Card(key, value, comment)
        if fits.Card.fromstring(card.image).value != value:
            text = repr(value).upper()
            image = f"{key:8}= {text:>20}" + (f" / {comment}" if comment else "")
            card = fits.Card.fromstring(image[:80])
        return card
    return fits.Card(key, value, comment)


def _header(cards) -> "object":
    fits = _fits()
    h = fits.Header()
    for c in cards:
        h.append(c if isinstance(c, fits.Card) else _card(*c), end=True)
    return h


def _ogip_common(ds, telescop: str, instrume: str):
    return [
        ("TELESCOP", telescop, "mission/satellite name"),
        ("INSTRUME", instrume, "instrument/detector name"),
        ("FILTER", "none", "filter in use"),
        ("OBS_ID", int(ds.obs_id), "observation id (0 for a stack)"),
    ]


def _energy_columns(edges: np.ndarray, lo: str, hi: str):
    fits = _fits()
    edges = np.asarray(edges, dtype=np.float64)
    return [
        fits.Column(lo, "D", unit="TeV", array=edges[:-1]),
        fits.Column(hi, "D", unit="TeV", array=edges[1:]),
    ]


def _table(columns, header, name: str):
    fits = _fits()
    hdu = fits.BinTableHDU.from_columns(columns, header=header, name=name)
    return hdu


def _int32(values, what: str) -> np.ndarray:
    a = np.asarray(values)
    if a.size and (a.min() < 0 or a.max() > _INT32_MAX):
        raise ValueError(f"{what} out of the 32-bit range of an OGIP COUNTS column")
    return a.astype(np.int32)


def _meta_cards(meta: dict):
    cards = [("NMETA", len(meta or {}), "number of meta entries MKEYn/MVALn")]
    for i, (k, v) in enumerate((meta or {}).items(), start=1):
        if isinstance(v, np.generic):
            v = v.item()
        cards.append(("MKEY%d" % i, str(k), "meta key"))
        if isinstance(v, float) and not math.isfinite(v):
            cards.append(("MVAL%d" % i, repr(v), "meta value"))
            cards.append(("MTYP%d" % i, "float", "meta value type"))
        elif v is None or isinstance(v, (str, bool, int, float)):
            cards.append(("MVAL%d" % i, v, "meta value"))
        else:
            cards.append(("MVAL%d" % i, str(v), "meta value (as str)"))
    return cards


# ------------------------------------------------------------------------------- write --


def _spectrum_hdu(ds, counts, backscal, quality, hduclas2: str, files: dict, extra):
    fits = _fits()
    n = ds.energy_reco.nbin
    telescop = str(ds.meta.get("TELESCOP", DEFAULT_TELESCOP))
    instrume = str(ds.meta.get("INSTRUME", telescop))
    cols = [
        fits.Column("CHANNEL", "J", array=np.arange(n, dtype=np.int32)),
        fits.Column("COUNTS", "J", unit="count", array=counts),
        fits.Column("QUALITY", "I", array=quality),
        fits.Column("BACKSCAL", "D", array=np.asarray(backscal, dtype=np.float64)),
        fits.Column("AREASCAL", "D", array=np.ones(n)),
    ]
    cards = [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "SPECTRUM", "PHA dataset"),
        ("HDUCLAS2", hduclas2, "total or background spectrum"),
        ("HDUCLAS3", "COUNT", "PHA data stored as counts"),
        ("HDUCLAS4", "TYPE:I", "single PHA spectrum"),
        ("HDUVERS", "1.2.1", "version of the format"),
        ("POISSERR", True, "Poisson errors apply"),
        ("CHANTYPE", "PI", "channel type"),
        ("DETCHANS", n, "number of channels"),
        ("TLMIN1", 0, "first channel"),
        ("TLMAX1", n - 1, "last channel"),
        _card("EXPOSURE", float(ds.livetime), "[s] exposure (live) time"),
        ("BACKFILE", files.get("BACKFILE", "none"), "background file"),
        ("ANCRFILE", files.get("ANCRFILE", "none"), "ancillary response file"),
        ("RESPFILE", files.get("RESPFILE", "none"), "redistribution matrix file"),
        ("CORRFILE", "none", "correction file"),
        ("CORRSCAL", 1.0, "correction scaling"),
        *_ogip_common(ds, telescop, instrume),
        _card("ONTIME", float(ds.ontime), "[s] sum of GTI durations"),
        _card("LIVETIME", float(ds.livetime), "[s] live time"),
        *extra,
    ]
    return _table(cols, _header(cards), EXT_SPECTRUM)


def _pha_hdul(ds, quality):
    fits = _fits()
    files = {"BACKFILE": BKG_FILE, "ANCRFILE": ARF_FILE, "RESPFILE": RMF_FILE}
    extra = [
        ("USABLE", bool(ds.usable), "OFF regions found, spectrum usable"),
        ("REASON", str(ds.reason), "why the spectrum is not usable"),
        ("ONREGION", str(ds.on_region), "ON region (DS9)"),
        ("LONGSTRN", "OGIP 1.0", "CONTINUE cards may be used for long strings"),
    ]
    if "OBJECT" in ds.meta:
        extra.append(("OBJECT", str(ds.meta["OBJECT"]), "target"))
    spec = _spectrum_hdu(ds, _int32(ds.counts, "ON counts"), ds.acceptance, quality, "TOTAL", files, extra)

    gti = np.asarray(ds.gti, dtype=np.float64).reshape(-1, 2)
    gti_hdu = _table(
        [fits.Column("START", "D", unit="s", array=gti[:, 0]), fits.Column("STOP", "D", unit="s", array=gti[:, 1])],
        _header([("HDUCLASS", "OGIP", ""), ("HDUCLAS1", "GTI", ""), ("OBS_ID", int(ds.obs_id), "")]),
        EXT_GTI,
    )

    regions = [str(r) for r in ds.off_regions]
    width = max([1] + [len(r.encode("ascii")) for r in regions])
    reg_cards = [("OBS_ID", int(ds.obs_id), ""), ("NREGIONS", len(regions), "number of OFF regions")]
    ra, dec = (float(v) for v in ds.pointing_radec)
    if math.isfinite(ra) and math.isfinite(dec):
        reg_cards += [_card("RA_PNT", ra, "[deg] pointing RA (ICRS)"), _card("DEC_PNT", dec, "[deg] pointing Dec (ICRS)")]
    reg_hdu = _table(
        [fits.Column("REGION", f"{width}A", array=np.array(regions, dtype=f"S{width}"))],
        _header(reg_cards),
        EXT_OFFREGS,
    )

    ext_cards = [
        ("FORMAT", FORMAT_NAME, "extspec OGIP extension"),
        ("FMTVERS", FORMAT_VERSION, "format version"),
        ("OBS_ID", int(ds.obs_id), ""),
        ("LONGSTRN", "OGIP 1.0", ""),
        *_meta_cards(ds.meta),
    ]
    ext_hdu = _table(
        _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI")
        + [fits.Column("EDISP_WEIGHT", "D", unit="m2 s", array=np.asarray(ds.edisp_weight, dtype=np.float64))],
        _header(ext_cards),
        EXT_EXTSPEC,
    )
    return fits.HDUList([fits.PrimaryHDU(), spec, gti_hdu, reg_hdu, ext_hdu])


def _bkg_hdul(ds, quality):
    fits = _fits()
    spec = _spectrum_hdu(ds, _int32(ds.counts_off, "OFF counts"), ds.acceptance_off, quality, "BKG", {}, [])
    return fits.HDUList([fits.PrimaryHDU(), spec])


def _arf_hdul(ds):
    fits = _fits()
    exposure = np.asarray(ds.exposure, dtype=np.float64)
    livetime = float(ds.livetime)
    specresp = exposure / livetime * 1e4 if livetime > 0 else np.zeros_like(exposure)
    telescop = str(ds.meta.get("TELESCOP", DEFAULT_TELESCOP))
    cards = [
        ("HDUCLASS", "OGIP", ""),
        ("HDUCLAS1", "RESPONSE", ""),
        ("HDUCLAS2", "SPECRESP", ""),
        ("HDUVERS", "1.1.0", ""),
        *_ogip_common(ds, telescop, str(ds.meta.get("INSTRUME", telescop))),
        _card("LIVETIME", livetime, "[s] livetime dividing the exposure"),
    ]
    cols = _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI") + [
        fits.Column("SPECRESP", "D", unit="cm2", array=specresp)
    ]
    return fits.HDUList([fits.PrimaryHDU(), _table(cols, _header(cards), EXT_SPECRESP)])


def _rmf_hdul(ds):
    fits = _fits()
    nt, nr = ds.energy_true.nbin, ds.energy_reco.nbin
    matrix = np.asarray(ds.edisp, dtype=np.float64).reshape(nt, nr)
    telescop = str(ds.meta.get("TELESCOP", DEFAULT_TELESCOP))
    common = _ogip_common(ds, telescop, str(ds.meta.get("INSTRUME", telescop)))
    cols = _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI") + [
        fits.Column("N_GRP", "I", array=np.ones(nt, dtype=np.int16)),
        fits.Column("F_CHAN", "J", array=np.zeros(nt, dtype=np.int32)),
        fits.Column("N_CHAN", "J", array=np.full(nt, nr, dtype=np.int32)),
        fits.Column("MATRIX", f"{nr}D", array=matrix),
    ]
    mcards = [
        ("HDUCLASS", "OGIP", ""),
        ("HDUCLAS1", "RESPONSE", ""),
        ("HDUCLAS2", "RSP_MATRIX", ""),
        ("HDUCLAS3", "REDIST", "energy dispersion only"),
        ("HDUVERS", "1.3.0", ""),
        ("CHANTYPE", "PI", ""),
        ("DETCHANS", nr, "number of channels"),
        ("TLMIN4", 0, "first channel"),
        ("TLMAX4", nr - 1, "last channel"),
        ("LO_THRES", 0.0, "minimum matrix value kept"),
        *common,
    ]
    edges = np.asarray(ds.energy_reco.edges, dtype=np.float64)
    ecols = [
        fits.Column("CHANNEL", "J", array=np.arange(nr, dtype=np.int32)),
        fits.Column("E_MIN", "D", unit="TeV", array=edges[:-1]),
        fits.Column("E_MAX", "D", unit="TeV", array=edges[1:]),
    ]
    ecards = [
        ("HDUCLASS", "OGIP", ""),
        ("HDUCLAS1", "RESPONSE", ""),
        ("HDUCLAS2", "EBOUNDS", ""),
        ("HDUVERS", "1.2.0", ""),
        ("CHANTYPE", "PI", ""),
        ("DETCHANS", nr, "number of channels"),
        ("TLMIN1", 0, "first channel"),
        ("TLMAX1", nr - 1, "last channel"),
        *common,
    ]
    return fits.HDUList(
        [fits.PrimaryHDU(), _table(cols, _header(mcards), EXT_MATRIX), _table(ecols, _header(ecards), EXT_EBOUNDS)]
    )


def _write_temp(hdul, outdir: Path, name: str, temps: list) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=outdir)
    temps.append(tmp)
    with os.fdopen(fd, "wb") as f:
        hdul.writeto(f, output_verify="exception")
    return tmp


def write_spectrum(dataset, outdir) -> Path:
    """Write ``dataset`` as ``pha.fits``, ``bkg.fits``, ``arf.fits``, ``rmf.fits`` in ``outdir``.

    Returns the path of the PHA file.  Nothing is replaced until all four files have been
    written completely; the PHA is renamed into place last (and an old PHA is removed
    first), so a complete set is exactly a directory with ``pha.fits``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ds = dataset
    quality = np.where(np.asarray(ds.mask_safe, dtype=bool), QUALITY_GOOD, QUALITY_BAD).astype(np.int16)
    temps: list = []
    try:
        staged = [
            (_write_temp(_arf_hdul(ds), outdir, ARF_FILE, temps), ARF_FILE),
            (_write_temp(_rmf_hdul(ds), outdir, RMF_FILE, temps), RMF_FILE),
            (_write_temp(_bkg_hdul(ds, quality), outdir, BKG_FILE, temps), BKG_FILE),
            (_write_temp(_pha_hdul(ds, quality), outdir, PHA_FILE, temps), PHA_FILE),
        ]
        pha = outdir / PHA_FILE
        if pha.exists() or pha.is_symlink():
            os.unlink(pha)
        for tmp, name in staged:
            os.replace(tmp, outdir / name)
            temps.remove(tmp)
    except BaseException:
        for tmp in temps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    return outdir / PHA_FILE


# -------------------------------------------------------------------------------- read --


def _first_line(err: BaseException) -> str:
    s = str(err).strip()
    return s.splitlines()[0] if s else type(err).__name__


@contextmanager
def _reading(path: Path):
    """Turn astropy/numpy errors while reading ``path`` into a one-line FormatError."""
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)  # e.g. "File may have been truncated"
            warnings.simplefilter("ignore", VerifyWarning)
            yield
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError, AstropyUserWarning) as err:
        raise FormatError(f"{path}: malformed OGIP file ({_first_line(err)})") from None


def _open(path: Path):
    fits = _fits()
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        return fits.open(path, memmap=False)
    except (OSError, ValueError, TypeError) as err:
        raise FormatError(f"{path}: not a readable FITS file ({_first_line(err)})") from None


def _hdu(hdul, name: str, path: Path):
    try:
        return hdul[name]
    except (KeyError, IndexError):
        raise FormatError(f"{path}: missing extension '{name}'") from None


def _kw(header, key: str, path: Path, ext: str, default=KeyError):
    if key in header:
        return header[key]
    if default is KeyError:
        raise FormatError(f"{path}: missing keyword '{key}' in extension '{ext}'")
    return default


def _col(hdu, name: str, path: Path, dtype=None) -> np.ndarray:
    names = [n.upper() for n in hdu.columns.names]
    if name.upper() not in names:
        raise FormatError(f"{path}: missing column '{name}' in extension '{hdu.name}'")
    a = hdu.data[name]
    return np.array(a, dtype=dtype) if dtype is not None else np.array(a)


def _edges(lo: np.ndarray, hi: np.ndarray, path: Path, what: str) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    if lo.size < 1 or lo.size != hi.size or not np.array_equal(lo[1:], hi[:-1]) or np.any(hi <= lo):
        raise FormatError(f"{path}: {what} bins are not contiguous increasing edges")
    return np.concatenate([lo, hi[-1:]])


def _meta_from_header(h, path: Path) -> dict:
    n = int(_kw(h, "NMETA", path, EXT_EXTSPEC, 0))
    meta = {}
    for i in range(1, n + 1):
        key = _kw(h, "MKEY%d" % i, path, EXT_EXTSPEC)
        value = _kw(h, "MVAL%d" % i, path, EXT_EXTSPEC)
        if h.get("MTYP%d" % i) == "float":
            value = float(value)
        meta[str(key)] = value
    return meta


def _rmf_matrix(hdu, path: Path, nt: int, nr: int, tlmin: int) -> np.ndarray:
    n_grp = _col(hdu, "N_GRP", path)
    f_chan = _col(hdu, "F_CHAN", path)
    n_chan = _col(hdu, "N_CHAN", path)
    mcol = hdu.data["MATRIX"] if "MATRIX" in [c.upper() for c in hdu.columns.names] else None
    if mcol is None:
        raise FormatError(f"{path}: missing column 'MATRIX' in extension '{EXT_MATRIX}'")
    fmt = hdu.columns["MATRIX"].format
    simple = (
        not str(fmt).startswith(("P", "Q"))
        and np.all(n_grp == 1)
        and np.all(np.ravel(f_chan) == tlmin)
        and np.all(np.ravel(n_chan) == nr)
    )
    if simple:
        m = np.array(mcol, dtype=np.float64).reshape(nt, -1)
        if m.shape[1] != nr:
            raise FormatError(f"{path}: MATRIX has {m.shape[1]} channels, expected {nr}")
        return m
    # general OGIP grouping (one or more channel groups per row, fixed or variable width)
    out = np.zeros((nt, nr))
    for i in range(nt):
        row = np.ravel(np.asarray(mcol[i], dtype=np.float64))
        fc = np.atleast_1d(f_chan[i]).astype(int)
        nc = np.atleast_1d(n_chan[i]).astype(int)
        pos = 0
        for g in range(int(n_grp[i])):
            c0 = fc[g] - tlmin
            if c0 < 0 or c0 + nc[g] > nr or pos + nc[g] > row.size:
                raise FormatError(f"{path}: MATRIX row {i} group {g} outside the {nr} channels")
            out[i, c0 : c0 + nc[g]] = row[pos : pos + nc[g]]
            pos += nc[g]
    return out


def read_spectrum(path):
    """Read a spectrum written by :func:`write_spectrum`.

    ``path`` is the output directory or the PHA file; the BKG, ARF and RMF files are found
    through the ``BACKFILE``, ``ANCRFILE`` and ``RESPFILE`` keywords (relative to the PHA).

    Raises
    ------
    FormatError
        A file is missing, not FITS, or lacks an extension, column or keyword, or the files
        do not agree (number of channels / true-energy bins).
    """
    from .geometry import EnergyAxis
    from .spectrum import SpectrumDataset

    path = Path(path)
    pha_path = path / PHA_FILE if path.is_dir() else path

    # --- PHA
    with _reading(pha_path), _open(pha_path) as hdul:
        spec = _hdu(hdul, EXT_SPECTRUM, pha_path)
        h = spec.header
        counts = _col(spec, "COUNTS", pha_path, np.int64)
        acceptance = _col(spec, "BACKSCAL", pha_path, np.float64)
        quality = _col(spec, "QUALITY", pha_path, np.int64)
        livetime = float(_kw(h, "EXPOSURE", pha_path, EXT_SPECTRUM))
        ontime = float(_kw(h, "ONTIME", pha_path, EXT_SPECTRUM))
        obs_id = int(_kw(h, "OBS_ID", pha_path, EXT_SPECTRUM))
        usable = bool(_kw(h, "USABLE", pha_path, EXT_SPECTRUM))
        reason = str(_kw(h, "REASON", pha_path, EXT_SPECTRUM, ""))
        on_region = str(_kw(h, "ONREGION", pha_path, EXT_SPECTRUM, ""))
        siblings = {}
        for key in ("BACKFILE", "ANCRFILE", "RESPFILE"):
            name = str(_kw(h, key, pha_path, EXT_SPECTRUM)).strip()
            if not name or name.lower() == "none":
                raise FormatError(f"{pha_path}: keyword {key} names no file")
            siblings[key] = pha_path.parent / name

        g = _hdu(hdul, EXT_GTI, pha_path)
        gti = np.stack([_col(g, "START", pha_path, np.float64), _col(g, "STOP", pha_path, np.float64)], axis=-1)
        gti = gti.reshape(-1, 2)

        r = _hdu(hdul, EXT_OFFREGS, pha_path)
        off_regions = [str(s) for s in _col(r, "REGION", pha_path)] if r.data is not None else []
        pointing = (float(r.header.get("RA_PNT", np.nan)), float(r.header.get("DEC_PNT", np.nan)))

        x = _hdu(hdul, EXT_EXTSPEC, pha_path)
        fmt = x.header.get("FORMAT")
        if fmt != FORMAT_NAME:
            raise FormatError(f"{pha_path}: extension '{EXT_EXTSPEC}' is not an {FORMAT_NAME} extension")
        version = int(_kw(x.header, "FMTVERS", pha_path, EXT_EXTSPEC))
        if version > FORMAT_VERSION:
            raise FormatError(
                f"{pha_path}: {FORMAT_NAME} format version {version} is newer than the supported "
                f"{FORMAT_VERSION} (upgrade extspec)"
            )
        edisp_weight = _col(x, "EDISP_WEIGHT", pha_path, np.float64)
        meta = _meta_from_header(x.header, pha_path)
    nr = counts.size

    # --- BKG
    bkg_path = siblings["BACKFILE"]
    with _reading(bkg_path), _open(bkg_path) as hdul:
        b = _hdu(hdul, EXT_SPECTRUM, bkg_path)
        counts_off = _col(b, "COUNTS", bkg_path, np.int64)
        acceptance_off = _col(b, "BACKSCAL", bkg_path, np.float64)
        if counts_off.size != nr:
            raise FormatError(f"{bkg_path}: {counts_off.size} channels, expected {nr} as in {pha_path.name}")

    # --- ARF
    arf_path = siblings["ANCRFILE"]
    with _reading(arf_path), _open(arf_path) as hdul:
        a = _hdu(hdul, EXT_SPECRESP, arf_path)
        e_true = _edges(_col(a, "ENERG_LO", arf_path), _col(a, "ENERG_HI", arf_path), arf_path, "ENERG_LO/ENERG_HI")
        specresp = _col(a, "SPECRESP", arf_path, np.float64)
    nt = e_true.size - 1
    exposure = specresp * livetime / 1e4

    # --- RMF
    rmf_path = siblings["RESPFILE"]
    with _reading(rmf_path), _open(rmf_path) as hdul:
        m = _hdu(hdul, EXT_MATRIX, rmf_path)
        m_true = _edges(_col(m, "ENERG_LO", rmf_path), _col(m, "ENERG_HI", rmf_path), rmf_path, "ENERG_LO/ENERG_HI")
        if not np.array_equal(m_true, e_true):
            raise FormatError(f"{rmf_path}: true-energy bins differ from those of {arf_path.name}")
        names = [n.upper() for n in m.columns.names]
        if "F_CHAN" not in names:
            raise FormatError(f"{rmf_path}: missing column 'F_CHAN' in extension '{EXT_MATRIX}'")
        tlmin = int(m.header.get("TLMIN%d" % (names.index("F_CHAN") + 1), 1))
        eb = _hdu(hdul, EXT_EBOUNDS, rmf_path)
        e_reco = _edges(_col(eb, "E_MIN", rmf_path), _col(eb, "E_MAX", rmf_path), rmf_path, "E_MIN/E_MAX")
        if e_reco.size - 1 != nr:
            raise FormatError(f"{rmf_path}: {e_reco.size - 1} channels in EBOUNDS, expected {nr}")
        edisp = _rmf_matrix(m, rmf_path, nt, nr, tlmin)

    if edisp_weight.size != nt:
        raise FormatError(f"{pha_path}: EDISP_WEIGHT has {edisp_weight.size} bins, expected {nt}")

    return SpectrumDataset(
        obs_id=obs_id,
        energy_reco=EnergyAxis(e_reco),
        energy_true=EnergyAxis(e_true),
        counts=counts,
        counts_off=counts_off,
        acceptance=acceptance,
        acceptance_off=acceptance_off,
        exposure=exposure,
        edisp=edisp,
        edisp_weight=edisp_weight,
        mask_safe=quality == QUALITY_GOOD,
        livetime=livetime,
        ontime=ontime,
        gti=gti,
        usable=usable,
        reason=reason,
        on_region=on_region,
        off_regions=off_regions,
        pointing_radec=pointing,
        meta=meta,
    )
