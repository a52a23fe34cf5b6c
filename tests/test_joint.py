"""Joint fits across analyses (instruments): extspec.joint and its workflow step.

Two simulated instruments with different IRFs and reco binnings (ON/OFF spectra drawn with
extspec.simulate.simulate_onoff from analytic templates built here): the joint fit recovers
the truth, equals a minimisation of the summed likelihoods built in the test, and its
nuisance parameters (energy scale, normalisation) find a simulated miscalibration.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from extspec.fit import JointData, fit_joint
from extspec.geometry import EnergyAxis, make_energy_axis
from extspec.joint import Instrument, Systematics, fit_instruments, instrument_flux
from extspec.models import get_model, integrator
from extspec.simulate import simulate_onoff
from extspec.spectrum import SpectrumDataset
from extspec.workflow.settings import fit_options, flux_point_settings

EBL_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ebl" / "ebl_dominguez11.fits.gz"
needs_ebl = pytest.mark.skipif(not EBL_TABLE.is_file(), reason=f"no EBL table at {EBL_TABLE}")

TRUTH = {"index": 2.5, "amplitude": 3.5e-11, "reference": 1.0}
START = {"type": "power_law", "parameters": {"index": {"value": 2.2}, "amplitude": {"value": 2e-11},
                                              "reference": {"value": 1.0, "frozen": True}}}
NONE = Systematics(energy_scale=None, norm=None)
OPTS = fit_options({})  # the schema's defaults: MIGRAD + HESSE, exact integration, no MINOS

_erf = np.frompyfunc(math.erf, 1, 1)


def _phi(x):
    return 0.5 * (1.0 + _erf(np.asarray(x, float) / math.sqrt(2.0)).astype(float))


def template(obs_id, reco, area_m2, threshold, sigma, bias=0.0, livetime=4 * 3600.0, off=200.0, alpha=0.2,
             true=(0.03, 150.0, 48)):
    """An ON/OFF template of an analytic instrument: effective area area_m2 * (1 - exp(-E /
    threshold)), log-normal dispersion of width ``sigma`` and ``bias`` (in ln E), OFF counts
    falling as E^-1.5 from ``off`` at 1 TeV, safe range the whole reco axis."""
    et = make_energy_axis(*true)
    er = reco
    e = et.centers
    exposure = area_m2 * (1.0 - np.exp(-e / threshold)) * livetime
    z = (np.log(er.edges)[None, :] - np.log(e)[:, None] - bias) / sigma
    cdf = _phi(z)
    edisp = np.diff(cdf, axis=1)
    n = er.nbin
    counts_off = np.round(off * er.centers ** -1.5).astype(np.int64) + 1
    return SpectrumDataset(
        obs_id=obs_id, energy_reco=er, energy_true=et, counts=np.zeros(n, np.int64), counts_off=counts_off,
        acceptance=np.ones(n), acceptance_off=np.full(n, 1.0 / alpha), exposure=exposure, edisp=edisp,
        edisp_weight=exposure, mask_safe=np.ones(n, bool), livetime=livetime, ontime=livetime)


def instruments(seed, model="power_law", truth=TRUTH, truth_b=None, n_runs=(2, 3)):
    """Spectra of two instruments: A (large area, 12 bins 0.3-40 TeV, 10 % resolution) and B
    (smaller area, lower threshold, 15 bins 0.08-20 TeV, 20 % resolution with a bias).
    ``truth_b``: the parameters B's spectra are drawn with (default ``truth``)."""
    rng = np.random.default_rng(seed)
    a = template(0, make_energy_axis(0.3, 40.0, 12), 1e5, 0.4, 0.10)
    b = template(0, make_energy_axis(0.08, 20.0, 15), 2e4, 0.1, 0.20, bias=0.05)
    runs_a = [simulate_onoff(a, model, truth, rng, obs_id=100 + k) for k in range(n_runs[0])]
    runs_b = [simulate_onoff(b, model, truth_b or truth, rng, obs_id=200 + k) for k in range(n_runs[1])]
    return runs_a, runs_b


