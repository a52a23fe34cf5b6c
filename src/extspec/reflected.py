"""OFF-region finders: reflected regions (spec §6) and wobble regions.

The ON region is rotated rigidly about the pointing P in a TAN pixel frame whose tangent
point is P (an azimuthal projection, so a rotation about the tangent point *is* a rotation
on the sphere about P).  Candidates that contain an excluded pixel centre (the ON region
itself or an exclusion region) are rejected.

Methods
-------
``reference``
    §6.1-§6.2 to the letter: the angular extent Delta is measured from the finder-grid pixel
    centres inside the ON region, OFF circles are converted back to the sky with the local
    pixel scale at their new centre, OFF events are selected in the finder's pixel frame.
``exact``
    For a circle, Delta is the true tangent angle 2 arcsin(sin R / sin d) (no sliver
    overlaps) and OFF circles keep the ON radius R exactly, with events selected by their
    great-circle distance.  For other shapes, Delta from pixel centres is widened by two
    grid pixels seen from P, and containment is tested in the finder frame for ON and OFF
    alike, so both areas agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError

__all__ = ["BackgroundSettings", "FinderGrid", "ReflectedRegions", "find_reflected_regions", "find_wobble_regions",
           "find_off_regions", "MAX_REGION_NUMBER", "BACKGROUND_METHODS", "wobble_max_regions", "wobble_extent",
           "check_wobble_number", "WobbleOverlapError"]

BACKGROUND_METHODS = ("reflected", "wobble", "fov", "ring")
"""reflected and wobble: OFF regions found here; fov and ring: OFF area and alpha from the
background IRF (:mod:`extspec.background`)."""


@dataclass(frozen=True)
class BackgroundSettings:
    """How the OFF regions are found (the ``background`` config block; no defaults here).

    Attributes
    ----------
    method : {"reflected", "wobble", "fov", "ring"}

    n_off_regions : int
        Wobble regions per run (the reflected finder takes as many as fit).
    fallback : str or None
        The method for a run where ``method`` finds no OFF region or OFF area (or lacks the
        background IRF fov and ring need); None: such a run is unusable, with its reason.
    ring : (inner, outer) in deg, or None
        The ring's radii about the ON-region centre (method or fallback ``ring``).
    """

    method: str
    n_off_regions: int
    fallback: str | None
    ring: tuple | None

MIN_DISTANCE = 0.0
MIN_DISTANCE_INPUT = 0.1  # rad
ANGLE_INCREMENT = 0.1  # rad
MAX_REGION_NUMBER = 10000
FINDER_BINSZ = 0.01  # deg


@dataclass
class FinderGrid:
    """The finder's TAN grid centred on the pointing (§6.1); ``wcs`` is an extspec.sky.Projection."""

    wcs: object
    npix: int
    frame: str
    pointing_pix: tuple[float, float]
    separation: float = float("nan")  # deg, ON centre to pointing


@dataclass
class ReflectedRegions:
    """Result of the finder.

    Attributes
    ----------
    regions : list of extspec.skyregions.SkyRegion
        The OFF regions (sky coordinates, frame of the ON region).
    pixel_regions : list of extspec.skyregions.PixelRegion
        The same in the finder frame (used for the reference OFF-event test).
    angles : ndarray
        Accepted rotation angles (rad).
    delta : float
        Angular extent of the ON region seen from P (rad).

    grid : FinderGrid
    """

    regions: list
    pixel_regions: list
    angles: np.ndarray
    delta: float
    grid: FinderGrid
    method: str = "exact"
    on_pixel_region: object = None
    info: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.regions)


def make_finder_grid(center, pointing) -> FinderGrid:
    """TAN grid at P in the frame of the ON centre, 0.01 deg pixels, width 4 sep + 0.3 (§6.1).

    ``center`` and ``pointing`` are :class:`extspec.sky.SkyPoint` (any frame).
    """
    from .sky import Projection, separation

    frame = center.frame
    clon, clat = center.lonlat()
    plon, plat = pointing.lonlat(frame)
    sep = float(separation(clon, clat, plon, plat))
    npix = int(np.rint((4 * sep + 0.3) / FINDER_BINSZ))
    w = Projection.tangent(plon, plat, FINDER_BINSZ, ((npix + 1) / 2.0, (npix + 1) / 2.0), frame)
    px, py = w.world_to_pix(plon, plat)
    return FinderGrid(wcs=w, npix=npix, frame=frame, pointing_pix=(float(px), float(py)), separation=sep)


