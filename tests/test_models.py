"""Tests of extspec.models: dnde formulas, exact bin integrals, the reference 11-point rule.

The exact integrals are checked against an independent composite Gauss-Legendre rule in
ln E (40 subintervals x 24 nodes per bin, i.e. 60 times the nodes of the library's rule),
written here from the model's dnde, and against elementary closed forms where they exist.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.polynomial.legendre import leggauss

from extspec import models
from extspec.errors import ConfigError
from extspec.models import MODELS, get_model, integral, integral_reference, reference_npts

EDGES = np.geomspace(0.05, 100, 31)  # the 30 true-energy bins of the reference
E_MIN, E_MAX = EDGES[:-1], EDGES[1:]
AMP = 1e-11

_X, _W = leggauss(24)


def quad_lnE(dnde, e_min, e_max, nsub=40):
    """Composite Gauss-Legendre integral of dnde over [e_min, e_max] (arrays), in u = ln E."""
    u1, u2 = np.log(e_min), np.log(e_max)
    t = np.linspace(0.0, 1.0, nsub + 1)
    a = u1[:, None] + (u2 - u1)[:, None] * t[:-1]  # (nbin, nsub) subinterval starts
    h = ((u2 - u1) / nsub)[:, None, None]
    u = a[:, :, None] + h * (_X + 1) / 2  # (nbin, nsub, nnode)
    energy = np.exp(u)
    return np.sum(energy * dnde(energy) * _W * h / 2, axis=(1, 2))


def max_rel(got, expected):
    return float(np.max(np.abs(got / expected - 1.0)))


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


def test_registry_names_params_defaults():
    assert list(MODELS) == ["power_law", "exp_cutoff_power_law", "log_parabola", "broken_power_law"]
    pl = MODELS["power_law"]
    assert pl.param_names == ("index", "amplitude", "reference")
    assert pl.defaults == {"index": 2.0, "amplitude": 1e-12, "reference": 1.0}
    assert pl.frozen_default == {"reference"}
    ecpl = MODELS["exp_cutoff_power_law"]
    assert ecpl.param_names == ("index", "amplitude", "reference", "lambda_", "alpha")
    assert ecpl.defaults == {
        "index": 2.0, "amplitude": 1e-12, "reference": 1.0, "lambda_": 0.1, "alpha": 1.0,
    }
    assert ecpl.frozen_default == {"reference", "alpha"}
    assert ecpl.units["lambda_"] == "TeV-1"
    lp = MODELS["log_parabola"]
    assert lp.param_names == ("alpha", "beta", "amplitude", "reference")
    assert lp.defaults == {"alpha": 2.0, "beta": 0.1, "amplitude": 1e-12, "reference": 1.0}
    bpl = MODELS["broken_power_law"]
    assert bpl.param_names == ("index1", "index2", "amplitude", "ebreak")
    assert bpl.defaults == {"index1": 2.0, "index2": 3.0, "amplitude": 1e-12, "ebreak": 1.0}
    for m in MODELS.values():
        assert m.name in MODELS and MODELS[m.name] is m
        assert set(m.units) == set(m.param_names) == set(m.defaults)
        assert m.units["amplitude"] == "cm-2 s-1 TeV-1"
        assert m.frozen_default <= set(m.param_names)
        # default parameters give finite positive integrals
        assert np.all(m.integral(E_MIN, E_MAX, **m.defaults) > 0)


def test_unknown_model_raises_config_error_listing_names():
    with pytest.raises(ConfigError) as err:
        get_model("powerlaw")
    msg = str(err.value)
    assert "\n" not in msg and "'powerlaw'" in msg
    for name in MODELS:
        assert name in msg
    with pytest.raises(ConfigError, match="broken_power_law"):
        integral("cutoff", E_MIN, E_MAX, {}, "exact")
    assert get_model("log_parabola") is MODELS["log_parabola"]


def test_bad_params_and_method_raise_config_error():
    with pytest.raises(ConfigError, match="'gamma'"):
        integral("power_law", E_MIN, E_MAX, {"gamma": 2.0, "amplitude": AMP}, "exact")
    with pytest.raises(ConfigError, match="missing parameter.*index"):
        integral("power_law", E_MIN, E_MAX, {"amplitude": AMP}, "exact")
    with pytest.raises(ConfigError, match="method"):
        integral("power_law", E_MIN, E_MAX, {"index": 2.0, "amplitude": AMP}, method="trapz")
    # frozen-by-default parameters are filled from the defaults
    params = {"index": 2, "amplitude": AMP, "lambda_": 0.1}
    a = integral("exp_cutoff_power_law", E_MIN, E_MAX, params, "exact")
    b = models.ecpl_integral(E_MIN, E_MAX, 2.0, AMP, 0.1, reference=1.0, alpha=1.0)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# dnde
# ---------------------------------------------------------------------------------------


def test_dnde_values():
    p = {"index": 2.0, "amplitude": AMP}
    np.testing.assert_allclose(
        models.dnde("power_law", [1.0, 2.0, 10.0], p), [1e-11, 2.5e-12, 1e-13], rtol=1e-15
    )
    np.testing.assert_allclose(
        models.dnde("power_law", 4.0, {"index": 2.5, "amplitude": AMP, "reference": 2.0}),
        AMP * 2.0**-2.5, rtol=1e-15,
    )
    ecpl = {"index": 2.0, "amplitude": AMP, "lambda_": 0.1}
    np.testing.assert_allclose(
        models.dnde("exp_cutoff_power_law", [1.0, 10.0], ecpl),
        [AMP * math.exp(-0.1), AMP * 0.01 * math.exp(-1.0)], rtol=1e-15,
    )
    np.testing.assert_allclose(  # alpha_c = 2: exp(-(lambda E)^2)
        MODELS["exp_cutoff_power_law"].dnde(5.0, index=1.5, amplitude=AMP, lambda_=0.1, alpha=2.0),
        AMP * 5.0**-1.5 * math.exp(-0.25), rtol=1e-15,
    )
    lp = {"alpha": 2.0, "beta": 0.1, "amplitude": AMP}
    np.testing.assert_allclose(  # x = ln E: phi = amp exp(-alpha x - beta x^2)
        models.dnde("log_parabola", [1.0, math.e, 10.0], lp),
        [AMP, AMP * math.exp(-2.1), AMP * math.exp(-2 * math.log(10) - 0.1 * math.log(10) ** 2)],
        rtol=1e-14,
    )
    bpl = {"index1": 2.0, "index2": 3.0, "amplitude": AMP, "ebreak": 1.0}
    np.testing.assert_allclose(
        models.dnde("broken_power_law", [0.5, 1.0, 2.0], bpl), [4 * AMP, AMP, AMP / 8], rtol=1e-15
    )


# ---------------------------------------------------------------------------------------
# Exact integrals
# ---------------------------------------------------------------------------------------


def test_power_law_analytic_value():
    got = float(models.power_law_integral(1.0, 10.0, index=2.0, amplitude=1e-11))
    assert got == pytest.approx(9e-12, rel=1e-15)
    # index exactly 1: the log branch amp * E0 * ln(E2/E1)
    got = models.power_law_integral(E_MIN, E_MAX, index=1.0, amplitude=AMP, reference=2.0)
    np.testing.assert_allclose(got, AMP * 2.0 * np.log(E_MAX / E_MIN), rtol=1e-15)


@pytest.mark.parametrize("index", [1.0, 1.0 + 1e-12, 1.0 + 1e-7, 2.0, 2.7, -0.5])
def test_power_law_integral_vs_quadrature(index):
    got = models.power_law_integral(E_MIN, E_MAX, index, AMP, reference=1.3)
    ref = quad_lnE(lambda e: models.power_law_dnde(e, index, AMP, 1.3), E_MIN, E_MAX)
    if index == 1.0 + 1e-12:
        # np.isclose(1 - index, 0): the spec's ln branch, off by ~|1 - index| ln(E/E0)
        assert 1e-13 < max_rel(got, ref) < 1e-11
    else:
        assert max_rel(got, ref) < 1e-12


ECPL_CASES = [
    # (index, lambda_, alpha): s = (1 - index)/alpha = 0, < 0, > 0, and alpha_c != 1
    (1.0, 0.1, 1.0),
    (1.0, 1.0, 1.0),
    (2.0, 0.1, 1.0),
    (2.5, 0.1, 1.0),
    (2.5, 1.0, 1.0),
    (1.5, 0.247356, 1.0),
    (0.0, 1.0, 1.0),
    (3.0, 0.3, 2.0),
    (2.0, 0.5, 0.5),
]


@pytest.mark.parametrize("index,lam,alpha", ECPL_CASES)
def test_ecpl_integral_vs_quadrature(index, lam, alpha):
    got = models.ecpl_integral(E_MIN, E_MAX, index, AMP, lam, reference=1.0, alpha=alpha)
    ref = quad_lnE(lambda e: models.ecpl_dnde(e, index, AMP, lam, 1.0, alpha), E_MIN, E_MAX)
    assert np.all(ref > 0)
    assert max_rel(got, ref) < 1e-12


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0])
def test_ecpl_integral_vs_elementary_closed_forms(lam):
    # index 0, alpha 1 (s = 1): amp/lambda [exp(-lambda E1) - exp(-lambda E2)]
    got = models.ecpl_integral(E_MIN, E_MAX, 0.0, AMP, lam)
    exact = -AMP / lam * np.exp(-lam * E_MIN) * np.expm1(-lam * (E_MAX - E_MIN))
    assert max_rel(got, exact) < 1e-13
    # index -1, alpha 2 (s = 1): amp/(2 lambda^2) [exp(-(lambda E1)^2) - exp(-(lambda E2)^2)]
    got = models.ecpl_integral(E_MIN, E_MAX, -1.0, AMP, lam, alpha=2.0)
    exact = (
        -AMP / (2 * lam**2)
        * np.exp(-((lam * E_MIN) ** 2))
        * np.expm1(-(lam**2) * (E_MAX**2 - E_MIN**2))
    )
    ok = exact > 1e-300
    assert max_rel(got[ok], exact[ok]) < 1e-12


def test_ecpl_lambda_zero_is_power_law_and_reversed_bins():
    np.testing.assert_array_equal(
        models.ecpl_integral(E_MIN, E_MAX, 2.2, AMP, 0.0),
        models.power_law_integral(E_MIN, E_MAX, 2.2, AMP),
    )
    fwd = models.ecpl_integral(E_MIN, E_MAX, 2.0, AMP, 0.3)
    np.testing.assert_allclose(models.ecpl_integral(E_MAX, E_MIN, 2.0, AMP, 0.3), -fwd, rtol=1e-15)
    # any array shape
    got = models.ecpl_integral(E_MIN.reshape(5, 6), E_MAX.reshape(5, 6), 2.0, AMP, 0.3)
    assert got.shape == (5, 6)
    np.testing.assert_array_equal(got.ravel(), fwd)


@pytest.mark.parametrize(
    "alpha,beta", [(1.7, 0.3), (2.0, 0.1), (2.0, 1e-3), (3.0, 1e-6), (1.0, 2.0), (2.5, -0.05)]
)
def test_log_parabola_integral_vs_quadrature(alpha, beta):
    got = models.log_parabola_integral(E_MIN, E_MAX, alpha, beta, AMP, reference=1.0)
    ref = quad_lnE(lambda e: models.log_parabola_dnde(e, alpha, beta, AMP, 1.0), E_MIN, E_MAX)
    assert max_rel(got, ref) < 1e-12


def test_log_parabola_special_cases():
    # reference != 1, narrow bins (cancellation fallback) and beta = 0 (power law)
    e1 = np.geomspace(0.1, 50, 12)
    e2 = e1 * (1 + 1e-6)
    got = models.log_parabola_integral(e1, e2, 1.7, 0.3, AMP, reference=2.0)
    ref = quad_lnE(lambda e: models.log_parabola_dnde(e, 1.7, 0.3, AMP, 2.0), e1, e2, nsub=2)
    assert max_rel(got, ref) < 1e-12
    np.testing.assert_array_equal(
        models.log_parabola_integral(E_MIN, E_MAX, 2.3, 0.0, AMP),
        models.power_law_integral(E_MIN, E_MAX, 2.3, AMP),
    )


@pytest.mark.parametrize("ebreak", [1.3, float(EDGES[12]), 0.01, 500.0])
def test_broken_power_law_integral(ebreak):
    p = dict(index1=1.8, index2=3.1, amplitude=AMP, ebreak=ebreak)
    got = models.broken_power_law_integral(E_MIN, E_MAX, **p)
    # independent reference: quadrature of dnde on each side of the break separately
    def f(e):
        return models.broken_power_law_dnde(e, **p)

    below = quad_lnE(f, np.minimum(E_MIN, ebreak), np.minimum(E_MAX, ebreak))
    above = quad_lnE(f, np.maximum(E_MIN, ebreak), np.maximum(E_MAX, ebreak))
    assert max_rel(got, below + above) < 1e-12
    if ebreak == 1.3:  # bin 12 = [1.0456, 1.3472] contains the break: split by hand
        i = 12
        assert E_MIN[i] < ebreak < E_MAX[i]
        manual = models.power_law_integral(E_MIN[i], ebreak, 1.8, AMP, ebreak)
        manual += models.power_law_integral(ebreak, E_MAX[i], 3.1, AMP, ebreak)
        assert got[i] == pytest.approx(float(manual), rel=1e-14)


# ---------------------------------------------------------------------------------------
# The reference's 11-point rule ([REF-QUIRK], spec 12.2)
# ---------------------------------------------------------------------------------------


def test_reference_npts():
    assert reference_npts(E_MIN, E_MAX) == 11
    assert reference_npts([1.0], [1.01]) == 2  # floor of 2 points
    assert reference_npts([1.0, 1.0], [10.0, 2.0]) == 100


@pytest.mark.parametrize(
    "name,params",
    [
        ("power_law", {"index": 2.3, "amplitude": AMP}),
        ("broken_power_law", {"index1": 2.0, "index2": 3.0, "amplitude": AMP, "ebreak": 1.3}),
    ],
)
def test_reference_rule_equals_exact_for_power_laws(name, params):
    ref = integral(name, E_MIN, E_MAX, params, method="reference")
    exact = integral(name, E_MIN, E_MAX, params, "exact")
    assert max_rel(ref, exact) < 1e-12


def test_reference_rule_ecpl_deviation():
    p = {"index": 2.0, "amplitude": AMP, "lambda_": 0.1}
    ref = integral_reference("exp_cutoff_power_law", E_MIN, E_MAX, **p)
    exact = integral("exp_cutoff_power_law", E_MIN, E_MAX, p, "exact")
    dev = ref / exact - 1
    # spec: "off by up to 4.5e-4"; measured 4.502e-4 in the top bin, the reference is low
    assert np.all(dev < 0)
    assert 4.45e-4 < np.max(np.abs(dev)) < 4.55e-4
    assert np.argmax(np.abs(dev)) == 29
    assert np.max(np.abs(dev)) > 1e-6 and np.min(np.abs(dev)) < 1e-6


def test_reference_rule_log_parabola_deviation():
    # log-log chords of exp(-beta x^2): relative deficit 2 beta delta^2 / 12 in every bin
    delta = math.log(EDGES[1] / EDGES[0]) / 10
    for beta, bound in [(0.1, 2e-5), (0.3, 3.3e-5)]:
        p = {"alpha": 2.0, "beta": beta, "amplitude": AMP}
        ref = integral("log_parabola", E_MIN, E_MAX, p, method="reference")
        dev = ref / integral("log_parabola", E_MIN, E_MAX, p, "exact") - 1
        assert np.max(np.abs(dev)) <= bound
        np.testing.assert_allclose(dev, -2 * beta * delta**2 / 12, rtol=1e-3)


def test_reference_rule_single_segment_by_hand():
    # ratio 1.01 -> 2 samples: one power law through the end points (logarithmic mean)
    e1, e2 = 1.0, 1.01
    f = lambda e: models.log_parabola_dnde(e, 1.7, 0.3, AMP, 1.0)  # noqa: E731
    a, b = f(e1) * e1, f(e2) * e2
    expected = (b - a) / math.log(b / a) * math.log(e2 / e1)
    got = integral_reference("log_parabola", [e1], [e2], alpha=1.7, beta=0.3, amplitude=AMP)
    assert got[0] == pytest.approx(expected, rel=1e-13)


def test_reference_rule_zero_samples():
    # exp(-(lambda E)) underflows to 0 inside/above these bins: finite, non-negative, 0 if all 0
    p = {"index": 2.0, "amplitude": AMP, "lambda_": 1.0}
    got = integral_reference("exp_cutoff_power_law", [600.0, 2000.0], [900.0, 3000.0], **p)
    assert np.all(np.isfinite(got))
    assert got[0] > 0.0 and got[1] == 0.0


def test_model_spec_built_from_the_validated_config():
    """settings.model_spec: the typed, frozen model of a validated config (parameters as given,
    the EBL table handed in); the fit reads it exactly as the model mapping it came from."""
    import dataclasses

    from extspec.ebl import EBLAbsorption, ebl_parameters, spectral_model
    from extspec.fit import model_parameters
    from extspec.model_spec import ModelSpec, ParameterSpec, as_model_spec
    from extspec.workflow.settings import model_spec

    table = str(Path(__file__).resolve().parents[2] / "shared/data/ebl/ebl_dominguez11.fits.gz")
    if not Path(table).exists():
        pytest.skip(f"no EBL table at {table}")
    block = {"type": "log_parabola", "parameters": {"alpha": {"value": 2.3, "min": 1.0, "max": 4.0},
                                                    "reference": 1.0},
             "ebl": {"table": table, "redshift": {"value": 0.1, "frozen": False}, "alpha_norm": 1.0}}
    spec = model_spec(block)
    assert isinstance(spec, ModelSpec) and spec.type == "log_parabola"
    assert spec.given() == {"alpha": ParameterSpec(2.3, 1.0, 4.0, None, None),
                            "reference": ParameterSpec(1.0, None, None, None, None)}
    assert isinstance(spec.ebl.table, EBLAbsorption) and spec.ebl.redshift.frozen is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.type = "power_law"
    z = ebl_parameters(spec)["redshift"]  # a free redshift gets the table's grid as bounds
    assert z.min == float(spec.ebl.table.redshift[0]) and z.max == float(spec.ebl.table.redshift[-1])
    _, params = model_parameters(spec)
    by = {p.name: p for p in params}
    assert (by["alpha"].value, by["alpha"].min, by["alpha"].max, by["alpha"].frozen) == (2.3, 1.0, 4.0, False)
    assert by["reference"].frozen and by["amplitude"].start_from_data and not by["redshift"].frozen
    assert spectral_model(spec).param_names[-2:] == ("redshift", "alpha_norm")
    # the adapter (a model mapping with its table handed, as a fit result's read back) gives the same spec
    handed = {**block, "ebl": {**block["ebl"], "table": spec.ebl.table}}
    assert as_model_spec(handed) == spec and as_model_spec(spec) is spec
    assert as_model_spec("power_law") == ModelSpec("power_law", (), None)
