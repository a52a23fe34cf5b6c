"""OGIP spectrum files of one ON/OFF spectrum (:class:`extspec.spectrum.SpectrumDataset`).

:func:`write_spectrum` writes four files into one directory that gammapy 2.x
(``SpectrumDatasetOnOff.read``) and readers following the OGIP memos (CAL/GEN/92-002,
OGIP/92-007) load without help; :func:`read_spectrum` reads them back, reproducing every field
of the dataset, and reads standard OGIP sets of other tools (see its docstring for the rules
and fallbacks).  Energies are written in TeV (``TUNIT`` set), all columns that enter a fit
are float64.  What only extspec needs (``EXTSPEC``, ``OFFREGS``, ``USABLE`` ...) is an optional
extra that other readers ignore.

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
      (DS9 string of the ON region, for tools to redraw it; long strings use ``CONTINUE``
      cards, ``LONGSTRN``), ``BKGMETH`` (the background method of the run: ``reflected``,
      ``wobble``, ``fov`` or ``ring``; fov and ring give a per-channel alpha, so the
      ``BACKSCAL`` column of the BKG file varies between channels).
    * ``EBOUNDS`` -- as in the RMF (the reco-energy channels; gammapy reads them from here).
    * ``GTI`` -- ``START``, ``STOP`` (D, s) with the time reference of the DL3 events
      (``MJDREFI``, ``MJDREFF``, ``TIMESYS``, ``TIMEUNIT``, ``TIMEREF``; from the dataset's
      meta, written when known).
    * ``OFFREGS`` -- one row per OFF region, column ``REGION`` (DS9 string); header
      ``RA_PNT``, ``DEC_PNT`` (pointing, deg ICRS; absent when unknown = NaN).
    * ``EXTSPEC`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``EDISP_WEIGHT`` (D, m2 s) per true
      bin; header ``FORMAT='extspec-ogip'``, ``FMTVERS`` (1), ``OBS_ID`` and the meta
      dictionary as indexed cards ``NMETA``, ``MKEYn`` (key), ``MVALn`` (value; str, bool,
      int, finite float and None round-trip exactly; a non-finite float is stored as a string
      with ``MTYPn='float'``, a list/dict (or array) as JSON with ``MTYPn='json'`` (read
      back as list/dict), anything else as ``str()``).
``bkg.fits``
    ``SPECTRUM`` like the PHA with ``HDUCLAS2='BKG'``: ``COUNTS`` = OFF counts,
    ``BACKSCAL`` = OFF acceptance per bin, same ``QUALITY``, ``EXPOSURE`` = livetime; then
    ``EBOUNDS``.  So alpha = BACKSCAL(pha) / BACKSCAL(bkg).  An unusable spectrum (no OFF
    region) has no OFF acceptance: its BKG carries ``BACKSCAL`` = 1 (not 0, an infinite
    alpha to other tools), ``QUALITY`` bad in every channel (also in the PHA),
    ``USABLE=F`` and ``BKGDUMMY=T``; :func:`read_spectrum` restores the zero acceptance.
``arf.fits``
    ``SPECRESP`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``SPECRESP`` (D, cm2) =
    exposure [m2 s] / livetime * 1e4 (0 when the livetime is 0); the reader returns
    exposure = SPECRESP * EXPOSURE / 1e4.
``rmf.fits``
    * ``MATRIX`` -- ``ENERG_LO``, ``ENERG_HI`` (D, TeV), ``N_GRP`` (I), ``F_CHAN`` (PJ),
      ``N_CHAN`` (PJ), ``MATRIX`` (PD): per-row variable-length arrays, one channel group
      per run of non-zero kernel values (channels 0-based, ``TLMIN`` of F_CHAN = 0; an
      all-zero row has ``N_GRP`` = 0), ``NUMGRP``, ``NUMELT``.  ``HDUCLAS1='RESPONSE'``,
      ``HDUCLAS2='RSP_MATRIX'``, ``HDUCLAS3='REDIST'``, ``DETCHANS``.  The reader accepts
      any OGIP grouping (scalar, fixed or variable-length F_CHAN/N_CHAN/MATRIX), so the
      files of earlier extspec versions (one full-width group per row) read too.
    * ``EBOUNDS`` -- ``CHANNEL`` (J), ``E_MIN``, ``E_MAX`` (D, TeV).

The files are serialised by the small built-in FITS writer :mod:`extspec.io.fitswrite`
(astropy's HDU machinery takes ~30 ms per set, this ~2 ms) and read with the fast reader
:mod:`extspec.io.fitsread`, so that the aggregate jobs reading every observation's spectrum
never import astropy (files using a FITS feature fitsread lacks, e.g. scaled columns from
another tool, are read with ``astropy.io.fits``).  Each file is written to a
temporary file in the output directory; when all four are
complete an existing ``pha.fits`` is removed, the siblings are renamed into place and the
PHA last.  Missing or malformed files raise :class:`extspec.errors.FormatError` with a
one-line message naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .atomic import atomic_paths
from .fitswrite import bintable_bytes as _bintable_bytes
from .fitswrite import check_ascii as _check_ascii
from .fitswrite import primary_header_bytes as _primary_bytes

__all__ = ["write_spectrum", "read_spectrum", "spectrum_files", "PHA_FILE", "BKG_FILE", "ARF_FILE", "RMF_FILE"]

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


# ------------------------------------------------------------------------------- write --


def _telescop(ds) -> tuple[str, str]:
    telescop = str(ds.meta.get("TELESCOP", DEFAULT_TELESCOP))
    return telescop, str(ds.meta.get("INSTRUME", telescop))


def _ogip_common(ds):
    from .. import code_identity

    telescop, instrume = _telescop(ds)
    return [
        ("CREATOR", code_identity(), "software and source hash that wrote this file"),
        ("TELESCOP", telescop, "mission/satellite name"),
        ("INSTRUME", instrume, "instrument/detector name"),
        ("FILTER", "none", "filter in use"),
        ("OBS_ID", int(ds.obs_id), "observation id (0 for a stack)"),
    ]


def _energy_columns(edges, lo: str, hi: str):
    edges = np.asarray(edges, dtype=np.float64)
    return [(lo, "D", "TeV", edges[:-1]), (hi, "D", "TeV", edges[1:])]


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
            try:
                text = json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, allow_nan=False)
            except (TypeError, ValueError):
                cards.append(("MVAL%d" % i, str(v), "meta value (as str)"))
            else:
                cards.append(("MVAL%d" % i, text, "meta value"))
                cards.append(("MTYP%d" % i, "json", "meta value type"))
    return cards


def _spectrum_ext(ds, counts, backscal, quality, hduclas2: str, files: dict, extra) -> bytes:
    n = ds.energy_reco.nbin
    cols = [
        ("CHANNEL", "J", "", np.arange(n, dtype=np.int32)),
        ("COUNTS", "J", "count", counts),
        ("QUALITY", "I", "", quality),
        ("BACKSCAL", "D", "", np.asarray(backscal, dtype=np.float64)),
        ("AREASCAL", "D", "", np.ones(n)),
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
        ("EXPOSURE", float(ds.livetime), "[s] exposure (live) time"),
        ("BACKFILE", files.get("BACKFILE", "none"), "background file"),
        ("ANCRFILE", files.get("ANCRFILE", "none"), "ancillary response file"),
        ("RESPFILE", files.get("RESPFILE", "none"), "redistribution matrix file"),
        ("CORRFILE", "none", "correction file"),
        ("CORRSCAL", 1.0, "correction scaling"),
        *_ogip_common(ds),
        ("ONTIME", float(ds.ontime), "[s] sum of GTI durations"),
        ("LIVETIME", float(ds.livetime), "[s] live time"),
        *extra,
    ]
    return _bintable_bytes(EXT_SPECTRUM, cols, cards)


def _pha_bytes(ds, quality) -> bytes:
    files = {"BACKFILE": BKG_FILE, "ANCRFILE": ARF_FILE, "RESPFILE": RMF_FILE}
    extra = [
        ("USABLE", bool(ds.usable), "OFF regions found, spectrum usable"),
        ("REASON", str(ds.reason), "why the spectrum is not usable"),
        ("ONREGION", str(ds.on_region), "ON region (DS9)"),
        ("LONGSTRN", "OGIP 1.0", "CONTINUE cards may be used for long strings"),
    ]
    if "OBJECT" in ds.meta:
        extra.append(("OBJECT", str(ds.meta["OBJECT"]), "target"))
    if ds.meta.get("background"):
        extra.append(("BKGMETH", str(ds.meta["background"]), "background: reflected, wobble, fov or ring"))
    spec = _spectrum_ext(ds, _int32(ds.counts, "ON counts"), ds.acceptance, quality, "TOTAL", files, extra)

    gti = np.asarray(ds.gti, dtype=np.float64).reshape(-1, 2)
    gti_ext = _bintable_bytes(
        EXT_GTI,
        [("START", "D", "s", gti[:, 0]), ("STOP", "D", "s", gti[:, 1])],
        [("HDUCLASS", "OGIP", ""), ("HDUCLAS1", "GTI", ""), ("OBS_ID", int(ds.obs_id), ""),
         *_time_ref_cards(ds.meta)],
    )

    regions = [_check_ascii(str(r), "REGION") for r in ds.off_regions]
    width = max([1] + [len(r) for r in regions])
    reg_cards = [("OBS_ID", int(ds.obs_id), ""), ("NREGIONS", len(regions), "number of OFF regions")]
    ra, dec = (float(v) for v in ds.pointing_radec)
    if math.isfinite(ra) and math.isfinite(dec):
        reg_cards += [("RA_PNT", ra, "[deg] pointing RA (ICRS)"), ("DEC_PNT", dec, "[deg] pointing Dec (ICRS)")]
    reg_ext = _bintable_bytes(
        EXT_OFFREGS, [("REGION", f"{width}A", "", np.array(regions, dtype=f"S{width}"))], reg_cards
    )

    ext_cards = [
        ("FORMAT", FORMAT_NAME, "extspec OGIP extension"),
        ("FMTVERS", FORMAT_VERSION, "format version"),
        ("OBS_ID", int(ds.obs_id), ""),
        ("LONGSTRN", "OGIP 1.0", ""),
        *_meta_cards(ds.meta),
    ]
    ext_ext = _bintable_bytes(
        EXT_EXTSPEC,
        _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI")
        + [("EDISP_WEIGHT", "D", "m2 s", np.asarray(ds.edisp_weight, dtype=np.float64))],
        ext_cards,
    )
    return _primary_bytes() + spec + _ebounds_bytes(ds) + gti_ext + reg_ext + ext_ext


def _time_ref_cards(meta: dict):
    """MJDREFI, MJDREFF, TIMESYS, TIMEUNIT, TIMEREF of the DL3 events (meta), those known."""
    from ..timebins import TIME_REF_KEYS
    comments = {"MJDREFI": "int part of the reference MJD of START/STOP",
                "MJDREFF": "fractional part of the reference MJD", "TIMESYS": "time system",
                "TIMEUNIT": "unit of START/STOP", "TIMEREF": "reference frame of the times"}
    out = []
    for key in TIME_REF_KEYS:
        v = (meta or {}).get(key)
        if isinstance(v, np.generic):
            v = v.item()
        if v is not None:
            out.append((key, v, comments[key]))
    return out


def _bkg_bytes(ds, quality) -> bytes:
    backscal = np.asarray(ds.acceptance_off, dtype=np.float64)
    extra = []
    if not ds.usable and not np.any(backscal > 0):
        # no OFF region: a BACKSCAL of 0 would be an infinite alpha to other tools.  Write 1
        # (QUALITY marks every channel bad) and say so; extspec's reader restores the 0.
        backscal = np.ones_like(backscal)
        extra = [("USABLE", False, "no OFF region: background unusable"),
                 ("BKGDUMMY", True, "BACKSCAL is a placeholder (no OFF acceptance)")]
    elif not ds.usable:  # e.g. a run without events: OFF regions, but nothing to use
        extra = [("USABLE", False, "spectrum unusable (REASON in the PHA file)")]
    spec = _spectrum_ext(ds, _int32(ds.counts_off, "OFF counts"), backscal, quality, "BKG", {}, extra)
    return _primary_bytes() + spec + _ebounds_bytes(ds)


def _arf_bytes(ds) -> bytes:
    exposure = np.asarray(ds.exposure, dtype=np.float64)
    livetime = float(ds.livetime)
    specresp = exposure / livetime * 1e4 if livetime > 0 else np.zeros_like(exposure)
    cards = [
        ("HDUCLASS", "OGIP", ""),
        ("HDUCLAS1", "RESPONSE", ""),
        ("HDUCLAS2", "SPECRESP", ""),
        ("HDUVERS", "1.1.0", ""),
        *_ogip_common(ds),
        ("LIVETIME", livetime, "[s] livetime dividing the exposure"),
    ]
    cols = _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI") + [("SPECRESP", "D", "cm2", specresp)]
    return _primary_bytes() + _bintable_bytes(EXT_SPECRESP, cols, cards)


def _ebounds_bytes(ds) -> bytes:
    """The ``EBOUNDS`` extension (reco-energy channels), written into PHA, BKG and RMF alike."""
    nr = ds.energy_reco.nbin
    cols = [("CHANNEL", "J", "", np.arange(nr, dtype=np.int32))] + _energy_columns(
        ds.energy_reco.edges, "E_MIN", "E_MAX")
    cards = [
        ("HDUCLASS", "OGIP", ""),
        ("HDUCLAS1", "RESPONSE", ""),
        ("HDUCLAS2", "EBOUNDS", ""),
        ("HDUVERS", "1.2.0", ""),
        ("CHANTYPE", "PI", ""),
        ("DETCHANS", nr, "number of channels"),
        ("TLMIN1", 0, "first channel"),
        ("TLMAX1", nr - 1, "last channel"),
        *_ogip_common(ds),
    ]
    return _bintable_bytes(EXT_EBOUNDS, cols, cards)


def _rmf_groups(matrix: np.ndarray):
    """OGIP channel groups of each row: runs of non-zero entries (channels 0-based).

    Returns per-row arrays N_GRP (int16), F_CHAN, N_CHAN (int32) and MATRIX (float64), as
    CAL/GEN/92-002 and gammapy lay them out; an all-zero row has no group.
    """
    nz = matrix != 0
    edge = np.zeros((nz.shape[0], 1), dtype=bool)
    first = nz & ~np.hstack([edge, nz[:, :-1]])  # a run of non-zero channels starts here
    last = nz & ~np.hstack([nz[:, 1:], edge])  # ... and ends here
    rows, f_chan = np.nonzero(first)
    n_chan = np.nonzero(last)[1] - f_chan + 1
    n_grp = np.bincount(rows, minlength=nz.shape[0]).astype(np.int16)
    split = np.cumsum(n_grp)[:-1]
    values = np.split(matrix[nz], np.cumsum(nz.sum(axis=1))[:-1])
    return (n_grp, np.split(f_chan.astype(np.int32), split), np.split(n_chan.astype(np.int32), split), values)


def _rmf_bytes(ds) -> bytes:
    nt, nr = ds.energy_true.nbin, ds.energy_reco.nbin
    matrix = np.asarray(ds.edisp, dtype=np.float64).reshape(nt, nr)
    common = _ogip_common(ds)
    n_grp, f_chan, n_chan, values = _rmf_groups(matrix)
    cols = _energy_columns(ds.energy_true.edges, "ENERG_LO", "ENERG_HI") + [
        ("N_GRP", "I", "", n_grp),
        ("F_CHAN", "PJ", "", f_chan),
        ("N_CHAN", "PJ", "", n_chan),
        ("MATRIX", "PD", "", values),
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
        ("NUMGRP", int(n_grp.sum()), "total number of channel groups"),
        ("NUMELT", int(sum(v.size for v in values)), "total number of matrix elements"),
        *common,
    ]
    return _primary_bytes() + _bintable_bytes(EXT_MATRIX, cols, mcards) + _ebounds_bytes(ds)


def write_spectrum(dataset, outdir) -> Path:
    """Write ``dataset`` as ``pha.fits``, ``bkg.fits``, ``arf.fits``, ``rmf.fits`` in ``outdir``.

    Returns the path of the PHA file.  Nothing is replaced until all four files have been
    written completely; the PHA is renamed into place last (and an old PHA is removed
    first), so a complete set is exactly a directory with ``pha.fits``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ds = dataset
    good = np.asarray(ds.mask_safe, dtype=bool) & bool(ds.usable)  # unusable: every channel bad
    quality = np.where(good, QUALITY_GOOD, QUALITY_BAD).astype(np.int16)
    # all four written first, then renamed with the PHA last (an old PHA is removed first)
    names = (ARF_FILE, RMF_FILE, BKG_FILE, PHA_FILE)
    with atomic_paths([outdir / n for n in names]) as temps:
        for tmp, data in zip(temps, (_arf_bytes(ds), _rmf_bytes(ds), _bkg_bytes(ds, quality),
                                     _pha_bytes(ds, quality))):
            tmp.write_bytes(data)
        pha = outdir / PHA_FILE
        if pha.exists() or pha.is_symlink():
            os.unlink(pha)
    return outdir / PHA_FILE


