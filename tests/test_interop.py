"""Interoperability with gammapy 2.x, the tool most IACT users load OGIP spectra with.

Marked ``interop``; skipped with a message when gammapy is not installed (the ``interop``
extra).  gammapy serves here only as the field's reader and fitter: it must load every OGIP
set, flux-point table and counts image extspec writes and fit the same power law, and
extspec must load the sets gammapy writes.  No other test takes a check value from it, and
the library never imports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ON_REGION, data_path, find_data

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[1]
JOINT_CRAB = data_path("joint-crab-spectra/hess")
SMALL_IDS = (20326, 20327)
PL_START = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1.0e-12}}}


def _joint_crab_phas():
    phas = sorted(JOINT_CRAB.glob("pha_obs*.fits"))
    if len(phas) != 4:
        find_data("joint-crab-spectra/hess/pha_obs23592.fits", "the joint-crab H.E.S.S. spectra (4 PHA files)")
    return phas


def _same_as_gammapy(spec, gds, rtol=1e-6):
    """extspec's SpectrumDataset equals gammapy's SpectrumDatasetOnOff (counts, counts_off,
    alpha, exposure, kernel, safe mask, energy axes, livetime) to ``rtol``."""
    def flat(m):
        return np.asarray(m.data, dtype=float).ravel()

    np.testing.assert_array_equal(spec.counts, flat(gds.counts))
    np.testing.assert_array_equal(spec.counts_off, flat(gds.counts_off))
    np.testing.assert_allclose(spec.alpha, flat(gds.alpha), rtol=rtol)
    np.testing.assert_allclose(spec.exposure, gds.exposure.quantity.to_value("m2 s").ravel(), rtol=rtol)
    kernel = gds.edisp.get_edisp_kernel()
    np.testing.assert_allclose(spec.edisp, kernel.pdf_matrix, rtol=rtol, atol=1e-12)
    np.testing.assert_array_equal(spec.mask_safe, np.asarray(gds.mask_safe.data).ravel())
    np.testing.assert_allclose(spec.energy_reco.edges, gds.counts.geom.axes["energy"].edges.to_value("TeV"), rtol=rtol)
    np.testing.assert_allclose(spec.energy_true.edges, gds.exposure.geom.axes["energy_true"].edges.to_value("TeV"),
                               rtol=rtol)
    np.testing.assert_allclose(spec.livetime, gds.exposure.meta["livetime"].to_value("s"), rtol=1e-12)


def _gammapy_pl_fit(gammapy, phas, start=PL_START):
    """gammapy's joint power-law WStat fit of the OGIP sets ``phas``: (values, errors, total stat)."""
    from gammapy.datasets import Datasets, SpectrumDatasetOnOff
    from gammapy.modeling import Fit
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

    p = start["parameters"]
    pl = PowerLawSpectralModel(index=p["index"]["value"], amplitude=f"{p['amplitude']['value']} cm-2 s-1 TeV-1",
                               reference="1 TeV")
    model = SkyModel(spectral_model=pl, name="source")
    datasets = Datasets([SpectrumDatasetOnOff.read(str(f)) for f in phas])
    for d in datasets:
        d.models = [model]
    result = Fit().run(datasets)
    assert result.success, result
    values = {"index": pl.index.value, "amplitude": pl.amplitude.quantity.to_value("cm-2 s-1 TeV-1")}
    errors = {"index": pl.index.error, "amplitude": pl.amplitude.error}
    return values, errors, float(result.total_stat)


# ------------------------------------------------ extspec's products, read by gammapy --


