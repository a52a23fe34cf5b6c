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
from .outputs import config_hash as _config_hash, write_ecsv as _write_ecsv

__all__ = [
    "STEP_IMPORTS",
    "reduce_observation",
    "reduce_batch",
    "batch_partials",
    "read_stack_inputs",
    "stack_counts",
    "write_maps",
    "run_fit",
    "run_flux_points",
    "run_cumulative",
    "run_light_curve",
]

_SPECTRA = ("numpy", "numpy.char", "extspec.io.batch", "extspec.io.batch_arrays", "h5py", "extspec.io.fitsread", "extspec.io.ogip", "extspec.io.units", "extspec.spectrum",
            "extspec.geometry", "extspec.sky", "extspec.timebins")
_PLOTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "extspec.figures", "extspec.plots")
STEP_IMPORTS = {
    "reduce": (*_SPECTRA, "numpy.ma", "numpy.polynomial", "numpy.fft", "h5py", "extspec.background", "extspec.cube",
               "extspec.io.cube_io", "extspec.io.datastore", "extspec.io.fitswrite", "extspec.io.onoff_events",
               "extspec.reduction", "extspec.containment", "extspec.reflected", "extspec.safe_mask", "extspec.skyregions",
               "extspec.workflow.basics"),
    "stack": (*_SPECTRA, "h5py", "extspec.io.cube_io", "extspec.io.fitswrite", "extspec.maps", "extspec.stats",
              "extspec.safe_mask", "extspec.skyregions", *_PLOTS),
    "fit": (*_SPECTRA, "yaml", "iminuit", "extspec.background", "extspec.containment", "extspec.fit",
            "extspec.io.fitresult", "extspec.models", "extspec.ebl", "extspec.io.ebl_table", "extspec.io.xspec_table",
            "extspec.stacking", "extspec.start_values", *_PLOTS),
    "flux_points": (*_SPECTRA, "yaml", "extspec.containment", "iminuit", "extspec.fit", "extspec.fluxpoints",
                    "extspec.io.ecsv", "extspec.io.fitresult", "extspec.models", "extspec.ebl", "extspec.io.ebl_table",
                    "extspec.io.xspec_table", "extspec.start_values", *_PLOTS),
    "light_curve": (*_SPECTRA, "yaml", "extspec.containment", "iminuit", "h5py", "erfa", "extspec.fit", "extspec.fluxpoints",
                    "extspec.io.ecsv", "extspec.io.fitresult", "extspec.io.onoff_events", "extspec.io.xspec_table",
                    "extspec.io.ebl_table", "extspec.ebl", "extspec.lightcurve", "extspec.models", "extspec.start_values",
                    "extspec.timebins", *_PLOTS),
    "joint_fit": (*_SPECTRA, "yaml", "extspec.containment", "iminuit", "extspec.fit", "extspec.fluxpoints",
                  "extspec.io.ecsv", "extspec.io.fitresult", "extspec.joint", "extspec.models", "extspec.ebl",
                  "extspec.io.ebl_table", "extspec.io.xspec_table",
                  "extspec.start_values", "extspec.stacking", "extspec.workflow.joint_fit", "extspec.workflow.joint_config", "extspec.workflow.settings", *_PLOTS),
}
"""The modules each core step imports (lazily, inside its function); a registered product's
steps carry theirs (:attr:`extspec.workflow.product.Step.imports`).

The command line imports them before a step's clock starts
(:func:`extspec.workflow.products.import_step`), so that a job's log tells its start-up time
(interpreter and imports) from the step's own time; the test ``test_step_imports_are_complete``
keeps the lists complete.
"""


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
        obs = store.load(int(obs_id), load_psf=True)
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
    from ..containment import containment_warnings

    for line in containment_warnings(obs_id, spec):
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
        write_batch_arrays(arrays, [s for _, s in good], [c for c, _ in good],
                           partials=lambda spectra, cubes: batch_partials(reduction, spectra, cubes))
        write_manifest(manifest, sorted(int(o) for o in obs_ids), failed, arrays=arrays.name)
    return failed


