"""Light curves and spectra per time bin, from the cached per-run reductions.

Per time bin (:mod:`extspec.timebins`) every contributing run gives an ON/OFF spectrum:
the whole run's OGIP set for ``run``/``night`` bins, or, for bins that cut runs, the run's
ON and OFF events inside the bin (``onoff_events.h5``) with the run's alpha, dispersion and
exposure scaled by its livetime in the bin over its whole livetime (:func:`window_dataset`).

Per time bin and energy bin the shape of the analysis's joint fit is frozen and a norm is
fitted (WStat of :mod:`extspec.stats` summed over the bin's runs and safe reco bins); the norms
of all time bins are fitted at once by :func:`extspec.norms.fit_norms`.  The row reports

* ``flux``: the integral flux in ``[e_min, e_max]`` (cm-2 s-1), norm x the joint-fit model's
  integral over the bin (the absorbed, observed flux when the fit had an EBL table), with
  ``flux_err`` (parabolic, sqrt(2 / W'')), ``flux_errn``/``flux_errp`` (where the WStat
  profile in the norm rises by 1) and ``flux_ul`` (where it rises by 2.71 above the best
  fit: a one-sided 95 % upper limit), ``is_ul`` where ``sqrt_ts`` < the threshold;
* ``ts = W(0) - W(best)``, ``sqrt_ts`` signed, ``counts`` (ON), ``excess`` (ON - alpha OFF),
  ``livetime`` (s), ``n_runs`` (runs with a safe bin in the energy bin), ``success``, and
  ``status`` in the quality gate's words (:mod:`extspec.quality`): ``ok``, ``not_detected``
  (``is_ul``: quote the upper limit) or ``failed``.

The entry point is :func:`light_curve` (the spectra of the runs, their ON/OFF events where
bins cut runs, the joint fit and :class:`LightCurveSettings` -> a :class:`LightCurve`: rows and
their metadata); :func:`time_bin_spectra` fits the model per time bin.

Constant flux: per energy bin the likelihood ratio of one norm for all time bins against a
norm per group of time bins holding enough counts for Wilks' theorem
(:func:`constant_flux_test`), summed over the energy bins for the total.

A time bin without runs has no row; an energy bin without a safe reco bin in a time bin, or
a norm fit that fails, gives a row with ``success`` false and NaN fluxes; a spectral fit
that fails gives a row with ``success`` false.  Nothing here raises for such bins.  Spectra
per time bin (:func:`spectra_rows`) carry the quality gate's status of each fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .norms import DELTA_ERR, DELTA_UL, fit_norms
from .quality import STATUS_MEANING, judge

__all__ = ["LightCurveSettings", "LightCurve", "light_curve", "time_bin_spectra", "LIGHTCURVE_UNITS",
           "GADF_COLUMNS", "gadf_rows", "window_dataset", "bin_datasets",
           "light_curve_rows", "constant_flux_test", "group_slices", "spectra_rows", "model_spec_of", "DELTA_ERR", "DELTA_UL"]


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
    variability_min_counts : float
        ON counts per group of time bins of the constant-flux test (:func:`constant_flux_test`).
    """

    time_bins: object
    night_boundary_utc: float
    energy_edges: tuple | None
    spectra: bool
    sqrt_ts_threshold_ul: float
    variability_min_counts: float


LIGHTCURVE_UNITS = {
    "time_min": "", "time_max": "", "e_min": "TeV", "e_max": "TeV", "flux": "cm-2 s-1", "flux_err": "cm-2 s-1",
    "flux_errn": "cm-2 s-1", "flux_errp": "cm-2 s-1", "flux_ul": "cm-2 s-1", "is_ul": "", "ts": "", "sqrt_ts": "",
    "counts": "", "excess": "", "livetime": "s", "n_runs": "", "success": "", "status": "",
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
            "ts": nan, "sqrt_ts": nan, "counts": 0, "excess": nan, "livetime": 0.0, "n_runs": 0, "success": False,
            "status": "failed"}


def group_slices(edges, reco) -> list[tuple[float, float, slice]]:
    """``(e_lo, e_hi, slice of reco bins)`` of each group between consecutive snapped ``edges``."""
    ln_reco = np.log(reco)
    out = []
    for e_lo, e_hi in zip(edges[:-1], edges[1:]):
        j0 = int(np.argmin(np.abs(ln_reco - np.log(e_lo))))
        j1 = int(np.argmin(np.abs(ln_reco - np.log(e_hi))))
        out.append((e_lo, e_hi, slice(j0, j1)))
    return out


