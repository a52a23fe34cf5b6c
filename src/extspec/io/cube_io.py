"""HDF5 product file of one reduced observation (:class:`extspec.cube.CubeDataset`).

Layout (format ``extspec-cube``, version 2)
-------------------------------------------
Every name below is defined once as a module-level constant; writer and reader use only
those constants::

    /                       root attributes
        format              "extspec-cube"                       (FORMAT_NAME)
        format_version      int, currently 2                     (FORMAT_VERSION)
        obs_id              int
        livetime, ontime    float, s
        deadc               float
        pointing_ra,
        pointing_dec        float, deg (ICRS)
        lo_thres, hi_thres  float, TeV (NaN when None)
        method              "exact" | "reference"
        source_file         path of the DL3 events file
        source_sha256       its sha256 (CubeDataset.checksum)
        created_by          "extspec <version>+src.<hash>" (extspec.code_identity)
        has_irf_cubes       int 0/1: /exposure, /edisp_kernel, /edisp_exposure present
        has_background      int 0/1: /background present
    /axes/
        energy_reco_edges   float64 (n_reco + 1,), attribute unit = "TeV"
        energy_true_edges   float64 (n_true + 1,), attribute unit = "TeV"
    /geom/                  attributes lon, lat (deg), frame, proj, nx, ny, binsz (deg),
                            wcs_header (the full FITS WCS header of MapGeom.header_dict()
                            as newline-separated cards, for other tools; the reader
                            rebuilds the MapGeom from the other attributes)
    /edisp_geom/            same attributes, for the coarse dispersion grid
    /counts                 int32   (n_reco, ny, nx)           dims "energy_reco,lat,lon"
    /exposure               float64 (n_true, ny, nx)           dims "energy_true,lat,lon", unit "m2 s"
    /edisp_kernel           float64 (ny_c, nx_c, n_true, n_reco)
                                                        dims "lat,lon,energy_true,energy_reco"
    /edisp_exposure         float64 (n_true, ny_c, nx_c)       dims "energy_true,lat,lon", unit "m2 s"
    /background             float64 (n_reco, ny, nx)           dims "energy_reco,lat,lon", counts
                                                        predicted by the background IRF
    /gti                    float64 (n, 2)                     dims "interval,start_stop", unit "s"
    /meta/                  one string attribute per CubeDataset.meta entry (values are
                            stored with ``str()``; they are read back as strings)

Version 1 files (always with the IRF cubes, never with a background) are read as well.  The
workflow's reductions write no IRF cubes (nothing downstream reads them: the ON/OFF
spectrum is extracted in the same job) and a background when the run has a background IRF
(the input of the excess and significance maps).

The counts, the kernel and the GTIs are gzip-compressed (level 1, shuffle filter; counts
shrink ~10x, the kernel ~2x).  The exposure arrays are stored uncompressed: their float64
mantissas are close to random, gzip saves only ~25 % of their size and would cost ~4 ms per
observation, a tenth of a whole reduction.

:func:`write_cube` writes atomically (:func:`extspec.io.atomic.atomic_path`: a temporary
file in the target directory, renamed over the target; removed on any error).  :func:`read_cube` raises
:class:`extspec.errors.FormatError` with a one-line message naming the file for a
non-HDF5 or truncated file, a foreign file, a newer format version, or a missing or
mis-shaped item.  :func:`read_cube_counts` reads only the counts, their energy axis, the map
geometry and the obs id (for stacking the counts image), with the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError

__all__ = ["write_cube", "read_cube", "read_cube_counts", "CubeCounts", "FORMAT_NAME", "FORMAT_VERSION"]

# ---------------------------------------------------------------------------- the names --

FORMAT_NAME = "extspec-cube"
FORMAT_VERSION = 2

# root attributes
ATTR_FORMAT = "format"
ATTR_FORMAT_VERSION = "format_version"
ATTR_OBS_ID = "obs_id"
ATTR_HAS_IRF_CUBES = "has_irf_cubes"
ATTR_HAS_BACKGROUND = "has_background"
ATTR_LIVETIME = "livetime"
ATTR_ONTIME = "ontime"
ATTR_DEADC = "deadc"
ATTR_POINTING_RA = "pointing_ra"
ATTR_POINTING_DEC = "pointing_dec"
ATTR_LO_THRES = "lo_thres"
ATTR_HI_THRES = "hi_thres"
ATTR_METHOD = "method"
ATTR_SOURCE_FILE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"
ATTR_CREATED_BY = "created_by"

# common dataset attributes
ATTR_UNIT = "unit"
ATTR_DIMS = "dims"

# axes
GROUP_AXES = "axes"
DS_ENERGY_RECO_EDGES = "energy_reco_edges"
DS_ENERGY_TRUE_EDGES = "energy_true_edges"
UNIT_ENERGY = "TeV"

# geometries
GROUP_GEOM = "geom"
GROUP_EDISP_GEOM = "edisp_geom"
ATTR_GEOM_LON = "lon"
ATTR_GEOM_LAT = "lat"
ATTR_GEOM_FRAME = "frame"
ATTR_GEOM_PROJ = "proj"
ATTR_GEOM_NX = "nx"
ATTR_GEOM_NY = "ny"
ATTR_GEOM_BINSZ = "binsz"
ATTR_GEOM_WCS_HEADER = "wcs_header"

# arrays
DS_COUNTS = "counts"
DS_EXPOSURE = "exposure"
DS_EDISP_KERNEL = "edisp_kernel"
DS_EDISP_EXPOSURE = "edisp_exposure"
DS_BACKGROUND = "background"
DS_GTI = "gti"
DIMS_COUNTS = "energy_reco,lat,lon"
DIMS_EXPOSURE = "energy_true,lat,lon"
DIMS_EDISP_KERNEL = "lat,lon,energy_true,energy_reco"
DIMS_EDISP_EXPOSURE = "energy_true,lat,lon"
DIMS_GTI = "interval,start_stop"
UNIT_EXPOSURE = "m2 s"
UNIT_TIME = "s"

# free-form metadata
GROUP_META = "meta"

# compression of the arrays
COMPRESSION = "gzip"
COMPRESSION_LEVEL = 1
SHUFFLE = True


# ------------------------------------------------------------------------------- write --


def _created_by() -> str:
    from .. import code_identity

    return code_identity()


def _opt_float(v) -> float:
    return float("nan") if v is None else float(v)


COMPRESSED = (DS_COUNTS, DS_EDISP_KERNEL, DS_GTI)
"""Datasets written with compression (see the module docstring)."""


_ATTR_TYPES: dict = {}


def _set_attrs(obj, items) -> None:
    """Scalar attributes ``items`` ((name, value) pairs) on ``obj``, a group or dataset just
    created (none of the names exists yet): the HDF5 calls of h5py's ``obj.attrs[name] =
    value`` (same types, same dataspace, same file bytes: tests/test_cube_io.py) without its
    per-attribute type guessing and existence check (about 60 us an attribute, 47 a cube).
    Values: str, float, numpy int64 or float64 scalars; any other goes through h5py's ``attrs``."""
    import h5py
    from h5py import h5a, h5s, h5t

    for name, value in items:
        if isinstance(value, str):
            kind, data = "str", np.array(value, dtype=h5py.string_dtype())
        elif isinstance(value, (float, np.float64)):
            kind, data = "f8", np.array(value, dtype=np.float64)
        elif isinstance(value, np.int64):
            kind, data = "i8", np.array(value, dtype=np.int64)
        else:
            obj.attrs[name] = value
            continue
        types = _ATTR_TYPES.get(kind)
        if types is None:  # the file and memory types h5py's attrs.create makes for this dtype
            types = _ATTR_TYPES[kind] = (h5t.py_create(data.dtype, logical=True), h5t.py_create(data.dtype))
        attr = h5a.create(obj.id, name.encode(), types[0], h5s.create_simple(()))
        try:
            attr.write(data, mtype=types[1])
        finally:
            attr.close()