# -------------------------------------------------------------------------------- read --
#
# The files are read with extspec.io.fitsread (a few ms per set, and no astropy import: the
# aggregate jobs that read every observation's spectrum start ~0.3 s faster).  A file using a
# FITS feature fitsread does not implement (e.g. scaled columns, from another tool) is read
# with astropy.io.fits instead; both give fitsread.Table objects.


def _first_line(err: BaseException) -> str:
    s = str(err).strip()
    return s.splitlines()[0] if s else type(err).__name__


def _read_tables(path: Path, names: set) -> dict:
    """The binary tables ``names`` of the FITS file ``path`` keyed by EXTNAME; one-line FormatError."""
    from .fitsread import Corrupt, read_tables_any

    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        return read_tables_any(path, only=names)
    except Corrupt as err:
        raise FormatError(f"{path}: not a readable FITS file ({_first_line(err)})") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise FormatError(f"{path}: malformed OGIP file ({_first_line(err)})") from None


def _hdu(tables: dict, name: str, path: Path):
    try:
        return tables[name]
    except KeyError:
        raise FormatError(f"{path}: missing extension '{name}'") from None


def _kw(header, key: str, path: Path, ext: str, default=KeyError):
    if key in header:
        return header[key]
    if default is KeyError:
        raise FormatError(f"{path}: missing keyword '{key}' in extension '{ext}'")
    return default


