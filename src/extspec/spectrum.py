"""ON/OFF spectrum of one observation (spec §5-§6): the in-memory dataset.

:class:`SpectrumDataset` is what the fit, the stacking and the OGIP files work with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .geometry import EnergyAxis

__all__ = ["no_events_reason", "SpectrumDataset", "OnOffEvents", "onoff_events", "OnSelection", "select_on_region",
           "on_response", "find_off", "find_background", "background_method", "no_off_reason", "count_on_off",
           "on_off_events", "assemble", "make_spectrum", "placement_radius", "regions_at_energy", "RunShare"]


@dataclass
class SpectrumDataset:
    """ON/OFF spectrum of one observation (or a stack of several).

    Attributes
    ----------
    obs_id : int
        Observation id (0 for a stack).
    energy_reco, energy_true : EnergyAxis
        Edges in TeV.
    counts : (n_reco,) int64
        ON counts n_on.
    counts_off : (n_reco,) int64
        OFF counts n_off (in the union of the OFF regions).
    acceptance : (n_reco,) float64
        ON acceptance (1 per run).
    acceptance_off : (n_reco,) float64
        OFF acceptance (number of OFF regions per run); alpha = acceptance / acceptance_off.
    exposure : (n_true,) float64
        ON-region exposure X_on in m^2 s.
    edisp : (n_true, n_reco) float64
        Dispersion kernel K.
    edisp_weight : (n_true,) float64
        Exposure (m^2 s) weighting the kernel when stacking (§10.1).
    mask_safe : (n_reco,) bool
        Safe energy range (bins outside stay in the data but are flagged).
    livetime, ontime : float
        Seconds.
    gti : (n, 2) float64
        Good time intervals (MET s).
    usable : bool
        False when no OFF region was found (§6.4); then ``reason`` says why.

    reason : str

    on_region : str
        DS9 string of the ON region.
    off_regions : list of str
        DS9 strings of the OFF regions (sky coordinates), for plots.

    pointing_radec : (ra, dec) deg

    meta : dict
        Free-form provenance (method, lo_thres, hi_thres, source file, checksum ...).
    """

    obs_id: int
    energy_reco: EnergyAxis
    energy_true: EnergyAxis
    counts: np.ndarray
    counts_off: np.ndarray
    acceptance: np.ndarray
    acceptance_off: np.ndarray
    exposure: np.ndarray
    edisp: np.ndarray
    edisp_weight: np.ndarray
    mask_safe: np.ndarray
    livetime: float
    ontime: float
    gti: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    usable: bool = True
    reason: str = ""
    on_region: str = ""
    off_regions: list = field(default_factory=list)
    pointing_radec: tuple = (np.nan, np.nan)
    meta: dict = field(default_factory=dict)

    @property
    def alpha(self) -> np.ndarray:
        """acceptance / acceptance_off per bin (0 where there is no OFF acceptance)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.acceptance_off > 0, self.acceptance / self.acceptance_off, 0.0)

    @property
    def n_off_regions(self) -> int:
        return len(self.off_regions)

    @property
    def excess(self) -> np.ndarray:
        return self.counts - self.alpha * self.counts_off


# ---------------------------------------------------------------------------- extraction --


def nearest_pixel(geom, lon: float, lat: float) -> tuple[int, int]:
    """Nearest pixel with ties to the lower index: ``ceil(p - 0.5)`` clipped (§4.4)."""
    px, py = geom.world_to_pix(lon, lat)
    nx, ny = geom.npix
    ix = int(np.clip(np.ceil(float(px) - 0.5), 0, nx - 1))
    iy = int(np.clip(np.ceil(float(py) - 0.5), 0, ny - 1))
    return ix, iy


def _region_sample_offsets(region, pointing_lonlat, frame, step_deg):
    """Offsets (deg) of a fine grid of points inside ``region`` (exact containment)."""
    from .sky import separation

    try:  # the points depend on the region only: once per process for the runs of an analysis
        lon, lat = _region_samples(region, frame, step_deg)
    except TypeError:  # a region that cannot be a key (unhashable)
        lon, lat = _region_samples.__wrapped__(region, frame, step_deg)
    return separation(lon, lat, *pointing_lonlat)