def _write_array(parent, name: str, data: np.ndarray, dims: str, unit: str | None = None):
    data = np.ascontiguousarray(data)
    kw = {}
    if data.size > 0 and name in COMPRESSED:
        kw = dict(compression=COMPRESSION, compression_opts=COMPRESSION_LEVEL, shuffle=SHUFFLE)
    ds = parent.create_dataset(name, data=data, **kw)
    _set_attrs(ds, [(ATTR_DIMS, dims)] + ([(ATTR_UNIT, unit)] if unit is not None else []))
    return ds


def _write_root_attrs(f, cube) -> None:
    _set_attrs(f, [
        (ATTR_FORMAT, FORMAT_NAME),
        (ATTR_FORMAT_VERSION, np.int64(FORMAT_VERSION)),
        (ATTR_OBS_ID, np.int64(cube.obs_id)),
        (ATTR_HAS_IRF_CUBES, np.int64(cube.exposure is not None)),
        (ATTR_HAS_BACKGROUND, np.int64(cube.background is not None)),
        (ATTR_LIVETIME, float(cube.livetime)),
        (ATTR_ONTIME, float(cube.ontime)),
        (ATTR_DEADC, float(cube.deadc)),
        (ATTR_POINTING_RA, float(cube.pointing_radec[0])),
        (ATTR_POINTING_DEC, float(cube.pointing_radec[1])),
        (ATTR_LO_THRES, _opt_float(cube.lo_thres)),
        (ATTR_HI_THRES, _opt_float(cube.hi_thres)),
        (ATTR_METHOD, str(cube.method)),
        (ATTR_SOURCE_FILE, str(cube.source_file)),
        (ATTR_SOURCE_SHA256, str(cube.checksum)),
        (ATTR_CREATED_BY, _created_by()),
    ])


