"""High-level steps the Snakemake rules call, one function per rule.

Each function takes the (validated, defaults-filled) analysis config as a plain dict plus
input/output paths, does one stage, and writes its outputs atomically.  Nothing here imports
Snakemake.  Heavy modules are imported inside the functions so that a per-observation job
only pays for what it uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..io.atomic import write_atomic

__all__ = [
    "STEP_IMPORTS",
    "import_step",
    "reduce_observation",
    "reduce_batch",
    "read_stack_inputs",
    "stack_counts",
    "write_maps",
    "run_fit",
    "run_flux_points",
    "run_cumulative",
    "write_summary",
    "run_light_curve",
]

_SPECTRA = ("numpy", "numpy.char", "extspec.io.batch", "extspec.io.batch_arrays", "h5py", "extspec.io.fitsread", "extspec.io.ogip", "extspec.io.units", "extspec.spectrum",
            "extspec.geometry", "extspec.sky", "extspec.timebins")
_PLOTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "extspec.plots")
STEP_IMPORTS = {
    "reduce": (*_SPECTRA, "numpy.ma", "numpy.polynomial", "h5py", "extspec.background", "extspec.cube",
               "extspec.io.cube_io",
               "extspec.io.datastore", "extspec.io.fitswrite", "extspec.io.onoff_events", "extspec.reduction",
               "extspec.reflected", "extspec.safe_mask", "extspec.skyregions"),
    "stack": (*_SPECTRA, "h5py", "extspec.io.cube_io", "extspec.io.fitswrite", "extspec.maps", "extspec.stats",
              "extspec.safe_mask", "extspec.skyregions", *_PLOTS),
    "fit": (*_SPECTRA, "yaml", "iminuit", "extspec.background", "extspec.fit", "extspec.io.fitresult",
            "extspec.models", "extspec.ebl", "extspec.io.ebl_table", "extspec.io.xspec_table", "extspec.stacking",
            "extspec.start_values", *_PLOTS),
    "flux_points": (*_SPECTRA, "yaml", "iminuit", "extspec.fit", "extspec.fluxpoints", "extspec.io.ecsv",
                    "extspec.io.fitresult", "extspec.models", "extspec.ebl", "extspec.io.ebl_table",
                    "extspec.io.xspec_table", "extspec.start_values", *_PLOTS),
    "cumulative": (*_SPECTRA, "extspec.io.ecsv", "extspec.stacking", *_PLOTS),
    "light_curve": (*_SPECTRA, "yaml", "iminuit", "h5py", "erfa", "extspec.fit", "extspec.fluxpoints",
                    "extspec.io.ecsv", "extspec.io.fitresult", "extspec.io.onoff_events", "extspec.io.xspec_table",
                    "extspec.io.ebl_table", "extspec.ebl", "extspec.lightcurve", "extspec.models", "extspec.start_values",
                    "extspec.timebins", *_PLOTS),
    "joint_fit": (*_SPECTRA, "yaml", "iminuit", "extspec.fit", "extspec.fluxpoints", "extspec.io.ecsv",
                  "extspec.io.fitresult", "extspec.joint", "extspec.models", "extspec.ebl", "extspec.io.ebl_table",
                  "extspec.io.xspec_table",
                  "extspec.start_values", "extspec.stacking", "extspec.workflow.joint_fit", "extspec.workflow.joint_config", "extspec.workflow.settings", *_PLOTS),
}
"""The modules each step imports (lazily, inside its function).

