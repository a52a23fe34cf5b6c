"""The one root finder (extspec.rootfind) and its users.

The former hand-written searches are kept here, verbatim in their logic, as references: the
flux-point upper limit and p -> sigma give bit-identical numbers with the shared bisection;
the safe-mask thresholds agree within 1e-14 (relative; the masks they make are the same);
the light curve's profile crossings (formerly Illinois regula falsi to |W - target| < 1e-6)
agree within 1e-6 * max(1, |x|, sigma); the vectorised searches of the norm profiles
(formerly norms._root and norms._expand, now rootfind.find_roots and rootfind.grow_brackets)
are bit-identical, and so is the flux points' upper limit through norms.norm_upper_limit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from extspec.norms import fit_norm, norm_upper_limit
from extspec.rootfind import bisect, crossing, find_roots, grow_brackets
from extspec.safe_mask import first_crossing
from extspec.stats import p_to_sigma


# ------------------------------------------------------------- the former implementations --

def _old_bisect_ul(f, lo, hi, target, n_iter=100):
    f_hi = f(hi)
    k = 0
    while f_hi < target and k < 60:
        lo, hi = hi, hi + 2 * (hi - lo) + 1e-3
        f_hi = f(hi)
        k += 1
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7 * max(1.0, abs(hi)):
            break
    return 0.5 * (lo + hi)


def _old_profile_crossing(f, start, step, target, direction=1, tol=1e-6):
    def g(x):
        return f(start + direction * x) - target

    a, ga = 0.0, g(0.0)
    b = max(float(step), 1e-6) if np.isfinite(step) else 1.0
    gb = g(b)
    for _ in range(60):
        if gb >= 0:
            break
        a, ga, b = b, gb, 2 * b
        gb = g(b)
    if not (gb >= 0 > ga):
        return float("nan")
    side, c = 0, b
    for _ in range(200):
        c = (a * gb - b * ga) / (gb - ga)
        gc = g(c)
        if abs(gc) < tol or b - a < 1e-12 * max(1.0, b):
            break
        if gc > 0:
            b, gb = c, gc
            if side == -1:
                ga /= 2
            side = -1
        else:
            a, ga = c, gc
            if side == 1:
                gb /= 2
            side = 1
    return float(start + direction * c)


def _old_first_crossing(func, level, e_lo, e_hi, n_scan=101):
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
        a, b = np.log(e[i]), np.log(e[i + 1])
        fa = func(np.exp(a)) - level
        for _ in range(200):
            m = 0.5 * (a + b)
            fm = func(np.exp(m)) - level
            if fm == 0 or (b - a) < 1e-15:
                a = b = m
                break
            if np.sign(fm) == np.sign(fa):
                a, fa = m, fm
            else:
                b = m
        cands.append(np.exp(0.5 * (a + b)))
    return min(cands) if cands else None


def _old_p_to_sigma(p):
    if p <= 0:
        return float("inf")
    if p >= 1:
        return 0.0
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid / math.sqrt(2)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _old_root(fun, lo, hi, active, ftol):  # norms._root before the move
    lo, hi = lo.copy(), hi.copy()
    flo, fhi = fun(lo), fun(hi)
    x = 0.5 * (lo + hi)
    todo = active.copy()
    side = np.zeros(lo.shape)
    for _ in range(100):
        finite = np.isfinite(flo) & np.isfinite(fhi) & (fhi != flo)
        with np.errstate(invalid="ignore", divide="ignore"):
            xs = np.where(finite, (lo * fhi - hi * flo) / np.where(finite, fhi - flo, 1.0), 0.5 * (lo + hi))
        xs = np.where((xs > lo) & (xs < hi), xs, 0.5 * (lo + hi))
        x = np.where(todo, xs, x)
        fx = fun(x)
        pos = fx >= 0
        new_hi, new_lo = todo & pos, todo & ~pos
        flo = np.where(new_hi & (side == 1), 0.5 * flo, flo)
        fhi = np.where(new_lo & (side == -1), 0.5 * fhi, fhi)
        hi, fhi = np.where(new_hi, x, hi), np.where(new_hi, fx, fhi)
        lo, flo = np.where(new_lo, x, lo), np.where(new_lo, fx, flo)
        side = np.where(new_hi, 1, np.where(new_lo, -1, side))
        todo &= ~((np.abs(fx) < ftol) | (hi - lo <= 1e-12 * np.maximum(np.abs(lo), np.abs(hi))))
        if not todo.any():
            break
    return x, hi


def _old_expand(f, start, step, direction, active):  # norms._expand before the move
    k = step.copy()
    found = np.zeros(start.shape, bool)
    last_false = start.copy()
    for _ in range(80):
        x = start + direction * k
        ok = f(x) & active & ~found
        found |= ok
        last_false = np.where(~found & active, x, last_false)
        if np.all(found | ~active):
            break
        k = np.where(found, k, 2.0 * k)
    return np.where(found, start + direction * k, np.nan), last_false


# ------------------------------------------------------------------------ the finder --

def test_bisect_finds_roots_to_float_resolution():
    r = bisect(lambda x: x**3 - 2.0, 0.0, 2.0)
    assert abs(r - 2.0 ** (1 / 3)) <= 4e-16
    # decreasing function, interval given backwards, sign of g(a) given
    r = bisect(lambda x: math.cos(x), 3.0, 0.5, sign_a=-1.0)
    assert abs(r - math.pi / 2) <= 4e-16
    # an exact zero at a midpoint: the root
    assert bisect(lambda x: x - 1.0, 0.0, 2.0) == 1.0
    # tolerances stop it early: within the requested width of the root
    r = bisect(lambda x: x - 0.3, 0.0, 1.0, xtol=1e-3)
    assert abs(r - 0.3) < 1e-3 and abs(r - 0.3) > 1e-12
    # NaN counts as the far side: the root of the finite part is found
    r = bisect(lambda x: x - 0.25 if x < 0.5 else float("nan"), 0.0, 1.0)
    assert abs(r - 0.25) <= 1e-15


def test_crossing_of_a_parabola_both_ways_and_nan_when_flat():
    sigma, x0 = 0.37, 1.3
    f = lambda x: ((x - x0) / sigma) ** 2  # noqa: E731
    up = crossing(f, x0, 0.01, 1.0, 1)
    down = crossing(f, x0, 0.01, 1.0, -1)
    assert up == pytest.approx(x0 + sigma, abs=2e-7) and down == pytest.approx(x0 - sigma, abs=2e-7)
    assert crossing(f, x0, 5.0, 4.0, 1) == pytest.approx(x0 + 2 * sigma, abs=2e-7)  # first step past it
    assert math.isnan(crossing(lambda x: 1.0 - math.exp(-abs(x)), 0.0, 0.1, 2.0, 1))  # never reaches 2
    assert math.isnan(crossing(lambda x: float("nan"), 0.0, 0.1, 2.0, 1))


def test_vectorised_roots_of_many_functions_at_once():
    """find_roots: each element's root of its own cubic, to |f| < ftol; inactive ones untouched."""
    rng = np.random.default_rng(11)
    c = rng.uniform(-5.0, 5.0, 50)
    fun = lambda x: (x - c) ** 3 + 0.1 * (x - c)  # noqa: E731  increasing, root at c
    active = np.ones(50, bool)
    active[7] = False
    x, hi = find_roots(fun, np.full(50, -10.0), np.full(50, 10.0), active, 1e-12)
    assert np.all(np.abs(x - c)[active] < 1e-10) and np.all(hi[active] >= x[active])
    assert x[7] == 0.0  # inactive: the midpoint of its bracket
    # an infinite lower end (outside a valid domain): bisection steps until it is finite
    g = lambda x: np.where(x < -1.0, -np.inf, x - 0.5)  # noqa: E731
    x, _ = find_roots(g, np.full(3, -2.0), np.full(3, 4.0), np.ones(3, bool), 1e-12)
    assert np.allclose(x, 0.5, atol=1e-12)


