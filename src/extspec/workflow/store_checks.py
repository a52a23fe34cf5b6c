"""Data-store checks of an analysis config: the selected runs exist and can serve the analysis.

:func:`check_selection` is the one entry point (used by
:func:`~extspec.workflow.checks.validate_config` and by the parse-time
:func:`~extspec.workflow.cache.prepare_workflow`): :func:`selected_obs_ids`, then
:func:`check_irf_needs`, :func:`check_pointings` and
:func:`~extspec.workflow.wobble_check.check_wobble` on the selection.

This module imports only the standard library at import time.
"""

from __future__ import annotations

from ..errors import ConfigError, DataStoreError
from .basics import model_spatial, runs_have, runs_of_irf_class

__all__ = ["check_selection", "selected_obs_ids", "check_pointings", "check_irf_needs"]


def check_selection(cfg: dict, store, cache_dir=None) -> list[int]:
    """The observations ``cfg`` selects in ``store``, checked: every one exists, has the IRFs
    the settings need and sees the ON region, and the wobble OFF regions fit it (raises
    ConfigError naming the key).  ``cache_dir``: where :func:`check_pointings` remembers each
    file's IRF offset range."""
    obs = selected_obs_ids(cfg, store)
    check_irf_needs(cfg, store, obs)
    check_pointings(cfg, store, obs, cache_dir=cache_dir)
    from .wobble_check import check_wobble

    check_wobble(cfg, store, obs)
    return obs


def selected_obs_ids(cfg: dict, store) -> list[int]:
    """The observations the config selects in ``store``: ``obs_ids`` then the ``obs_cone`` ones.

    The cone centre defaults to the ON region centre (in its frame).  Raises ConfigError
    for ids not in the store and for an empty selection.
    """
    cone = cfg.get("obs_cone")
    cone_arg = None
    if cone:
        if cone.get("center") is not None:
            lon, lat = cone["center"]
            frame = cone["frame"]
        else:
            from ..skyregions import parse_region
            from .basics import region_center_tuple

            lon, lat, frame = region_center_tuple(parse_region(cfg["on_region"], "on_region"))
        cone_arg = {"lon": float(lon), "lat": float(lat), "radius": float(cone["radius"]), "frame": frame}
    try:
        obs = store.select(obs_ids=list(cfg.get("obs_ids") or []), cone=cone_arg)
    except DataStoreError as exc:
        raise ConfigError(f"config key 'obs_ids': {exc}") from None
    if not obs:
        if cone_arg:
            raise ConfigError(
                f"config key 'obs_cone': no observation of {store.path} points within "
                f"{cone_arg['radius']} deg of ({cone_arg['lon']:.3f}, {cone_arg['lat']:.3f}) {cone_arg['frame']}"
            )
        raise ConfigError("config key 'obs_ids': no observations selected")
    return obs


def _irf_offset_limits(store, obs_ids, cache_dir) -> dict:
    """``{obs_id: largest IRF offset}`` (:meth:`DataStore.irf_offset_max`; None: unreadable),
    remembered per effective-area file (path, size, mtime) in ``cache_dir``/irf-offsets.json,
    so that a changed config or one added run reads only the files not seen before (reading
    one costs about 4 ms: 40 s for 10,000 runs)."""
    import json
    from pathlib import Path

    from .statcache import file_stat, write_cache

    cache_file = Path(cache_dir) / "irf-offsets.json" if cache_dir is not None else None
    try:
        memo = json.loads(cache_file.read_text()) if cache_file else {}
    except (OSError, ValueError):
        memo = {}
    out, changed = {}, False
    for o in obs_ids:
        try:
            path = str(store.hdu_location(o, "aeff")[0])
        except DataStoreError:
            out[int(o)] = None
            continue
        key = file_stat(Path(path))
        hit = memo.get(path)
        if hit is not None and hit[0] == key:
            out[int(o)] = hit[1]
            continue
        try:
            out[int(o)] = store.irf_offset_max(o)
        except DataStoreError:
            out[int(o)] = None  # unreadable: its reduction job says so (and --keep-going finishes the others)
        memo[path] = [key, out[int(o)]]
        changed = True
    if changed and cache_file is not None:
        write_cache(cache_file, memo)
    return out


def check_pointings(cfg: dict, store, obs_ids, cache_dir=None) -> None:
    """Every selected run must see the ON region: its centre within the run's IRF offset range.

    Raises ConfigError naming every run that does not (e.g. a typo in ``on_region`` that puts
    the region far from all pointings), with its offset and the IRF's largest offset.
    ``cache_dir``: remember each file's offset range there (:func:`_irf_offset_limits`).
    """
    import numpy as np

    from ..sky import separation, transform_point
    from ..skyregions import parse_region
    from .basics import region_center_tuple

    lon, lat, frame = region_center_tuple(parse_region(cfg["on_region"], "on_region"))
    ra0, dec0 = transform_point(float(lon), float(lat), frame, "icrs")
    ra, dec = store.pointings()
    row = {int(o): i for i, o in enumerate(store.obs_ids)}
    bad = []
    limits = _irf_offset_limits(store, [o for o in obs_ids if int(o) in row], cache_dir)
    for o in obs_ids:
        if int(o) not in row:
            continue
        i = row[int(o)]
        off = float(separation(np.array([ra[i]]), np.array([dec[i]]), ra0, dec0)[0])
        limit = limits[int(o)]
        if limit is None:
            continue  # unreadable: its reduction job says so (and --keep-going finishes the others)
        if not off <= limit:
            bad.append(f"{o} ({off:.2f} > {limit:.2f} deg)")
    if bad:
        raise ConfigError(
            f"config key 'on_region': centre ({lon:.3f}, {lat:.3f}) {frame} lies outside the IRF offset range of "
            f"{len(bad)} of {len(obs_ids)} selected run(s): {', '.join(bad)}; check the region or drop those runs"
        )


def check_irf_needs(cfg: dict, store, obs_ids) -> None:
    """Settings that need an IRF some observation lacks: ``bkg-peak`` needs a background IRF,
    a ``point`` ON region point-like IRFs (``extspec.workflow.preflight.check_point_region``),
    an extended ``model.spatial`` full-enclosure IRFs (point-like IRFs describe a point source
    only; a full-enclosure run without a PSF is left to its reduction, which excludes it)."""
    from .preflight import check_point_region

    check_point_region(cfg, store, obs_ids)
    spatial = model_spatial(cfg)
    if spatial.get("type") not in (None, "point"):
        from ..irf import POINT_LIKE

        point_like = runs_of_irf_class(store, obs_ids, POINT_LIKE)
        if point_like:
            raise ConfigError(
                f"config key 'model.spatial': a {spatial['type']} needs full-enclosure IRFs with a PSF, but obs "
                f"{runs_have(point_like)} point-like IRFs (RAD_MAX: a point source only); use type: point")
    methods = (cfg.get("safe_mask") or {}).get("methods") or []
    if "bkg-peak" in methods:
        missing = [int(o) for o in obs_ids if not store.has_hdu(int(o), "bkg")]
        if missing:
            raise ConfigError(
                f"config key 'safe_mask.methods': bkg-peak needs a background IRF, but obs {runs_have(missing)} "
                f"none in {store.path}; drop bkg-peak (e.g. use aeff-default, aeff-max)"
            )