@functools.lru_cache(maxsize=64)
def _region_samples(region, frame, step_deg):
    """(lon, lat) of a fine grid of points inside ``region`` (read-only arrays)."""
    from .sky import Projection, separation
    from .skyregions import CircleSky

    lon0, lat0 = region.center.lonlat(frame)
    w = Projection.tangent(lon0, lat0, step_deg, (0.0, 0.0), frame)
    pr = region.to_pixel(w)
    bb = pr.bounding_box
    y, x = np.mgrid[bb.iymin - 1: bb.iymax + 2, bb.ixmin - 1: bb.ixmax + 2].astype(float)
    x, y = x.ravel(), y.ravel()
    lon, lat = w.pix_to_world(x, y)
    if isinstance(region, CircleSky):
        keep = separation(lon, lat, lon0, lat0) < region.radius
    else:
        keep = pr.contains(x, y)
    lon, lat = lon[keep], lat[keep]
    lon.setflags(write=False)
    lat.setflags(write=False)
    return lon, lat


def _offset_histogram(offsets: np.ndarray, step: float | None = None):
    """Linear-interpolation weights of sample offsets on a regular theta grid.

    Any function linear between grid nodes averaged over the samples equals the weighted sum
    over the nodes: exact for A_eff (piecewise linear in theta, kinks on multiples of 0.5 deg,
    which are grid nodes), and O(step^2) for the dispersion kernel (below 1e-4 absolute
    per kernel entry for the default step, ``cube.OFFSET_GRID_STEP`` = 0.1 deg).  Returns
    (nodes, weights) with weights summing to 1.
    """
    from .cube import OFFSET_GRID_STEP, offset_grid

    nodes, i, f = offset_grid(offsets, OFFSET_GRID_STEP if step is None else step)
    n = nodes.size
    w = np.bincount(i, 1 - f, minlength=n) + np.bincount(i + 1, f, minlength=n)
    keep = w > 0
    return nodes[keep], w[keep] / offsets.size


class RunShare:
    """The work of one run's extraction that does not depend on the ON region, done once and
    shared by every ON region extracted from the run (:func:`extspec.reduction.reduce_regions`):
    the events' positions on the finder grid (its projection about the pointing; grids of ON
    regions at other separations differ only in the reference pixel) and on the OFF-area grid,
    the ``fov`` OFF-area template (:func:`extspec.background.fov_template`) and the dispersion
    kernels at each offset node (:func:`extspec.cube.edisp_kernel`).

    A memo: each value is made by the code a single analysis runs (:func:`make_spectrum` makes
    a fresh RunShare without one), so a region's spectrum is bit for bit the single
    analysis's.  One RunShare serves one run, with its events in each frame given once, and
    one set of reduction settings apart from the ON region."""

    def __init__(self):
        self._memo = {}

    def get(self, key, make):
        """The value under ``key``, made by ``make()`` the first time."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def event_pixels(self, proj, ev_lon, ev_lat) -> tuple[np.ndarray, np.ndarray]:
        """``proj.world_to_pix(ev_lon, ev_lat)`` of the run's events (in the frame of the
        :class:`~extspec.sky.Projection` ``proj``), projected once per tangent point and pixel size."""
        ref = self.get(("reference_pix", proj.proj, proj.crval, proj.cdelt, proj.frame),
                       lambda: proj.world_to_reference(ev_lon, ev_lat))
        return proj.pix_from_reference(*ref)

    def pixel_index(self, geom, ev_lon, ev_lat) -> tuple[np.ndarray, np.ndarray]:
        """``extspec.cube.pixel_index`` of the run's events on ``geom``, once per grid."""
        from .cube import pixel_index

        return self.get(("pixel_index", repr(geom.projection), tuple(geom.npix)),
                        lambda: pixel_index(geom, ev_lon, ev_lat))


# Extraction, step by step (make_spectrum at the end runs them in order):
#   1. select_on_region   what the ON region is for this observation's IRF class (refusals here)
#   2. on_response        exposure and dispersion kernel of the ON region
#   3. find_background    OFF regions (reflected or wobble finder: find_off) or OFF area (fov, ring)
#   4. count_on_off       ON and OFF counts per reco-energy bin
#   5. assemble           the SpectrumDataset

REGION_SAMPLE_STEP = 0.02
"""deg; spacing of the points at which the exact method samples the ON region's offsets."""

POINT_RADIUS_TOLERANCE = 1e-3
"""deg; an ON circle within this of a fixed RAD_MAX is accepted with point-like IRFs."""


