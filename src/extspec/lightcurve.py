"""Light curves and spectra per time bin, from the cached per-run reductions.

Per time bin (:mod:`extspec.timebins`) every contributing run gives an ON/OFF spectrum:
the whole run's OGIP set for ``run``/``night`` bins, or, for bins that cut runs, the run's
ON and OFF events inside the bin (``onoff_events.h5``) with the run's alpha, dispersion and
exposure scaled by its livetime in the bin over its whole livetime (:func:`window_dataset`).

Per time bin and energy bin the shape of the analysis's joint fit is frozen and a norm is
fitted (WStat of :mod:`extspec.stats` summed over the bin's runs and safe reco bins, MIGRAD as for
the flux points: :func:`fit_norm`).  The row reports

* ``flux``: the integral flux in ``[e_min, e_max]`` (cm-2 s-1), norm x the joint-fit model's
  integral over the bin (the absorbed, observed flux when the fit had an EBL table), with ``flux_err`` (MIGRAD), ``flux_errn``/``flux_errp`` (where the
  WStat profile in the norm rises by 1) and ``flux_ul`` (where it rises by 2.71 above the best
  fit: a one-sided 95 % upper limit), ``is_ul`` where ``sqrt_ts`` < the threshold;
* ``ts = W(0) - W(best)``, ``sqrt_ts`` signed, ``counts`` (ON), ``excess`` (ON - alpha OFF),
  ``livetime`` (s), ``n_runs`` (runs with a safe bin in the energy bin), ``success``.

Constant flux: per energy bin the likelihood ratio of one norm for all time bins against a
norm per time bin, ``chi2 = W_const - sum W_bin`` with ``ndf = n_bins - 1``, and its chi^2
p-value (Wilks), summed over the energy bins for the total (:func:`constant_flux_test`).

A time bin without runs has no row; an energy bin without a safe reco bin in a time bin, or
a norm fit that fails, gives a row with ``success`` false and NaN fluxes; a spectral fit
that fails gives a row with ``success`` false.  Nothing here raises for such bins.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .fluxpoints import fit_norm
from .rootfind import crossing

__all__ = ["LightCurveSettings", "LIGHTCURVE_UNITS", "GADF_COLUMNS", "gadf_rows", "window_dataset", "bin_datasets",
           "light_curve_rows", "constant_flux_test", "group_slices", "spectra_rows", "model_config_of", "DELTA_ERR", "DELTA_UL"]


@dataclass(frozen=True)
class LightCurveSettings:
    """The ``light_curve`` config block, typed (no defaults here: the schema holds them).

    Attributes
    ----------
    time_bins : str, dict or list
        ``"run"``, ``"night"``, ``{"start", "stop", "width_s"}`` or ``[[start, stop], ...]``
        (ISO UTC text; :func:`extspec.timebins.make_time_bins`).
    night_boundary_utc : float
        Hour (UTC) at which ``night`` bins change.
    energy_edges : tuple of TeV or None
        Requested energy-bin edges (snapped to reco edges); None: the fit's energy range.
    spectra : bool
        Also fit the model per time bin.
    sqrt_ts_threshold_ul : float
        ``is_ul`` where sqrt(TS) is below this.
    """

    time_bins: object
    night_boundary_utc: float
    energy_edges: tuple | None
    spectra: bool
    sqrt_ts_threshold_ul: float


DELTA_ERR = 1.0
"""Rise of WStat (-2 ln L) defining the asymmetric 1-sigma errors."""
DELTA_UL = 2.71
"""Rise of WStat defining the upper limit (one-sided 95 %: 1.645^2)."""

LIGHTCURVE_UNITS = {
    "time_min": "", "time_max": "", "e_min": "TeV", "e_max": "TeV", "flux": "cm-2 s-1", "flux_err": "cm-2 s-1",
    "flux_errn": "cm-2 s-1", "flux_errp": "cm-2 s-1", "flux_ul": "cm-2 s-1", "is_ul": "", "ts": "", "sqrt_ts": "",
    "counts": "", "excess": "", "livetime": "s", "n_runs": "", "success": "",
}
"""Columns of ``lightcurve.ecsv`` (in order) and their units; times are MJD (UTC)."""

GADF_COLUMNS = ("e_min", "e_max", "flux", "flux_err", "flux_errn", "flux_errp", "flux_ul", "is_ul", "ts",
                "sqrt_ts")
"""The per-energy columns of gammapy's light-curve layout (:func:`gadf_rows`)."""