def batch_partials(reduction: dict, spectra, cubes) -> dict:
    """The partial sums a batch job stores in its arrays file (:mod:`extspec.io.batch_arrays`,
    issue 30): what each run adds to the cumulative table (:func:`extspec.stacking.cumulative_increments`)
    and the batch's summed counts cube and sky-map sums (:func:`extspec.maps.stack_partial`) over
    all reco-energy bins (``stacked.energy_range`` null, its default) and the normalisation
    region of the reduction's ON and exclusion regions (the stack step uses them when its own
    key is the same, and reads the runs otherwise)."""
    from ..io.batch_arrays import geom_record
    from ..maps import stack_partial
    from ..safe_mask import bins_inside
    from ..stacking import cumulative_increments

    parts = {"cumulative": {**cumulative_increments(spectra),
                            "excluded": {str(o): why for o, why in _excluded(spectra).items()}}}
    if cubes:
        geom = cubes[0].geom
        stack = stack_partial(cubes, bins_inside(cubes[0].energy_reco.edges), _norm_mask(reduction, geom))
        if stack is not None:
            parts["stack"] = {**stack, "geom": geom_record(geom)}
    return parts


def _norm_mask(config: dict, geom):
    """The sky maps' background normalisation region: the pixels outside the config's ON and
    exclusion regions."""
    from ..skyregions import region_pixel_mask
    from .settings import parse_config_regions

    on, excl = parse_config_regions(config)
    norm_mask = ~region_pixel_mask(on, geom)
    for r in excl:
        norm_mask &= ~region_pixel_mask(r, geom)
    return norm_mask


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
    images = _stacked_images_from_partials(config, cube_paths) or _stacked_images(config, cube_paths)
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


def _stacked_images_from_partials(config: dict, cube_paths: list) -> dict | None:
    """:func:`_stacked_images` from the batches' partial sums (:mod:`extspec.io.batch_arrays`),
    one batch at a time: the counts image (the same integers) and, instead of the runs' images,
    the sky maps' sums (``map_sums``, :func:`extspec.maps.add_map_sums`).  None when an input
    has no partial sums or theirs were summed over other energy bins or another normalisation
    region than this config's (the caller then reads the runs)."""
    from ..io.batch_arrays import iter_partials, partial_sources
    from ..io.cube_io import CubeCounts
    from ..geometry import EnergyAxis
    from ..maps import add_map_sums, map_sums_key, sums_of_partial
    from ..safe_mask import bins_inside

    sources = partial_sources(list(map(str, cube_paths)), "stack")
    if not sources:
        return None
    erange = (config.get("stacked") or {}).get("energy_range")
    image, first, key, obs_ids, parts = None, None, None, [], []
    names = ("obs_ids", "cube_counts", "energy_reco", "geom", "map_counts", "map_background", "n_norm", "norm_obs",
             "norm_values", "without_background", "key")  # maps.stack_partial's
    for part in iter_partials(sources, "stack", names):
        edges = part["energy_reco"]
        sel = bins_inside(edges, *(erange or (None, None)))
        if not sel.any():
            return None  # the runs' path says which file and why
        ids = [int(o) for o in part["obs_ids"]]
        obs_ids += ids
        here = (part["source"], CubeCounts(ids[0], part["geom"], EnergyAxis(edges), part["cube_counts"]))
        if first is None:
            first, geom = here, part["geom"]
            key = map_sums_key(sel, _norm_mask(config, geom))
            e_sel = edges[:-1][sel], edges[1:][sel]
            image = part["cube_counts"][sel].sum(axis=0)
        else:
            _check_same_grid(first, here)
            image += part["cube_counts"][sel].sum(axis=0)
        if part["key"] != key:
            return None
        parts.append(sums_of_partial(part))
        parts = [add_map_sums(parts)]  # running sum: one partial held at a time
    energy_cards = [
        ("EMIN", float(e_sel[0].min()), "TeV, lower reco energy"),
        ("EMAX", float(e_sel[1].max()), "TeV, upper reco energy"),
    ]
    return {"image": image, "geom": geom, "energy_cards": energy_cards, "obs_ids": obs_ids,
            "map_sums": parts[0]}


def _drawn_regions(config: dict, spectrum_dirs: list) -> tuple[dict, str]:
    """The ON, OFF and exclusion regions drawn on the sky images (keyword arguments of
    :func:`extspec.plots.plot_counts_image`), and a title note for point-like spectra."""
    from ..io.batch_arrays import read_region_records
    from ..spectrum import regions_at_energy
    from .settings import setting

    spectra = read_region_records(list(map(str, spectrum_dirs)))  # regions only, not every run's spectrum
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
    from ..maps import make_maps, maps_from_sums
    from ..plots import plot_counts_image
    from .settings import setting

    log = logging.getLogger("extspec.maps")
    inputs = inputs or read_stack_inputs(config, cube_paths, spectrum_dirs)
    st = inputs.images
    geom, obs_ids = st["geom"], st["obs_ids"]
    radius = float(setting(config, "maps", "correlation_radius"))
    if "map_sums" in st:  # the batches' partial sums, over this config's bins and normalisation region
        m = maps_from_sums(st["map_sums"], radius / geom.binsz)
    else:
        m = make_maps(st["counts"], st["background"], obs_ids, _norm_mask(config, geom), radius / geom.binsz)
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


