"""Norm profiles: the one module for fits of a norm scaling a frozen shape, with their errors,
upper limits and TS (flux points, light curves, the upper limit of a fit not detected).

One statistic (WStat of :mod:`extspec.stats`), one root finder (:mod:`extspec.rootfind`), two fits:

* :func:`fit_norm`: one norm by MIGRAD (:func:`extspec.minimiser.make_minuit`; the flux points,
  whose errors are MIGRAD's as the reference's), and :func:`norm_upper_limit`, where its
  profile rises by a given amount (:func:`extspec.rootfind.crossing`);
* :func:`fit_norms`: many independent norms at once (light curves at fine binning, and
  :func:`flux_upper_limit`), as follows.

Each group g (a time bin and energy bin of a light curve, say) has cells c (its runs' safe
reco bins) with ON counts n, OFF counts m, alpha a and predicted signal counts mu at norm 1;
its statistic is the WStat of :mod:`extspec.stats` summed over its cells,

    W_g(x) = sum_{c in g} wstat(n_c, m_c, a_c, x mu_c).

With the background profiled, dW/ds = 2 [1 - n / (s + a b)] per cell (the envelope theorem:
dW/db = 0 at the profiled b), so

    W_g'(x) = sum_{c in g} 2 mu_c [1 - n_c / (x mu_c + a_c b_c(x))],

which increases with x (W is convex in the signal). A cell without ON counts whose signal is
so negative that b = m / (1 + a) would make the ON expectation s + a b negative sits on the
edge b = -s / a, where dW/ds = 2 (-1/a - m/s). :func:`fit_norms` finds the best norm of
every group at once by regula falsi on W' (numpy over all cells, no loop over groups), then
the asymmetric errors and the upper limit where W rises by ``delta_err`` and ``delta_ul`` on
W itself (regula falsi, Illinois, on brackets found by doubling steps:
:func:`extspec.rootfind.find_roots` and :func:`extspec.rootfind.grow_brackets`). Where a negative
norm leaves no valid background (s + a b <= 0 with n > 0) the statistic counts as +inf: the
search stays in the valid domain. The roots are converged until ``|W'| < 1e-9 sum mu`` (best
norm) or W is within 1e-7 of its target (errors, limit), or the bracket is 1e-12 of its ends:
far below the statistical error (tests: profiles scanned on a fine grid).

With ``known_background`` the statistic is instead Cash's of the ON counts against signal +
a background taken as known (:func:`extspec.stats.cash`; the constant-flux test of
:mod:`extspec.lightcurve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .minimiser import make_minuit
from .rootfind import crossing, find_roots, grow_brackets
from .stats import cash, wstat, wstat_background

__all__ = ["NormFit", "fit_norm", "norm_upper_limit", "NormFits", "fit_norms", "flux_upper_limit", "DELTA_ERR",
           "DELTA_UL"]

DELTA_ERR = 1.0
"""Rise of WStat (-2 ln L) defining the asymmetric 1-sigma errors."""
DELTA_UL = 2.71
"""Rise of WStat defining a one-sided 95 % upper limit (1.645^2)."""


@dataclass(frozen=True)
class NormFit:
    """The norm of a frozen shape fitted to ON/OFF counts (:func:`fit_norm`).

    The fit works in units of ``scale`` (1, or 1 / predicted counts where the model predicts
    almost none): ``norm_fit``, ``norm_err_fit`` and ``stat_fit(x)`` (summed WStat at norm
    ``x * scale``) are in those units; ``norm``, ``norm_err`` and :meth:`stat` in units of the
    model (norm 1 = the model).  ``stat_best`` is the minimum of WStat, ``ts = W(0) - stat_best``.
    """

    norm_fit: float
    norm_err_fit: float
    scale: float
    stat_best: float
    ts: float
    sqrt_ts: float
    success: bool
    stat_fit: Callable[[float], float]

    @property
    def norm(self) -> float:
        return self.norm_fit * self.scale

    @property
    def norm_err(self) -> float:
        return self.norm_err_fit * self.scale

    def stat(self, norm: float) -> float:
        """Summed WStat at ``norm`` (model units): the likelihood profile in the norm."""
        return self.stat_fit(norm / self.scale)


def fit_norm(group) -> NormFit:
    """Fit one norm (start 1, no bounds) scaling the predicted signal counts of every part of
    ``group``: ``(n, m, a, mask, mu)`` tuples of arrays (ON counts, OFF counts, alpha, the bins
    that count, predicted signal counts at norm 1; any shapes), WStat summed over them.

    Where the model predicts almost no counts (a spectrum absorbed by the EBL above tens of
    TeV), the norm is fitted in units of 1 / (predicted counts), so that MIGRAD and the
    profile searches work at order 1; elsewhere the scale is 1.  The error is MIGRAD's (as the
    reference's flux points); the signed sqrt(TS) is ``sign(norm) sqrt(max(TS, 0))``.
    """
    mu_sum = float(sum(np.sum(np.where(mask, mu, 0.0)) for *_, mask, mu in group))
    scale = 1.0 / mu_sum if 0.0 < mu_sum < 1e-3 else 1.0

    def stat(norm):
        return float(sum(np.sum(np.where(mask, wstat(n, m, a, norm * scale * mu), 0.0))
                         for n, m, a, mask, mu in group))

    mi = make_minuit(lambda x: stat(x[0]), [1.0 / scale], ["norm"])
    mi.migrad()
    norm = float(mi.values[0])
    w_best = float(mi.fval)
    ts = stat(0.0) - w_best
    return NormFit(norm_fit=norm, norm_err_fit=float(mi.errors[0]), scale=scale, stat_best=w_best, ts=float(ts),
                   sqrt_ts=float(np.sign(norm) * np.sqrt(max(ts, 0.0))), success=bool(mi.valid), stat_fit=stat)


def norm_upper_limit(nf: NormFit, delta: float) -> float:
    """The upper limit of the norm of ``nf`` (model units): where its WStat profile rises by
    ``delta`` above the minimum, searching up from the best norm, or from 0 for a negative one
    (:func:`extspec.rootfind.crossing`, first step the MIGRAD error, at least 1e-3, in the
    fit's units); NaN where the profile never rises that far."""
    return crossing(nf.stat_fit, max(nf.norm_fit, 0.0), max(nf.norm_err_fit, 1e-3), nf.stat_best + delta) * nf.scale


@dataclass(frozen=True)
class NormFits:
    """Per group: best norm, parabolic error sqrt(2 / W''), asymmetric errors and upper limit
    (NaN where W does not rise that far), W at the best norm, TS = W(0) - W(best), signed
    sqrt(TS), and ``success`` (a best norm was bracketed)."""

    norm: np.ndarray
    norm_err: np.ndarray
    norm_errn: np.ndarray
    norm_errp: np.ndarray
    norm_ul: np.ndarray
    stat_best: np.ndarray
    ts: np.ndarray
    sqrt_ts: np.ndarray
    success: np.ndarray


class _Cells:
    def __init__(self, n, m, a, mu, group, n_groups, background=None):
        self.n, self.m, self.a, self.mu = (np.asarray(v, float) for v in (n, m, a, mu))
        self.group = np.asarray(group, np.int64)
        self.n_groups = int(n_groups)
        self.background = None if background is None else np.asarray(background, float)

    def _sum(self, values):
        return np.bincount(self.group, weights=values, minlength=self.n_groups)

    def _invalid(self, s, b):
        if self.background is not None:
            bad = (s + self.background < 0) | ((self.n > 0) & (s + self.background <= 0))
        else:
            bad = ~np.isfinite(b) | ((self.n > 0) & (s + self.a * b <= 0))
        return self._sum(bad.astype(float)) > 0

    def stat(self, x):
        """W per group at norms ``x`` (+inf outside the valid domain)."""
        s = x[self.group] * self.mu
        if self.background is not None:
            return np.where(self._invalid(s, None), np.inf, self._sum(cash(self.n, s + self.background)))
        b = wstat_background(self.n, self.m, self.a, s)
        w = self._sum(wstat(self.n, self.m, self.a, s))
        return np.where(self._invalid(s, b), np.inf, w)

    def slope(self, x):
        """W' per group at norms ``x`` (-inf outside the valid domain: the norm must go up)."""
        s = x[self.group] * self.mu
        if self.background is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = 2.0 * self.mu * (1.0 - np.where(self.n > 0, self.n / (s + self.background), 0.0))
            return np.where(self._invalid(s, None), -np.inf, self._sum(np.where(np.isfinite(d), d, 0.0)))
        b = wstat_background(self.n, self.m, self.a, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            # n = 0: b = m / (1 + a) unless that leaves s + a b < 0; then b = -s / a (ON expectation 0)
            edge = (self.n == 0) & (self.a * self.m + (1.0 + self.a) * s < 0)
            d = 2.0 * self.mu * np.where(edge, -1.0 / self.a - self.m / s,
                                         1.0 - np.where(self.n > 0, self.n / (s + self.a * b), 0.0))
        g = self._sum(np.where(np.isfinite(d), d, 0.0))
        return np.where(self._invalid(s, b), -np.inf, g)


def fit_norms(n, m, a, mu, group, n_groups: int, delta_err: float, delta_ul: float,
              known_background=None) -> NormFits:
    """Fit one norm per group (see the module docstring).

    Parameters
    ----------
    n, m, a, mu : arrays, one value per cell
        ON counts, OFF counts, alpha and the predicted signal counts at norm 1 of the cells
        that count (safe bins only).
    group : int array, one per cell
        The group (0 .. n_groups - 1) of each cell.

    n_groups : int

    delta_err, delta_ul : float
        Rise of W defining the asymmetric errors and the upper limit (above the best norm).

    known_background : array, optional
        A known background (expected ON counts) per cell: the statistic is then Cash's
        (:func:`extspec.stats.cash`) of ON counts against signal + background, and ``m``, ``a``
        are not used.

    A group without cells, or whose predicted signal is zero, has ``success`` false and NaN.
    """
    cells = _Cells(n, m, a, mu, group, n_groups, known_background)
    mu_sum = cells._sum(cells.mu)
    excess = cells._sum(cells.n - cells.a * cells.m)
    active = mu_sum > 0
    unit = np.where(active, 1.0 / np.where(active, mu_sum, 1.0), 1.0)  # norm of one predicted count
    step = np.maximum(2.0 * np.abs(excess), 1.0) * unit
    zero = np.zeros(n_groups)
    up0 = cells.slope(zero) >= 0  # W rises from 0: the best norm is <= 0
    with np.errstate(invalid="ignore", over="ignore"):
        # bracket [lo, hi] of the best norm: W' < 0 (or invalid) at lo, >= 0 at hi
        hi_pos, _ = grow_brackets(lambda x: cells.slope(x) >= 0, zero, step, 1.0, active & ~up0)
        lo_neg, _ = grow_brackets(lambda x: cells.slope(x) < 0, zero, step, -1.0, active & up0)
        lo = np.where(up0, lo_neg, zero)
        hi = np.where(up0, zero, hi_pos)
        ok = active & np.isfinite(lo) & np.isfinite(hi)
        best, best_hi = find_roots(cells.slope, np.where(ok, lo, 0.0), np.where(ok, hi, 0.0), ok, 1e-9 * mu_sum)
        w_best = cells.stat(best)
        # a minimum on the edge of the valid domain (a negative norm): the bracket's valid end
        best = np.where(np.isfinite(w_best), best, best_hi)
        w_best = cells.stat(best)
        h = 1e-3 * np.maximum(np.abs(best), unit)
        curv = (cells.slope(best + h) - cells.slope(best)) / h
        err = np.where(curv > 0, np.sqrt(2.0 / np.where(curv > 0, curv, 1.0)), np.nan)
        first = np.where(np.isfinite(err) & (err > 0), err, unit)

        def crossing(delta, direction):
            target = w_best + delta

            def rise(x):  # increasing in the search direction's coordinate
                return cells.stat(x) - target if direction > 0 else target - cells.stat(x)
            far, near = grow_brackets(lambda x: cells.stat(x) >= target, best, first * np.sqrt(delta), direction, ok)
            found = np.isfinite(far)
            lo_, hi_ = (near, far) if direction > 0 else (far, near)
            x, _ = find_roots(rise, np.where(found, lo_, 0.0), np.where(found, hi_, 0.0), found, 1e-7)
            return np.where(found, x, np.nan)

        errp = crossing(delta_err, 1.0) - best
        errn = best - crossing(delta_err, -1.0)
        ul = crossing(delta_ul, 1.0)
        ts = cells.stat(zero) - w_best
    nan = np.full(n_groups, np.nan)
    best, err, w_best, ts = (np.where(ok, v, nan) for v in (best, err, w_best, ts))
    return NormFits(norm=best, norm_err=err, norm_errn=np.where(ok, errn, nan), norm_errp=np.where(ok, errp, nan),
                    norm_ul=np.where(ok, ul, nan), stat_best=w_best, ts=ts,
                    sqrt_ts=np.sign(best) * np.sqrt(np.clip(np.nan_to_num(ts, nan=0.0), 0.0, None)),
                    success=ok & np.isfinite(w_best))


def flux_upper_limit(parts, model_integral, energy_range, shape: str) -> dict:
    """95 % upper limit on the integral flux in ``energy_range`` (TeV) of a fixed shape.

    ``parts``: ``(JointData, flux per true bin of the shape)`` of every instrument; one norm
    scales them all (:func:`fit_norms`), the limit is where WStat rises by
    :data:`DELTA_UL` above its minimum, times the shape's integral flux
    ``model_integral(e_min, e_max)`` over ``energy_range``.
    """
    cells = [(d.counts_masked[d.mask], d.counts_off_masked[d.mask], d.alpha_masked[d.mask],
              d.npred_sig(f)[d.mask]) for d, f in parts]
    n, m, a, mu = (np.concatenate([c[i] for c in cells]) for i in range(4))
    nf = fit_norms(n, m, a, mu, np.zeros(n.size, np.int64), 1, DELTA_ERR, DELTA_UL)
    ref = float(np.asarray(model_integral(np.array([energy_range[0]]), np.array([energy_range[1]])))[0])
    return {"flux_ul": float(nf.norm_ul[0] * ref), "e_min": float(energy_range[0]), "e_max": float(energy_range[1]),
            "unit": "cm-2 s-1", "confidence": "95 % one-sided: WStat rises by 2.71 above its minimum in the norm",
            "flux": "integral flux in [e_min, e_max] (observed, absorbed for an EBL model)",
            "shape": shape, "norm_ul": float(nf.norm_ul[0]), "ts": float(nf.ts[0])}