def gadf_rows(rows) -> list[dict]:
    """The rows of :func:`light_curve_rows` in gammapy's ``lightcurve`` table layout: one row per
    time bin (``time_min``, ``time_max``) whose :data:`GADF_COLUMNS` are lists over the energy
    bins (what ``FluxPoints.read(..., format="lightcurve")`` expects)."""
    out: dict = {}
    for r in rows:
        key = (r["time_min"], r["time_max"])
        out.setdefault(key, []).append(r)
    result = []
    for (t0, t1), group in out.items():
        group = sorted(group, key=lambda r: r["e_min"])
        result.append({"time_min": t0, "time_max": t1, **{c: [g[c] for g in group] for c in GADF_COLUMNS}})
    return result


def window_dataset(spec, events, window):
    """The ON/OFF spectrum of one run inside a time window (:class:`extspec.timebins.Window`).

    The whole run is ``spec`` itself.  Otherwise the counts are the run's ON and OFF events
    (``events``: :class:`extspec.io.onoff_events.OnOffEvents`) with ``met_min <= t < met_max``;
    exposure and the kernel's stacking weight are scaled by the window's livetime over the
    run's; alpha, dispersion and safe range stay the run's.
    """
    if window.whole_run:
        return spec
    nreco = spec.energy_reco.nbin

    def counts(t, k):
        lo, hi = np.searchsorted(t, [window.met_min, window.met_max], side="left")
        return np.bincount(k[lo:hi], minlength=nreco).astype(np.int64)

    frac = window.livetime / spec.livetime if spec.livetime > 0 else 0.0
    return dataclasses.replace(
        spec, counts=counts(events.time_on, events.energy_bin_on), counts_off=counts(events.time_off,
                                                                                     events.energy_bin_off),
        exposure=spec.exposure * frac, edisp_weight=spec.edisp_weight * frac, livetime=window.livetime,
        ontime=window.livetime / events.deadc if events.deadc > 0 else window.livetime)


def bin_datasets(time_bin, spectra, events) -> list:
    """The spectra of the runs in ``time_bin`` (one per window); ``events[i]`` may be None for
    runs only ever used whole."""
    return [window_dataset(spectra[w.run], events[w.run], w) for w in time_bin.windows]


def _nan_row(tb, e_lo, e_hi) -> dict:
    nan = float("nan")
    return {"time_min": tb.time_min, "time_max": tb.time_max, "e_min": float(e_lo), "e_max": float(e_hi),
            "flux": nan, "flux_err": nan, "flux_errn": nan, "flux_errp": nan, "flux_ul": nan, "is_ul": False,
            "ts": nan, "sqrt_ts": nan, "counts": 0, "excess": nan, "livetime": 0.0, "n_runs": 0, "success": False}


def group_slices(edges, reco) -> list[tuple[float, float, slice]]:
    """``(e_lo, e_hi, slice of reco bins)`` of each group between consecutive snapped ``edges``."""
    ln_reco = np.log(reco)
    out = []
    for e_lo, e_hi in zip(edges[:-1], edges[1:]):
        j0 = int(np.argmin(np.abs(ln_reco - np.log(e_lo))))
        j1 = int(np.argmin(np.abs(ln_reco - np.log(e_hi))))
        out.append((e_lo, e_hi, slice(j0, j1)))
    return out


