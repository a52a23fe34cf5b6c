"""Joint fit of one spectral model to the spectra of several analyses (instruments).

Each analysis (an "instrument": its own data store, binning, safe ranges, or OGIP sets of
another tool) keeps its ON/OFF spectra in one :class:`~extspec.fit.JointData` on its own
energy axes.  The likelihood is the sum of the WStat of every safe bin of every dataset of
every instrument (spec §8-§9), so the reco binnings may differ between instruments:

    W = sum_g sum_{d in g} W_d(mu_g)  +  sum_g [(s_g / sigma_s,g)^2 + (n_g / sigma_n,g)^2]

Optional nuisance parameters per instrument g, each with a Gaussian prior of mean 0
(``systematics``; the prior terms are -2 ln of the Gaussian up to a constant):

* energy scale s_g: the model is evaluated at (1 + s_g) E_true.  The flux in a true bin is
  ``F_i(s) = int_{(1+s) lo_i}^{(1+s) hi_i} phi(E) dE`` (the model integral over the scaled bin:
  the same exact integrals as without it), i.e. the photons of energy (1 + s) E are seen by
  that instrument as E; a power law of index Gamma then scales by (1 + s)^(1 - Gamma).
* normalisation n_g: the instrument's predicted signal is multiplied by (1 + n_g).

The fit goes through the quality gate (:mod:`extspec.quality`) with the nuisances among its
parameters (a nuisance at its bound is flagged ``at_bound``), the summed deviance test and,
per analysis, its own deviance test and the rise of its W at the joint fit over its own best
fit of the same model (``goodness_of_fit.per_analysis`` and ``.consistency``): analyses that
disagree (two different sources, a miscalibration) make the fit ``poor_fit``.

The minimisation, folding and statistic are those of :mod:`extspec.fit`
(:func:`~extspec.fit.minimise`, :class:`~extspec.fit.JointData`).  A model with ``ebl`` is
folded absorbed, with the integrator :func:`~extspec.fit.fit_joint` uses
(:func:`extspec.ebl.absorbed_integral`): its parameters are the intrinsic ones plus
``redshift`` and ``alpha_norm`` (free and bounded if the block says so), and an energy-scale
nuisance is bounded so that every instrument's scaled true-energy axis stays inside the EBL
table (the table is not extrapolated).  The model parameters'
covariance reported is the block of the full covariance (nuisances marginalised).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fit import (GOF_P_MIN, FitOptions, FitResult, JointData, Parameter, _energy_range, _judged, deviance_test,
                  goodness_of_fit, minimise, model_parameters)
from .model_spec import ModelSpec, as_model_spec
from .models import integrator
from .norms import flux_upper_limit

__all__ = ["Systematics", "Instrument", "JointFit", "NUISANCE_KINDS", "instrument_flux", "fit_instruments",
           "JointAnalysis", "fit_joint_analyses", "combined_edges"]

NUISANCE_KINDS = ("energy_scale", "norm")
"""The nuisance parameters an instrument may have, in the order they are listed."""

NUISANCE_MIN = -0.9
"""Lower bound of every nuisance parameter (keeps 1 + s and 1 + n positive)."""


def _shifts(values: dict, name: str) -> tuple[float, float]:
    """(energy scale s, norm n) of instrument ``name`` in parameter ``values`` (0 where it has none)."""
    return values.get(f"{name}.energy_scale", 0.0), values.get(f"{name}.norm", 0.0)


@dataclass(frozen=True)
class Systematics:
    """Gaussian prior widths (1 sigma) of one instrument's nuisance parameters; None: no such
    parameter (the instrument's energy scale or normalisation is taken as exact)."""

    energy_scale: float | None
    norm: float | None

    def widths(self) -> dict:
        return {k: getattr(self, k) for k in NUISANCE_KINDS if getattr(self, k) is not None}


@dataclass
class Instrument:
    """The datasets of one analysis in a joint fit, with its nuisance parameters' priors."""

    name: str
    data: JointData
    systematics: Systematics


@dataclass
class JointFit:
    """Outcome of :func:`fit_instruments`.

    ``result``: the model's :class:`~extspec.fit.FitResult` (the model parameters, their covariance with
    the nuisances marginalised, all datasets' obs ids, W including the prior terms);
    ``nuisance``: one :class:`~extspec.fit.Parameter` per nuisance (``<analysis>.energy_scale``,
    ``<analysis>.norm``) and ``priors`` their prior widths; ``covariance`` and ``names``: the
    full covariance; ``stat``: W of each instrument's datasets at the best fit.
    """

    result: FitResult
    nuisance: list
    priors: dict
    covariance: np.ndarray
    names: list
    stat: dict = field(default_factory=dict)
    stat_per_dataset: dict = field(default_factory=dict)

    def shifts(self, name: str) -> tuple[float, float]:
        """(s, n) of instrument ``name`` at the best fit (0 for a parameter it does not have)."""
        return _shifts({p.name: p.value for p in self.nuisance}, name)

    def systematics_dict(self) -> dict:
        """``{analysis: {kind: {value, error, prior_sigma, flags}}}`` for ``result.yaml`` (``flags``:
        the quality gate's, e.g. ``at_max``: the value is a limit, not a measurement)."""
        out: dict = {}
        flags = self.result.quality.parameters if self.result.quality is not None else {}
        for p in self.nuisance:
            name, kind = p.name.rsplit(".", 1)
            ok = self.result.success
            out.setdefault(name, {})[kind] = {"value": float(p.value) if ok else None,
                                              "error": float(p.error) if ok else None,
                                              "prior_sigma": float(self.priors[p.name]),
                                              "flags": list(flags.get(p.name, ()))}
        return out


def instrument_flux(integ, data: JointData, values: dict, energy_scale: float = 0.0, norm: float = 0.0):
    """Model flux per true bin of ``data`` (cm^-2 s^-1) seen by an instrument with energy scale
    ``energy_scale`` and normalisation ``norm``: (1 + n) * int over [(1+s) lo, (1+s) hi]."""
    k = 1.0 + energy_scale
    return (1.0 + norm) * integ(data.e_min * k, data.e_max * k, values)


def fit_instruments(instruments: list, model: ModelSpec, options: FitOptions) -> JointFit:
    """Joint WStat fit of one model to several instruments' datasets (see the module doc).

    Parameters
    ----------
    instruments : list of Instrument
        One per analysis, each with its own energy axes.
    model : ModelSpec
        As for :func:`extspec.fit.fit_joint`.
    options : FitOptions
        Integration rule, covariance and MINOS, as for :func:`extspec.fit.fit_joint`
        (:func:`extspec.workflow.settings.fit_options` builds them from a ``fit`` block).
    """
    from .ebl import ebl_provenance, spectral_model

    covariance = options.covariance
    spec = as_model_spec(model)
    mtype, params = model_parameters(spec)
    model = spectral_model(spec)  # absorbed with spec.ebl: the integrator of fit_joint
    integ = integrator(model, options.integration, "fit.integration")
    ebl = ebl_provenance(spec)
    nuisance, priors = [], {}
    for ins in instruments:
        for kind, sigma in ins.systematics.widths().items():
            lo, hi = _nuisance_bounds(spec, ins.data, kind)
            p = Parameter(name=f"{ins.name}.{kind}", value=0.0, min=lo, max=hi)
            nuisance.append(p)
            priors[p.name] = float(sigma)
    used = [ins for ins in instruments if len(ins.data)]
    excluded = {o: r for ins in instruments for o, r in ins.data.excluded.items()}
    obs_ids = [o for ins in used for o in ins.data.obs_ids]
    ranges = [_energy_range(ins.data) for ins in used]
    erange = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else (float("nan"),) * 2
    n_model = len(params)
    all_params = params + nuisance
    names = [p.name for p in all_params]

    model_names = [p.name for p in params]

    def fluxes(values):
        model_values = {k: values[k] for k in model_names}
        return [instrument_flux(integ, ins.data, model_values, *_shifts(values, ins.name)) for ins in used]

    def stat(values):
        w = sum(ins.data.stat(f) for ins, f in zip(used, fluxes(values)))
        return w + sum((values[k] / s) ** 2 for k, s in priors.items())

    def failed(message):
        nan = np.full((len(all_params),) * 2, np.nan)
        res = FitResult(model_type=mtype, success=False, message=message, total_stat=float("nan"), parameters=params,
                        covariance=nan[:n_model, :n_model], edm=float("nan"), nfcn=0, obs_ids=obs_ids,
                        excluded=excluded, energy_range=erange, covariance_method=covariance, ebl=ebl)
        return JointFit(result=_judged(res), nuisance=nuisance, priors=priors, covariance=nan, names=names)

    if not used:
        return failed("no usable dataset")
    if not any(not p.frozen for p in all_params):
        return failed("no free parameter")  # a joint fit with everything frozen is not a fit
    start = {p.name: p.value for p in params}  # the assumed shape of an upper limit
    with np.errstate(over="ignore", under="ignore"):  # an unconstrained fit may try extreme values
        fit = minimise(all_params, stat, options)
    best = {p.name: p.value for p in all_params}
    per, per_instrument = {}, {}
    best_fluxes = fluxes(best)
    for ins, f in zip(used, best_fluxes):
        per_instrument[ins.name] = dict(zip(ins.data.obs_ids, ins.data.stat_per_dataset(f).tolist()))
        per.update(per_instrument[ins.name])
    n_free = sum(not p.frozen for p in params)
    gof = {ins.name: goodness_of_fit(ins.data, f, float(sum(per_instrument[ins.name].values())),
                                     min(n_free, int(ins.data.mask.sum()) - 1))
           for ins, f in zip(used, best_fluxes)}
    res = FitResult(model_type=mtype, success=fit.success, message=fit.message, total_stat=fit.fval,
                    parameters=params, covariance=fit.covariance[:n_model, :n_model], edm=fit.edm, nfcn=fit.nfcn,
                    obs_ids=obs_ids, excluded=excluded, energy_range=erange, stat_per_dataset=per,
                    covariance_method=covariance, ebl=ebl, goodness_of_fit=_joint_goodness(gof, sum(
                        not p.frozen for p in all_params)))
    consistency = _consistency(used, per_instrument, spec, options, n_free) if fit.success else {}
    poor = [f"{a}: {g['warning']}" for a, g in gof.items() if g.get("poor")]
    poor += [c["warning"] for c in consistency.values() if c.get("warning")]
    res.goodness_of_fit["per_analysis"] = gof
    res.goodness_of_fit["consistency"] = consistency
    ts = sum(ins.data.stat(np.zeros(ins.data.e_min.size)) for ins in used) - fit.fval
    judged = _judged(res, stat=stat if fit.success else None, ts=ts, ts_min=options.detection_ts_min,
                     extra_poor=poor, params=all_params, bounded_at_zero=fit.bounded_at_zero)
    if judged.status == "not_detected":  # one norm of the start-value shape over every instrument
        judged.upper_limit = flux_upper_limit([(ins.data, instrument_flux(integ, ins.data, start)) for ins in used],
                                              lambda e1, e2: integ(e1, e2, start), erange,
                                              "the model at its start values (model.parameters), nuisances at 0")
    return JointFit(result=judged, nuisance=nuisance, priors=priors, covariance=fit.covariance, names=names,
                    stat={k: float(sum(v.values())) for k, v in per_instrument.items()},
                    stat_per_dataset=per_instrument)


def _joint_goodness(per_analysis: dict, n_free_all: int) -> dict:
    """The joint fit's deviance test: the WStat of every analysis summed (priors excluded)
    against chi^2 with (fitted bins - free parameters, nuisances included) degrees of freedom."""
    dev = float(sum(g["deviance"] for g in per_analysis.values()))
    n_bins = int(sum(g["n_bins"] for g in per_analysis.values()))
    dof, p = deviance_test(dev, n_bins, n_free_all)
    out = {"deviance": dev, "n_bins": n_bins, "dof": dof, "p_value": p,
           "statistic": "sum of the analyses' WStat deviance vs chi2(dof); per_analysis: each analysis's "
                        "deviance test; consistency: each analysis's W at the joint fit minus at its own best fit"}
    if p is not None and p < GOF_P_MIN:
        out["poor"] = True
        out["warning"] = f"poor fit: joint WStat {dev:.1f} for {dof} degrees of freedom (p = {p:.1e})"
    else:
        out["poor"] = False
    return out


def _consistency(used, per_instrument: dict, model: ModelSpec, options: FitOptions, n_free: int) -> dict:
    """Per analysis: its W at the joint best fit minus its W at its own best fit of the same model
    (a likelihood ratio with ``n_free`` degrees of freedom: do the analyses agree with one model?),
    flagged with a ``warning`` when its p-value is below :data:`extspec.fit.GOF_P_MIN`."""
    from .fit import fit_joint
    from .stats import chi2_sf

    out = {}
    for ins in used:
        alone = fit_joint(ins.data.datasets, model, options, data=ins.data)
        if not alone.success or n_free <= 0:
            out[ins.name] = {"own_fit": "failed" if not alone.success else "no free parameter"}
            continue
        delta = max(float(sum(per_instrument[ins.name].values())) - alone.total_stat, 0.0)
        p = float(chi2_sf(delta, n_free))
        out[ins.name] = {"stat_joint": float(sum(per_instrument[ins.name].values())), "stat_alone": alone.total_stat,
                         "delta_stat": delta, "dof": n_free, "p_value": p}
        if p < GOF_P_MIN:
            out[ins.name]["warning"] = (f"{ins.name} disagrees with the joint model: its WStat rises by {delta:.1f} "
                                        f"over its own best fit ({n_free} parameters, p = {p:.1e}): different "
                                        "sources or a miscalibration?")
    return out


def _nuisance_bounds(model: ModelSpec, data: JointData, kind: str) -> tuple:
    """(min, max) of a nuisance parameter: :data:`NUISANCE_MIN` and none, except for an energy
    scale with an EBL table: (1 + s) times the instrument's true-energy axis stays inside the
    table's energy range (the absorbed integral refuses energies outside it)."""
    if kind != "energy_scale" or model.ebl is None or not len(data):
        return NUISANCE_MIN, None
    from .ebl import load_absorption

    t_lo, t_hi = load_absorption(model.ebl.table).energy_range
    return max(NUISANCE_MIN, t_lo / float(data.e_min[0]) - 1.0), t_hi / float(data.e_max[-1]) - 1.0


def combined_edges(reco_axes, energy_range):
    """Default edges of the combined flux points: log-spaced over ``energy_range`` with the
    coarsest bin density (bins per decade) of the analyses' reco axes."""
    import math

    lo, hi = energy_range
    density = min(ax.nbin / math.log10(ax.edges[-1] / ax.edges[0]) for ax in reco_axes)
    n = max(1, int(math.ceil(math.log10(hi / lo) * density - 1e-6)))
    return np.geomspace(lo, hi, n + 1)


@dataclass
class JointAnalysis:
    """What :func:`fit_joint_analyses` measured.

    Attributes
    ----------
    fit : JointFit
        The joint fit (model, nuisances, statistics).
    instruments : list of Instrument
        One per analysis, in the order given.
    records : dict
        ``{analysis: {obs_ids, excluded, n_datasets, stat, stat_per_dataset, energy_range,
        instrument, flux_definition}}``: each analysis's part of the fit (``result.yaml``'s
        ``instruments``).
    flux_points : dict
        ``{analysis: rows}``: each analysis's own flux points (its predictions with its fitted
        nuisances; :func:`extspec.fluxpoints.flux_point_rows`), empty for an analysis without a
        usable run or a failed fit.
    combined : list
        The combined flux points (every analysis's bins in each group).
    spectrum_plots : dict
        ``{analysis: arrays of :func:`extspec.stacking.spectrum_plot_arrays` or None}`` (None:
        no usable run, or a failed fit).
    """

    fit: JointFit
    instruments: list
    records: dict
    flux_points: dict
    combined: list
    spectrum_plots: dict


def fit_joint_analyses(spectra: dict, systematics: dict, model: ModelSpec, options: FitOptions,
                       flux_points) -> JointAnalysis:
    """One model fitted to the spectra of several analyses, with each analysis's and the
    combined flux points.

    Parameters
    ----------
    spectra : dict
        ``{analysis: [SpectrumDataset, ...]}``, in the order of the analyses.
    systematics : dict
        ``{analysis: Systematics}``: the prior widths of its nuisance parameters.
    model : ModelSpec
        The model (:class:`~extspec.model_spec.ModelSpec`; its EBL table, if any, handed to it
        as an :class:`~extspec.ebl.EBLAbsorption`).

    options : FitOptions

    flux_points : FluxPointSettings
        Edges (default: each analysis's safe reco bins for its own points,
        :func:`combined_edges` for the combined ones) and ``n_sigma_ul``.
    """
    from .containment import flux_definition
    from .ebl import result_model
    from .fit import instrument_records
    from .fluxpoints import add_deabsorbed, flux_point_edges, flux_point_rows
    from .stacking import spectrum_plot_arrays

    instruments = [Instrument(a, JointData(spectra[a]), systematics[a]) for a in spectra]
    jf = fit_instruments(instruments, model, options)
    res = jf.result
    records = {}
    for ins in instruments:
        er = _energy_range(ins.data)
        records[ins.name] = {
            "obs_ids": list(ins.data.obs_ids) if len(ins.data) else [],
            "excluded": [{"obs_id": int(k), "reason": v} for k, v in ins.data.excluded.items()],
            "n_datasets": len(ins.data), "stat": jf.stat.get(ins.name),
            "stat_per_dataset": {int(k): float(v) for k, v in jf.stat_per_dataset.get(ins.name, {}).items()},
            "energy_range": {"min": er[0], "max": er[1], "unit": "TeV"},
            "instrument": instrument_records(spectra[ins.name]), "flux_definition": flux_definition(spectra[ins.name])}
    model = result_model(res)  # the absorbed model when the fit had an EBL table
    integ = integrator(model, options.integration, "fit.integration")
    best = res.values
    n_sigma = float(flux_points.n_sigma_ul)
    used = [ins for ins in instruments if len(ins.data)]
    flux = ({ins.name: instrument_flux(integ, ins.data, best, *jf.shifts(ins.name)) for ins in used}
            if res.success else {})
    parts = {ins.name: (ins.data, ins.data.npred_sig(flux[ins.name])) for ins in used if ins.name in flux}
    per_points, plots = {}, {}
    for ins in instruments:
        rows, plots[ins.name] = [], None
        if ins.name in parts:
            edges = flux_point_edges(ins.data.datasets[0].energy_reco.edges, flux_points.energy_edges,
                                     _energy_range(ins.data))
            rows = add_deabsorbed(flux_point_rows([parts[ins.name]], model, best, edges, n_sigma), res)
            plots[ins.name] = spectrum_plot_arrays(ins.data.datasets, flux[ins.name])
        per_points[ins.name] = rows
    combined = []
    if parts:
        edges = (np.asarray(flux_points.energy_edges, float) if flux_points.energy_edges is not None else
                 combined_edges([d.datasets[0].energy_reco for d, _ in parts.values()], res.energy_range))
        combined = add_deabsorbed(flux_point_rows(list(parts.values()), model, best, edges, n_sigma), res)
    return JointAnalysis(fit=jf, instruments=instruments, records=records, flux_points=per_points,
                         combined=combined, spectrum_plots=plots)
