"""EBL absorption: the XSPEC table reader, the interpolation, the absorbed integrals, the fit.

Check values are computed here from the table itself, read with astropy.io.fits directly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from extspec.ebl import EBL_PARAMS, absorbed_model, spectral_model
from extspec.io.ebl_table import read_ebl_table, with_ebl_table
from extspec.errors import ConfigError, ExtspecError, FormatError
from extspec.fit import fit_joint
from extspec.geometry import make_energy_axis
from extspec.io.fitresult import read_fit_result, write_fit_result
from extspec.io.xspec_table import read_xspec_table
from extspec.models import get_model
from extspec.simulate import simulate_onoff
from extspec.spectrum import SpectrumDataset
from extspec.workflow.settings import fit_options, flux_point_settings

FIT = fit_options({})  # the schema's defaults: MIGRAD + HESSE, exact integration


def _points(edges):
    """Flux-point settings with these group edges (the schema's n_sigma_ul)."""
    return flux_point_settings({"flux_points": {"energy_edges": edges}})


TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ebl" / "ebl_dominguez11.fits.gz"
pytestmark = pytest.mark.skipif(not TABLE.is_file(), reason=f"no EBL table at {TABLE}")


@pytest.fixture(scope="module")
def raw():
    """The table as astropy reads it: redshift grid, edges in TeV, exp(-tau) (float64)."""
    from astropy.io import fits

    with fits.open(TABLE) as h:
        z = np.asarray(h["PARAMETERS"].data["VALUE"][0], float)
        lo = np.asarray(h["ENERGIES"].data["ENERG_LO"], float) * 1e-9
        hi = np.asarray(h["ENERGIES"].data["ENERG_HI"], float) * 1e-9
        v = np.asarray(h["SPECTRA"].data["INTPSPEC"], float)
        pv = np.asarray(h["SPECTRA"].data["PARAMVAL"], float)
    return {"z": z, "lo": lo, "hi": hi, "v": v, "pv": pv}


def test_reader_matches_astropy(raw):
    t = read_xspec_table(TABLE)
    assert t.param_name == "REDSHIFT" and t.name == "dominguez11"
    np.testing.assert_array_equal(t.param_values, raw["z"])
    np.testing.assert_allclose(t.energy_edges, np.append(raw["lo"], raw["hi"][-1]), rtol=1e-15)
    np.testing.assert_array_equal(t.values, raw["v"])
    assert t.values.shape == (399, 500)
    assert t.sha256 == "840a6d23cb03feeacd5d95ab18c70fd73a4240d5f8518e859d9ab6b9f0b2c7b1"


def test_interpolation_at_grid_points_and_midpoints(raw):
    a = read_ebl_table(TABLE)
    centres = np.sqrt(raw["lo"] * raw["hi"])
    i, k = 11, 300  # z = 0.12, E ~ 1 TeV
    v = raw["v"]
    # grid redshift, bin centre: exp(-tau) is the table value
    np.testing.assert_allclose(a.absorption(centres[k], raw["z"][i]), v[i, k], rtol=1e-12)
    # (a 0 of the table, float32 underflow, reads as float32's smallest normal number)
    np.testing.assert_allclose(a.absorption(centres[::37], raw["z"][i]), v[i, ::37], rtol=1e-12, atol=1.2e-38)
    # redshift midway between grid points: tau between its neighbours', close to linear in z
    # (a monotone cubic through the grid: smooth in z, test_free_redshift_* below)
    zm = 0.5 * (raw["z"][i] + raw["z"][i + 1])
    t_i, t_j = -math.log(v[i, k]), -math.log(v[i + 1, k])
    assert t_i < a.tau(centres[k], zm) < t_j
    np.testing.assert_allclose(a.tau(centres[k], zm), 0.5 * (t_i + t_j), rtol=2e-3)
    # energy midway (in ln E) between two bin centres: tau linear in ln E
    em = math.sqrt(centres[k] * centres[k + 1])
    tau_mid = 0.5 * (-math.log(v[i, k]) - math.log(v[i, k + 1]))
    np.testing.assert_allclose(a.tau(em, raw["z"][i]), tau_mid, rtol=1e-12)
    # alpha_norm scales tau
    np.testing.assert_allclose(a.absorption(em, raw["z"][i], 0.7), math.exp(-0.7 * tau_mid), rtol=1e-12)
    assert a.absorption(em, raw["z"][i], 0.0) == 1.0
    # between the last centre and the table edge tau is held
    z3 = raw["z"][100]  # z = 1.01: the last bins are absorbed completely (0 in float32)
    assert v[100, -1] == 0.0
    assert a.tau(raw["hi"][-1], z3) == pytest.approx(87.336544750553)
    assert 0 < a.tau(centres[200], z3) < 87


def test_redshift_and_energy_outside_the_table():
    a = read_ebl_table(TABLE)
    with pytest.raises(ConfigError, match=r"config key 'model.ebl.redshift': redshift 4.5 outside the EBL table .*"
                                          r"ebl_dominguez11.fits.gz \(its grid covers z = 0.01 .. 3.99\)"):
        a.check_redshift(4.5)
    with pytest.raises(ExtspecError, match="redshift 0.001 outside its grid"):
        a.tau(1.0, 0.001)
    m = absorbed_model("power_law", a, 0.1, 1.0)
    with pytest.raises(ExtspecError, match=r"covers 0.0009887 .. 100.7 TeV; the model integral over 50 .. 200 TeV"):
        m.integral(np.array([50.0]), np.array([200.0]), index=2.0, amplitude=1e-11, reference=1.0,
                   redshift=0.1, alpha_norm=1.0)


def _write_variant(tmp_path, edit, name="bad.fits"):
    from astropy.io import fits

    out = tmp_path / name
    with fits.open(TABLE, memmap=False) as hdul:
        for hdu in hdul[1:]:
            hdu.data  # noqa: B018 -- load every table (and the heap) before editing
        edit(hdul)
        hdul.writeto(out)
    return out


def _drop_column(ext, col):
    def edit(h):
        from astropy.io import fits

        t = h[ext]
        cols = [c for c in t.columns if c.name != col]
        h[ext] = fits.BinTableHDU.from_columns(cols, header=t.header, name=ext)
    return edit


def _reverse_energies(h):
    h["ENERGIES"].data["ENERG_LO"][:] = h["ENERGIES"].data["ENERG_LO"][::-1]
    h["ENERGIES"].data["ENERG_HI"][:] = h["ENERGIES"].data["ENERG_HI"][::-1]


def _shuffle_redshift(h):
    v = np.array(h["PARAMETERS"].data["VALUE"][0])
    v[[3, 4]] = v[[4, 3]]
    h["PARAMETERS"].data["VALUE"][0][:] = v


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.pop(3), "not an XSPEC table model (OGIP/92-009): missing extension 'SPECTRA'"),
    (lambda h: h.pop(2), "missing extension 'ENERGIES'"),
    (_drop_column("ENERGIES", "ENERG_HI"), "missing column 'ENERG_HI' in extension 'ENERGIES'"),
    (_drop_column("SPECTRA", "INTPSPEC"), "missing column 'INTPSPEC' in extension 'SPECTRA'"),
    (_reverse_energies, "ENERGIES bins are not contiguous increasing edges"),
    (_shuffle_redshift, "the REDSHIFT grid (column 'VALUE' of 'PARAMETERS') does not increase strictly"),
    (lambda h: h["SPECTRA"].data["INTPSPEC"].__setitem__((5, 7), 1.5), "values must lie in [0, 1]"),
    (lambda h: h["SPECTRA"].data["PARAMVAL"].__setitem__(2, 9.0),
     "PARAMVAL of 'SPECTRA' differs from the REDSHIFT grid"),
])
def test_bad_tables_one_line(tmp_path, edit, message):
    bad = _write_variant(tmp_path, edit)
    with pytest.raises(FormatError) as err:
        read_xspec_table(bad)
    text = str(err.value)
    assert "\n" not in text and str(bad) in text and message in text, text