def _exclusion_strings(config) -> list:
    if not config.get("exclusion_regions"):
        return []
    from ..skyregions import parse_regions, region_to_ds9

    return [region_to_ds9(r) for r in parse_regions(config.get("exclusion_regions") or [], "exclusion_regions")]


def run_fit(config: dict, spectrum_dirs: list, out_yaml, out_png) -> None:
    """Joint WStat fit of ``config['model']`` over the usable observations.

    Writes ``result.yaml`` (model, success, statistic, parameters with errors, covariance,
    obs ids used and excluded with the reason, energy range, versions, config hash, and the
    likelihood-ratio comparisons asked for in ``fit.compare``) and the spectrum plot.  With
    no usable observation at all it writes both (``success: false``, every run under
    ``excluded``), then raises ExtspecError with one line giving every run's reason.
    """
    from ..containment import flux_definition, short_flux_definition
    from ..ebl import result_model
    from ..fit import JointData, fit_with_comparisons, instrument_records
    from ..io.fitresult import write_fit_result
    from ..plots import plot_spectrum_fit
    from ..stacking import spectrum_plot_arrays
    from .settings import fit_options, model_spec

    spectra = read_spectra(spectrum_dirs)
    opts = fit_options(config)
    data = JointData(spectra)
    compare = (config.get("fit") or {}).get("compare", []) or []
    # every model is handed its EBL table (an alternative without its own takes the model's)
    result = fit_with_comparisons(spectra, model_spec(config["model"]), [model_spec(a) for a in compare],
                                  opts, data=data)
    from ..background import background_record

    from ..containment import flux_meaning_record

    background = background_record(spectra)
    flux_meaning, meaning_warnings = flux_meaning_record(spectra)
    for line in [*background.get("normalisation_check", {}).get("warnings", []), *meaning_warnings]:
        import logging

        logging.getLogger("extspec.fit").warning("%s", line)
    write_fit_result(result, out_yaml, config_hash=_config_hash(config), name=config.get("name", ""),
                     instrument=instrument_records(spectra), background=background, **flux_meaning)
    usable = data.datasets
    if usable:
        flux = result_model(result).integral(data.e_min, data.e_max, **result.values)  # absorbed with an EBL table
        plot_spectrum_fit(*spectrum_plot_arrays(usable, flux), out_png,
                          title=f"{config.get('name', '')}: {result.model_type}, {len(usable)} obs\n"
                                f"{short_flux_definition(flux_definition(spectra))}")
    else:
        plot_spectrum_fit(*spectrum_plot_arrays([], None), out_png, title="no usable observation")
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


def run_flux_points(config: dict, spectrum_dirs: list, fit_yaml, out_ecsv, out_png) -> None:
    """Flux points (GADF SED ECSV) and the SED plot from the best-fit model."""
    from ..fluxpoints import compute_flux_points, sed_columns, sed_meta, sed_models
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
    from ..containment import flux_definition, short_flux_definition

    meaning = flux_definition(spectra)
    _write_ecsv(rows, units, sed_meta(result, fp.n_sigma_ul, {**ebl_meta, "flux_definition": meaning}), out_ecsv)
    curves = sed_models(result)  # observed: the absorbed model when the fit had an EBL table
    plot_sed(rows, curves["model_dnde"], result.energy_range, out_png, butterfly=curves["butterfly"],
             title=f"{config.get('name', '')}: {result.model_type}{curves['title_suffix']}\n{short_flux_definition(meaning)}",
             intrinsic=curves["intrinsic"])


def _excluded(spectra) -> dict:
    """{obs_id: why} of the runs the cumulative table leaves out (unusable, or no safe bin)."""
    return {int(s.obs_id): s.reason or "no safe bin" for s in spectra if not (s.usable and s.mask_safe.any())}