@pytest.fixture(scope="module", params=["exact", "reference"])
def small_analysis(request, tmp_path_factory, store_path):
    """Two seed runs through the workflow's steps (the functions its rules call): OGIP sets,
    fit/result.yaml, flux points and the counts image, with the exact or the reference method."""
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation, run_fit, run_flux_points, stack_counts

    method = request.param
    cfg = load_config({"name": f"small-{method}", "obs_ids": list(SMALL_IDS), "on_region": ON_REGION,
                       "spectrum": {"method": method}, "model": PL_START,
                       "fit": {"covariance": "hesse" if method == "exact" else "migrad",
                               "integration": method}})
    out = tmp_path_factory.mktemp(f"small-{method}")
    dirs = [out / "obs" / str(o) for o in SMALL_IDS]
    for o, d in zip(SMALL_IDS, dirs):
        reduce_observation(stage_config(cfg, "reduce"), store_path, o, d)
    phas = [d / "pha.fits" for d in dirs]
    fit = out / "fit" / "result.yaml"
    run_fit(stage_config(cfg, "fit"), phas, fit, out / "fit" / "spectrum.png")
    run_flux_points(stage_config(cfg, "flux_points"), phas, fit, out / "fit" / "flux_points.ecsv",
                    out / "fit" / "sed.png")
    stack_counts(stage_config(cfg, "stack"), [d / "cube.h5" for d in dirs], dirs, out / "stacked" / "counts.fits",
                 out / "stacked" / "counts.png")
    return {"method": method, "out": out, "phas": phas, "fit": fit}


def test_gammapy_reads_every_set(gammapy, small_analysis, store_path):
    import astropy.units as u
    from astropy.time import Time
    from gammapy.datasets import SpectrumDatasetOnOff

    from extspec.io.datastore import open_datastore
    from extspec.io.ogip import read_spectrum

    store = open_datastore(store_path)
    for obs_id, pha in zip(SMALL_IDS, small_analysis["phas"]):
        gds = SpectrumDatasetOnOff.read(str(pha))
        assert gds.name == str(obs_id)
        _same_as_gammapy(read_spectrum(pha), gds)
        # GTI: START/STOP with the DL3 events' time reference (MJDREFI + MJDREFF, TT)
        obs = store.load(obs_id)
        mjdref = Time(51910, 0.000742870370370241, format="mjd", scale="tt")
        want = (mjdref + obs.gti[:, 0] * u.s).mjd
        np.testing.assert_allclose(gds.gti.time_start.tt.mjd, want, rtol=0, atol=1e-9)
        assert gds.gti.time_sum.to_value("s") == pytest.approx(obs.ontime, rel=1e-12)


def test_gammapy_fit_equals_result_yaml(gammapy, small_analysis):
    """gammapy's joint power-law fit of the written sets = extspec's fit/result.yaml to 1e-4."""
    result = yaml.safe_load(small_analysis["fit"].read_text())
    values, errors, total_stat = _gammapy_pl_fit(gammapy, small_analysis["phas"])
    for name in ("index", "amplitude"):
        ours = result["model"]["parameters"][name]
        assert ours["value"] == pytest.approx(values[name], rel=1e-4), name
        if small_analysis["method"] == "exact":  # both HESSE (reference: MIGRAD's own covariance)
            assert ours["error"] == pytest.approx(errors[name], rel=1e-2), name
    assert result["total_stat"] == pytest.approx(total_stat, rel=1e-4)


def test_gammapy_reads_flux_points_and_counts_image(gammapy, small_analysis):
    import warnings

    from astropy.io import fits
    from astropy.table import Table
    from gammapy.estimators import FluxPoints
    from gammapy.maps import Map

    path = small_analysis["out"] / "fit" / "flux_points.ecsv"
    table = Table.read(path, format="ascii.ecsv")
    fp = FluxPoints.read(path, sed_type="likelihood")
    assert fp.sed_type_init == "likelihood" and len(table) >= 3
    np.testing.assert_allclose(fp.energy_ref.to_value("TeV"), table["e_ref"], rtol=1e-12)
    np.testing.assert_allclose(fp.dnde.quantity.to_value("cm-2 s-1 TeV-1").ravel(), table["dnde"], rtol=1e-10)
    np.testing.assert_allclose(fp.dnde_err.quantity.to_value("cm-2 s-1 TeV-1").ravel(), table["dnde_err"],
                               rtol=1e-10)
    np.testing.assert_allclose(fp.flux.quantity.to_value("cm-2 s-1").ravel(), table["flux"], rtol=1e-6)
    np.testing.assert_array_equal(fp.is_ul.data.ravel(), table["is_ul"])
    assert fp.counts.data.shape[:2] == (len(table), len(SMALL_IDS))  # per dataset

    counts = small_analysis["out"] / "stacked" / "counts.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an invalid BUNIT
        m = Map.read(counts)
    with fits.open(counts) as f:
        np.testing.assert_array_equal(m.data, f[0].data)
    assert m.geom.frame == "galactic" and m.data.sum() > 500
    np.testing.assert_allclose([m.geom.center_skydir.l.deg, m.geom.center_skydir.b.deg], [347.3, -0.5], atol=1e-9)
    np.testing.assert_allclose(m.geom.pixel_scales.to_value("deg"), [0.04, 0.04], rtol=1e-12)