def test_not_a_fits_file(tmp_path):
    bad = tmp_path / "ebl.fits"
    bad.write_text("not fits")
    with pytest.raises(FormatError, match=rf"{bad}: not a readable FITS file"):
        read_xspec_table(bad)
    with pytest.raises(FormatError, match=rf"{tmp_path / 'missing.fits'}: no such file|cannot read it"):
        read_ebl_table(tmp_path / "missing.fits")


def test_named_table_fetched_once_with_pinned_sha256(tmp_path, monkeypatch):
    """``table: dominguez11`` fetches the public table (here from a file:// URL) into
    data/ebl/, checked against the pinned SHA-256; a wrong digest installs nothing."""
    from extspec.errors import DataStoreError
    from extspec.io import ebl_table as ebl
    from extspec.workflow.config import validate_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAMMAPY_DATA", raising=False)
    sha = ebl.NAMED_TABLES["dominguez11"][1]
    monkeypatch.setitem(ebl.NAMED_TABLES, "dominguez11", (TABLE.as_uri(), sha))
    cfg = validate_config({"name": "x", "external_spectra": ["pha.fits"],
                           "model": {"type": "power_law", "ebl": {"table": "dominguez11", "redshift": 0.116}}},
                          check_datastore=False)
    dest = tmp_path / "data" / "ebl" / "ebl_dominguez11.fits.gz"
    assert dest.read_bytes() == TABLE.read_bytes()
    assert spectral_model(with_ebl_table(cfg["model"])).param_names[-2:] == EBL_PARAMS
    monkeypatch.setitem(ebl.NAMED_TABLES, "dominguez11", ("file:///nonexistent/ebl.fits.gz", sha))
    assert read_ebl_table("dominguez11").path == str(Path("data/ebl/ebl_dominguez11.fits.gz"))  # no refetch
    dest.unlink()
    with pytest.raises(DataStoreError) as err:
        read_ebl_table("dominguez11")
    assert "\n" not in str(err.value) and "set model.ebl.table to its path" in str(err.value)
    monkeypatch.setitem(ebl.NAMED_TABLES, "dominguez11", (TABLE.as_uri(), "0" * 64))
    with pytest.raises(DataStoreError, match="checksum mismatch"):
        read_ebl_table("dominguez11")
    assert list((tmp_path / "data" / "ebl").iterdir()) == []