def _write_axes(f, cube) -> None:
    g = f.create_group(GROUP_AXES)
    for name, axis in ((DS_ENERGY_RECO_EDGES, cube.energy_reco), (DS_ENERGY_TRUE_EDGES, cube.energy_true)):
        ds = g.create_dataset(name, data=np.asarray(axis.edges, dtype=np.float64))
        _set_attrs(ds, [(ATTR_UNIT, UNIT_ENERGY)])


def _wcs_header_string(geom) -> str:
    """The map's FITS WCS header (with NAXIS1/2) as newline-separated 80-character cards.

    Parse it back with ``astropy.io.fits.Header.fromstring(s, sep="\\n")``.  Written with
    extspec's own card formatter (:mod:`extspec.io.fitswrite`), so a reduction job needs no astropy.
    """
    from .fitswrite import card_images as _cards

    cards = [c for key, value in geom.header_dict().items() for c in _cards(key, value)]
    return "\n".join(cards + [f"{'END':<80}"])


def _write_geom(f, name: str, geom) -> None:
    g = f.create_group(name)
    _set_attrs(g, [
        (ATTR_GEOM_LON, float(geom.lon)),
        (ATTR_GEOM_LAT, float(geom.lat)),
        (ATTR_GEOM_FRAME, str(geom.frame)),
        (ATTR_GEOM_PROJ, str(geom.proj)),
        (ATTR_GEOM_NX, np.int64(geom.npix[0])),
        (ATTR_GEOM_NY, np.int64(geom.npix[1])),
        (ATTR_GEOM_BINSZ, float(geom.binsz)),
        (ATTR_GEOM_WCS_HEADER, _wcs_header_string(geom)),
    ])


def _write_arrays(f, cube) -> None:
    _write_array(f, DS_COUNTS, np.asarray(cube.counts, dtype=np.int32), DIMS_COUNTS)
    if cube.exposure is not None:
        _write_array(f, DS_EXPOSURE, np.asarray(cube.exposure, dtype=np.float64), DIMS_EXPOSURE, UNIT_EXPOSURE)
        _write_array(f, DS_EDISP_KERNEL, np.asarray(cube.edisp_kernel, dtype=np.float64), DIMS_EDISP_KERNEL)
        _write_array(
            f, DS_EDISP_EXPOSURE, np.asarray(cube.edisp_exposure, dtype=np.float64), DIMS_EDISP_EXPOSURE,
            UNIT_EXPOSURE
        )
    if cube.background is not None:
        _write_array(f, DS_BACKGROUND, np.asarray(cube.background, dtype=np.float64), DIMS_COUNTS)
    gti = np.asarray(cube.gti, dtype=np.float64).reshape(-1, 2)
    _write_array(f, DS_GTI, gti, DIMS_GTI, UNIT_TIME)


def _write_meta(f, meta: dict) -> None:
    g = f.create_group(GROUP_META)
    _set_attrs(g, [(str(k), str(v)) for k, v in (meta or {}).items()])


def write_cube(cube, path) -> Path:
    """Write ``cube`` to the HDF5 file ``path`` atomically; returns the path.

    The file is first written to a temporary file next to ``path`` and then renamed over
    it, so ``path`` is either absent, the previous file, or the complete new file.
    """
    import h5py

    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _write_root_attrs(f, cube)
            _write_axes(f, cube)
            _write_geom(f, GROUP_GEOM, cube.geom)
            _write_geom(f, GROUP_EDISP_GEOM, cube.edisp_geom)
            _write_arrays(f, cube)
            _write_meta(f, cube.meta)
    return Path(path)


# -------------------------------------------------------------------------------- read --