CHUNK_BINS = 2048
"""Time bins whose norms are fitted together (:func:`extspec.norms.fit_norms`): bounds the
memory of the cells in flight."""


def light_curve_rows(bins, fit_result, energy_edges, sqrt_ts_threshold_ul: float, integration: str,
                     variability_min_counts: float, progress=None) -> tuple[list[dict], dict]:
    """Rows of the light curve and the constant-flux test.

    Parameters
    ----------
    bins : iterable of (TimeBin, list of SpectrumDataset)
        Each time bin with the spectra of its runs (:func:`bin_datasets`); consumed once, so a
        generator keeps only one bin's spectra in memory.
    fit_result : FitResult
        The joint fit whose shape is frozen (``success`` must be true).
    energy_edges : array of TeV
        Edges of the energy bins, already snapped to reco-bin edges.
    sqrt_ts_threshold_ul : float
        ``is_ul`` (status ``not_detected``) where sqrt(TS) is below this.
    integration : {"exact", "reference"}
        Model integral over true bins (the fit's ``fit.integration``).
    variability_min_counts : float
        Counts per time bin the constant-flux test needs (:func:`constant_flux_test`).
    progress : callable ``(done, total or None)``, optional
        Called after every chunk of ``CHUNK_BINS`` time bins.

    Returns
    -------
    rows : list of dict, one per time bin and energy bin (columns :data:`LIGHTCURVE_UNITS`)
    variability : dict, :func:`constant_flux_test` of the fitted bins

    The norms of all time bins are fitted at once, ``CHUNK_BINS`` bins at a time
    (:func:`extspec.norms.fit_norms`: regula falsi on the WStat profile, no minimiser per bin).
    """
    from .fit import JointData
    from .ebl import result_model
    from .models import integrator

    model = result_model(fit_result)  # the absorbed model when the joint fit had an EBL table
    best = fit_result.values
    integ = integrator(model, integration, "fit.integration")
    n_energy = len(energy_edges) - 1
    rows: list[dict] = []
    ref_fluxes: dict = {}
    # per energy bin, per chunk: (n, m, a, mu, key, livetime, time-bin number) of every fitted cell, for the test
    kept = [[] for _ in range(n_energy)]
    n_fitted = [0] * n_energy  # time bins fitted so far per energy bin
    slices_of: dict = {}
    chunk: list = []  # (row index, energy bin, n, m, a, mu) of the bins not fitted yet
    total = len(bins) if hasattr(bins, "__len__") else None
    done = 0

    def flush():
        if not chunk:
            return
        gid = np.repeat(np.arange(len(chunk)), [c[2].size for c in chunk])
        n, m, a, mu = (np.concatenate([c[i] for c in chunk]) for i in range(2, 6))
        nf = fit_norms(n, m, a, mu, gid, len(chunk), DELTA_ERR, DELTA_UL)
        fitted = [[] for _ in range(n_energy)]
        for g, (ri, k, *cells) in enumerate(chunk):  # cells: n, m, a, mu, key, livetime
            row = rows[ri]
            ref = ref_fluxes[row["e_min"], row["e_max"]]
            ok = bool(nf.success[g])
            signed_ts = float(nf.sqrt_ts[g]) * abs(float(nf.sqrt_ts[g]))  # negative for a negative excess
            verdict = judge(success=ok, message="the norm fit failed", ts=signed_ts, ts_min=sqrt_ts_threshold_ul ** 2)
            row.update(flux=nf.norm[g] * ref, flux_err=nf.norm_err[g] * ref, flux_errn=nf.norm_errn[g] * ref,
                       flux_errp=nf.norm_errp[g] * ref, flux_ul=nf.norm_ul[g] * ref, ts=float(nf.ts[g]),
                       sqrt_ts=float(nf.sqrt_ts[g]), is_ul=bool(nf.sqrt_ts[g] < sqrt_ts_threshold_ul), success=ok,
                       status=verdict.status)
            if ok:
                fitted[k].append((*cells, np.full(cells[0].size, n_fitted[k])))
                n_fitted[k] += 1
        for k, f in enumerate(fitted):  # one set of arrays per chunk: memory ~ the cells, not the bins
            if f:
                kept[k].append(tuple(np.concatenate([c[i] for c in f]) for i in range(7)))
        chunk.clear()

    for tb, datasets in bins:
        data = JointData(datasets)
        if len(data):
            mu_best = data.npred_sig(integ(data.e_min, data.e_max, best))
            livetimes = np.array([d.livetime for d in data.datasets])
        reco = datasets[0].energy_reco.edges
        if reco.tobytes() not in slices_of:  # every run has the same reco axis: computed once
            slices_of[reco.tobytes()] = group_slices(energy_edges, reco)
        for k, (e_lo, e_hi, sl) in enumerate(slices_of[reco.tobytes()]):
            row = _nan_row(tb, e_lo, e_hi)
            rows.append(row)
            if not len(data) or not data.mask[:, sl].any():
                continue  # no usable run with a safe bin here: a row marked success false
            mask = data.mask[:, sl]
            # which run and reco bin each cell is: the constant-flux test adds up time bins per cell
            key = (np.asarray(data.obs_ids, np.int64)[:, None] * reco.size + np.arange(reco.size - 1)[sl])[mask]
            lt = np.broadcast_to(livetimes[:, None], mask.shape)[mask]
            n, m = data.counts_masked[:, sl][mask], data.counts_off_masked[:, sl][mask]
            a, mu = data.alpha_masked[:, sl][mask], mu_best[:, sl][mask]
            if (e_lo, e_hi) not in ref_fluxes:  # the model's flux in the energy bin: once per energy bin
                ref_fluxes[e_lo, e_hi] = float(model.integral(np.array([e_lo]), np.array([e_hi]), **best)[0])
            row.update(counts=int(n.sum()), excess=float(np.sum(n - a * m)),
                       livetime=float(livetimes[mask.any(axis=1)].sum()), n_runs=int(mask.any(axis=1).sum()))
            chunk.append((len(rows) - 1, k, n, m, a, mu, key, lt))
        done += 1
        if done % CHUNK_BINS == 0:
            flush()
            if progress is not None:
                progress(done, total)
    flush()
    if progress is not None and done % CHUNK_BINS:
        progress(done, total)
    return rows, constant_flux_test(kept, variability_min_counts)


