"""The fov and ring background methods (extspec.background), their fallback and config keys.

Simulated stores (extspec.simulate) with a known source and background IRF:

* closure: fov and ring recover the source's power law within 2 sigma, including a run
  pointed inside the ON region (which reflected regions cannot use);
* a wrong background model (the IRF's offset and energy shape differ from the simulated
  background) biases the flux, and the normalisation check names the runs;
* the per-channel alpha travels through OGIP (BACKSCAL column), the batch arrays, the light
  curve's ON/OFF events, stacking and the result record.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from extspec.background import normalisation_check
from extspec.errors import ConfigError
from extspec.fit import fit_joint
from extspec.io.datastore import open_datastore
from extspec.reduction import reduce_observation
from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
from extspec.simulate.dl3 import IrfModel
from extspec.workflow.settings import fit_options, reduction_settings

RA, DEC = 83.63, 22.01
ON = f"icrs;circle({RA},{DEC},0.2)"
TRUTH = {"index": 2.4, "amplitude": 3e-11, "reference": 1.0}
PL = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1e-11}}}
FOV = {"method": "fov"}
RING = {"method": "ring", "ring": {"inner": 0.4, "outer": 0.8}}


def settings_for(background, on=ON, offset_max=2.0, method="exact"):
    return reduction_settings({
        "on_region": on,
        "geom": {"width": [1.2, 1.2], "binsz": 0.04, "frame": "icrs", "proj": "TAN"},
        "energy_axis": {"min": 0.5, "max": 30, "nbins": 8},
        "energy_axis_true": {"min": 0.2, "max": 60, "nbins": 24},
        "spectrum": {"method": method},
        "background": background,
        "safe_mask": {"methods": ["aeff-default"], "offset_max": offset_max},
    })


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three wobble runs 0.5 deg from a point source and one pointed 0.05 deg from it (inside
    the 0.2 deg ON circle); background x10 of the simulator's default."""
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum="power_law",
                      params=TRUTH)
    pts = list(wobble_pointings(RA, DEC, 3, offset=0.5)) + [(RA, DEC + 0.05)]
    path = simulate_datastore(tmp_path_factory.mktemp("bkgstore") / "store", pts, src, livetime=1800, seed=11,
                              bkg_scale=10)
    return open_datastore(path)


def reduce_all(store, background, **kw):
    s = settings_for(background, **kw)
    return [reduce_observation(store.load(o), s)[1] for o in store.obs_ids]


def assert_truth(spectra, n_sigma=2.0):
    res = fit_joint(spectra, PL, fit_options({}))
    assert res.success, res.message
    for name, p in zip(res.values, res.parameters):
        if not p.frozen:
            assert abs(p.value - TRUTH[name]) < n_sigma * p.error, f"{name}: {p.value:.4g} +- {p.error:.2g}"
    return res


@pytest.mark.parametrize("background", [FOV, RING], ids=["fov", "ring"])
def test_closure_with_a_run_pointed_inside_the_on_region(store, background):
    reflected = reduce_all(store, {})
    assert [s.usable for s in reflected] == [True, True, True, False]
    assert "pointing inside the ON region" in reflected[3].reason
    spectra = reduce_all(store, background)
    assert all(s.usable for s in spectra), [s.reason for s in spectra]
    for s, r in zip(spectra, reflected):
        assert s.meta["background"] == background["method"]
        np.testing.assert_array_equal(s.counts, r.counts)  # the same ON events
        a = s.alpha[s.mask_safe]
        assert np.all(a > 0) and np.all(a < 0.2)
        # per bin: B_on / B_off of the background IRF
        np.testing.assert_allclose(s.alpha, np.divide(s.meta["background_on_predicted"],
                                                      s.meta["background_off_predicted"]), rtol=1e-12)
        # the OFF area holds far more background than the reflected regions
        assert s.counts_off.sum() > 1.5 * reflected[0].counts_off.sum()
    assert_truth(spectra)
    assert_truth([s for s in spectra[3:]], n_sigma=2.5)  # the run pointed at the source, alone