class _Reader:
    """Accessors that turn missing or malformed items into FormatError."""

    def __init__(self, f, path: Path):
        self.f = f
        self.path = path

    def fail(self, msg: str):
        return FormatError(f"{self.path}: {msg}")

    def attr(self, obj, name: str, where: str = ""):
        try:
            return obj.attrs[name]
        except KeyError:
            raise self.fail(f"missing attribute '{name}' on '{where or obj.name}'") from None

    def str_attr(self, obj, name: str) -> str:
        v = self.attr(obj, name)
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        return str(v)

    def float_attr(self, obj, name: str) -> float:
        try:
            return float(self.attr(obj, name))
        except (TypeError, ValueError):
            raise self.fail(f"attribute '{name}' on '{obj.name}' is not a number") from None

    def int_attr(self, obj, name: str) -> int:
        v = self.attr(obj, name)
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise self.fail(f"attribute '{name}' on '{obj.name}' is not an integer") from None
        if np.ndim(v) != 0 or iv != v:
            raise self.fail(f"attribute '{name}' on '{obj.name}' is not an integer")
        return iv

    def group(self, name: str):
        import h5py

        obj = self.f.get(name)
        if not isinstance(obj, h5py.Group):
            raise self.fail(f"missing group '{name}'")
        return obj

    def dataset(self, name: str, dtype, shape=None, parent=None) -> np.ndarray:
        import h5py

        parent = self.f if parent is None else parent
        obj = parent.get(name)
        if not isinstance(obj, h5py.Dataset):
            full = name if parent is self.f else f"{parent.name.strip('/')}/{name}"
            raise self.fail(f"missing dataset '{full}'")
        data = obj[()]
        if shape is not None and tuple(np.shape(data)) != tuple(shape):
            raise self.fail(f"dataset '{obj.name.lstrip('/')}' has shape {np.shape(data)}, expected {tuple(shape)}")
        return np.asarray(data, dtype=dtype)


def _opt_from_float(v: float):
    return None if np.isnan(v) else v


def _read_geom(r: _Reader, name: str):
    from ..geometry import MapGeom

    g = r.group(name)
    nx, ny = r.int_attr(g, ATTR_GEOM_NX), r.int_attr(g, ATTR_GEOM_NY)
    if nx < 1 or ny < 1:
        raise r.fail(f"group '{name}' has an empty map ({nx} x {ny} pixels)")
    return MapGeom(
        lon=r.float_attr(g, ATTR_GEOM_LON),
        lat=r.float_attr(g, ATTR_GEOM_LAT),
        frame=r.str_attr(g, ATTR_GEOM_FRAME),
        proj=r.str_attr(g, ATTR_GEOM_PROJ),
        npix=(nx, ny),
        binsz=r.float_attr(g, ATTR_GEOM_BINSZ),
    )


def _read_axis(r: _Reader, axes, name: str):
    from ..geometry import EnergyAxis

    edges = r.dataset(name, np.float64, parent=axes)
    if edges.ndim != 1 or edges.size < 2:
        raise r.fail(f"dataset '{GROUP_AXES}/{name}' is not a 1D array of at least 2 edges")
    return EnergyAxis(edges)