def test_gammapy_reads_unusable_set(gammapy, tmp_path):
    """No OFF region: gammapy sees a finite alpha and no safe bin, not BACKSCAL = 0."""
    from gammapy.datasets import SpectrumDatasetOnOff
    from test_ogip import make_dataset

    from extspec.io.ogip import write_spectrum

    write_spectrum(make_dataset(usable=False), tmp_path)
    gds = SpectrumDatasetOnOff.read(str(tmp_path / "pha.fits"))
    assert np.all(np.isfinite(gds.alpha.data)) and not np.any(gds.mask_safe.data)


# ----------------------------------------------- OGIP sets of gammapy, read by extspec --


def test_extspec_reads_gammapy_written_set(gammapy, tmp_path):
    """A gammapy dataset with known arrays, written by gammapy, read by extspec to 1e-6."""
    import astropy.units as u
    from gammapy.datasets import SpectrumDatasetOnOff
    from gammapy.irf import EDispKernel, EDispKernelMap
    from gammapy.maps import MapAxis, RegionGeom, RegionNDMap

    from extspec.io.ogip import read_spectrum

    rng = np.random.default_rng(5)
    e_reco = MapAxis.from_energy_bounds("0.2 TeV", "50 TeV", nbin=9, name="energy")
    e_true = MapAxis.from_energy_bounds("0.1 TeV", "100 TeV", nbin=15, name="energy_true")
    region = "icrs;circle(83.63,22.01,0.11)"
    geom, geom_true = RegionGeom.create(region, axes=[e_reco]), RegionGeom.create(region, axes=[e_true])
    kernel = rng.random((15, 9)) * (rng.random((15, 9)) > 0.5)
    kernel /= np.maximum(kernel.sum(axis=1, keepdims=True), 1e-30) * 1.1
    livetime = 1234.5 * u.s
    exposure = RegionNDMap.from_geom(geom_true, data=rng.uniform(1e8, 5e9, 15), unit="m2 s")
    exposure.meta["livetime"] = livetime
    edisp = EDispKernelMap.from_edisp_kernel(EDispKernel(axes=[e_true, e_reco], data=kernel), geom=geom_true)
    mask = np.arange(9) >= 2
    gds = SpectrumDatasetOnOff(
        name="31415",
        counts=RegionNDMap.from_geom(geom, data=rng.poisson(40, 9)),
        counts_off=RegionNDMap.from_geom(geom, data=rng.poisson(300, 9)),
        acceptance=RegionNDMap.from_geom(geom, data=np.ones(9)),
        acceptance_off=RegionNDMap.from_geom(geom, data=rng.uniform(5, 12, 9)),
        exposure=exposure, edisp=edisp, mask_safe=RegionNDMap.from_geom(geom, data=mask, dtype=bool),
    )
    gds.write(tmp_path / "pha_obs31415.fits", format="ogip")
    back_gp = SpectrumDatasetOnOff.read(tmp_path / "pha_obs31415.fits")
    spec = read_spectrum(tmp_path / "pha_obs31415.fits")
    assert spec.obs_id == 31415
    _same_as_gammapy(spec, back_gp)
    _same_as_gammapy(spec, gds)
    np.testing.assert_allclose(spec.edisp, kernel, rtol=1e-6, atol=1e-12)  # float32 MATRIX in gammapy's RMF