def light_curve_rows(bins, fit_result, energy_edges, sqrt_ts_threshold_ul: float,
                     integration: str) -> tuple[list[dict], dict]:
    """Rows of the light curve and the constant-flux test.

    Parameters
    ----------
    bins : list of (TimeBin, list of SpectrumDataset)
        Each time bin with the spectra of its runs (:func:`bin_datasets`).
    fit_result : FitResult
        The joint fit whose shape is frozen (``success`` must be true).
    energy_edges : array of TeV
        Edges of the energy bins, already snapped to reco-bin edges.
    sqrt_ts_threshold_ul : float
        ``is_ul`` where sqrt(TS) is below this.
    integration : {"exact", "reference"}
        Model integral over true bins (the fit's ``fit.integration``).

    Returns
    -------
    rows : list of dict, one per time bin and energy bin (columns :data:`LIGHTCURVE_UNITS`)
    variability : dict, :func:`constant_flux_test` of the fitted bins
    """
    from .fit import JointData
    from .ebl import result_model
    from .models import integrator

    model = result_model(fit_result)  # the absorbed model when the joint fit had an EBL table
    best = fit_result.values
    integ = integrator(model, integration, "fit.integration")
    rows, fits, ref_fluxes = [], [], {}
    for tb, datasets in bins:
        data = JointData(datasets)
        if len(data):
            mu_best = data.npred_sig(integ(data.e_min, data.e_max, best))
            livetimes = np.array([d.livetime for d in data.datasets])
        reco = datasets[0].energy_reco.edges
        for k, (e_lo, e_hi, sl) in enumerate(group_slices(energy_edges, reco)):
            row = _nan_row(tb, e_lo, e_hi)
            rows.append(row)
            if not len(data) or not data.mask[:, sl].any():
                continue  # no usable run with a safe bin here: a row marked success false
            n, m = data.counts_masked[:, sl], data.counts_off_masked[:, sl]
            a, mask, mu = data.alpha_masked[:, sl], data.mask[:, sl], mu_best[:, sl]
            used = mask.any(axis=1)
            if (e_lo, e_hi) not in ref_fluxes:  # the model's flux in the energy bin: once per energy bin
                ref_fluxes[e_lo, e_hi] = float(model.integral(np.array([e_lo]), np.array([e_hi]), **best)[0])
            ref_flux = ref_fluxes[e_lo, e_hi]
            row.update(counts=int(np.sum(np.where(mask, n, 0))), excess=float(np.sum(np.where(mask, n - a * m, 0))),
                       livetime=float(livetimes[used].sum()), n_runs=int(used.sum()))
            try:
                nf = fit_norm([(n, m, a, mask, mu)])
            except (ValueError, FloatingPointError, RuntimeError):
                continue
            step = nf.norm_err if np.isfinite(nf.norm_err) and nf.norm_err > 0 else 1.0
            errn = nf.norm - crossing(nf.stat, nf.norm, step, nf.stat_best + DELTA_ERR, -1)
            errp = crossing(nf.stat, nf.norm, step, nf.stat_best + DELTA_ERR, 1) - nf.norm
            ul = crossing(nf.stat, nf.norm, step * np.sqrt(DELTA_UL), nf.stat_best + DELTA_UL, 1)
            row.update(flux=nf.norm * ref_flux, flux_err=nf.norm_err * ref_flux, flux_errn=errn * ref_flux,
                       flux_errp=errp * ref_flux, flux_ul=ul * ref_flux, ts=nf.ts, sqrt_ts=nf.sqrt_ts,
                       is_ul=bool(nf.sqrt_ts < sqrt_ts_threshold_ul), success=bool(nf.success))
            if nf.success:
                fits.append((k, (n, m, a, mask, mu), nf.stat_best))
    return rows, constant_flux_test(fits, len(energy_edges) - 1)


