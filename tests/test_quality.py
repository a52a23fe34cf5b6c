"""The quality gate (extspec.quality, issue 27): one vocabulary of statuses for every fit.

Unit checks of each test of the gate on statistics written here, then the fits that used to
be reported "ok" although wrong: an empty field, a joint fit of two different sources, a
joint nuisance pinned at its bound.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml

from extspec.fit import Parameter
from extspec.quality import STATUSES, judge

# ------------------------------------------------------------------------ the checks --


def _parabola(centre, sigma=1.0):
    return lambda v: ((v["x"] - centre) / sigma) ** 2


def test_a_real_minimum_is_ok_and_a_stopped_point_is_not():
    p = Parameter("x", value=1.0, error=1.0)
    v = judge(success=True, params=[p], stat=_parabola(1.0), best_stat=0.0)
    assert v.status == "ok" and v.flags == () and v.checks["minimum"]["drop"]["x"] == pytest.approx(-0.25)
    p = Parameter("x", value=0.0, error=1.0)  # the minimum is at 1: W drops by 0.75 at x = 0.5
    v = judge(success=True, params=[p], stat=_parabola(1.0), best_stat=1.0)
    assert v.status == "not_a_minimum" and v.parameters == {"x": ("not_a_minimum",)}
    assert v.checks["minimum"]["drop"]["x"] == pytest.approx(0.75)


def test_a_parameter_within_its_error_of_a_bound_is_a_limit():
    p = Parameter("index", value=5.6, error=0.5, max=6.0)
    v = judge(success=True, params=[p], stat=None)
    assert v.status == "at_bound" and v.parameters == {"index": ("at_max",)} and "a limit" in v.reason
    p = Parameter("index", value=5.0, error=0.5, max=6.0)
    assert judge(success=True, params=[p]).status == "ok"


def test_an_error_beyond_the_range_of_meaning_is_unconstrained():
    p = Parameter("index", value=2.66, error=4349.0)
    v = judge(success=True, params=[p, Parameter("amplitude", value=1e-12, error=1e-10)])
    assert v.status == "unconstrained" and v.parameters == {"index": ("unconstrained",)}
    assert v.checks["parameters"]["range_of_meaning"] == {"index": 6.0, "amplitude": None}
    p = Parameter("index", value=2.66, error=float("nan"))  # no error at all: not constrained either
    assert judge(success=True, params=[p]).status == "unconstrained"


def test_statuses_order_and_detection():
    p = Parameter("index", value=2.66, error=4349.0)
    v = judge(success=True, params=[p], ts=1.2, ts_min=9.0, goodness_of_fit={"poor": True, "warning": "poor fit: x"})
    assert v.status == "not_detected" and v.flags == ("not_detected", "unconstrained", "poor_fit")
    assert v.checks["detection"]["ts"] == 1.2 and v.checks["detection"]["ts_min"] == 9.0
    assert judge(success=False, message="MIGRAD failed", ts=30.0, ts_min=9.0).status == "failed"
    assert judge(success=False, message="HESSE failed", ts=0.5, ts_min=9.0).flags == ("not_detected", "failed")
    assert STATUSES[-1] == "ok" and STATUSES[0] == "failed"


# ---------------------------------------------------------- defect 6: an empty field --


@pytest.fixture(scope="module")
def empty_field(tmp_path_factory):
    """Two simulated runs with background only, reduced by the library."""
    from extspec.simulate import simulate_datastore, wobble_pointings
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation

    base = tmp_path_factory.mktemp("empty")
    store = simulate_datastore(base / "store", wobble_pointings(83.63, 22.01, 2, 0.5), None, livetime=1800.0)
    raw = {"name": "empty", "datastore": str(store), "obs_ids": [1, 2], "on_region": "icrs;circle(83.63,22.01,0.2)",
           "geom": {"width": [2.0, 2.0], "frame": "icrs"}}
    cfg = load_config(raw)
    dirs = []
    for o in (1, 2):
        reduce_observation(stage_config(cfg, "reduce"), store, o, base / "obs" / str(o))
        dirs.append(base / "obs" / str(o))
    return {"base": base, "cfg": cfg, "dirs": dirs}


def test_empty_field_is_not_detected_with_an_upper_limit(empty_field, tmp_path):
    from extspec.workflow.summary_step import write_summary
    from extspec.workflow.pipeline import run_fit

    out = tmp_path / "results" / "empty" / "fit"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning may leak
        run_fit(empty_field["cfg"], empty_field["dirs"], out / "result.yaml", out / "spectrum.png")
    res = yaml.safe_load((out / "result.yaml").read_text())
    assert res["status"] == "not_detected", res["quality"]
    assert res["quality"]["checks"]["detection"]["ts"] < 9.0 and res["quality"]["checks"]["detection"]["ts_min"] == 9.0
    ul = res["upper_limit"]
    assert 0 < ul["flux_ul"] < 1e-10 and ul["unit"] == "cm-2 s-1" and "95 %" in ul["confidence"]
    rows = write_summary(tmp_path / "results", ["empty"], tmp_path / "s.ecsv", tmp_path / "s.html")
    assert rows[0]["status"] == "not detected" and rows[0]["flux_ul"] == pytest.approx(ul["flux_ul"])
    assert rows[0]["parameters"] == "none measured (not detected: see flux_ul)"  # no fit of noise quoted
    assert np.isnan(rows[0]["flux_above_1tev"])


def test_detection_threshold_is_a_config_key(empty_field, tmp_path):
    from extspec.workflow.pipeline import run_fit

    cfg = {**empty_field["cfg"], "fit": {**empty_field["cfg"]["fit"], "detection_ts_min": 4.0}}
    out = tmp_path / "fit"
    run_fit(cfg, empty_field["dirs"], out / "result.yaml", out / "spectrum.png")
    res = yaml.safe_load((out / "result.yaml").read_text())
    assert res["status"] == "not_detected" and res["quality"]["checks"]["detection"]["ts_min"] == 4.0
    assert "< 4" in res["quality"]["reason"]


# ------------------------------------------------ defects 4 and 5: joint fits judged --


def test_joint_fit_of_two_different_sources_is_flagged():
    from test_joint import NONE, OPTS, START, TRUTH, instruments

    from extspec.fit import JointData
    from extspec.joint import Instrument, fit_instruments

    same_a, same_b = instruments(5)
    ok = fit_instruments([Instrument("a", JointData(same_a), NONE), Instrument("b", JointData(same_b), NONE)],
                         START, OPTS)
    assert ok.result.status == "ok", ok.result.quality
    assert ok.result.goodness_of_fit["consistency"]["b"]["p_value"] > 1e-3
    runs_a, runs_b = instruments(5, truth_b={**TRUTH, "index": 3.3, "amplitude": 1.0e-10})
    jf = fit_instruments([Instrument("a", JointData(runs_a), NONE), Instrument("b", JointData(runs_b), NONE)],
                         START, OPTS)
    assert jf.result.success  # MIGRAD is happy ...
    assert jf.result.status == "poor_fit", jf.result.quality  # ... the gate is not
    cons = jf.result.goodness_of_fit["consistency"]
    assert cons["a"]["delta_stat"] > 20 and cons["a"]["p_value"] < 1e-3 and "disagrees" in cons["a"]["warning"]
    assert set(jf.result.goodness_of_fit["per_analysis"]) == {"a", "b"}


@pytest.mark.skipif("not __import__('test_joint').EBL_TABLE.is_file()")
def test_joint_nuisance_at_its_bound_is_flagged():
    """B's flux 20 % low with only an energy-scale nuisance (prior 0.2): the scale wants +0.16,
    the EBL table's end allows +0.007: it sits at its bound, a limit, not a measurement."""
    from test_joint import ebl_model, template, TRUTH

    from extspec.fit import JointData
    from extspec.geometry import make_energy_axis
    from extspec.joint import Instrument, Systematics, fit_instruments
    from extspec.simulate import simulate_onoff

    rng = np.random.default_rng(3)
    true = (0.03, 100.0, 40)
    a = template(0, make_energy_axis(0.3, 40.0, 12), 1e5, 0.4, 0.10, true=true)
    b = template(0, make_energy_axis(0.08, 20.0, 15), 2e4, 0.1, 0.20, true=true)
    truth = {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}
    runs_a = [simulate_onoff(a, ebl_model(), truth, rng, obs_id=100 + k) for k in range(2)]
    runs_b = [simulate_onoff(b, ebl_model(), {**truth, "amplitude": 0.8 * TRUTH["amplitude"]}, rng, obs_id=200 + k)
              for k in range(2)]
    from test_joint import OPTS

    jf = fit_instruments([Instrument("a", JointData(runs_a), Systematics(None, None)),
                          Instrument("b", JointData(runs_b), Systematics(energy_scale=0.2, norm=None))],
                         ebl_model(), OPTS)
    scale = next(p for p in jf.nuisance if p.name == "b.energy_scale")
    assert scale.max is not None and scale.max < 0.01 and scale.value == pytest.approx(scale.max, abs=1e-4)
    assert "at_max" in jf.result.quality.parameters["b.energy_scale"]
    assert "at_bound" in jf.result.quality.flags and jf.result.status != "ok"
    assert jf.systematics_dict()["b"]["energy_scale"]["flags"] == ["at_max"]


