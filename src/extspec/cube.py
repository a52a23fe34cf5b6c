"""Per-observation reduction to a cube: counts, exposure and energy dispersion (spec §2-§4).

The cube of one observation holds

* ``counts[k, y, x]``: events per reco-energy bin and map pixel (§2.2),
* ``exposure[i, y, x]``: A_eff x livetime in m^2 s per true-energy bin and pixel (§3),
* ``edisp_kernel[y', x', i, k]``: the dispersion kernel on a coarse (0.2 deg) copy of the
  map (§4), with ``edisp_exposure[i, y', x']``, the coarse-pixel exposure used as its
  stacking weight,
* ``background[k, y, x]``: the counts predicted by the observation's background IRF
  (BKG_3D), before any normalisation (None without a background IRF).

The exposure and kernel cubes are what the ``reference`` method's ON/OFF extraction reads
(pixel means over the ON region, §5); :func:`make_cube` skips them with ``irf_cubes=False``
(the ``exact`` method computes both for the region itself, in :mod:`extspec.spectrum`).

Two methods, chosen by :attr:`CubeSettings.method`:

``"reference"``
    exactly as the spec (and the reference implementation): A_eff and the kernel sampled once
    at the log-centre of each true-energy bin.
``"exact"`` (default)
    each true-energy bin is oversampled (``oversample`` Gauss-Legendre nodes in ln E) and
    the exposure is the A_eff average weighted by a reference spectrum E^-2, the kernel the
    average weighted by A_eff x E^-2, so that exposure x kernel x integral flux is right to
    second order in the spectral index difference instead of being a midpoint rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .geometry import EnergyAxis, MapGeom, sky_to_frame
from .sky import separation, transform_point

__all__ = [
    "CubeSettings",
    "CubeDataset",
    "make_cube",
    "event_coords",
    "energy_bin_index",
    "bin_events",
    "make_exposure",
    "make_background",
    "background_in_mask",
    "background_predicted_at",
    "fov_positions",
    "edisp_kernel",
    "true_energy_samples",
    "REFERENCE_SPECTRAL_INDEX",
    "TRUE_AXIS_MARGIN",
]

TRUE_AXIS_MARGIN = 1.5
"""The true-energy axis must reach from ``energy_axis.min / 1.5`` to ``energy_axis.max * 1.5``
(about 0.18 decade beyond the reconstructed axis on each side): events reconstructed in the
outer reco bins come from true energies up to a few energy resolutions (10-30 %) away, and a
true axis cut at the reco edges drops them from the prediction and biases the fit (checked
for every config by ``extspec.workflow.checks``)."""

REFERENCE_SPECTRAL_INDEX = 2.0
"""Index of the E^-index weight used to oversample true-energy bins in the exact method."""

@dataclass(frozen=True)
class CubeSettings:
    """Reduction settings of the cube stage (all that a per-observation job needs).

    No defaults here: :func:`extspec.workflow.settings.cube_settings` builds them from the
    validated config (the schema holds the defaults).

    Attributes
    ----------
    geom : MapGeom
        Counts/exposure map geometry.

    energy_reco, energy_true : EnergyAxis

    method : {"exact", "reference"}

    edisp_binsz : float
        Pixel size of the coarse dispersion grid (deg); 0.2 in §4.1 (the config default).
    oversample : int
        Gauss-Legendre nodes per true-energy bin in the exact method.
    """

    geom: MapGeom
    energy_reco: EnergyAxis
    energy_true: EnergyAxis
    method: str
    edisp_binsz: float
    oversample: int

    @property
    def edisp_geom(self) -> MapGeom:
        return self.geom.with_binsz(self.edisp_binsz)


@dataclass
class CubeDataset:
    """The reduced cube of one observation (see module docstring for the arrays)."""

    obs_id: int
    geom: MapGeom
    edisp_geom: MapGeom
    energy_reco: EnergyAxis
    energy_true: EnergyAxis
    counts: np.ndarray  # (n_reco, ny, nx) int32
    exposure: np.ndarray | None  # (n_true, ny, nx) float64, m^2 s (None: not computed)
    edisp_kernel: np.ndarray | None  # (ny_c, nx_c, n_true, n_reco) float64
    edisp_exposure: np.ndarray | None  # (n_true, ny_c, nx_c) float64, m^2 s
    livetime: float
    ontime: float
    deadc: float
    pointing_radec: tuple[float, float]
    gti: np.ndarray
    lo_thres: float | None = None
    hi_thres: float | None = None
    method: str = "exact"
    source_file: str = ""
    checksum: str = ""
    meta: dict = field(default_factory=dict)
    background: np.ndarray | None = None  # (n_reco, ny, nx) float64, predicted counts


# ------------------------------------------------------------------------------- counts --


def event_coords(obs, frame: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Event positions in ``frame`` (deg, float64).

    ``exact``: the float32 RA/DEC columns are rotated in float64.  ``reference``: they are
    handed to astropy unchanged, so the frame transformation runs at float32 precision as in
    the reference (§2.2, "precision trap"; about 1e-5 deg).
    """
    if frame == "icrs":
        return obs.ra.astype(np.float64), obs.dec.astype(np.float64)
    lon, lat = sky_to_frame(obs.ra, obs.dec, "icrs", frame, float32_astropy=(method == "reference"))
    return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


