"""PSF containment: which flux a spectrum measures, and the source's flux through the exposure.

Without a source morphology (``model.spatial`` absent) a full-enclosure ON/OFF spectrum measures
the flux of the photons reconstructed *inside the ON region*.  With one, each run's ON-region
exposure is multiplied by the fraction of the source's photons the IRFs put inside the ON region,
so that the fit (and any tool reading the OGIP files) gives the flux of the whole source.

For true energy ``E`` and a source of normalised surface brightness ``S(p)`` (``sum S = 1``)
the photons of true position ``p`` arrive with the effective area ``A(E, theta_p)`` (``theta_p``
its offset from the pointing) and are reconstructed inside the ON region with the probability

.. math:: F_{ON}(p, E) = \\int_{ON} \\mathrm{PSF}(|q - p|;\\, E, \\theta_p)\\, dq,

the PSF at the position's *own* offset.  The containment is the effective-area weighted mean
``C(E) = sum_p S A F_ON / sum_p S A`` and the exposure of the source's flux is

.. math:: X_{src}(E) = T \\sum_p S(p)\\, A(E, \\theta_p)\\, F_{ON}(p, E)
          = X_{ON}(E)\\, \\frac{\\sum_p S A F_{ON}}{\\langle A \\rangle_{ON}},

with ``X_ON`` the ON-region exposure of :func:`extspec.spectrum.on_response` and ``<A>_ON`` the
effective area averaged over the ON region on the same grid (:attr:`SourceContainment.exposure_factor`).

Numerics (:func:`source_containment`), all vectorised: a tangent-plane grid centred on the source,
with pixels of a quarter of the narrowest PSF 68 % radius (or a tenth of the ON region's radius,
or of the source's extent, when smaller; at most ``GRID_MAX_PIX`` a side),
wide enough for the source, the ON region and the PSF out to 99.9 % containment; region masks and
the disk are sub-sampled 4 x 4 per pixel (fractional coverage).  ``F_ON`` is the ON mask convolved
with the PSF kernel (FFT), evaluated at the nodes of a 0.1 deg offset grid spanning the source and
interpolated linearly in offset to each pixel.  The PSF kernel is normalised to its radial
integral inside its radius (a fine 1D integration), so the pixel sampling of a narrow core
does not change the PSF's total, and its core (``CORE_PIXELS``) is averaged over 8 x 8
sub-positions per pixel.  The same convolution with the OFF regions' mask gives the
*leakage*: the model's signal in the OFF regions over that in the ON region (times alpha in the
spectrum's metadata: the fraction by which the background estimate eats the excess).

Point-like IRFs (RAD_MAX) already hold a point source's containment in their effective area:
``type: point`` needs no factor there, and an extended morphology is refused (the IRFs cannot
describe it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SPATIAL_TYPES", "SpatialModel", "SourceContainment", "source_containment", "point_containment",
           "apply_spatial", "flux_definition", "CONTAINMENT_NOTE_BELOW", "LEAKAGE_WARN_ABOVE",
           "containment_warnings", "flux_meaning_record", "short_flux_definition"]

SPATIAL_TYPES = ("point", "disk", "gauss", "template")
"""Source morphologies of ``model.spatial``."""

CONTAINMENT_NOTE_BELOW = 0.9
"""Without ``model.spatial``: a point source's containment in the ON region at the safe
threshold below this is logged and recorded (the flux inside the region is then far from the
source's)."""

MIN_CONTAINMENT = 0.01
"""A run whose ON region holds less than this fraction of the source's photons at every energy
(a source placed off the region, or a PSF not covering the run) is unusable with the reason."""

LEAKAGE_WARN_ABOVE = 0.03
"""Model signal in the OFF regions above this fraction of the ON signal is warned about."""

KERNEL_FRACTION = 0.999
"""The PSF kernel reaches out to the radius holding this fraction of the PSF (the widest over
energies and offsets); the rest counts as reconstructed outside the ON region."""

CORE_PIXELS = 4
"""The PSF kernel is averaged over 8 x 8 sub-positions per pixel within this many pixels of its
centre (a narrow core varies within a pixel), sampled at the pixel centre beyond."""

GRID_MAX_PIX = 401
"""Largest grid side (pixels); beyond it the pixels grow."""

SUBSAMPLE = 4
"""Sub-samples per pixel side for the fractional coverage of regions and of a disk."""

GAUSS_EXTENT = 5.0
"""A Gaussian source is drawn out to this many sigma (the rest, 4e-6, is left out)."""

CHUNK_ELEMENTS = 4_000_000
"""Energies are processed in groups of at most this many kernel pixels (memory)."""

OFFSET_STEP = 0.1
"""deg; offset-grid step of the PSF evaluation for extended sources (the PSF tables have
0.5 deg nodes, so linear interpolation between 0.1 deg nodes is exact for them)."""


@dataclass(frozen=True)
class SkyTemplate:
    """A surface-brightness template as weighted sky samples (read by
    :func:`extspec.io.sky_image.read_template`): the centres of its pixels with a positive
    value, in ``frame`` (deg), and their share of the total brightness (``weight`` sums to 1);
    ``pixel`` its pixel size (deg), ``source`` the file."""

    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    frame: str
    pixel: float
    source: str

    def centre_and_extent(self) -> tuple[float, float, float]:
        """Brightness-weighted centre (lon, lat, deg) and the largest distance of a sample from it
        plus half a pixel diagonal (deg)."""
        from .sky import separation, unit_vectors

        v = unit_vectors(self.lon, self.lat) @ self.weight
        v = v / np.linalg.norm(v)
        lon, lat = float(np.degrees(np.arctan2(v[1], v[0]))), float(np.degrees(np.arcsin(np.clip(v[2], -1, 1))))
        ext = float(separation(self.lon, self.lat, lon, lat).max()) + 0.71 * self.pixel
        return lon % 360.0, lat, ext


@dataclass(frozen=True)
class SpatialModel:
    """The source morphology of ``model.spatial`` (no defaults here: built by the workflow
    layer, the position defaulting to the ON-region centre).

    Attributes
    ----------
    type : {"point", "disk", "gauss", "template"}

    lon, lat : float
        Centre, deg, in ``frame`` (a template's: its brightness-weighted centre).

    frame : {"icrs", "galactic"}

    radius : float or None
        Disk radius, deg (uniform surface brightness inside).
    sigma : float or None
        Gaussian sigma per axis, deg (``exp(-r^2 / 2 sigma^2)``).
    file : str or None
        The template's FITS image (type template).
    template : SkyTemplate or None
        Its pixels on the sky (type template; not compared).
    """

    type: str
    lon: float
    lat: float
    frame: str
    radius: float | None
    sigma: float | None
    file: str | None
    template: SkyTemplate | None = field(compare=False, repr=False)

    @property
    def center(self):
        from .sky import SkyPoint

        return SkyPoint(float(self.lon), float(self.lat), self.frame)

    @property
    def extent(self) -> float:
        """deg; the radius the morphology is drawn out to (0 for a point)."""
        if self.type == "template":
            return self.template.centre_and_extent()[2] if self.template is not None else 0.0
        return {"point": 0.0, "disk": self.radius or 0.0, "gauss": GAUSS_EXTENT * (self.sigma or 0.0)}[self.type]

    def describe(self) -> str:
        at = f"at ({self.lon:.4f}, {self.lat:.4f}) {self.frame}"
        if self.type == "disk":
            return f"disk of radius {self.radius:g} deg {at}"
        if self.type == "gauss":
            return f"2D Gaussian of sigma {self.sigma:g} deg {at}"
        if self.type == "template":
            return f"template {self.file} centred {at}"
        return f"point source {at}"

    def as_meta(self) -> dict:
        return {k: v for k, v in (("type", self.type), ("lon", float(self.lon)), ("lat", float(self.lat)),
                                  ("frame", self.frame), ("radius", self.radius), ("sigma", self.sigma),
                                  ("file", self.file))
                if v is not None}


@dataclass(frozen=True)
class SourceContainment:
    """PSF containment of one run at its true-energy nodes (:func:`source_containment`).

    Attributes
    ----------
    energy : (nE,) true energies, TeV

    containment : (nE,) fraction of the source's photons (effective-area weighted) reconstructed
        inside the ON region

    exposure_factor : (nE,) what multiplies the ON-region exposure (``sum S A F_ON / <A>_ON``)
    leakage : (nE,) model signal in the OFF regions over that in the ON region (0 without OFF regions)
    step : grid pixel, deg; npix : grid side
    """

    energy: np.ndarray
    containment: np.ndarray
    exposure_factor: np.ndarray
    leakage: np.ndarray
    step: float
    npix: int

    def leakage_max(self) -> float:
        """The largest leakage over the energies where the ON signal is at least 1 % of its peak."""
        sig = self.containment
        use = sig >= 0.01 * sig.max() if sig.size and sig.max() > 0 else np.zeros(sig.shape, bool)
        return float(self.leakage[use].max()) if use.any() else 0.0


# ------------------------------------------------------------------------------- grid --


@dataclass(frozen=True)
class _Grid:
    proj: object
    step: float
    n: int
    x: np.ndarray  # (n, n) 0-based pixel coordinates
    y: np.ndarray

    def world(self, x=None, y=None):
        return self.proj.pix_to_world(self.x if x is None else x, self.y if y is None else y)

    def subsamples(self):
        """Pixel coordinates of SUBSAMPLE x SUBSAMPLE sub-positions per pixel, shape (n, n, k*k)."""
        k = SUBSAMPLE
        d = (np.arange(k) + 0.5) / k - 0.5
        dx, dy = np.meshgrid(d, d)
        return self.x[..., None] + dx.ravel(), self.y[..., None] + dy.ravel()


def _make_grid(spatial: SpatialModel, half_width: float, step: float) -> _Grid:
    from .sky import Projection

    h = int(np.ceil(half_width / step))
    if 2 * h + 1 > GRID_MAX_PIX:
        h = (GRID_MAX_PIX - 1) // 2
        step = half_width / h
    n = 2 * h + 1
    proj = Projection.tangent(spatial.lon, spatial.lat, step, (h + 1.0, h + 1.0), spatial.frame)
    y, x = np.mgrid[0:n, 0:n].astype(float)
    return _Grid(proj, step, n, x, y)


def _region_extent(region, center) -> tuple[float, float]:
    """(distance of the region centre from ``center``, radius of a circle around the region
    centre holding the region), deg."""
    from .skyregions import CircleSky, region_center

    c = region_center(region)
    d = float(c.separation(center.to(c.frame)))
    if isinstance(region, CircleSky):
        return d, float(region.radius)
    from .sky import Projection

    w = Projection.tangent(c.lon, c.lat, 0.001, (1.0, 1.0), c.frame)
    bb = region.to_pixel(w).bounding_box
    corners = np.array([[bb.ixmin, bb.iymin], [bb.ixmax, bb.iymax], [bb.ixmin, bb.iymax], [bb.ixmax, bb.iymin]],
                       float)
    return d, float(np.max(np.hypot(corners[:, 0], corners[:, 1]))) * 0.001 + 0.002


def _region_fraction(regions, grid: _Grid, frame: str) -> np.ndarray:
    """Fraction (0-1) of each pixel inside the union of ``regions`` (sub-sampled), (n, n).

    Circles by great-circle distance, sub-sampled only in the pixels their edge may cross;
    other shapes in the grid's pixel frame."""
    from .sky import unit_vectors
    from .skyregions import CircleSky, PointSky

    xs, ys = grid.subsamples()
    inside = np.zeros(xs.shape, bool)
    centres = None
    half_diag = np.sqrt(0.5) * grid.step
    for r in regions:
        if isinstance(r, PointSky):
            continue
        if not isinstance(r, CircleSky):
            inside |= r.to_pixel(grid.proj).contains(xs, ys)
            continue
        if centres is None:
            centres = unit_vectors(*(c.ravel() for c in grid.world()))
        c = r.center.to(frame)
        cos_d = np.clip(unit_vectors(c.lon, c.lat) @ centres, -1.0, 1.0).reshape(grid.n, grid.n)
        d = np.degrees(np.arccos(cos_d))
        inside[d < r.radius - half_diag] = True  # whole pixels
        edge = np.abs(d - r.radius) <= half_diag
        if edge.any():
            v = unit_vectors(*(a.ravel() for a in grid.world(xs[edge], ys[edge])))
            inside[edge] |= r.contains_vectors(v, frame).reshape(xs[edge].shape)
    return inside.mean(axis=-1)


def _source_weights(spatial: SpatialModel, grid: _Grid) -> np.ndarray:
    """Normalised surface brightness per pixel (sum 1), (n, n)."""
    from .sky import separation

    if spatial.type == "point":
        s = np.zeros((grid.n, grid.n))
        s[grid.n // 2, grid.n // 2] = 1.0
        return s
    if spatial.type == "template":  # each template pixel's share on the grid pixel holding its centre
        t = spatial.template
        lon, lat = t.lon, t.lat
        if t.frame != grid.proj.frame:
            from .sky import transform

            lon, lat = transform(lon, lat, t.frame, grid.proj.frame)
        px, py = grid.proj.world_to_pix(lon, lat)
        ix, iy = np.rint(px).astype(int), np.rint(py).astype(int)
        ok = (ix >= 0) & (ix < grid.n) & (iy >= 0) & (iy < grid.n)
        s = np.bincount(iy[ok] * grid.n + ix[ok], t.weight[ok], minlength=grid.n**2).reshape(grid.n, grid.n)
    elif spatial.type == "disk":
        xs, ys = grid.subsamples()
        lon, lat = grid.world(xs, ys)
        s = (separation(lon, lat, spatial.lon, spatial.lat) < spatial.radius).mean(axis=-1)
    else:
        lon, lat = grid.world()
        r = separation(lon, lat, spatial.lon, spatial.lat)
        s = np.where(r <= GAUSS_EXTENT * spatial.sigma, np.exp(-0.5 * (r / spatial.sigma) ** 2), 0.0)
    total = s.sum()
    if total <= 0:
        raise ValueError(f"model.spatial: the {spatial.describe()} covers no pixel of the {grid.step:.4f} deg grid")
    return s / total


def _kernels(psf, energy: np.ndarray, offset: float, grid: _Grid, r_kernel: float) -> np.ndarray:
    """PSF kernels (nE, n, n) on the grid centred on its centre pixel: density x pixel area,
    0 beyond ``r_kernel``, each scaled to the radial integral of the PSF inside ``r_kernel``."""
    h = grid.n // 2
    d = (np.arange(grid.n) - h) * grid.step
    r = np.hypot(d[None, :], d[:, None])
    inner = r <= r_kernel
    k = np.zeros((energy.size, grid.n, grid.n))
    k[:, inner] = psf.density(energy, offset, r[inner]) * grid.step**2
    # the core, where the PSF changes within a pixel: the mean over 8 x 8 sub-positions
    core = inner & (r <= CORE_PIXELS * grid.step)
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    sx, sy = np.meshgrid(sub, sub)
    yy, xx = np.nonzero(core)
    rs = np.hypot((xx[:, None] - h + sx.ravel()) * grid.step, (yy[:, None] - h + sy.ravel()) * grid.step)
    k[:, core] = psf.density(energy, offset, rs.ravel()).reshape(energy.size, -1, 64).mean(axis=2) * grid.step**2
    edges = np.linspace(0.0, r_kernel, max(int(np.ceil(r_kernel / 0.0005)), 200) + 1)
    mid = 0.5 * (edges[1:] + edges[:-1])
    integral = psf.density(energy, offset, mid) @ (np.pi * np.diff(edges**2))  # (nE,)
    sums = k.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(sums > 0, integral / sums, 0.0)
    return k * scale[:, None, None]


def _convolve(mask_ft: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """``mask`` (given by its rfft2) convolved with each centred kernel, (nE, n, n)."""
    n = kernels.shape[-1]
    k_ft = np.fft.rfft2(np.fft.ifftshift(kernels, axes=(-2, -1)))
    return np.fft.irfft2(mask_ft[None] * k_ft, s=(n, n))


def source_containment(psf, aeff, pointing, spatial: SpatialModel, on_region, off_regions,
                       energy: np.ndarray, note_only: bool = False) -> SourceContainment:
    """PSF containment of ``spatial`` in ``on_region`` (and the leakage into ``off_regions``) for
    one run: ``psf`` (a radial PSF of :mod:`extspec.irf`), ``aeff`` (:class:`~extspec.irf.Aeff2D`),
    ``pointing`` (:class:`~extspec.sky.SkyPoint`), at true energies ``energy`` (TeV).  See the
    module docstring for the formula and the numerics.

    ``note_only``: only :attr:`SourceContainment.containment` is wanted (the note of
    :func:`point_containment`); the ON-region mean effective area is then not computed and
    ``exposure_factor`` is NaN.  The containment is the same number either way."""
    from .sky import separation

    energy = np.asarray(energy, float).ravel()
    frame = spatial.frame
    plon, plat = pointing.lonlat(frame)
    src_offset = float(separation(spatial.lon, spatial.lat, plon, plat))
    # PSF scales over the source's offsets: the widest for the kernel, the narrowest for the pixels
    probe = [max(src_offset - spatial.extent, 0.0), src_offset, src_offset + spatial.extent]
    radii = {o: psf.containment_radii(energy, o, (KERNEL_FRACTION, 0.68)) for o in dict.fromkeys(probe)}
    r_kernel = float(max(radii[o][0].max() for o in probe))
    r68 = np.concatenate([radii[o][1] for o in probe])
    r68 = r68[r68 > 0]
    d_on, ext_on = _region_extent(on_region, spatial.center)
    step = min(float(r68.min()) / 4 if r68.size else 0.01, ext_on / 10)
    if spatial.type != "point":
        step = min(step, spatial.extent / 10)
    half = max(spatial.extent + r_kernel, d_on + ext_on) + 2 * step
    grid = _make_grid(spatial, half, max(step, 1e-4))
    source = _source_weights(spatial, grid)
    on = _region_fraction([on_region], grid, frame)
    has_off = bool(off_regions)
    off = _region_fraction(list(off_regions), grid, frame) if has_off else None
    has_off = has_off and bool(off.any())

    def offsets(where):  # offsets (deg) of the pixels selected by ``where`` from the pointing
        lon, lat = grid.world(grid.x[where], grid.y[where])
        return separation(lon, lat, plon, plat)

    # the ON-region mean effective area on this grid (what X_ON is made of)
    a_on = None if note_only else aeff.evaluate_grid(energy, offsets(on > 0)) @ on[on > 0] / on.sum()
    support = source > 0
    s_w, s_off = source[support], offsets(support)
    a_src = aeff.evaluate_grid(energy, s_off)  # (nE, nS)
    if spatial.type != "point":
        from .cube import offset_grid

        on_ft = np.fft.rfft2(on)
        off_ft = np.fft.rfft2(off) if has_off else None
        nodes, i, f = offset_grid(s_off, OFFSET_STEP)
        used = np.unique(np.concatenate([i, i + 1]))

    def fractions(e):  # F_ON and F_OFF at the source pixels, (ne, nS) each
        if spatial.type == "point":
            k = _kernels(psf, e, src_offset, grid, r_kernel)
            f_off = np.einsum("eyx,yx->e", k, off)[:, None] if has_off else np.zeros((e.size, 1))
            return np.einsum("eyx,yx->e", k, on)[:, None], f_off
        fo, ff = np.zeros((e.size, s_w.size)), np.zeros((e.size, s_w.size))
        for j in used:  # one FFT convolution per offset node (a handful)
            k = _kernels(psf, e, float(nodes[j]), grid, r_kernel)
            w = np.where(i == j, 1.0 - f, 0.0) + np.where(i + 1 == j, f, 0.0)  # (nS,)
            fo += _convolve(on_ft, k)[:, support] * w
            if has_off:
                ff += _convolve(off_ft, k)[:, support] * w
        return fo, ff

    chunk = max(1, int(CHUNK_ELEMENTS // grid.n**2))
    parts = [fractions(energy[a:a + chunk]) for a in range(0, energy.size, chunk)]
    f_on = np.concatenate([p[0] for p in parts])
    f_off = np.concatenate([p[1] for p in parts])
    f_on, f_off = np.clip(f_on, 0.0, 1.0), np.clip(f_off, 0.0, 1.0)
    sa = a_src * s_w  # (nE, nS)
    total, in_on, in_off = sa.sum(axis=1), (sa * f_on).sum(axis=1), (sa * f_off).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        containment = np.where(total > 0, in_on / total, 0.0)
        factor = np.full(energy.shape, np.nan) if note_only else np.where(a_on > 0, in_on / a_on, 0.0)
        leakage = np.where(in_on > 0, in_off / in_on, 0.0)
    return SourceContainment(energy, containment, factor, leakage, grid.step, grid.n)


def point_containment(psf, aeff, pointing, on_region, energy: np.ndarray) -> np.ndarray:
    """Fraction of a point source's photons at the ON-region centre reconstructed inside the ON
    region, at true energies ``energy`` (TeV): the note written when ``model.spatial`` is absent."""
    from .skyregions import region_center

    c = region_center(on_region)
    spatial = SpatialModel("point", float(c.lon), float(c.lat), c.frame, None, None, None, None)
    return source_containment(psf, aeff, pointing, spatial, on_region, (), energy, note_only=True).containment


# ------------------------------------------------------------------ what a flux means --


def apply_spatial(obs, spec, on_region, off, spatial: SpatialModel | None) -> None:
    """What a run's flux means, applied to its spectrum ``spec`` (after its safe mask is set;
    the safe thresholds stay those of the IRF's effective area).

    * ``spatial`` given, full-enclosure IRFs: the exposure and the kernel's stacking weight are
      multiplied by :attr:`SourceContainment.exposure_factor`; ``meta`` records the morphology,
      the containment per true-energy bin and the leakage into the OFF regions (``off``, the
      :class:`~extspec.reflected.ReflectedRegions` of the spectrum): the model's signal in the
      OFF regions times alpha over its signal in the ON region, the fraction by which it biases
      the excess (and the flux) low; the largest over the true-energy bins where the ON signal
      is at least 1 % of its peak.  A run without a readable
      PSF becomes unusable with the reason;
    * ``spatial`` given, point-like IRFs: ``type: point`` is what their effective area means (no
      factor); an extended morphology is refused in one line;
    * ``spatial`` absent, full-enclosure IRFs with a PSF: ``meta`` records a point source's
      containment in the ON region at the safe threshold (``point_containment``), the note of
      :data:`CONTAINMENT_NOTE_BELOW`.
    """
    from .sky import SkyPoint

    if spec.meta.get("irf_class") == "point-like" or getattr(obs, "rad_max", None) is not None:
        if spatial is None:
            return
        if spatial.type != "point":
            from .errors import ConfigError

            raise ConfigError(
                f"obs {obs.obs_id}: model.spatial type '{spatial.type}' with point-like IRFs (RAD_MAX): they describe "
                "a point source only; use type: point, or full-enclosure IRFs with a PSF for an extended source")
        spec.meta["spatial"] = spatial.as_meta()
        spec.meta["containment"] = "point-like IRFs: in the effective area (RAD_MAX)"
        return
    pointing = SkyPoint(float(obs.pointing_radec[0]), float(obs.pointing_radec[1]), "icrs")
    psf = getattr(obs, "psf", None)
    if spatial is None:
        if psf is None or not spec.usable or not spec.mask_safe.any():
            return
        e_thr = float(spec.energy_reco.edges[:-1][spec.mask_safe][0])
        frac = float(point_containment(psf, obs.aeff, pointing, on_region, np.array([e_thr]))[0])
        if frac <= 0:  # the PSF does not cover the threshold (or the offset): nothing to say
            return
        spec.meta["point_containment"] = round(frac, 4)
        spec.meta["point_containment_energy"] = e_thr
        return
    spec.meta["spatial"] = spatial.as_meta()
    if psf is None:
        why = getattr(obs, "psf_error", None) or "no PSF"
        spec.usable = False
        spec.reason = f"no PSF for model.spatial ({why})"
        spec.mask_safe = np.zeros_like(spec.mask_safe)
        return
    res = source_containment(psf, obs.aeff, pointing, spatial, on_region, list(off.regions) if off else [],
                             spec.energy_true.centers)
    if res.containment.max() < MIN_CONTAINMENT:
        spec.usable = False
        spec.reason = (f"model.spatial: the {spatial.describe()} puts under {MIN_CONTAINMENT:.0%} of its photons "
                       "inside the ON region (or the PSF does not cover this run's energies and offset)")
        spec.mask_safe = np.zeros_like(spec.mask_safe)
    spec.exposure = spec.exposure * res.exposure_factor
    spec.edisp_weight = spec.edisp_weight * res.exposure_factor
    spec.meta["containment"] = [round(float(v), 6) for v in res.containment]
    alpha = spec.alpha[spec.alpha > 0]
    spec.meta["leakage"] = round(res.leakage_max() * (float(np.median(alpha)) if alpha.size else 0.0), 6)
    spec.meta["containment_grid"] = [round(float(res.step), 6), int(res.npix)]


def flux_definition(spectra) -> str:
    """What the flux of a fit of ``spectra`` is, in one sentence (their metadata decides)."""
    spatial = next((s.meta.get("spatial") for s in spectra if s.meta.get("spatial")), None)
    point_like = any(str(s.meta.get("irf_class", "")) == "point-like" for s in spectra)  # irf.POINT_LIKE
    if spatial:
        m = SpatialModel(spatial["type"], spatial["lon"], spatial["lat"], spatial["frame"], spatial.get("radius"),
                         spatial.get("sigma"), spatial.get("file"), None)
        how = ("point-like IRFs hold its containment in RAD_MAX" if point_like and m.type == "point" else
               "PSF containment in the ON region applied to the exposure (ARF)")
        return f"flux of the whole source (model.spatial: {m.describe()}; {how})"
    if point_like:
        return "flux of a point source (point-like IRFs: the containment within RAD_MAX is in the effective area)"
    on = next((s.on_region for s in spectra if s.on_region), "")
    return f"flux inside the ON region {on}, no PSF containment (model.spatial absent)"


def containment_warnings(obs_id, spec) -> list[str]:
    """What a run's flux means, when it matters, as warning lines: a small point-source
    containment without ``model.spatial`` (:data:`CONTAINMENT_NOTE_BELOW`), or model signal
    leaking into the OFF regions with it (:data:`LEAKAGE_WARN_ABOVE`)."""
    out = []
    frac = spec.meta.get("point_containment")
    if frac is not None and frac < CONTAINMENT_NOTE_BELOW:
        out.append(f"obs {obs_id}: the ON region holds {100 * frac:.0f}% of a point source's flux at the safe "
                   f"threshold ({spec.meta.get('point_containment_energy', float('nan')):.3g} TeV): the fit gives the "
                   "flux inside the region; for the source's flux set model.spatial: {type: point} (or its "
                   "disk/gauss morphology)")
    leak = spec.meta.get("leakage")
    if isinstance(leak, float) and leak > LEAKAGE_WARN_ABOVE:
        out.append(f"obs {obs_id}: the model's signal inside the OFF regions is {100 * leak:.1f}% of its ON-region "
                   "signal (times alpha): it biases the background up and the flux down by that; keep the OFF "
                   "regions off the source with exclusion_regions")
    return out


def flux_meaning_record(spectra) -> tuple[dict, list[str]]:
    """The keys of result.yaml saying what the fitted flux is, and the warning lines they raise.

    ``flux_definition`` and, as the runs give them, ``containment`` (per run: the PSF
    containment per true-energy bin and the leakage into the OFF regions) or
    ``point_source_containment`` (without model.spatial: a point source's containment in the ON
    region at each run's safe threshold, and the hint)."""
    warnings = []
    out = {"flux_definition": flux_definition(spectra)}
    with_c = [s for s in spectra if isinstance(s.meta.get("containment"), list)]
    if with_c:
        out["containment"] = {
            "what": "fraction of the source's photons reconstructed inside the ON region, per true-energy bin "
                    "(multiplies each run's exposure); leakage: the model's signal in the OFF regions times alpha over "
                    "its signal in the ON region (the fraction it biases the excess low), the largest over energy",
            "energy_true_edges": [float(e) for e in with_c[0].energy_true.edges],
            "runs": {int(s.obs_id): {"containment": s.meta["containment"], "leakage": s.meta.get("leakage")}
                     for s in with_c}}
        leaky = {int(s.obs_id): s.meta.get("leakage") for s in with_c
                 if (s.meta.get("leakage") or 0) > LEAKAGE_WARN_ABOVE}
        if leaky:
            out["containment"]["leakage_warning"] = (
                f"model signal inside the OFF regions (times alpha) above {LEAKAGE_WARN_ABOVE:.0%} of the ON signal, "
                "obs " + ", ".join(f"{k} ({v:.1%})" for k, v in leaky.items()))
            warnings.append(out["containment"]["leakage_warning"])
    pc = {int(s.obs_id): s.meta["point_containment"] for s in spectra if s.meta.get("point_containment") is not None}
    if pc:
        low = min(pc.values())
        out["point_source_containment"] = {
            "what": "fraction of a point source's photons (at the ON-region centre) reconstructed inside the ON "
                    "region, at each run's safe threshold",
            "runs": pc, "min": low, "max": max(pc.values())}
        if low < CONTAINMENT_NOTE_BELOW:
            note = (f"the ON region holds {low:.0%}-{max(pc.values()):.0%} of a point source's flux: the fitted flux "
                    "is the flux inside the region; for the source's flux set model.spatial: {type: point} "
                    "(or its disk/gauss morphology)")
            out["point_source_containment"]["note"] = note
            warnings.append(note)
    return out, warnings


def short_flux_definition(definition: str) -> str:
    """A flux definition (:func:`flux_definition`) short enough for a plot title."""
    if definition.startswith("flux inside the ON region"):
        return "flux inside the ON region (no PSF containment)"
    if definition.startswith("flux of the whole source"):
        return "source flux (" + definition.split("model.spatial: ", 1)[-1].split(" at (", 1)[0] + ")"
    return definition.split(" (", 1)[0]