def test_ring_off_area_is_the_annulus(store):
    s = reduce_all(store, RING)[0]
    inner, outer = 0.4, 0.8
    # the annulus minus the grown ON circle and minus nothing else: ~ pi (outer^2 - inner^2)
    want = np.pi * (outer**2 - inner**2) * (np.pi / 180) ** 2
    assert s.meta["background_off_solid_angle"] == pytest.approx(want, rel=0.03)
    assert s.meta["background_ring"] == [inner, outer]


def test_exclusion_regions_cut_the_off_area(store):
    free = reduce_all(store, FOV)[0]
    excl = settings_for(FOV)
    excl = dataclasses.replace(excl, exclusion_regions=(f"icrs;circle({RA + 1.0},{DEC},0.5)",))
    cut = reduce_observation(store.load(store.obs_ids[0]), excl)[1]
    lost = free.meta["background_off_solid_angle"] - cut.meta["background_off_solid_angle"]
    assert lost > 0.5 * np.pi * 0.5**2 * (np.pi / 180) ** 2
    assert cut.counts_off.sum() < free.counts_off.sum()
    assert np.all(cut.alpha[cut.mask_safe] > free.alpha[free.mask_safe])


@pytest.mark.parametrize("wrong_index", [2.7, 2.3], ids=["offset-shape", "offset-and-energy-shape"])
def test_wrong_background_model_biases_the_flux_and_the_check_warns(tmp_path, wrong_index):
    """Simulated background narrower (0.8 deg) than the IRF used (1.5 deg; index 2.7 as
    simulated, or 2.3): fov under-estimates the background in the ON region and the flux comes
    out high; the offset-shape check names every run (the inner half of the OFF area holds
    more OFF counts per predicted count than the outer half), and with the wrong energy shape
    too, the per-bin check as well."""
    truth = {"index": 2.4, "amplitude": 3e-12, "reference": 1.0}
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum="power_law",
                      params=truth)
    pts = list(wobble_pointings(RA, DEC, 3, offset=0.7)) + [(RA, DEC + 0.05)]
    store = open_datastore(simulate_datastore(tmp_path / "a", pts, src, livetime=7200, seed=3, bkg_scale=30,
                                              irf=IrfModel(bkg_offset_sigma=0.8)))
    other = open_datastore(simulate_datastore(tmp_path / "b", pts[:1], None, livetime=60, seed=3,
                                              irf=IrfModel(bkg_index=wrong_index)))
    wrong_bkg = other.load(other.obs_ids[0]).bkg
    s = settings_for(FOV, on=f"icrs;circle({RA},{DEC},0.15)")
    right = [reduce_observation(store.load(o), s)[1] for o in store.obs_ids]
    wrong = [reduce_observation(dataclasses.replace(store.load(o), bkg=wrong_bkg), s)[1] for o in store.obs_ids]
    res_r = fit_joint(right, PL, fit_options({}))
    res_w = fit_joint(wrong, PL, fit_options({}))
    amp_r, amp_w = res_r.values["amplitude"], res_w.values["amplitude"]
    err = res_r.parameters[[p.name for p in res_r.parameters].index("amplitude")].error
    assert abs(amp_r - truth["amplitude"]) < 2 * err
    assert amp_w - amp_r > 3 * err  # background under-subtracted: the flux comes out high
    bkg_r = sum(float((x.alpha * x.counts_off)[x.mask_safe].sum()) for x in right)
    bkg_w = sum(float((x.alpha * x.counts_off)[x.mask_safe].sum()) for x in wrong)
    assert bkg_w < 0.7 * bkg_r
    assert normalisation_check(right)["warnings"] == []
    check = normalisation_check(wrong)
    shape = [w for w in check["warnings"] if "offset shape" in w]
    assert {int(w.split(":")[0].split()[1]) for w in shape} == set(int(o) for o in store.obs_ids)
    for o in store.obs_ids:
        r = check["runs"][int(o)]
        assert r["norm_inner"] > 1.2 * r["norm_outer"] and r["offset_shape_significance"] > 3
        assert bool(r["bins_off"]) == (wrong_index != 2.7)
    good = normalisation_check(right)["runs"]
    assert all(abs(r["offset_shape_significance"]) < 3 for r in good.values())


