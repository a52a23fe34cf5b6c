"""Per-stage settings: what each workflow step reads of the config, and the typed settings
the algorithms take.

* :data:`STAGE_KEYS`, :func:`stage_config`, :func:`settings_json`, :func:`read_settings`: the
  config keys each step depends on, passed to its job as one line of JSON.
* :func:`setting`: one config value, the schema default where a (partial) config lacks it.
* The builders (:func:`cube_settings`, :func:`reduction_settings`, :func:`fit_options`, ...):
  the small frozen settings dataclasses of the library, made from a config.  They are the
  only code below the command line that turns config keys into algorithm arguments; the
  algorithms themselves hold no defaults (the schema is their only source).

The builders accept partial configs (tests, benchmarks): missing keys take the schema's
defaults through :func:`setting`.  This module imports only the standard library at import
time.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from .schema import schema_default

__all__ = [
    "STAGE_KEYS",
    "stage_config",
    "settings_json",
    "read_settings",
    "setting",
    "energy_axes",
    "cube_settings",
    "background_settings",
    "safe_mask_settings",
    "reduction_settings",
    "spatial_model",
    "model_spec",
    "fit_options",
    "flux_point_settings",
    "light_curve_settings",
    "spatial_bin_settings",
    "spatial_fit_settings",
]

STAGE_KEYS = {
    "reduce": ("on_region", "exclusion_regions", "geom", "energy_axis", "energy_axis_true", "safe_mask", "spectrum",
               "background", "model.spatial"),
    "stack": ("name", "on_region", "exclusion_regions", "geom", "energy_axis", "stacked", "maps"),
    "fit": ("name", "model", "fit"),
    "flux_points": ("name", "fit", "flux_points"),
    "cumulative": ("name", "cumulative"),
    "light_curve": ("name", "fit", "light_curve"),
    "spatial_reduce": ("on_region", "exclusion_regions", "geom", "energy_axis", "energy_axis_true", "safe_mask",
                       "spectrum", "background", "spatial_bins"),
    "spatial": ("name", "on_region", "geom", "background", "model", "fit", "spatial_bins", "spatial_fit"),
}
"""Config keys each workflow stage depends on (its Snakemake ``params``); defined only here.

``reduce`` is the per-observation job: a change to those keys reruns the reductions and
therefore every aggregate through its inputs.  Keeping the aggregates' params this small
means that changing only ``model`` reruns only the fit and the flux points.  A dotted key
(``model.spatial``: the source morphology is part of the exposure) takes one key of a block:
changing ``model.spatial`` reruns the reductions, changing the rest of ``model`` does not.
``spatial_reduce`` is the per-observation job of spatially resolved spectra (the reduction's
keys and the sub-regions): changing ``spatial_bins`` reruns it and ``spatial``, never the
analysis's own reductions; changing ``model`` or ``spatial_fit`` reruns only ``spatial``.
"""


def stage_config(cfg: dict, stage: str) -> dict:
    """The part of ``cfg`` a workflow stage needs (see :data:`~extspec.workflow.settings.STAGE_KEYS`); a dotted key
    ``block.key`` gives ``{block: {key: ...}}`` when the config has it."""
    out: dict = {}
    for k in STAGE_KEYS[stage]:
        block, _, key = k.partition(".")
        if key:
            value = (cfg.get(block) or {}).get(key) if isinstance(cfg.get(block), dict) else None
            if value is not None:
                out.setdefault(block, {})[key] = value
        elif k in cfg:
            out[k] = cfg[k]
    return out


def settings_json(settings: dict) -> str:
    """A step's settings as one line of JSON (keys sorted): the rules' params and the
    ``--settings`` argument of the command line (:func:`read_settings` reads it back)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def read_settings(text_or_path: str) -> dict:
    """A step's settings from JSON text (starting with ``{``) or from a JSON file."""
    text = str(text_or_path)
    what = "--settings"
    if not text.lstrip().startswith("{"):
        what = f"settings file {text}"
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read it ({exc.strerror})") from None
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{what}: expected a JSON object of config keys")
    return settings


def setting(cfg: dict, block: str, key: str | None = None):
    """``cfg[block][key]`` (or ``cfg[block]``), the schema default where it is missing.

    For partial configs (``{"spectrum": {"method": "exact"}}``): the schema is read only for
    a missing key, never for a validated config.
    """
    b = cfg.get(block)
    if key is None:
        return b if block in cfg else schema_default(block)
    if isinstance(b, dict) and key in b:
        return b[key]
    return schema_default(block, key)