def test_grow_brackets_doubles_until_the_condition_holds():
    start, step = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.5, 1.0])
    found, last = grow_brackets(lambda x: x >= np.array([5.0, 0.2, 1e40]), start, step, 1.0,
                                np.array([True, True, True]))
    assert found[0] == 8.0 and last[0] == 4.0  # 1, 2, 4, 8
    assert found[1] == 1.5 and last[1] == 1.0  # the first step holds: the other end is the start
    assert np.isnan(found[2])  # never within 80 doublings
    down, _ = grow_brackets(lambda x: x <= -3.0, np.zeros(1), np.ones(1), -1.0, np.ones(1, bool))
    assert down[0] == -4.0


@pytest.mark.parametrize("seed", [5, 6])
def test_vectorised_searches_bit_identical_to_the_former_norms_ones(seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-3.0, 3.0, 40)
    w = lambda x: np.where(x < -2.5, np.inf, np.exp(x - c) - 1.0)  # noqa: E731  +inf below a domain edge
    args = (np.full(40, -2.6), np.full(40, 5.0), rng.uniform(size=40) > 0.1, 1e-9)
    for new, old in zip(find_roots(w, *args), _old_root(w, *args)):
        assert np.array_equal(new, old, equal_nan=True)
    for direction in (1.0, -1.0):
        cond = lambda x: np.abs(x) >= np.abs(c) * 7.0  # noqa: E731
        a = (cond, np.zeros(40), rng.uniform(0.01, 1.0, 40), direction, rng.uniform(size=40) > 0.1)
        for new, old in zip(grow_brackets(*a), _old_expand(*a)):
            assert np.array_equal(new, old, equal_nan=True)


