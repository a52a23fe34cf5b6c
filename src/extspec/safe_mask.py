"""Safe energy range of an ON/OFF spectrum (spec §7).

Methods (combined with logical AND, starting from ``isfinite(alpha * n_off)``):

``aeff-default``
    E_min = LO_THRES, E_max = HI_THRES of the AEFF header.
``aeff-max``
    E_min where the region-mean A_eff first reaches ``aeff_percent`` % of its
    maximum (log-log interpolation, 101-point scan, bisection refinement).
``edisp-bias``
    E_min = E_b (1 + bias) where the energy bias drops to ``bias_percent`` %.
``offset-max``
    all bins masked if the ON-region centre is >= ``offset_max`` deg off-axis.
``bkg-peak``
    E_min = lower edge of the background-table energy bin with the largest
    field-of-view-integrated rate (raw IRF); without a table, the reco bin with
    the largest OFF-based background rate per TeV.

A reco bin is kept only if it lies entirely inside [E_min, E_max] (§7, "bin acceptance").
The cut is on reconstructed energy (dispersion ignored by design, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .rootfind import bisect

__all__ = ["METHODS", "SafeMaskSettings", "make_safe_mask", "aeff_max_threshold", "edisp_bias_threshold", "bins_inside"]

METHODS = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")
_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class SafeMaskSettings:
    """The ``safe_mask`` config block, typed (no defaults here: the schema holds them).

    Attributes
    ----------
    methods : tuple of str
        Criteria of ``METHODS``, combined with logical AND.
    aeff_percent, bias_percent : float
        Thresholds (%) of ``aeff-max`` and ``edisp-bias``.
    offset_max : float
        deg; ``offset-max`` masks every bin of a run whose ON centre lies this far off-axis.
    """

    methods: tuple
    aeff_percent: float
    bias_percent: float
    offset_max: float


def bins_inside(edges: np.ndarray, e_min=None, e_max=None) -> np.ndarray:
    """Bins entirely inside [e_min, e_max]; a missing bound means no cut."""
    keep = np.ones(edges.size - 1, bool)
    if e_min is not None:
        keep &= edges[:-1] >= e_min
    if e_max is not None:
        keep &= edges[1:] <= e_max
    return keep


def _loglog_interp(x_nodes, y_nodes):
    lx = np.log(x_nodes)
    ly = np.log(np.clip(y_nodes, _TINY, None))

    def f(x):
        return np.exp(np.interp(np.log(x), lx, ly))

    return f


def first_crossing(func, level, e_lo, e_hi, n_scan=101):
    """Lowest root of func(E) - level in [e_lo, e_hi], or None: the first sign change on a
    scan of ``n_scan`` energies (log-spaced), refined by :func:`extspec.rootfind.bisect` in ln E."""
    e = np.geomspace(e_lo, e_hi, n_scan)
    d = func(e) - level
    s = np.sign(d)
    idx = np.flatnonzero(s[:-1] * s[1:] < 0)
    exact = np.flatnonzero(d == 0)
    cands = []
    if exact.size:
        cands.append(e[exact[0]])
    if idx.size:
        i = idx[0]
        u = bisect(lambda x: func(np.exp(x)) - level, np.log(e[i]), np.log(e[i + 1]), xtol=1e-15, maxiter=200)
        cands.append(np.exp(u))
    return min(cands) if cands else None


def aeff_max_threshold(exposure, livetime, energy_true, percent):
    """E_min of the aeff-max method from the region exposure (§7 steps 1-7); None if all zero."""
    a = np.asarray(exposure, float) / livetime if livetime > 0 else np.zeros(len(exposure))
    if not np.any(a > 0):
        return None, 0.0
    centers = energy_true.centers
    thr = percent / 100.0 * a.max()
    e_lo = centers[np.argmax(a > 0)]
    e_hi = centers[-1]
    f = _loglog_interp(centers, a)
    root = first_crossing(f, thr, e_lo, e_hi)
    return (e_lo if root is None else root), thr


def edisp_bias_threshold(edisp, energy_true, energy_reco, percent):
    """E_min of the edisp-bias method (§7)."""
    k = np.asarray(edisp, float)
    ec = energy_reco.centers
    s = k.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (k @ ec) / s
    e = energy_true.centers
    bias = np.where(np.isfinite(mean), mean / e - 1.0, 0.0)
    f = _loglog_interp(e, bias)
    start = e[np.argmax(bias)]
    root = first_crossing(f, percent / 100.0, start, e[-1]) if start < e[-1] else None
    e_b = start if root is None else root
    return e_b * (1 + percent / 100.0)


def make_safe_mask(dataset, settings: SafeMaskSettings, bkg=None) -> np.ndarray:
    """Safe mask (n_reco,) of a SpectrumDataset.

    Parameters
    ----------
    dataset : SpectrumDataset
        Uses exposure, livetime, edisp, counts_off, alpha and ``meta`` (lo_thres, hi_thres,
        offset).

    settings : SafeMaskSettings

    bkg : Bkg3D, optional
        Background IRF for ``bkg-peak``.
    """
    edges = dataset.energy_reco.edges
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(dataset.alpha * dataset.counts_off) & dataset.usable
    if dataset.meta.get("background") in ("fov", "ring"):  # alpha undefined where the IRF predicts nothing
        mask &= np.asarray(dataset.acceptance_off) > 0
    rad_max = dataset.meta.get("rad_max")
    if rad_max is not None:  # point-like: a bin without a directional cut has no ON region
        mask &= np.asarray(rad_max, float) > 0
    methods = settings.methods
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"config key 'safe_mask.methods': unknown method '{m}' (use {', '.join(METHODS)})")
        if m == "aeff-default":
            mask &= bins_inside(edges, dataset.meta.get("lo_thres"), dataset.meta.get("hi_thres"))
        elif m == "aeff-max":
            e_min, _ = aeff_max_threshold(dataset.exposure, dataset.livetime, dataset.energy_true,
                                          settings.aeff_percent)
            mask &= bins_inside(edges, e_min) if e_min is not None else False
        elif m == "edisp-bias":
            mask &= bins_inside(edges, edisp_bias_threshold(dataset.edisp, dataset.energy_true,
                                                            dataset.energy_reco, settings.bias_percent))
        elif m == "offset-max":
            if dataset.meta.get("offset", 0.0) >= settings.offset_max:
                mask &= False
        elif m == "bkg-peak":
            if bkg is not None:
                rate = bkg.rate_vs_energy()
                e_min = bkg.energy.edges[int(np.argmax(rate))]
            else:
                b = dataset.alpha * dataset.counts_off / np.diff(edges)
                e_min = edges[int(np.argmax(b))]
            mask &= bins_inside(edges, e_min)
    return np.asarray(mask, bool)