def summed_fit(parts):
    """Independent check: iminuit on the sum of each instrument's JointData.stat, written here."""
    from iminuit import Minuit

    model = get_model("power_law")
    data = [JointData(p) for p in parts]

    def total(index, amp):
        values = {"index": index, "amplitude": amp * 1e-11, "reference": 1.0}
        return sum(d.stat(model.integral(d.e_min, d.e_max, **values)) for d in data)

    m = Minuit(total, index=2.2, amp=2.0)
    m.errordef = 1.0
    m.tol = 1e-4
    m.migrad()
    m.hesse()
    return m


def test_instrument_flux_energy_scale_is_the_integral_over_scaled_bins():
    runs_a, _ = instruments(1)
    d = JointData(runs_a)
    integ = integrator("power_law", "exact", "fit.integration")
    base = instrument_flux(integ, d, TRUTH)
    np.testing.assert_allclose(base, get_model("power_law").integral(d.e_min, d.e_max, **TRUTH), rtol=1e-14)
    # a power law: phi((1+s)E) (1+s) = (1+s)^(1-Gamma) phi(E)
    np.testing.assert_allclose(instrument_flux(integ, d, TRUTH, 0.1, 0.0), base * 1.1 ** (1 - 2.5), rtol=1e-12)
    np.testing.assert_allclose(instrument_flux(integ, d, TRUTH, 0.0, -0.2), base * 0.8, rtol=1e-14)


def test_joint_fit_recovers_truth_and_equals_summed_likelihoods():
    runs_a, runs_b = instruments(7)
    assert runs_a[0].energy_reco != runs_b[0].energy_reco  # different binnings in one fit
    with pytest.raises(Exception, match="reco-energy axis differs"):
        JointData(runs_a + runs_b)  # what a single-binning fit refuses
    ins = [Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)]
    jf = fit_instruments(ins, START, OPTS)
    res = jf.result
    assert res.success and jf.nuisance == []
    v = {p.name: p for p in res.parameters}
    # the truth within 3 sigma, and the errors those of a real measurement
    assert abs(v["index"].value - 2.5) < 3 * v["index"].error and 0.003 < v["index"].error < 0.05
    assert abs(v["amplitude"].value - 3.5e-11) < 3 * v["amplitude"].error
    assert res.obs_ids == [100, 101, 200, 201, 202]
    assert set(jf.stat) == {"a", "b"} and abs(sum(jf.stat.values()) - res.total_stat) < 1e-9
    # the same minimum as the sum of the two instruments' likelihoods minimised independently
    m = summed_fit([runs_a, runs_b])
    assert v["index"].value == pytest.approx(m.values["index"], rel=2e-4)
    assert v["amplitude"].value == pytest.approx(m.values["amp"] * 1e-11, rel=2e-4)
    assert res.total_stat == pytest.approx(m.fval, abs=1e-4)
    assert v["index"].error == pytest.approx(m.errors["index"], rel=0.02)
    # and each instrument alone is a different (worse-constrained) answer
    alone = fit_joint(runs_b, START, OPTS)
    assert alone.parameters[0].error > 1.3 * v["index"].error


def test_one_instrument_joint_fit_equals_fit_joint():
    runs_a, _ = instruments(3)
    jf = fit_instruments([Instrument("a", JointData(runs_a), NONE)], START, OPTS)
    ref = fit_joint(runs_a, START, OPTS)
    for p, q in zip(jf.result.parameters, ref.parameters):
        assert p.value == pytest.approx(q.value, rel=1e-9) and p.error == pytest.approx(q.error, rel=1e-6)
    assert jf.result.total_stat == pytest.approx(ref.total_stat, rel=1e-12)


LP_TRUTH = {"alpha": 2.4, "beta": 0.25, "amplitude": 3.5e-11, "reference": 1.0}
LP_START = {"type": "log_parabola", "parameters": {"alpha": {"value": 2.2}, "beta": {"value": 0.1},
                                                    "amplitude": {"value": 2e-11},
                                                    "reference": {"value": 1.0, "frozen": True}}}


