"""Joint forward-folded WStat fit over many ON/OFF spectra (spec §8-§9).

Forward folding (§8.1): per dataset d, true bin i and reco bin j

    mu_sig[d, j] = sum_i F_i * X[d, i] * 1e4 * K[d, i, j]

with F_i the model integral over the true bin (cm^-2 s^-1), X in m^2 s (1e4 = M2_TO_CM2).
:func:`response_matrix` and :func:`fold` are the one implementation of this formula (the
fit, the spectrum plot and the ON/OFF simulator use them).  The joint statistic
is the sum of WStat over the safe bins of every usable dataset.  All datasets share one
true-energy axis (checked), so the model is integrated once per call and folded with one
``einsum`` over all datasets.

Minimisation (§9): iminuit MIGRAD on scaled parameters (factor = value / 10^floor(log10|v|),
initial steps 1, tol 0.1, strategy 1).  Errors: HESSE by default; ``covariance="migrad"``
keeps MIGRAD's own covariance as the reference does ([REF-QUIRK]).  MINOS on request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import ConfigError
from .minimiser import make_minuit
from .model_spec import ModelSpec, as_model_spec
from .models import check_param_names, get_model, integrator
from .norms import flux_upper_limit
from .start_values import AMPLITUDE, start_amplitude
from .stats import chi2_sf, p_to_sigma, wstat

__all__ = ["FitOptions", "Parameter", "FitResult", "JointData", "model_parameters", "fit_joint", "compare_models",
           "fit_with_comparisons", "instrument_records",
           "goodness_of_fit", "M2_TO_CM2", "response_matrix", "fold", "make_minuit", "minimise", "Minimum"]

@dataclass(frozen=True)
class FitOptions:
    """How :func:`fit_joint` fits (the ``fit`` config block; no defaults here).

    Attributes
    ----------
    integration : {"exact", "reference"}
        Model integral over true bins (the reference 11-point rule for ECPL/LP on request).
    covariance : {"hesse", "migrad"}
        HESSE after MIGRAD, or MIGRAD's own covariance ([REF-QUIRK]).
    minos : bool
        Also compute MINOS errors.
    allow_negative_amplitude : bool
        False: the amplitude stays >= 0 (see :func:`fit_joint`); True: a negative amplitude is
        a valid result.
    detection_ts_min : float
        The quality gate's detection threshold (:mod:`extspec.quality`): a fit whose signal TS
        (W without signal - W at the best fit) is below it is ``not_detected``.
    """

    integration: str
    covariance: str
    minos: bool
    allow_negative_amplitude: bool
    detection_ts_min: float


M2_TO_CM2 = 1e4
"""Exposure is in m^2 s, fluxes in cm^-2: the factor between them."""


def response_matrix(exposure, edisp) -> np.ndarray:
    """R[..., i, j] = X[..., i] * 1e4 * K[..., i, j] (cm^2 s): exposure folded into the kernel."""
    return np.asarray(exposure, float)[..., :, None] * M2_TO_CM2 * np.asarray(edisp, float)


def fold(flux_int, response) -> np.ndarray:
    """Predicted signal counts per reco bin: sum_i F_i R[..., i, j] (§8.1).

    ``flux_int``: model integral per true bin (cm^-2 s^-1), one for all datasets (i,) or one
    per dataset (d, i); ``response``: from :func:`response_matrix`, one dataset (i, j) or many
    (d, i, j).
    """
    if np.ndim(flux_int) == 2:
        return np.einsum("di,dij->dj", flux_int, response)
    if np.ndim(response) == 3:
        return np.einsum("i,dij->dj", flux_int, response)
    return np.einsum("i,ij->j", flux_int, response)


@dataclass
class Parameter:
    """One model parameter (value and error in the unit ``unit``)."""

    name: str
    value: float
    unit: str = ""
    frozen: bool = False
    min: float | None = None
    max: float | None = None
    error: float = 0.0
    minos: tuple | None = None
    start_from_data: bool = False  # no start value in the config: taken from the data (extspec.start_values)

    def as_dict(self) -> dict:
        d = {"value": float(self.value), "error": float(self.error), "unit": self.unit, "frozen": bool(self.frozen)}
        if self.min is not None:
            d["min"] = float(self.min)
        if self.max is not None:
            d["max"] = float(self.max)
        if self.minos is not None:
            d["errn"], d["errp"] = float(self.minos[0]), float(self.minos[1])
        return d


def model_parameters(model) -> tuple[str, list[Parameter]]:
    """The type and the :class:`Parameter` list of a :class:`~extspec.model_spec.ModelSpec`
    (the intrinsic parameters, then with an EBL block redshift and alpha_norm:
    :mod:`extspec.ebl`); a parameter not given starts at the model's start value, with its
    frozen default and no bounds."""
    from .ebl import ebl_parameters, spectral_model

    spec = as_model_spec(model)
    model = spectral_model(spec)  # with ebl: the intrinsic parameters, then redshift, alpha_norm
    given = spec.given()
    check_param_names(get_model(spec.type), given, "model.parameters")
    given = {**given, **ebl_parameters(spec)}
    params = []
    for name in model.param_names:
        p = given.get(name)
        value = None if p is None else p.value
        params.append(Parameter(
            name=name,
            value=float(model.defaults[name] if value is None else value),
            unit=model.units[name],
            frozen=bool(name in model.frozen_default if p is None or p.frozen is None else p.frozen),
            min=None if p is None or p.min is None else float(p.min),
            max=None if p is None or p.max is None else float(p.max),
            start_from_data=name == AMPLITUDE and value is None,
        ))
    return spec.type, params


STAT_INVALID = 1e30
"""The statistic reported for a non-finite prediction (overflowing parameters)."""


class JointData:
    """The arrays of many ON/OFF spectra, stacked for a vectorised likelihood.

    Only usable datasets with at least one safe bin are kept; the others are listed in
    ``excluded`` ({obs_id: reason}).
    """

    def __init__(self, datasets):
        self.excluded = {}
        keep = []
        for d in datasets:
            if not d.usable:
                self.excluded[int(d.obs_id)] = d.reason or "unusable"
            elif not np.any(d.mask_safe):
                self.excluded[int(d.obs_id)] = "no bin in the safe energy range"
            else:
                keep.append(d)
        self.datasets = keep
        if not keep:
            self.energy_true = None
            return
        e0, r0 = keep[0].energy_true.edges, keep[0].energy_reco.edges
        for d in keep[1:]:
            if not np.array_equal(d.energy_true.edges, e0):
                raise ConfigError(f"obs {d.obs_id}: true-energy axis differs from obs {keep[0].obs_id}")
            if not np.array_equal(d.energy_reco.edges, r0):
                raise ConfigError(f"obs {d.obs_id}: reco-energy axis differs from obs {keep[0].obs_id} "
                                  "(a joint fit needs one binning)")
        self.energy_true = keep[0].energy_true
        self.obs_ids = [int(d.obs_id) for d in keep]
        self.counts = np.array([d.counts for d in keep], float)
        self.counts_off = np.array([d.counts_off for d in keep], float)
        self.alpha = np.array([d.alpha for d in keep], float)
        self.mask = np.array([d.mask_safe for d in keep], bool)
        # exposure in cm^2 s folded into the kernel once: R[d, i, j] = X[d, i] * 1e4 * K[d, i, j]
        self.response = response_matrix([d.exposure for d in keep], [d.edisp for d in keep])
        self.e_min = self.energy_true.edges[:-1]
        self.e_max = self.energy_true.edges[1:]
        # bins that never matter are neutralised up front (counts 0, alpha 1 outside the mask)
        self.counts_masked = np.where(self.mask, self.counts, 0.0)
        self.counts_off_masked = np.where(self.mask, self.counts_off, 0.0)
        self.alpha_masked = np.where(self.mask, self.alpha, 1.0)

    def __len__(self):
        return len(self.datasets)

    def npred_sig(self, flux_int: np.ndarray) -> np.ndarray:
        """Predicted signal counts (n_datasets, n_reco) for true-bin integral fluxes (cm^-2 s^-1)."""
        return fold(flux_int, self.response)

    def stat_per_dataset(self, flux_int: np.ndarray) -> np.ndarray:
        w = wstat(self.counts_masked, self.counts_off_masked, self.alpha_masked, self.npred_sig(flux_int))
        return np.sum(np.where(self.mask, w, 0.0), axis=1)

    def stat(self, flux_int: np.ndarray) -> float:
        """Summed WStat of the safe bins; ``STAT_INVALID`` where the prediction is not finite
        (a minimiser stepping to absurd parameters must see a bad point, not WStat's NaN -> 0)."""
        mu = self.npred_sig(flux_int)
        if not np.all(np.isfinite(mu[self.mask])):
            return STAT_INVALID
        w = wstat(self.counts_masked, self.counts_off_masked, self.alpha_masked, mu)
        return float(np.sum(w[self.mask]))


@dataclass
class FitResult:
    """Outcome of a joint fit (its file format, ``fit/result.yaml``: :mod:`extspec.io.fitresult`)."""

    model_type: str
    success: bool
    message: str
    total_stat: float
    parameters: list
    covariance: np.ndarray
    edm: float
    nfcn: int
    obs_ids: list
    excluded: dict
    energy_range: tuple
    stat_per_dataset: dict = field(default_factory=dict)
    covariance_method: str = "hesse"
    comparisons: list = field(default_factory=list)
    ebl: dict | None = None
    """EBL table of an absorbed model ({table, sha256, name}; :mod:`extspec.ebl`), else None."""
    goodness_of_fit: dict = field(default_factory=dict)
    quality: object = None
    """The quality gate's :class:`~extspec.quality.Verdict` (None for a result read from a file
    written before the gate)."""
    upper_limit: dict | None = None
    """For a ``not_detected`` fit: the 95 % upper limit on the flux (:func:`extspec.norms.flux_upper_limit`)."""

    @property
    def status(self) -> str:
        """The gate's status (:data:`extspec.quality.STATUSES`); without a verdict "ok" or "failed"."""
        if self.quality is not None:
            return self.quality.status
        return "ok" if self.success else "failed"

    @property
    def values(self) -> dict:
        return {p.name: p.value for p in self.parameters}

    @property
    def n_free(self) -> int:
        return sum(not p.frozen for p in self.parameters)

    def free_covariance(self) -> tuple[list, np.ndarray]:
        """The free parameters' names and their covariance block (for error propagation)."""
        idx = [i for i, p in enumerate(self.parameters) if not p.frozen]
        return [self.parameters[i].name for i in idx], np.asarray(self.covariance, float)[np.ix_(idx, idx)]


def _scale(v: float) -> float:
    return 1.0 if v == 0 or not np.isfinite(v) else 10.0 ** math.floor(math.log10(abs(v)))


def fit_joint(datasets, model: ModelSpec, options: FitOptions, data: JointData | None = None) -> FitResult:
    """Joint WStat fit of a spectral model (§9).

    Parameters
    ----------
    datasets : list of SpectrumDataset

    model : ModelSpec
        The spectral model (:class:`~extspec.model_spec.ModelSpec`; a ``model`` mapping goes
        through :func:`~extspec.model_spec.as_model_spec`).
    options : FitOptions
        Integration rule, covariance (HESSE or MIGRAD's own) and MINOS.
    data : JointData, optional
        ``JointData(datasets)`` if already built (several fits of the same data).

    Unless ``options.allow_negative_amplitude``, the amplitude stays >= 0: MIGRAD runs without
    a bound first (the same path as without the rule when the minimum is physical); a minimum
    at a negative amplitude, or a failed MIGRAD, is fitted again with the amplitude bounded
    below by 0.

    An amplitude the config does not give starts from the data
    (:func:`extspec.start_values.start_amplitude`).  With no ON count in any fitted bin there is nothing to fit: the result
    has ``success`` false.  ``goodness_of_fit`` (:func:`goodness_of_fit`) compares the fitted
    prediction with the data.
    """
    integration, covariance, minos = options.integration, options.covariance, options.minos
    data = data if data is not None else JointData(datasets)
    model = as_model_spec(model)
    mtype, params = model_parameters(model)
    from .ebl import ebl_provenance, spectral_model

    integ = integrator(spectral_model(model), integration, "fit.integration")
    ebl = ebl_provenance(model)
    free = [p for p in params if not p.frozen]
    erange = _energy_range(data)
    if len(data) == 0:
        return _judged(FitResult(model_type=mtype, success=False, message="no usable dataset",
                                 total_stat=float("nan"), parameters=params,
                                 covariance=np.full((len(params),) * 2, np.nan), edm=float("nan"), nfcn=0,
                                 obs_ids=[], excluded=data.excluded, energy_range=erange,
                                 covariance_method=covariance, ebl=ebl))
    lo, hi = data.e_min, data.e_max
    n_on_fit = float(data.counts_masked.sum())
    if n_on_fit <= 0:
        return _judged(FitResult(model_type=mtype, success=False,
                         message=f"no counts in any fitted bin of the {len(data)} usable run(s) (safe range "
                                 f"{erange[0]:.3g}-{erange[1]:.3g} TeV): nothing to fit",
                         total_stat=float("nan"), parameters=params,
                         covariance=np.full((len(params),) * 2, np.nan), edm=float("nan"), nfcn=0,
                         obs_ids=data.obs_ids, excluded=data.excluded, energy_range=erange,
                         covariance_method=covariance, ebl=ebl))
    for p in params:
        if p.start_from_data and not p.frozen:
            unit = integ(lo, hi, {**{q.name: q.value for q in params}, AMPLITUDE: 1.0})
            a0 = start_amplitude(_observed_excess(data)[0], float(np.sum(data.npred_sig(unit)[data.mask])))
            p.value = a0 if a0 is not None else p.value

    def stat(values):
        return data.stat(integ(lo, hi, values))

    if not free:
        values = {p.name: p.value for p in params}
        per = dict(zip(data.obs_ids, data.stat_per_dataset(integ(lo, hi, values))))
        return _judged(FitResult(model_type=mtype, success=True, message="all parameters frozen",
                                 total_stat=stat(values), parameters=params,
                                 covariance=np.zeros((len(params),) * 2), edm=0.0, nfcn=1, obs_ids=data.obs_ids,
                                 excluded=data.excluded, energy_range=erange, stat_per_dataset=per,
                                 covariance_method=covariance, ebl=ebl))
    start = {p.name: p.value for p in params}  # the assumed shape of an upper limit
    with np.errstate(over="ignore", under="ignore"):  # an unconstrained fit may try extreme values
        fit = minimise(params, stat, options)
    flux = integ(lo, hi, {p.name: p.value for p in params})
    per = dict(zip(data.obs_ids, data.stat_per_dataset(flux).tolist()))
    gof = goodness_of_fit(data, flux, fit.fval, len(free))
    res = FitResult(model_type=mtype, success=fit.success, message=fit.message, total_stat=fit.fval,
                    parameters=params, covariance=fit.covariance, edm=fit.edm, nfcn=fit.nfcn, obs_ids=data.obs_ids,
                    excluded=data.excluded, energy_range=erange, stat_per_dataset=per,
                    covariance_method=covariance, ebl=ebl, goodness_of_fit=gof)
    ts = data.stat(np.zeros_like(flux)) - fit.fval
    _judged(res, stat=stat if fit.success else None, ts=ts, ts_min=options.detection_ts_min,
            bounded_at_zero=fit.bounded_at_zero)
    if res.quality.status == "not_detected":
        res.upper_limit = flux_upper_limit([(data, integ(lo, hi, start))], lambda e1, e2: integ(e1, e2, start),
                                           erange, "the model at its start values (model.parameters)")
    return res


def _judged(result: FitResult, stat=None, ts=None, ts_min=None, extra_poor=None, params=None,
            bounded_at_zero=()) -> FitResult:
    """``result`` with the quality gate's verdict (:func:`extspec.quality.judge`) set; ``params``:
    every parameter of ``stat`` (default the result's); ``bounded_at_zero``: parameters the
    minimiser bounded below by 0 (:attr:`Minimum.bounded_at_zero`), judged with that bound."""
    import dataclasses

    from .quality import judge

    params = result.parameters if params is None else params
    params = [dataclasses.replace(p, min=0.0) if p.name in bounded_at_zero and p.min is None else p for p in params]
    with np.errstate(all="ignore"):
        result.quality = judge(success=result.success, message=result.message, params=params, stat=stat,
                               best_stat=result.total_stat, ts=ts, ts_min=ts_min,
                               goodness_of_fit=result.goodness_of_fit, extra_poor=extra_poor)
    return result


@dataclass(frozen=True)
class Minimum:
    """What :func:`minimise` found: success, message, W at the minimum, the covariance of all
    parameters (zeros for the frozen ones), EDM and the number of calls."""

    success: bool
    message: str
    fval: float
    covariance: np.ndarray
    edm: float
    nfcn: int
    bounded_at_zero: tuple = ()
    """Parameters fitted again with a lower bound of 0 (a physical amplitude): the quality
    gate judges them with that bound."""


def minimise(params: list, stat, options: FitOptions) -> Minimum:
    """Minimise ``stat(values)`` over the free :class:`Parameter` s (§9), as every fit here does.

    ``stat`` takes ``{name: value}`` of all parameters (frozen ones at their value).  MIGRAD
    runs on scaled parameters (factor = value / 10^floor(log10|v|), :func:`make_minuit`),
    then HESSE (``options.covariance == "hesse"``) or MIGRAD's own covariance, and MINOS if
    ``options.minos`` (``options.integration`` is the caller's: ``stat`` integrates).  An
    unbounded amplitude that MIGRAD takes negative is fitted again bounded at 0 unless
    ``options.allow_negative_amplitude``.  The parameters' ``value``, ``error`` (and ``minos``) are set in place.
    """
    covariance, minos = options.covariance, options.minos
    free = [p for p in params if not p.frozen]
    fixed = {p.name: p.value for p in params if p.frozen}
    names = [p.name for p in free]
    scales = np.array([_scale(p.value) for p in free])

    def values_of(factors):
        v = dict(fixed)
        v.update({n: f * s for n, f, s in zip(names, factors, scales)})
        return v

    def fcn(factors):
        return stat(values_of(factors))

    limits = [(-np.inf if p.min is None else p.min / sc, np.inf if p.max is None else p.max / sc)
              for p, sc in zip(free, scales)]
    x0 = np.array([p.value for p in free]) / scales
    m = make_minuit(fcn, x0, names, limits)
    m.migrad()
    k_amp = names.index(AMPLITUDE) if AMPLITUDE in names else None
    if (k_amp is not None and not options.allow_negative_amplitude and free[k_amp].min is None
            and (not m.valid or m.values[k_amp] < 0)):
        limits[k_amp] = (0.0, limits[k_amp][1])  # amplitudes stay physical: fitted again with a bound
        m = make_minuit(fcn, x0, names, limits)
        m.migrad()
        bounded = (AMPLITUDE,)
    else:
        bounded = ()
    ok = bool(m.valid)
    message = "MIGRAD converged" if ok else "MIGRAD failed: " + _fmin_problems(m)
    if ok and covariance == "hesse":
        m.hesse()
        ok = bool(m.valid) and m.covariance is not None
        if not ok:
            message = "HESSE failed: covariance not positive definite"
    cov_f = np.array(m.covariance) if m.covariance is not None else np.full((len(free),) * 2, np.nan)
    if ok and minos:
        try:
            m.minos()
        except RuntimeError as exc:
            message += f"; MINOS failed ({exc})"
    best = values_of(np.array(m.values))
    cov = np.zeros((len(params), len(params)))
    idx = [i for i, p in enumerate(params) if not p.frozen]
    cov[np.ix_(idx, idx)] = cov_f * np.outer(scales, scales)
    for k, i in enumerate(idx):
        p = params[i]
        p.value = best[p.name]
        p.error = float(np.sqrt(cov[i, i])) if np.isfinite(cov[i, i]) and cov[i, i] >= 0 else float("nan")
        if minos and p.name in m.merrors:
            me = m.merrors[p.name]
            p.minos = (me.lower * scales[k], me.upper * scales[k])
    return Minimum(success=ok, message=message, fval=float(m.fval), covariance=cov, edm=float(m.fmin.edm),
                   nfcn=int(m.nfcn), bounded_at_zero=bounded)


GOF_P_MIN = 1e-3
"""A fit whose WStat deviance has a p-value below this is flagged as poor (see goodness_of_fit)."""
GOF_EXCESS_SIGMA = 3.0
"""... and so is one whose predicted total excess differs from the observed by more than this many sigma."""


def _observed_excess(data: JointData) -> tuple[float, float]:
    """Total excess n_on - alpha n_off over the fitted bins of every run, and its error
    sqrt(n_on + alpha^2 n_off)."""
    n, m, a = data.counts_masked, data.counts_off_masked, data.alpha_masked
    return float(np.sum(n - a * m)), float(np.sqrt(np.sum(n + a * a * m)))


def deviance_test(stat: float, n_bins: int, n_free: int) -> tuple[int, float | None]:
    """The deviance test of a WStat total ``stat`` over ``n_bins`` fitted bins with ``n_free``
    free parameters: (dof, p-value of chi^2_dof, Wilks) -- ``None`` without a degree of freedom
    or a finite statistic.  Flagged as poor below :data:`GOF_P_MIN` by every caller."""
    dof = int(n_bins) - int(n_free)
    return dof, (float(chi2_sf(stat, dof)) if dof > 0 and np.isfinite(stat) else None)


def goodness_of_fit(data: JointData, flux_int, stat: float, n_free: int) -> dict:
    """How well the fitted model describes the data, for ``result.yaml``.

    * ``observed_excess`` (+- ``observed_excess_err``) and ``predicted_excess``: the total
      excess in the fitted bins of every run, counted and predicted by the best-fit model;
      ``excess_ratio`` = predicted / observed.
    * ``deviance`` = the WStat total (a likelihood ratio to the saturated model, the background
      of every bin profiled in both), ``dof`` = fitted bins - free parameters, ``p_value`` =
      P(chi^2_dof > deviance) (Wilks; approximate with few counts per bin).
    * ``poor``: p_value < ``GOF_P_MIN`` or the predicted excess more than
      ``GOF_EXCESS_SIGMA`` sigma from the observed one; ``warning`` then says which.
    """
    obs, err = _observed_excess(data)
    pred = float(np.sum(data.npred_sig(flux_int)[data.mask]))
    n_bins = int(data.mask.sum())
    dof, p = deviance_test(stat, n_bins, n_free)
    out = {"observed_excess": obs, "observed_excess_err": err, "predicted_excess": pred,
           "excess_ratio": pred / obs if obs != 0 else None, "deviance": float(stat), "n_bins": n_bins,
           "dof": dof, "p_value": p, "statistic": "wstat deviance vs chi2(dof); predicted vs observed excess"}
    why = []
    if p is not None and p < GOF_P_MIN:
        why.append(f"WStat {stat:.1f} for {dof} degrees of freedom (p = {p:.1e})")
    if err > 0 and abs(pred - obs) > GOF_EXCESS_SIGMA * err:
        why.append(f"predicted excess {pred:.1f} vs observed {obs:.1f} +- {err:.1f}")
    out["poor"] = bool(why)
    if why:
        out["warning"] = ("poor fit: " + "; ".join(why)
                          + " (a false minimum? set start values near the data's, or try another model)")
    return out


def _fmin_problems(m) -> str:
    f = m.fmin
    probs = [k for k in ("is_above_max_edm", "has_reached_call_limit", "has_parameters_at_limit") if getattr(f, k, False)]
    if not f.has_covariance:
        probs.append("no covariance")
    return ", ".join(probs) or "invalid minimum"


def _energy_range(data: JointData) -> tuple:
    if len(data) == 0:
        return (float("nan"), float("nan"))
    edges = data.datasets[0].energy_reco.edges
    any_safe = data.mask.any(axis=0)
    i = np.flatnonzero(any_safe)
    return (float(edges[i[0]]), float(edges[i[-1] + 1]))


# ------------------------------------------------------------------- model comparison --


def compare_models(null: FitResult, alt: FitResult) -> dict:
    """Likelihood-ratio test of nested models: TS = W_null - W_alt, Wilks' theorem."""
    dof = alt.n_free - null.n_free
    ts = null.total_stat - alt.total_stat
    if dof <= 0:
        return {"null": null.model_type, "alternative": alt.model_type, "ts": float(ts), "dof": int(dof),
                "p_value": None, "significance": None, "note": "models not nested (no extra free parameter)"}
    p = chi2_sf(ts, dof)
    return {"null": null.model_type, "alternative": alt.model_type, "ts": float(ts), "dof": int(dof),
            "p_value": float(p), "significance": float(p_to_sigma(p)),
            "alternative_success": bool(alt.success), "alternative_status": alt.status,
            "alternative_quality": alt.quality.as_dict() if alt.quality is not None else None,
            "alternative_parameters": {q.name: q.as_dict() for q in alt.parameters}}


def fit_with_comparisons(datasets, model: ModelSpec, alternatives, options: FitOptions,
                         data: JointData | None = None) -> FitResult:
    """The fit of ``model`` (:func:`fit_joint`) with its likelihood-ratio comparisons
    (:func:`compare_models`) against each of ``alternatives`` (:class:`~extspec.model_spec.ModelSpec`
    s, as the ``fit.compare`` setting gives them) fitted to the same data, appended to its
    ``comparisons``.

    An alternative without ``ebl`` takes the EBL absorption of ``model`` (the same source, the
    same absorption).  EBL blocks hold their tables (``ebl.table`` an
    :class:`~extspec.ebl.EBLAbsorption`: the model is handed its table by the caller).  With no
    usable dataset no alternative is fitted.
    """
    model = as_model_spec(model)
    data = data if data is not None else JointData(datasets)
    result = fit_joint(datasets, model, options, data=data)
    for alt in alternatives if data.datasets else []:
        alt = as_model_spec(alt)
        if model.ebl is not None and alt.ebl is None:  # the same absorption for the alternative
            alt = replace(alt, ebl=model.ebl)
        result.comparisons.append(compare_models(result, fit_joint(datasets, alt, options, data=data)))
    return result


def instrument_records(spectra) -> list:
    """Distinct TELESCOP/INSTRUME (and IRF class) of the spectra, from their DL3 files (what
    ``result.yaml`` says under ``instrument``)."""
    out = []
    for s in spectra:
        item = {"telescop": str(s.meta.get("TELESCOP", "")), "instrume": str(s.meta.get("INSTRUME", "")),
                "irf_class": str(s.meta.get("irf_class", "full-enclosure"))}
        if item not in out:
            out.append(item)
    return out