The command line imports them before a step's clock starts (:func:`import_step`), so that a
job's log tells its start-up time (interpreter and imports) from the step's own time; the
test ``test_step_imports_are_complete`` keeps the lists complete.
"""


def import_step(step: str) -> None:
    """Import the modules of ``step`` (see :data:`STEP_IMPORTS`)."""
    import importlib

    for name in STEP_IMPORTS[step]:
        importlib.import_module(name)


def reduce_observation(reduction: dict, datastore: str | Path, obs_id: int, outdir: str | Path, store=None,
                       onoff_events: bool = False) -> tuple:
    """Reduce one observation: ``cube.h5`` and ``pha/bkg/arf/rmf.fits`` in ``outdir``.

    ``onoff_events``: also write ``onoff_events.h5``, the ON and OFF events behind the
    spectrum with their times (:mod:`extspec.io.onoff_events`; for light curves).

    ``reduction`` is ``stage_config(config, "reduce")`` of the analysis config
    (:func:`extspec.workflow.settings.stage_config`); the chain itself is
    :func:`extspec.reduction.reduce_observation`.  Raises ExtspecError (one-line message
    naming the obs id) on bad input; never leaves a half-written file (every file is written
    to a temporary name, then renamed; the PHA file, written last, marks a complete set).
    ``store``: the data store already opened (a batch job opens it once).  Returns the cube
    and the spectrum as written.
    """
    from ..errors import ExtspecError
    from ..io.cube_io import write_cube
    from ..io.datastore import open_datastore
    from ..io.ogip import write_spectrum
    from ..reduction import reduce_observation as reduce_chain
    from .settings import reduction_settings

    outdir = Path(outdir)
    try:
        settings = reduction_settings(reduction)
        store = open_datastore(datastore) if store is None else store
        obs = store.load(int(obs_id))
        cube, spec, *events = reduce_chain(obs, settings, onoff_events=onoff_events)
    except ExtspecError as exc:
        msg = str(exc)
        raise type(exc)(msg if f"obs {obs_id}" in msg else f"obs {obs_id}: {msg}") from None
    except ValueError as exc:
        raise ExtspecError(f"obs {obs_id}: {exc}") from None
    import logging

    log = logging.getLogger("extspec.reduce")
    if not spec.usable:
        log.warning("obs %s: unusable, kept with an empty background and excluded downstream: %s",
                    obs_id, spec.reason)
    else:
        method = spec.meta.get("background", "reflected")
        where = (f"in {spec.n_off_regions} OFF regions" if method in ("reflected", "wobble") else
                 f"in the {method} OFF area (alpha from the background IRF)")
        if spec.meta.get("background_fallback_from"):
            where += (f", fallback from {spec.meta['background_fallback_from']}: "
                      f"{spec.meta['background_fallback_reason']}")
        log.info("obs %s: %d ON, %d OFF counts %s, %d of %d bins safe", obs_id,
                 int(spec.counts.sum()), int(spec.counts_off.sum()), where,
                 int(spec.mask_safe.sum()), spec.mask_safe.size)
        from ..background import normalisation_check

        for line in normalisation_check([spec])["warnings"]:
            log.warning("%s", line)
    why = f" ({obs.bkg_error})" if obs.bkg_error else ""
    if cube.background is None:
        log.warning("obs %s: no background IRF%s, left out of the excess and significance maps", obs_id, why)
    if obs.bkg is None and "bkg-peak" in settings.safe_mask.methods:
        log.warning("obs %s: no background IRF%s: the bkg-peak threshold is the peak of the OFF counts instead",
                    obs_id, why)
    outdir.mkdir(parents=True, exist_ok=True)
    cube = replace(cube, exposure=None, edisp_kernel=None, edisp_exposure=None)
    write_cube(cube, outdir / "cube.h5")
    if events:
        from ..io.onoff_events import FILE_NAME, write_onoff_events

        write_onoff_events(events[0], outdir / FILE_NAME)
    write_spectrum(spec, outdir)
    return cube, spec


def reduce_batch(reduction: dict, datastore: str | Path, obs_ids, outroot: str | Path, manifest=None,
                 onoff_events: bool = False) -> dict:
    """Reduce several observations in one process: each into ``outroot/<obs_id>/`` exactly as
    :func:`reduce_observation` does (same files, same bytes).

    A run that fails with bad input (ExtspecError) is logged as an error naming its obs id
    and gets the failure marker of :mod:`extspec.io.batch` under its product names; the
    others are reduced all the same.  ``manifest``: the path of the batch's manifest,
    written last, after the batch's arrays file beside it (what the aggregates read,
    :mod:`extspec.io.batch_arrays`).  ``onoff_events``: each run's ``onoff_events.h5`` too (as
    ``extspec reduce --onoff-events``; a failed run's is a marker as well).  Returns
    ``{obs_id: reason}`` of the failed runs.
    """
    import logging

    from ..errors import ExtspecError
    from ..io.datastore import open_datastore
    from ..io.batch import write_failed, write_manifest
    from ..io.onoff_events import FILE_NAME as EVENTS_FILE

    log = logging.getLogger("extspec.reduce")
    store = open_datastore(datastore)
    failed, written = {}, {}
    for obs_id in obs_ids:
        outdir = Path(outroot) / str(int(obs_id))
        try:
            written[int(obs_id)] = reduce_observation(reduction, datastore, int(obs_id), outdir, store=store,
                                                      onoff_events=onoff_events)
        except ExtspecError as exc:
            msg = str(exc).splitlines()[0]
            msg = msg if f"obs {obs_id}" in msg else f"obs {obs_id}: {msg}"
            log.error("%s", msg)
            write_failed(outdir, msg, extra=(EVENTS_FILE,) if onoff_events else ())
            failed[int(obs_id)] = msg
    if manifest is not None:
        from ..io.batch_arrays import arrays_name, write_batch_arrays

        arrays = Path(manifest).parent / arrays_name(Path(manifest).name)
        good = [written[o] for o in sorted(written)]
        write_batch_arrays(arrays, [s for _, s in good], [c for c, _ in good])
        write_manifest(manifest, sorted(int(o) for o in obs_ids), failed, arrays=arrays.name)
    return failed


def read_spectra(spectrum_dirs) -> list:
    """Read the spectra of several observations (directories, pha.fits paths or batch
    manifests: :func:`extspec.io.batch_arrays.read_spectra`); a run whose batch reduction
    failed stops with its reason (:func:`extspec.io.batch.check_reduced`)."""
    from ..io.batch_arrays import read_spectra as read_any

    return list(read_any(list(map(str, spectrum_dirs))))


@dataclass(frozen=True)
class StackInputs:
    """What the counts picture and the maps share, read once: the stacked images
    (:func:`_stacked_images`), the regions drawn on them and a title note (:func:`_drawn_regions`)."""

    images: dict
    regions: dict
    note: str


def read_stack_inputs(config: dict, cube_paths: list, spectrum_dirs: list) -> StackInputs:
    """The :class:`StackInputs` of :func:`stack_counts` and :func:`write_maps`."""
    images = _stacked_images(config, cube_paths)
    regions, note = _drawn_regions(config, spectrum_dirs)
    return StackInputs(images, regions, note)


def _stacked_images(config: dict, cube_paths: list) -> dict:
    """The cubes' counts (and predicted background) summed over the reco-energy bins inside
    ``stacked.energy_range`` ([min, max] TeV, default all bins; a bin is taken when it lies
    entirely inside), one image per observation, with the map geometry and energy cards."""
    import numpy as np

    from ..safe_mask import bins_inside

    erange = (config.get("stacked") or {}).get("energy_range")
    image = None
    obs_ids, per_obs_counts, per_obs_bkg = [], [], []
    from ..io.batch_arrays import read_cube_counts_all

    for p, c in read_cube_counts_all(list(map(str, cube_paths))):
        sel = bins_inside(c.energy_reco.edges, *(erange or (None, None)))
        if not sel.any():
            from ..errors import ExtspecError

            raise ExtspecError(f"stack: config key 'stacked.energy_range' {erange} TeV holds no whole reco-energy "
                               f"bin of {p}")
        img = c.counts[sel].sum(axis=0)
        if image is None:
            image, geom = img.astype(np.int64), c.geom
            e_sel = c.energy_reco.edges[:-1][sel], c.energy_reco.edges[1:][sel]
            first = (p, c)
        else:
            _check_same_grid(first, (p, c))
            image += img
        obs_ids.append(int(c.obs_id))
        per_obs_counts.append(img)
        per_obs_bkg.append(None if c.background is None else c.background[sel].sum(axis=0))
    energy_cards = [
        ("EMIN", float(e_sel[0].min()), "TeV, lower reco energy"),
        ("EMAX", float(e_sel[1].max()), "TeV, upper reco energy"),
    ]
    return {"image": image, "geom": geom, "energy_cards": energy_cards, "obs_ids": obs_ids,
            "counts": per_obs_counts, "background": per_obs_bkg}


def _drawn_regions(config: dict, spectrum_dirs: list) -> tuple[dict, str]:
    """The ON, OFF and exclusion regions drawn on the sky images (keyword arguments of
    :func:`extspec.plots.plot_counts_image`), and a title note for point-like spectra."""
    from ..spectrum import regions_at_energy
    from .settings import setting

    spectra = read_spectra(spectrum_dirs)
    e_draw = float(setting(config, "stacked", "rad_max_energy"))
    drawn = [regions_at_energy(s, e_draw) for s in spectra]
    radii = sorted({round(r, 4) for _, _, r in drawn if r is not None})
    note = ""
    if radii:
        note = (f"\nON/OFF circles: RAD_MAX at {e_draw:g} TeV = "
                f"{', '.join(f'{r:.3f}' for r in radii)} deg (stacked.rad_max_energy)")
    off_regions, off_labels = [d[1] for d in drawn], [f"OFF {s.obs_id}" for s in spectra]
    if len(spectra) > MAX_OFF_SETS_DRAWN:
        off_regions, off_labels = _distinct_off_regions(off_regions, len(spectra))
    regions = dict(
        on_region=drawn[0][0] if drawn else config.get("on_region"),
        off_regions=off_regions,
        off_labels=off_labels,
        exclusion_regions=_exclusion_strings(config),
    )
    return regions, note


def stack_counts(config: dict, cube_paths: list, spectrum_dirs: list, out_fits, out_png,
                 inputs: StackInputs | None = None) -> None:
    """Stack the cubes' counts into ``stacked/counts.fits`` (+ WCS) and draw ``counts.png``.

    The image sums the reco-energy bins inside ``stacked.energy_range`` ([min, max] TeV,
    default all bins); bins are taken when they lie entirely inside the range.  The excess
    and significance maps of the same cubes are a separate step, :func:`write_maps`; both take
    the ``inputs`` read once by :func:`read_stack_inputs` (read here when not given).
    """
    import numpy as np

    from .. import code_identity
    from ..io.fitswrite import image_bytes
    from ..plots import plot_counts_image

    inputs = inputs or read_stack_inputs(config, cube_paths, spectrum_dirs)
    st = inputs.images
    image, geom, obs_ids = st["image"], st["geom"], st["obs_ids"]
    cards = list(geom.header_dict().items())  # the map's WCS (NAXISn checked against the image)
    cards += [
        ("BUNIT", "count", "events per pixel (FITS unit string)"),
        *st["energy_cards"],
        ("NOBS", len(obs_ids)),
        ("OBS_IDS", " ".join(map(str, obs_ids))),
        ("CREATOR", code_identity(), "software and source hash that wrote this file"),
    ]
    write_atomic(out_fits, image_bytes(image.astype(np.int32), cards))
    name = config.get("name", "")
    plot_counts_image(image, geom, out_png, title=f"{name}: counts, {len(obs_ids)} observations{inputs.note}",
                      **inputs.regions)


MAX_OFF_SETS_DRAWN = 12
"""Above this many runs the counts and significance pictures draw the OFF regions as one set."""

MAX_OFF_REGIONS_DRAWN = 200
"""... of at most this many distinct regions (a matplotlib patch costs ~2 ms to draw; one per
run and OFF region made the stack job take 30 ms per run)."""


def _distinct_off_regions(off_regions: list, n_runs: int) -> tuple[list, list]:
    """The OFF regions of many runs as one set: each distinct region once, at most
    :data:`MAX_OFF_REGIONS_DRAWN` (in order of first appearance); with its legend label."""
    seen = list(dict.fromkeys(r for regs in off_regions for r in regs))
    label = f"OFF regions of {n_runs} runs" + (f", {MAX_OFF_REGIONS_DRAWN} of {len(seen)} distinct drawn"
                                               if len(seen) > MAX_OFF_REGIONS_DRAWN else "")
    return [seen[:MAX_OFF_REGIONS_DRAWN]], [label]


def _check_same_grid(first, other) -> None:
    """Refuse to add counts images of runs reduced on different geometries or reco axes (the
    pixels or energy bins would not line up): one line naming both cubes and the difference."""
    import numpy as np

    from ..errors import ExtspecError

    (p0, c0), (p1, c1) = first, other
    h0, h1 = c0.geom.header_dict(), c1.geom.header_dict()
    diff = [f"{k} {h0.get(k)} vs {h1.get(k)}" for k in sorted(set(h0) | set(h1)) if h0.get(k) != h1.get(k)]
    e0, e1 = c0.energy_reco.edges, c1.energy_reco.edges
    if e0.shape != e1.shape or not np.allclose(e0, e1, rtol=1e-9, atol=0):
        diff.append(f"reco-energy axis {e0.size - 1} bins {e0[0]:.4g}-{e0[-1]:.4g} TeV vs "
                    f"{e1.size - 1} bins {e1[0]:.4g}-{e1[-1]:.4g} TeV")
    if diff:
        raise ExtspecError(f"stack: {p1} (obs {c1.obs_id}) was reduced on another grid than {p0} (obs {c0.obs_id}): "
                           f"{'; '.join(diff[:4])}; reduce every run with the same geom and energy_axis")


def write_maps(config: dict, cube_paths: list, spectrum_dirs: list, out_excess, out_significance, out_png,
               inputs: StackInputs | None = None) -> None:
    """Excess and significance maps (FITS + WCS) of :func:`extspec.maps.make_maps` and their
    picture, over the energy bins of :func:`stack_counts`, with the correlation radius
    ``maps.correlation_radius`` (``inputs`` as for :func:`stack_counts`)."""
    import logging

    import numpy as np

    from .. import code_identity
    from ..io.fitswrite import image_bytes
    from ..maps import make_maps
    from ..plots import plot_counts_image
    from ..skyregions import region_pixel_mask
    from .settings import parse_config_regions, setting

    log = logging.getLogger("extspec.maps")
    inputs = inputs or read_stack_inputs(config, cube_paths, spectrum_dirs)
    st = inputs.images
    geom, obs_ids = st["geom"], st["obs_ids"]
    on, excl = parse_config_regions(config)
    norm_mask = ~region_pixel_mask(on, geom)
    for r in excl:
        norm_mask &= ~region_pixel_mask(r, geom)
    radius = float(setting(config, "maps", "correlation_radius"))
    m = make_maps(st["counts"], st["background"], obs_ids, norm_mask, radius / geom.binsz)
    used = [o for o in obs_ids if o not in m.without_background]
    note = ""
    if m.without_background:
        note = f"left out (no background IRF): {' '.join(map(str, m.without_background))}"
        log.warning("maps: %d observation(s) %s", len(m.without_background), note)
    log.info("maps: %d observations, background normalisations %s", len(used),
             ", ".join(f"{o}: {v:.3f}" for o, v in m.norms.items()))
    cards = list(geom.header_dict().items()) + st["energy_cards"] + [
        ("CORRRAD", radius, "deg, correlation radius"),
        ("NORMCNTS", float(m.n_norm), "counts in the background normalisation regions"),
        ("NOBS", len(used)),
        ("OBS_IDS", " ".join(map(str, used))),
        ("NOBKG", " ".join(map(str, m.without_background)), "obs ids without background IRF (left out)"),
        ("CREATOR", code_identity(), "software and source hash that wrote this file"),
    ]
    write_atomic(out_excess, image_bytes(m.excess.astype(np.float32),
                                         cards + [("BUNIT", "count", "correlated excess (FITS unit string)")]))
    write_atomic(out_significance, image_bytes(m.significance.astype(np.float32),
                                               cards + [("BUNIT", "", "Li & Ma significance")]))
    regions = inputs.regions
    title = f"{config.get('name', '')}: significance (r = {radius:g} deg), {len(used)} obs"
    plot_counts_image(m.significance, geom, out_png, smooth_sigma_pix=0, title=title + (f"\n{note}" if note else ""),
                      colorbar_label="Li & Ma significance", cmap="RdBu_r", symmetric=True, **regions)


def _fp_meta(result, n_sigma_ul, extra: dict) -> dict:
    """The metadata of a flux-point table (GADF SED format) of fit ``result``, then ``extra``."""
    return {"SED_TYPE": "likelihood", "UL_CONF": 0.95, "n_sigma_ul": n_sigma_ul, "model": result.model_type,
            "fit_success": bool(result.success), "fit_status": result.status, **extra}


def _write_ecsv(rows: list, units: dict, meta: dict, out) -> None:
    """Write dict rows as an ECSV table with units and metadata, atomically."""
    from .. import code_identity
    from ..io.ecsv import ecsv_text

    write_atomic(out, ecsv_text(rows, units, {**meta, "creator": code_identity()}))


def _exclusion_strings(config) -> list:
    if not config.get("exclusion_regions"):
        return []
    from ..skyregions import parse_regions, region_to_ds9

    return [region_to_ds9(r) for r in parse_regions(config.get("exclusion_regions") or [], "exclusion_regions")]


def _config_hash(config: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fit(config: dict, spectrum_dirs: list, out_yaml, out_png) -> None:
    """Joint WStat fit of ``config['model']`` over the usable observations.

    Writes ``result.yaml`` (model, success, statistic, parameters with errors, covariance,
    obs ids used and excluded with the reason, energy range, versions, config hash, and the
    likelihood-ratio comparisons asked for in ``fit.compare``) and the spectrum plot.  With
    no usable observation at all it writes both (``success: false``, every run under
    ``excluded``), then raises ExtspecError with one line giving every run's reason.
    """
    import numpy as np

    from ..ebl import result_model
    from ..fit import JointData, compare_models, fit_joint, fold, response_matrix
    from ..io.ebl_table import with_ebl_table
    from ..io.fitresult import write_fit_result
    from ..plots import plot_spectrum_fit
    from ..stacking import stack_spectra
    from .settings import fit_options

    spectra = read_spectra(spectrum_dirs)
    opts = fit_options(config)
    data = JointData(spectra)
    model_cfg = with_ebl_table(config["model"])  # the EBL model is handed its table
    result = fit_joint(spectra, model_cfg, opts, data=data)
    for alt in ((config.get("fit") or {}).get("compare", []) or []) if data.datasets else []:
        alt_cfg = {"type": alt} if isinstance(alt, str) else alt
        if model_cfg.get("ebl") and not alt_cfg.get("ebl"):  # the same absorption for the alternative
            alt_cfg = {**alt_cfg, "ebl": model_cfg["ebl"]}
        alt_res = fit_joint(spectra, with_ebl_table(alt_cfg), opts, data=data)
        result.comparisons.append(compare_models(result, alt_res))
    from ..background import background_record

    background = background_record(spectra)
    for line in background.get("normalisation_check", {}).get("warnings", []):
        import logging

        logging.getLogger("extspec.fit").warning("%s", line)
    write_fit_result(result, out_yaml, config_hash=_config_hash(config), name=config.get("name", ""),
                     instrument=_instruments(spectra), background=background)
    usable = data.datasets
    if usable:
        stack = stack_spectra(usable, float32=False)
        model = result_model(result)  # the absorbed model when the fit had an EBL table
        flux = model.integral(data.e_min, data.e_max, **result.values)
        npred = fold(flux, response_matrix(stack.exposure, stack.edisp))
        plot_spectrum_fit(stack.energy_reco.edges, stack.counts, stack.counts_off, stack.alpha, npred,
                          stack.mask_safe, out_png,
                          title=f"{config.get('name', '')}: {result.model_type}, {len(usable)} obs")
    else:
        plot_spectrum_fit(np.array([1.0, 10.0]), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1),
                          np.zeros(1, bool), out_png, title="no usable observation")
        from ..errors import ExtspecError

        reasons = "; ".join(f"obs {k}: {v}" for k, v in data.excluded.items())
        raise ExtspecError(f"fit: no usable observation ({reasons})")
    _check_fit_outcome(result, config.get("name", ""))


def _check_fit_outcome(result, name: str) -> None:
    """After result.yaml is written: a failed fit (or one of nothing) fails the step with one
    line; a poor goodness of fit, and any status of the quality gate but ok, is logged as a warning."""
    import logging

    from ..errors import ExtspecError

    if result.status == "failed":
        raise ExtspecError(f"fit: {result.model_type} fit {'of ' + name + ' ' if name else ''}failed: {result.message}")
    warning = result.goodness_of_fit.get("warning")
    if warning:
        logging.getLogger("extspec.fit").warning("%s", warning)
    verdict = result.quality
    if verdict is not None and not verdict.ok and verdict.reason != warning:  # the quality gate (extspec.quality)
        logging.getLogger("extspec.fit").warning("quality gate: %s (%s)", verdict.status, verdict.reason)


def _instruments(spectra) -> list:
    """Distinct TELESCOP/INSTRUME (and IRF class) of the spectra, from their DL3 files."""
    out = []
    for s in spectra:
        item = {"telescop": str(s.meta.get("TELESCOP", "")), "instrume": str(s.meta.get("INSTRUME", "")),
                "irf_class": str(s.meta.get("irf_class", "full-enclosure"))}
        if item not in out:
            out.append(item)
    return out


def run_flux_points(config: dict, spectrum_dirs: list, fit_yaml, out_ecsv, out_png) -> None:
    """Flux points (GADF SED ECSV) and the SED plot from the best-fit model."""
    from ..fluxpoints import compute_flux_points, sed_columns, sed_models
    from ..io.fitresult import read_fit_result
    from ..plots import plot_sed

    from .settings import fit_options, flux_point_settings

    fp = flux_point_settings(config)
    spectra = read_spectra(spectrum_dirs)
    result = read_fit_result(fit_yaml)
    if not result.success:
        from ..errors import ExtspecError

        raise ExtspecError(f"flux points: the fit in {fit_yaml} did not succeed ({result.message}); "
                           "no flux points from a failed fit")
    rows = compute_flux_points(spectra, result, fp, fit_options(config).integration)
    if result.success and not rows:
        from ..errors import ExtspecError

        raise ExtspecError(
            f"flux points: no group of flux_points.energy_edges {fp.energy_edges} overlaps the "
            f"safe energy range [{result.energy_range[0]:.3g}, {result.energy_range[1]:.3g}] TeV of the fit"
        )
    units, ebl_meta = sed_columns(result)
    _write_ecsv(rows, units, _fp_meta(result, fp.n_sigma_ul, ebl_meta), out_ecsv)
    curves = sed_models(result)  # observed: the absorbed model when the fit had an EBL table
    plot_sed(rows, curves["model_dnde"], result.energy_range, out_png, butterfly=curves["butterfly"],
             title=f"{config.get('name', '')}: {result.model_type}{curves['title_suffix']}",
             intrinsic=curves["intrinsic"])


def run_cumulative(config: dict, spectrum_dirs: list, out_ecsv, out_png) -> None:
    """Cumulative excess/significance table (ECSV) and its plot (§10)."""
    from ..plots import plot_cumulative
    from ..stacking import CUMULATIVE_COLUMNS, cumulative_rows

    spectra = read_spectra(spectrum_dirs)
    from .settings import setting

    float32 = setting(config, "cumulative", "stacking") == "reference"
    rows = cumulative_rows(spectra, float32=float32)
    excluded = {int(s.obs_id): s.reason or "no safe bin" for s in spectra if not (s.usable and s.mask_safe.any())}
    _write_ecsv(rows, CUMULATIVE_COLUMNS,
                {"excluded": excluded, "stacking": "float32 (reference)" if float32 else "float64"}, out_ecsv)
    plot_cumulative(rows, out_png, title=f"{config.get('name', '')}: cumulative")


def run_light_curve(config: dict, spectrum_dirs: list, fit_yaml, out_ecsv, out_png, spectra_ecsv=None,
                    spectra_png=None) -> None:
    """``lightcurve.ecsv`` and ``lightcurve.png`` (and with ``light_curve.spectra`` the
    per-time-bin fits, ``spectra.ecsv``/``spectra.png``) of the reduced observations in
    ``spectrum_dirs`` (:mod:`extspec.lightcurve`, :mod:`extspec.timebins`).  Next to
    ``out_ecsv`` also ``lightcurve_gadf.ecsv``: the same numbers in gammapy's light-curve
    layout (one row per time bin, energy bins as list columns).

    Bins that cut runs read each run's ``onoff_events.h5`` (written by ``extspec reduce
    --onoff-events`` or ``extspec reduce-batch --onoff-events``); ``run`` and ``night`` bins
    need only the OGIP sets.
    """
    import numpy as np

    from ..errors import ExtspecError
    from ..fluxpoints import snap_edges
    from ..io.fitresult import read_fit_result
    from ..lightcurve import GADF_COLUMNS, LIGHTCURVE_UNITS, bin_datasets, gadf_rows, light_curve_rows, spectra_rows
    from ..ebl import result_model
    from ..plots import plot_light_curve, plot_spectra_vs_time
    from ..timebins import RunTimes, make_time_bins
    from .settings import fit_options, light_curve_settings

    lc = light_curve_settings(config)
    result = read_fit_result(fit_yaml)
    if not result.success:
        raise ExtspecError(f"light curve: the joint fit in {fit_yaml} failed ({result.message}): no spectral "
                           "shape to freeze")
    dirs = [Path(d) for d in spectrum_dirs]
    spectra = read_spectra(dirs)
    from ..io.onoff_events import TIME_KEYS

    whole_runs = lc.time_bins in ("run", "night")
    events = [None] * len(spectra) if whole_runs else [_read_events(d) for d in dirs]
    runs = [RunTimes(int(s.obs_id), s.gti if e is None else e.gti,
                     (s.livetime / s.ontime if s.ontime > 0 else 1.0) if e is None else e.deadc,
                     {k: s.meta[k] for k in TIME_KEYS if k in s.meta} if e is None else e.time_ref)
            for s, e in zip(spectra, events)]
    bins = make_time_bins(lc.time_bins, runs, lc.night_boundary_utc)
    if not bins:
        from ..timebins import iso_utc, runs_span

        lo_run, hi_run = runs_span(runs)
        raise ExtspecError(f"light curve: config key 'light_curve.time_bins': no time bin overlaps any of the "
                           f"{len(runs)} run(s), which span {iso_utc(lo_run)} .. {iso_utc(hi_run)} UTC "
                           "(wrong date, or a time not in UTC?)")

    def per_bin():  # one time bin's spectra at a time: memory does not grow with the number of bins
        return ((tb, bin_datasets(tb, spectra, events)) for tb in bins)

    import logging
    import time

    log, t_start = logging.getLogger("extspec.lightcurve"), time.monotonic()

    def progress(done, total):
        if total and total > CHUNK_BINS_LOGGED:
            log.info("light curve: %d of %d time bins fitted (%.1f s)", done, total, time.monotonic() - t_start)
    lo, hi = result.energy_range
    reco = spectra[0].energy_reco.edges if spectra else np.array([lo, hi])
    edges = snap_edges(lc.energy_edges if lc.energy_edges is not None else [lo, hi], reco)
    options = fit_options(config)
    rows, variability = light_curve_rows(_Sized(per_bin(), len(bins)), result, edges, lc.sqrt_ts_threshold_ul,
                                         options.integration, lc.variability_min_counts, progress)
    model = result_model(result)
    ref = {(float(a), float(b)): float(model.integral(np.array([a]), np.array([b]), **result.values)[0])
           for a, b in zip(edges[:-1], edges[1:])}
    used = sorted({int(spectra[w.run].obs_id) for tb in bins for w in tb.windows})
    meta = {
        "SED_TYPE": "flux", "UL_CONF": 0.95, "TIMESYS": "utc", "TIMEUNIT": "d", "MJDREFI": 0, "MJDREFF": 0.0,
        "time_scale": "utc", "time_format": "mjd",
        "flux": "integral flux in [e_min, e_max], the joint-fit shape with its norm fitted per time bin",
        "time_bins": lc.time_bins if isinstance(lc.time_bins, str) else _json_safe(lc.time_bins),
        "sqrt_ts_threshold_ul": lc.sqrt_ts_threshold_ul, "ul_delta_stat": 2.71, "err_delta_stat": 1.0,
        "model": result.model_type, "fit_status": result.status, "obs_ids": used,
        "obs_ids_outside_bins": [int(s.obs_id) for s in spectra if int(s.obs_id) not in used],
        "joint_fit_flux": [ref[k] for k in sorted(ref)],
        "variability_chi2": variability["chi2"], "variability_ndf": variability["ndf"],
        "variability_p_value": variability["p_value"], "variability_per_energy_bin": variability["per_energy_bin"],
        "variability_test": "likelihood ratio of one norm for all time bins against one per group of time "
                            "bins, the groups merging consecutive bins until the constant flux predicts at least "
                            "variability_min_counts ON counts (Wilks' theorem valid); chi2 = W_const - sum W_group, "
                            "ndf = n_groups - 1 per energy bin",
        "variability_min_counts": lc.variability_min_counts,
        "status": "the quality gate per row: ok, not_detected (is_ul: quote flux_ul) or failed",
    }
    counts = [r["counts"] for r in rows if r["success"]]
    median_counts = float(np.median(counts)) if counts else 0.0
    meta["median_counts_per_row"] = median_counts
    if counts and median_counts < lc.variability_min_counts:  # few counts: fluxes are not Gaussian measurements
        meta["warning"] = (f"few counts per time bin (median {median_counts:g} ON counts per row, below "
                           f"light_curve.variability_min_counts = {lc.variability_min_counts:g}): each row's flux "
                           "is the maximum-likelihood value of its bin, not a Gaussian measurement (averaging rows "
                           "is biased); quote flux_ul where status is not_detected, and the constant-flux test "
                           "(which merges bins) for variability")
        log.warning("light curve: %s", meta["warning"])
    _write_ecsv(rows, LIGHTCURVE_UNITS, meta, out_ecsv)
    gadf_units = {"time_min": "", "time_max": "", **{c: LIGHTCURVE_UNITS[c] for c in GADF_COLUMNS}}
    _write_ecsv(gadf_rows(rows), gadf_units, meta, Path(out_ecsv).with_name(GADF_FILE))
    name = config.get("name", "")
    plot_light_curve(rows, out_png, reference_flux=ref, variability=variability,
                     title=f"{name}: light curve, {len(bins)} time bins, {len(used)} runs")
    if spectra_ecsv is None:
        return
    srows, units = spectra_rows(per_bin(), result, options)
    _write_ecsv(srows, units, {"model": result.model_type, "time_scale": "utc", "time_format": "mjd",
                               "stat": "WStat of the fit per time bin",
                               "status": "the quality gate's verdict of each fit (extspec.quality); parameters of "
                                         "a fit whose status is not ok are not measurements"}, spectra_ecsv)
    free = [p for p in result.parameters if not p.frozen]
    shape = next((p for p in free if "amplitude" not in p.name), free[0])
    plot_spectra_vs_time(srows, shape.name, shape.unit, spectra_png, reference=shape.value,
                         title=f"{name}: {result.model_type} per time bin")


CHUNK_BINS_LOGGED = 2048
"""Light curves with more time bins than this log their progress."""


class _Sized:
    """An iterator that knows its length (for progress lines) without holding its items."""

    def __init__(self, items, n: int):
        self._items, self._n = items, n

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return self._n


GADF_FILE = "lightcurve_gadf.ecsv"
"""The light curve in gammapy's layout, written next to ``lightcurve.ecsv``."""