def test_energy_scale_nuisance_finds_a_shifted_instrument():
    # B sees photons of energy (1 + s) E at E, s = +15 %: it folds phi((1 + s) E) (1 + s), for a
    # log-parabola the same shape with reference E0 / (1 + s) and amplitude A (1 + s).
    s_true = 0.15
    truth_b = dict(LP_TRUTH, amplitude=LP_TRUTH["amplitude"] * (1 + s_true), reference=1.0 / (1 + s_true))
    runs_a, runs_b = instruments(11, "log_parabola", LP_TRUTH, truth_b, n_runs=(3, 3))
    plain = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)],
                            LP_START, OPTS)
    sys_b = Systematics(energy_scale=0.2, norm=None)
    jf = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), sys_b)],
                         LP_START, OPTS)
    assert jf.result.success and [p.name for p in jf.nuisance] == ["b.energy_scale"]
    s, n = jf.shifts("b")
    err = jf.nuisance[0].error
    assert abs(s - s_true) < 3 * err and 0.003 < err < 0.1 and n == 0.0
    assert jf.shifts("a") == (0.0, 0.0)
    # with the nuisance the truth is back (A is the calibrated reference) and W drops a lot
    for p in jf.result.parameters[:3]:
        assert abs(p.value - LP_TRUTH[p.name]) < 3 * p.error, p
    assert plain.result.total_stat - jf.result.total_stat > 9  # > 3 sigma for one parameter
    # the reported covariance is the model block of the full one
    k = jf.names.index("alpha")
    assert jf.result.covariance[0, 0] == pytest.approx(jf.covariance[k, k])
    d = jf.systematics_dict()
    assert d["b"]["energy_scale"]["prior_sigma"] == 0.2 and d["b"]["energy_scale"]["value"] == pytest.approx(s)


def test_norm_nuisance_finds_a_miscalibrated_instrument():
    runs_a, runs_b = instruments(13, truth_b=dict(TRUTH, amplitude=TRUTH["amplitude"] * 0.75), n_runs=(3, 3))
    sys_b = Systematics(energy_scale=None, norm=0.3)
    jf = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), sys_b)],
                         START, OPTS)
    s, n = jf.shifts("b")
    err = jf.nuisance[0].error
    assert jf.result.success and s == 0.0 and abs(n + 0.25) < 3 * err and 0.003 < err < 0.1
    amp = next(p for p in jf.result.parameters if p.name == "amplitude")
    assert abs(amp.value - TRUTH["amplitude"]) < 3 * amp.error
    assert jf.systematics_dict()["b"]["norm"]["error"] == pytest.approx(err)


def test_tight_priors_give_the_fit_without_nuisances():
    runs_a, runs_b = instruments(5)
    plain = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)],
                            START, OPTS)
    tight = Systematics(energy_scale=1e-6, norm=1e-6)
    jf = fit_instruments([Instrument("a", JointData(runs_a), tight), Instrument("b", JointData(runs_b), tight)],
                         START, OPTS)
    assert jf.result.success and len(jf.nuisance) == 4
    for p, q in zip(jf.result.parameters, plain.result.parameters):
        assert p.value == pytest.approx(q.value, rel=1e-4)
    assert jf.result.total_stat == pytest.approx(plain.result.total_stat, abs=1e-3)


def test_no_usable_dataset_is_a_failed_fit():
    runs_a, _ = instruments(2)
    bad = [SpectrumDataset(**{**r.__dict__, "usable": False, "reason": "no OFF region"}) for r in runs_a]
    jf = fit_instruments([Instrument("a", JointData(bad), NONE)], START, OPTS)
    assert not jf.result.success and jf.result.message == "no usable dataset"
    assert jf.result.excluded == {100: "no OFF region", 101: "no OFF region"}


# ------------------------------------------------------------------- the `joint` config --

ON = "galactic;circle(347.3,-0.5,0.5)"


def joint_raw(**joint):
    return {"obs_ids": [20326], "on_region": ON, "analyses": {"a": {}, "b": {"obs_ids": [20327]}}, "joint": joint}


def check_joint(raw):
    from extspec.workflow.config import validate_analyses
    from extspec.workflow.joint_config import validate_joint

    return validate_joint(raw, validate_analyses(raw, check_datastore=False))


