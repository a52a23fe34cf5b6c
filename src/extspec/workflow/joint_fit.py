"""The joint-fit step: one model fitted to the spectra of several analyses (the rule ``joint_fit``).

:func:`run_joint_fit` reads each analysis's OGIP sets, fits them with
:func:`extspec.joint.fit_instruments` and writes, into one folder (``<results_dir>/<joint>/fit/``):

* ``result.yaml``: the model (as an analysis's ``fit/result.yaml``, so the summary and
  :func:`extspec.io.fitresult.read_fit_result` read it), plus ``systematics`` (the nuisance
  parameters: value, error, prior width), ``covariance_all`` (model and nuisances),
  ``instruments`` (per analysis: obs ids used and excluded, W, energy range, TELESCOP/INSTRUME)
  and ``provenance`` (per analysis: data store, inputs with their SHA-256);
* ``flux_points.ecsv``: combined flux points (every analysis's bins in each group);
* ``flux_points_<analysis>.ecsv``: each analysis's own flux points (its predictions with its
  fitted nuisances);
* ``sed.png``: model band, combined points in black, each analysis's points in its colour;

with ``model.ebl`` the model is folded absorbed, ``result.yaml`` holds the intrinsic
parameters and the ``ebl`` block (as an analysis's), both flux-point tables carry the
de-absorbed columns (:data:`extspec.ebl.DEABSORBED_UNITS`) and ``sed.png`` adds the intrinsic
model, its band and the de-absorbed combined points;
* ``spectrum_<analysis>.png``: each analysis's stacked excess, prediction and residuals.

Like every step it imports lazily and writes atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["joint_outputs", "run_joint_fit", "combined_edges"]


def joint_outputs(analyses) -> list[str]:
    """File names (in the joint fit's folder) the step writes for these analyses, in order."""
    out = ["result.yaml", "flux_points.ecsv", "sed.png"]
    out += [f"flux_points_{a}.ecsv" for a in analyses] + [f"spectrum_{a}.png" for a in analyses]
    return out


def combined_edges(reco_axes, energy_range):
    """Default edges of the combined flux points: log-spaced over ``energy_range`` with the
    coarsest bin density (bins per decade) of the analyses' reco axes."""
    import numpy as np

    lo, hi = energy_range
    density = min(ax.nbin / math.log10(ax.edges[-1] / ax.edges[0]) for ax in reco_axes)
    n = max(1, int(math.ceil(math.log10(hi / lo) * density - 1e-6)))
    return np.geomspace(lo, hi, n + 1)


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _joint_flux_definition(name: str, per_analysis: dict) -> str:
    """One sentence for a joint fit: every analysis measures the source's flux, or which do not
    (logged as a warning: the normalisation nuisance would absorb the difference)."""
    import logging

    source = ("flux of the whole source", "flux of a point source")
    inside = [a for a, d in per_analysis.items() if not d.startswith(source)]
    if not inside:
        return "flux of the whole source in every analysis (model.spatial, or point-like IRFs)"
    text = (f"mixed: {', '.join(inside)} measure the flux inside their ON region (no PSF containment), "
            f"the others the source's; set model.spatial in {', '.join(inside)}")
    if len(inside) < len(per_analysis):
        logging.getLogger("extspec.joint").warning("joint fit %s: %s", name, text)
        return text
    return "flux inside each analysis's ON region, no PSF containment (model.spatial absent)"


def run_joint_fit(settings: dict, spectra_by_analysis: dict, outdir) -> None:
    """Fit ``settings['model']`` to the spectra of every analysis and write the products.

    ``settings``: the joint block with defaults (``analyses``, ``model``, ``systematics``,
    ``fit``, ``flux_points``) plus ``name`` and optionally ``datastores`` ({analysis:
    directory}, for the provenance); ``spectra_by_analysis``: {analysis: [spectrum dir or
    PHA file, ...]}.  With no usable dataset at all it writes ``result.yaml`` (``success:
    false``) and the plots, then raises ExtspecError naming every excluded run.
    """
    import numpy as np

    from ..errors import ConfigError, ExtspecError
    from ..fit import JointData
    from ..ebl import result_model
    from ..fluxpoints import add_deabsorbed, flux_point_rows, sed_columns, sed_models, flux_point_edges
    from ..joint import Instrument, Systematics, fit_instruments, instrument_flux
    from ..io.ebl_table import with_ebl_table
    from ..io.fitresult import write_fit_result
    from ..models import integrator
    from ..plots import plot_sed, plot_spectrum_fit
    from ..stacking import stack_spectra
    from .joint_config import prior_widths
    from ..containment import flux_definition
    from .pipeline import _config_hash, _fp_meta, _instruments, _write_ecsv, read_spectra
    from .settings import fit_options, flux_point_settings

    outdir = Path(outdir)
    name = settings.get("name", "")
    analyses = list(settings["analyses"])
    missing = [a for a in analyses if a not in spectra_by_analysis]
    if missing or set(spectra_by_analysis) - set(analyses):
        raise ConfigError(f"joint fit {name}: spectra given for {', '.join(spectra_by_analysis)}, the settings name "
                          f"{', '.join(analyses)}")
    opts, fp = fit_options(settings), flux_point_settings(settings)
    spectra = {a: read_spectra(spectra_by_analysis[a]) for a in analyses}
    instruments = [Instrument(a, JointData(spectra[a]), Systematics(**prior_widths(settings.get("systematics") or {},
                                                                                  a)))
                   for a in analyses]
    jf = fit_instruments(instruments, with_ebl_table(settings["model"]), opts)  # the EBL model is handed its table
    res = jf.result
    datastores = settings.get("datastores") or {}
    info, provenance = {}, {}
    from ..fit import _energy_range

    for ins in instruments:
        a = ins.name
        er = _energy_range(ins.data)
        info[a] = {"obs_ids": list(ins.data.obs_ids) if len(ins.data) else [],
                   "excluded": [{"obs_id": int(k), "reason": v} for k, v in ins.data.excluded.items()],
                   "n_datasets": len(ins.data), "stat": jf.stat.get(a),
                   "stat_per_dataset": {int(k): float(v) for k, v in jf.stat_per_dataset.get(a, {}).items()},
                   "energy_range": {"min": er[0], "max": er[1], "unit": "TeV"},
                   "instrument": _instruments(spectra[a]), "flux_definition": flux_definition(spectra[a])}
        provenance[a] = {"datastore": datastores.get(a),
                         "inputs": [{"path": str(p), "sha256": _sha256(_pha_path(p))} for p in spectra_by_analysis[a]]}
    write_fit_result(res, outdir / "result.yaml", config_hash=_config_hash(settings), name=name,
                     joint={"analyses": analyses}, systematics=jf.systematics_dict(),
                     covariance_all={"names": jf.names,
                                     "matrix": [[float(v) for v in row] for row in jf.covariance]
                                     if res.success else None},
                     instruments=info, provenance={"analyses": provenance},
                     flux_definition=_joint_flux_definition(name, {a: info[a]["flux_definition"] for a in analyses}))
    model = result_model(res)  # the absorbed model when the fit had an EBL table
    integ = integrator(model, opts.integration, "fit.integration")
    units, ebl_meta = sed_columns(res)  # with the de-absorbed columns for an EBL fit
    best = res.values
    n_sigma = float(fp.n_sigma_ul)
    used = [ins for ins in instruments if len(ins.data)]
    parts = {ins.name: (ins.data, ins.data.npred_sig(instrument_flux(integ, ins.data, best, *jf.shifts(ins.name))))
             for ins in used} if res.success else {}
    per_points = {}
    for ins in instruments:
        rows = []
        if ins.name in parts:
            edges = flux_point_edges(ins.data.datasets[0].energy_reco.edges, fp.energy_edges,
                                     _energy_range(ins.data))
            rows = add_deabsorbed(flux_point_rows([parts[ins.name]], model, best, edges, n_sigma), res)
        per_points[ins.name] = rows
        _write_ecsv(rows, units, _fp_meta(res, n_sigma, {"analysis": ins.name, **ebl_meta}),
                    outdir / f"flux_points_{ins.name}.ecsv")
    combined = []
    if parts:
        edges = (np.asarray(fp.energy_edges, float) if fp.energy_edges is not None else
                 combined_edges([d.datasets[0].energy_reco for d, _ in parts.values()], res.energy_range))
        combined = add_deabsorbed(flux_point_rows(list(parts.values()), model, best, edges, n_sigma), res)
    _write_ecsv(combined, units, _fp_meta(res, n_sigma, {"analyses": analyses,
                                                         "datasets": [int(o) for o in res.obs_ids], **ebl_meta}),
                outdir / "flux_points.ecsv")
    curves = sed_models(res)  # absorbed and intrinsic models and bands for an EBL fit
    plot_sed(combined, curves["model_dnde"], res.energy_range, outdir / "sed.png", butterfly=curves["butterfly"],
             intrinsic=curves["intrinsic"], groups=[(a, per_points[a]) for a in analyses], label="combined",
             title=f"{name}: {res.model_type}, {' + '.join(analyses)}{curves['title_suffix']}")
    for ins in instruments:
        path = outdir / f"spectrum_{ins.name}.png"
        s, n = jf.shifts(ins.name)
        title = f"{name} / {ins.name}: {len(ins.data)} obs" + (f", s = {s:+.3f}" if s else "") + \
            (f", n = {n:+.3f}" if n else "")
        if ins.name in parts:
            stack = stack_spectra(ins.data.datasets, float32=False)  # for the plot, as run_fit
            from ..fit import fold, response_matrix

            npred = fold(instrument_flux(integ, ins.data, best, s, n), response_matrix(stack.exposure, stack.edisp))
            plot_spectrum_fit(stack.energy_reco.edges, stack.counts, stack.counts_off, stack.alpha, npred,
                              stack.mask_safe, path, title=title)
        else:
            plot_spectrum_fit(np.array([1.0, 10.0]), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1),
                              np.zeros(1, bool), path, title=f"{name} / {ins.name}: no usable observation")
    if not used:
        reasons = "; ".join(f"{ins.name} obs {k}: {v}" for ins in instruments for k, v in ins.data.excluded.items())
        raise ExtspecError(f"joint fit {name}: no usable observation ({reasons})")
    if not res.success:
        raise ExtspecError(f"joint fit {name}: {res.message}")


def _pha_path(p) -> Path:
    p = Path(p)
    return p / "pha.fits" if p.is_dir() else p