def energy_bin_index(energy: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Reco-energy bin of each event, -1 outside ``[edges[0], edges[-1])`` (§2.2).

    ln E is taken at the precision of ``energy`` (float32 for event lists), the edges in
    float64, and the bin is ``floor(u + 0.5)`` with ``u = interp(ln E, ln e, 0..n) - 0.5``.
    """
    ln_e = np.log(energy).astype(np.float64)
    ln_edges = np.log(edges)
    n = edges.size - 1
    u = np.interp(ln_e, ln_edges, np.arange(n + 1, dtype=float)) - 0.5
    k = np.floor(u + 0.5).astype(np.int64)
    valid = (ln_e >= ln_edges[0]) & (ln_e < ln_edges[-1]) & (k >= 0) & (k < n)
    return np.where(valid, k, -1)


def pixel_index(geom: MapGeom, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices ``floor(p + 0.5)`` of world positions; -1 where outside the map (§2.2)."""
    px, py = geom.world_to_pix(lon, lat)
    with np.errstate(invalid="ignore"):
        ix = np.floor(px + 0.5)
        iy = np.floor(py + 0.5)
    nx, ny = geom.npix
    ok = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    return np.where(ok, ix, -1).astype(np.int64), np.where(ok, iy, -1).astype(np.int64)


def bin_events(geom: MapGeom, energy_reco: EnergyAxis, lon, lat, energy, energy_bins=None) -> np.ndarray:
    """Counts cube (n_reco, ny, nx) as int32 (§2.2).

    ``energy_bins``: the events' :func:`energy_bin_index` on ``energy_reco`` if already known.
    """
    ix, iy = pixel_index(geom, lon, lat)
    k = energy_bin_index(energy, energy_reco.edges) if energy_bins is None else energy_bins
    ok = (ix >= 0) & (k >= 0)
    ny, nx = geom.shape
    flat = (k[ok] * ny + iy[ok]) * nx + ix[ok]
    counts = np.bincount(flat, minlength=energy_reco.nbin * ny * nx)
    return counts.reshape(energy_reco.nbin, ny, nx).astype(np.int32)


# ----------------------------------------------------------------------------- exposure --


def true_energy_samples(energy_true: EnergyAxis, method: str, oversample: int):
    """Energies and weights at which IRFs are sampled per true bin.

    Returns ``(energies, weights)`` of shape (n_true, n_sub): for ``reference`` the
    log-centre with weight 1; for ``exact`` ``oversample`` Gauss-Legendre nodes in ln E
    with weights proportional to E^-REFERENCE_SPECTRAL_INDEX dE (normalised per bin).
    """
    if method == "reference" or oversample <= 1:
        return energy_true.centers[:, None], np.ones((energy_true.nbin, 1))
    x, w = np.polynomial.legendre.leggauss(int(oversample))
    lo = np.log(energy_true.edges[:-1])[:, None]
    hi = np.log(energy_true.edges[1:])[:, None]
    ln_e = 0.5 * (hi + lo) + 0.5 * (hi - lo) * x[None, :]
    e = np.exp(ln_e)
    wt = w[None, :] * e ** (1.0 - REFERENCE_SPECTRAL_INDEX)  # E^-g dE = E^(1-g) dlnE
    wt = wt / wt.sum(axis=1, keepdims=True)
    return e, wt


def aeff_weighted(aeff, energies, weights, offsets) -> tuple[np.ndarray, np.ndarray]:
    """A_eff averaged over the sub-samples of each true bin.

    Returns ``(mean_aeff, a_sub)``: (n_true,) + offsets.shape in m^2, and the raw
    sub-sample values (n_true, n_sub) + offsets.shape.
    """
    nt, ns = energies.shape
    a_sub = aeff.evaluate_grid(energies.ravel(), offsets).reshape((nt, ns) + np.shape(offsets))
    w = weights.reshape((nt, ns) + (1,) * np.ndim(offsets))
    return np.sum(a_sub * w, axis=1), a_sub


def make_exposure(obs, geom: MapGeom, energy_true: EnergyAxis, method: str, oversample: int):
    """Exposure cube (n_true, ny, nx) in m^2 s and the pixel offsets (ny, nx) in deg (§3)."""
    offsets = pixel_offsets(obs, geom)
    e, w = true_energy_samples(energy_true, method, oversample)
    mean_a, _ = aeff_weighted(obs.aeff, e, w, offsets)
    return mean_a * obs.livetime, offsets


def pointing_in_frame(obs, frame: str) -> tuple[float, float]:
    """Pointing position of ``obs`` in ``frame`` (deg)."""
    return transform_point(float(obs.pointing_radec[0]), float(obs.pointing_radec[1]), "icrs", frame)


def pixel_offsets(obs, geom: MapGeom) -> np.ndarray:
    """Angular distance (deg) of every pixel centre from the pointing, shape (ny, nx)."""
    lon, lat = geom.pixel_centers()
    plon, plat = pointing_in_frame(obs, geom.frame)
    return separation(lon, lat, plon, plat)


# ------------------------------------------------------------------------ edisp kernel --


def _kernel_from_density(f: np.ndarray, migra_edges: np.ndarray, e_true: np.ndarray, reco_edges: np.ndarray):
    """Kernel (..., n_e, n_reco) from migration densities f (..., n_e, n_migra) (§4.2-§4.3).

    ``f`` (float64, C-contiguous) is overwritten: it becomes its cumulative integral."""
    dmu = np.diff(migra_edges)
    # cumulative integral of the un-normalised density at the upper migration edges (the
    # integral to the lower edge of bin j is cum[j - 1], 0 for j = 0), in f's own memory;
    # normalised only where it is sampled
    cum = np.multiply(f, dmu, out=f)
    np.cumsum(cum, axis=-1, out=cum)
    norm = cum[..., -1]
    mu = reco_edges[None, :] / e_true[:, None]  # (n_e, n_edges)
    nm = dmu.size
    idx = np.clip(np.searchsorted(migra_edges, mu, side="right") - 1, 0, nm - 1)
    frac = np.clip((mu - migra_edges[idx]) / dmu[idx], 0.0, 1.0)
    frac = np.where(mu < migra_edges[0], 0.0, frac)
    rows = np.arange(e_true.size)[:, None]
    c0 = np.where(idx > 0, cum[..., rows, np.maximum(idx - 1, 0)], 0.0)
    c1 = cum[..., rows, idx]
    c = c0 + frac * (c1 - c0)
    c = np.where(mu > migra_edges[-1], norm[..., None], c)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(norm[..., None] > 0, c / np.where(norm > 0, norm, 1.0)[..., None], 0.0)
    k = np.maximum(0.0, np.diff(c, axis=-1))
    k[k < 1e-8] = 0.0
    return k


def edisp_kernel(edisp, aeff, energy_true: EnergyAxis, energy_reco: EnergyAxis, offsets,
                 method: str, oversample: int, offset_weights=None, node_kernels: dict | None = None):
    """Dispersion kernel(s) at the given offsets.

    Parameters
    ----------
    offsets : array (n_pos,) in deg

    offset_weights : array (n_pos,), optional
        If given, the kernels are averaged over the positions with weights
        ``offset_weights x A_eff`` (per true energy) and one kernel (n_true, n_reco) is
        returned; otherwise one kernel per position (n_pos, n_true, n_reco).
    node_kernels : dict, optional
        Sub-sample kernels per offset, kept across calls with the same IRFs, axes, method and
        oversampling (several ON regions of one run, :class:`extspec.spectrum.RunShare`):
        each offset's are computed once, bit for bit as without it (row by row arithmetic).

    Returns
    -------
    kernel, aeff_mean : the kernel(s) and the (weighted) mean A_eff (n_true[, n_pos]) in m^2.
    """
    offsets = np.atleast_1d(np.asarray(offsets, float))
    e, w = true_energy_samples(energy_true, method, oversample)
    nt, ns = e.shape
    if node_kernels is None:
        f = edisp.density_at_nodes(e.ravel(), offsets)  # (n_pos, nt*ns, n_migra)
        k = _kernel_from_density(f, edisp.migra.edges, e.ravel(), energy_reco.edges)
    else:
        new = np.unique([o for o in offsets.tolist() if o not in node_kernels])
        if new.size:
            f = edisp.density_at_nodes(e.ravel(), new)
            node_kernels.update(zip(new.tolist(), _kernel_from_density(f, edisp.migra.edges, e.ravel(),
                                                                       energy_reco.edges)))
        k = np.stack([node_kernels[o] for o in offsets.tolist()])
    k = k.reshape(offsets.size, nt, ns, energy_reco.nbin)
    a_sub = aeff.evaluate_grid(e.ravel(), offsets).reshape(nt, ns, offsets.size)  # m^2
    wa = w[:, :, None] * a_sub  # (nt, ns, n_pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        if offset_weights is None:
            den = wa.sum(axis=1).T  # (n_pos, nt)
            aeff_mean = den.T
            if ns == 1:
                kern = k[:, :, 0, :]
            else:
                # sub-bin average weighted by A_eff x E^-2; plain mean where A_eff vanishes
                num = np.einsum("pisk,isp->pik", k, wa)
                plain = np.einsum("pisk,is->pik", k, w)
                kern = np.where(den[..., None] > 0, num / np.where(den > 0, den, 1.0)[..., None], plain)
        else:
            wa = wa * np.asarray(offset_weights, float)[None, None, :]
            num = np.einsum("pisk,isp->ik", k, wa)
            den = wa.sum(axis=(1, 2))
            aeff_mean = den / np.sum(offset_weights)
            kern = np.where(den[:, None] > 0, num / np.where(den > 0, den, 1.0)[:, None], 0.0)
    kern = np.where(kern < 1e-8, 0.0, kern)
    return kern, aeff_mean


OFFSET_GRID_STEP = 0.1
"""deg; offset spacing on which the exact method evaluates kernels before interpolating."""


def offset_grid(offsets: np.ndarray, step: float = OFFSET_GRID_STEP):
    """A regular offset grid (deg, step ``step``) covering ``offsets``, and where each offset
    lies on it: ``(nodes, i, f)`` with ``offset = (1 - f) * nodes[i] + f * nodes[i + 1]``.

    The one offset-grid interpolation: kernels are evaluated on ``nodes`` and interpolated
    with ``(i, f)`` (:func:`make_cube`), or sample offsets are turned into node weights
    (:mod:`extspec.spectrum`)."""
    lo = np.floor(offsets.min() / step) * step
    n = int(np.ceil((offsets.max() - lo) / step)) + 2
    nodes = lo + step * np.arange(n)
    t = (offsets - lo) / step
    i = np.clip(np.floor(t).astype(int), 0, n - 2)
    return nodes, i, t - i


def _kernel_on_offset_grid(obs, settings: CubeSettings, offsets: np.ndarray):
    """Exact-method kernels at many offsets: evaluated (true bins oversampled) on a regular
    offset grid of step OFFSET_GRID_STEP and interpolated linearly to each offset.

    The kernel varies smoothly with offset (the IRF offset nodes are 0.5 deg apart), so the
    interpolation error is O(step^2), far below the statistical errors; A_eff itself is
    evaluated at the exact offsets.
    """
    nodes, i, f = offset_grid(offsets)
    k_nodes, _ = edisp_kernel(obs.edisp, obs.aeff, settings.energy_true, settings.energy_reco, nodes,
                              "exact", settings.oversample)
    f = f[:, None, None]
    kern = (1 - f) * k_nodes[i] + f * k_nodes[i + 1]
    kern = np.where(kern < 1e-8, 0.0, kern)
    e, w = true_energy_samples(settings.energy_true, "exact", settings.oversample)
    aeff_c, _ = aeff_weighted(obs.aeff, e, w, offsets)
    return kern, aeff_c


# ------------------------------------------------------------------------------ the cube --


BKG_NODES_PER_BIN = 4
"""Log-spaced midpoints per reco-energy bin at which the background rate is integrated."""


def _background_energy_nodes(energy_reco: EnergyAxis):
    """ln E nodes (n_reco, BKG_NODES_PER_BIN), midpoints in ln E of each reco bin, and their
    widths dE (TeV): the midpoint rule the background prediction integrates the rate with."""
    n = BKG_NODES_PER_BIN
    ln_edges = np.log(energy_reco.edges)
    width = np.diff(ln_edges)
    ln_e = ln_edges[:-1, None] + width[:, None] * (np.arange(n) + 0.5) / n  # (n_reco, n)
    return ln_e, np.exp(ln_e) * (width[:, None] / n)


def fov_positions(obs, geom: MapGeom, lonlat=None):
    """FoV coordinates (deg) of the pixel centres of ``geom`` (``lonlat``: those centres, if
    already known), with one weight per position: (fov_lon, fov_lat, weight) for
    ``FOVALIGN = RADEC`` (weight 1); for another alignment 16 azimuths per pixel at its
    offset (weight 1/16, the azimuth average)."""
    from .sky import fov_coords, transform

    if lonlat is None:
        ra, dec = _icrs_pixel_centres(geom)
    else:
        ra, dec = transform(*lonlat, geom.frame, "icrs")
    ra0, dec0 = float(obs.pointing_radec[0]), float(obs.pointing_radec[1])
    if obs.bkg.fovalign.upper() == "RADEC":
        flon, flat = fov_coords(ra, dec, ra0, dec0)
        return flon, flat, 1.0
    r = separation(ra, dec, ra0, dec0)
    phi = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)[:, None, None]
    return r * np.cos(phi), r * np.sin(phi), 1.0 / 16


