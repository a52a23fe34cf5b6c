"""Model comparison, chi^2 / Gaussian tail conversions, MINOS errors and flux-point upper
limits against values computed independently of extspec.fit and extspec.fluxpoints.

The independent side is written here from the formulas alone: predicted counts by folding
the analytic power-law integral through each run's exposure and dispersion matrix, WStat
from its closed form (Arnaud, XSPEC manual, "W statistic"), and the likelihood profiles by
bisection and golden-section search in plain Python.  The tail probabilities are the
textbook closed forms of the chi^2 survival function for 1-4 degrees of freedom.
"""

import math

import numpy as np
import pytest

from extspec.fit import compare_models, fit_joint
from extspec.stats import chi2_sf, p_to_sigma
from extspec.workflow.settings import fit_options, flux_point_settings

PL = {"type": "power_law", "parameters": {"index": {"value": 2}, "amplitude": {"value": 2e-11}}}
FLUX_POINT_EDGES = flux_point_settings({"flux_points": {"energy_edges": [0.3, 1, 3, 10, 40]}})


# --------------------------------------------------------------- tail probabilities --


def chi2_sf_closed_form(x, k):
    """Q(k/2, x/2) for k = 1..4 in closed form."""
    if k == 1:
        return math.erfc(math.sqrt(x / 2))
    if k == 2:
        return math.exp(-x / 2)
    if k == 3:
        return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    if k == 4:
        return math.exp(-x / 2) * (1 + x / 2)
    raise ValueError(k)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.841458820694124, 9.0, 25.0, 60.0])
def test_chi2_sf_closed_forms(x, k):
    assert chi2_sf(x, k) == pytest.approx(chi2_sf_closed_form(x, k), rel=1e-10, abs=1e-300)


def test_chi2_sf_quantiles_and_edges():
    # the 95 % quantiles of chi^2 with 1 and 2 dof (tables: 3.8415, 5.9915)
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-12)
    assert chi2_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-12)
    assert chi2_sf(0.0, 3) == 1.0 and chi2_sf(-2.0, 1) == 1.0


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 5.0, 7.0])
def test_p_to_sigma_inverts_the_two_sided_tail(sigma):
    p = math.erfc(sigma / math.sqrt(2))
    assert p_to_sigma(p) == pytest.approx(sigma, rel=1e-9)


def test_p_to_sigma_known_values():
    # two-sided Gaussian tails: 1 sigma 0.3173, 2 sigma 0.0455, 3 sigma 0.0027, 5 sigma 5.733e-7
    assert p_to_sigma(0.31731050786291415) == pytest.approx(1.0, rel=1e-9)
    assert p_to_sigma(0.04550026389635842) == pytest.approx(2.0, rel=1e-9)
    assert p_to_sigma(0.0026997960632601866) == pytest.approx(3.0, rel=1e-9)
    assert p_to_sigma(5.733031437583878e-07) == pytest.approx(5.0, rel=1e-9)
    assert p_to_sigma(0.0) == math.inf and p_to_sigma(1.0) == 0.0


# ------------------------------------------------------------ independent likelihood --


def wstat_sum(n, m, a, s):
    """Sum of WStat over bins, from the closed form (profile background b >= 0)."""
    c = a * (n + m) - (1 + a) * s
    b = (c + np.sqrt(c * c + 4 * a * (1 + a) * m * s)) / (2 * a * (1 + a))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_on = np.where(n > 0, n * np.log(np.where(n > 0, s + a * b, 1.0)), 0.0)
        t_off = np.where(m > 0, m * np.log(np.where(m > 0, b, 1.0)), 0.0)
        sat = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0)) - n, 0.0) + \
            np.where(m > 0, m * np.log(np.where(m > 0, m, 1.0)) - m, 0.0)
    return float(np.sum(2 * (s + (1 + a) * b - t_on - t_off) + 2 * sat))


class Likelihood:
    """W(index, amplitude) of a power law (reference 1 TeV) over the safe bins of the runs."""

    def __init__(self, datasets):
        self.runs = []
        for d in datasets:
            e = d.energy_true.edges
            resp = np.asarray(d.exposure)[:, None] * 1e4 * np.asarray(d.edisp)  # cm^2 s per true bin x reco bin
            k = np.asarray(d.mask_safe, bool)
            alpha = np.broadcast_to(np.asarray(d.alpha, float), k.shape)
            self.runs.append((e[:-1], e[1:], resp, np.asarray(d.counts, float)[k],
                              np.asarray(d.counts_off, float)[k], alpha[k], k))

    @staticmethod
    def pl_integral(lo, hi, index, amplitude):
        g = 1.0 - index
        return amplitude * (hi**g - lo**g) / g

    def mu(self, index, amplitude, run):
        lo, hi, resp, *_, k = run
        return (self.pl_integral(lo, hi, index, amplitude) @ resp)[k]

    def __call__(self, index, amplitude):
        return sum(wstat_sum(n, m, a, self.mu(index, amplitude, r)) for r in self.runs for n, m, a in [r[3:6]])