def constant_flux_test(kept, min_counts: float) -> dict:
    """Likelihood-ratio test of a constant flux, per energy bin and summed, valid at any binning.

    ``kept[k]``: tuples of arrays ``(n, m, alpha, mu, key, livetime, tbin)`` of the fitted
    time bins of energy bin ``k`` (per safe cell: counts, predicted signal at norm 1, which
    run and reco bin it is, the run's livetime in the bin, the time bin's number 0, 1, ... in
    time order).

    At a few counts per time bin two approximations fail: Wilks' theorem, and a background
    profiled per time bin (summing the profiles of many near-empty bins biases the norm, the
    Neyman-Scott problem).  So (1) the background of each run and reco bin is taken as known
    and constant in time: alpha x its OFF counts over all the light curve's time bins, shared
    out by livetime (its statistical error is that of all the OFF counts together, small against
    the ON counts of a time bin); (2) the time bins are merged, in time order, into groups of at
    least ``min_counts`` ON counts (a rest joins the last group; a bin that has them stays
    alone); (3) with the Poisson (Cash) statistic of the ON counts, one norm for all groups
    (C_const) against one norm per group (sum C_g): ``chi2 = C_const - sum C_g``, ``ndf =
    n_groups - 1``, compared with chi^2(ndf) (Wilks, valid with ``min_counts`` >~ 10).
    Returns ``{"chi2", "ndf", "p_value", "min_counts", "statistic", "per_energy_bin": [{"chi2",
    "ndf", "p_value", "norm", "n_time_bins", "n_groups"}, ...]}`` (p_value NaN with ndf 0).
    """
    from .stats import chi2_sf

    per = []
    for cells in kept:
        if not cells:
            per.append({"chi2": float("nan"), "ndf": 0, "p_value": float("nan"), "norm": float("nan"),
                        "n_time_bins": 0, "n_groups": 0})
            continue
        n, m, a, mu, key, lt, tbin = (np.concatenate([c[i] for c in cells]) for i in range(7))
        n_tbins = int(tbin.max()) + 1
        group = _merge_in_order(np.bincount(tbin, weights=n, minlength=n_tbins), min_counts)[tbin]
        # the known background: alpha x all OFF counts of the run and reco bin, shared by livetime
        _, run_cell = np.unique(key, return_inverse=True)
        run_cell = run_cell.ravel()
        off_total, lt_total = np.bincount(run_cell, weights=m), np.bincount(run_cell, weights=lt)
        background = a * off_total[run_cell] * lt / np.where(lt_total > 0, lt_total, 1.0)[run_cell]
        # one cell per (group, run and reco bin): counts, signal and background added up
        _, first, cell = np.unique(np.stack([group, key]), axis=1, return_index=True, return_inverse=True)
        cell = cell.ravel()
        n_s, mu_s, b_s = (np.bincount(cell, weights=v) for v in (n, mu, background))
        g_s = group[first]
        n_groups = int(group.max()) + 1
        zeros = np.zeros(n_s.size)
        const = fit_norms(n_s, zeros, zeros, mu_s, np.zeros(n_s.size, np.int64), 1, DELTA_ERR, DELTA_UL, b_s)
        fits = fit_norms(n_s, zeros, zeros, mu_s, g_s, n_groups, DELTA_ERR, DELTA_UL, b_s)
        chi2 = max(float(const.stat_best[0] - np.sum(fits.stat_best)), 0.0)
        ndf = n_groups - 1
        per.append({"chi2": chi2, "ndf": ndf, "p_value": float(chi2_sf(chi2, ndf)) if ndf else float("nan"),
                    "norm": float(const.norm[0]), "n_time_bins": n_tbins, "n_groups": n_groups})
    chi2 = float(sum(p["chi2"] for p in per if p["ndf"]))
    ndf = int(sum(p["ndf"] for p in per))
    return {"chi2": chi2, "ndf": ndf, "p_value": float(chi2_sf(chi2, ndf)) if ndf else float("nan"),
            "min_counts": float(min_counts), "per_energy_bin": per,
            "statistic": "Cash likelihood ratio of ON counts, background known from all OFF counts per run and "
                         "reco bin, time bins merged to >= min_counts ON counts"}