def test_joint_block_defaults():
    out = check_joint(joint_raw(j={"analyses": ["a", "b"], "model": {"type": "power_law"},
                                   "systematics": {"norm": "0.1", "energy_scale": {"b": 0.05}}}))
    j = out["j"]
    assert j["systematics"] == {"norm": 0.1, "energy_scale": {"b": 0.05}}
    assert j["fit"] == {"minos": False, "integration": "exact", "covariance": "hesse",
                        "allow_negative_amplitude": False, "detection_ts_min": 9.0}
    assert j["flux_points"] == {"energy_edges": None, "n_sigma_ul": 2.0}
    from extspec.workflow.joint_config import prior_widths

    assert prior_widths(j["systematics"], "a") == {"energy_scale": None, "norm": 0.1}
    assert prior_widths(j["systematics"], "b") == {"energy_scale": 0.05, "norm": 0.1}
    assert check_joint(joint_raw()) == {}


@pytest.mark.parametrize("joint, message", [
    ({"j": {"analyses": ["a", "c"], "model": {"type": "power_law"}}},
     "config key 'joint.j.analyses': no analysis named 'c' (the config has a, b)"),
    ({"a": {"analyses": ["a", "b"], "model": {"type": "power_law"}}},
     "config key 'joint.a': 'a' names an analysis; a joint fit needs a name of its own"),
    ({"logs": {"analyses": ["a", "b"], "model": {"type": "power_law"}}}, "config key 'joint.logs': 'logs' is reserved"),
    ({"j": {"analyses": ["a"], "model": {"type": "power_law"}}}, "config key 'joint.j.analyses': needs at least 2 entries, got 1: [\"a\"]"),
    ({"j": {"analyses": ["a", "b"]}}, "config key 'joint.j.model' is missing"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law"}, "systematics": {"norm": -0.1}}},
     "config key 'joint.j.systematics.norm'"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law"}, "systematics": {"norm": {"c": 0.1}}}},
     "config key 'joint.j.systematics.norm.c': 'c' is not one of the joint fit's analyses (a, b)"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law"}, "systematics": {"scale": 0.1}}},
     "unknown config key 'joint.j.systematics.scale'"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law", "parameters": {"alpha": 2}}}},
     "config key 'joint.j.model.parameters.alpha'"),
    ({"j.1": {"analyses": ["a", "b"], "model": {"type": "power_law"}},
      "j-1": {"analyses": ["a", "b"], "model": {"type": "power_law"}}},
     "config key 'joint.j-1': 'j-1' and 'j.1' differ only in '.' or '-'"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law"}, "flux_points": {"energy_edges": [2, 1]}}},
     "config key 'joint.j.flux_points.energy_edges': values must increase"),
    ({"j": {"analyses": ["a", "b"], "model": {"type": "power_law", "ebl": {"table": str(EBL_TABLE), "redshift": 4.5}}}},
     "config key 'joint.j.model.ebl.redshift': redshift 4.5 outside the EBL table"),
])
def test_joint_block_errors_are_one_line(joint, message):
    from extspec.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        check_joint(joint_raw(**joint))
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_same_run_in_two_analyses_of_a_joint_fit_is_refused():
    from extspec.errors import ConfigError
    from extspec.workflow.config import prepare_workflow

    dr1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "hess-dl3-dr1"
    if not (dr1 / "hdu-index.fits.gz").is_file():
        pytest.skip(f"no HESS DL3 DR1 at {dr1}")
    raw = joint_raw(j={"analyses": ["a", "b"], "model": {"type": "power_law"}})
    raw.update(datastore=str(dr1), name="x")
    out = prepare_workflow(raw, cache_dir=None)
    assert out["joint"]["j"]["analyses"] == ["a", "b"] and out["analyses"]["b"]["datastore"] == str(dr1.resolve())
    raw["analyses"]["b"]["obs_ids"] = [20327, 20326]
    with pytest.raises(ConfigError, match=r"^config key 'joint.j.analyses': obs 20326 is in both a and b"):
        prepare_workflow(raw, cache_dir=None)
    raw["joint"] = {}  # without a joint fit the two analyses may share runs
    assert prepare_workflow(raw, cache_dir=None)["analyses"]["b"]["obs_ids"] == [20327, 20326]


