"""Excess and significance maps of the stacked observations (is the source inside the ON region?).

Per observation the background is the counts predicted by its background IRF (the cube's
``background``, :func:`extspec.cube.make_background`), scaled so that it matches the
observed counts summed over the pixels outside the ON region and the exclusion regions
(the *normalisation region*).  Counts and scaled background of all observations are
summed, then correlated: every pixel gets the sum over the pixels whose centres lie within
the correlation radius of its centre (a top-hat, computed on the pixel grid).  With
N = correlated counts, B = correlated background:

* ``excess = N - B``,
* ``significance`` = Li & Ma (1983) eq. 17 with n_on = N, n_off = N_norm (the counts of
  every observation in its normalisation region) and alpha = B / N_norm: the background
  estimate B and the statistical uncertainty of its normalisation.

Observations without a background IRF are left out of both maps; pixels where no observation
predicts a background (none has a background IRF, or none covers the pixel) are NaN in the
background, excess and significance maps, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SkyMaps", "MapSums", "correlate", "disk_offsets", "make_maps", "map_sums", "add_map_sums", "maps_from_sums",
           "MAP_SUMS_RTOL", "map_sums_key", "stack_partial", "sums_of_partial", "gaussian_smooth", "gaussian_kernel_1d"]


@dataclass
class SkyMaps:
    """The maps of one analysis (arrays of shape (ny, nx))."""

    counts: np.ndarray  # correlated counts
    background: np.ndarray  # correlated, normalised background (NaN where none is predicted)
    excess: np.ndarray
    significance: np.ndarray  # NaN where there is no background
    n_norm: float  # counts in the normalisation regions, all observations
    norms: dict = field(default_factory=dict)  # obs_id -> background normalisation
    without_background: list = field(default_factory=list)  # obs ids left out


def disk_offsets(radius_pix: float) -> np.ndarray:
    """Integer pixel offsets (dy, dx) within ``radius_pix`` of (0, 0), shape (n, 2)."""
    r = int(np.floor(radius_pix))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dy**2 + dx**2 <= radius_pix**2 + 1e-9
    return np.stack([dy[inside], dx[inside]], axis=1)


def correlate(image: np.ndarray, radius_pix: float) -> np.ndarray:
    """Sum of ``image`` over the pixels within ``radius_pix`` of each pixel (zero outside).

    Shifted-array sums over the disk's offsets: exact (integers stay integers) and
    vectorised over the image.
    """
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    r = int(np.floor(radius_pix))
    pad = np.zeros((ny + 2 * r, nx + 2 * r))
    pad[r:r + ny, r:r + nx] = img
    out = np.zeros_like(img)
    for dy, dx in disk_offsets(radius_pix):
        out += pad[r + dy:r + dy + ny, r + dx:r + dx + nx]
    return out


@dataclass(frozen=True)
class MapSums:
    """What :func:`make_maps` sums over the observations, for some of them (e.g. one batch
    reduction's runs): counts and normalised background images of the observations with a
    background IRF, their counts in the normalisation region, their normalisations, and the
    obs ids without background IRF.  Partial sums add (:func:`add_map_sums`)."""

    counts: np.ndarray  # (ny, nx) float64, integer-valued
    background: np.ndarray  # (ny, nx) float64: sum of norm x background
    n_norm: float
    norms: dict
    without_background: list


MAP_SUMS_RTOL = 1e-12
"""Relative tolerance of maps made from partial sums (one per batch, :func:`add_map_sums`)
against the sum over all observations in one go: the normalised background is added in
another order (the counts are integers, the same either way)."""


def map_sums(counts: list, background: list, obs_ids: list, norm_mask: np.ndarray) -> MapSums:
    """The :class:`MapSums` of some observations (arguments as :func:`make_maps`)."""
    shape = np.shape(norm_mask)
    n_sum = np.zeros(shape)
    b_sum = np.zeros(shape)
    n_norm = 0.0
    norms, missing = {}, []
    for c, b, o in zip(counts, background, obs_ids):
        if b is None:
            missing.append(int(o))
            continue
        c = np.asarray(c, dtype=np.float64)
        n_off, b_off = float(c[norm_mask].sum()), float(np.asarray(b)[norm_mask].sum())
        norm = n_off / b_off if b_off > 0 else 0.0
        norms[int(o)] = norm
        n_sum += c
        b_sum += norm * np.asarray(b, dtype=np.float64)
        n_norm += n_off
    return MapSums(n_sum, b_sum, n_norm, norms, missing)


def add_map_sums(parts) -> MapSums:
    """The sum of partial :class:`MapSums`, in order (none: ``ValueError``)."""
    counts = background = None
    n_norm, norms, missing = 0.0, {}, []
    for p in parts:
        if counts is None:
            counts, background = np.array(p.counts, np.float64), np.array(p.background, np.float64)
        else:
            counts += p.counts
            background += p.background
        n_norm += float(p.n_norm)
        norms.update(p.norms)
        missing += list(p.without_background)
    if counts is None:
        raise ValueError("add_map_sums: no partial sums")
    return MapSums(counts, background, n_norm, norms, missing)


def map_sums_key(energy_bins, norm_mask) -> str:
    """Digest of what :class:`MapSums` depend on besides the runs: the reco-energy bins summed
    (bool per bin) and the normalisation region (bool per pixel)."""
    import hashlib

    sel, mask = np.asarray(energy_bins, bool), np.asarray(norm_mask, bool)
    h = hashlib.sha256()
    for a in (sel, mask):
        h.update(repr(a.shape).encode())
        h.update(np.packbits(a, axis=None).tobytes())
    return h.hexdigest()[:16]


def stack_partial(cubes, energy_bins, norm_mask) -> dict | None:
    """The partial sums of some runs' cubes (:class:`extspec.io.cube_io.CubeCounts`, one batch
    reduction's) for the stack step: ``cube_counts`` (e, y, x) int64 summed over the runs (any
    energy range of the counts image is a slice of it), and the :class:`MapSums` over
    ``energy_bins`` with ``norm_mask`` (``map_*``, ``norm_*``, ``key``: :func:`map_sums_key`).
    None when the cubes do not share one grid (the stack step then reads the runs and says so)."""
    cubes = list(cubes)
    if not cubes:
        return None
    first = cubes[0]
    sel = np.asarray(energy_bins, bool)
    for c in cubes[1:]:
        if (c.geom.header_dict() != first.geom.header_dict() or c.energy_reco.edges.shape != first.energy_reco.edges.shape
                or not np.array_equal(c.energy_reco.edges, first.energy_reco.edges)):
            return None
    total = np.zeros(np.shape(first.counts), np.int64)
    for c in cubes:
        total += c.counts
    images = [c.counts[sel].sum(axis=0) for c in cubes]
    backgrounds = [None if c.background is None else c.background[sel].sum(axis=0) for c in cubes]
    ms = map_sums(images, backgrounds, [int(c.obs_id) for c in cubes], norm_mask)
    return {"obs_ids": np.array([int(c.obs_id) for c in cubes], np.int64), "cube_counts": total, "energy_reco": np.asarray(first.energy_reco.edges, np.float64), "geom": first.geom,
            "map_counts": ms.counts, "map_background": ms.background, "n_norm": float(ms.n_norm),
            "norm_obs": np.array(list(ms.norms), np.int64), "norm_values": np.array(list(ms.norms.values()), np.float64),
            "without_background": np.array(ms.without_background, np.int64), "key": map_sums_key(sel, norm_mask)}


def sums_of_partial(part: dict) -> MapSums:
    """The :class:`MapSums` of a :func:`stack_partial` (as written and read back)."""
    return MapSums(np.asarray(part["map_counts"], np.float64), np.asarray(part["map_background"], np.float64),
                   float(part["n_norm"]), dict(zip(np.asarray(part["norm_obs"]).tolist(),
                                                   np.asarray(part["norm_values"]).tolist())),
                   np.asarray(part["without_background"]).tolist())


def make_maps(counts: list, background: list, obs_ids: list, norm_mask: np.ndarray,
              radius_pix: float) -> SkyMaps:
    """Excess and Li & Ma significance maps from per-observation images.

    Parameters
    ----------
    counts : list of (ny, nx) arrays
        Counts image of each observation (the energy range of the map summed).
    background : list of (ny, nx) arrays or None
        Background-IRF prediction of each observation, same energy range (None: the
        observation has no background IRF and is left out).

    obs_ids : list of int

    norm_mask : (ny, nx) bool
        The normalisation region: pixels outside the ON and exclusion regions.
    radius_pix : float
        Correlation radius in pixels.
    """
    return maps_from_sums(map_sums(counts, background, obs_ids, norm_mask), radius_pix)


def maps_from_sums(sums: MapSums, radius_pix: float) -> SkyMaps:
    """The :class:`SkyMaps` of the observations summed in ``sums`` (:func:`make_maps`)."""
    from .stats import li_ma_significance

    n_norm = sums.n_norm
    shape = np.shape(sums.counts)
    n_c = correlate(sums.counts, radius_pix)
    b_c = correlate(sums.background, radius_pix)
    with np.errstate(divide="ignore", invalid="ignore"):
        sig = li_ma_significance(n_c, n_norm, b_c / n_norm) if n_norm > 0 else np.full(shape, np.nan)
    predicted = b_c > 0  # NaN where no run predicts a background (none has an IRF covering the pixel)
    sig = np.where(predicted, sig, np.nan)
    return SkyMaps(counts=n_c, background=np.where(predicted, b_c, np.nan),
                   excess=np.where(predicted, n_c - b_c, np.nan), significance=sig, n_norm=n_norm,
                   norms=dict(sums.norms), without_background=list(sums.without_background))


# ------------------------------------------------------- smoothing (for display) --


def gaussian_kernel_1d(sigma_pix: float) -> np.ndarray:
    """Normalised (sum 1) sampled Gaussian of width ``sigma_pix`` pixels, half-width ceil(4 sigma)."""
    sigma = float(sigma_pix)
    if not np.isfinite(sigma) or sigma <= 0:
        return np.ones(1)
    r = max(1, int(np.ceil(4.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=float)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _convolve_axis(a: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Centred 'same'-size convolution along ``axis`` with zero padding (any kernel length)."""
    r = (kernel.size - 1) // 2
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    pad = np.zeros(a.shape[:-1] + (n + 2 * r,), dtype=float)
    pad[..., r:r + n] = a
    out = np.zeros(a.shape, dtype=float)
    # symmetric kernel: convolution == correlation
    for j, w in enumerate(kernel):
        out += w * pad[..., j:j + n]
    return np.moveaxis(out, -1, axis)


def gaussian_smooth(image, sigma_pix: float, normalize_edges: bool = False) -> np.ndarray:
    """Smooth a 2D image with a Gaussian of ``sigma_pix`` pixels (separable, numpy only).

    The kernel (half-width ceil(4 sigma)) is normalised to unit sum and the image is
    zero-padded, so the total is conserved for any image whose support lies more than
    4 sigma from the edges.  With ``normalize_edges`` each pixel is divided by the kernel
    weight falling inside the image (no darkening at the borders, used for display; the
    total is then no longer exactly conserved).  Non-finite pixels count as 0.
    ``sigma_pix <= 0`` returns a float copy.
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"gaussian_smooth expects a 2D image, got shape {img.shape}")
    img = np.where(np.isfinite(img), img, 0.0)
    k = gaussian_kernel_1d(sigma_pix)
    if k.size == 1:
        return img.copy()
    out = _convolve_axis(_convolve_axis(img, k, 1), k, 0)
    if normalize_edges:
        wy = _convolve_axis(np.ones((img.shape[0], 1)), k, 0)
        wx = _convolve_axis(np.ones((1, img.shape[1])), k, 1)
        out /= wy * wx
    return out