# --------------------------------------------------------- the users, old against new --

def _profiles(seed, n=12):
    """WStat norm profiles of random ON/OFF groups: weak and strong signals, negative excesses."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        nb = int(rng.integers(1, 6))
        mu = rng.uniform(0.5, 30.0, nb) * (1e-6 if k == 0 else 1.0)  # k = 0: the scaled (EBL) case
        b = rng.uniform(1.0, 50.0, nb)
        a = np.full(nb, 0.2)
        m = rng.poisson(b / a)
        n_on = rng.poisson(np.maximum(b + rng.uniform(-0.5, 2.0) * mu / (1e-6 if k == 0 else 1.0), 0.1))
        out.append(fit_norm([(n_on, m, a, np.ones(nb, bool), mu)]))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_flux_point_upper_limit_bit_identical(seed):
    for nf in _profiles(seed):
        for n_sigma in (1.0, 2.0, 3.0):
            start = max(nf.norm_fit, 0.0)
            target = nf.stat_best + n_sigma**2
            old = _old_bisect_ul(nf.stat_fit, start, start + max(nf.norm_err_fit, 1e-3), target)
            new = crossing(nf.stat_fit, start, max(nf.norm_err_fit, 1e-3), target)
            assert new == old
            assert norm_upper_limit(nf, n_sigma**2) == old * nf.scale  # what the flux points quote
            if nf.stat_fit(start) < target:  # a real crossing
                assert abs(nf.stat_fit(new) - target) < 1e-4 * max(1.0, abs(new))
            else:  # a negative norm with the profile above the level at 0: the limit stays at 0
                assert 0.0 <= new < 1e-6


@pytest.mark.parametrize("seed", [3, 4])
def test_light_curve_crossings_within_tolerance(seed):
    for nf in _profiles(seed):
        step = nf.norm_err if np.isfinite(nf.norm_err) and nf.norm_err > 0 else 1.0
        for delta, direction, st in ((1.0, -1, step), (1.0, 1, step), (2.71, 1, step * np.sqrt(2.71))):
            old = _old_profile_crossing(nf.stat, nf.norm, st, nf.stat_best + delta, direction)
            new = crossing(nf.stat, nf.norm, st, nf.stat_best + delta, direction)
            if math.isnan(old):
                continue  # the old search gave up (WStat flat below a negative norm)
            assert abs(new - old) <= 1e-6 * max(1.0, abs(old), nf.norm_err), (old, new)


def test_safe_mask_threshold_bit_identical():
    rng = np.random.default_rng(7)
    for _ in range(20):
        e = np.geomspace(0.05, 100.0, 40)
        area = 1e5 * (1 - np.exp(-(e / rng.uniform(0.1, 2.0)) ** rng.uniform(1.0, 4.0)))  # rising, flattening
        f = lambda x, e=e, area=area: np.exp(np.interp(np.log(x), np.log(e), np.log(area)))  # noqa: E731
        level = rng.uniform(0.02, 0.5) * area.max()
        old = _old_first_crossing(f, level, e[0], e[-1])
        new = first_crossing(f, level, e[0], e[-1])
        # the former search stopped at a midpoint where func == level exactly (a plateau of float
        # resolution); the shared bisection goes on to the plateau's edge: a few ulp apart
        assert abs(new - old) <= 1e-14 * old and abs(f(new) - level) < 1e-9 * level
    assert first_crossing(lambda x: np.ones_like(x), 2.0, 0.1, 10.0) is None


def test_p_to_sigma_bit_identical():
    for p in np.concatenate([np.geomspace(1e-300, 0.999, 200), [0.5, 0.31731050786291415, 0.0, 1.0]]):
        assert p_to_sigma(float(p)) == _old_p_to_sigma(float(p))