def test_normalisation_check_names_the_run_that_strays():
    """Synthetic runs: OFF counts = 2x the prediction in one run, and in one bin of another."""
    from extspec.geometry import EnergyAxis
    from extspec.spectrum import SpectrumDataset

    edges = np.geomspace(1, 10, 5)
    pred = np.array([400.0, 300.0, 200.0, 100.0])

    def run(obs_id, counts_off):
        n = len(pred)
        return SpectrumDataset(obs_id, EnergyAxis(edges), EnergyAxis(edges), np.zeros(n, np.int64),
                               np.asarray(counts_off, np.int64), np.ones(n), np.full(n, 10.0), np.ones(n),
                               np.eye(n), np.ones(n), np.ones(n, bool), 1.0, 1.0,
                               meta={"background": "fov", "background_off_predicted": list(pred)})

    runs = [run(1, pred), run(2, pred), run(3, 2 * pred), run(4, pred * [1, 1, 1, 2])]
    check = normalisation_check(runs)
    assert check["runs"][3]["norm"] == pytest.approx(2.0)
    assert check["runs"][4]["bins_off"] == [3]
    assert check["runs"][1]["bins_off"] == [] and abs(check["runs"][1]["significance_vs_other_runs"]) < 3
    text = " | ".join(check["warnings"])
    assert "obs 3: background normalisation 2.000" in text and "obs 4:" in text and "obs 1:" not in text


def test_fallback_and_runs_without_a_background_irf(store):
    obs = [store.load(o) for o in store.obs_ids]
    # reflected, falling back to fov for the run pointed at the source
    s = settings_for({"method": "reflected", "fallback": "fov"})
    spectra = [reduce_observation(o, s)[1] for o in obs]
    assert [x.meta["background"] for x in spectra] == ["reflected"] * 3 + ["fov"]
    assert all(x.usable for x in spectra)
    assert spectra[3].meta["background_fallback_from"] == "reflected"
    assert "pointing inside the ON region" in spectra[3].meta["background_fallback_reason"]
    # fov without a background IRF: unusable with its reason, or the fallback
    no_bkg = dataclasses.replace(obs[0], bkg=None)
    bad = reduce_observation(no_bkg, settings_for(FOV))[1]
    assert not bad.usable and "no background IRF" in bad.reason and "fov" in bad.reason
    ok = reduce_observation(no_bkg, settings_for({"method": "fov", "fallback": "reflected"}))[1]
    assert ok.usable and ok.meta["background"] == "reflected" and ok.n_off_regions > 0
    # a fallback that cannot be met either: unusable, with both reasons
    crowded = reduce_observation(no_bkg, settings_for({"method": "fov", "fallback": "wobble", "n_off_regions": 20}))[1]
    assert not crowded.usable
    assert "no background IRF" in crowded.reason and "fallback wobble" in crowded.reason


def test_fov_with_the_reference_extraction(store):
    """reference: ON counts from the cube pixels, the ON prediction from the same pixels."""
    s = reduce_all(store, FOV, method="reference")
    assert all(x.usable for x in s)
    assert_truth(s, n_sigma=2.5)