# ---------------------------------------------------------------- absorbed integrals --

PARAMS = {
    "power_law": {"index": 2.3, "amplitude": 3e-11, "reference": 1.0},
    "exp_cutoff_power_law": {"index": 1.8, "amplitude": 3e-11, "reference": 1.0, "lambda_": 0.3, "alpha": 1.0},
    "log_parabola": {"alpha": 2.0, "beta": 0.25, "amplitude": 3e-11, "reference": 1.0},
    "broken_power_law": {"index1": 2.0, "index2": 3.0, "amplitude": 3e-12, "ebreak": 1.7},
}
TRUE_EDGES = np.geomspace(0.05, 100, 31)  # the default true-energy axis


def _fine_integral(model, absorption, edges, p, z, alpha_norm, n=16384):
    """Reference: each bin cut into n log-equal slices, Simpson's rule in ln E on each slice
    of the same integrand (the interpolated table); far finer than the table's 0.01 decade."""
    lo, hi = np.log(edges[:-1]), np.log(edges[1:])
    u = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 2 * n + 1)
    e = np.exp(u)
    f = e * model.dnde(e, **p) * absorption.absorption(e, z, alpha_norm)
    h = (hi - lo) / (2 * n)
    return h / 3 * (f[:, 0] + f[:, -1] + 4 * f[:, 1:-1:2].sum(axis=1) + 2 * f[:, 2:-1:2].sum(axis=1))


