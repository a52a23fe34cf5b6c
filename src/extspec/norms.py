"""Many independent one-parameter norm fits at once (light curves at fine binning, upper limits).

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
W itself (regula falsi, Illinois, on brackets found by doubling steps). Where a negative
norm leaves no valid background (s + a b <= 0 with n > 0) the statistic counts as +inf: the
search stays in the valid domain. The roots are converged until |W'| < 1e-9 sum mu (best
norm) or W is within 1e-7 of its target (errors, limit), or the bracket is 1e-12 of its ends:
far below the statistical error (tests: profiles scanned on a fine grid).

With ``known_background`` the statistic is instead Cash's of the ON counts against signal +
a background taken as known (:func:`extspec.stats.cash`; the constant-flux test of
:mod:`extspec.lightcurve`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import cash, wstat, wstat_background

__all__ = ["NormFits", "fit_norms"]

_N_ROOT = 100
"""Most root-finding steps (regula falsi, Illinois; typically under 15)."""
_N_EXPAND = 80
"""Bracket doublings before a group is declared without a crossing."""


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


def _root(fun, lo, hi, active, ftol):
    """Per group: the root of the increasing ``fun`` between ``lo`` (fun < 0, or -inf outside
    the valid domain) and ``hi`` (fun >= 0), by the Illinois variant of regula falsi (bisection
    where an end is infinite), until |fun| < ``ftol`` or the bracket is 1e-12 of its ends."""
    lo, hi = lo.copy(), hi.copy()
    flo, fhi = fun(lo), fun(hi)
    x = 0.5 * (lo + hi)
    todo = active.copy()
    side = np.zeros(lo.shape)
    for _ in range(_N_ROOT):
        finite = np.isfinite(flo) & np.isfinite(fhi) & (fhi != flo)
        with np.errstate(invalid="ignore", divide="ignore"):
            xs = np.where(finite, (lo * fhi - hi * flo) / np.where(finite, fhi - flo, 1.0), 0.5 * (lo + hi))
        xs = np.where((xs > lo) & (xs < hi), xs, 0.5 * (lo + hi))
        x = np.where(todo, xs, x)
        fx = fun(x)
        pos = fx >= 0
        new_hi, new_lo = todo & pos, todo & ~pos
        # Illinois: halve the value at the end that stays twice in a row
        flo = np.where(new_hi & (side == 1), 0.5 * flo, flo)
        fhi = np.where(new_lo & (side == -1), 0.5 * fhi, fhi)
        hi, fhi = np.where(new_hi, x, hi), np.where(new_hi, fx, fhi)
        lo, flo = np.where(new_lo, x, lo), np.where(new_lo, fx, flo)
        side = np.where(new_hi, 1, np.where(new_lo, -1, side))
        todo &= ~((np.abs(fx) < ftol) | (hi - lo <= 1e-12 * np.maximum(np.abs(lo), np.abs(hi))))
        if not todo.any():
            break
    return x, hi


def _expand(f, start, step, direction, active):
    """Per group: a point ``start + direction * k`` with f true, k = step, 2 step, 4 step ...
    (NaN where none within :data:`_N_EXPAND` doublings); also the last point with f false."""
    k = step.copy()
    found = np.zeros(start.shape, bool)
    last_false = start.copy()
    for _ in range(_N_EXPAND):
        x = start + direction * k
        ok = f(x) & active & ~found
        found |= ok
        last_false = np.where(~found & active, x, last_false)
        if np.all(found | ~active):
            break
        k = np.where(found, k, 2.0 * k)
    return np.where(found, start + direction * k, np.nan), last_false


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
        hi_pos, _ = _expand(lambda x: cells.slope(x) >= 0, zero, step, 1.0, active & ~up0)
        lo_neg, _ = _expand(lambda x: cells.slope(x) < 0, zero, step, -1.0, active & up0)
        lo = np.where(up0, lo_neg, zero)
        hi = np.where(up0, zero, hi_pos)
        ok = active & np.isfinite(lo) & np.isfinite(hi)
        best, best_hi = _root(cells.slope, np.where(ok, lo, 0.0), np.where(ok, hi, 0.0), ok, 1e-9 * mu_sum)
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
            far, near = _expand(lambda x: cells.stat(x) >= target, best, first * np.sqrt(delta), direction, ok)
            found = np.isfinite(far)
            lo_, hi_ = (near, far) if direction > 0 else (far, near)
            x, _ = _root(rise, np.where(found, lo_, 0.0), np.where(found, hi_, 0.0), found, 1e-7)
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