def golden_min(f, lo, hi, tol=1e-12):
    """Minimum of a unimodal f on [lo, hi] by golden-section search: (x, f(x))."""
    g = (math.sqrt(5) - 1) / 2
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = f(c), f(d)
    while hi - lo > tol * max(1.0, abs(lo)):
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = f(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = f(d)
    x = 0.5 * (lo + hi)
    return x, f(x)


def crossing(f, inside, outside, level, n=200):
    """x between ``inside`` (f < level) and ``outside`` (f > level) with f(x) = level, by the
    Illinois variant of regula falsi (another root finder than the library's bisection)."""
    a, b = inside, outside
    fa, fb = f(a) - level, f(b) - level
    assert fa < 0 < fb
    side = 0
    for _ in range(n):
        x = (a * fb - b * fa) / (fb - fa)
        fx = f(x) - level
        if abs(fx) < 1e-10 or abs(b - a) < 1e-13 * max(1.0, abs(x)):
            return x
        if fx * fb > 0:
            b, fb = x, fx
            if side == -1:
                fa /= 2
            side = -1
        else:
            a, fa = x, fx
            if side == 1:
                fb /= 2
            side = 1
    return x


@pytest.fixture(scope="module")
def like(seed_reference):
    return Likelihood(list(seed_reference))


@pytest.fixture(scope="module")
def minos_fit(seed_reference):
    return fit_joint(list(seed_reference), PL, fit_options({"fit": {"minos": True}}))


def profile_index(like, index, amp_guess):
    """min over the amplitude of W at fixed index (the amplitude in units of amp_guess)."""
    return golden_min(lambda a: like(index, a * amp_guess), 0.5, 1.5, tol=1e-10)[1]


def test_best_fit_is_the_minimum_of_the_independent_likelihood(like, minos_fit):
    v = minos_fit.values
    w_best = like(v["index"], v["amplitude"])
    assert w_best == pytest.approx(minos_fit.total_stat, rel=1e-9)
    for di, da in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert like(v["index"] + di, v["amplitude"] * (1 + da)) > w_best


def test_minos_errors_match_an_independent_profile(like, minos_fit):
    """MINOS errors of the index: where min_amplitude W(index, amplitude) = W_min + 1."""
    p = {q.name: q for q in minos_fit.parameters}["index"]
    assert p.minos is not None
    errn, errp = p.minos
    best, amp = p.value, minos_fit.values["amplitude"]
    w_min = minos_fit.total_stat

    def prof(i):
        return profile_index(like, i, amp)

    up = crossing(prof, best, best + 5 * p.error, w_min + 1.0, n=60)
    down = crossing(prof, best, best - 5 * p.error, w_min + 1.0, n=60)
    assert errp == pytest.approx(up - best, rel=2e-3)
    assert errn == pytest.approx(down - best, rel=2e-3)
    assert errn < 0 < errp
    # and the record in result.yaml
    d = p.as_dict()
    assert (d["errn"], d["errp"]) == (errn, errp)


def test_compare_models_is_wilks_with_one_extra_parameter(seed_reference, minos_fit):
    ecpl = fit_joint(list(seed_reference), {"type": "exp_cutoff_power_law",
                                            "parameters": {"index": 2.0, "amplitude": 2e-11, "lambda_": 0.05}},
                     fit_options({}))
    assert ecpl.success
    c = compare_models(minos_fit, ecpl)
    ts = minos_fit.total_stat - ecpl.total_stat
    assert c["null"] == "power_law" and c["alternative"] == "exp_cutoff_power_law" and c["dof"] == 1
    assert c["ts"] == pytest.approx(ts, rel=1e-12) and ts >= -1e-6
    # one dof: p = erfc(sqrt(TS / 2)) and the two-sided significance is sqrt(TS)
    assert c["p_value"] == pytest.approx(math.erfc(math.sqrt(max(ts, 0) / 2)), rel=1e-9)
    assert c["significance"] == pytest.approx(math.sqrt(max(ts, 0)), rel=1e-6, abs=1e-6)
    # swapped (fewer free parameters in the alternative): no test
    back = compare_models(ecpl, minos_fit)
    assert back["dof"] == -1 and back["p_value"] is None and back["significance"] is None


def test_flux_point_upper_limits_match_an_independent_profile(seed_reference, seed_fit):
    """norm_ul of each group: above the best norm, where W(norm) - W_min = 4 (2 sigma)."""
    from extspec.fluxpoints import compute_flux_points

    rows = compute_flux_points(list(seed_reference), seed_fit, FLUX_POINT_EDGES, "exact")
    like = Likelihood(list(seed_reference))
    v = seed_fit.values
    groups = [(0, 2), (2, 5), (5, 7), (7, 10)]  # reco bins of the snapped edges 0.3, 0.80, 3.46, 9.22, 40
    for row, (j0, j1) in zip(rows, groups):
        parts = []
        for r in like.runs:
            lo, hi, resp, *_, k = r
            mu = (like.pl_integral(lo, hi, v["index"], v["amplitude"]) @ resp)
            sel = np.zeros_like(k)
            sel[j0:j1] = True
            sel &= k
            # counts of those bins, from the dataset arrays of the run
            parts.append((sel, mu[sel]))
        data = [(np.asarray(d.counts, float)[s], np.asarray(d.counts_off, float)[s],
                 np.broadcast_to(np.asarray(d.alpha, float), s.shape)[s], mu)
                for d, (s, mu) in zip(seed_reference, parts)]

        def w(norm):
            return sum(wstat_sum(n, m, a, norm * mu) for n, m, a, mu in data)

        norm_best, w_min = golden_min(w, 0.0, 5.0, tol=1e-12)
        assert row["norm"] == pytest.approx(norm_best, abs=2e-3 * max(1.0, norm_best))
        ul = crossing(w, norm_best, norm_best + 10.0, w_min + 4.0)
        assert row["norm_ul"] == pytest.approx(ul, rel=1e-4), (j0, j1)