@pytest.mark.parametrize("mtype", list(PARAMS))
def test_absorbed_integral_against_fine_integration(mtype):
    a = read_ebl_table(TABLE)
    base = get_model(mtype)
    p = PARAMS[mtype]
    for z, alpha_norm in ((0.116, 1.0), (0.6, 0.8)):
        m = absorbed_model(mtype, a, z, alpha_norm)
        got = m.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p, redshift=z, alpha_norm=alpha_norm)
        want = _fine_integral(base, a, TRUE_EDGES, p, z, alpha_norm)
        seen = want > 1e-30 * want.max()  # bins absorbed to < 1e-30 of the peak do not count
        # Simpson's own error (h^2 at the kinks of the interpolant) is ~7e-10 here, 2e-11 with
        # 4 times more slices: the Gauss-Legendre pieces are more accurate than both
        np.testing.assert_allclose(got[seen], want[seen], rtol=2e-9)
        assert np.all(got[~seen] < 1e-25 * want.max())
        # the attenuation matters: a few per cent at 0.05 TeV, tens of orders of magnitude at 100 TeV
        plain = base.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p)
        assert (got / plain)[-1] < 1e-20 and 0.9 < (got / plain)[0] < 1
    # alpha_norm = 0: the intrinsic model's exact integral
    m0 = absorbed_model(mtype, a, 0.3, 0.0)
    np.testing.assert_allclose(m0.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p, redshift=0.3, alpha_norm=0.0),
                               base.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p), rtol=1e-13)


def test_bin_centre_shortcut_is_much_worse():
    """What the split at the table nodes buys: the intrinsic bin integral times the attenuation
    at the bin centre is off by several per cent where tau rises (documented in docs/tutorials/ebl.md)."""
    a = read_ebl_table(TABLE)
    p = PARAMS["power_law"]
    m = absorbed_model("power_law", a, 0.116, 1.0)
    exact = m.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p, redshift=0.116, alpha_norm=1.0)
    centre = np.sqrt(TRUE_EDGES[:-1] * TRUE_EDGES[1:])
    shortcut = get_model("power_law").integral(TRUE_EDGES[:-1], TRUE_EDGES[1:], **p) * a.absorption(centre, 0.116)
    rel = np.abs(shortcut / exact - 1)
    in_fit = (centre > 0.3) & (centre < 20)
    assert rel[in_fit].max() > 0.02


# ----------------------------------------------------------------------- the fit --


def _template(n_reco=16, n_true=40, obs_id=1) -> SpectrumDataset:
    """A synthetic ON/OFF spectrum: log-normal migration (10 %), effective area rising to 1e5 m^2."""
    er = make_energy_axis(0.2, 30, n_reco)
    et = make_energy_axis(0.05, 100, n_true)
    ct = np.sqrt(et.edges[:-1] * et.edges[1:])
    x = (np.log(er.edges)[None, :] - np.log(ct)[:, None]) / (0.1 * math.sqrt(2))
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x))
    exposure = 1e5 * (1 - np.exp(-ct / 0.15)) * 36000.0
    return SpectrumDataset(
        obs_id=obs_id, energy_reco=er, energy_true=et, counts=np.zeros(n_reco, np.int64),
        counts_off=np.full(n_reco, 100, np.int64), acceptance=np.ones(n_reco), acceptance_off=np.full(n_reco, 5.0),
        exposure=exposure, edisp=np.diff(cdf, axis=1), edisp_weight=exposure, mask_safe=np.ones(n_reco, bool),
        livetime=36000.0, ontime=36000.0, gti=np.array([[0.0, 36000.0]]), usable=True, reason="",
        on_region="icrs;circle(0,0,0.1)", off_regions=[], pointing_radec=(0.0, 0.0), meta={})


def _cfg(z, **ebl):
    """A model block with its EBL table handed in (the library reads no table)."""
    return with_ebl_table({"type": "power_law",
                           "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1e-11},
                                          "reference": {"value": 1.0}},
                           "ebl": {"table": str(TABLE), "redshift": z, "alpha_norm": 1.0, **ebl}})


TRUTH = {"index": 2.3, "amplitude": 3e-11, "reference": 1.0}


@pytest.mark.parametrize("z", [0.05, 0.116, 0.3])
def test_closure_absorbed_spectra(z):
    """Simulated absorbed spectra: the fit with the EBL recovers the intrinsic parameters within
    errors; the same fit without the EBL is far off (softer)."""
    rng = np.random.default_rng(int(z * 1000))
    cfg = _cfg(z)
    truth = {**TRUTH, "redshift": z, "alpha_norm": 1.0}
    sims = [simulate_onoff(_template(obs_id=i), cfg, truth, rng, obs_id=i) for i in (1, 2)]  # a model block
    res = fit_joint(sims, cfg, FIT)
    assert res.success, res.message
    assert [p.name for p in res.parameters] == ["index", "amplitude", "reference", *EBL_PARAMS]
    for name in ("index", "amplitude"):
        (p,) = [q for q in res.parameters if q.name == name]
        assert abs(p.value - TRUTH[name]) < 3 * p.error, (name, p.value, p.error)
    assert res.values["redshift"] == z and res.ebl["name"] == "dominguez11"
    plain = fit_joint(sims, {k: v for k, v in cfg.items() if k != "ebl"}, FIT)
    err = res.parameters[0].error
    assert plain.values["index"] - TRUTH["index"] > 10 * err