def _json_safe(value):
    """A config value as plain JSON types (for ECSV metadata)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _read_events(obs_dir: Path):
    from ..errors import ExtspecError
    from ..io.batch import check_reduced
    from ..io.onoff_events import FILE_NAME, read_onoff_events

    path = obs_dir / FILE_NAME
    check_reduced(path)
    if not path.is_file():
        raise ExtspecError(f"light curve: {path} is missing: time bins that cut runs need the ON/OFF events of each "
                           "run (`extspec reduce --onoff-events`)")
    return read_onoff_events(path)


def _variability_p_value(analysis_dir: Path) -> float:
    """The constant-flux p-value in an analysis's light-curve metadata (NaN when absent)."""
    from ..io.ecsv import read_ecsv_rows

    try:
        _, meta = read_ecsv_rows(analysis_dir / "lightcurve" / "lightcurve.ecsv")
    except (OSError, ValueError):
        return float("nan")
    value = meta.get("variability_p_value")
    return float(value) if value is not None else float("nan")


def _failure_in_logs(analysis_dir: Path) -> str:
    """The first error a job of one analysis logged (its one-line message), or a generic note."""
    for log in sorted(analysis_dir.glob("logs/**/*.log")):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for ln in lines:
            if " ERROR " in ln:
                return ln.split(": ", 1)[-1].strip()
    return "no fit result (a job failed or did not run)"


