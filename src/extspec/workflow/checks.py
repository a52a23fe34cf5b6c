"""Science checks of one analysis config: what a schema cannot express.

:func:`validate_config` runs the schema (:func:`~extspec.workflow.schema.load_config`) and
then checks that the axes are in order and the true axis covers the reco axis
(:data:`extspec.cube.TRUE_AXIS_MARGIN`), that the regions parse and the ON region fits in the
map geometry, the dispersion grid, a stacked range, flux-point and light-curve energy edges
that leave something to compute, light-curve time bins that parse and are in order, model
parameter names, each registered product's own check (:mod:`extspec.workflow.products`), and
-- with ``check_datastore`` -- the data-store checks of :mod:`extspec.workflow.store_checks`.  Every problem raises
:class:`~extspec.errors.ConfigError` with one line naming the config key.

This module imports only the standard library at import time.
"""

from __future__ import annotations

from ..errors import ConfigError, DataStoreError
from .basics import check_increasing, check_model, has_dl3
from .schema import load_config

__all__ = ["validate_config", "check_regions"]


def _check_axis(cfg, key):
    ax = cfg[key]
    if not ax["min"] < ax["max"]:
        raise ConfigError(f"config key '{key}': min ({ax['min']}) must be below max ({ax['max']})")


def _check_spatial(cfg, dl3: bool) -> None:
    """``model.spatial``: the size key its type needs and no other, lon and lat together, an
    extraction that applies it (``exact``), and DL3 runs to apply it to."""
    sp = cfg["model"].get("spatial")
    if not sp:
        return
    kind = sp["type"]
    need = {"disk": "radius", "gauss": "sigma", "template": "file"}.get(kind)
    if need and sp.get(need) is None:
        raise ConfigError(f"config key 'model.spatial.{need}' is missing: a {kind} needs it"
                          + (" (deg)" if need != "file" else " (a FITS image)"))
    for extra in ("radius", "sigma", "file"):
        if extra != need and sp.get(extra) is not None:
            raise ConfigError(f"config key 'model.spatial.{extra}': not a parameter of type {kind}")
    if kind == "template":
        if any(sp.get(k) is not None for k in ("lon", "lat", "frame")):
            raise ConfigError("config key 'model.spatial': a template is placed by its image's WCS; "
                              "leave out lon, lat and frame")
        from ..errors import FormatError
        from ..io.sky_image import read_template

        try:
            read_template(sp["file"])
        except FormatError as exc:
            raise ConfigError(f"config key 'model.spatial.file': {exc}") from None
    if (sp.get("lon") is None) != (sp.get("lat") is None):
        raise ConfigError("config key 'model.spatial': give both lon and lat (or neither: the ON-region centre)")
    if cfg["spectrum"]["method"] == "reference":
        raise ConfigError("config key 'model.spatial': spectrum.method 'reference' reproduces the flux inside the "
                          "ON region only; use spectrum.method: exact for the source's flux")
    if cfg["external_spectra"] or not dl3:
        raise ConfigError("config key 'model.spatial': applies to the reductions of DL3 runs; external_spectra "
                          "bring their own exposure (leave model.spatial out)")


def _check_true_axis(cfg) -> None:
    """The true-energy axis covers the reco axis with :data:`extspec.cube.TRUE_AXIS_MARGIN`."""
    from ..cube import TRUE_AXIS_MARGIN

    r, t = cfg["energy_axis"], cfg["energy_axis_true"]
    lo, hi = r["min"] / TRUE_AXIS_MARGIN, r["max"] * TRUE_AXIS_MARGIN
    if t["min"] > lo * (1 + 1e-9) or t["max"] < hi * (1 - 1e-9):
        raise ConfigError(
            f"config key 'energy_axis_true': [{t['min']:g}, {t['max']:g}] TeV does not cover the reco axis "
            f"[{r['min']:g}, {r['max']:g}] TeV with the margin of {TRUE_AXIS_MARGIN:g}x; it must span at least "
            f"[{lo:.4g}, {hi:.4g}] TeV (events migrate from true energies outside the reco range)"
        )


def _reco_edges(cfg):
    from ..geometry import make_energy_axis

    ax = cfg["energy_axis"]
    return make_energy_axis(ax["min"], ax["max"], ax["nbins"]).edges


def _check_stacked_range(cfg) -> None:
    """``stacked.energy_range`` holds at least one whole reco-energy bin."""
    from ..safe_mask import bins_inside

    er = cfg["stacked"]["energy_range"]
    if er is None:
        return
    if not er[0] < er[1]:
        raise ConfigError(f"config key 'stacked.energy_range': min must be below max, got {er}")
    edges = _reco_edges(cfg)
    if not bins_inside(edges, *er).any():
        raise ConfigError(
            f"config key 'stacked.energy_range': [{er[0]:g}, {er[1]:g}] TeV holds no whole bin of the reco "
            f"energy axis (edges {', '.join(f'{e:.3g}' for e in edges)} TeV)"
        )