def test_extspec_reads_joint_crab(gammapy):
    from gammapy.datasets import SpectrumDatasetOnOff

    from extspec.io.ogip import read_spectrum

    for pha in _joint_crab_phas():
        spec = read_spectrum(pha)
        assert spec.obs_id == int(pha.stem.split("obs")[-1])
        _same_as_gammapy(spec, SpectrumDatasetOnOff.read(str(pha)))


def test_external_only_analysis_fits_like_gammapy(gammapy, tmp_path):
    """The workflow on only the four joint-crab spectra (external_spectra; no data store, no
    reduction) gives gammapy's power-law fit of the same files within 0.1 sigma."""
    from test_workflow import snakemake, write_config

    phas = _joint_crab_phas()
    cfg = write_config(tmp_path, name="jc", obs_ids=[], external_spectra=[str(JOINT_CRAB / "pha_obs*.fits")],
                       model={"type": "power_law", "parameters": {"index": {"value": 2.5},
                                                                  "amplitude": {"value": 3.0e-11}}})
    snakemake(tmp_path, cfg, "--cores", "2")
    result = yaml.safe_load((tmp_path / "results" / "jc" / "fit" / "result.yaml").read_text())
    assert [int(o) for o in result["obs_ids"]] == [int(p.stem.split("obs")[-1]) for p in phas]
    start = {"parameters": {"index": {"value": 2.5}, "amplitude": {"value": 3.0e-11}}}
    values, errors, total_stat = _gammapy_pl_fit(gammapy, phas, start)
    for name in ("index", "amplitude"):
        ours = result["model"]["parameters"][name]
        assert abs(ours["value"] - values[name]) < 0.1 * errors[name], name
    assert result["total_stat"] == pytest.approx(total_stat, rel=1e-6)


@pytest.mark.filterwarnings("ignore:ERFA function")  # gammapy's UTC reference at MJD 0 ("dubious year")
def test_gammapy_reads_light_curve(gammapy, tmp_path):
    """lightcurve_gadf.ecsv (written next to lightcurve.ecsv) is a gammapy light curve with the
    same fluxes, errors, upper limits and time bins; three runs, one bin each, two energy bins."""
    import dataclasses

    from astropy.table import Table
    from gammapy.estimators import FluxPoints
    from test_lightcurve import TIME_REF, TRUTH, template, truth_result

    from extspec.io.fitresult import write_fit_result
    from extspec.io.ogip import write_spectrum
    from extspec.simulate import simulate_onoff
    from extspec.workflow.pipeline import run_light_curve

    rng = np.random.default_rng(4)
    dirs = []
    for k in range(3):
        t = template(1512.0, obs_id=k + 1)
        t0 = 1.8e8 + 3600.0 * k
        t = dataclasses.replace(t, gti=np.array([[t0, t0 + 1680.0]]), meta=dict(TIME_REF))
        spec = simulate_onoff(t, "power_law", TRUTH, rng, background_off=t.counts_off)
        dirs.append(tmp_path / str(k + 1))
        write_spectrum(spec, dirs[-1])
    write_fit_result(truth_result(), tmp_path / "result.yaml")
    cfg = {"name": "t", "fit": {"integration": "exact", "covariance": "hesse", "minos": False},
           "light_curve": {"time_bins": "run", "night_boundary_utc": 12, "energy_edges": [0.5, 2.0, 20.0],
                           "spectra": False, "sqrt_ts_threshold_ul": 2.0}}
    run_light_curve(cfg, dirs, tmp_path / "result.yaml", tmp_path / "lightcurve.ecsv", tmp_path / "lc.png")
    flat = Table.read(tmp_path / "lightcurve.ecsv", format="ascii.ecsv")
    assert len(flat) == 6 and flat["flux"].unit == "cm-2 s-1"
    fp = FluxPoints.read(tmp_path / "lightcurve_gadf.ecsv", format="lightcurve")
    assert fp.sed_type_init == "flux"
    time_axis = fp.geom.axes["time"]
    assert time_axis.nbin == 3 and fp.geom.axes["energy"].nbin == 2
    # gammapy adds the MJD to a UTC reference at MJD 0 and so reads the times ~30 s (the leap
    # seconds since 1960) early; its own light curves round-trip the same way
    np.testing.assert_allclose(time_axis.time_min.utc.mjd, np.unique(flat["time_min"]), atol=40 / 86400)
    for name in ("flux", "flux_err", "flux_errn", "flux_errp", "flux_ul", "sqrt_ts"):
        ours = np.array(flat[name]).reshape(3, 2)
        theirs = getattr(fp, name).quantity.to_value("cm-2 s-1" if name != "sqrt_ts" else "")
        np.testing.assert_allclose(theirs.reshape(3, 2), ours, rtol=1e-9, err_msg=name)
    np.testing.assert_array_equal(fp.is_ul.data.reshape(3, 2), np.array(flat["is_ul"]).reshape(3, 2))