def _check_format(r: _Reader) -> None:
    attrs = r.f.attrs
    if ATTR_FORMAT not in attrs:
        raise r.fail(f"not an {FORMAT_NAME} file (no '{ATTR_FORMAT}' attribute)")
    fmt = r.str_attr(r.f, ATTR_FORMAT)
    if fmt != FORMAT_NAME:
        raise r.fail(f"not an {FORMAT_NAME} file (format is '{fmt}')")
    version = r.int_attr(r.f, ATTR_FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise r.fail(
            f"{FORMAT_NAME} format version {version} is newer than the supported {FORMAT_VERSION}"
            " (upgrade extspec)"
        )
    if version < 1:
        raise r.fail(f"invalid {FORMAT_NAME} format version {version}")


def _has(r: _Reader, attr: str, default_v1: bool) -> bool:
    """A has_* flag (version 1 files have none: their fixed content is ``default_v1``)."""
    if attr not in r.f.attrs:
        if r.int_attr(r.f, ATTR_FORMAT_VERSION) == 1:
            return default_v1
        raise r.fail(f"missing attribute '{attr}' on '/'")
    return bool(r.int_attr(r.f, attr))


def _read_background(r: _Reader, shape):
    return r.dataset(DS_BACKGROUND, np.float64, shape) if _has(r, ATTR_HAS_BACKGROUND, False) else None


def _read(r: _Reader):
    from ..cube import CubeDataset

    _check_format(r)
    f = r.f
    axes = r.group(GROUP_AXES)
    e_reco = _read_axis(r, axes, DS_ENERGY_RECO_EDGES)
    e_true = _read_axis(r, axes, DS_ENERGY_TRUE_EDGES)
    geom = _read_geom(r, GROUP_GEOM)
    cgeom = _read_geom(r, GROUP_EDISP_GEOM)
    ny, nx = geom.shape
    nyc, nxc = cgeom.shape
    nr, nt = e_reco.nbin, e_true.nbin

    counts = r.dataset(DS_COUNTS, np.int32, (nr, ny, nx))
    exposure = kernel = edisp_exposure = None
    if _has(r, ATTR_HAS_IRF_CUBES, True):
        exposure = r.dataset(DS_EXPOSURE, np.float64, (nt, ny, nx))
        kernel = r.dataset(DS_EDISP_KERNEL, np.float64, (nyc, nxc, nt, nr))
        edisp_exposure = r.dataset(DS_EDISP_EXPOSURE, np.float64, (nt, nyc, nxc))
    background = _read_background(r, (nr, ny, nx))
    gti = r.dataset(DS_GTI, np.float64)
    if gti.ndim != 2 or gti.shape[1] != 2:
        raise r.fail(f"dataset '{DS_GTI}' has shape {gti.shape}, expected (n, 2)")

    meta_group = r.group(GROUP_META)
    meta = {}
    for k in meta_group.attrs:
        meta[k] = r.str_attr(meta_group, k)

    return CubeDataset(
        obs_id=r.int_attr(f, ATTR_OBS_ID),
        geom=geom,
        edisp_geom=cgeom,
        energy_reco=e_reco,
        energy_true=e_true,
        counts=counts,
        exposure=exposure,
        edisp_kernel=kernel,
        edisp_exposure=edisp_exposure,
        livetime=r.float_attr(f, ATTR_LIVETIME),
        ontime=r.float_attr(f, ATTR_ONTIME),
        deadc=r.float_attr(f, ATTR_DEADC),
        pointing_radec=(r.float_attr(f, ATTR_POINTING_RA), r.float_attr(f, ATTR_POINTING_DEC)),
        gti=gti,
        lo_thres=_opt_from_float(r.float_attr(f, ATTR_LO_THRES)),
        hi_thres=_opt_from_float(r.float_attr(f, ATTR_HI_THRES)),
        method=r.str_attr(f, ATTR_METHOD),
        source_file=r.str_attr(f, ATTR_SOURCE_FILE),
        checksum=r.str_attr(f, ATTR_SOURCE_SHA256),
        meta=meta,
        background=background,
    )


def _read_with(path, read, what: str = FORMAT_NAME):
    """Open ``path`` and return ``read(_Reader)``; every failure is a one-line FormatError
    (``what``: the format named in it)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FormatError(f"{path}: not a readable HDF5 file ({reason})") from None
    try:
        with f:
            return read(_Reader(f, path))
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FormatError(f"{path}: malformed {what} file ({reason})") from None


def read_cube(path):
    """Read a :class:`~extspec.cube.CubeDataset` written by :func:`write_cube`.

    Raises
    ------
    FormatError
        The file is missing, not HDF5 or truncated, not an ``extspec-cube`` file, of a newer
        format version, or lacks (or has a mis-shaped) attribute, group or dataset.
    """
    return _read_with(path, _read)


@dataclass(frozen=True)
class CubeCounts:
    """The counts part of a cube file (what the stacked images need)."""

    obs_id: int
    geom: object
    energy_reco: object
    counts: np.ndarray
    background: np.ndarray | None = None  # predicted by the background IRF; None without one
    livetime: float = float("nan")


def _read_counts(r: _Reader) -> CubeCounts:
    _check_format(r)
    e_reco = _read_axis(r, r.group(GROUP_AXES), DS_ENERGY_RECO_EDGES)
    geom = _read_geom(r, GROUP_GEOM)
    ny, nx = geom.shape
    counts = r.dataset(DS_COUNTS, np.int32, (e_reco.nbin, ny, nx))
    background = _read_background(r, (e_reco.nbin, ny, nx))
    return CubeCounts(r.int_attr(r.f, ATTR_OBS_ID), geom, e_reco, counts, background,
                      r.float_attr(r.f, ATTR_LIVETIME))


def read_cube_counts(path) -> CubeCounts:
    """Only ``obs_id``, ``geom``, ``energy_reco``, ``counts``, ``background`` and ``livetime``
    of a cube file.

    The same checks and errors as :func:`read_cube` for these items; the exposure and
    dispersion arrays (most of the file) are not read, which makes stacking the counts
    of many observations ~4x faster.
    """
    return _read_with(path, _read_counts)