def _background_methods(result_yaml) -> str:
    """``fov: 14, reflected: 1``: the runs of each background method (``result.yaml``'s
    ``background.methods``; empty for a result without it)."""
    import yaml

    try:
        d = yaml.safe_load(Path(result_yaml).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    methods = (d.get("background") or {}).get("methods") or {}
    return ", ".join(f"{k}: {v}" for k, v in sorted(methods.items()))


def write_summary(results_dir, analyses: list, out_ecsv, out_html, light_curves=()) -> list:
    """``summary.ecsv`` and ``summary.html``: one row per analysis (:mod:`extspec.summary`).

    Reads ``<results_dir>/<analysis>/fit/result.yaml`` and ``cumulative.ecsv``; an analysis
    without a fit result (a failed job, e.g. under ``--keep-going``) gets a row naming the
    first error in its logs.  With ``light_curves`` (the analyses that have one) the column
    ``variability_p_value`` is added, read from their ``lightcurve/lightcurve.ecsv``.
    Returns the rows.
    """
    from ..io.ecsv import read_ecsv_rows
    from ..io.fitresult import read_fit_result
    from ..io.html import table_html
    from ..summary import SUMMARY_COLUMNS, VARIABILITY_COLUMNS, summary_row

    rows = []
    for name in analyses:
        adir = Path(results_dir) / name
        if not (adir / "fit" / "result.yaml").is_file():
            rows.append(summary_row(name, None, None, _failure_in_logs(adir)))
            continue
        result = read_fit_result(adir / "fit" / "result.yaml")
        try:
            cum, _ = read_ecsv_rows(adir / "cumulative.ecsv")
        except OSError:
            cum = []
        rows.append(summary_row(name, result, cum[-1] if cum else None))
        rows[-1]["background_methods"] = _background_methods(adir / "fit" / "result.yaml")
    columns = dict(SUMMARY_COLUMNS)
    if light_curves:
        columns.update(VARIABILITY_COLUMNS)
        for row in rows:
            row["variability_p_value"] = _variability_p_value(Path(results_dir) / row["analysis"]) \
                if row["analysis"] in light_curves else float("nan")
    failed = [r["analysis"] for r in rows if r["status"] != "ok"]
    from .. import code_identity

    meta = {"failed": failed, "flux_above_1tev": "integral of the best-fit model from 1 to 1e4 TeV",
            "creator": code_identity()}
    _write_ecsv(rows, columns, meta, out_ecsv)
    notes = [f"Not ok: {', '.join(failed)}." if failed else "Every analysis finished.",
             "livetime, counts, background, excess and significance (WStat sqrt(TS)): all usable runs "
             "stacked over their safe energy bins; flux above 1 TeV from the best-fit model with its "
             "1-sigma error by linear propagation of the fit covariance."]
    write_atomic(out_html, table_html("extspec summary", columns, rows, notes,
                                     bad=lambda r: r["status"] != "ok"))
    return rows