@functools.lru_cache(maxsize=16)
def _icrs_pixel_centres(geom: MapGeom) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra, dec) of the pixel centres of ``geom``, computed once per process and
    geometry (every run of an analysis shares it); read-only arrays."""
    from .sky import transform

    return _read_only(transform(*geom.pixel_centers(), geom.frame, "icrs"))


@functools.lru_cache(maxsize=16)
def _solid_angle(geom: MapGeom) -> np.ndarray:
    """``geom.solid_angle()``, computed once per process and geometry; read-only."""
    return _read_only((geom.solid_angle(),))[0]


def _read_only(arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


def make_background(obs, geom: MapGeom, energy_reco: EnergyAxis) -> np.ndarray | None:
    """Background counts predicted by the observation's BKG_3D, shape (n_reco, ny, nx).

    rate(E, FoV position of the pixel centre) x livetime x pixel solid angle, integrated
    over each reco-energy bin by the midpoint rule in ln E (``BKG_NODES_PER_BIN``
    nodes).  FoV coordinates as in :func:`extspec.sky.fov_coords` for ``FOVALIGN = RADEC``;
    for another alignment (e.g. ALTAZ, which rotates over a run) the table is averaged over
    the azimuth at each offset.  None when the observation has no background IRF.
    """
    bkg = obs.bkg
    if bkg is None:
        return None
    ln_e, de = _background_energy_nodes(energy_reco)
    flon, flat, w = fov_positions(obs, geom)
    rate = bkg.evaluate(np.exp(ln_e).ravel(), flon, flat)
    if np.ndim(flon) == 3:  # azimuths
        rate = rate.mean(axis=1)
    ny, nx = geom.shape
    rate = rate.reshape(energy_reco.nbin, BKG_NODES_PER_BIN, ny, nx) * bkg.per_tev()
    return np.einsum("knyx,kn->kyx", rate, de) * (obs.livetime * _solid_angle(geom))


def background_predicted_at(obs, geom: MapGeom, positions=None) -> np.ndarray:
    """Pixels (ny, nx) where the background IRF predicts events at some energy
    (``positions``: :func:`fov_positions` of ``geom``, if already known)."""
    flon, flat, _ = fov_positions(obs, geom) if positions is None else positions
    sup = obs.bkg.support(flon, flat)
    return sup.any(axis=0) if sup.ndim == 3 else sup


def background_in_mask(obs, geom: MapGeom, mask: np.ndarray, energy_reco: EnergyAxis,
                       solid_angle: np.ndarray | None = None, positions=None) -> np.ndarray:
    """``make_background(obs, geom, energy_reco)[:, mask].sum(axis=1)``: the predicted
    background counts (n_reco,) in the pixels of ``mask`` (ny, nx), without a per-pixel cube
    (the IRF's :meth:`~extspec.irf.Bkg3D.evaluate_sum`; equal to the cube's sum where no interpolated rate is
    negative).  ``solid_angle``, ``positions``: ``geom.solid_angle()`` and
    :func:`fov_positions`, if already known.  The observation must have a background IRF."""
    bkg = obs.bkg
    ln_e, de = _background_energy_nodes(energy_reco)
    flon, flat, w = fov_positions(obs, geom) if positions is None else positions
    omega = geom.solid_angle() if solid_angle is None else solid_angle
    omega = np.where(mask, omega, 0.0) * obs.livetime * w
    sel = np.broadcast_to(mask, np.shape(flon))
    weights = np.broadcast_to(omega, np.shape(flon))[sel]
    rate = bkg.evaluate_sum(np.exp(ln_e).ravel(), flon[sel], flat[sel], weights)
    return (rate.reshape(energy_reco.nbin, BKG_NODES_PER_BIN) * de).sum(axis=1) * bkg.per_tev()


def make_cube(obs, settings: CubeSettings, event_lonlat=None, energy_bins=None,
              irf_cubes: bool = True, background_cube: bool = True) -> CubeDataset:
    """Reduce one observation to a :class:`CubeDataset` (§2-§4).

    ``event_lonlat`` may pass precomputed event coordinates in the map frame, ``energy_bins``
    the events' reco-energy bins (:func:`energy_bin_index`), so that a reduction computes
    them once for the cube and the spectrum.  With ``irf_cubes=False`` the exposure and
    dispersion cubes are left out (None): only the ``reference`` ON/OFF extraction reads them;
    with ``background_cube=False`` the background cube too (the spectra of
    :func:`extspec.reduction.reduce_regions`, which write no cube).
    """
    geom = settings.geom
    lon, lat = event_lonlat if event_lonlat is not None else event_coords(obs, geom.frame, settings.method)
    counts = bin_events(geom, settings.energy_reco, lon, lat, obs.energy, energy_bins)
    cgeom = settings.edisp_geom
    exposure = kern = edisp_exposure = None
    if irf_cubes:
        exposure, _ = make_exposure(obs, geom, settings.energy_true, settings.method, settings.oversample)
        coff = pixel_offsets(obs, cgeom).ravel()
        if settings.method == "reference":
            kern, aeff_c = edisp_kernel(obs.edisp, obs.aeff, settings.energy_true, settings.energy_reco, coff,
                                        "reference", settings.oversample)
        else:
            kern, aeff_c = _kernel_on_offset_grid(obs, settings, coff)
        ny, nx = cgeom.shape
        kern = kern.reshape(ny, nx, settings.energy_true.nbin, settings.energy_reco.nbin)
        edisp_exposure = aeff_c.reshape(settings.energy_true.nbin, ny, nx) * obs.livetime
    return CubeDataset(
        obs_id=obs.obs_id,
        geom=geom,
        edisp_geom=cgeom,
        energy_reco=settings.energy_reco,
        energy_true=settings.energy_true,
        counts=counts,
        exposure=exposure,
        edisp_kernel=kern,
        edisp_exposure=edisp_exposure,
        livetime=obs.livetime,
        ontime=obs.ontime,
        deadc=obs.deadc,
        pointing_radec=obs.pointing_radec,
        gti=obs.gti,
        lo_thres=obs.lo_thres,
        hi_thres=obs.hi_thres,
        method=settings.method,
        source_file=obs.source_file,
        checksum=obs.checksum,
        meta=dict(obs.meta),
        background=make_background(obs, geom, settings.energy_reco) if background_cube else None,
    )