def run_cumulative(config: dict, spectrum_dirs: list, out_ecsv, out_png) -> None:
    """Cumulative excess/significance table (ECSV) and its plot (§10)."""
    from ..io.batch_arrays import iter_partials, partial_sources
    from ..plots import plot_cumulative
    from ..stacking import (CUMULATIVE_COLUMNS, CUMULATIVE_INCREMENT_NAMES, cumulative_rows,
                            cumulative_rows_from_increments)
    from .settings import setting

    float32 = setting(config, "cumulative", "stacking") == "reference"
    sources = None if float32 else partial_sources(list(map(str, spectrum_dirs)), "cumulative")
    if sources:  # the batches' partial sums, one batch at a time (the same rows as from the runs)
        excluded = {}

        def batches():
            for part in iter_partials(sources, "cumulative", (*CUMULATIVE_INCREMENT_NAMES, "excluded")):
                excluded.update({int(k): v for k, v in part["excluded"].items()})
                yield part

        rows = cumulative_rows_from_increments(batches())
    else:
        spectra = read_spectra(spectrum_dirs)
        rows = cumulative_rows(spectra, float32=float32)
        excluded = _excluded(spectra)
    _write_ecsv(rows, CUMULATIVE_COLUMNS,
                {"excluded": excluded, "stacking": "float32 (reference)" if float32 else "float64"}, out_ecsv)
    plot_cumulative(rows, out_png, title=f"{config.get('name', '')}: cumulative")


def run_light_curve(config: dict, spectrum_dirs: list, fit_yaml, out_ecsv, out_png, spectra_ecsv=None,
                    spectra_png=None) -> None:
    """``lightcurve.ecsv`` and ``lightcurve.png`` (and with ``light_curve.spectra`` the
    per-time-bin fits, ``spectra.ecsv``/``spectra.png``) of the reduced observations in
    ``spectrum_dirs`` (:func:`extspec.lightcurve.light_curve`, :mod:`extspec.timebins`).  Next to
    ``out_ecsv`` also ``lightcurve_gadf.ecsv``: the same numbers in gammapy's light-curve
    layout (one row per time bin, energy bins as list columns).

    Bins that cut runs read each run's ``onoff_events.h5`` (written by ``extspec reduce
    --onoff-events`` or ``extspec reduce-batch --onoff-events``); ``run`` and ``night`` bins
    need only the OGIP sets.
    """
    import logging
    import time

    from ..containment import short_flux_definition
    from ..errors import ExtspecError
    from ..io.fitresult import read_fit_result
    from ..lightcurve import GADF_COLUMNS, LIGHTCURVE_UNITS, gadf_rows, light_curve, time_bin_spectra
    from ..plots import plot_light_curve, plot_spectra_vs_time
    from .settings import fit_options, light_curve_settings

    lc = light_curve_settings(config)
    result = read_fit_result(fit_yaml)
    if not result.success:
        raise ExtspecError(f"light curve: the joint fit in {fit_yaml} failed ({result.message}): no spectral "
                           "shape to freeze")
    dirs = [Path(d) for d in spectrum_dirs]
    spectra = read_spectra(dirs)
    whole_runs = lc.time_bins in ("run", "night")
    events = [None] * len(spectra) if whole_runs else [_read_events(d) for d in dirs]
    log, t_start = logging.getLogger("extspec.lightcurve"), time.monotonic()

    def progress(done, total):
        if total and total > CHUNK_BINS_LOGGED:
            log.info("light curve: %d of %d time bins fitted (%.1f s)", done, total, time.monotonic() - t_start)
    options = fit_options(config)
    curve = light_curve(spectra, events, result, lc, options.integration, progress)
    rows, meta = curve.rows, curve.meta
    if "warning" in meta:
        log.warning("light curve: %s", meta["warning"])
    _write_ecsv(rows, LIGHTCURVE_UNITS, meta, out_ecsv)
    gadf_units = {"time_min": "", "time_max": "", **{c: LIGHTCURVE_UNITS[c] for c in GADF_COLUMNS}}
    _write_ecsv(gadf_rows(rows), gadf_units, meta, Path(out_ecsv).with_name(GADF_FILE))
    name = config.get("name", "")
    plot_light_curve(rows, out_png, reference_flux=curve.reference_flux, variability=curve.variability,
                     title=f"{name}: light curve, {len(curve.bins)} time bins, {len(curve.obs_ids)} runs\n"
                           f"{short_flux_definition(meta['flux_definition'])}")
    if spectra_ecsv is None:
        return
    srows, units = time_bin_spectra(curve, spectra, events, result, options)
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


GADF_FILE = "lightcurve_gadf.ecsv"
"""The light curve in gammapy's layout, written next to ``lightcurve.ecsv``."""


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