def _col_index(table, name: str) -> int | None:
    """0-based position of column ``name`` (case-insensitive) or None."""
    upper = [n.upper() for n in table.columns]
    return upper.index(name.upper()) if name.upper() in upper else None


def _col(table, name: str, path: Path, ext: str, dtype=None) -> np.ndarray:
    i = _col_index(table, name)
    if i is None:
        raise FormatError(f"{path}: missing column '{name}' in extension '{ext}'")
    a = table.columns[table.names[i]]
    try:
        return np.array(a, dtype=dtype) if dtype is not None else np.array(a)
    except (TypeError, ValueError) as err:
        raise FormatError(f"{path}: column '{name}' in extension '{ext}' is malformed ({_first_line(err)})") from None


def _unit_factor(table, name: str, path: Path, ext: str, target: str, default: str) -> float:
    """Factor taking column ``name`` from its TUNIT to ``target`` (missing TUNIT: ``default``;
    the spellings of :func:`extspec.io.units.unit_factor` only, any other unit is refused)."""
    from .units import unit_factor

    i = _col_index(table, name)
    unit = str(table.units.get(table.names[i], "") or "").strip() if i is not None else ""
    try:
        return unit_factor(unit or default, target, astropy=False)
    except ValueError as exc:
        raise FormatError(f"{path}: column '{name}' in extension '{ext}' has unit '{unit}': {exc}") from None


