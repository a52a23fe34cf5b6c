"""Fit statistics: WStat with the background profiled out, Li & Ma significance (spec §8), and
the special functions of the likelihood-ratio test (chi^2 survival function, Gaussian sigma).

References: Cash (1979); Arnaud, XSPEC manual appendix B ("W statistic"); Li & Ma (1983)
ApJ 272, 317, eq. 17.
"""

from __future__ import annotations

import math

import numpy as np

from .rootfind import bisect

__all__ = ["wstat_background", "wstat", "cash", "li_ma_significance", "wstat_sqrt_ts", "chi2_sf", "p_to_sigma"]

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


def cash(n_on, mu_on):
    """Cash (1979) statistic per bin for ON counts with a known expectation ``mu_on`` (signal
    plus a background taken as known), including the saturated-model terms:

    C = 2 [mu - n ln mu] + 2 [n ln n - n]

    (the n terms dropped for n = 0), so that its sum is a deviance like :func:`wstat`.
    """
    n, mu = (np.asarray(v, dtype=np.float64) for v in (n_on, mu_on))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = 2 * (mu - _xlogy(n, mu)) + 2 * (_xlogy(n, n) - n)
    return np.nan_to_num(c, nan=0.0, posinf=_MAX, neginf=-_MAX)


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


# ------------------------------------------------- likelihood-ratio test (no scipy) --


def _reg_gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) for a > 0, x >= 0 (series / continued fraction)."""
    if x <= 0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1:
        s, term, n = 1.0 / a, 1.0 / a, a
        for _ in range(1000):
            n += 1
            term *= x / n
            s += term
            if abs(term) < abs(s) * 1e-16:
                break
        return max(0.0, 1.0 - s * math.exp(-x + a * math.log(x) - lg))
    # Lentz continued fraction
    b = x + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - lg) * h


def chi2_sf(ts: float, dof: int) -> float:
    """Survival function of the chi^2 distribution with ``dof`` degrees of freedom."""
    return _reg_gamma_q(dof / 2.0, max(ts, 0.0) / 2.0)


def p_to_sigma(p: float) -> float:
    """Two-sided Gaussian significance of a p-value (sigma with erfc(sigma / sqrt 2) = p)."""
    if p <= 0:
        return float("inf")
    if p >= 1:
        return 0.0
    return bisect(lambda x: math.erfc(x / math.sqrt(2)) - p, 0.0, 40.0, sign_a=1.0, maxiter=200)