def _check_flux_point_edges(cfg, block: str = "flux_points", what: str = "flux point") -> None:
    """``<block>.energy_edges`` increase and, snapped to reco edges, make at least one group."""
    from ..fluxpoints import snap_edges

    fe = cfg[block]["energy_edges"]  # increasing: checked by validate_config
    if fe is None:
        return
    edges = _reco_edges(cfg)
    if len(snap_edges(fe, edges)) < 2:
        raise ConfigError(
            f"config key '{block}.energy_edges': {fe} TeV lie outside the reco energy axis "
            f"[{edges[0]:.3g}, {edges[-1]:.3g}] TeV or within one of its bins: no {what} would remain"
        )


MAX_TIME_BINS = 100_000
"""More light-curve time bins than this are refused (a typo in width_s)."""


def _check_light_curve(cfg) -> None:
    """``light_curve``: runs to bin, energy edges, and time bins that parse and are ordered."""
    lc = cfg.get("light_curve")
    if lc is None:
        return
    if not has_dl3(cfg):
        raise ConfigError("config key 'light_curve': needs observations reduced from DL3 (obs_ids or obs_cone); "
                          "external spectra carry no event times")
    check_increasing(lc["energy_edges"], "light_curve.energy_edges")
    _check_flux_point_edges(cfg, "light_curve", "light-curve energy bin")
    tb = lc["time_bins"]
    if isinstance(tb, str):
        return
    from ..timebins import SECONDS_PER_DAY, parse_utc

    def mjd(text, key):
        try:
            return parse_utc(text)
        except ValueError:
            raise ConfigError(f"config key 'light_curve.time_bins{key}': {text!r} is not an ISO 8601 UTC time "
                              "(e.g. 2006-07-29T20:00:00)") from None

    if isinstance(tb, dict):
        start, stop = mjd(tb["start"], ".start"), mjd(tb["stop"], ".stop")
        if not start < stop:
            raise ConfigError(f"config key 'light_curve.time_bins': start {tb['start']} is not before stop {tb['stop']}")
        n = (stop - start) * SECONDS_PER_DAY / tb["width_s"]
        if n > MAX_TIME_BINS:
            raise ConfigError(f"config key 'light_curve.time_bins.width_s': {tb['width_s']:g} s makes {n:.0f} bins "
                              f"(more than {MAX_TIME_BINS})")
        return
    previous = None
    for i, (a, b) in enumerate(tb):
        lo, hi = mjd(a, f"[{i}][0]"), mjd(b, f"[{i}][1]")
        if not lo < hi:
            raise ConfigError(f"config key 'light_curve.time_bins[{i}]': start {a} is not before stop {b}")
        if previous is not None and lo < previous:
            raise ConfigError(f"config key 'light_curve.time_bins[{i}]': starts at {a}, before the end of the "
                              "previous bin (bins must be in time order and must not overlap)")
        previous = hi


def check_regions(cfg: dict) -> None:
    """Parse ``on_region`` and ``exclusion_regions``; the ON region must fit in the geometry."""
    from ..skyregions import check_region_in_geom, parse_region, parse_regions
    from .settings import cube_settings

    on = parse_region(cfg["on_region"], "on_region")
    parse_regions(list(cfg.get("exclusion_regions") or []), "exclusion_regions")
    _check_background_region(cfg, on)
    try:
        settings = cube_settings(cfg, on)
    except ValueError as exc:
        raise ConfigError(f"config key 'geom': {str(exc).splitlines()[0]}") from None
    _check_edisp_grid(cfg, settings)
    from .preflight import check_map_memory

    check_map_memory(settings)
    try:
        check_region_in_geom(on, settings.geom, "on_region")
    except ConfigError as exc:
        g, want = settings.geom, cfg["geom"]["width"]
        if all(abs(a - b) <= 1e-9 * b for a, b in zip(g.width, want)):
            raise
        if _fits(on, _geom_with_width(settings.geom, want)):
            raise ConfigError(
                f"config key 'geom.binsz': {g.binsz:g} deg does not divide geom.width {want}: the map has "
                f"{g.npix[0]} x {g.npix[1]} pixels, {g.width[0]:.4g} x {g.width[1]:.4g} deg (whole pixels), and "
                f"on_region does not fit in that; choose a binsz that divides the width"
            ) from None
        raise exc from None


def _geom_with_width(geom, width):
    """``geom`` with enough pixels to cover ``width`` (deg per axis) at its pixel size."""
    from dataclasses import replace

    import numpy as np

    return replace(geom, npix=tuple(int(np.ceil(w / geom.binsz - 1e-9)) for w in width))


def _fits(region, geom) -> bool:
    from ..skyregions import check_region_in_geom

    try:
        check_region_in_geom(region, geom, "on_region")
    except ConfigError:
        return False
    return True