@dataclass
class OnSelection:
    """The ON region of one observation as the extraction uses it (step 1).

    Attributes
    ----------
    region : SkyRegion
        The configured ON region (a :class:`~extspec.skyregions.PointSky` for a point source).
    pointing : SkyPoint
        Pointing (ICRS).
    offset : float
        Region centre to pointing, deg.
    irf_class : str
        ``full-enclosure`` or ``point-like``.
    rad_max : (n_reco,) float64 or None
        Point-like IRFs: the ON radius in each reco-energy bin, RAD_MAX at the bin's log-centre
        and the source offset (deg).  None for full-enclosure IRFs.
    """

    region: object
    pointing: object
    offset: float
    irf_class: str
    rad_max: np.ndarray | None = None

    @property
    def frame(self) -> str:
        return self.region.center.frame

    @property
    def point_like(self) -> bool:
        return self.rad_max is not None


def _check_offset_inside(obs, offsets, what: str) -> None:
    """IRFs stored for one offset bin hold inside it only: refuse ON regions outside it."""
    ax = obs.aeff.offset
    if not ax.single_bin:
        return
    lo, hi = float(ax.edges[0]), float(ax.edges[-1])
    offsets = np.atleast_1d(offsets)
    if offsets.min() < lo or offsets.max() > hi:
        from .errors import DataStoreError

        raise DataStoreError(
            f"obs {obs.obs_id}: its IRFs hold only for offsets {lo:.3f}-{hi:.3f} deg from the pointing "
            f"(one THETA bin), but {what} lies at {offsets.min():.3f}-{offsets.max():.3f} deg"
        )


def select_on_region(obs, on_region, energy_reco) -> OnSelection:
    """Step 1: the ON region for the observation's IRF class, or a one-line refusal.

    * point-like IRFs (HDUCLAS3 = POINT-LIKE) hold only for the events within RAD_MAX of a
      point source: a point ON region gets, per reco-energy bin, the circle of radius
      RAD_MAX(E, source offset); a circle is accepted only when RAD_MAX is fixed and its
      radius agrees within ``POINT_RADIUS_TOLERANCE``; any other region is refused;
    * full-enclosure IRFs refuse a point ON region (its counts would need a PSF containment
      correction in a region: a circle ON region with ``model.spatial``).
    """
    from .errors import ConfigError
    from .irf import POINT_LIKE
    from .sky import SkyPoint
    from .skyregions import CircleSky, PointSky, as_sky_region

    region = as_sky_region(on_region, "on_region")
    pointing = SkyPoint(float(obs.pointing_radec[0]), float(obs.pointing_radec[1]), "icrs")
    offset = float(region.center.separation(pointing))
    sel = OnSelection(region, pointing, offset, obs.irf_class)
    lon, lat = region.center.lonlat()
    point_hint = f'on_region: "{region.frame};point({lon:.4f},{lat:.4f})"'
    if obs.irf_class != POINT_LIKE:
        if isinstance(region, PointSky):
            raise ConfigError(
                f"obs {obs.obs_id}: full-enclosure IRFs with a point ON region: its counts would need a PSF "
                "containment in a region, not a point; use a circle ON region with model.spatial: {type: point} "
                "for the source's flux, or point-like IRFs"
            )
        return sel
    rm = obs.rad_max
    if isinstance(region, CircleSky) and rm.is_fixed:
        fixed = float(rm.data[0, 0])
        if abs(region.radius - fixed) > POINT_RADIUS_TOLERANCE:
            raise ConfigError(
                f"obs {obs.obs_id}: point-like IRFs (HDUCLAS3 = POINT-LIKE) with a fixed RAD_MAX of {fixed:.4f} deg, "
                f"but the ON circle has radius {region.radius:.4f} deg: use {point_hint} or a circle of "
                f"radius {fixed:.4f} deg"
            )
    elif not isinstance(region, PointSky):
        kind = "an energy-dependent RAD_MAX (RAD_MAX_2D)" if not rm.is_fixed else "RAD_MAX"
        raise ConfigError(
            f"obs {obs.obs_id}: point-like IRFs (HDUCLAS3 = POINT-LIKE, {kind}) describe only events within "
            f"RAD_MAX of a point source, not the extended ON region {region.to_ds9()}: use {point_hint}, "
            "or full-enclosure IRFs for an extended source"
        )
    _check_offset_inside(obs, offset, "the source")
    sel.rad_max = rm.evaluate(energy_reco.centers, offset)
    return sel