def test_free_alpha_norm_and_redshift():
    rng = np.random.default_rng(5)
    z = 0.2
    truth = {**TRUTH, "redshift": z, "alpha_norm": 1.0}
    model = spectral_model(_cfg(z))
    sims = [simulate_onoff(_template(obs_id=i), model, truth, rng, obs_id=i) for i in range(1, 5)]
    res = fit_joint(sims, _cfg(z, alpha_norm={"value": 0.5, "frozen": False, "min": 0.0, "max": 3.0}), FIT)
    assert res.success
    (an,) = [p for p in res.parameters if p.name == "alpha_norm"]
    assert not an.frozen and an.min == 0.0 and abs(an.value - 1.0) < 3 * an.error and an.error < 0.5
    # a free redshift without bounds gets the table's grid as bounds
    res_z = fit_joint(sims, _cfg({"value": 0.15, "frozen": False}), FIT)
    (zp,) = [p for p in res_z.parameters if p.name == "redshift"]
    assert (zp.min, zp.max) == (pytest.approx(0.01), pytest.approx(3.99))  # float32 grid
    assert res_z.success and abs(zp.value - z) < 3 * zp.error


def test_result_yaml_holds_intrinsic_parameters_and_the_ebl(tmp_path):
    import yaml

    rng = np.random.default_rng(9)
    cfg = _cfg(0.116)
    sims = [simulate_onoff(_template(), spectral_model(cfg), {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}, rng)]
    res = fit_joint(sims, cfg, FIT)
    write_fit_result(res, tmp_path / "result.yaml")
    d = yaml.safe_load((tmp_path / "result.yaml").read_text())
    assert list(d["model"]["parameters"]) == ["index", "amplitude", "reference"]
    ebl = d["model"]["ebl"]
    assert ebl["table"] == str(TABLE) and ebl["name"] == "dominguez11" and len(ebl["sha256"]) == 64
    assert ebl["redshift"]["value"] == 0.116 and ebl["redshift"]["frozen"] is True
    assert ebl["alpha_norm"]["value"] == 1.0
    assert d["covariance"]["names"] == ["index", "amplitude", "reference", "redshift", "alpha_norm"]
    back = read_fit_result(tmp_path / "result.yaml")
    assert back.ebl == res.ebl and back.values == pytest.approx(res.values)
    np.testing.assert_allclose(back.covariance, res.covariance)


def test_summary_flux_is_the_intrinsic_one():
    from extspec.summary import FLUX_E_MAX, flux_above

    rng = np.random.default_rng(8)
    cfg = _cfg(0.116)
    sims = [simulate_onoff(_template(), cfg, {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}, rng)]
    res = fit_joint(sims, cfg, FIT)
    f, err = flux_above(res)
    v = res.values
    want = get_model("power_law").integral(1.0, FLUX_E_MAX, index=v["index"], amplitude=v["amplitude"])
    assert f == pytest.approx(float(want), rel=1e-12) and 0 < err < 0.2 * f