def _check_edisp_grid(cfg, settings) -> None:
    """The energy-dispersion grid (``geom.edisp_binsz``) has at least one pixel per axis."""
    g = settings.edisp_geom
    if min(g.npix) < 1:
        w = settings.geom.width
        raise ConfigError(
            f"config key 'geom.edisp_binsz': {settings.edisp_binsz:g} deg is too large for the map "
            f"({w[0]:.4g} x {w[1]:.4g} deg): the dispersion grid (round(width / edisp_binsz) pixels) would "
            f"be empty; use at most {min(w):.4g}"
        )


def _check_background(cfg: dict) -> None:
    """The ``background`` block: a fallback other than the method, ring radii with a ring
    method (and only then), inner < outer."""
    b = cfg.get("background") or {}
    method, fallback, ring = b.get("method", "reflected"), b.get("fallback"), b.get("ring")
    if fallback is not None and fallback == method:
        raise ConfigError(f"config key 'background.fallback': '{fallback}' is the method itself (give another "
                          "method, or null)")
    uses_ring = "ring" in (method, fallback)
    if uses_ring and ring is None:
        raise ConfigError("config key 'background.ring': the ring background needs its radii, e.g. "
                          "ring: {inner: 0.7, outer: 1.0} (deg from the ON-region centre)")
    if ring is not None and not uses_ring:
        raise ConfigError(f"config key 'background.ring': given, but neither background.method ('{method}') nor "
                          "background.fallback is ring (remove it, or set method: ring)")
    if ring is not None and not ring["inner"] < ring["outer"]:
        raise ConfigError(f"config key 'background.ring': inner ({ring['inner']}) must be smaller than outer "
                          f"({ring['outer']})")


def _check_background_region(cfg: dict, on) -> None:
    """fov and ring with the ON region: not a point (point-like IRFs), a ring reaching beyond it."""
    from ..skyregions import CircleSky, PointSky

    b = cfg.get("background") or {}
    used = [m for m in (b.get("method"), b.get("fallback")) if m in ("fov", "ring")]
    if used and isinstance(on, PointSky):
        raise ConfigError(f"config key 'background.method': {used[0]} needs a background IRF and full-enclosure IRFs; "
                          "a point ON region (point-like IRFs) has neither: use reflected or wobble")
    ring = b.get("ring")
    if ring and isinstance(on, CircleSky) and ring["outer"] <= on.radius:
        raise ConfigError(f"config key 'background.ring': outer radius {ring['outer']} deg lies inside the ON circle "
                          f"(radius {on.radius:g} deg): the ring has no OFF area")


def validate_config(cfg, check_datastore: bool = True, schema=None) -> dict:
    """Validate a config completely and return it with defaults filled in.

    Parameters
    ----------
    cfg : dict or path
        The configuration (a dict as read from YAML, or a path to the YAML file).
    check_datastore : bool
        Also resolve the data store (:func:`extspec.io.datastore.resolve_datastore_path`)
        and check that it holds every selected observation.
    schema : path or dict, optional
        The JSON schema (default: the packaged copy).

    Raises
    ------
    ConfigError
        With one line naming the offending key.
    """
    cfg = load_config(cfg, schema)
    _check_axis(cfg, "energy_axis")
    _check_axis(cfg, "energy_axis_true")
    dl3 = has_dl3(cfg)
    if not dl3 and not cfg["external_spectra"]:
        raise ConfigError("config key 'obs_ids': no observations selected (give obs_ids, obs_cone "
                          "and/or external_spectra)")
    if dl3 and not cfg.get("on_region"):
        raise ConfigError("config key 'on_region' is missing (it is required when obs_ids or obs_cone "
                          "select observations)")
    check_increasing(cfg["flux_points"]["energy_edges"], "flux_points.energy_edges")
    if dl3:  # the axes of the reductions (external spectra bring their own)
        _check_true_axis(cfg)
        _check_stacked_range(cfg)
        _check_flux_point_edges(cfg)
    _check_light_curve(cfg)
    _check_background(cfg)
    negative = cfg["fit"]["allow_negative_amplitude"]
    check_model(cfg["model"], "model", negative)
    _check_spatial(cfg, dl3)
    for i, alt in enumerate(cfg["fit"]["compare"]):
        check_model(alt, f"fit.compare[{i}]", negative)
    if dl3 and cfg["model"].get("ebl"):
        from ..io.ebl_table import read_ebl_table

        t = cfg["energy_axis_true"]
        read_ebl_table(cfg["model"]["ebl"]["table"]).check_energies(t["min"], t["max"], "true-energy axis",
                                                                     "energy_axis_true")
    if not dl3:  # only external spectra: no data store, regions or reduction
        return cfg
    check_regions(cfg)
    from .products import check_products

    check_products(cfg)  # each registered product's own checks (e.g. spatial_bins)
    if check_datastore:
        from ..io.datastore import open_datastore, resolve_datastore_path

        try:
            store = open_datastore(resolve_datastore_path(cfg["datastore"]))
        except DataStoreError as exc:
            raise ConfigError(f"config key 'datastore': {exc}") from None
        from .store_checks import check_selection

        check_selection(cfg, store)
    return cfg