def _grid_points_in(pix_region, npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of the finder grid strictly inside a pixel region."""
    bb = pix_region.bounding_box
    x0, x1 = max(bb.ixmin - 1, 0), min(bb.ixmax + 1, npix)
    y0, y1 = max(bb.iymin - 1, 0), min(bb.iymax + 1, npix)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0), np.zeros(0)
    y, x = np.mgrid[y0:y1, x0:x1].astype(float)
    return pix_region.points_inside(x.ravel(), y.ravel())


def _contains_any(pix_region, ex_x, ex_y) -> bool:
    if ex_x.size == 0:
        return False
    bb = pix_region.bounding_box
    sel = (ex_x >= bb.ixmin - 1) & (ex_x <= bb.ixmax + 1) & (ex_y >= bb.iymin - 1) & (ex_y <= bb.iymax + 1)
    if not sel.any():
        return False
    return bool(np.any(pix_region.contains(ex_x[sel], ex_y[sel])))


def _excluded_points(on_x, on_y, exclusion_regions, grid) -> tuple[np.ndarray, np.ndarray]:
    """Finder-grid pixel centres no OFF region may contain: the ON region's and the exclusions'."""
    from .skyregions import parse_regions

    ex_x, ex_y = [on_x], [on_y]
    for reg in parse_regions(list(exclusion_regions), "exclusion_regions"):
        pr = reg.to_pixel(grid.wcs)
        if not np.all(np.isfinite(pr.center)):  # far away / unprojectable: cannot overlap the grid
            continue
        x, y = _grid_points_in(pr, grid.npix)
        ex_x.append(x)
        ex_y.append(y)
    return np.concatenate(ex_x), np.concatenate(ex_y)


def _angular_extent(on_region, on_pix, grid, on_x, on_y, method) -> tuple[float, bool]:
    """(Delta, inside): the angle (rad) the ON region spans seen from the pointing (§6.2), and
    whether the pointing lies inside it (Delta is then 2 pi).  Two copies of the region rotated
    about the pointing by at least Delta apart do not overlap.

    ``on_x``, ``on_y``: the finder-grid pixel centres inside the ON region (not empty).
    ``exact``: the true tangent angle of a circle, the pixel-centre extent widened by two grid
    pixels for other shapes; ``reference``: the pixel-centre extent as the reference does.
    """
    from .skyregions import CircleSky

    pxy = grid.pointing_pix
    phis = np.arctan2(pxy[0] - on_x, pxy[1] - on_y)
    delta = phis.max() - phis.min()
    if delta > np.pi:
        phis = np.where(phis >= 0, phis - 2 * np.pi, phis)
        delta = phis.max() - phis.min()
    sep = np.deg2rad(grid.separation)
    circle = isinstance(on_region, CircleSky)
    if circle:
        inside = bool(sep < np.deg2rad(on_region.radius))
    else:
        inside = bool(np.all(on_pix.contains(*pxy)))
    if method == "exact":
        if circle:
            r = np.deg2rad(on_region.radius)
            if r >= sep or inside:
                delta = 2 * np.pi
            else:
                delta = 2 * np.arcsin(min(1.0, np.sin(r) / np.sin(sep)))
        else:
            cx, cy = grid.wcs.world_to_pix(*on_region.center.lonlat(grid.frame))
            dist = np.hypot(cx - pxy[0], cy - pxy[1])
            delta = delta + 2.0 / max(dist, 1.0)
    if inside:
        delta = 2 * np.pi
    return float(delta), inside


def wobble_max_regions(delta: float) -> int:
    """The largest number n of wobble OFF regions, 360 deg / (n + 1) apart, that overlap neither
    each other nor the ON region when the region spans ``delta`` rad seen from the pointing."""
    return max(int(np.floor(2 * np.pi / delta * (1 + 1e-12))) - 1, 0) if delta > 0 else MAX_REGION_NUMBER


def check_wobble_number(n: int, delta: float, separation: float, where: str = "") -> None:
    """Raise :class:`WobbleOverlapError` when ``n`` wobble OFF regions do not fit without
    overlapping (``delta``: the ON region's angular extent in rad, ``separation``: its
    distance from the pointing in deg, ``where``: e.g. ``" of obs 20326"``)."""
    n_max = wobble_max_regions(delta)
    if n > n_max:
        raise WobbleOverlapError(
            f"config key 'background.n_off_regions': {n} wobble OFF regions {360 / (n + 1):.1f} deg apart "
            f"overlap each other and the ON region, which spans {np.rad2deg(delta):.1f} deg seen from the "
            f"pointing{where} ({separation:.2f} deg away); "
            + (f"at most {n_max} fit (set n_off_regions: {n_max})" if n_max else
               "not even one fits (use background: {method: reflected})"), n_max)


def _finder_setup(on_region, pointing):
    """The ON region as a sky region, its finder grid about ``pointing`` (§6.1), the ON region in
    the grid's pixels and the grid pixel centres inside it: what every finder starts from."""
    from .sky import as_skypoint
    from .skyregions import as_sky_region

    on_region = as_sky_region(on_region, "on_region")
    grid = make_finder_grid(on_region.center, as_skypoint(pointing))
    on_pix = on_region.to_pixel(grid.wcs)
    on_x, on_y = _grid_points_in(on_pix, grid.npix)
    return on_region, grid, on_pix, on_x, on_y


def wobble_extent(on_region, pointing, method: str) -> tuple[float, float]:
    """(Delta in rad, separation in deg) of an ON region seen from a pointing (see
    :func:`_angular_extent`); Delta is 2 pi when the pointing lies inside the region."""
    on_region, grid, on_pix, on_x, on_y = _finder_setup(on_region, pointing)
    if on_x.size == 0:
        return 0.0, grid.separation
    return _angular_extent(on_region, on_pix, grid, on_x, on_y, method)[0], grid.separation


class WobbleOverlapError(ConfigError):
    """More wobble OFF regions asked for than fit without overlapping (the message names the
    largest number that fits); ``n_max`` holds that number."""

    def __init__(self, message: str, n_max: int = 0):
        super().__init__(message)
        self.n_max = n_max


def _to_sky(pix_regions, grid, on_region, method) -> list:
    """OFF regions back on the sky; exact circles keep the ON radius exactly."""
    from .skyregions import CircleSky, pix_to_sky

    out = []
    for pr in pix_regions:
        sr = pix_to_sky(pr, grid.wcs, grid.frame)
        if method == "exact" and isinstance(on_region, CircleSky):
            sr = CircleSky(sr.center, on_region.radius)
        out.append(sr)
    return out


def find_wobble_regions(on_region, pointing, exclusion_regions, n_off_regions: int,
                        method: str) -> ReflectedRegions:
    """Wobble OFF regions: the ON region rotated about the pointing by 360 deg x k / (n + 1),
    k = 1..n (the same offset from the pointing, evenly spaced); those containing a finder-grid
    pixel centre of an exclusion region or of the ON region are dropped.

    The copies must not overlap each other or the ON region (the reflected finder's rule): when
    360 deg / (n + 1) is less than the angle the ON region spans seen from the pointing
    (:func:`_angular_extent`), :class:`WobbleOverlapError` names the largest n that fits.
    Alpha then comes from the copies kept (1 / their number).

    The rotation is the rigid rotation of the reflected finder (a TAN frame at the pointing),
    so circles stay circles of the same radius.  Returns a :class:`ReflectedRegions` whose
    ``angles`` are the kept rotation angles (rad) and ``info['n_dropped']`` the number dropped.
    """
    n = int(n_off_regions)
    if n < 1:
        raise ValueError(f"wobble background needs n_off_regions >= 1, got {n}")
    on_region, grid, on_pix, on_x, on_y = _finder_setup(on_region, pointing)
    pxy = grid.pointing_pix
    ex_x, ex_y = _excluded_points(on_x, on_y, exclusion_regions, grid)
    inside = bool(on_pix.contains(*pxy)) or grid.separation == 0.0
    pix_regions, angles = [], []
    if not inside and on_x.size:
        # copies closer than the region's angular extent overlap each other and the ON region:
        # their events would count once while alpha = 1/n, so the request is refused
        delta, inside = _angular_extent(on_region, on_pix, grid, on_x, on_y, method)
        if not inside:
            check_wobble_number(n, delta, grid.separation)
    if not inside:
        for k in range(1, n + 1):
            phi = 2 * np.pi * k / (n + 1)
            cand = on_pix.rotate(pxy[0], pxy[1], phi)
            if not _contains_any(cand, ex_x, ex_y):
                pix_regions.append(cand)
                angles.append(phi)
    info = {"pointing_inside": inside, "n_dropped": n - len(pix_regions), "finder": "wobble"}
    return ReflectedRegions(_to_sky(pix_regions, grid, on_region, method), pix_regions, np.array(angles),
                            2 * np.pi / (n + 1), grid, method, on_pix, info)


def find_off_regions(on_region, pointing, exclusion_regions, background: BackgroundSettings,
                     method: str) -> ReflectedRegions:
    """The OFF regions of ``background``: reflected regions or ``n_off_regions`` wobble regions."""
    if background.method == "reflected":
        return find_reflected_regions(on_region, pointing, exclusion_regions, method)
    if background.method == "wobble":
        return find_wobble_regions(on_region, pointing, exclusion_regions, int(background.n_off_regions), method)
    raise ValueError(f"unknown background method '{background.method}' (use {', '.join(BACKGROUND_METHODS)})")


def find_reflected_regions(on_region, pointing, exclusion_regions, method: str,
                           max_region_number: int = MAX_REGION_NUMBER) -> ReflectedRegions:
    """Find the reflected OFF regions of ``on_region`` for a pointing (§6.1-§6.3).

    Parameters
    ----------
    on_region : extspec.skyregions.SkyRegion (or a DS9 string / regions sky region)

    pointing : extspec.sky.SkyPoint, astropy SkyCoord, or (ra, dec) in deg ICRS

    exclusion_regions : sequence of sky regions or DS9 strings / .reg paths
        Candidates containing any finder-grid pixel centre inside one of these are rejected.

    method : {"exact", "reference"}

    Returns
    -------
    ReflectedRegions; an empty list of regions when none fits (e.g. the pointing lies inside
    the ON region, §6.4).
    """
    on_region, grid, on_pix, on_x, on_y = _finder_setup(on_region, pointing)
    pxy = grid.pointing_pix
    empty = ReflectedRegions([], [], np.zeros(0), np.nan, grid, method, on_pix)
    if on_x.size == 0:
        empty.info["reason"] = "ON region contains no finder-grid pixel"
        return empty
    delta, inside = _angular_extent(on_region, on_pix, grid, on_x, on_y, method)
    info = {"pointing_inside": bool(inside)}
    ex_x, ex_y = _excluded_points(on_x, on_y, exclusion_regions, grid)

    phi_step = delta + MIN_DISTANCE
    phi_max = 2 * np.pi - phi_step - MIN_DISTANCE_INPUT
    phi = phi_step + MIN_DISTANCE_INPUT
    pix_regions, angles = [], []
    while phi < phi_max:
        cand = on_pix.rotate(pxy[0], pxy[1], phi)
        if not _contains_any(cand, ex_x, ex_y):
            pix_regions.append(cand)
            angles.append(phi)
            if len(pix_regions) >= max_region_number:
                break
            phi += phi_step
        else:
            phi += ANGLE_INCREMENT
    sky_regions = _to_sky(pix_regions, grid, on_region, method)
    return ReflectedRegions(sky_regions, pix_regions, np.array(angles), float(delta), grid, method, on_pix, info)