def test_ogip_per_channel_backscal_round_trip(store, tmp_path):
    from extspec.io.fitsread import read_tables
    from extspec.io.ogip import read_spectrum, write_spectrum

    spec = reduce_all(store, FOV)[0]
    write_spectrum(spec, tmp_path)
    back = read_spectrum(tmp_path)
    np.testing.assert_allclose(back.alpha, spec.alpha, rtol=1e-14)
    assert np.ptp(back.acceptance_off) > 0 or np.all(back.acceptance_off > 0)
    assert back.meta["background"] == "fov"
    pha = read_tables(tmp_path / "pha.fits", {"SPECTRUM"})["SPECTRUM"]
    assert pha.header["BKGMETH"] == "fov"
    bkg = read_tables(tmp_path / "bkg.fits", {"SPECTRUM"})["SPECTRUM"]
    np.testing.assert_allclose(np.asarray(bkg.columns["BACKSCAL"], float), spec.acceptance_off, rtol=1e-14)


def test_onoff_events_and_batch_arrays_carry_the_fov_alpha(store, tmp_path):
    """Light curves read the run's ON/OFF events and the OGIP alpha; batches the arrays file:
    with fov both give back the run's own counts and per-bin alpha."""
    from extspec.io.batch_arrays import read_spectra, write_batch_arrays
    from extspec.io.batch import write_manifest
    from extspec.lightcurve import window_dataset
    from extspec.timebins import Window

    s = settings_for(FOV)
    cube, spec, events = reduce_observation(store.load(store.obs_ids[3]), s, onoff_events=True)
    nreco = spec.energy_reco.nbin
    np.testing.assert_array_equal(np.bincount(events.energy_bin_off, minlength=nreco), spec.counts_off)
    np.testing.assert_array_equal(np.bincount(events.energy_bin_on, minlength=nreco), spec.counts)
    t0, t1 = float(events.gti[0, 0]), float(events.gti[-1, 1])
    half = window_dataset(spec, events, Window(0, t0, 0.5 * (t0 + t1), spec.livetime / 2))
    np.testing.assert_array_equal(half.alpha, spec.alpha)
    assert 0.3 * spec.counts_off.sum() < half.counts_off.sum() < 0.7 * spec.counts_off.sum()
    from extspec.io.batch import arrays_name, manifest_name

    manifest = tmp_path / manifest_name(0, [spec.obs_id])
    arrays = tmp_path / arrays_name(manifest.name)
    write_batch_arrays(arrays, [spec], [cube])
    write_manifest(manifest, [spec.obs_id], {}, arrays=arrays.name)
    (got,) = read_spectra([str(manifest)])
    np.testing.assert_allclose(got.alpha, spec.alpha, rtol=1e-14)
    assert got.meta["background"] == "fov"


def test_stacking_keeps_the_per_bin_background(store):
    from extspec.stacking import stack_spectra

    spectra = reduce_all(store, RING)
    stack = stack_spectra(spectra, float32=False)
    m = stack.mask_safe
    want = sum(np.where(x.mask_safe, x.alpha * x.counts_off, 0.0) for x in spectra)
    np.testing.assert_allclose((stack.alpha * stack.counts_off)[m], want[m], rtol=1e-12)


def test_result_record_names_each_runs_method(store):
    from extspec.background import background_record

    s = settings_for({"method": "reflected", "fallback": "ring", "ring": {"inner": 0.4, "outer": 0.8}})
    spectra = [reduce_observation(store.load(o), s)[1] for o in store.obs_ids]
    rec = background_record(spectra)
    assert rec["methods"] == {"reflected": 3, "ring": 1}
    assert rec["runs"][int(store.obs_ids[3])] == "ring"
    assert "pointing inside" in rec["fallbacks"][int(store.obs_ids[3])]
    assert list(rec["normalisation_check"]["runs"]) == [int(store.obs_ids[3])]


# ------------------------------------------------------------------------ config checks --


def _raw(**background):
    return {"name": "x", "obs_ids": [1], "on_region": "galactic;circle(347.3,-0.5,0.5)", "background": background}


