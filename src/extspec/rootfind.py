"""The one root finder: bracketing root searches, scalar and vectorised.

Every search here is the same method: hold a bracket on which the function changes sign
(growing it outwards from a start until it does), then shrink it, always keeping the sign
change, until it is narrow enough.  Two forms of it:

* scalar, pure Python, for a callable of one float (a likelihood profile fitted by MIGRAD,
  a threshold scan, a p-value):

  - :func:`bisect`: the root of ``g`` between ``a`` and ``b``, where ``g`` changes sign, by
    bisection;
  - :func:`crossing`: where a profile that grows away from its minimum (``W(x)``) reaches a
    level, searching up or down from the minimum: the bracket grows from a first step until
    it holds the crossing, then :func:`bisect`.  The flux points' upper limits use it
    (:func:`extspec.norms.norm_upper_limit`), as do ``extspec.safe_mask.first_crossing``
    (a threshold energy, in ln E) and :func:`extspec.stats.p_to_sigma`;

* vectorised, numpy over many independent increasing functions evaluated together (one norm
  per time bin and energy bin of a light curve: :func:`extspec.norms.fit_norms`):

  - :func:`grow_brackets`: per element, the first of ``start + direction * step * 2^k`` where
    a condition holds (and the last point where it does not);
  - :func:`find_roots`: per element, the root in ``[lo, hi]`` by the Illinois variant of
    regula falsi (bisection where an end is infinite).

Why two forms and not one: the scalar callers evaluate one point at a time (a MIGRAD profile,
an interpolated effective area), for which plain bisection is the robust choice and gives
bit-for-bit the numbers of the products so far; the vectorised callers evaluate thousands of
functions per numpy call, where the secant step of regula falsi (converging in ~10 steps
instead of ~50) is what keeps a light curve of 100000 bins fast.  The bracketing logic (grow
until the sign changes, shrink keeping it, NaN where no bracket is found) is the same.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bisect", "crossing", "grow_brackets", "find_roots", "GROW_STEPS", "CROSSING_RTOL", "N_DOUBLINGS",
           "N_ROOT_STEPS"]

GROW_STEPS = 60
"""Times :func:`crossing` widens its bracket before it gives up (NaN): the bracket grows by
a factor of about 3 per step, so 60 steps reach 1e28 times the first step."""

CROSSING_RTOL = 1e-7
"""Relative width (of ``max(1, |x|)``) at which :func:`crossing` stops bisecting."""


def bisect(g, a: float, b: float, sign_a: float | None = None, xtol: float = 0.0, rtol: float = 0.0,
           maxiter: int = 200) -> float:
    """The root of ``g`` between ``a`` and ``b`` by bisection.

    ``g(a)`` and ``g(b)`` must have opposite signs; ``sign_a`` is the sign of ``g(a)`` when the
    caller knows it (then ``g(a)`` is not evaluated).  Each step halves the interval, keeping
    the half where ``g`` changes sign: a midpoint where ``g`` has the sign of ``g(a)`` becomes
    the new ``a``, any other (0 or NaN included) the new ``b``, so that with a plateau of
    zeros the root found is its edge on the ``a`` side.  It stops when the interval is
    narrower than ``xtol + rtol * max(1, |b|)``, when the midpoint no longer differs from an
    end (float resolution), or after ``maxiter`` steps, and returns the midpoint.  ``a`` may
    lie above ``b``.
    """
    if sign_a is None:
        sign_a = g(a)
    positive = sign_a > 0
    for _ in range(maxiter):
        if abs(b - a) < xtol + rtol * max(1.0, abs(b)):
            break
        m = 0.5 * (a + b)
        if m == a or m == b:
            break
        gm = g(m)
        if (gm > 0) if positive else (gm < 0):
            a = m
        else:
            b = m
    return 0.5 * (a + b)


def crossing(f, start: float, step: float, target: float, direction: int = 1,
             rtol: float = CROSSING_RTOL) -> float:
    """Where the profile ``f`` reaches ``target``, searching from ``start`` upwards
    (``direction`` 1) or downwards (-1).

    ``f`` grows away from ``start`` and ``f(start) < target`` (``start`` is its minimum, or a
    bound of the parameter).  The bracket is ``[start, start + direction * step]``; while ``f``
    stays below ``target`` at its far end, the far end moves out by twice the bracket's width
    plus 1e-3 and the near end to the old far end (at most :data:`GROW_STEPS` times).  Then
    :func:`bisect` to a width of ``rtol * max(1, |x|)``.  NaN when the profile does not reach
    ``target`` (e.g. WStat flattening for a negative norm).
    """
    near, far = float(start), float(start) + direction * float(step)
    f_far = f(far)
    k = 0
    while not f_far >= target and k < GROW_STEPS:
        if math.isnan(f_far):
            return float("nan")
        near, far = far, far + direction * 2 * abs(far - near) + direction * 1e-3
        f_far = f(far)
        k += 1
    if not f_far >= target:
        return float("nan")
    return float(bisect(lambda x: f(x) - target, near, far, sign_a=-1.0, rtol=rtol, maxiter=100))


N_ROOT_STEPS = 100
"""Most steps of :func:`find_roots` (regula falsi, Illinois; typically under 15)."""
N_DOUBLINGS = 80
"""Times :func:`grow_brackets` doubles its step before an element is declared without a point."""


def find_roots(fun, lo, hi, active, ftol):
    """Per element: the root of the increasing ``fun`` between ``lo`` (fun < 0, or -inf
    outside its valid domain) and ``hi`` (fun >= 0), by the Illinois variant of regula falsi
    (bisection where an end is infinite), until ``|fun| < ftol`` or the bracket is 1e-12 of its
    ends (at most :data:`N_ROOT_STEPS` steps).

    ``fun`` maps an array of points (one per element) to an array of values; ``active``
    (bool array) selects the elements searched (the others keep their midpoint).  Returns the
    roots and the brackets' upper ends (where ``fun >= 0``).
    """
    lo, hi = lo.copy(), hi.copy()
    flo, fhi = fun(lo), fun(hi)
    x = 0.5 * (lo + hi)
    todo = active.copy()
    side = np.zeros(lo.shape)
    for _ in range(N_ROOT_STEPS):
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


def grow_brackets(f, start, step, direction, active):
    """Per element: a point ``start + direction * k`` where the condition ``f`` (array -> bool
    array) holds, k = step, 2 step, 4 step ... (NaN where none within :data:`N_DOUBLINGS`
    doublings, or where ``active`` is false); also the last point where it does not hold (the
    other end of the bracket; ``start`` if the first step holds)."""
    k = step.copy()
    found = np.zeros(start.shape, bool)
    last_false = start.copy()
    for _ in range(N_DOUBLINGS):
        x = start + direction * k
        ok = f(x) & active & ~found
        found |= ok
        last_false = np.where(~found & active, x, last_false)
        if np.all(found | ~active):
            break
        k = np.where(found, k, 2.0 * k)
    return np.where(found, start + direction * k, np.nan), last_false
