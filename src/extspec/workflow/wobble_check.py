"""Config check of the wobble background: the requested OFF regions must fit every run.

``n_off_regions`` copies of the ON region, 360 deg / (n + 1) apart about the pointing, may not
overlap each other or the ON region (extspec.reflected.check_wobble_number).  Checked at
config time for every selected run from its pointing, so that a request that cannot be met
stops before any job with the largest number that fits all runs.  A point ON region
(point-like IRFs) has its radius only from RAD_MAX in the run's IRF: its reduction job checks.
"""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["check_wobble"]


def check_wobble(cfg: dict, store, obs_ids) -> None:
    """Raise ConfigError when ``background.n_off_regions`` wobble regions do not fit some run."""
    from .settings import background_settings, setting

    background = background_settings(cfg)
    if background.method != "wobble" or not obs_ids:
        return
    from ..reflected import WobbleOverlapError, check_wobble_number, wobble_extent, wobble_max_regions
    from ..sky import SkyPoint
    from ..skyregions import PointSky, parse_region

    on = parse_region(cfg["on_region"], "on_region")
    if isinstance(on, PointSky):
        return
    method = setting(cfg, "spectrum", "method")
    n = background.n_off_regions
    ra, dec = store.pointings()
    row = {int(o): i for i, o in enumerate(store.obs_ids)}
    worst = None
    for o in obs_ids:
        if int(o) not in row:
            continue
        i = row[int(o)]
        delta, sep = wobble_extent(on, SkyPoint(float(ra[i]), float(dec[i]), "icrs"), method)
        if delta >= 6.283185307179586 or delta == 0.0:
            continue  # pointing inside the ON region: the run is unusable anyway (and says so)
        if worst is None or wobble_max_regions(delta) < wobble_max_regions(worst[1]):
            worst = (int(o), delta, sep)
    if worst is None:
        return
    try:
        check_wobble_number(n, worst[1], worst[2], f" of obs {worst[0]}")
    except WobbleOverlapError as exc:
        raise ConfigError(str(exc)) from None