def _merge_in_order(counts, min_counts: float) -> np.ndarray:
    """Group index of each bin: consecutive bins merged until a group holds ``min_counts``; a
    rest below it joins the last group (one group when the total is below it)."""
    c = np.asarray(counts, float)
    group = np.zeros(c.size, np.int64)
    g, acc = 0, 0.0
    for i, v in enumerate(c):  # one pass over the time bins (not events or pixels)
        group[i] = g
        acc += v
        if acc >= min_counts:
            g, acc = g + 1, 0.0
    if acc < min_counts and g > 0 and c.size and group[-1] == g:
        group[group == g] = g - 1  # the rest joins the last full group
    return group


def model_spec_of(fit_result):
    """The :class:`~extspec.model_spec.ModelSpec` of a fit result: its type and parameters
    (best-fit values as start values, the same frozen ones and bounds), and its EBL block
    (table, redshift, alpha_norm) when the fit had one."""
    from .ebl import EBL_PARAMS
    from .model_spec import EBLSpec, ModelSpec, ParameterSpec

    params = {p.name: ParameterSpec(value=float(p.value), frozen=bool(p.frozen), error=None,
                                    min=None if p.min is None else float(p.min),
                                    max=None if p.max is None else float(p.max)) for p in fit_result.parameters}
    ebl = None
    if getattr(fit_result, "ebl", None):
        ebl = EBLSpec(table=fit_result.ebl["table"], redshift=params["redshift"], alpha_norm=params.get("alpha_norm"))
    return ModelSpec(type=fit_result.model_type, parameters=tuple((k, v) for k, v in params.items()
                                                                    if k not in EBL_PARAMS), ebl=ebl)