@pytest.mark.parametrize("background, words", [
    ({"method": "ring", "ring": {"inner": 1.0, "outer": 0.7}}, "inner (1.0) must be smaller than outer (0.7)"),
    ({"method": "fov", "ring": {"inner": 0.7, "outer": 1.0}}, "neither background.method ('fov')"),
    ({"method": "ring"}, "needs its radii"),
    ({"method": "fov", "fallback": "fov"}, "is the method itself"),
    ({"method": "ring", "ring": {"inner": 0.1, "outer": 0.4}}, "lies inside the ON circle"),
])
def test_background_config_refusals(background, words):
    from extspec.workflow.checks import validate_config

    with pytest.raises(ConfigError) as exc:
        validate_config(_raw(**background), check_datastore=False)
    msg = str(exc.value)
    assert "config key 'background" in msg and words in msg and "\n" not in msg


def test_background_config_accepted():
    from extspec.workflow.checks import validate_config
    from extspec.workflow.settings import background_settings

    cfg = validate_config(_raw(method="reflected", fallback="ring", ring={"inner": 0.7, "outer": 1.0}),
                          check_datastore=False)
    b = background_settings(cfg)
    assert (b.method, b.fallback, b.ring) == ("reflected", "ring", (0.7, 1.0))
    b = background_settings(validate_config(_raw(), check_datastore=False))
    assert (b.method, b.fallback, b.ring) == ("reflected", None, None)


def test_point_on_region_refuses_fov():
    from extspec.workflow.checks import validate_config

    raw = _raw(method="fov")
    raw["on_region"] = "icrs;point(83.63,22.01)"
    with pytest.raises(ConfigError, match="a point ON region"):
        validate_config(raw, check_datastore=False)


def test_background_in_mask_is_the_cube_sum(store):
    """The OFF-area prediction gathered on the IRF's nodes = the per-pixel cube summed."""
    from extspec.cube import background_in_mask, make_background
    from extspec.geometry import MapGeom, make_energy_axis

    obs = store.load(store.obs_ids[0])
    geom = MapGeom.create(RA + 0.3, DEC, 3.0, 0.05, "icrs", "TAN")
    axis = make_energy_axis(0.5, 30, 8)
    lon, lat = geom.pixel_centers()
    mask = (lon > RA) & (lat < DEC + 0.5)
    cube = make_background(obs, geom, axis)
    np.testing.assert_allclose(background_in_mask(obs, geom, mask, axis), cube[:, mask].sum(axis=1), rtol=1e-10)


# ---------------------------------------------------------------------------- DR1 data --

DR1_BASE = {"energy_axis": {"min": 0.3, "max": 40, "nbins": 12},
            "energy_axis_true": {"min": 0.05, "max": 100, "nbins": 30},
            "safe_mask": {"methods": ["aeff-default", "aeff-max", "offset-max"], "aeff_percent": 10,
                          "offset_max": 2.5}}
POINT_SOURCES = {
    "crab": ("icrs;circle(83.6331,22.0145,0.11)", "icrs;circle(83.6331,22.0145,0.3)", (23523, 23526, 23559, 23592),
             {"type": "log_parabola",
              "parameters": {"alpha": {"value": 2.5}, "beta": {"value": 0.1}, "amplitude": {"value": 3.5e-11}}}),
    "pks2155": ("icrs;circle(329.7169,-30.2256,0.11)", "icrs;circle(329.7169,-30.2256,0.3)",
                (33787, 33788, 33789, 33790),
                {"type": "power_law", "parameters": {"index": {"value": 3.2}, "amplitude": {"value": 2e-11}}}),
}


@pytest.mark.parametrize("source", list(POINT_SOURCES))
def test_dr1_point_sources_agree_across_methods(datastore, source):
    """Crab and PKS 2155-304 (4 runs each, the source excluded within 0.3 deg): fov, ring and
    reflected give the same spectrum within 1 sigma (the ON counts are shared)."""
    on, excl, runs, model = POINT_SOURCES[source]
    fits = {}
    for bg in ({}, FOV, RING):
        s = reduction_settings({**DR1_BASE, "on_region": on, "exclusion_regions": [excl],
                                "geom": {"width": [1.0, 1.0], "binsz": 0.02, "frame": "icrs"}, "background": bg})
        spectra = [reduce_observation(datastore.load(o), s)[1] for o in runs]
        assert all(x.usable for x in spectra)
        res = fit_joint(spectra, model, fit_options({}))
        assert res.success, res.message
        fits[bg.get("method", "reflected")] = res
    ref = fits["reflected"]
    for method in ("fov", "ring"):
        for p_ref, p in zip(ref.parameters, fits[method].parameters):
            if not p.frozen:
                assert abs(p.value - p_ref.value) < p_ref.error, f"{source} {method} {p.name}"