def test_flux_points_deabsorbed():
    from extspec.fluxpoints import compute_flux_points

    rng = np.random.default_rng(3)
    z = 0.116
    cfg = _cfg(z)
    a = read_ebl_table(TABLE)
    sims = [simulate_onoff(_template(obs_id=i), spectral_model(cfg), {**TRUTH, "redshift": z, "alpha_norm": 1.0},
                           rng, obs_id=i) for i in (1, 2)]
    res = fit_joint(sims, cfg, FIT)
    rows = compute_flux_points(sims, res, _points([0.3, 1.0, 3.0, 10.0]), "exact")
    assert len(rows) == 3
    base = get_model("power_law")
    for r in rows:
        att = float(a.absorption(r["e_ref"], z))
        assert r["absorption"] == pytest.approx(att, rel=1e-12) and att < 0.95
        # observed reference = intrinsic model times the attenuation at e_ref
        assert r["ref_dnde"] == pytest.approx(base.dnde(r["e_ref"], **TRUTH | {
            "index": res.values["index"], "amplitude": res.values["amplitude"]}) * att, rel=1e-9)
        for k in ("dnde", "dnde_err", "dnde_ul", "e2dnde", "e2dnde_err", "e2dnde_ul"):
            base_k, _, tail = k.partition("_")
            name = f"{base_k}_intrinsic" + (f"_{tail}" if tail else "")
            assert r[name] == pytest.approx(r[k] / att, rel=1e-12)
        # de-absorbed points scatter around the intrinsic truth
        truth = base.dnde(r["e_ref"], **TRUTH)
        assert abs(r["dnde_intrinsic"] - truth) < 3 * r["dnde_intrinsic_err"]


def test_flux_point_upper_limit_where_absorption_is_total():
    """A group where the absorbed model predicts ~1e-11 counts: the norm and the upper limit
    still follow the data (the norm is fitted in units of the predicted counts there).  The
    data are drawn without absorption, so the group has a real excess."""
    from extspec.fluxpoints import compute_flux_points

    rng = np.random.default_rng(4)
    z = 0.3
    cfg = _cfg(z)
    sims = [simulate_onoff(_template(obs_id=i), cfg, {**TRUTH, "redshift": z, "alpha_norm": 0.0}, rng, obs_id=i)
            for i in (1, 2)]
    res = fit_joint(sims, cfg, FIT)
    rows = compute_flux_points(sims, res, _points([0.3, 1.0, 15.0, 30.0]), "exact")
    deep = rows[-1]
    assert deep["absorption"] < 1e-15
    counts_per_norm = sum(deep["npred"]) / deep["norm"]  # predicted counts at norm 1: ~1e-11
    assert counts_per_norm < 1e-6
    assert deep["norm"] * counts_per_norm < deep["norm_ul"] * counts_per_norm < 1000.0
    # the fitted norm follows the data: a signal of the order of the excess
    e = sims[0].energy_reco.edges
    sel = (e[:-1] >= deep["e_min"] * (1 - 1e-9)) & (e[1:] <= deep["e_max"] * (1 + 1e-9))
    excess = sum(float(np.sum(s.counts[sel] - s.alpha[sel] * s.counts_off[sel])) for s in sims)
    assert excess > 20 and 0.3 < sum(deep["npred"]) / excess < 3, (deep["npred"], excess)
    assert deep["e2dnde_intrinsic_ul"] == pytest.approx(deep["e2dnde_ul"] / deep["absorption"], rel=1e-12)


def test_config_checks(tmp_path):
    from extspec.workflow.config import validate_config

    base = {"name": "x", "external_spectra": ["pha.fits"],
            "model": {"type": "power_law", "ebl": {"table": str(TABLE), "redshift": 0.116}}}
    cfg = validate_config(base, check_datastore=False)
    assert cfg["model"]["ebl"]["alpha_norm"] == 1.0
    cases = [
        ({"redshift": 5.0}, "config key 'model.ebl.redshift': redshift 5 outside the EBL table"),
        ({"redshift": {"value": 0.1, "frozen": False, "min": 0.0, "max": 0.5}},
         "config key 'model.ebl.redshift': redshift 0 outside the EBL table"),
        ({"alpha_norm": {"value": 2.0, "max": 1.5}}, "config key 'model.ebl.alpha_norm': value 2.0 outside [min, max]"),
        ({"alpha_norm": -1.0}, "config key 'model.ebl.alpha_norm': must be >= 0"),
        ({"alpha_norm": {"value": 1.0, "frozen": False, "min": -2.0}}, "config key 'model.ebl.alpha_norm': must be >= 0"),
        ({"table": str(tmp_path / "none.fits")}, "config key 'model.ebl.table': EBL table"),
        ({"colour": 1}, "model.ebl"),
    ]
    for over, msg in cases:
        bad = {**base, "model": {"type": "power_law", "ebl": {**base["model"]["ebl"], **over}}}
        with pytest.raises(ConfigError) as err:
            validate_config(bad, check_datastore=False)
        assert msg in str(err.value) and "\n" not in str(err.value), str(err.value)
    # a free alpha_norm without a lower bound stays a non-negative optical depth
    from extspec.ebl import ebl_parameters

    free = {"type": "power_law", "ebl": {**base["model"]["ebl"], "alpha_norm": {"value": 1.0, "frozen": False}}}
    from extspec.workflow.settings import model_spec

    assert ebl_parameters(model_spec(free))["alpha_norm"].min == 0.0
    no_z = {**base, "model": {"type": "power_law", "ebl": {"table": str(TABLE)}}}
    with pytest.raises(ConfigError, match="redshift"):
        validate_config(no_z, check_datastore=False)
    # a true-energy axis beyond the table's 100.7 TeV is refused for DL3 analyses
    dl3 = {**base, "obs_ids": [1], "on_region": "icrs;circle(0,0,0.1)", "energy_axis_true": {"min": 0.05,
                                                                                            "max": 300, "nbins": 30}}
    with pytest.raises(ConfigError, match=r"config key 'energy_axis_true': EBL table .* covers 0.0009887 .. 100.7 TeV"):
        validate_config(dl3, check_datastore=False)