# ------------------------------------------ joint fits: the per-instrument OGIP inputs --


@pytest.fixture(scope="module")
def joint_inputs(tmp_path_factory):
    """One H.E.S.S. DR1 and one MAGIC Crab run reduced with the workflow's step (each analysis
    with its own store and binning, as config/crab-joint.yaml), then extspec joint-fit's step
    without nuisances: the inputs of a joint fit and its result."""
    from extspec.workflow.config import stage_config, validate_analyses
    from extspec.workflow.joint_config import validate_joint
    from extspec.workflow.joint_fit import run_joint_fit
    from extspec.workflow.pipeline import reduce_observation

    data = REPO.parent / "shared" / "data"
    stores = {"crab_hess": data / "hess-dl3-dr1", "crab_magic": data / "magic-rad-max"}
    if not all((s / "hdu-index.fits.gz").is_file() for s in stores.values()):
        pytest.skip(f"H.E.S.S. DR1 or MAGIC DL3 not found under {data}")
    raw = yaml.safe_load((REPO / "config" / "crab-joint.yaml").read_text())
    runs = {"crab_hess": 23523, "crab_magic": 5029747}
    for a, o in runs.items():
        raw["analyses"][a].update(datastore=str(stores[a]), obs_ids=[o])
    raw["joint"] = {"j": {**raw["joint"]["crab_joint"], "systematics": {}}}
    cfgs = validate_analyses(raw, check_datastore=False)
    out = tmp_path_factory.mktemp("joint")
    phas = {}
    for a, o in runs.items():
        reduce_observation(stage_config(cfgs[a], "reduce"), stores[a], o, out / a / str(o))
        phas[a] = [out / a / str(o) / "pha.fits"]
    joint = validate_joint(raw, cfgs)["j"]
    run_joint_fit({"name": "j", **joint}, phas, out / "fit")
    return {"phas": phas, "result": out / "fit" / "result.yaml", "start": joint["model"]}


def test_gammapy_reads_joint_fit_inputs_and_fits_them_alike(gammapy, joint_inputs):
    """gammapy reads each instrument's OGIP set (H.E.S.S. full-enclosure, MAGIC point-like; two
    binnings) as extspec does, and its joint fit of both equals extspec's joint fit to 1e-4."""
    from gammapy.datasets import SpectrumDatasetOnOff

    from extspec.io.ogip import read_spectrum

    phas = [p for ps in joint_inputs["phas"].values() for p in ps]
    sets = [SpectrumDatasetOnOff.read(str(p)) for p in phas]
    for p, gds in zip(phas, sets):
        _same_as_gammapy(read_spectrum(p), gds)
    assert sets[0].counts.geom.axes["energy"].nbin != sets[1].counts.geom.axes["energy"].nbin
    result = yaml.safe_load(joint_inputs["result"].read_text())
    assert result["systematics"] == {} and result["obs_ids"] == [23523, 5029747]
    start = {"parameters": {k: {"value": v} for k, v in joint_inputs["start"]["parameters"].items()}}
    values, errors, total_stat = _gammapy_pl_fit(gammapy, phas, start)
    for name in ("index", "amplitude"):
        ours = result["model"]["parameters"][name]
        assert ours["value"] == pytest.approx(values[name], rel=1e-4), name
        assert ours["error"] == pytest.approx(errors[name], rel=1e-2), name
    assert result["total_stat"] == pytest.approx(total_stat, rel=1e-4)