def spectra_rows(bins, fit_result, options) -> tuple[list[dict], dict]:
    """The joint-fit model fitted to each time bin on its own (all free parameters free,
    started at the joint fit's values; ``options``: :class:`~extspec.fit.FitOptions`).  Returns
    the rows (``time_min``, ``time_max``, every
    free parameter and ``<name>_err``, ``stat``, ``success``, ``status``, ``n_runs``,
    ``livetime``) and their units.  ``status`` is the quality gate's verdict of the bin's fit
    (:mod:`extspec.quality`; e.g. ``not_detected`` or ``unconstrained`` for a bin of noise,
    whose parameters are then no measurement)."""
    from .fit import fit_joint

    spec = model_spec_of(fit_result)
    free = [p for p in fit_result.parameters if not p.frozen]
    units = {"time_min": "", "time_max": ""}
    for p in free:
        units[p.name] = p.unit
        units[f"{p.name}_err"] = p.unit
    units.update({"stat": "", "success": "", "status": "", "n_runs": "", "livetime": "s"})
    rows = []
    for tb, datasets in bins:
        row = {"time_min": tb.time_min, "time_max": tb.time_max}
        try:
            res = fit_joint(datasets, spec, options)
            ok, values = bool(res.success), {p.name: p for p in res.parameters}
        except (ValueError, FloatingPointError, RuntimeError):
            res, ok, values = None, False, {}
        for p in free:
            q = values.get(p.name)
            row[p.name] = float(q.value) if ok and q is not None else float("nan")
            row[f"{p.name}_err"] = float(q.error) if ok and q is not None else float("nan")
        row.update(stat=float(res.total_stat) if res is not None else float("nan"), success=ok,
                   status=res.status if res is not None else judge(success=False).status,
                   n_runs=len(res.obs_ids) if res is not None else 0,
                   livetime=float(sum(d.livetime for d in datasets if d.usable and np.any(d.mask_safe))))
        rows.append(row)
    return rows, units


@dataclass(frozen=True)
class LightCurve:
    """What :func:`light_curve` measured.

    Attributes
    ----------
    rows : list of dict
        One per time bin and energy bin (columns :data:`LIGHTCURVE_UNITS`).
    meta : dict
        The metadata of ``lightcurve.ecsv``: what every column means, the binning, the
        joint-fit fluxes and the constant-flux test; ``warning`` where the rows hold few counts.
    variability : dict
        :func:`constant_flux_test` of the fitted bins.
    reference_flux : dict
        ``{(e_min, e_max): flux}``: the joint-fit model's integral flux in each energy bin.
    bins : list of TimeBin
        The time bins (:func:`extspec.timebins.make_time_bins`).
    obs_ids : list of int
        The runs inside at least one time bin.
    """

    rows: list
    meta: dict
    variability: dict
    reference_flux: dict
    bins: list
    obs_ids: list


class _Sized:
    """An iterator that knows its length (for progress lines) without holding its items."""

    def __init__(self, items, n: int):
        self._items, self._n = items, n

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return self._n


def _json_safe(value):
    """A config value as plain JSON types (for ECSV metadata)."""
    import json

    return json.loads(json.dumps(value, default=str))