# ------------------------------------------------------------------ the workflow --


def test_workflow_with_ebl(tmp_path):
    """The workflow on simulated absorbed OGIP spectra (external_spectra, no reduction): the
    intrinsic parameters in result.yaml, observed and de-absorbed flux points, the SED plot;
    editing the EBL table reruns only the fit and its products."""
    import os
    import time

    import yaml
    from astropy.table import Table

    from extspec.io.ogip import write_spectrum
    from test_workflow import dry_run, snakemake, write_config

    z = 0.116
    rng = np.random.default_rng(21)
    table = tmp_path / "ebl.fits.gz"
    table.write_bytes(TABLE.read_bytes())
    model = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1.0e-11}},
             "ebl": {"table": "ebl.fits.gz", "redshift": z}}
    truth = {**TRUTH, "redshift": z, "alpha_norm": 1.0}
    for oid in (101, 102):
        sim_model = {**model, "ebl": {**model["ebl"], "table": str(table)}}
        sim = simulate_onoff(_template(obs_id=oid), sim_model, truth, rng, obs_id=oid)
        write_spectrum(sim, tmp_path / "ext" / f"obs{oid}")
    cf = write_config(tmp_path, name="pks", datastore="/nonexistent/store", obs_ids=[], model=model,
                      external_spectra=["ext/*/pha.fits"], flux_points={"energy_edges": [0.3, 1.0, 3.0, 10.0]})
    snakemake(tmp_path, cf, "--cores", "2")
    out = tmp_path / "results" / "pks" / "fit"
    result = yaml.safe_load((out / "result.yaml").read_text())
    assert result["success"]
    params = result["model"]["parameters"]
    assert set(params) == {"index", "amplitude", "reference"}
    assert abs(params["index"]["value"] - TRUTH["index"]) < 3 * params["index"]["error"]
    assert result["model"]["ebl"]["redshift"]["value"] == z and result["model"]["ebl"]["name"] == "dominguez11"
    fp = Table.read(out / "flux_points.ecsv", format="ascii.ecsv")
    assert len(fp) == 3 and fp.meta["ebl"]["table"] == "ebl.fits.gz"
    a = read_ebl_table(TABLE)
    np.testing.assert_allclose(fp["absorption"], a.absorption(np.asarray(fp["e_ref"]), z), rtol=1e-12)
    np.testing.assert_allclose(fp["e2dnde_intrinsic"], fp["e2dnde"] / fp["absorption"], rtol=1e-12)
    assert (out / "sed.png").stat().st_size > 10000
    assert dry_run(tmp_path, cf) == {}
    # a different table (content) reruns the fit and what reads it, nothing else
    from astropy.io import fits

    with fits.open(TABLE) as h:
        h[0].header["EDITED"] = True
        h.writeto(table, overwrite=True)
    later = time.time() + 2
    os.utime(table, (later, later))
    assert dry_run(tmp_path, cf) == {"fit": 1, "flux_points": 1, "summary": 1, "all": 1}


