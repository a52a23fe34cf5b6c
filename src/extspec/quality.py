"""One quality gate for every fit, with one vocabulary of statuses.

Every fit extspec makes (the analysis fit, the model comparisons' alternatives, joint fits,
spectra per time bin, light-curve norms) is judged here and carries a :class:`Verdict`:
its ``status`` is one word of :data:`STATUSES`, ``flags`` every problem found, ``parameters``
the flags of each parameter and ``checks`` the numbers each check looked at.

The checks (:func:`judge`):

* **failed**: the minimiser did not converge (MIGRAD/HESSE), or nothing could be fitted.
* **not_a_minimum**: along every free parameter the statistic is evaluated
  :data:`PROBE_SIGMA` errors (clipped to the bounds) either side of the reported point, the
  others held; if it drops by more than :data:`MINIMUM_TOLERANCE` (WStat units) the point is
  not a minimum (a conditional scan: if it goes down, the profile goes down too).
* **not_detected**: the signal's test statistic TS = W(no signal) - W(best) is below the
  configured threshold (``fit.detection_ts_min``); the fit then reports a 95 % upper limit
  on the flux instead of a measurement (:func:`extspec.fit.fit_joint`).
* **unconstrained**: a free parameter whose error exceeds its range of meaning
  (:data:`RANGE_OF_MEANING`, e.g. an index error above 6; else the width of its bounds).
* **at_bound**: a free parameter within its error (or ``BOUND_REL`` of its range) of a
  bound: the value is a limit, not a measurement.
* **poor_fit**: the goodness-of-fit test says the model does not describe the data
  (:func:`extspec.fit.goodness_of_fit`; for a joint fit also per analysis, and an analysis
  whose own best fit is much better than the joint one: the analyses disagree).

The status is the most serious flag in the order of :data:`STATUSES`; ``ok`` when none.  One
exception: a fit that failed on data whose TS (with the best point the minimiser found) is
below the threshold is ``not_detected`` (flags ``not_detected`` and ``failed``): no signal,
an upper limit, rather than a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STATUSES", "RANGE_OF_MEANING", "Verdict", "judge", "range_of_meaning", "minimum_check",
           "bound_flags", "PROBE_SIGMA", "MINIMUM_TOLERANCE"]

STATUSES = ("failed", "not_a_minimum", "not_detected", "unconstrained", "at_bound", "poor_fit", "ok")
"""The statuses, most serious first."""

STATUS_MEANING = {
    "ok": "a minimum, every free parameter measured, the signal detected, the model describes the data",
    "failed": "the minimiser did not converge or there was nothing to fit: no result",
    "not_a_minimum": "the statistic decreases next to the reported point: the minimiser stopped elsewhere",
    "not_detected": "the signal's TS is below the detection threshold: an upper limit, not a measurement",
    "unconstrained": "a parameter's error exceeds its range of meaning: the data do not constrain it",
    "at_bound": "a parameter at (within its error of) a bound: a limit, not a measurement",
    "poor_fit": "the goodness-of-fit test rejects the model (or the joint fit's analyses disagree)",
}
"""One line per status, for the documentation, the metadata and the summary."""

RANGE_OF_MEANING = {
    "index": 6.0, "index1": 6.0, "index2": 6.0, "alpha": 6.0, "beta": 2.0, "lambda_": 10.0, "ebreak": 100.0,
    "alpha_norm": 5.0, "energy_scale": 1.0, "norm": 1.0,
}
"""Width of the range of meaning of a parameter (its unit): an index means something within
0-6, a log-parabola curvature within -1..1, a cutoff lambda (1/TeV) within 0-10, a break
energy within 0-100 TeV, an EBL optical-depth scale within 0-5, a nuisance within -1..1 (a
joint fit's ``<analysis>.energy_scale`` and ``.norm``).  Amplitudes have none: their
meaning is judged by the detection test.  A parameter not listed uses its bounds' width."""

PROBE_SIGMA = 0.5
"""How far (in errors) the minimum check steps either side of the best fit."""
MINIMUM_TOLERANCE = 0.01
"""A drop of the statistic (WStat) larger than this next to the best fit: not a minimum."""
BOUND_REL = 1e-3
"""A parameter closer than this fraction of its bounds' width to a bound is at it, whatever its error."""


@dataclass(frozen=True)
class Verdict:
    """The gate's verdict on one fit."""

    status: str
    flags: tuple = ()
    parameters: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict:
        """Plain form for ``result.yaml`` and table metadata."""
        return {"status": self.status, "flags": list(self.flags), "reason": self.reason,
                "parameters": {k: list(v) for k, v in self.parameters.items()}, "checks": _plain(self.checks)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Verdict | None":
        if not d:
            return None
        return cls(status=str(d["status"]), flags=tuple(d.get("flags") or ()),
                   parameters={k: tuple(v) for k, v in (d.get("parameters") or {}).items()},
                   checks=dict(d.get("checks") or {}), reason=str(d.get("reason", "")))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def range_of_meaning(p) -> float | None:
    """Width of the range of meaning of a :class:`~extspec.fit.Parameter` (None: none)."""
    key = p.name.rsplit(".", 1)[-1]
    if key in RANGE_OF_MEANING:
        return RANGE_OF_MEANING[key]
    if p.min is not None and p.max is not None and p.max > p.min:
        return float(p.max - p.min)
    return None


def bound_flags(p) -> str | None:
    """"min" or "max" when free parameter ``p`` lies within its error of that bound."""
    width = (p.max - p.min) if p.min is not None and p.max is not None else None
    for side, bound in (("min", p.min), ("max", p.max)):
        if bound is None or not math.isfinite(p.value):
            continue
        dist = abs(p.value - bound)
        err = p.error if math.isfinite(p.error) else 0.0
        if dist <= err or (width and dist <= BOUND_REL * width) or dist <= 1e-12 * max(1.0, abs(bound)):
            return side
    return None


def minimum_check(stat, params, best_stat: float) -> dict:
    """The statistic :data:`PROBE_SIGMA` errors either side of each free parameter (clipped to
    its bounds), the others held: ``{name: largest drop below best_stat}``.

    ``stat`` takes ``{name: value}`` of every parameter.  A parameter without a finite
    positive error is probed at 1e-3 of its value (or of 1).
    """
    values = {p.name: p.value for p in params}
    drops = {}
    for p in params:
        if p.frozen or not math.isfinite(p.value):
            continue
        h = PROBE_SIGMA * p.error if math.isfinite(p.error) and p.error > 0 else 1e-3 * max(abs(p.value), 1.0)
        worst = -math.inf
        for x in (p.value - h, p.value + h):
            if p.min is not None:
                x = max(x, p.min)
            if p.max is not None:
                x = min(x, p.max)
            if x == p.value:
                continue
            try:
                with np.errstate(all="ignore"):
                    w = float(stat({**values, p.name: x}))
            except (ValueError, FloatingPointError, ArithmeticError):
                continue
            if math.isfinite(w):
                worst = max(worst, best_stat - w)
        if math.isfinite(worst):
            drops[p.name] = worst
    return drops


def judge(*, success: bool, message: str = "", params=(), stat=None, best_stat: float = math.nan,
          ts: float | None = None, ts_min: float | None = None, goodness_of_fit: dict | None = None,
          extra_poor: list | None = None) -> Verdict:
    """The verdict on one fit (see the module docstring).

    Parameters
    ----------
    success, message : the minimiser's outcome.
    params : list of :class:`~extspec.fit.Parameter` at the best fit (values, errors, bounds).
    stat : callable ``{name: value} -> W``, or None to skip the minimum check.
    best_stat : W at the best fit.
    ts, ts_min : the signal's TS and the detection threshold (None: not tested).
    goodness_of_fit : the dict of :func:`extspec.fit.goodness_of_fit` (its ``poor`` and ``warning``).
    extra_poor : further reasons for a poor fit (e.g. a joint fit's disagreeing analyses).
    """
    checks: dict = {}
    per: dict = {}
    flags: list = []
    reasons: list = []
    free = [p for p in params if not p.frozen]
    if ts is not None and ts_min is not None and math.isfinite(ts):
        checks["detection"] = {"ts": float(ts), "ts_min": float(ts_min),
                               "statistic": "TS = W(no signal) - W(best fit), WStat"}
        if ts < ts_min:
            flags.append("not_detected")
            reasons.append(f"signal TS {ts:.2f} < {ts_min:g}")
    if not success:  # no signal is still an answer (an upper limit) when the fit of the noise fails
        why = message or "the fit failed"
        if flags:
            return Verdict("not_detected", ("not_detected", "failed"), {}, checks, f"{reasons[0]}; {why}")
        return Verdict("failed", ("failed",), {}, checks, why)
    if stat is not None and free:
        drops = minimum_check(stat, params, best_stat)
        checks["minimum"] = {"probe_sigma": PROBE_SIGMA, "tolerance": MINIMUM_TOLERANCE, "drop": drops}
        bad = [k for k, d in drops.items() if d > MINIMUM_TOLERANCE]
        for k in bad:
            per.setdefault(k, []).append("not_a_minimum")
        if bad:
            flags.append("not_a_minimum")
            reasons.append("W decreases next to the best fit along " + ", ".join(
                f"{k} (by {drops[k]:.3g})" for k in bad))
    ranges = {}
    for p in free:
        width = range_of_meaning(p)
        ranges[p.name] = width
        if width is not None and not (math.isfinite(p.error) and p.error <= width):
            per.setdefault(p.name, []).append("unconstrained")
        side = bound_flags(p)
        if side:
            per.setdefault(p.name, []).append(f"at_{side}")
    checks["parameters"] = {"range_of_meaning": ranges}
    unc = [k for k, v in per.items() if "unconstrained" in v]
    if unc:
        flags.append("unconstrained")
        reasons.append("error beyond the range of meaning: " + ", ".join(unc))
    atb = [k for k, v in per.items() if "at_min" in v or "at_max" in v]
    if atb:
        flags.append("at_bound")
        reasons.append("at a bound (a limit, not a measurement): " + ", ".join(
            f"{k} at its {'minimum' if 'at_min' in per[k] else 'maximum'}" for k in atb))
    gof = goodness_of_fit or {}
    if gof:
        checks["goodness_of_fit"] = {k: gof.get(k) for k in ("deviance", "dof", "p_value") if k in gof}
    poor = ([gof["warning"]] if gof.get("poor") else []) + list(extra_poor or [])
    if poor:
        flags.append("poor_fit")
        reasons.extend(poor)
    status = next((s for s in STATUSES if s in flags), "ok")
    return Verdict(status, tuple(s for s in STATUSES if s in flags), {k: tuple(v) for k, v in per.items()}, checks,
                   "; ".join(reasons))