def test_combined_flux_points_of_two_binnings():
    from extspec.fluxpoints import flux_point_rows
    from extspec.joint import combined_edges

    runs_a, runs_b = instruments(21, n_runs=(3, 3))
    ins = [Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)]
    jf = fit_instruments(ins, START, OPTS)
    # coarsest density: A has 12 bins over 0.3-40 TeV (5.6 per decade), B 15 over 0.08-20 (6.3)
    edges = combined_edges([i.data.datasets[0].energy_reco for i in ins], jf.result.energy_range)
    assert jf.result.energy_range == pytest.approx((0.08, 40.0))
    assert len(edges) - 1 == math.ceil(math.log10(40 / 0.08) * 12 / math.log10(40 / 0.3))
    model, best = get_model("power_law"), jf.result.values
    parts = [(i.data, i.data.npred_sig(instrument_flux(integrator("power_law", "exact", "x"), i.data, best)))
             for i in ins]
    rows = flux_point_rows(parts, model, best, edges, flux_point_settings({}).n_sigma_ul)
    assert [len(r["counts"]) for r in rows] == [6] * len(rows)
    # every reco bin of each instrument is in exactly one group: the counts add up
    total = sum(sum(r["counts"]) for r in rows)
    assert total == sum(int(r.counts.sum()) for r in runs_a + runs_b)
    sig = [r for r in rows if not r["is_ul"]]
    assert len(sig) >= 5 and all(abs(r["norm"] - 1) < 4 * r["norm_err"] for r in sig)


def test_fit_joint_analyses_is_the_joint_step_science():
    """joint.fit_joint_analyses: the joint fit of fit_instruments, each analysis's record and own
    flux points, the combined points on combined_edges (as test_combined_flux_points_of_two_binnings),
    and the arrays of each analysis's spectrum plot."""
    from extspec.fluxpoints import flux_point_rows
    from extspec.joint import combined_edges, fit_joint_analyses

    runs_a, runs_b = instruments(21, n_runs=(3, 3))
    fp = flux_point_settings({})
    got = fit_joint_analyses({"a": runs_a, "b": runs_b}, {"a": NONE, "b": NONE}, START, OPTS, fp)
    jf = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)],
                         START, OPTS)
    res = got.fit.result
    assert res.success and res.total_stat == jf.result.total_stat and res.values == jf.result.values
    assert list(got.records) == ["a", "b"] and got.records["a"]["obs_ids"] == [r.obs_id for r in runs_a]
    assert got.records["b"]["n_datasets"] == 3 and got.records["a"]["stat"] == pytest.approx(jf.stat["a"])
    assert [len(r["counts"]) for r in got.flux_points["a"]] == [3] * len(got.flux_points["a"])
    assert sum(sum(r["counts"]) for r in got.flux_points["b"]) == sum(int(r.counts.sum()) for r in runs_b)
    edges = combined_edges([r[0].energy_reco for r in (runs_a, runs_b)], res.energy_range)
    assert [r["e_min"] for r in got.combined] == pytest.approx(list(edges[:-1]))
    parts = [(JointData(r), JointData(r).npred_sig(instrument_flux(integrator("power_law", "exact", "x"),
                                                                   JointData(r), res.values)))
             for r in (runs_a, runs_b)]
    direct = flux_point_rows(parts, get_model("power_law"), res.values, edges, fp.n_sigma_ul)
    assert [r["norm"] for r in got.combined] == pytest.approx([r["norm"] for r in direct], rel=1e-9)
    e, n_on, n_off, alpha, npred, mask = got.spectrum_plots["a"]
    assert np.array_equal(e, runs_a[0].energy_reco.edges) and n_on.sum() > 0
    assert npred.shape == n_on.shape == mask.shape and e.size == n_on.size + 1 and npred[mask].sum() > 0


# ------------------------------------------------------------------ EBL in joint fits --


def ebl_model(z=0.116, **ebl):
    from extspec.io.ebl_table import with_ebl_table

    return with_ebl_table({**START, "ebl": {"table": str(EBL_TABLE), "redshift": z, "alpha_norm": 1.0, **ebl}})