def test_dr1_rxj1713_whole_remnant_keeps_every_run_with_fov(datastore):
    """RX J1713 grown to the whole remnant (0.6 deg circle) with the remnant excluded within
    0.75 deg: reflected regions lose 4 of the 15 runs within 2 deg, fov keeps all 15."""
    from extspec.sky import separation, transform_point

    ra, dec = datastore.pointings()
    c = transform_point(347.3, -0.5, "galactic", "icrs")
    runs = [int(o) for o, d in zip(datastore.obs_ids, separation(np.asarray(ra), np.asarray(dec), *c)) if d < 2.0]
    assert len(runs) == 15
    kept = {}
    for bg in ({}, FOV):
        s = reduction_settings({**DR1_BASE, "on_region": "galactic;circle(347.3,-0.5,0.6)",
                                "exclusion_regions": ["galactic;circle(347.3,-0.5,0.75)"],
                                "geom": {"width": [1.6, 1.6], "binsz": 0.04, "frame": "galactic"}, "background": bg})
        spectra = [reduce_observation(datastore.load(o), s)[1] for o in runs]
        kept[bg.get("method", "reflected")] = spectra
    assert sum(x.usable for x in kept["reflected"]) == 11
    assert all(x.usable for x in kept["fov"]), [x.reason for x in kept["fov"] if not x.usable]
    res = fit_joint(kept["fov"], PL, fit_options({}))
    assert res.success and 1.9 < res.values["index"] < 2.4
    assert normalisation_check(kept["fov"])["runs"].keys() == set(runs)