def light_curve(spectra, events, fit_result, settings: LightCurveSettings, integration: str,
                progress=None) -> LightCurve:
    """The light curve of the runs ``spectra`` with the shape of ``fit_result`` frozen.

    Parameters
    ----------
    spectra : list of SpectrumDataset
        The reduced runs.
    events : list
        Per run its :class:`~extspec.spectrum.OnOffEvents` (needed where time bins cut runs),
        or None (``run`` and ``night`` bins use the whole run's spectrum).
    fit_result : FitResult
        The joint fit (``success`` true: the caller checks it).

    settings : LightCurveSettings

    integration : {"exact", "reference"}
        Model integral over true bins (the fit's ``fit.integration``).
    progress : callable ``(done, total)``, optional
        As for :func:`light_curve_rows`.

    The time bins come from :func:`extspec.timebins.make_time_bins` of the runs' times
    (:func:`extspec.timebins.run_times`); none overlapping any run raises ExtspecError naming
    ``light_curve.time_bins`` and the runs' span.  Energy bins: ``settings.energy_edges`` (or
    the fit's energy range) snapped to reco edges (:func:`extspec.fluxpoints.snap_edges`).
    """
    from .containment import flux_definition
    from .ebl import result_model
    from .errors import ExtspecError
    from .fluxpoints import snap_edges
    from .timebins import iso_utc, make_time_bins, run_times, runs_span

    runs = run_times(spectra, events)
    bins = make_time_bins(settings.time_bins, runs, settings.night_boundary_utc)
    if not bins:
        lo_run, hi_run = runs_span(runs)
        raise ExtspecError(f"light curve: config key 'light_curve.time_bins': no time bin overlaps any of the "
                          f"{len(runs)} run(s), which span {iso_utc(lo_run)} .. {iso_utc(hi_run)} UTC "
                          "(wrong date, or a time not in UTC?)")
    lo, hi = fit_result.energy_range
    reco = spectra[0].energy_reco.edges if spectra else np.array([lo, hi])
    edges = snap_edges(settings.energy_edges if settings.energy_edges is not None else [lo, hi], reco)
    per_bin = ((tb, bin_datasets(tb, spectra, events)) for tb in bins)  # one time bin's spectra at a time
    rows, variability = light_curve_rows(_Sized(per_bin, len(bins)), fit_result, edges,
                                         settings.sqrt_ts_threshold_ul, integration, settings.variability_min_counts,
                                         progress)
    model = result_model(fit_result)
    ref = {(float(a), float(b)): float(model.integral(np.array([a]), np.array([b]), **fit_result.values)[0])
           for a, b in zip(edges[:-1], edges[1:])}
    used = sorted({int(spectra[w.run].obs_id) for tb in bins for w in tb.windows})
    meta = {
        "SED_TYPE": "flux", "UL_CONF": 0.95, "TIMESYS": "utc", "TIMEUNIT": "d", "MJDREFI": 0, "MJDREFF": 0.0,
        "time_scale": "utc", "time_format": "mjd",
        "flux": "integral flux in [e_min, e_max], the joint-fit shape with its norm fitted per time bin",
        "flux_definition": flux_definition(spectra),
        "time_bins": settings.time_bins if isinstance(settings.time_bins, str) else _json_safe(settings.time_bins),
        "sqrt_ts_threshold_ul": settings.sqrt_ts_threshold_ul, "ul_delta_stat": DELTA_UL, "err_delta_stat": DELTA_ERR,
        "model": fit_result.model_type, "fit_status": fit_result.status, "obs_ids": used,
        "obs_ids_outside_bins": [int(s.obs_id) for s in spectra if int(s.obs_id) not in used],
        "joint_fit_flux": [ref[k] for k in sorted(ref)],
        "variability_chi2": variability["chi2"], "variability_ndf": variability["ndf"],
        "variability_p_value": variability["p_value"], "variability_per_energy_bin": variability["per_energy_bin"],
        "variability_test": "likelihood ratio of one norm for all time bins against one per group of time "
                            "bins, the groups merging consecutive bins until the constant flux predicts at least "
                            "variability_min_counts ON counts (Wilks' theorem valid); chi2 = W_const - sum W_group, "
                            "ndf = n_groups - 1 per energy bin",
        "variability_min_counts": settings.variability_min_counts,
        "status": "the quality gate per row (extspec.quality.judge on the norm fit and its detection TS = "
                  "sqrt_ts * |sqrt_ts| against sqrt_ts_threshold_ul^2): "
                  + "; ".join(f"{k}: {STATUS_MEANING[k]}" for k in ("ok", "not_detected", "failed")),
    }
    counts = [r["counts"] for r in rows if r["success"]]
    median_counts = float(np.median(counts)) if counts else 0.0
    meta["median_counts_per_row"] = median_counts
    if counts and median_counts < settings.variability_min_counts:  # few counts: not Gaussian measurements
        meta["warning"] = (f"few counts per time bin (median {median_counts:g} ON counts per row, below "
                           f"light_curve.variability_min_counts = {settings.variability_min_counts:g}): each row's "
                           "flux is the maximum-likelihood value of its bin, not a Gaussian measurement (averaging "
                           "rows is biased); quote flux_ul where status is not_detected, and the constant-flux test "
                           "(which merges bins) for variability")
    return LightCurve(rows=rows, meta=meta, variability=variability, reference_flux=ref, bins=bins, obs_ids=used)


def time_bin_spectra(curve: LightCurve, spectra, events, fit_result, options) -> tuple[list[dict], dict]:
    """The joint-fit model fitted to each time bin of ``curve`` on its own (:func:`spectra_rows`;
    ``spectra``, ``events`` as for :func:`light_curve`, one bin's spectra in memory at a time)."""
    return spectra_rows(((tb, bin_datasets(tb, spectra, events)) for tb in curve.bins), fit_result, options)
