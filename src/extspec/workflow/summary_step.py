"""The summary step (rule ``summary``): one row per analysis from its ``result.yaml``,
cumulative table, light curve and logs, written as ``summary.ecsv`` and ``summary.html``."""

from __future__ import annotations

from pathlib import Path

from ..io.atomic import write_atomic
from .outputs import write_ecsv

__all__ = ["no_result", "write_summary"]


def _variability_p_value(analysis_dir: Path) -> float:
    """The constant-flux p-value in an analysis's light-curve metadata (NaN when absent)."""
    from ..io.ecsv import read_ecsv_rows

    try:
        _, meta = read_ecsv_rows(analysis_dir / "lightcurve" / "lightcurve.ecsv")
    except (OSError, ValueError):
        return float("nan")
    value = meta.get("variability_p_value")
    return float(value) if value is not None else float("nan")


def _failure_in_logs(analysis_dir: Path) -> str:
    """The first error a job of one analysis logged (its one-line message), or a generic note."""
    for log in sorted(analysis_dir.glob("logs/**/*.log")):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for ln in lines:
            if " ERROR " in ln:
                return ln.split(": ", 1)[-1].strip()
    return "no fit result (a job failed or did not run)"


def _background_methods(result: dict) -> str:
    """``fov: 14, reflected: 1``: the runs of each background method (``result.yaml``'s
    ``background.methods``; empty for a result without it)."""
    methods = (result.get("background") or {}).get("methods") or {}
    return ", ".join(f"{k}: {v}" for k, v in sorted(methods.items()))


def no_result(status: str) -> bool:
    """A summary row's status that means no result at all (the analysis's fit failed or never
    ran), as opposed to a result the quality gate flagged (not detected, poor fit, at a bound)."""
    return status.startswith("failed") or status == "fit failed"


def write_summary(results_dir, analyses: list, out_ecsv, out_html, light_curves=(), products=()) -> list:
    """``summary.ecsv`` and ``summary.html``: one row per analysis (:mod:`extspec.summary`).

    Reads ``<results_dir>/<analysis>/fit/result.yaml`` and ``cumulative.ecsv``; an analysis
    without a fit result (a failed job, e.g. under ``--keep-going``) gets a row naming the
    first error in its logs.  With ``light_curves`` (the analyses that have one) the column
    ``variability_p_value`` is added, read from their ``lightcurve/lightcurve.ecsv``.  With
    ``products`` (``(product name, analysis)`` pairs: the registered products the analyses
    have) every summary column of those products is added
    (:class:`extspec.workflow.product.SummaryColumn`; NaN for the analyses without it).
    Returns the rows.
    """
    from ..io.ecsv import read_ecsv_rows
    from ..io.fitresult import fit_result_from_yaml, read_result_yaml
    from ..io.html import table_html
    from ..summary import SUMMARY_COLUMNS, VARIABILITY_COLUMNS, summary_row

    rows = []
    for name in analyses:
        adir = Path(results_dir) / name
        if not (adir / "fit" / "result.yaml").is_file():
            rows.append(summary_row(name, None, None, _failure_in_logs(adir)))
            continue
        d = read_result_yaml(adir / "fit" / "result.yaml")  # read once: the result, which flux, which backgrounds
        result = fit_result_from_yaml(d, adir / "fit" / "result.yaml")
        try:
            cum, _ = read_ecsv_rows(adir / "cumulative.ecsv")
        except OSError:
            cum = []
        rows.append(summary_row(name, result, cum[-1] if cum else None,
                                flux_definition=str(d.get("flux_definition", ""))))
        rows[-1]["background_methods"] = _background_methods(d)
    columns = dict(SUMMARY_COLUMNS)
    if light_curves:
        columns.update(VARIABILITY_COLUMNS)
        for row in rows:
            row["variability_p_value"] = _variability_p_value(Path(results_dir) / row["analysis"]) \
                if row["analysis"] in light_curves else float("nan")
    column_notes = {}
    for name in dict.fromkeys(n for n, _ in products):
        from .products import product

        having = {a for n, a in products if n == name}
        for col in product(name).summary:
            columns[col.name] = col.unit
            column_notes[col.name] = col.description
            for row in rows:
                row[col.name] = col.read(Path(results_dir) / row["analysis"] / col.file) \
                    if row["analysis"] in having else float("nan")
    failed = [r["analysis"] for r in rows if no_result(r["status"])]
    flagged = [r["analysis"] for r in rows if r["status"] != "ok" and not no_result(r["status"])]
    write_ecsv(rows, columns, {"failed": failed, "not_ok": flagged, "flux_above_1tev": "integral of the best-fit model from 1 to 1e4 TeV",
                               **column_notes}, out_ecsv)
    notes = [(f"Not finished: {', '.join(failed)}. " if failed else "Every analysis finished. ")
             + (f"Finished but not ok (see the status column): {', '.join(flagged)}." if flagged else ""),
             "livetime, counts, background, excess and significance (WStat sqrt(TS)): all usable runs "
             "stacked over their safe energy bins; flux above 1 TeV from the best-fit model with its "
             "1-sigma error by linear propagation of the fit covariance; flux_definition says which flux: "
             "inside the ON region (no PSF containment) or the whole source's (model.spatial)."]
    write_atomic(out_html, table_html("extspec summary", columns, rows, notes,
                                     bad=lambda r: r["status"] != "ok"))
    return rows
