"""The two steps of spatially resolved spectra (config key ``spatial_bins``, :mod:`extspec.resolved`),
registered as the product ``spatial`` (:data:`PRODUCT`, rules in ``workflow/rules/spatial.smk``).

* :func:`reduce_spatial` (rule ``spatial_reduce``, ``extspec spatial-reduce``): one run read
  once, every sub-region reduced as an ON region of its own, into one per-run file
  ``obs/<obs_id>/spatial.h5`` (the arrays-file layout of :mod:`extspec.io.batch_arrays`, one
  spectrum per sub-region in order);
* :func:`run_spatial` (rule ``spatial``, ``extspec spatial``): the per-region fits, upper
  limits and the uniformity test over every run's file, into ``results/<analysis>/spatial/``:
  ``regions.ecsv``, ``maps.png``, ``uniformity.yaml``, for grids ``images.fits``, for annuli
  and sectors ``profile.png``.

This module imports only the standard library at import time.
"""

from __future__ import annotations

from pathlib import Path

from ..product import Product, Step, SummaryColumn

__all__ = ["PRODUCT", "check_spatial_bins", "reduce_spatial", "run_spatial", "spatial_outputs"]

_SPECTRA = ("numpy", "numpy.char", "h5py", "extspec.io.batch", "extspec.io.batch_arrays", "extspec.io.fitsread",
            "extspec.io.ogip", "extspec.io.units", "extspec.spectrum", "extspec.geometry", "extspec.sky",
            "extspec.timebins", "extspec.skyregions", "extspec.cube", "extspec.resolved", "extspec.workflow.settings")
_IMPORTS = {
    "spatial_reduce": (*_SPECTRA, "numpy.ma", "numpy.polynomial", "extspec.background", "extspec.io.datastore",
                       "extspec.reduction", "extspec.reflected", "extspec.safe_mask", "extspec.workflow.basics"),
    "spatial": (*_SPECTRA, "yaml", "iminuit", "extspec.fit", "extspec.fluxpoints", "extspec.io.ecsv",
                "extspec.workflow.outputs",
                "extspec.io.ebl_table", "extspec.io.fitswrite", "extspec.models", "extspec.ebl", "extspec.start_values",
                "extspec.quality", "extspec.norms", "extspec.rootfind", "extspec.stats",
                "matplotlib.figure", "matplotlib.backends.backend_agg", "extspec.plots", "extspec.plots_spatial"),
}
"""The modules each spatial step imports (:attr:`extspec.workflow.product.Step.imports`)."""


def spatial_outputs(kind: str) -> list:
    """The files of ``results/<analysis>/spatial/`` for sub-regions of ``kind``."""
    out = ["regions.ecsv", "uniformity.yaml", "maps.png"]
    if kind == "grid":
        out.append("images.fits")
    if kind in ("annuli", "sectors"):
        out.append("profile.png")
    return out


def _subs(config: dict):
    from ...resolved import sub_regions
    from ...skyregions import parse_region
    from ..settings import cube_settings, spatial_bin_settings

    bins = spatial_bin_settings(config)
    if bins is None:
        from ...errors import ConfigError

        raise ConfigError("spatially resolved spectra: the config has no 'spatial_bins' block")
    geom = cube_settings(config, parse_region(config["on_region"], "on_region")).geom
    return bins, sub_regions(bins, geom), geom


def reduce_spatial(config: dict, datastore, obs_id: int, out) -> int:
    """Reduce every sub-region of one run into ``out`` (``spatial.h5``); returns their number.

    ``config``: ``stage_config(config, "spatial_reduce")``.  Each sub-region's spectrum is
    the one :func:`extspec.reduction.reduce_observation` makes with that sub-region as the
    ON region and the analysis's other reduction settings (background method, exclusions,
    safe mask, map)."""
    from ...errors import ExtspecError
    from ...io.batch_arrays import write_batch_arrays
    from ...io.datastore import open_datastore
    from ...reduction import reduce_regions
    from ..settings import reduction_settings

    _, subs, _ = _subs(config)
    try:
        settings = reduction_settings(config)
        obs = open_datastore(datastore).load(int(obs_id))
        spectra = reduce_regions(obs, settings, [s.region for s in subs])
    except ExtspecError as exc:
        msg = str(exc)
        raise type(exc)(msg if f"obs {obs_id}" in msg else f"obs {obs_id}: {msg}") from None
    except ValueError as exc:
        raise ExtspecError(f"obs {obs_id}: {exc}") from None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_batch_arrays(out, spectra, [])
    return len(spectra)


def _read_runs(paths, n_subs: int) -> list:
    """Per sub-region, the spectra of every run (``paths``: the runs' ``spatial.h5``)."""
    from ...errors import FormatError
    from ...io.batch_arrays import read_arrays_spectra

    per = [[] for _ in range(n_subs)]
    for p in paths:
        spectra = read_arrays_spectra(p)
        if len(spectra) != n_subs:
            raise FormatError(f"{p}: holds {len(spectra)} sub-regions, the config's spatial_bins make {n_subs} "
                              "(made with other spatial_bins: rerun `extspec spatial-reduce`)")
        for k, s in enumerate(spectra):
            per[k].append(s)
    return per


