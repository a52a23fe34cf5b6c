"""ON/OFF spectrum of one observation (spec §5-§6): the in-memory dataset.

:class:`SpectrumDataset` is what the fit, the stacking and the OGIP files work with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import EnergyAxis

__all__ = ["SpectrumDataset"]


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


def region_pixel_mask(region, geom) -> np.ndarray:
    """Map pixels whose centres lie strictly inside ``region`` (§5.1), shape (ny, nx)."""
    from .skyregions import sky_to_pix

    pr = sky_to_pix(region, geom.projection)
    ny, nx = geom.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    return pr.contains(x, y)


def nearest_pixel(geom, lon: float, lat: float) -> tuple[int, int]:
    """Nearest pixel with ties to the lower index: ``ceil(p - 0.5)`` clipped (§4.4)."""
    px, py = geom.world_to_pix(lon, lat)
    nx, ny = geom.npix
    ix = int(np.clip(np.ceil(float(px) - 0.5), 0, nx - 1))
    iy = int(np.clip(np.ceil(float(py) - 0.5), 0, ny - 1))
    return ix, iy


def _events_in_regions(regions_sky, pix_regions, finder_wcs, ev_lon, ev_lat, frame, method, vecs=None):
    """Boolean mask of events strictly inside the union of OFF regions (§6.5).

    Exact method with circles: great-circle distance to each centre (``vecs``: event unit
    vectors in ``frame``, computed if not given); otherwise the finder's pixel frame, as the
    reference.
    """
    from .sky import unit_vectors
    from .skyregions import CircleSky

    inside = np.zeros(ev_lon.shape, bool)
    if not regions_sky:
        return inside
    if method == "exact" and all(isinstance(r, CircleSky) for r in regions_sky):
        vecs = unit_vectors(ev_lon, ev_lat) if vecs is None else vecs
        for r in regions_sky:
            inside |= r.contains_vectors(vecs, frame)
        return inside
    x, y = finder_wcs.world_to_pix(ev_lon, ev_lat)
    for pr in pix_regions:
        inside |= pr.contains(x, y)
    return inside


def _region_sample_offsets(region, pointing_lonlat, frame, step_deg):
    """Offsets (deg) of a fine grid of points inside ``region`` (exact containment)."""
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
    return separation(lon[keep], lat[keep], *pointing_lonlat)


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


def make_spectrum(obs, cube, on_region, exclusion_regions=(), method: str = "exact",
                  event_lonlat=None, sample_step: float = 0.02, oversample: int = 4,
                  energy_bins=None) -> tuple["SpectrumDataset", object]:
    """Extract the ON/OFF spectrum of one observation (§5, §6).

    Parameters
    ----------
    obs : Observation
    cube : CubeDataset of the same observation
    on_region : SkyRegion
    exclusion_regions : list of SkyRegion
    method : {"exact", "reference"}
        ``reference``: ON counts from the cube pixels whose centres are inside the region,
        exposure = unweighted mean over those pixels, kernel of the coarse pixel nearest to
        the region centre (§4.4, §5).  ``exact``: ON events by exact position, exposure
        averaged over a 0.02 deg sampling of the region, kernel averaged over the region
        weighted by exposure (true energies oversampled as in the cube).
    event_lonlat : (lon, lat) in the region frame, optional (saves a transformation).
    energy_bins : the events' reco-energy bins (``cube.energy_bin_index``), optional (saves
        binning the events in energy a second time after the cube).

    Returns
    -------
    (SpectrumDataset, ReflectedRegions)
    """
    from .cube import edisp_kernel, energy_bin_index, event_coords
    from .reflected import find_reflected_regions
    from .sky import SkyPoint, unit_vectors
    from .skyregions import CircleSky, as_sky_region

    on_region = as_sky_region(on_region, "on_region")
    center = on_region.center
    frame = center.frame
    pointing = SkyPoint(float(obs.pointing_radec[0]), float(obs.pointing_radec[1]), "icrs")
    p_lonlat = pointing.lonlat(frame)
    if event_lonlat is None:
        event_lonlat = event_coords(obs, frame, method)
    ev_lon, ev_lat = event_lonlat
    ereco, etrue = cube.energy_reco, cube.energy_true
    kbin = energy_bin_index(obs.energy, ereco.edges) if energy_bins is None else energy_bins
    nreco = ereco.nbin

    if method == "reference":
        mask = region_pixel_mask(on_region, cube.geom)
        if not mask.any():
            raise ValueError("ON region contains no map pixel centre")
        counts = cube.counts[:, mask].sum(axis=1).astype(np.int64)
        exposure = cube.exposure[:, mask].mean(axis=1)
        clon, clat = center.lonlat(cube.geom.frame)
        ix, iy = nearest_pixel(cube.edisp_geom, clon, clat)
        kernel = cube.edisp_kernel[iy, ix]
        weight = cube.edisp_exposure[:, iy, ix]
    else:
        vecs = unit_vectors(ev_lon, ev_lat)
        if isinstance(on_region, CircleSky):
            on_ev = on_region.contains_vectors(vecs, frame)
        else:
            on_ev = None  # decided below in the finder frame, like the OFF regions
        offs = _region_sample_offsets(on_region, p_lonlat, frame, sample_step)
        if offs.size == 0:
            raise ValueError("ON region is smaller than the sampling step")
        nodes, w = _offset_histogram(offs)
        kernel, aeff_mean = edisp_kernel(obs.edisp, obs.aeff, etrue, ereco, nodes, "exact", oversample, offset_weights=w)
        exposure = aeff_mean * obs.livetime
        weight = exposure.copy()
        counts = None

    refl = find_reflected_regions(on_region, pointing, exclusion_regions, method=method)
    if method == "exact" and on_ev is None:
        on_ev = _events_in_regions([on_region], [refl.on_pixel_region], refl.grid.wcs, ev_lon, ev_lat, frame, "pixel")
    if counts is None:
        sel = on_ev & (kbin >= 0)
        counts = np.bincount(kbin[sel], minlength=nreco).astype(np.int64)
    off_ev = _events_in_regions(refl.regions, refl.pixel_regions, refl.grid.wcs, ev_lon, ev_lat, frame, method,
                                vecs if method == "exact" else None)
    sel = off_ev & (kbin >= 0)
    counts_off = np.bincount(kbin[sel], minlength=nreco).astype(np.int64)
    n_off = len(refl)
    usable = n_off > 0
    reason = ""
    if not usable:
        sep = refl.grid.separation
        reason = (f"no reflected OFF region fits (ON-region centre {sep:.3f} deg from the pointing"
                  + (", pointing inside the ON region)" if refl.info.get("pointing_inside") else
                     "; exclusions or region size leave no room)"))
    ds = SpectrumDataset(
        obs_id=obs.obs_id,
        energy_reco=ereco,
        energy_true=etrue,
        counts=counts,
        counts_off=counts_off,
        acceptance=np.ones(nreco),
        acceptance_off=np.full(nreco, float(n_off)),
        exposure=np.asarray(exposure, float),
        edisp=np.asarray(kernel, float),
        edisp_weight=np.asarray(weight, float),
        mask_safe=np.full(nreco, usable),
        livetime=obs.livetime,
        ontime=obs.ontime,
        gti=obs.gti,
        usable=usable,
        reason=reason,
        on_region=on_region.to_ds9(),
        off_regions=[r.to_ds9() for r in refl.regions],
        pointing_radec=tuple(obs.pointing_radec),
        meta={
            "method": method,
            "lo_thres": obs.lo_thres,
            "hi_thres": obs.hi_thres,
            "offset": float(refl.grid.separation),
            "source_file": obs.source_file,
            "checksum": obs.checksum,
        },
    )
    return ds, refl