# ------------------------------------------------- defect 9: messages that say what is wrong --


@pytest.mark.parametrize("table, says", [
    ("franceschini08", "EBL table franceschini08: no such file, and not one of the tables known by name (dominguez11)"),
    ("DIR", "is a directory, not a table file (give the file, or one of the tables known by name: dominguez11)"),
])
def test_ebl_table_messages_say_what_is_wrong(tmp_path, table, says):
    from extspec.errors import ConfigError
    from extspec.workflow.basics import check_model

    table = str(tmp_path) if table == "DIR" else table
    with pytest.raises(ConfigError) as exc:
        check_model({"type": "power_law", "ebl": {"table": table, "redshift": 0.1}}, "model", False)
    msg = str(exc.value)
    assert msg.startswith("config key 'model.ebl.table': EBL table ") and says in msg and "\n" not in msg


def test_joint_of_one_analysis_says_two_are_needed():
    from test_joint import check_joint, joint_raw

    from extspec.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        check_joint(joint_raw(j={"analyses": ["a"], "model": {"type": "power_law"}}))
    assert str(exc.value) == "config key 'joint.j.analyses': needs at least 2 entries, got 1: [\"a\"]"


def test_model_comparison_carries_the_alternatives_verdict():
    from test_joint import OPTS, START, instruments

    from extspec.fit import JointData, compare_models, fit_joint

    runs_a, _ = instruments(7)
    data = JointData(runs_a)
    null = fit_joint(runs_a, START, OPTS, data=data)
    alt = fit_joint(runs_a, {"type": "exp_cutoff_power_law", "parameters": {"index": 2.2, "lambda_": 0.05}}, OPTS,
                    data=data)
    c = compare_models(null, alt)
    assert null.status == "ok" and c["alternative_status"] == alt.status
    assert c["alternative_quality"]["status"] == alt.status and "checks" in c["alternative_quality"]
    # a power law has no cutoff: lambda_ is consistent with 0 within errors, at most a limit
    assert c["ts"] < 9


def test_joint_fit_of_nothing_is_not_detected_with_an_upper_limit():
    import dataclasses

    from test_joint import NONE, OPTS, START, instruments

    from extspec.fit import JointData
    from extspec.joint import Instrument, fit_instruments

    runs_a, runs_b = instruments(9, truth={"index": 2.5, "amplitude": 1e-18, "reference": 1.0})
    rng = np.random.default_rng(9)  # ON counts of the background alone
    noise = [[dataclasses.replace(r, counts=rng.poisson(r.alpha * r.counts_off)) for r in runs] for runs in
             (runs_a, runs_b)]
    jf = fit_instruments([Instrument("a", JointData(noise[0]), NONE), Instrument("b", JointData(noise[1]), NONE)],
                         START, OPTS)
    assert jf.result.status == "not_detected", jf.result.quality
    ul = jf.result.upper_limit
    assert 0 < ul["flux_ul"] and ul["e_min"] == pytest.approx(jf.result.energy_range[0]) and "nuisances" in ul["shape"]