def _images(rows, subs, bins, shape_names, out) -> None:
    """``images.fits`` of a grid: one IMAGE extension per quantity on the grid's TAN WCS
    (:func:`extspec.resolved.grid_images`)."""
    from ... import code_identity
    from ...io.atomic import write_atomic
    from ...io.fitswrite import image_bytes, primary_header_bytes
    from ...resolved import grid_images

    images, wcs = grid_images(rows, subs, bins, shape_names)
    data = primary_header_bytes()
    for ext, (img, col, unit) in images.items():
        note = _IMAGE_NOTES.get(ext.split("_")[0], f"fitted {col} per box, NaN: no measurement")
        cards = [*wcs.items(), ("BUNIT", unit), ("CREATOR", code_identity()), ("COMMENT", note)]
        data += image_bytes(img, cards, extname=ext)
    write_atomic(out, data)


_IMAGE_NOTES = {
    "FLUX": "flux per box in flux_band (regions.ecsv meta); NaN: none, see FLUX_UL",
    "SQRT_TS": "sqrt(TS) per box, the quality gate's detection test (WStat)",
    "SUBREGION": "row id of regions.ecsv per box, -1: no box",
}


def run_spatial(config: dict, spatial_files: list, out_dir) -> dict:
    """The per-region fits and the uniformity test of the runs' ``spatial.h5`` files, written
    to ``out_dir`` (:func:`spatial_outputs`); returns the uniformity test."""
    import logging

    import yaml

    from ... import code_identity
    from ...io.atomic import write_atomic
    from ...plots_spatial import plot_spatial_maps, plot_spatial_profile
    from ...resolved import REGION_UNITS, UNIFORMITY_STATUSES, fit_regions, overlap_warnings, uniformity_test
    from ..settings import fit_options, model_spec, spatial_fit_settings

    log = logging.getLogger("extspec.spatial")
    bins, subs, geom = _subs(config)
    if bins.kind == "regions":
        for line in overlap_warnings(subs):
            log.warning("%s", line)
    per = _read_runs(spatial_files, len(subs))
    model = model_spec(config["model"])
    opts, fit = fit_options(config), spatial_fit_settings(config)
    rows, fits = fit_regions(per, subs, model, opts, fit)
    test = uniformity_test(fits, model, opts)
    from ...fit import model_parameters

    _, params = model_parameters(model)
    free = [(p.name, p.unit) for p in params if not p.frozen]
    units = dict(REGION_UNITS)
    for name, unit in free:
        units[name], units[name + "_err"] = unit, unit
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"name": config.get("name", ""), "kind": bins.kind, "model": model.type,
            "flux": f"integral flux {fit.flux_band[0]:g}-{fit.flux_band[1]:g} TeV of the fitted model, error "
                    "propagated from the covariance; flux_ul (status not_detected): its 95 % upper limit for the "
                    "model's start shape (WStat rising by 2.71 in the norm)",
            "flux_band_tev": list(fit.flux_band),
            "flux_definition": "flux inside each sub-region, no PSF containment (each box's spectrum is reduced "
                               "without model.spatial: a morphology describes the whole source, not a box)",
            "status": "the quality gate's verdict on each sub-region's fit (extspec.quality); reason: why",
            "sqrt_ts": "sqrt(TS), TS = W(no signal) - W(best fit), WStat, the gate's detection test",
            "detection_ts_min": opts.detection_ts_min,
            "solid_angle": "sr; circles exact, other shapes counted on a 0.002 deg grid",
            "background": str(config.get("background", {}).get("method", "")),
            "uniformity_p_value": test["p_value"], "uniformity_dof": test["dof"], "uniformity_ts": test["ts"]}
    from ..outputs import write_ecsv

    write_ecsv(rows, units, meta, out_dir / "regions.ecsv")
    write_atomic(out_dir / "uniformity.yaml", yaml.safe_dump({**test, "creator": code_identity()}, sort_keys=False))
    shape = [n for n, _ in free if n != "amplitude"]
    title = config.get("name", "")
    p_text = "no test" if test["p_value"] is None else f"uniformity p = {test['p_value']:.3g} ({test['dof']} dof)"
    plot_spatial_maps(rows, [s.region for s in subs], shape[0] if shape else None, out_dir / "maps.png",
                      title=f"{title}: {len(subs)} sub-regions, {p_text}")
    if bins.kind == "grid":
        _images(rows, subs, bins, [(n, u) for n, u in free if n != "amplitude"], out_dir / "images.fits")
    if bins.kind in ("annuli", "sectors"):
        plot_spatial_profile(rows, [s.coord for s in subs], "radius (deg)" if bins.kind == "annuli"
                             else "position angle (deg, east of north)", shape[0] if shape else None,
                             out_dir / "profile.png", title=f"{title}: {p_text}")
    n_fit = sum(r["status"] in UNIFORMITY_STATUSES for r in rows)
    log.info("%d sub-regions: %d measured (ok or poor_fit), %d upper limits (not_detected); %s", len(rows), n_fit,
             sum(r["status"] == "not_detected" for r in rows), p_text)
    for r in rows:
        if r["status"] not in ("ok", "not_detected"):
            log.warning("sub-region %d (%s): %s: %s", r["id"], r["label"], r["status"], r["reason"])
    return test


