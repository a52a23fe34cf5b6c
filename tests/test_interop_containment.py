"""PSF containment against gammapy (marker ``interop``; skipped without gammapy or the DR1 data).

H.E.S.S. DR1 Crab runs with a 0.1 deg ON circle and ``model.spatial: {type: point}``: each
run's exposure equals that of gammapy's ``SpectrumDatasetMaker(containment_correction=True)``
(the PSF containment at the source offset times the effective area there), the fitted
amplitude and each run's 1-10 TeV flux of the run-wise light curve agree within 1 sigma; without
``model.spatial`` extspec's amplitude is lower by about the containment (the flux inside the
region).  gammapy only checks here; no library code uses it.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import find_data

pytestmark = pytest.mark.interop

CRAB = (83.633, 22.0145)
RUNS = (23523, 23526)
ON = f"icrs;circle({CRAB[0]},{CRAB[1]},0.1)"
AXES = {"energy_axis": {"min": 1.0, "max": 30.0, "nbins": 10},
        "energy_axis_true": {"min": 0.5, "max": 60.0, "nbins": 30}}
START = {"type": "power_law", "parameters": {"index": {"value": 2.5}, "amplitude": {"value": 3.0e-11}}}


@pytest.fixture(scope="module")
def gp():
    return pytest.importorskip("gammapy", reason="gammapy (the interop extra) is not installed")


def _extspec(tmp_path, spatial):
    from extspec.io.fitresult import read_fit_result
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import read_spectra, reduce_observation, run_fit

    store = find_data("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1").parent
    model = {**START, **({"spatial": spatial} if spatial else {})}
    cfg = load_config({"name": "crab-psf", "obs_ids": list(RUNS), "on_region": ON, **AXES, "model": model,
                       "safe_mask": {"methods": ["aeff-default"]},
                       "geom": {"width": [2.0, 2.0], "binsz": 0.02, "frame": "icrs", "proj": "TAN"}})
    dirs = [tmp_path / str(o) for o in RUNS]
    for o, d in zip(RUNS, dirs):
        reduce_observation(stage_config(cfg, "reduce"), store, o, d)
    run_fit(stage_config(cfg, "fit"), dirs, tmp_path / "result.yaml", tmp_path / "spectrum.png")
    if spatial:  # the run-wise light curve, 1-10 TeV
        from extspec.workflow.pipeline import run_light_curve

        lc_cfg = {**cfg, "light_curve": {"time_bins": "run", "energy_edges": [1.0, 10.0]}}
        run_light_curve(stage_config(lc_cfg, "light_curve"), dirs, tmp_path / "result.yaml",
                        tmp_path / "lightcurve.ecsv", tmp_path / "lightcurve.png")
    return read_spectra(dirs), read_fit_result(tmp_path / "result.yaml"), store


def _gammapy(store):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom
    from gammapy.modeling import Fit
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    from regions import CircleSkyRegion

    r, t = AXES["energy_axis"], AXES["energy_axis_true"]
    e_reco = MapAxis.from_energy_bounds(r["min"], r["max"], r["nbins"], unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(t["min"], t["max"], t["nbins"], unit="TeV", name="energy_true")
    region = CircleSkyRegion(SkyCoord(*CRAB, unit="deg", frame="icrs"), 0.1 * u.deg)
    empty = SpectrumDataset.create(geom=RegionGeom.create(region=region, axes=[e_reco]), energy_axis_true=e_true)
    maker = SpectrumDatasetMaker(containment_correction=True, selection=["counts", "exposure", "edisp"])
    bkg, safe = ReflectedRegionsBackgroundMaker(), SafeMaskMaker(methods=["aeff-default"])
    datasets = Datasets()
    for obs in DataStore.from_dir(store).get_observations(list(RUNS)):
        ds = maker.run(empty.copy(name=str(obs.obs_id)), obs)
        datasets.append(safe.run(bkg.run(ds, obs), obs))
    pl = PowerLawSpectralModel(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1", reference="1 TeV")
    datasets.models = [SkyModel(spectral_model=pl, name="crab")]
    fit = Fit().run(datasets)
    assert fit.success
    return datasets, pl


def _gammapy_light_curve(datasets):
    """gammapy's run-wise light curve, 1-10 TeV, norm fitted with the fitted shape: (flux, error) per run."""
    import astropy.units as u
    from gammapy.estimators import LightCurveEstimator

    est = LightCurveEstimator(energy_edges=[1, 10] * u.TeV, source="crab", selection_optional=[])
    table = est.run(datasets).to_table(sed_type="flux", format="lightcurve")
    flux, err = (np.ravel(table[c].quantity.to_value("cm-2 s-1")) for c in ("flux", "flux_err"))
    return flux, err


def test_point_source_exposure_and_fit_match_gammapy_containment_correction(gp, tmp_path):
    spectra, result, store = _extspec(tmp_path / "point", {"type": "point"})
    datasets, pl = _gammapy(store)
    for spec, gds in zip(spectra, datasets):
        theirs = gds.exposure.quantity.to_value("m2 s").ravel()
        use = spec.energy_true.centers >= 1.0  # the fitted range (below it the bin averages of A_eff differ)
        np.testing.assert_allclose(spec.exposure[use], theirs[use], rtol=0.015)
        np.testing.assert_array_equal(spec.counts, np.asarray(gds.counts.data).ravel())
    amp = {p.name: p for p in result.parameters}["amplitude"]
    theirs = pl.amplitude.quantity.to_value("cm-2 s-1 TeV-1")
    assert abs(amp.value - theirs) < amp.error, (amp.value, theirs, amp.error)
    assert "flux of the whole source" in (tmp_path / "point" / "result.yaml").read_text()

    # the run-wise light curve, 1-10 TeV: each run's flux as gammapy's within 1 sigma
    from extspec.io.ecsv import read_ecsv_rows

    rows, meta = read_ecsv_rows(tmp_path / "point" / "lightcurve.ecsv")
    assert meta["flux_definition"].startswith("flux of the whole source")
    g_flux, g_err = _gammapy_light_curve(datasets)
    ours = np.array([float(r["flux"]) for r in rows])
    err = np.array([float(r["flux_err"]) for r in rows])
    assert ours.size == g_flux.size == len(RUNS)
    assert np.all(np.abs(ours - g_flux) < err), (ours, g_flux, err)

    # without model.spatial: the flux inside the 0.1 deg circle, 55-70 % of the source's
    _, inside, _ = _extspec(tmp_path / "none", None)
    ratio = {p.name: p for p in inside.parameters}["amplitude"].value / amp.value
    assert 0.55 < ratio < 0.72, ratio
    text = (tmp_path / "none" / "result.yaml").read_text()
    assert "flux inside the ON region" in text and "point_source_containment" in text