@pytest.mark.interop
def test_gammapy_reads_fov_sets_and_fits_the_same(store, tmp_path, gammapy):
    """Our fov OGIP sets (per-channel BACKSCAL in the BKG file) read by gammapy: the same
    per-bin alpha, and its joint WStat fit gives our numbers."""
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    from extspec.io.ogip import write_spectrum

    spectra = reduce_all(store, FOV)
    # the simulated background is separable, so its alpha hardly varies: make it vary
    n = spectra[0].energy_reco.nbin
    spectra[0] = dataclasses.replace(spectra[0], acceptance_off=spectra[0].acceptance_off * np.linspace(0.7, 1.3, n))
    phas = []
    for s in spectra:
        write_spectrum(s, tmp_path / str(s.obs_id))
        phas.append(tmp_path / str(s.obs_id) / "pha.fits")
    gds = [SpectrumDatasetOnOff.read(str(p)) for p in phas]
    for s, g in zip(spectra, gds):
        np.testing.assert_allclose(np.asarray(g.alpha.data).ravel()[s.mask_safe], s.alpha[s.mask_safe], rtol=1e-10)
    pl = PowerLawSpectralModel(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    datasets = Datasets(gds)
    model = SkyModel(spectral_model=pl, name="source")
    for d in datasets:
        d.models = [model]
    result = Fit().run(datasets)
    assert result.success
    ours = fit_joint(spectra, PL, fit_options({}))
    assert ours.values["index"] == pytest.approx(pl.index.value, rel=1e-4)
    assert ours.values["amplitude"] == pytest.approx(pl.amplitude.quantity.to_value("cm-2 s-1 TeV-1"), rel=1e-4)
    assert ours.total_stat == pytest.approx(float(result.total_stat), rel=1e-4)


def test_joint_fit_of_fov_and_ring_analyses(store):
    """joint.fit_instruments takes the per-bin alpha: two analyses of the same runs, one with
    fov and one with ring, fitted jointly, recover the truth; with one instrument it is the
    plain joint fit."""
    from extspec.fit import JointData
    from extspec.joint import Instrument, Systematics, fit_instruments

    none = Systematics(energy_scale=None, norm=None)
    fov, ring = reduce_all(store, FOV), reduce_all(store, RING)
    one = fit_instruments([Instrument("fov", JointData(fov), none)], PL, fit_options({}))
    ref = fit_joint(fov, PL, fit_options({}))
    assert one.result.values["index"] == pytest.approx(ref.values["index"], rel=1e-6)
    both = fit_instruments([Instrument("fov", JointData(fov[:2]), none), Instrument("ring", JointData(ring[2:]), none)],
                           PL, fit_options({}))
    for name, p in zip(both.result.values, both.result.parameters):
        if not p.frozen:
            assert abs(p.value - TRUTH[name]) < 2 * p.error, name


def test_closure_with_a_box_on_region(store):
    """A non-circular ON region: its events and its predicted background are both taken in the
    finder frame; fov recovers the source, and alpha scales with the box's area."""
    box = f"icrs;box({RA},{DEC},0.4,0.3,30)"
    spectra = reduce_all(store, FOV, on=box)
    assert all(s.usable for s in spectra)
    assert_truth(spectra)
    circle = reduce_all(store, FOV)
    ratio = spectra[0].alpha[spectra[0].mask_safe] / circle[0].alpha[circle[0].mask_safe]
    np.testing.assert_allclose(ratio, 0.4 * 0.3 / (np.pi * 0.2**2), rtol=0.03)


def test_workflow_with_fov_light_curve_and_batches(store, tmp_path):
    """The workflow end to end with `background: {method: reflected, fallback: fov}` on runs
    reduced in batches with a light curve cutting the runs: the run pointed at the source
    falls back to fov and is used, the light curve's counts are the spectra's, result.yaml and
    the summary say which method each run used."""
    import yaml
    from test_workflow import snakemake, summary_rows, write_config

    from extspec.io.ecsv import read_ecsv_rows
    from extspec.io.fitsread import read_tables
    from extspec.io.ogip import read_spectrum

    ids = [int(o) for o in store.obs_ids]
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, name="fb", datastore=str(store.path), obs_ids=ids, on_region=ON,
                      geom={"width": [1.2, 1.2], "binsz": 0.04, "frame": "icrs"},
                      energy_axis={"min": 0.5, "max": 30, "nbins": 8},
                      energy_axis_true={"min": 0.2, "max": 60, "nbins": 24},
                      safe_mask={"methods": ["aeff-default"], "offset_max": 2.0},
                      background={"method": "reflected", "fallback": "fov"},
                      model=PL, reduce={"batch_size": 2},
                      light_curve={"time_bins": "run", "energy_edges": [0.5, 30]})
    snakemake(wd, cf, "--cores", "2")
    out = wd / "results" / "fb"
    assert list(out.glob("obs/batch-*.json")) and list(out.glob("obs/batch-*.h5"))
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert res["background"]["methods"] == {"reflected": 3, "fov": 1}
    assert res["background"]["runs"][ids[3]] == "fov" and ids[3] in res["background"]["fallbacks"]
    assert sorted(res["obs_ids"]) == ids and not res["excluded"]
    pha = read_tables(out / "obs" / str(ids[3]) / "pha.fits", {"SPECTRUM"})["SPECTRUM"]
    assert pha.header["BKGMETH"] == "fov"
    assert summary_rows(wd)["fb"]["background_methods"] == "fov: 1, reflected: 3"
    rows, _ = read_ecsv_rows(out / "lightcurve" / "lightcurve.ecsv")
    assert len(rows) == 4 and all(r["success"] for r in rows)
    specs = [read_spectrum(out / "obs" / str(o)) for o in ids]
    assert sum(r["counts"] for r in rows) == sum(int(s.counts[s.mask_safe].sum()) for s in specs)