def ebl_instruments(seed, z=0.116):
    """Two instruments as :func:`instruments`, on a true axis inside the EBL table (0.03-100
    TeV), with spectra drawn from the absorbed model at redshift ``z``."""
    rng = np.random.default_rng(seed)
    true = (0.03, 100.0, 40)
    a = template(0, make_energy_axis(0.3, 40.0, 12), 1e5, 0.4, 0.10, true=true)
    b = template(0, make_energy_axis(0.08, 20.0, 15), 2e4, 0.1, 0.20, bias=0.05, true=true)
    truth = {**TRUTH, "redshift": z, "alpha_norm": 1.0}
    return ([simulate_onoff(a, ebl_model(z), truth, rng, obs_id=100 + k) for k in range(2)],
            [simulate_onoff(b, ebl_model(z), truth, rng, obs_id=200 + k) for k in range(2)])


@needs_ebl
def test_joint_fit_with_ebl_recovers_the_intrinsic_spectrum():
    """Two simulated instruments seeing PKS 2155-304-like absorption (z = 0.116): the joint fit
    folds the absorbed model and recovers the intrinsic parameters; with one instrument it is
    the single-dataset fit_joint; a free alpha_norm and an energy-scale nuisance stay bounded."""
    from extspec.ebl import EBL_PARAMS
    from extspec.io.ebl_table import read_ebl_table

    runs_a, runs_b = ebl_instruments(11)
    cfg = ebl_model()
    ins = [Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)]
    res = fit_instruments(ins, cfg, OPTS).result
    assert res.success, res.message
    assert [p.name for p in res.parameters] == ["index", "amplitude", "reference", *EBL_PARAMS]
    assert res.ebl["name"] == "dominguez11" and len(res.ebl["sha256"]) == 64
    v = {p.name: p for p in res.parameters}
    for name in ("index", "amplitude"):
        assert abs(v[name].value - TRUTH[name]) < 3 * v[name].error, (name, v[name].value, v[name].error)
    assert v["redshift"].value == 0.116 and v["redshift"].frozen
    # without the EBL the same data look much softer: the absorption is really folded
    plain = fit_instruments(ins, START, OPTS).result
    assert plain.values["index"] - TRUTH["index"] > 5 * v["index"].error
    # one instrument: exactly the single-analysis fit of the same spectra
    one = fit_instruments([Instrument("a", JointData(runs_a), NONE)], cfg, OPTS).result
    single = fit_joint(runs_a, cfg, OPTS)
    assert single.success and one.values == pytest.approx(single.values, rel=1e-9)
    assert one.total_stat == pytest.approx(single.total_stat, rel=1e-12)
    np.testing.assert_allclose(one.covariance, single.covariance, rtol=1e-6, atol=0)
    assert one.ebl == single.ebl
    # alpha_norm free and bounded; an energy-scale nuisance bounded by the table's energy range
    free = ebl_model(alpha_norm={"value": 1.0, "frozen": False, "min": 0.2, "max": 3.0})
    ins[1] = Instrument("b", JointData(runs_b), Systematics(energy_scale=0.05, norm=None))
    jf = fit_instruments(ins, free, OPTS)
    assert jf.result.success, jf.result.message
    a = {p.name: p for p in jf.result.parameters}["alpha_norm"]
    assert (a.min, a.max) == (0.2, 3.0) and abs(a.value - 1.0) < 3 * a.error and 0.02 < a.error < 0.5
    (s,) = jf.nuisance
    assert s.max == pytest.approx(read_ebl_table(EBL_TABLE).energy_range[1] / 100.0 - 1.0, rel=1e-12)
    assert s.min < s.value <= s.max


@needs_ebl
def test_joint_ebl_config_checks():
    """A joint model with ebl is accepted; an analysis whose true axis leaves the table is refused."""
    from extspec.errors import ConfigError

    model = {"type": "power_law", "ebl": {"table": str(EBL_TABLE), "redshift": {"value": 0.116, "frozen": False}}}
    out = check_joint(joint_raw(j={"analyses": ["a", "b"], "model": model}))
    assert out["j"]["model"]["ebl"]["redshift"]["value"] == 0.116
    raw = joint_raw(j={"analyses": ["a", "b"], "model": model})
    raw["analyses"]["b"]["energy_axis_true"] = {"min": 0.05, "max": 200, "nbins": 30}
    with pytest.raises(ConfigError) as e:
        check_joint(raw)
    msg = str(e.value)
    assert msg.startswith("config key 'joint.j.model.ebl.table': EBL table") and "analysis b" in msg, msg
    assert "\n" not in msg