# -------------------------------------------------------------------------- builders --


def energy_axes(cfg: dict):
    """The reco- and true-energy axes (:class:`~extspec.geometry.EnergyAxis`) of the blocks
    ``energy_axis`` and ``energy_axis_true``."""
    from ..geometry import make_energy_axis

    return tuple(make_energy_axis(*[setting(cfg, block, k) for k in ("min", "max", "nbins")])
                 for block in ("energy_axis", "energy_axis_true"))


def cube_settings(cfg: dict, on_region):
    """:class:`~extspec.cube.CubeSettings` of the blocks ``geom``, ``energy_axis``,
    ``energy_axis_true`` and ``spectrum``; the map is centred on the ON region unless
    ``geom.center`` is set."""
    from ..cube import CubeSettings
    from ..geometry import MapGeom
    from ..sky import transform_point
    from ..skyregions import region_center

    def geom(key):
        return setting(cfg, "geom", key)

    c = region_center(on_region)
    frame = geom("frame")
    lon, lat = c.lon, c.lat
    if geom("center") is not None:
        lon, lat = geom("center")
    elif c.frame != frame:
        lon, lat = transform_point(float(lon), float(lat), c.frame, frame)
    energy_reco, energy_true = energy_axes(cfg)
    return CubeSettings(
        geom=MapGeom.create(lon, lat, geom("width"), geom("binsz"), frame, geom("proj")),
        energy_reco=energy_reco,
        energy_true=energy_true,
        method=setting(cfg, "spectrum", "method"),
        edisp_binsz=float(geom("edisp_binsz")),
        oversample=int(setting(cfg, "spectrum", "oversample")),
    )


def background_settings(cfg: dict):
    """:class:`~extspec.reflected.BackgroundSettings` of the ``background`` block."""
    from ..reflected import BackgroundSettings

    ring = setting(cfg, "background", "ring")
    return BackgroundSettings(method=setting(cfg, "background", "method"),
                              n_off_regions=int(setting(cfg, "background", "n_off_regions")),
                              fallback=setting(cfg, "background", "fallback"),
                              ring=(float(ring["inner"]), float(ring["outer"])) if ring else None)


def safe_mask_settings(cfg: dict):
    """:class:`~extspec.safe_mask.SafeMaskSettings` of the ``safe_mask`` block."""
    from ..safe_mask import SafeMaskSettings

    def opt(key):
        return setting(cfg, "safe_mask", key)

    return SafeMaskSettings(methods=tuple(opt("methods")), aeff_percent=opt("aeff_percent"),
                            bias_percent=opt("bias_percent"), offset_max=opt("offset_max"))


def parse_config_regions(cfg: dict):
    """``(on_region, [exclusion regions])`` of the config, parsed."""
    from ..skyregions import parse_region, parse_regions

    on = parse_region(cfg.get("on_region"), "on_region")
    excl = parse_regions(cfg.get("exclusion_regions") or [], "exclusion_regions")
    return on, excl


def reduction_settings(cfg: dict):
    """:class:`~extspec.reduction.ReductionSettings` of the ``reduce`` stage's keys (regions parsed)."""
    from ..reduction import ReductionSettings

    on, excl = parse_config_regions(cfg)
    return ReductionSettings(cube=cube_settings(cfg, on), on_region=on, exclusion_regions=tuple(excl),
                             background=background_settings(cfg), safe_mask=safe_mask_settings(cfg),
                             spatial=spatial_model(cfg, on))


def spatial_model(cfg: dict, on_region):
    """:class:`~extspec.containment.SpatialModel` of ``model.spatial`` (None when absent); the
    centre is the ON region's unless ``lon``/``lat`` are given, in ``frame`` (default: the ON
    region's frame); a template's file is read (:func:`extspec.io.sky_image.read_template`)
    and places the source itself."""
    from ..containment import SpatialModel
    from ..sky import transform_point
    from ..skyregions import region_center

    from .basics import model_spatial

    sp = model_spatial(cfg)
    if not sp:
        return None
    if sp["type"] == "template":  # the image places the source: its brightness-weighted centre
        from ..io.sky_image import read_template

        t = read_template(sp["file"])
        lon, lat, _ = t.centre_and_extent()
        return SpatialModel(type="template", lon=lon, lat=lat, frame=t.frame, radius=None, sigma=None,
                            file=str(sp["file"]), template=t)
    c = region_center(on_region)
    frame = sp.get("frame") or c.frame
    if sp.get("lon") is not None and sp.get("lat") is not None:
        lon, lat = float(sp["lon"]), float(sp["lat"])
    else:
        lon, lat = transform_point(float(c.lon), float(c.lat), c.frame, frame) if frame != c.frame else (c.lon, c.lat)
    return SpatialModel(type=sp["type"], lon=float(lon), lat=float(lat), frame=frame,
                        radius=None if sp.get("radius") is None else float(sp["radius"]),
                        sigma=None if sp.get("sigma") is None else float(sp["sigma"]), file=None, template=None)


