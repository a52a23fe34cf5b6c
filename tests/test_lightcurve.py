"""Light curves (extspec.lightcurve, extspec.timebins): closure on simulated ON/OFF counts,
errors and upper limits against likelihood profiles built here, time-bin assignment, and the
defined outputs for empty, outside and unfittable bins."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import data_path, skip_without

from extspec.fit import FitOptions, JointData, fit_joint
from extspec.geometry import make_energy_axis
from extspec.io.onoff_events import read_onoff_events, write_onoff_events
from extspec.models import get_model
from extspec.lightcurve import bin_datasets, gadf_rows, light_curve_rows, spectra_rows, window_dataset
from extspec.simulate import simulate_onoff
from extspec.spectrum import OnOffEvents, SpectrumDataset
from extspec.stats import wstat
from extspec.timebins import (RunTimes, TimeBin, Window, interval_bins, livetime_in, make_time_bins,
                              met_from_mjd_utc, mjd_utc_from_met, night_bins, parse_utc, regular_intervals,
                              run_bins)

TRUTH = {"index": 2.5, "amplitude": 1e-10, "reference": 1.0}
# DR1's time reference: MET seconds since 2001-01-01T00:00:00 UTC, in TT
TIME_REF = {"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT", "TIMEUNIT": "s"}


def template(livetime=600.0, obs_id=1, nreco=8, safe=None):
    """A small ON/OFF spectrum with a smooth effective area and a diagonal dispersion."""
    reco = make_energy_axis(0.5, 20.0, nreco)
    true = make_energy_axis(0.3, 40.0, 2 * nreco)
    et = true.centers
    aeff = 1e5 * (1 - np.exp(-et / 0.8))  # m^2
    kernel = np.zeros((true.nbin, reco.nbin))
    for i, e in enumerate(et):
        j = np.searchsorted(reco.edges, e) - 1
        if 0 <= j < reco.nbin:
            kernel[i, j] = 1.0
    n_off = np.round(400 * livetime / 600 * (reco.centers / 0.5) ** -1.5).astype(np.int64)
    mask = np.ones(reco.nbin, bool) if safe is None else np.asarray(safe, bool)
    return SpectrumDataset(obs_id=obs_id, energy_reco=reco, energy_true=true, counts=np.zeros(reco.nbin, np.int64),
                           counts_off=n_off, acceptance=np.ones(reco.nbin), acceptance_off=np.full(reco.nbin, 5.0),
                           exposure=aeff * livetime, edisp=kernel, edisp_weight=aeff * livetime, mask_safe=mask,
                           livetime=livetime, ontime=livetime / 0.9, gti=np.array([[0.0, livetime / 0.9]]))


def truth_result(amplitude=TRUTH["amplitude"]):
    """A FitResult holding the true model (all frozen), as if from the joint fit."""
    cfg = {"type": "power_law", "parameters": {k: {"value": v, "frozen": True} for k, v in
                                               dict(TRUTH, amplitude=amplitude).items()}}
    t = template()
    res = fit_joint([dataclasses.replace(t, counts=t.counts_off // 5 + 20)], cfg, OPTIONS)  # any counts: all frozen
    assert res.success, res.message
    for p in res.parameters:  # the light curve frees nothing but its norm; spectra free index, amplitude
        p.frozen = p.name == "reference"
    return res


def sim_bins(rng, amplitudes, livetime=600.0):
    """One simulated run per time bin, the source at ``amplitudes[k]`` in bin k."""
    bins = []
    for k, amp in enumerate(amplitudes):
        t = template(livetime, obs_id=k + 1)
        spec = simulate_onoff(t, "power_law", dict(TRUTH, amplitude=amp), rng, background_off=t.counts_off)
        bins.append((TimeBin(55000.0 + k / 24, 55000.0 + (k + 0.5) / 24, (Window(k, -np.inf, np.inf, livetime),)),
                     [spec]))
    return bins


EDGES = np.array([0.5, 20.0])
LC = (2.0, "exact", 0.0)  # sqrt_ts_threshold_ul, integration, variability_min_counts
OPTIONS = FitOptions(integration="exact", covariance="hesse", minos=False, allow_negative_amplitude=False,
                     detection_ts_min=9.0)


def test_steady_source_p_values_are_flat():
    """200 realisations of a steady source in 4 time bins: the constant-flux p-values are uniform
    (Kolmogorov-Smirnov distance below its 1 % critical value) and fluxes scatter around the truth."""
    rng = np.random.default_rng(7)
    result = truth_result()
    p_values, pulls = [], []
    ref = float(np.diff([TRUTH["amplitude"] / 1.5 * e ** -1.5 for e in EDGES])[0] * -1)  # integral 0.5-20 TeV
    for _ in range(200):
        rows, var = light_curve_rows(sim_bins(rng, [TRUTH["amplitude"]] * 4), result, EDGES, *LC)
        assert var["ndf"] == 3
        p_values.append(var["p_value"])
        pulls += [(r["flux"] - ref) / r["flux_err"] for r in rows]
    p = np.sort(p_values)
    ks = np.max(np.maximum(np.arange(1, p.size + 1) / p.size - p, p - np.arange(p.size) / p.size))
    assert ks < 1.63 / np.sqrt(p.size), ks
    assert abs(np.mean(pulls)) < 0.1 and 0.9 < np.std(pulls) < 1.1


def test_flux_doubling_is_found_in_its_bin():
    rng = np.random.default_rng(3)
    amps = [TRUTH["amplitude"]] * 8
    amps[5] *= 2
    rows, var = light_curve_rows(sim_bins(rng, amps, livetime=1800.0), truth_result(), EDGES, *LC)
    flux = np.array([r["flux"] for r in rows])
    err = np.array([r["flux_err"] for r in rows])
    assert int(np.argmax(flux)) == 5
    others = np.delete(flux, 5)
    assert abs(flux[5] / others.mean() - 2.0) < 3 * err[5] / others.mean()
    assert var["p_value"] < 1e-4 and var["chi2"] > 30
    assert all(r["success"] and r["n_runs"] == 1 and r["livetime"] == 1800.0 for r in rows)


def test_errors_and_upper_limit_follow_the_likelihood_profile():
    """flux_errn/errp where W rises by 1, flux_ul where it rises by 2.71, from a profile of
    WStat in the flux scanned here on a fine grid; a faint bin is flagged as an upper limit."""
    rng = np.random.default_rng(11)
    bins = sim_bins(rng, [TRUTH["amplitude"], 0.02 * TRUTH["amplitude"]], livetime=300.0)
    result = truth_result()
    rows, _ = light_curve_rows(bins, result, EDGES, *LC)
    model = get_model("power_law")
    ref = float(model.integral(np.array([0.5]), np.array([20.0]), **TRUTH)[0])
    for (_, (spec,)), row in zip(bins, rows):
        data = JointData([spec])
        mu0 = data.npred_sig(model.integral(data.e_min, data.e_max, **TRUTH))[0]
        norms = np.linspace(row["flux"] / ref - 2, row["flux"] / ref + 3, 20001)
        w = wstat(spec.counts, spec.counts_off, spec.alpha, norms[:, None] * mu0).sum(axis=1)
        best = norms[np.argmin(w)]
        assert abs(best * ref - row["flux"]) < 1e-3 * ref
        w_min = w.min()

        def crossing(delta, side):
            sel = norms > best if side > 0 else norms < best
            x, y = norms[sel], w[sel] - w_min - delta
            i = np.flatnonzero(np.diff(np.sign(y)))[0]
            return x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i])

        assert row["flux_errp"] == pytest.approx((crossing(1.0, 1) - best) * ref, rel=2e-3)
        assert row["flux_errn"] == pytest.approx((best - crossing(1.0, -1)) * ref, rel=2e-3)
        assert row["flux_ul"] == pytest.approx(crossing(2.71, 1) * ref, rel=2e-3)
        assert row["ts"] == pytest.approx(np.sum(wstat(spec.counts, spec.counts_off, spec.alpha, 0.0)) - w_min,
                                          abs=1e-3)
    assert not rows[0]["is_ul"] and rows[0]["sqrt_ts"] > 3
    assert rows[1]["is_ul"] and rows[1]["sqrt_ts"] < 2 and rows[1]["flux_ul"] > rows[1]["flux"]


# ------------------------------------------------------------------------- time bins --

def run(obs_id, start_mjd, minutes=28.0, deadc=0.9, gaps=()):
    """A run starting at ``start_mjd`` (UTC) with GTI gaps ``[(from_min, to_min)]``."""
    t0 = float(met_from_mjd_utc(start_mjd, TIME_REF))
    cuts = [0.0] + [x for g in gaps for x in g] + [minutes]
    gti = np.array([[t0 + 60 * a, t0 + 60 * b] for a, b in zip(cuts[::2], cuts[1::2])])
    return RunTimes(obs_id, gti, deadc, TIME_REF)


def test_time_conversion_and_run_bins():
    # 2006-07-29T20:00:00 UTC is MJD 53945.833333; DR1's MET 0 is 2001-01-01T00:00:00 UTC (in TT), and
    # one leap second (2005-12-31) lies between: MET = (MJD_UTC - 51910) x 86400 + 1 s
    mjd = parse_utc("2006-07-29T20:00:00")
    assert mjd == pytest.approx(53945 + 20 / 24, abs=1e-9)
    met = float(met_from_mjd_utc(mjd, TIME_REF))
    assert met == pytest.approx((mjd - 51910) * 86400 + 1.0, abs=1e-5)
    assert float(mjd_utc_from_met(met, TIME_REF)) == pytest.approx(mjd, abs=1e-9)
    runs = [run(2, mjd + 0.1), run(1, mjd)]
    bins = run_bins(runs)
    assert [b.windows[0].run for b in bins] == [1, 0]
    assert bins[0].time_min == pytest.approx(mjd, abs=1e-9)
    assert bins[0].time_max == pytest.approx(mjd + 28 / 1440, abs=1e-9)
    assert bins[0].windows[0].livetime == pytest.approx(28 * 60 * 0.9)


def test_night_bins_and_boundary():
    noon = parse_utc("2006-07-29T12:00:00")
    runs = [run(1, noon - 2 / 24), run(2, noon - 1 / 1440), run(3, noon), run(4, noon + 0.4), run(5, noon + 1.3)]
    bins = night_bins(runs, 12.0)
    assert [[w.run for w in b.windows] for b in bins] == [[0, 1], [2, 3], [4]]
    assert bins[1].time_min == pytest.approx(noon, abs=1e-9)
    assert bins[1].time_max == pytest.approx(noon + 0.4 + 28 / 1440, abs=1e-9)
    # a site where nights change at 18 h UTC groups the same runs differently
    assert [[w.run for w in b.windows] for b in night_bins(runs, 18.0)] == [[0, 1, 2], [3], [4]]


def test_intervals_cut_runs_with_gti_and_livetime():
    t = parse_utc("2006-07-29T20:00:00")
    runs = [run(1, t, gaps=[(10.0, 12.0)]), run(2, t + 40 / 1440), run(3, t + 3.0)]  # run 3 outside every bin
    intervals = regular_intervals(t, t + 70 / 1440, 600.0)
    assert len(intervals) == 7 and intervals[-1][1] == t + 70 / 1440
    bins = interval_bins(runs, intervals)
    lt = {(round((b.time_min - t) * 1440), w.run): w.livetime for b in bins for w in b.windows}
    # run 1: 0-10 min, gap 10-12, 12-28 min; run 2: 40-68 min
    assert lt == pytest.approx({(0, 0): 540.0, (10, 0): 8 * 54.0, (20, 0): 8 * 54.0, (40, 1): 540.0,
                                (50, 1): 540.0, (60, 1): 8 * 54.0})
    assert [round((b.time_min - t) * 1440) for b in bins] == [0, 10, 20, 40, 50, 60]  # 30-40: no run, no bin
    assert all(w.run != 2 for b in bins for w in b.windows)
    g = runs[0].gti
    assert livetime_in(g, 0.9, -np.inf, np.inf) == pytest.approx(26 * 60 * 0.9)
    same = make_time_bins([["2006-07-29T20:00:00", "2006-07-29T20:10:00"]], runs, 12.0)
    assert len(same) == 1 and same[0].windows[0].livetime == pytest.approx(540.0)


def test_window_counts_exposure_and_event_file(tmp_path):
    """A run cut in two: events binned by time, exposure split by livetime; the halves add up
    to the run; the events file round-trips."""
    spec = template(livetime=1512.0)  # 28 min x 0.9
    rng = np.random.default_rng(1)
    nreco = spec.energy_reco.nbin
    t0 = 1000.0
    ev = OnOffEvents(obs_id=1, energy_reco_edges=spec.energy_reco.edges, gti=np.array([[t0, t0 + 1680.0]]),
                     deadc=0.9, time_on=t0 + 1680 * rng.random(300), energy_bin_on=rng.integers(0, nreco, 300),
                     time_off=t0 + 1680 * rng.random(900), energy_bin_off=rng.integers(0, nreco, 900),
                     time_ref=TIME_REF)
    path = write_onoff_events(ev, tmp_path / "onoff_events.h5")
    back = read_onoff_events(path)
    assert back.time_ref == TIME_REF and back.deadc == 0.9
    assert np.all(np.diff(back.time_on) >= 0) and back.time_on.size == 300
    cut = t0 + 600.0
    halves = [window_dataset(spec, back, Window(0, lo, hi, livetime_in(back.gti, 0.9, lo, hi)))
              for lo, hi in ((t0 - 50, cut), (cut, t0 + 1700))]
    assert sum(h.counts for h in halves).tolist() == np.bincount(back.energy_bin_on, minlength=nreco).tolist()
    assert sum(h.counts_off for h in halves).sum() == 900
    assert halves[0].counts.sum() == int(np.sum(back.time_on < cut))
    assert halves[0].livetime == pytest.approx(540.0)
    np.testing.assert_allclose(halves[0].exposure + halves[1].exposure, spec.exposure)
    np.testing.assert_allclose(halves[0].exposure, spec.exposure * 540 / 1512)
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    from extspec.errors import FormatError

    with pytest.raises(FormatError, match="bad.h5"):
        read_onoff_events(tmp_path / "bad.h5")


def test_unfittable_bins_are_marked_not_raised():
    """An energy bin outside a run's safe range gives a row with success false and NaN flux; a
    bin whose runs are unusable likewise; spectra of a bin that cannot be fitted are marked."""
    rng = np.random.default_rng(5)
    bins = sim_bins(rng, [TRUTH["amplitude"]] * 3)
    tb, (spec,) = bins[1]
    bins[1] = (tb, [dataclasses.replace(spec, mask_safe=np.arange(spec.mask_safe.size) >= 4)])  # only above ~3 TeV
    tb, (spec,) = bins[2]
    bins[2] = (tb, [dataclasses.replace(spec, usable=False, reason="no OFF region")])
    edges = np.array([0.5, 2.0, 20.0])
    rows, var = light_curve_rows(bins, truth_result(), edges, *LC)
    assert len(rows) == 6
    ok = [(r["e_min"], r["success"]) for r in rows]
    assert ok[:2] == [(0.5, True), (2.0, True)]
    assert ok[2] == (0.5, False) and np.isnan(rows[2]["flux"]) and rows[2]["n_runs"] == 0
    assert rows[3]["success"] and rows[3]["n_runs"] == 1
    assert not rows[4]["success"] and not rows[5]["success"] and np.isnan(rows[5]["flux"])
    assert [p["ndf"] for p in var["per_energy_bin"]] == [0, 1]
    srows, units = spectra_rows(bins, truth_result(), OPTIONS)
    assert [r["success"] for r in srows] == [True, True, False]
    assert np.isnan(srows[2]["index"]) and "index_err" in units and "amplitude" in units
    assert srows[0]["index"] == pytest.approx(TRUTH["index"], abs=4 * srows[0]["index_err"])
    g = gadf_rows(rows)
    assert len(g) == 3 and g[0]["e_min"] == [0.5, 2.0] and len(g[2]["flux"]) == 2


EBL_TABLE = data_path("ebl/ebl_dominguez11.fits.gz")


@skip_without("ebl/ebl_dominguez11.fits.gz", "the EBL table")
def test_light_curve_of_an_absorbed_fit():
    """With model.ebl the frozen shape is the absorbed model: fluxes are observed (absorbed)
    integral fluxes consistent with the joint fit's, and the fits per time bin keep the EBL
    (intrinsic index recovered)."""
    from extspec.ebl import result_model

    from extspec.io.ebl_table import with_ebl_table

    cfg = with_ebl_table({"type": "power_law", "parameters": {"index": 2.0, "amplitude": 1e-10},
                          "ebl": {"table": str(EBL_TABLE), "redshift": 0.116}})
    truth = {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}
    rng = np.random.default_rng(2)
    sims = [simulate_onoff(template(1800.0, obs_id=k + 1), cfg, truth, rng) for k in range(3)]
    res = fit_joint(sims, cfg, OPTIONS)
    assert res.success and res.ebl
    bins = [(TimeBin(55000.0 + k, 55000.5 + k, (Window(k, -np.inf, np.inf, 1800.0),)), [s]) for k, s in enumerate(sims)]
    rows, var = light_curve_rows(bins, res, EDGES, *LC)
    ref = float(result_model(res).integral(np.array([0.5]), np.array([20.0]), **res.values)[0])
    unabsorbed = float(get_model("power_law").integral(np.array([0.5]), np.array([20.0]),
                                                        index=res.values["index"], amplitude=res.values["amplitude"],
                                                        reference=1.0)[0])
    assert ref < 0.9 * unabsorbed
    for r in rows:
        assert r["success"] and abs(r["flux"] - ref) < 3 * r["flux_err"]
    srows, units = spectra_rows(bins, res, OPTIONS)
    assert "redshift" not in units and all(r["success"] for r in srows)
    assert all(abs(r["index"] - TRUTH["index"]) < 4 * r["index_err"] for r in srows)


def test_light_curve_entry_point_assembles_bins_rows_and_metadata():
    """lightcurve.light_curve: run bins from the spectra's GTIs and time keys, the same rows as
    light_curve_rows on those bins, the joint-fit flux per energy bin, the metadata; a few-count
    warning; time bins overlapping no run refused in one line."""
    from extspec.errors import ExtspecError
    from extspec.lightcurve import LightCurveSettings, light_curve, time_bin_spectra

    rng = np.random.default_rng(5)
    result = truth_result()
    spectra = []
    for k in range(3):
        t = template(600.0, obs_id=10 + k)
        t = dataclasses.replace(t, gti=np.array([[k * 7200.0, k * 7200.0 + 600.0 / 0.9]]), meta=dict(TIME_REF))
        spectra.append(simulate_onoff(t, "power_law", TRUTH, rng, background_off=t.counts_off))
    settings = LightCurveSettings(time_bins="run", night_boundary_utc=12.0, energy_edges=(0.5, 2.0, 20.0),
                                  spectra=True, sqrt_ts_threshold_ul=2.0, variability_min_counts=0.0)
    curve = light_curve(spectra, [None] * 3, result, settings, "exact")
    assert len(curve.bins) == 3 and curve.obs_ids == [10, 11, 12]
    bins = [(tb, bin_datasets(tb, spectra, [None] * 3)) for tb in curve.bins]
    edges = spectra[0].energy_reco.edges[[0, 3, 8]]  # 2 TeV snapped to the reco edge 1.99 TeV
    assert sorted(curve.reference_flux) == [(edges[0], edges[1]), (edges[1], edges[2])]
    rows, var = light_curve_rows(bins, result, edges, 2.0, "exact", 0.0)
    assert curve.rows == rows and curve.variability["chi2"] == var["chi2"] and len(rows) == 6
    model = get_model("power_law")
    for (lo, hi), flux in curve.reference_flux.items():
        assert flux == pytest.approx(float(model.integral(np.array([lo]), np.array([hi]), **TRUTH)[0]), rel=1e-12)
    meta = curve.meta
    assert meta["obs_ids"] == [10, 11, 12] and meta["time_bins"] == "run" and meta["ul_delta_stat"] == 2.71
    assert meta["joint_fit_flux"] == [curve.reference_flux[k] for k in sorted(curve.reference_flux)]
    assert "warning" not in meta and meta["median_counts_per_row"] > 0
    few = light_curve(spectra, [None] * 3, result, dataclasses.replace(settings, variability_min_counts=1e9), "exact")
    assert "below light_curve.variability_min_counts" in few.meta["warning"]
    srows, units = time_bin_spectra(curve, spectra, [None] * 3, result, OPTIONS)
    assert len(srows) == 3 and all(r["n_runs"] == 1 for r in srows) and "index" in units
    far = dataclasses.replace(settings, time_bins=[["2002-06-01T00:00:00", "2002-06-02T00:00:00"]])
    with pytest.raises(ExtspecError, match="light_curve.time_bins.*no time bin overlaps any of the 3 run"):
        light_curve(spectra, [None] * 3, result, far, "exact")


@skip_without("ebl/ebl_dominguez11.fits.gz", "the EBL table")
def test_fit_with_comparisons_carries_the_ebl_over():
    """fit.fit_with_comparisons: one comparison per alternative; an alternative without ``ebl``
    is fitted with the model's absorption, one with its own keeps it."""
    from extspec.fit import fit_with_comparisons
    from extspec.io.ebl_table import with_ebl_table

    cfg = with_ebl_table({"type": "power_law", "parameters": {"index": 2.0, "amplitude": 1e-10},
                          "ebl": {"table": str(EBL_TABLE), "redshift": 0.116}})
    rng = np.random.default_rng(4)
    truth = {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}
    sims = [simulate_onoff(template(1800.0, obs_id=k + 1), cfg, truth, rng) for k in range(2)]
    own = with_ebl_table({"type": "log_parabola", "ebl": {"table": str(EBL_TABLE), "redshift": 0.3}})
    res = fit_with_comparisons(sims, cfg, ["log_parabola", own], OPTIONS)
    assert res.success and len(res.comparisons) == 2
    carried, kept = (c["alternative_parameters"] for c in res.comparisons)
    assert carried["redshift"]["value"] == 0.116 and kept["redshift"]["value"] == 0.3
    plain = fit_joint(sims, cfg, OPTIONS)
    assert res.total_stat == plain.total_stat  # the model's own fit is fit_joint's
    assert all(c["alternative"] == "log_parabola" and c["dof"] == 1 for c in res.comparisons)
    empty = fit_with_comparisons([], cfg, ["log_parabola"], OPTIONS)
    assert not empty.success and empty.comparisons == []
