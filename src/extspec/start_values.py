"""Start values of the spectral fit: where each may lie, and those taken from the data.

A fit started far from the data's answer can stop in a false minimum and still report
"converged" (the MAGIC Crab runs started at amplitude 1e-12 land at index 6.5, W = 179,
where the data say 2.58, W = 11.5).  Two rules:

* :func:`check_start_values` (config check): every start value, ``min`` and ``max`` finite;
  ``reference`` and ``ebreak`` > 0, ``lambda_`` >= 0 and the cutoff exponent ``alpha`` > 0;
  an amplitude > 0 (not 0; below 0 only with ``fit.allow_negative_amplitude``).
* :func:`start_amplitude` (fit): an amplitude the config does not give starts where the
  model, with its other start values (e.g. index 2), predicts the observed total excess in
  the fitted bins: amplitude = excess / (predicted counts at amplitude 1).  Every other
  parameter the config does not give starts at the model's default.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

__all__ = ["check_start_values", "start_amplitude", "AMPLITUDE"]

AMPLITUDE = "amplitude"
"""The normalisation parameter of every model (cm^-2 s^-1 TeV^-1)."""

_POSITIVE = {"reference": "a reference energy", "ebreak": "a break energy"}
_DOMAINS = {
    # (model type, parameter): (lowest value, lowest allowed, what it is)
    ("exp_cutoff_power_law", "lambda_"): (0.0, True, "an inverse cutoff energy (TeV^-1)"),
    ("exp_cutoff_power_law", "alpha"): (0.0, False, "the cutoff exponent"),
}


def _domain(mtype: str, name: str):
    if name in _POSITIVE:
        return 0.0, False, f"{_POSITIVE[name]} (TeV)"
    return _DOMAINS.get((mtype, name))


def check_start_values(block: dict, key: str = "model", allow_negative_amplitude: bool = False) -> None:
    """Raise ConfigError (one line naming the key) for a start value a fit cannot start from.

    ``block``: a ``model`` config block (``{"type", "parameters": {name: number or mapping}}``).
    """
    mtype = block["type"]
    for name, p in (block.get("parameters") or {}).items():
        p = p if isinstance(p, dict) else {"value": p}
        where = f"config key '{key}.parameters.{name}'"
        for field in ("value", "min", "max"):
            v = p.get(field)
            if v is not None and not math.isfinite(float(v)):
                raise ConfigError(f"{where}: {field} {v} is not a finite number")
        v = p.get("value")
        if v is None:
            continue
        dom = _domain(mtype, name)
        if dom is not None:
            lo, inclusive, what = dom
            if not (v >= lo if inclusive else v > lo):
                raise ConfigError(f"{where}: {v:g} is impossible for {what}; it must be "
                                  f"{'>=' if inclusive else '>'} {lo:g}")
        if name == AMPLITUDE:
            if v == 0:
                raise ConfigError(f"{where}: a start amplitude of 0 leaves the fit no scale; give the expected "
                                  "order of magnitude (e.g. 1e-11) or leave it out (then it comes from the data)")
            if v < 0 and not allow_negative_amplitude:
                raise ConfigError(f"{where}: negative amplitude {v:g}; amplitudes stay >= 0 unless "
                                  "fit.allow_negative_amplitude is true")


def start_amplitude(excess: float, npred_unit: float) -> float | None:
    """The amplitude at which a model predicting ``npred_unit`` counts at amplitude 1 predicts
    ``excess`` counts (both summed over the fitted bins of every run).  A non-positive excess
    starts at the amplitude of one excess count; None when the model predicts no count at all."""
    if not (npred_unit > 0 and np.isfinite(npred_unit)):
        return None
    return float(max(excess, 1.0) / npred_unit)