def _energy_col(table, name: str, path: Path, ext: str) -> np.ndarray:
    """An energy column in TeV (TUNIT keV, MeV, GeV or TeV; none: keV, as the OGIP memos say)."""
    return _col(table, name, path, ext, np.float64) * _unit_factor(table, name, path, ext, "TeV", "keV")


def _edges(lo: np.ndarray, hi: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Contiguous increasing bin edges from LO/HI columns (float32 columns of other tools: 1e-6)."""
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    if (lo.size < 1 or lo.size != hi.size or np.any(hi <= lo)
            or not np.allclose(lo[1:], hi[:-1], rtol=1e-6, atol=0)):
        raise FormatError(f"{path}: {what} bins are not contiguous increasing edges")
    return np.concatenate([lo, hi[-1:]])


def _same_edges(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=0)


def _per_channel(table, name: str, path: Path, ext: str, n: int, default, dtype) -> np.ndarray:
    """Column ``name`` (one value per channel), else the keyword of that name, else ``default``."""
    if _col_index(table, name) is not None:
        a = np.ravel(_col(table, name, path, ext, dtype))
        if a.size != n:
            raise FormatError(f"{path}: column '{name}' in extension '{ext}' has {a.size} values, expected {n}")
        return a
    value = table.header.get(name, default)
    try:
        return np.full(n, value, dtype=dtype)
    except (TypeError, ValueError):
        raise FormatError(f"{path}: keyword '{name}' in extension '{ext}' is not a number: {value!r}") from None


def _obs_id_fallback(h, path: Path) -> int:
    """OBS_ID keyword, else the last group of digits in the file name (pha_obs23523.fits), else 0."""
    if h.get("OBS_ID") is not None:
        try:
            return int(h["OBS_ID"])
        except (TypeError, ValueError):
            pass
    digits = re.findall(r"\d+", path.name.split(".")[0])
    return int(digits[-1]) if digits else 0


def _meta_from_header(h, path: Path) -> dict:
    n = int(_kw(h, "NMETA", path, EXT_EXTSPEC, 0))
    meta = {}
    for i in range(1, n + 1):
        key = _kw(h, "MKEY%d" % i, path, EXT_EXTSPEC)
        value = _kw(h, "MVAL%d" % i, path, EXT_EXTSPEC)
        kind = h.get("MTYP%d" % i)
        if kind == "float":
            value = float(value)
        elif kind == "json":
            value = json.loads(value)
        meta[str(key)] = value
    return meta


def _rmf_matrix(table, path: Path, nt: int, nr: int, tlmin: int) -> np.ndarray:
    n_grp = _col(table, "N_GRP", path, EXT_MATRIX)
    f_chan = _col(table, "F_CHAN", path, EXT_MATRIX)
    n_chan = _col(table, "N_CHAN", path, EXT_MATRIX)
    k = _col_index(table, "MATRIX")
    if k is None:
        raise FormatError(f"{path}: missing column 'MATRIX' in extension '{EXT_MATRIX}'")
    mcol = table.columns[table.names[k]]
    fmt = str(table.header.get(f"TFORM{k + 1}", "")).lstrip("0123456789")
    simple = (
        not fmt.startswith(("P", "Q"))
        and mcol.dtype != object and f_chan.dtype != object and n_chan.dtype != object
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


def spectrum_files(path) -> tuple[int, list[Path]]:
    """The obs id of an OGIP set and its files: the PHA, then BKG, ARF and RMF.

    Reads only the PHA's SPECTRUM header (``BACKFILE``, ``ANCRFILE``, ``RESPFILE``, relative
    to the PHA; the obs id with :func:`read_spectrum`'s fallback).  FormatError names a
    missing keyword or file.
    """
    path = Path(path)
    pha_path = path / PHA_FILE if path.is_dir() else path
    h = _hdu(_read_tables(pha_path, {EXT_SPECTRUM}), EXT_SPECTRUM, pha_path).header
    files = [pha_path]
    for key in ("BACKFILE", "ANCRFILE", "RESPFILE"):
        name = str(_kw(h, key, pha_path, EXT_SPECTRUM) or "").strip()
        if not name or name.lower() == "none":
            raise FormatError(f"{pha_path}: keyword {key} names no file")
        sib = pha_path.parent / name
        if not sib.is_file():
            raise FormatError(f"{sib}: no such file (referenced by {key} of {pha_path})")
        files.append(sib)
    return _obs_id_fallback(h, pha_path), files


def read_spectrum(path):
    """Read an OGIP spectrum set: one written by :func:`write_spectrum` or by another tool.

    ``path`` is the output directory (holding ``pha.fits``) or the PHA file; the BKG, ARF and
    RMF files are found through the ``BACKFILE``, ``ANCRFILE`` and ``RESPFILE`` keywords
    (relative to the PHA).  Standard OGIP type-I sets of other tools (e.g. gammapy) are read
    with these rules and fallbacks:

    * energies from ``TUNIT`` (keV, MeV, GeV or TeV; none given: keV), ``SPECRESP`` in cm2
      (or m2); reco bins from ``EBOUNDS`` of the RMF, else of the PHA;
    * ``BACKSCAL``, ``AREASCAL`` and ``QUALITY`` as columns or keywords (defaults 1, 1, 0);
      QUALITY 0 is good, anything else outside the safe range; alpha = BACKSCAL(PHA) /
      BACKSCAL(BKG); a constant AREASCAL scales the exposure (a varying one is refused);
    * RMF rows grouped as in CAL/GEN/92-002 (``F_CHAN``/``N_CHAN``/``MATRIX`` scalar, fixed or
      variable length; first channel ``TLMIN`` of F_CHAN, default 1);
    * livetime = ``EXPOSURE`` (required); ``ONTIME`` missing: the sum of the GTI, else the
      livetime; ``OBS_ID`` missing: the last number in the PHA file name, else 0; no ``GTI``:
      none; no ``OFFREGS``: no OFF regions, unknown pointing; no ``EXTSPEC`` extension:
      empty meta (plus ``source_file``) and the exposure as the kernel's stacking weight;
      ``USABLE`` missing: usable.

    Raises
    ------
    FormatError
        A file is missing, not FITS, or lacks an extension, column or keyword that is really
        needed (one line naming the file and the keyword), or the files do not agree (number
        of channels / true-energy bins).
    """
    from ..geometry import EnergyAxis
    from ..spectrum import SpectrumDataset

    path = Path(path)
    pha_path = path / PHA_FILE if path.is_dir() else path

    # --- PHA
    tables = _read_tables(pha_path, {EXT_SPECTRUM, EXT_GTI, EXT_OFFREGS, EXT_EXTSPEC, EXT_EBOUNDS})
    spec = _hdu(tables, EXT_SPECTRUM, pha_path)
    h = spec.header
    counts = _col(spec, "COUNTS", pha_path, EXT_SPECTRUM, np.int64)
    if counts.ndim != 1:
        raise FormatError(f"{pha_path}: COUNTS has shape {counts.shape}: a type II PHA file is not supported")
    nr = counts.size
    acceptance = _per_channel(spec, "BACKSCAL", pha_path, EXT_SPECTRUM, nr, 1.0, np.float64)
    areascal = _per_channel(spec, "AREASCAL", pha_path, EXT_SPECTRUM, nr, 1.0, np.float64)
    quality = _per_channel(spec, "QUALITY", pha_path, EXT_SPECTRUM, nr, QUALITY_GOOD, np.int64)
    livetime = float(_kw(h, "EXPOSURE", pha_path, EXT_SPECTRUM))
    obs_id = _obs_id_fallback(h, pha_path)
    usable = bool(_kw(h, "USABLE", pha_path, EXT_SPECTRUM, True))
    reason = str(_kw(h, "REASON", pha_path, EXT_SPECTRUM, "") or "")
    on_region = str(_kw(h, "ONREGION", pha_path, EXT_SPECTRUM, "") or "")
    if not np.allclose(areascal, areascal[0], rtol=1e-12, atol=0):
        raise FormatError(f"{pha_path}: AREASCAL varies between channels, which extspec does not support")
    siblings = {}
    for key in ("BACKFILE", "ANCRFILE", "RESPFILE"):
        name = str(_kw(h, key, pha_path, EXT_SPECTRUM) or "").strip()
        if not name or name.lower() == "none":
            raise FormatError(f"{pha_path}: keyword {key} names no file")
        siblings[key] = pha_path.parent / name

    if EXT_GTI in tables:
        g = tables[EXT_GTI]
        gti = np.stack([_col(g, "START", pha_path, EXT_GTI, np.float64),
                        _col(g, "STOP", pha_path, EXT_GTI, np.float64)], axis=-1).reshape(-1, 2)
    else:
        gti = np.zeros((0, 2))
    ontime = h.get("ONTIME")
    ontime = float(ontime) if ontime is not None else (float(np.sum(gti[:, 1] - gti[:, 0])) if gti.size else livetime)

    off_regions, pointing = [], (np.nan, np.nan)
    if EXT_OFFREGS in tables:
        r = tables[EXT_OFFREGS]
        off_regions = [str(v) for v in _col(r, "REGION", pha_path, EXT_OFFREGS)]
        pointing = (float(_kw(r.header, "RA_PNT", pha_path, EXT_OFFREGS, np.nan)),
                    float(_kw(r.header, "DEC_PNT", pha_path, EXT_OFFREGS, np.nan)))

    edisp_weight = None
    meta = {"source_file": str(pha_path)}
    if EXT_EXTSPEC in tables:
        x = tables[EXT_EXTSPEC]
        if x.header.get("FORMAT") != FORMAT_NAME:
            raise FormatError(f"{pha_path}: extension '{EXT_EXTSPEC}' is not an {FORMAT_NAME} extension")
        version = int(_kw(x.header, "FMTVERS", pha_path, EXT_EXTSPEC))
        if version > FORMAT_VERSION:
            raise FormatError(
                f"{pha_path}: {FORMAT_NAME} format version {version} is newer than the supported "
                f"{FORMAT_VERSION} (upgrade extspec)"
            )
        edisp_weight = _col(x, "EDISP_WEIGHT", pha_path, EXT_EXTSPEC, np.float64)
        meta = _meta_from_header(x.header, pha_path)
    for key, sib in siblings.items():
        if not sib.is_file():
            raise FormatError(f"{sib}: no such file (referenced by {key} of {pha_path}; incomplete spectrum set)")

    # --- BKG
    bkg_path = siblings["BACKFILE"]
    b = _hdu(_read_tables(bkg_path, {EXT_SPECTRUM}), EXT_SPECTRUM, bkg_path)
    counts_off = np.ravel(_col(b, "COUNTS", bkg_path, EXT_SPECTRUM, np.int64))
    if counts_off.size != nr:
        raise FormatError(f"{bkg_path}: {counts_off.size} channels, expected {nr} as in {pha_path.name}")
    acceptance_off = _per_channel(b, "BACKSCAL", bkg_path, EXT_SPECTRUM, nr, 1.0, np.float64)
    if b.header.get("BKGDUMMY") is True:  # written for an unusable spectrum: no OFF acceptance
        acceptance_off = np.zeros(nr)

    # --- ARF
    arf_path = siblings["ANCRFILE"]
    a = _hdu(_read_tables(arf_path, {EXT_SPECRESP}), EXT_SPECRESP, arf_path)
    e_true = _edges(_energy_col(a, "ENERG_LO", arf_path, EXT_SPECRESP),
                    _energy_col(a, "ENERG_HI", arf_path, EXT_SPECRESP), arf_path, "ENERG_LO/ENERG_HI")
    specresp = _col(a, "SPECRESP", arf_path, EXT_SPECRESP, np.float64)
    nt = e_true.size - 1
    if specresp.size != nt:
        raise FormatError(f"{arf_path}: SPECRESP has {specresp.size} values, expected {nt}")
    cm2 = _unit_factor(a, "SPECRESP", arf_path, EXT_SPECRESP, "cm2", "cm2")
    scale = cm2 * areascal[0] if nr else cm2
    exposure = specresp * livetime / 1e4 if scale == 1.0 else specresp * scale * livetime / 1e4

    # --- RMF
    rmf_path = siblings["RESPFILE"]
    rmf = _read_tables(rmf_path, {EXT_MATRIX, EXT_EBOUNDS})
    m = _hdu(rmf, EXT_MATRIX, rmf_path)
    m_true = _edges(_energy_col(m, "ENERG_LO", rmf_path, EXT_MATRIX),
                    _energy_col(m, "ENERG_HI", rmf_path, EXT_MATRIX), rmf_path, "ENERG_LO/ENERG_HI")
    if not _same_edges(m_true, e_true):
        raise FormatError(f"{rmf_path}: true-energy bins differ from those of {arf_path.name}")
    k = _col_index(m, "F_CHAN")
    if k is None:
        raise FormatError(f"{rmf_path}: missing column 'F_CHAN' in extension '{EXT_MATRIX}'")
    tlmin = int(m.header.get("TLMIN%d" % (k + 1), 1))
    if EXT_EBOUNDS in rmf:
        eb, eb_path = rmf[EXT_EBOUNDS], rmf_path
    elif EXT_EBOUNDS in tables:
        eb, eb_path = tables[EXT_EBOUNDS], pha_path
    else:
        raise FormatError(f"{rmf_path}: missing extension '{EXT_EBOUNDS}' (and none in {pha_path.name})")
    e_reco = _edges(_energy_col(eb, "E_MIN", eb_path, EXT_EBOUNDS), _energy_col(eb, "E_MAX", eb_path, EXT_EBOUNDS),
                    eb_path, "E_MIN/E_MAX")
    if e_reco.size - 1 != nr:
        raise FormatError(f"{eb_path}: {e_reco.size - 1} channels in EBOUNDS, expected {nr}")
    edisp = _rmf_matrix(m, rmf_path, nt, nr, tlmin)

    if edisp_weight is None:
        edisp_weight = exposure.copy()
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
