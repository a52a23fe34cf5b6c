"""Fit statistics: WStat with the background profiled out, and Li & Ma significance (spec §8).

References: Cash (1979); Arnaud, XSPEC manual appendix B ("W statistic"); Li & Ma (1983)
ApJ 272, 317, eq. 17.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wstat_background", "wstat", "li_ma_significance", "wstat_sqrt_ts"]

_MAX = np.finfo(np.float64).max


def wstat_background(n_on, n_off, alpha, mu_sig):
    """Profile-likelihood OFF background b (§8.2): positive root of the quadratic."""
    n_on, n_off, alpha, mu_sig = (np.asarray(v, dtype=np.float64) for v in (n_on, n_off, alpha, mu_sig))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
        d = np.sqrt(c * c + 4 * alpha * (1 + alpha) * n_off * mu_sig)
        return (c + d) / (2 * alpha * (1 + alpha))


def _xlogy(x, y):
    """x ln y with 0 ln(anything) = 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def wstat(n_on, n_off, alpha, mu_sig):
    """WStat per bin (§8.2), including the saturated-model terms.

    W = 2 [s + (1+a) b - n ln(s + a b) - m ln b] + 2 [n ln n - n] + 2 [m ln m - m]

    with terms proportional to n (m) dropped for n = 0 (m = 0); NaN -> 0 and
    +-inf -> +-max float afterwards.
    """
    n, m, a, s = (np.asarray(v, dtype=np.float64) for v in (n_on, n_off, alpha, mu_sig))
    b = wstat_background(n, m, a, s)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        w = 2 * (s + (1 + a) * b - _xlogy(n, s + a * b) - _xlogy(m, b))
        w = w + 2 * (_xlogy(n, n) - n) + 2 * (_xlogy(m, m) - m)
    return np.nan_to_num(w, nan=0.0, posinf=_MAX, neginf=-_MAX)


def wstat_sqrt_ts(n_on, n_off, alpha):
    """Signed sqrt(TS) of the excess through WStat: sign(excess) sqrt(W(0) - W(excess)).

    Equivalent to Li & Ma (1983) eq. 17.
    """
    n, m, a = (np.asarray(v, dtype=np.float64) for v in (n_on, n_off, alpha))
    excess = n - a * m
    ts = wstat(n, m, a, 0.0) - wstat(n, m, a, excess)
    return np.sign(excess) * np.sqrt(np.clip(ts, 0, None))


def li_ma_significance(n_on, n_off, alpha):
    """Li & Ma (1983) eq. 17 closed form, with 0 ln 0 = 0."""
    n, m, a = (np.asarray(v, dtype=np.float64) for v in (n_on, n_off, alpha))
    with np.errstate(invalid="ignore", divide="ignore"):
        t1 = _xlogy(n, (1 + a) / a * n / (n + m))
        t2 = _xlogy(m, (1 + a) * m / (n + m))
    return np.sign(n - a * m) * np.sqrt(np.clip(2 * (t1 + t2), 0, None))
