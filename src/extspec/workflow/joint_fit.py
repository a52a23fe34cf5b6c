"""The joint-fit step: one model fitted to the spectra of several analyses (the rule ``joint_fit``).

:func:`run_joint_fit` reads each analysis's OGIP sets, fits them with
:func:`extspec.joint.fit_joint_analyses` (the fit and its flux points) and writes, into one
folder (``<results_dir>/<joint>/fit/``):

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

from pathlib import Path

__all__ = ["joint_outputs", "run_joint_fit"]


def joint_outputs(analyses) -> list[str]:
    """File names (in the joint fit's folder) the step writes for these analyses, in order."""
    out = ["result.yaml", "flux_points.ecsv", "sed.png"]
    out += [f"flux_points_{a}.ecsv" for a in analyses] + [f"spectrum_{a}.png" for a in analyses]
    return out


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
    from ..errors import ConfigError, ExtspecError
    from ..fluxpoints import sed_columns, sed_meta, sed_models
    from ..joint import Systematics, fit_joint_analyses
    from ..io.fitresult import write_fit_result
    from ..plots import plot_sed, plot_spectrum_fit
    from ..stacking import spectrum_plot_arrays
    from .joint_config import prior_widths
    from .outputs import config_hash, write_ecsv
    from .pipeline import read_spectra
    from .settings import fit_options, flux_point_settings, model_spec

    outdir = Path(outdir)
    name = settings.get("name", "")
    analyses = list(settings["analyses"])
    missing = [a for a in analyses if a not in spectra_by_analysis]
    if missing or set(spectra_by_analysis) - set(analyses):
        raise ConfigError(f"joint fit {name}: spectra given for {', '.join(spectra_by_analysis)}, the settings name "
                          f"{', '.join(analyses)}")
    opts, fp = fit_options(settings), flux_point_settings(settings)
    spectra = {a: read_spectra(spectra_by_analysis[a]) for a in analyses}
    systematics = {a: Systematics(**prior_widths(settings.get("systematics") or {}, a)) for a in analyses}
    # the model as a ModelSpec, its EBL table handed to it
    joint = fit_joint_analyses(spectra, systematics, model_spec(settings["model"]), opts, fp)
    jf, res, info = joint.fit, joint.fit.result, joint.records
    datastores = settings.get("datastores") or {}
    provenance = {a: {"datastore": datastores.get(a),
                      "inputs": [{"path": str(p), "sha256": _sha256(_pha_path(p))} for p in spectra_by_analysis[a]]}
                  for a in analyses}
    write_fit_result(res, outdir / "result.yaml", config_hash=config_hash(settings), name=name,
                     joint={"analyses": analyses}, systematics=jf.systematics_dict(),
                     covariance_all={"names": jf.names,
                                     "matrix": [[float(v) for v in row] for row in jf.covariance]
                                     if res.success else None},
                     instruments=info, provenance={"analyses": provenance},
                     flux_definition=_joint_flux_definition(name, {a: info[a]["flux_definition"] for a in analyses}))
    units, ebl_meta = sed_columns(res)  # with the de-absorbed columns for an EBL fit
    n_sigma = float(fp.n_sigma_ul)
    for a in analyses:
        write_ecsv(joint.flux_points[a], units, sed_meta(res, n_sigma, {"analysis": a, **ebl_meta}),
                   outdir / f"flux_points_{a}.ecsv")
    write_ecsv(joint.combined, units, sed_meta(res, n_sigma, {"analyses": analyses,
                                                              "datasets": [int(o) for o in res.obs_ids], **ebl_meta}),
               outdir / "flux_points.ecsv")
    curves = sed_models(res)  # absorbed and intrinsic models and bands for an EBL fit
    plot_sed(joint.combined, curves["model_dnde"], res.energy_range, outdir / "sed.png", butterfly=curves["butterfly"],
             intrinsic=curves["intrinsic"], groups=[(a, joint.flux_points[a]) for a in analyses], label="combined",
             title=f"{name}: {res.model_type}, {' + '.join(analyses)}{curves['title_suffix']}")
    for ins in joint.instruments:
        path = outdir / f"spectrum_{ins.name}.png"
        s, n = jf.shifts(ins.name)
        title = f"{name} / {ins.name}: {len(ins.data)} obs" + (f", s = {s:+.3f}" if s else "") + \
            (f", n = {n:+.3f}" if n else "")
        arrays = joint.spectrum_plots[ins.name]
        if arrays is not None:
            plot_spectrum_fit(*arrays, path, title=title)
        else:
            plot_spectrum_fit(*spectrum_plot_arrays([], None), path,
                              title=f"{name} / {ins.name}: no usable observation")
    if not any(len(ins.data) for ins in joint.instruments):
        reasons = "; ".join(f"{ins.name} obs {k}: {v}" for ins in joint.instruments
                            for k, v in ins.data.excluded.items())
        raise ExtspecError(f"joint fit {name}: no usable observation ({reasons})")
    if not res.success:
        raise ExtspecError(f"joint fit {name}: {res.message}")


def _pha_path(p) -> Path:
    p = Path(p)
    return p / "pha.fits" if p.is_dir() else p