def constant_flux_test(fits, n_energy: int) -> dict:
    """Likelihood-ratio test of a constant flux, per energy bin and summed.

    ``fits``: ``(energy bin, (n, m, alpha, mask, mu), W at the bin's best norm)`` of every
    fitted time bin.  Per energy bin one norm is fitted to all its time bins at once;
    ``chi2 = W_const - sum W_bin``, ``ndf = n_bins - 1``.  Returns ``{"chi2", "ndf",
    "p_value", "per_energy_bin": [{"chi2", "ndf", "p_value", "norm"}, ...]}`` (p_value NaN
    with ndf 0).
    """
    from .stats import chi2_sf

    per = []
    for k in range(n_energy):
        mine = [f for f in fits if f[0] == k]
        if not mine:
            per.append({"chi2": float("nan"), "ndf": 0, "p_value": float("nan"), "norm": float("nan")})
            continue
        arrays = [np.concatenate([f[1][i] for f in mine], axis=0) for i in range(5)]
        const = fit_norm([arrays])
        chi2 = max(const.stat_best - sum(f[2] for f in mine), 0.0)
        ndf = len(mine) - 1
        per.append({"chi2": float(chi2), "ndf": ndf, "p_value": float(chi2_sf(chi2, ndf)) if ndf else float("nan"),
                    "norm": const.norm})
    chi2 = float(sum(p["chi2"] for p in per if p["ndf"]))
    ndf = int(sum(p["ndf"] for p in per))
    return {"chi2": chi2, "ndf": ndf, "p_value": float(chi2_sf(chi2, ndf)) if ndf else float("nan"),
            "per_energy_bin": per}


def model_config_of(fit_result) -> dict:
    """The ``model`` config block of a fit result: its type and parameters (best-fit values
    as start values, the same frozen ones and bounds), and its ``ebl`` block (table,
    redshift, alpha_norm) when the fit had one."""
    from .ebl import EBL_PARAMS

    params = {}
    for p in fit_result.parameters:
        d = {"value": float(p.value), "frozen": bool(p.frozen)}
        if p.min is not None:
            d["min"] = float(p.min)
        if p.max is not None:
            d["max"] = float(p.max)
        params[p.name] = d
    cfg = {"type": fit_result.model_type, "parameters": {k: v for k, v in params.items() if k not in EBL_PARAMS}}
    if getattr(fit_result, "ebl", None):
        cfg["ebl"] = {"table": fit_result.ebl["table"], **{k: params[k] for k in EBL_PARAMS if k in params}}
    return cfg


def spectra_rows(bins, fit_result, options) -> tuple[list[dict], dict]:
    """The joint-fit model fitted to each time bin on its own (all free parameters free,
    started at the joint fit's values; ``options``: :class:`~extspec.fit.FitOptions`).  Returns
    the rows (``time_min``, ``time_max``, every
    free parameter and ``<name>_err``, ``stat``, ``success``, ``n_runs``, ``livetime``) and
    their units."""
    from .fit import fit_joint

    cfg = model_config_of(fit_result)
    free = [p for p in fit_result.parameters if not p.frozen]
    units = {"time_min": "", "time_max": ""}
    for p in free:
        units[p.name] = p.unit
        units[f"{p.name}_err"] = p.unit
    units.update({"stat": "", "success": "", "n_runs": "", "livetime": "s"})
    rows = []
    for tb, datasets in bins:
        row = {"time_min": tb.time_min, "time_max": tb.time_max}
        try:
            res = fit_joint(datasets, cfg, options)
            ok, values = bool(res.success), {p.name: p for p in res.parameters}
        except (ValueError, FloatingPointError, RuntimeError):
            res, ok, values = None, False, {}
        for p in free:
            q = values.get(p.name)
            row[p.name] = float(q.value) if ok and q is not None else float("nan")
            row[f"{p.name}_err"] = float(q.error) if ok and q is not None else float("nan")
        row.update(stat=float(res.total_stat) if res is not None else float("nan"), success=ok,
                   n_runs=len(res.obs_ids) if res is not None else 0,
                   livetime=float(sum(d.livetime for d in datasets if d.usable and np.any(d.mask_safe))))
        rows.append(row)
    return rows, units
