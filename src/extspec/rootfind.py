"""The one root finder: bisection of a bracketed root, and the crossing of a profile.

* :func:`bisect`: the root of ``g`` between ``a`` and ``b``, where ``g`` changes sign.
  Bisection, because every caller needs a guaranteed bracket more than speed, and it gives the
  same numbers for the same inputs on every machine (no derivative, no interpolation step).
* :func:`crossing`: where a profile that grows away from its minimum (a likelihood profile
  ``W(x)``) reaches a level, searching up or down from the minimum: the bracket grows from a
  first step until it holds the crossing, then :func:`bisect`.  Errors and upper limits of
  the flux points and light curves use it (:mod:`extspec.fluxpoints`, :mod:`extspec.lightcurve`).

Also used by :func:`extspec.safe_mask.first_crossing` (a threshold energy, in ln E) and
:func:`extspec.stats.p_to_sigma` (the Gaussian significance of a p-value).

Pure Python on scalars (each evaluation of ``g`` is itself vectorised by its caller).
"""

from __future__ import annotations

import math

__all__ = ["bisect", "crossing", "GROW_STEPS", "CROSSING_RTOL"]

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
