"""The summary of a multi-analysis run: one row per analysis.

Each row comes from the analysis's fit result (``fit/result.yaml`` as a dict) and the last
row of its cumulative table (the stack of every usable observation); an analysis whose
products are missing (a failed job) gets a row that names the failure.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SUMMARY_COLUMNS", "VARIABILITY_COLUMNS", "FLUX_E_MIN", "FLUX_E_MAX", "flux_above", "summary_row"]

FLUX_E_MIN = 1.0
"""Lower energy (TeV) of the integral flux in the summary."""
FLUX_E_MAX = 1.0e4
"""Upper energy (TeV) standing in for infinity in that integral."""

SUMMARY_COLUMNS = {
    "analysis": "", "status": "", "livetime": "h", "n_runs": "", "n_excluded": "", "excluded": "",
    "counts": "", "background": "", "excess": "", "significance": "", "model": "", "parameters": "",
    "flux_above_1tev": "cm-2 s-1", "flux_above_1tev_err": "cm-2 s-1", "flux_ul": "cm-2 s-1", "flux_definition": "",
    "fit_status": "", "background_methods": "",
}
"""Columns (name -> unit) of ``summary.ecsv``.  ``significance`` is the WStat sqrt(TS) of
all usable runs stacked over their safe energy bins; ``parameters`` lists value +- error
(none for a ``not detected`` fit);
``background_methods`` the runs of each background method (``fov: 14, reflected: 1``).
``status`` is the quality gate's (:data:`extspec.quality.STATUSES`, underscores as spaces;
``fit failed`` for a failed fit) and ``fit_status`` its reason; ``flux_ul`` the 95 % upper
limit on the integral flux in the fitted range of a ``not detected`` fit (whose flux above
1 TeV is then NaN).  ``flux_definition`` says which flux the fluxes are (``flux_definition``
of result.yaml: the flux inside the ON region, or the whole source's with ``model.spatial``)."""


VARIABILITY_COLUMNS = {"variability_p_value": ""}
"""Added to the summary when an analysis has a light curve: the p-value of a constant flux
(``variability_p_value`` in the metadata of ``lightcurve/lightcurve.ecsv``; NaN for analyses
without a light curve)."""


def flux_above(result, e_min: float = FLUX_E_MIN) -> tuple[float, float]:
    """Integral flux above ``e_min`` TeV (cm^-2 s^-1) and its 1-sigma error from a
    :class:`~extspec.fit.FitResult`.

    Linear error propagation through the covariance of the free parameters
    (:func:`extspec.models.propagate_errors`); NaN for a failed fit.  For an EBL-absorbed fit
    it is the intrinsic (de-absorbed) flux.
    """
    from .ebl import intrinsic_values
    from .models import integral, propagate_errors

    if not result.success:
        return math.nan, math.nan
    mtype = result.model_type

    def flux(e, **p):  # an EBL-absorbed fit: the intrinsic flux
        return integral(mtype, e, FLUX_E_MAX, intrinsic_values(p), "exact")

    f0, sigma = propagate_errors(flux, np.array([e_min]), result.values, *result.free_covariance())
    return float(f0[0]), float(sigma[0])


def _parameters_text(result) -> str:
    out = []
    for p in result.parameters:
        unit = f" {p.unit}" if p.unit else ""
        if p.frozen:
            out.append(f"{p.name} = {p.value:.4g}{unit} (frozen)")
        elif not math.isfinite(p.value):
            out.append(f"{p.name} = -")
        else:
            err_s = f" +- {p.error:.2g}" if math.isfinite(p.error) else ""
            out.append(f"{p.name} = {p.value:.4g}{err_s}{unit}")
    return "; ".join(out)


def summary_row(name: str, result: dict | None, cumulative_last: dict | None, failure: str | None = None,
                flux_definition: str = "") -> dict:
    """One row of :data:`SUMMARY_COLUMNS`.

    Parameters
    ----------
    name : str
        Analysis name.
    result : FitResult or None
        The fit result (:func:`extspec.io.fitresult.read_fit_result` of ``fit/result.yaml``); None
        when the fit did not run.
    cumulative_last : dict or None
        The last row of ``cumulative.ecsv`` (None when missing or empty).
    failure : str, optional
        Why the analysis did not finish (for a missing result).
    flux_definition : str, optional
        ``flux_definition`` of the result file (which flux the fit measured).
    """
    nan = math.nan
    row = {k: nan for k in SUMMARY_COLUMNS}
    row.update(analysis=name, n_runs=0, n_excluded=0, excluded="", model="", parameters="", fit_status="",
               background_methods="", flux_definition=flux_definition)
    if result is None:
        row["status"] = f"failed: {failure or 'no fit result'}"
        row["fit_status"] = "not run"
        return row
    row.update(n_runs=len(result.obs_ids), n_excluded=len(result.excluded),
               excluded=" ".join(str(o) for o in result.excluded), model=result.model_type,
               parameters=_parameters_text(result))
    if cumulative_last:
        row.update(livetime=float(cumulative_last["livetime"]) / 3600.0,
                   counts=float(cumulative_last["counts"]), background=float(cumulative_last["background"]),
                   excess=float(cumulative_last["excess"]), significance=float(cumulative_last["sqrt_ts"]))
    verdict = result.quality
    if verdict is not None:  # the quality gate's status (extspec.quality)
        row["status"] = "fit failed" if verdict.status == "failed" else verdict.status.replace("_", " ")
        row["fit_status"] = ("ok" if verdict.ok else f"failed: {result.message or 'no convergence'}"
                             if verdict.status == "failed" else verdict.reason)
        if verdict.status not in ("not_detected", "failed"):  # else no measured flux
            with np.errstate(all="ignore"):
                row["flux_above_1tev"], row["flux_above_1tev_err"] = flux_above(result)
        if verdict.status == "not_detected":  # a fit of noise: no parameter is a measurement
            row["parameters"] = "none measured (not detected: see flux_ul)"
        if result.upper_limit:
            row["flux_ul"] = float(result.upper_limit["flux_ul"])
        return row
    row["flux_above_1tev"], row["flux_above_1tev_err"] = flux_above(result)
    if result.success and result.goodness_of_fit.get("poor"):  # converged, but not to the data (issue 19)
        row["fit_status"] = result.goodness_of_fit.get("warning", "poor fit")
        row["status"] = "poor fit"
    elif result.success:
        row["fit_status"] = "ok"
        row["status"] = "ok"
    else:
        row["fit_status"] = f"failed: {result.message or 'no convergence'}"
        row["status"] = "fit failed"
    return row