def model_spec(model):
    """:class:`~extspec.model_spec.ModelSpec` of a validated ``model`` block (or of a model type
    name, as ``fit.compare`` may give one), its EBL table read and handed to it
    (:func:`extspec.io.ebl_table.with_ebl_table`)."""
    from ..io.ebl_table import with_ebl_table
    from ..model_spec import as_model_spec

    return as_model_spec(with_ebl_table(model))


def fit_options(cfg: dict):
    """:class:`~extspec.fit.FitOptions` of the ``fit`` block."""
    from ..fit import FitOptions

    return FitOptions(integration=setting(cfg, "fit", "integration"), covariance=setting(cfg, "fit", "covariance"),
                      minos=bool(setting(cfg, "fit", "minos")),
                      allow_negative_amplitude=bool(setting(cfg, "fit", "allow_negative_amplitude")),
                      detection_ts_min=float(setting(cfg, "fit", "detection_ts_min")))


def flux_point_settings(cfg: dict):
    """:class:`~extspec.fluxpoints.FluxPointSettings` of the ``flux_points`` block."""
    from ..fluxpoints import FluxPointSettings

    return FluxPointSettings(energy_edges=setting(cfg, "flux_points", "energy_edges"),
                             n_sigma_ul=setting(cfg, "flux_points", "n_sigma_ul"))


def light_curve_settings(cfg: dict):
    """:class:`~extspec.lightcurve.LightCurveSettings` of the ``light_curve`` block."""
    from ..lightcurve import LightCurveSettings
    from .schema import read_schema

    block = cfg.get("light_curve") or {}

    def opt(key):  # the block has no schema default of its own (absent: no light curve)
        if key in block:
            return block[key]
        return read_schema()["properties"]["light_curve"]["properties"][key]["default"]

    edges = opt("energy_edges")
    return LightCurveSettings(time_bins=opt("time_bins"), night_boundary_utc=float(opt("night_boundary_utc")),
                              energy_edges=None if edges is None else tuple(edges), spectra=bool(opt("spectra")),
                              sqrt_ts_threshold_ul=float(opt("sqrt_ts_threshold_ul")),
                              variability_min_counts=float(opt("variability_min_counts")))


def spatial_bin_settings(cfg: dict):
    """:class:`~extspec.resolved.SpatialBinSettings` of the ``spatial_bins`` block (None
    when the config has none); the grid, annuli and sectors live in the map's frame, the
    grid anchored at the map's centre (``geom``, ``on_region``)."""
    from ..resolved import SpatialBinSettings
    from ..skyregions import parse_region, parse_regions

    block = cfg.get("spatial_bins")
    if not block:
        return None
    (kind, b), = block.items()
    frame = setting(cfg, "geom", "frame")
    anchor = None
    if kind == "grid":
        g = cube_settings(cfg, parse_region(cfg.get("on_region"), "on_region")).geom
        anchor = (float(g.lon), float(g.lat))
    regions = tuple(parse_regions(b, "spatial_bins.regions")) if kind == "regions" else ()
    return SpatialBinSettings(
        kind=kind, frame=frame,
        size=float(b["size"]) if kind == "grid" else None,
        within=parse_region(b["within"], "spatial_bins.grid.within") if kind == "grid" else None, anchor=anchor,
        center=tuple(float(v) for v in b["center"]) if kind in ("annuli", "sectors") else None,
        edges=tuple(float(v) for v in b["edges"]) if kind == "annuli" else None,
        radius=float(b["radius"]) if kind == "sectors" else None,
        n_sectors=int(b["n"]) if kind == "sectors" else None,
        regions=regions)


def spatial_fit_settings(cfg: dict):
    """:class:`~extspec.resolved.SpatialFitSettings` of the ``spatial_fit`` block."""
    from ..resolved import SpatialFitSettings

    return SpatialFitSettings(flux_band=tuple(float(v) for v in setting(cfg, "spatial_fit", "flux_band")))