def test_the_ebl_model_is_handed_its_table(tmp_path):
    """extspec.ebl reads no file: a model block or fit result naming a table that was not read
    is refused with one line naming it; io.ebl_table hands it in, read_fit_result too, and the
    table is written back as the config named it."""
    from extspec.ebl import ebl_provenance, ebl_record, load_absorption
    from extspec.errors import ExtspecError
    from extspec.io.fitresult import fit_result_from_dict, fit_result_dict

    block = {"type": "power_law", "ebl": {"table": str(TABLE), "redshift": 0.116}}
    with pytest.raises(ExtspecError) as err:
        spectral_model(block)
    assert str(TABLE) in str(err.value) and "\n" not in str(err.value)
    handed = with_ebl_table(block)
    assert handed["ebl"]["table"] is read_ebl_table(str(TABLE)) and block["ebl"]["table"] == str(TABLE)
    assert with_ebl_table(handed) == handed and with_ebl_table({"type": "power_law"}) == {"type": "power_law"}
    assert load_absorption(handed["ebl"]["table"]) is handed["ebl"]["table"]
    prov = ebl_provenance(handed)
    assert ebl_record(prov) == {"table": str(TABLE), "sha256": prov["sha256"], "name": "dominguez11"}
    rng = np.random.default_rng(1)
    cfg = _cfg(0.116)
    sims = [simulate_onoff(_template(), cfg, {**TRUTH, "redshift": 0.116, "alpha_norm": 1.0}, rng)]
    res = fit_joint(sims, cfg, FIT)
    d = fit_result_dict(res)
    assert d["model"]["ebl"]["table"] == str(TABLE)
    back = fit_result_from_dict(d)
    assert back.ebl["table"] is read_ebl_table(str(TABLE))  # handed when read back
    gone = fit_result_from_dict({**d, "model": {**d["model"], "ebl": {**d["model"]["ebl"],
                                                                      "table": str(tmp_path / "gone.fits")}}})
    assert gone.ebl["table"] == str(tmp_path / "gone.fits")  # not there: stays a name, refused when used
    with pytest.raises(ExtspecError, match="gone.fits: not read"):
        load_absorption(gone.ebl["table"])


def test_tau_is_smooth_in_redshift_at_every_node():
    """Issue 27, defect 1: tau has no kink at the grid redshifts (left and right derivatives in
    z agree), so no grid redshift is a false minimum of a fit with a free redshift."""
    a = read_ebl_table(TABLE)
    eps = 1e-6
    for i in (5, 11, 30, 120):
        z = float(a.redshift[i])
        left = (a.node_tau(z) - a.node_tau(z - eps)) / eps
        right = (a.node_tau(z + eps) - a.node_tau(z)) / eps
        sel = (a.node_tau(z) > 0.05) & (a.node_tau(z) < 20)  # where tau is neither ~0 nor saturated
        np.testing.assert_allclose(left[sel], right[sel], rtol=2e-3, atol=1e-3)
        assert np.all(right[sel] > 0)  # monotone: more absorption further away


def test_free_redshift_recovers_the_truth_between_nodes():
    """Closure: absorbed spectra simulated at z = 0.137 (between the nodes 0.13 and 0.14), the
    redshift free from 0.08: the fit lands at the truth within errors, not on a node, and the
    quality gate finds a real minimum."""
    rng = np.random.default_rng(137)
    z = 0.137
    truth = {**TRUTH, "redshift": z, "alpha_norm": 1.0}
    sims = [simulate_onoff(_template(obs_id=i), spectral_model(_cfg(z)), truth, rng, obs_id=i) for i in range(1, 5)]
    res = fit_joint(sims, _cfg({"value": 0.08, "frozen": False}), FIT)
    (zp,) = [p for p in res.parameters if p.name == "redshift"]
    assert res.success and zp.error > 0.005, (zp.value, zp.error)  # a real error, not a node's 1e-4
    assert abs(zp.value - z) < 3 * zp.error, (zp.value, zp.error)
    assert res.quality.checks["minimum"]["drop"]["redshift"] < 0 and "not_a_minimum" not in res.quality.flags
