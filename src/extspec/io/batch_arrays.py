"""The arrays file of a batch reduction job, and the one reader of reduced runs for the aggregates.

**Why.** The aggregate steps (stack, fit, flux points, cumulative) read every run.  From the
per-run files that is four OGIP files and a cube per run, ~4 ms a run, most of it parsing
FITS headers: 20 s of the 2,000-run workflow (docs/tutorials/cluster.md, "Archive scale").  So a batch job
(``reduce.batch_size`` > 1) also writes everything the aggregates need of its runs into ONE
HDF5 file, ``obs/batch-<key>.<digest>.h5`` beside its manifest (which names it, key
``arrays``), and the aggregates read that: a few HDF5 datasets per batch.

**Same products.** The per-run files are still written, byte for byte as before.  The arrays
file holds each run's spectrum exactly as :func:`extspec.io.ogip.read_spectrum` returns it
from those files (the writer's and reader's float round trips applied, the header strings
and meta passed through the same FITS card formatting and parsing: :func:`spectrum_as_read`)
and each cube's counts part as :func:`extspec.io.cube_io.read_cube_counts` returns it, so
every aggregate product is the same whichever way its inputs were read (tested, byte for
byte).

**Layout** (``n`` runs in ascending obs id, the batch's good runs only; all runs of a batch
share one binning, their reduction settings being the same)::

    /                     attrs format = "extspec-batch-arrays", format_version = 1
    /spectra/<name>       (n, ...) one dataset per array field of SpectrumDataset (obs_id,
                          energy_reco, energy_true edges, counts, counts_off, acceptance,
                          acceptance_off, exposure, edisp, edisp_weight, mask_safe,
                          livetime, ontime, usable); gti (m, 2) with gti_count (n,)
    /spectra/text         JSON (bytes): list of {reason, on_region, off_regions, pointing, meta}
    /cubes/<name>         obs_id, livetime, energy_reco (edges), counts (n, e, y, x) int32,
                          background (n, e, y, x) float64 (zeros where has_background is false)
    /cubes/geom           JSON (bytes): list of the map geometries

    /partials             attrs digest (the manifest's, from the file name), format_version;
                          obs_ids (n,): the runs summed (the good runs, as above)
    /partials/cumulative  what each run adds to the cumulative table's stack
                          (:func:`extspec.stacking.cumulative_increments` of the spectra as read)
                          and ``excluded`` (JSON {obs id: reason} of the runs without a safe bin)
    /partials/stack       the batch's counts cube summed over its runs, ``cube_counts`` (e, y, x)
                          int64, its ``energy_reco`` edges and ``geom`` (JSON), and the sums of
                          the sky maps (:class:`extspec.maps.MapSums`: ``map_counts``,
                          ``map_background`` (y, x), ``norm_obs``/``norm_values``,
                          ``without_background``, attrs ``n_norm`` and ``key``: the digest of the
                          energy bins and normalisation region they were summed over,
                          :func:`extspec.maps.map_sums_key`)

A batch without a good run has none of the groups.

**Partial sums** (issue 30).  Stacking is a sum and the cumulative table a running sum, so the
aggregates read ``/partials`` of ~40 batches instead of 2,000 runs' arrays, and adding a run
recomputes one batch's partials (its batch job reruns and rewrites its arrays file).  The
partials are used only when every input of a step is a manifest whose arrays file holds them
with the digest of its own name and the obs ids of its spectra (:func:`partial_sources`), the
sky maps' sums only when their key is the step's own; otherwise the step reads the runs as
before.  Results: the cumulative table identical to the runs' (the stack's recurrence repeated
from the increments, :func:`extspec.stacking.cumulative_rows_from_increments`), the sky maps'
sums within :data:`extspec.maps.MAP_SUMS_RTOL`.  A partial that lacks what its step reads or
cannot be read stops the step with one line naming the arrays file (:func:`iter_partials`).

**The reader.** :func:`read_spectra` and :func:`read_cube_counts_all` take the aggregates'
inputs as given on their command line: run folders (or files inside them, e.g. ``pha.fits``),
PHA files of other tools, or batch manifests.  A manifest naming an arrays file is read from
it; an older manifest without one, from its runs' folders.  A failed run (its failure marker,
:mod:`extspec.io.batch`) stops the reading with the same one line either way.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .batch import arrays_name

__all__ = ["ARRAYS_FORMAT", "arrays_name", "spectrum_as_read", "write_batch_arrays", "read_spectra",
           "read_cube_counts_all", "read_arrays_spectra", "partial_sources", "iter_partials", "PARTIALS_VERSION", "RegionRecord", "read_region_records"]

ARRAYS_FORMAT = "extspec-batch-arrays"
ARRAYS_FORMAT_VERSION = 1
PARTIALS_VERSION = 1
_SPECTRUM_ARRAYS = ("counts", "counts_off", "acceptance", "acceptance_off", "exposure", "edisp", "edisp_weight",
                    "mask_safe")


# ------------------------------------------------------------------------------ write --


def _header_round_trip(cards) -> dict:
    """The header dict the FITS reader gets back for these cards (strings stripped as in a file)."""
    from .fitsread import _parse_header
    from .fitswrite import header_bytes

    return _parse_header(memoryview(header_bytes(cards)), 0)[0]


def spectrum_as_read(ds):
    """``ds`` as :func:`extspec.io.ogip.read_spectrum` returns it after :func:`extspec.io.ogip.write_spectrum`:
    exposure through the ARF's SPECRESP, the safe mask through QUALITY (none when unusable),
    the placeholder OFF acceptance of a run without OFF region, the RMF's zeros, strings and
    meta through FITS cards."""
    from ..geometry import EnergyAxis
    from ..spectrum import SpectrumDataset
    from .ogip import EXT_EXTSPEC, _int32, _meta_cards, _meta_from_header

    nr, nt = ds.energy_reco.nbin, ds.energy_true.nbin
    livetime = float(ds.livetime)
    exposure = np.asarray(ds.exposure, dtype=np.float64)
    specresp = exposure / livetime * 1e4 if livetime > 0 else np.zeros_like(exposure)
    acceptance_off = np.asarray(ds.acceptance_off, dtype=np.float64)
    if not ds.usable and not np.any(acceptance_off > 0):
        acceptance_off = np.zeros(nr)
    matrix = np.asarray(ds.edisp, dtype=np.float64).reshape(nt, nr)
    h = _header_round_trip([("EXPOSURE", livetime), ("ONTIME", float(ds.ontime)), ("REASON", str(ds.reason)),
                            ("ONREGION", str(ds.on_region))])
    meta = _meta_from_header(_header_round_trip(_meta_cards(ds.meta)), Path(EXT_EXTSPEC))
    ra, dec = (float(v) for v in ds.pointing_radec)
    pointing = (ra, dec) if math.isfinite(ra) and math.isfinite(dec) else (np.nan, np.nan)
    return SpectrumDataset(
        obs_id=int(ds.obs_id),
        energy_reco=EnergyAxis(np.asarray(ds.energy_reco.edges, dtype=np.float64)),
        energy_true=EnergyAxis(np.asarray(ds.energy_true.edges, dtype=np.float64)),
        counts=_int32(ds.counts, "ON counts").astype(np.int64),
        counts_off=_int32(ds.counts_off, "OFF counts").astype(np.int64),
        acceptance=np.asarray(ds.acceptance, dtype=np.float64),
        acceptance_off=acceptance_off,
        exposure=specresp * float(h["EXPOSURE"]) / 1e4,
        edisp=np.where(matrix != 0, matrix, 0.0),
        edisp_weight=np.asarray(ds.edisp_weight, dtype=np.float64),
        mask_safe=np.asarray(ds.mask_safe, dtype=bool) & bool(ds.usable),
        livetime=float(h["EXPOSURE"]),
        ontime=float(h["ONTIME"]),
        gti=np.asarray(ds.gti, dtype=np.float64).reshape(-1, 2),
        usable=bool(ds.usable),
        reason=str(h.get("REASON") or ""),
        on_region=str(h.get("ONREGION") or ""),
        off_regions=[str(r) for r in ds.off_regions],
        pointing_radec=pointing,
        meta=meta,
    )


def _create(group, name: str, data, compress: bool = False) -> None:
    group.create_dataset(name, data=data, **({"compression": "gzip", "compression_opts": 4, "shuffle": True}
                                             if compress else {}))


def _json(group, name: str, value) -> None:
    """A JSON document as a byte dataset (an attribute is limited to 64 kB)."""
    _create(group, name, np.frombuffer(json.dumps(value).encode(), np.uint8))


def _unjson(a: dict, name: str):
    return json.loads(a.pop(name).tobytes().decode())


def write_batch_arrays(path, spectra, cubes, partials=None) -> None:
    """The arrays file of a batch (module docstring), atomically.

    ``spectra``: the runs' :class:`~extspec.spectrum.SpectrumDataset` as written to OGIP (converted here with
    :func:`spectrum_as_read`); ``cubes``: their cubes as written to ``cube.h5`` (counts part),
    or none (no ``cubes`` group: the per-run file of spatially resolved spectra, one spectrum
    per sub-region, read by :func:`read_arrays_spectra`).  ``partials``: a function of the
    spectra as read and the cubes returning ``{group: {name: array or JSON-able value}}``, the
    batch's partial sums (``/partials``, keyed by the digest of ``path``'s name).
    """
    import h5py

    from .atomic import atomic_paths

    spectra = [spectrum_as_read(s) for s in spectra]
    parts = partials(spectra, cubes) if partials is not None and spectra else None
    with atomic_paths([Path(path)]) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = ARRAYS_FORMAT
            f.attrs["format_version"] = ARRAYS_FORMAT_VERSION
            if not spectra:
                return
            g = f.create_group("spectra")
            _create(g, "obs_id", np.array([s.obs_id for s in spectra], np.int64))
            _create(g, "energy_reco", np.stack([s.energy_reco.edges for s in spectra]))
            _create(g, "energy_true", np.stack([s.energy_true.edges for s in spectra]))
            for name in _SPECTRUM_ARRAYS:
                _create(g, name, np.stack([getattr(s, name) for s in spectra]))
            for name in ("livetime", "ontime"):
                _create(g, name, np.array([getattr(s, name) for s in spectra], np.float64))
            _create(g, "usable", np.array([s.usable for s in spectra], bool))
            _create(g, "gti", np.concatenate([s.gti for s in spectra]).reshape(-1, 2))
            _create(g, "gti_count", np.array([len(s.gti) for s in spectra], np.int64))
            _json(g, "text", [{"reason": s.reason, "on_region": s.on_region, "off_regions": s.off_regions,
                                           "pointing": list(s.pointing_radec), "meta": s.meta} for s in spectra])
            if parts:
                _write_partials(f, Path(path).name, [s.obs_id for s in spectra], parts)
            if not cubes:  # spatially resolved spectra: the spectra of a run's sub-regions only
                return
            c = f.create_group("cubes")
            _create(c, "obs_id", np.array([int(x.obs_id) for x in cubes], np.int64))
            _create(c, "livetime", np.array([float(x.livetime) for x in cubes], np.float64))
            _create(c, "energy_reco", np.stack([np.asarray(x.energy_reco.edges, np.float64) for x in cubes]))
            _create(c, "counts", np.stack([np.asarray(x.counts, np.int32) for x in cubes]), compress=True)
            has_bkg = np.array([x.background is not None for x in cubes], bool)
            _create(c, "has_background", has_bkg)
            _create(c, "background", np.stack([np.zeros(np.shape(x.counts)) if x.background is None
                                               else np.asarray(x.background, np.float64) for x in cubes]),
                    compress=True)
            _json(c, "geom", [geom_record(x.geom) for x in cubes])


def geom_record(geom) -> dict:
    """A map geometry as JSON (:func:`_geom_of` reads it back)."""
    return {"lon": float(geom.lon), "lat": float(geom.lat), "frame": str(geom.frame), "proj": str(geom.proj),
            "nx": int(geom.npix[0]), "ny": int(geom.npix[1]), "binsz": float(geom.binsz)}


def _geom_of(rec: dict):
    from ..geometry import MapGeom

    return MapGeom(lon=rec["lon"], lat=rec["lat"], frame=rec["frame"], proj=rec["proj"], npix=(rec["nx"], rec["ny"]),
                   binsz=rec["binsz"])


def _name_digest(name: str) -> str:
    """The digest in ``batch-<key>.<digest>.h5`` (the manifest's, of its obs ids)."""
    parts = Path(name).name.split(".")
    return parts[1] if len(parts) >= 3 else ""


def _write_partials(f, name: str, obs_ids, parts: dict) -> None:
    p = f.create_group("partials")
    p.attrs["digest"] = _name_digest(name)
    p.attrs["format_version"] = PARTIALS_VERSION
    _create(p, "obs_ids", np.array([int(o) for o in obs_ids], np.int64))
    for group, items in parts.items():
        if items is None:
            continue
        g = p.create_group(group)
        for key, value in items.items():
            if isinstance(value, np.ndarray):
                _create(g, key, value, compress=value.size > 4096)
            elif isinstance(value, (int, float, str, np.integer, np.floating)):
                g.attrs[key] = value
            else:
                _json(g, key, value)


# ------------------------------------------------------------------------------- read --


def _manifest_sources(path: str):
    """(arrays file or None, run folders, failed run folders) of a manifest."""
    from .batch import manifest_run_dirs, read_manifest

    doc = read_manifest(path)
    root = Path(path).parent
    arrays = doc.get("arrays")
    failed = {int(k) for k in doc.get("failed", {})}
    dirs = manifest_run_dirs(path, doc)
    return (os.fspath(root / arrays) if arrays else None), dirs, [d for o, d in zip(doc["obs_ids"], dirs)
                                                                 if int(o) in failed]


def _open_arrays(path: str):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the batch arrays file ({str(exc).splitlines()[0]})") from None
    if f.attrs.get("format") != ARRAYS_FORMAT or int(f.attrs.get("format_version", 0)) > ARRAYS_FORMAT_VERSION:
        f.close()
        raise FormatError(f"{path}: not a batch arrays file of this extspec ({ARRAYS_FORMAT} "
                          f"version {ARRAYS_FORMAT_VERSION})")
    return f


def _inputs(paths, per_run, from_arrays, group: str) -> list:
    """Every run of ``paths`` (see the module docstring), in order."""
    from .batch import check_reduced, is_manifest

    out = []
    for p in paths:
        p = os.fspath(p)
        if not is_manifest(p):
            check_reduced(p)
            out.append(per_run(p))
            continue
        arrays, dirs, failed = _manifest_sources(p)
        for d in failed:
            check_reduced(d)
        if arrays is None:
            for d in dirs:
                check_reduced(d)
                out.append(per_run(d))
            continue
        with _open_arrays(arrays) as f:
            if group in f:
                try:
                    out += from_arrays(f[group])
                except (KeyError, ValueError, TypeError) as exc:
                    raise FormatError(f"{arrays}: malformed batch arrays file ({exc})") from None
    return out


def _datasets(g, names=None) -> dict:
    """``{name: array}`` of the datasets of group ``g`` (or of ``names``), read through h5py's
    low-level calls (half the time of ``g[name][()]``, whose checks cost ~0.1 ms a dataset: a
    2,000-run analysis reads ~700); the same arrays (tests/test_batch_partials.py)."""
    import h5py

    out = {}
    for name in (g if names is None else names):
        d = h5py.h5d.open(g.id, name.encode())
        dtype = d.dtype
        if dtype.kind not in "biuf" or dtype.metadata or d.shape is None:  # strings, references: h5py's way
            out[name] = g[name][()]
            continue
        a = np.empty(d.shape, dtype)
        if a.size:
            d.read(h5py.h5s.ALL, h5py.h5s.ALL, a)
        out[name] = a[()] if a.ndim == 0 else a  # a scalar as h5py gives it
    return out


def _spectra_from_arrays(g) -> list:
    from ..geometry import EnergyAxis
    from ..spectrum import SpectrumDataset

    a = _datasets(g)
    text = _unjson(a, "text")
    stops = np.cumsum(a["gti_count"])
    gtis = np.split(a["gti"], stops[:-1])
    axes = {}  # one EnergyAxis per distinct edges of the batch, shared by its runs

    def axis(edges):
        key = edges.tobytes()
        if key not in axes:
            axes[key] = EnergyAxis(edges.copy())
        return axes[key]

    out = []
    for i, t in enumerate(text):
        out.append(SpectrumDataset(
            obs_id=int(a["obs_id"][i]), energy_reco=axis(a["energy_reco"][i]), energy_true=axis(a["energy_true"][i]),
            **{name: a[name][i].copy() for name in _SPECTRUM_ARRAYS},
            livetime=float(a["livetime"][i]), ontime=float(a["ontime"][i]), gti=gtis[i].reshape(-1, 2),
            usable=bool(a["usable"][i]), reason=t["reason"], on_region=t["on_region"], off_regions=t["off_regions"],
            pointing_radec=tuple(float(v) for v in t["pointing"]), meta=t["meta"]))
    return out


def _cubes_from_arrays(g) -> list:
    from ..geometry import EnergyAxis
    from .cube_io import CubeCounts

    a = _datasets(g)
    out = []
    for i, geom in enumerate(_unjson(a, "geom")):
        mg = _geom_of(geom)
        out.append(CubeCounts(int(a["obs_id"][i]), mg, EnergyAxis(a["energy_reco"][i].copy()), a["counts"][i],
                              a["background"][i] if a["has_background"][i] else None, float(a["livetime"][i])))
    return out


def read_spectra(paths) -> list:
    """The ON/OFF spectra of run folders, PHA files and batch manifests, in order."""
    from .ogip import read_spectrum

    return _inputs(paths, read_spectrum, _spectra_from_arrays, "spectra")


@dataclass(frozen=True)
class RegionRecord:
    """What the sky pictures draw of a run: its regions (DS9), reco axis and meta (``rad_max``
    of point-like runs), the fields of :class:`~extspec.spectrum.SpectrumDataset` that
    :func:`extspec.spectrum.regions_at_energy` reads."""

    obs_id: int
    energy_reco: object
    on_region: str
    off_regions: list
    meta: dict


def read_region_records(paths) -> list:
    """:class:`RegionRecord` of every run of ``paths`` (as :func:`read_spectra`), in order: from
    an arrays file only its text and reco axes (not every run's spectrum), from the runs' files
    their spectra."""
    from ..geometry import EnergyAxis
    from .ogip import read_spectrum

    def per_run(p):
        s = read_spectrum(p)
        return RegionRecord(int(s.obs_id), s.energy_reco, s.on_region, list(s.off_regions), s.meta)

    def from_arrays(g):
        a = _datasets(g, ("text", "obs_id", "energy_reco"))
        text, ids, edges = _unjson(a, "text"), a["obs_id"], a["energy_reco"]
        return [RegionRecord(int(o), EnergyAxis(e.copy()), t["on_region"], t["off_regions"], t["meta"])
                for o, e, t in zip(ids, edges, text)]

    return _inputs(paths, per_run, from_arrays, "spectra")


def read_cube_counts_all(paths) -> list:
    """``(path, CubeCounts)`` of cube files and batch manifests, in order (``path`` names the
    run's cube file either way, for messages)."""
    from .cube_io import read_cube_counts

    def per_run(p):
        return p, read_cube_counts(p)

    def from_arrays(g):
        return [(os.fspath(Path(g.file.filename).parent / str(c.obs_id) / "cube.h5"), c) for c in _cubes_from_arrays(g)]

    return _inputs(paths, per_run, from_arrays, "cubes")


def partial_sources(paths, group: str) -> list | None:
    """The arrays files whose ``/partials/<group>`` stand for all of ``paths`` (module
    docstring), in order, or None when one input has none (a run folder or PHA file, a manifest
    without arrays file, partials missing or not of this file: another digest or other runs).
    A failed run of a batch stops with its reason, as :func:`read_spectra` does."""
    from .batch import check_reduced, is_manifest

    out = []
    for p in map(os.fspath, paths):
        if not is_manifest(p):
            return None
        arrays, dirs, failed = _manifest_sources(p)
        for d in failed:
            check_reduced(d)
        if arrays is None:
            return None
        with _open_arrays(arrays) as f:
            if "spectra" not in f:
                continue  # no good run: nothing to add
            part = f.get("partials")
            if (part is None or group not in part or part.attrs.get("digest") != _name_digest(arrays)
                    or int(part.attrs.get("format_version", 0)) != PARTIALS_VERSION):
                return None
            for where, g, name in (("/partials", part, "obs_ids"), ("/spectra", f["spectra"], "obs_id")):
                if name not in g:
                    raise FormatError(f"{arrays}: malformed batch arrays file (no {name} in {where})")
            try:
                same_runs = np.array_equal(part["obs_ids"][()], f["spectra"]["obs_id"][()])
            except (KeyError, ValueError, TypeError, OSError) as exc:
                raise FormatError(f"{arrays}: malformed batch arrays file ({_why(exc)})") from None
            if not same_runs:
                return None
        out.append(arrays)
    return out


def _why(exc) -> str:
    """The first line of an exception's message (h5py's are long)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0]


def iter_partials(sources, group: str, names=()):
    """``{name: array or value}`` of ``/partials/<group>`` of each arrays file of
    :func:`partial_sources`, one batch at a time (JSON datasets decoded, attributes as values,
    ``geom`` as a map geometry).  A partial that lacks one of ``names`` (the ones its reader
    uses) or cannot be read (a truncated or edited file) stops with one line naming the file."""
    for arrays in sources:
        with _open_arrays(arrays) as f:
            try:
                g = f["partials"][group]
                out = _datasets(g)
                for name in [k for k, v in out.items() if isinstance(v, np.ndarray) and v.dtype == np.uint8]:
                    out[name] = _unjson(out, name)
                out.update({k: (v.item() if hasattr(v, "item") else v) for k, v in g.attrs.items()})
                missing = [n for n in names if n not in out]
                if missing:
                    raise FormatError(f"{arrays}: malformed partial sums (no {', '.join(missing)} in /partials/{group})")
                if "geom" in out:
                    out["geom"] = _geom_of(out["geom"])
            except (KeyError, ValueError, TypeError, OSError) as exc:
                raise FormatError(f"{arrays}: malformed partial sums ({_why(exc)})") from None
        out["source"] = arrays
        yield out


def read_arrays_spectra(path) -> list:
    """Every spectrum of one arrays file, in order (e.g. a run's sub-regions, written by
    :func:`write_batch_arrays` without cubes); an empty list when it holds none."""
    path = os.fspath(path)
    with _open_arrays(path) as f:
        if "spectra" not in f:
            return []
        try:
            return _spectra_from_arrays(f["spectra"])
        except (KeyError, ValueError, TypeError) as exc:
            raise FormatError(f"{path}: malformed arrays file ({exc})") from None