def check_spatial_bins(cfg: dict) -> None:
    """``spatial_bins``: annuli edges and the flux band increasing, a grid with a box inside and boxes no smaller
    than the map's pixels, every sub-region inside the map.  (Overlapping sub-regions are
    allowed: the ``spatial`` step logs them, :func:`extspec.resolved.overlap_warnings`.)"""
    if not cfg.get("spatial_bins"):
        return
    from ...errors import ConfigError
    from ...skyregions import check_region_in_geom
    from ..basics import check_increasing

    ann = cfg["spatial_bins"].get("annuli")
    if ann:
        check_increasing(ann["edges"], "spatial_bins.annuli.edges")
    check_increasing(cfg["spatial_fit"]["flux_band"], "spatial_fit.flux_band")
    _, subs, geom = _subs(cfg)
    for s in subs:
        try:
            check_region_in_geom(s.region, geom, "spatial_bins")
        except ConfigError:
            raise ConfigError(f"config key 'spatial_bins': sub-region {s.id} ({s.label}, {s.region.to_ds9()}) does not "
                              "fit inside the map geometry; enlarge 'geom.width'") from None


# ---------------------------------------------------------------------- registration --


def _reduce_arguments(p) -> None:
    p.add_argument("obs_id", type=int, metavar="OBS_ID")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (obs/<obs_id>/spatial.h5)")


def _reduce_step(settings: dict, args) -> str:
    n = reduce_spatial(settings, args.datastore, args.obs_id, args.out)
    return f"{n} sub-regions reduced into {args.out}"


def _fit_arguments(p) -> None:
    p.add_argument("spatial_files", nargs="+", metavar="SPATIAL_H5", help="the runs' files of `extspec spatial-reduce`")
    p.add_argument("--outdir", required=True, metavar="DIR", help="output folder (<results_dir>/<analysis>/spatial)")


def _fit_step(settings: dict, args) -> str:
    test = run_spatial(settings, args.spatial_files, args.outdir)
    p = test["p_value"]
    return f"{len(args.spatial_files)} runs; uniformity p-value " + ("n/a" if p is None else f"{p:.3g}")


def _uniformity_p_value(path) -> float:
    """``p_value`` of ``spatial/uniformity.yaml`` (NaN when absent)."""
    import yaml

    try:
        value = (yaml.safe_load(Path(path).read_text()) or {}).get("p_value")
    except (OSError, yaml.YAMLError):
        return float("nan")
    return float(value) if value is not None else float("nan")


PRODUCT = Product(
    name="spatial", config_key="spatial_bins", schema_keys=("spatial_bins", "spatial_fit"), needs_dl3=True,
    rule_file="workflow/rules/spatial.smk",
    outputs=lambda cfg: [f"spatial/{n}" for n in spatial_outputs(next(iter(cfg["spatial_bins"])))],
    check=check_spatial_bins,
    summary=(SummaryColumn(name="uniformity_p_value", unit="", file="spatial/uniformity.yaml", read=_uniformity_p_value,
                           description="spatially resolved spectra: p-value of one spectral shape in every measured "
                                       "sub-region (likelihood ratio, Wilks; spatial/uniformity.yaml)"),),
    steps=(
        Step(stage="spatial_reduce", command="spatial-reduce", per_obs=True, imports=_IMPORTS["spatial_reduce"],
             help="reduce every sub-region of spatial_bins in one run",
             description="Read one observation once and reduce every sub-region of the config's spatial_bins as an "
             "ON region of its own (the analysis's background method, exclusions and safe mask) into one HDF5 file "
             "of their spectra.",
             arguments=_reduce_arguments, run=_reduce_step, what=lambda args: f"obs {args.obs_id}"),
        Step(stage="spatial", command="spatial", per_obs=False, imports=_IMPORTS["spatial"],
             help="fits per sub-region and the uniformity test",
             description="Fit the model per sub-region (an upper limit where the signal is not significant), test "
             "one spectral shape for all, and write regions.ecsv, uniformity.yaml, maps.png and, for grids, "
             "images.fits, for annuli and sectors profile.png into OUTDIR.",
             arguments=_fit_arguments, run=_fit_step, what=lambda args: "spatially resolved spectra"),
    ),
)
"""The registration of spatially resolved spectra (:class:`extspec.workflow.product.Product`)."""