def on_response(obs, cube, sel: OnSelection, method: str, oversample: int,
                sample_step: float = REGION_SAMPLE_STEP,
                share: RunShare | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: ON-region exposure (n_true,) in m^2 s, dispersion kernel (n_true, n_reco) and the
    kernel's stacking weight (n_true,).

    * point-like IRFs: A_eff at the source offset x livetime (the IRF already holds for the
      events within RAD_MAX: no containment correction) and the IRF's dispersion there;
    * ``reference``: unweighted mean exposure over the cube pixels whose centres are inside the
      region, the kernel of the coarse pixel nearest to the region centre (§4.4, §5);
    * ``exact``: exposure averaged over a ``sample_step`` sampling of the region (linear
      offset weights), kernel averaged with the exposure as weight (``share``: the run's
      :class:`RunShare`, keeping each offset node's kernels for the run's other ON regions).
    """
    from .skyregions import region_pixel_mask
    from .cube import edisp_kernel

    etrue, ereco = cube.energy_true, cube.energy_reco
    if sel.point_like:
        kernel, aeff = edisp_kernel(obs.edisp, obs.aeff, etrue, ereco, np.array([sel.offset]), method,
                                    oversample, offset_weights=np.ones(1))
        exposure = aeff * obs.livetime
        return exposure, kernel, exposure.copy()
    if method == "reference":
        mask = region_pixel_mask(sel.region, cube.geom)
        if not mask.any():
            raise ValueError("ON region contains no map pixel centre")
        clon, clat = sel.region.center.lonlat(cube.geom.frame)
        ix, iy = nearest_pixel(cube.edisp_geom, clon, clat)
        return cube.exposure[:, mask].mean(axis=1), cube.edisp_kernel[iy, ix], cube.edisp_exposure[:, iy, ix]
    offs = _region_sample_offsets(sel.region, sel.pointing.lonlat(sel.frame), sel.frame, sample_step)
    if offs.size == 0:
        raise ValueError("ON region is smaller than the sampling step")
    _check_offset_inside(obs, offs, "the ON region")
    nodes, w = _offset_histogram(offs)
    node_kernels = None if share is None else share.get(("edisp_node_kernels", oversample), dict)
    kernel, aeff_mean = edisp_kernel(obs.edisp, obs.aeff, etrue, ereco, nodes, "exact", oversample, offset_weights=w,
                                     node_kernels=node_kernels)
    exposure = aeff_mean * obs.livetime
    return exposure, kernel, exposure.copy()


def placement_radius(sel: OnSelection, safe: np.ndarray | None = None) -> float:
    """Point-like IRFs: the radius OFF regions are placed with, the largest RAD_MAX over the
    reco bins in ``safe`` (all bins with a positive RAD_MAX when ``safe`` selects none)."""
    r = sel.rad_max
    use = (r > 0) if safe is None else (r > 0) & np.asarray(safe, bool)
    if not use.any():
        use = r > 0
    if not use.any():
        raise ValueError("RAD_MAX is 0 in every reco-energy bin (the RAD_MAX table does not cover energy_axis)")
    return float(r[use].max())


def find_off(sel: OnSelection, exclusion_regions, background, method: str, radius: float | None = None):
    """Step 3: the OFF regions (``background``: a :class:`~extspec.reflected.BackgroundSettings`).

    With point-like IRFs the finder places circles of ``radius`` (see :func:`placement_radius`)
    around the source; OFF counts then use each bin's own RAD_MAX around the same centres.
    """
    from .reflected import find_off_regions
    from .skyregions import CircleSky

    region = CircleSky(sel.region.center, float(radius)) if sel.point_like else sel.region
    return find_off_regions(region, sel.pointing, exclusion_regions, background, method=method)


def _off_of(kind: str, obs, cube, sel: OnSelection, settings, method: str, radius, share=None):
    """The OFF regions (reflected, wobble) or OFF area (fov, ring) of one background method."""
    from dataclasses import replace

    from .background import FOV_METHODS, find_fov_background

    bg = settings.background
    if kind in FOV_METHODS:
        return find_fov_background(obs, cube, sel, settings.exclusion_regions, method, kind,
                                   float(settings.safe_mask.offset_max), bg.ring, share=share)
    return find_off(sel, settings.exclusion_regions, replace(bg, method=kind), method, radius)


def find_background(obs, cube, sel: OnSelection, settings, method: str, radius: float | None = None,
                    share: RunShare | None = None):
    """Step 3 for every background method: :func:`find_off` (reflected, wobble) or the OFF area
    of :func:`extspec.background.find_fov_background` (fov, ring), with ``background.fallback``
    for a run where the method finds none; ``info['fallback_from']`` and
    ``info['fallback_reason']`` then say which method failed and why."""
    from .errors import ConfigError

    bg = settings.background
    off = _off_of(bg.method, obs, cube, sel, settings, method, radius, share)
    if len(off) > 0 or not bg.fallback:
        return off
    first_reason = no_off_reason(off)
    try:
        second = _off_of(bg.fallback, obs, cube, sel, settings, method, radius, share)
    except ConfigError as exc:  # e.g. wobble regions that would overlap at this run's offset
        off.info["fallback_failed"] = f"fallback {bg.fallback}: {exc}"
        return off
    second.info["fallback_from"] = bg.method
    second.info["fallback_reason"] = first_reason
    return second


def background_method(off) -> str:
    """The background method of OFF regions or an OFF area (``reflected`` for the finder's)."""
    if off is None:
        return ""
    return str(off.info.get("method") or off.info.get("finder") or "reflected")


def no_off_reason(off) -> str:
    """Why OFF regions / an OFF area give no background ("" when they do)."""
    if off is None or len(off) > 0:
        return ""
    what = background_method(off)
    if what in ("fov", "ring"):
        reason = f"{what} background: {off.info.get('reason', 'no OFF area')}"
    else:
        reason = (f"no {what} OFF region fits (ON-region centre {off.grid.separation:.3f} deg from the pointing"
                  + (", pointing inside the ON region)" if off.info.get("pointing_inside") else
                     "; exclusions or region size leave no room)"))
    if off.info.get("fallback_from"):
        reason = f"{off.info['fallback_reason']}; fallback: {reason}"  # the first reason names its method
    if off.info.get("fallback_failed"):
        reason += f"; {off.info['fallback_failed']}"
    return reason


def _within(vecs, centers, frame: str, radius_per_event: np.ndarray) -> np.ndarray:
    """Events (unit vectors ``vecs`` in ``frame``) closer than their own radius to any centre."""
    from .sky import unit_vectors

    cos_r = np.cos(np.deg2rad(radius_per_event))
    inside = np.zeros(vecs.shape[1], bool)
    for c in centers:
        inside |= np.tensordot(unit_vectors(*c.lonlat(frame)), vecs, axes=1) > cos_r
    return inside


def _in_finder_pixels(pix_regions, finder_wcs, ev_lon, ev_lat, share: RunShare | None = None) -> np.ndarray:
    """Events inside any of ``pix_regions``, tested in the finder's pixel frame (§6.5)."""
    inside = np.zeros(np.shape(ev_lon), bool)
    if not pix_regions:
        return inside
    x, y = (finder_wcs.world_to_pix(ev_lon, ev_lat) if share is None
            else share.event_pixels(finder_wcs, ev_lon, ev_lat))
    for pr in pix_regions:
        inside |= pr.contains(x, y)
    return inside


def _in_sky_circles(circles, vecs, frame: str) -> np.ndarray:
    inside = np.zeros(vecs.shape[1], bool)
    for r in circles:
        inside |= r.contains_vectors(vecs, frame)
    return inside


def count_on_off(obs, cube, sel: OnSelection, off, event_lonlat, method: str,
                 energy_bins=None, share: RunShare | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: ON and OFF counts per reco-energy bin (int64).

    * point-like IRFs: an event of reco bin k is ON (OFF) when it lies within RAD_MAX_k of the
      source (of an OFF centre), great-circle distance;
    * ``reference``: ON counts from the cube pixels whose centres are inside the region, OFF
      events tested in the finder's pixel frame (§5, §6.5);
    * ``exact``: circles by great-circle distance; other shapes in the finder's pixel frame for
      ON and OFF alike, so that both areas agree.

    ``energy_bins``: the events' reco-energy bins (``cube.energy_bin_index``), if already known;
    ``share``: the run's :class:`RunShare` (event projections done once for several ON regions).
    """
    nreco = cube.energy_reco.nbin
    kbin, on_ev, off_ev = on_off_events(obs, cube, sel, off, event_lonlat, method, energy_bins,
                                        reference_on=False, share=share)

    def per_bin(sel_events):
        return np.bincount(kbin[sel_events], minlength=nreco).astype(np.int64)

    from .background import FovBackground, off_band_counts
    from .skyregions import region_pixel_mask

    if isinstance(off, FovBackground) and off.bands is not None:  # the offset-shape test's counts
        off.info["off_counts_bands"] = off_band_counts(off, *event_lonlat, off_ev, kbin, nreco, share)
    if on_ev is None:  # reference: ON counts from the cube pixels
        counts = cube.counts[:, region_pixel_mask(sel.region, cube.geom)].sum(axis=1).astype(np.int64)
        return counts, per_bin(off_ev)
    return per_bin(on_ev), per_bin(off_ev)


def on_off_events(obs, cube, sel: OnSelection, off, event_lonlat, method: str, energy_bins=None,
                  reference_on: bool = True, share: RunShare | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Step 4 event by event: each event's reco-energy bin (-1 outside the axis) and whether
    it is an ON and an OFF event (bool arrays, only events inside the reco axis), by the
    rules of :func:`count_on_off` (which bins them).

    ``reference``: an ON event is one whose cube pixel (``cube.pixel_index`` of its map-frame
    position) has its centre in the region, so that the ON events bin to the cube's ON
    counts; with ``reference_on=False`` its ON mask is None (not needed for the counts).
    ``share``: the run's :class:`RunShare`, if several ON regions are extracted from it.
    """
    from .skyregions import region_pixel_mask
    from .cube import energy_bin_index, event_coords, pixel_index
    from .background import FovBackground, off_events
    from .sky import unit_vectors
    from .skyregions import CircleSky

    ev_lon, ev_lat = event_lonlat
    if isinstance(off, FovBackground):  # OFF events: the OFF-area pixels; ON events as with OFF regions
        from types import SimpleNamespace

        no_regions = SimpleNamespace(regions=[], pixel_regions=[], grid=off.grid, on_pixel_region=off.on_pixel_region)
        kbin, on_ev, _ = on_off_events(obs, cube, sel, no_regions, event_lonlat, method, energy_bins,
                                       reference_on=True, share=share)
        return kbin, on_ev, off_events(off, ev_lon, ev_lat, share) & (kbin >= 0) & ~on_ev
    kbin = energy_bin_index(obs.energy, cube.energy_reco.edges) if energy_bins is None else energy_bins
    valid = kbin >= 0
    nreco = cube.energy_reco.nbin
    frame = sel.frame
    if sel.point_like:
        vecs = unit_vectors(ev_lon, ev_lat)
        radius = np.where(valid, sel.rad_max[np.clip(kbin, 0, nreco - 1)], 0.0)
        on_ev = _within(vecs, [sel.region.center], frame, radius)
        off_ev = _within(vecs, [r.center for r in off.regions], frame, radius)
        return kbin, on_ev & valid, off_ev & valid
    if method == "reference":
        off_ev = _in_finder_pixels(off.pixel_regions, off.grid.wcs, ev_lon, ev_lat, share) & valid
        if not reference_on:
            return kbin, None, off_ev
        ix, iy = pixel_index(cube.geom, *event_coords(obs, cube.geom.frame, method))
        inside = region_pixel_mask(sel.region, cube.geom)
        on_ev = (ix >= 0) & inside[np.clip(iy, 0, None), np.clip(ix, 0, None)]
        return kbin, on_ev & valid, off_ev
    circles = bool(off.regions) and all(isinstance(r, CircleSky) for r in off.regions)
    vecs = unit_vectors(ev_lon, ev_lat) if circles or isinstance(sel.region, CircleSky) else None
    if isinstance(sel.region, CircleSky):
        on_ev = sel.region.contains_vectors(vecs, frame)
    else:
        on_ev = _in_finder_pixels([off.on_pixel_region], off.grid.wcs, ev_lon, ev_lat, share)
    if circles:
        off_ev = _in_sky_circles(off.regions, vecs, frame)
    else:
        off_ev = _in_finder_pixels(off.pixel_regions, off.grid.wcs, ev_lon, ev_lat, share)
    return kbin, on_ev & valid, off_ev & valid


@dataclass(frozen=True)
class OnOffEvents:
    """The ON and OFF events of one run: times (s MET, in the time system of ``time_ref``:
    ``MJDREFI``, ``MJDREFF``, ``TIMESYS``, ``TIMEUNIT``) and reco-energy bin indices, with the
    run's GTI and DEADC; what a light curve needs to bin the run in time
    (:func:`extspec.spectrum.onoff_events`; file format in :mod:`extspec.io.onoff_events`)."""

    obs_id: int
    energy_reco_edges: np.ndarray
    gti: np.ndarray
    deadc: float
    time_on: np.ndarray
    energy_bin_on: np.ndarray
    time_off: np.ndarray
    energy_bin_off: np.ndarray
    time_ref: dict = field(default_factory=dict)


def onoff_events(obs, cube, settings, off, event_lonlat, energy_bins=None) -> OnOffEvents:
    """The ON and OFF events of a spectrum made by :func:`make_spectrum` with ``settings`` and
    its OFF regions ``off`` (:func:`on_off_events`, with the observation's times)."""
    from .timebins import TIME_REF_KEYS

    sel = select_on_region(obs, settings.on_region, cube.energy_reco)
    k, on_ev, off_ev = on_off_events(obs, cube, sel, off, event_lonlat, settings.cube.method, energy_bins)
    return OnOffEvents(obs_id=obs.obs_id, energy_reco_edges=cube.energy_reco.edges, gti=obs.gti, deadc=obs.deadc,
                       time_on=obs.time[on_ev], energy_bin_on=k[on_ev], time_off=obs.time[off_ev],
                       energy_bin_off=k[off_ev],
                       time_ref={key: obs.meta[key] for key in TIME_REF_KEYS if key in obs.meta})


def no_events_reason(energy, edges) -> str:
    """Why a run cannot be used for lack of events ("" when it can): an EVENTS table without
    rows, or no event inside the reco-energy axis (``edges``, TeV).  Such a run would count as
    a run with every bin safe and zero counts, pulling a joint fit towards zero flux."""
    energy = np.asarray(energy, float)
    if energy.size == 0:
        return "no events (the EVENTS table has no rows)"
    n_in = int(np.count_nonzero((energy >= edges[0]) & (energy < edges[-1])))
    if n_in == 0:
        return (f"no events in the reco-energy range [{edges[0]:.3g}, {edges[-1]:.3g}] TeV "
                f"({energy.size} outside it)")
    return ""


def assemble(obs, cube, sel: OnSelection, off, counts, counts_off, exposure, kernel, weight,
             method: str) -> SpectrumDataset:
    """Step 5: the SpectrumDataset (unusable, with the reason, when no OFF region or OFF area
    was found).  OFF regions give alpha = 1 / their number; an OFF area (fov, ring) the
    per-bin alpha of the background IRF (``acceptance_off`` = B_off / B_on), with the
    predicted counts in ``meta`` (``background_on_predicted``, ``background_off_predicted``)."""
    from .background import FovBackground

    nreco = cube.energy_reco.nbin
    n_off = len(off) if off is not None else 0
    usable = off is None or n_off > 0
    reason = no_off_reason(off) if not usable else ""
    if usable:
        reason = no_events_reason(obs.energy, cube.energy_reco.edges)
        usable = not reason
    meta = {
        "method": method,
        "lo_thres": obs.lo_thres,
        "hi_thres": obs.hi_thres,
        "offset": float(sel.offset),
        "source_file": obs.source_file,
        "checksum": obs.checksum,
    }
    # instrument and time reference of the DL3 events travel into the OGIP headers
    from .timebins import TIME_REF_KEYS

    meta.update({k: v for k, v in obs.meta.items() if k in ("TELESCOP", "INSTRUME", *TIME_REF_KEYS)})
    if sel.point_like:
        meta["irf_class"] = sel.irf_class
        meta["rad_max"] = [float(r) for r in sel.rad_max]
    if off is not None:
        meta["background"] = background_method(off)
        if off.info.get("fallback_from"):
            meta["background_fallback_from"] = off.info["fallback_from"]
            meta["background_fallback_reason"] = off.info["fallback_reason"]
    acceptance_off = np.full(nreco, float(n_off if off is not None else 1))
    if isinstance(off, FovBackground):
        acceptance_off = off.acceptance_off if n_off else np.zeros(nreco)
        if n_off:
            meta["background_on_predicted"] = [float(v) for v in off.background_on]
            meta["background_off_predicted"] = [float(v) for v in off.background_off]
            meta["background_r_max"] = float(off.info["r_max"])
            meta["background_off_solid_angle"] = float(off.info["off_solid_angle"])
            if "off_counts_bands" in off.info:  # inner / outer half of the OFF area: the offset-shape test
                meta["background_offset_split"] = float(off.info["offset_split"])
                meta["background_off_predicted_bands"] = [[float(v) for v in r] for r in off.background_off_bands]
                meta["background_off_counts_bands"] = [[int(v) for v in r] for r in off.info["off_counts_bands"]]
            if off.method == "ring":
                meta["background_ring"] = [float(v) for v in off.info.get("ring", ())]
    return SpectrumDataset(
        obs_id=obs.obs_id,
        energy_reco=cube.energy_reco,
        energy_true=cube.energy_true,
        counts=counts,
        counts_off=counts_off,
        acceptance=np.ones(nreco),
        acceptance_off=acceptance_off,
        exposure=np.asarray(exposure, float),
        edisp=np.asarray(kernel, float),
        edisp_weight=np.asarray(weight, float),
        mask_safe=np.full(nreco, usable),
        livetime=obs.livetime,
        ontime=obs.ontime,
        gti=obs.gti,
        usable=usable,
        reason=reason,
        on_region=sel.region.to_ds9(),
        off_regions=[r.to_ds9() for r in off.regions] if off is not None else [],
        pointing_radec=tuple(obs.pointing_radec),
        meta=meta,
    )


def make_spectrum(obs, cube, settings, event_lonlat=None, energy_bins=None,
                  share: RunShare | None = None) -> tuple["SpectrumDataset", object]:
    """Extract the ON/OFF spectrum of one observation (§5, §6): steps 1-5 above in order.

    Parameters
    ----------
    obs : Observation

    cube : CubeDataset of the same observation

    settings : extspec.reduction.ReductionSettings
        Its ``on_region`` (a point for point-like IRFs), ``exclusion_regions``, ``background``,
        ``cube.method`` and ``cube.oversample`` (see :func:`on_response` and
        :func:`count_on_off`) and ``safe_mask``: with point-like IRFs the OFF regions are
        placed with the largest RAD_MAX inside the safe range its IRF criteria give.

    event_lonlat : (lon, lat) in the region frame, optional (saves a transformation).

    energy_bins : the events' reco-energy bins (``cube.energy_bin_index``), optional (saves
        binning the events in energy a second time after the cube).
    share : RunShare, optional
        The run's work shared by several ON regions (:func:`extspec.reduction.reduce_regions`);
        a fresh one otherwise, so that both paths run the same code.

    Returns
    -------
    (SpectrumDataset, ReflectedRegions)
    """
    from .cube import event_coords

    method, oversample = settings.cube.method, settings.cube.oversample
    share = RunShare() if share is None else share
    sel = select_on_region(obs, settings.on_region, cube.energy_reco)
    if event_lonlat is None:
        event_lonlat = event_coords(obs, sel.frame, method)
    exposure, kernel, weight = on_response(obs, cube, sel, method, oversample, share=share)
    radius = None
    if sel.point_like:
        from .safe_mask import make_safe_mask

        provisional = assemble(obs, cube, sel, None, np.zeros(cube.energy_reco.nbin, np.int64),
                               np.zeros(cube.energy_reco.nbin, np.int64), exposure, kernel, weight, method)
        radius = placement_radius(sel, make_safe_mask(provisional, settings.safe_mask, obs.bkg))
    off = find_background(obs, cube, sel, settings, method, radius, share)
    counts, counts_off = count_on_off(obs, cube, sel, off, event_lonlat, method, energy_bins, share)
    ds = assemble(obs, cube, sel, off, counts, counts_off, exposure, kernel, weight, method)
    if radius is not None:
        ds.meta["rad_max_placement"] = radius
    return ds, off


def regions_at_energy(spec: SpectrumDataset, energy: float) -> tuple[str, list, float | None]:
    """ON and OFF regions (DS9) of a spectrum as drawn at reco ``energy`` (TeV).

    Point-like spectra (``meta['rad_max']``) get circles of the RAD_MAX of the reco bin holding
    ``energy`` (the nearest bin outside the axis) around the source and the OFF centres; the
    radius is returned third.  Other spectra: their regions unchanged, and None.
    """
    from .skyregions import CircleSky, parse_region

    rad = spec.meta.get("rad_max")
    if not rad:
        return spec.on_region, list(spec.off_regions), None
    edges = spec.energy_reco.edges
    k = int(np.clip(np.searchsorted(edges, energy, side="right") - 1, 0, edges.size - 2))
    r = float(rad[k])
    on = parse_region(spec.on_region)
    offs = [CircleSky(parse_region(o, "off_regions").center, r).to_ds9() for o in spec.off_regions]
    return CircleSky(on.center, r).to_ds9(), offs, r
