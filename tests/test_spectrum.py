"""ON spectrum and reflected-region background (reduction-spec §5-§6).

Uses the session reductions of tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
import astropy.units as u

from dataclasses import replace

from extspec.cube import make_cube
from extspec.fit import fit_joint
from extspec.reflected import _grid_points_in, find_reflected_regions
from extspec.safe_mask import make_safe_mask
from extspec.skyregions import parse_region, region_pixel_mask
from extspec.spectrum import make_spectrum
from extspec.workflow.settings import fit_options, reduction_settings

SEED_IDS = (20326, 20327, 20349, 20350, 20396, 20397)
SAFE_MASK_SETTINGS = {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10}
PL_START = {"type": "power_law", "parameters": {"index": {"value": 2}, "amplitude": {"value": 2e-11}}}


def pointing(obs):
    return SkyCoord(obs.pointing_radec[0] * u.deg, obs.pointing_radec[1] * u.deg, frame="icrs")


def lonlat(region):
    return region.center.lonlat("galactic")


# ---------------------------------------------------------------------------- §5 ON side --


def test_on_region_pixels(seed_reference, on_region):
    mask = region_pixel_mask(on_region, seed_reference.cubes[0].geom)
    assert int(mask.sum()) == 484


def test_n_on_20326(seed_reference):
    spec = seed_reference[0]
    assert spec.obs_id == 20326
    np.testing.assert_array_equal(spec.counts, [206, 119, 52, 30, 22, 11, 6, 3, 0, 1])
    assert int(spec.counts.sum()) == 450


def test_x_on_20326(seed_reference, assert_printed):
    x = seed_reference[0].exposure
    assert_printed(x[[3, 4, 5, 10, 15, 20, 25, 29]],
                   "4.309262e6 5.511613e7 1.040112e8 2.707664e8 3.998488e8 4.196168e8 3.697219e8 2.698008e8",
                   "X_on")
    assert np.all(x[:3] == 0.0)
    assert int(np.argmax(x)) == 18
    assert_printed(x.max(), "4.222385e8", "max X_on")


def test_on_kernel_is_coarse_pixel_3_3(seed_reference):
    for spec, cube in zip(seed_reference, seed_reference.cubes):
        np.testing.assert_array_equal(spec.edisp, cube.edisp_kernel[3, 3])
        np.testing.assert_array_equal(spec.edisp_weight, cube.edisp_exposure[:, 3, 3])


# ---------------------------------------------------------------- §6.6 reflected regions --

TABLE_66 = {
    20326: dict(pnt="347.74039 -1.04179", sep="0.698167", npix=309, delta="1.587392", phi="1.687392 3.274785",
                off=["348.32974 -0.66737", "348.10506 -1.63720"],
                on="206 119 52 30 22 11 6 3 0 1", off_counts="405 144 65 31 20 12 5 5 0 0"),
    20327: dict(pnt="346.91949 0.09225", sep="0.703948", npix=312, delta="1.575146", phi="1.675146 3.250292",
                off=["346.29083 -0.22449", "346.60547 0.72228"],
                on="188 80 52 35 23 7 8 2 0 0", off_counts="385 139 55 34 25 9 4 2 1 0"),
    20349: dict(pnt="347.74039 -1.04179", sep="0.698167", npix=309, delta="1.587392", phi="1.687392 3.274785",
                off=["348.32974 -0.66737", "348.10506 -1.63720"],
                on="209 100 53 35 21 15 6 2 1 1", off_counts="358 125 62 30 32 11 4 2 1 0"),
    20350: dict(pnt="346.91949 0.09225", sep="0.703948", npix=312, delta="1.575146", phi="1.675146 3.250292",
                off=["346.29083 -0.22449", "346.60547 0.72228"],
                on="186 117 53 34 24 16 6 0 0 1", off_counts="417 141 75 40 27 11 2 2 1 0"),
    20396: dict(pnt="347.89983 -0.06224", sep="0.742576", npix=327, delta="1.472890",
                phi="1.572890 3.045780 4.518671",
                off=["347.46330 0.53848", "348.45502 0.43090", "348.44490 -0.56655"],
                on="231 107 64 32 19 11 5 3 1 0", off_counts="510 217 90 59 33 14 8 3 1 1"),
    20397: dict(pnt="346.76568 -0.88310", sep="0.657436", npix=293, delta="1.721372", phi="1.821372 3.542744",
                off=["347.00438 -1.49570", "346.12411 -1.02707"],
                on="223 76 61 33 21 8 4 2 0 0", off_counts="414 148 70 34 16 10 4 1 0 0"),
}


@pytest.mark.parametrize("obs_id", SEED_IDS)
def test_reflected_table(seed_reference, on_region, assert_printed, obs_id):
    i = SEED_IDS.index(obs_id)
    row = TABLE_66[obs_id]
    spec, refl, obs = seed_reference[i], seed_reference.reflected[i], seed_reference.observations[i]
    p = pointing(obs).galactic
    assert_printed([p.l.deg, p.b.deg], row["pnt"], "pointing (l, b)")
    assert_printed(on_region.center.separation(p), row["sep"], "sep(C, P)")
    assert refl.grid.npix == row["npix"]
    assert_printed(refl.delta, row["delta"], "Delta")
    assert_printed(refl.angles, row["phi"], "accepted phi")
    assert len(refl) == len(row["off"]) == spec.n_off_regions
    for k, (reg, txt) in enumerate(zip(refl.regions, row["off"])):
        assert_printed(lonlat(reg), txt, f"OFF centre {k}")
    np.testing.assert_array_equal(spec.counts, [int(t) for t in row["on"].split()])
    np.testing.assert_array_equal(spec.counts_off, [int(t) for t in row["off_counts"].split()])
    # acceptance 1, acceptance_off = N_off, alpha = 1 / N_off
    np.testing.assert_array_equal(spec.acceptance, 1.0)
    np.testing.assert_array_equal(spec.acceptance_off, float(len(row["off"])))
    np.testing.assert_allclose(spec.alpha, 1.0 / len(row["off"]), rtol=1e-15)


def test_finder_grid_20326(seed_reference, assert_printed):
    refl = seed_reference.reflected[0]
    w = refl.grid.wcs
    np.testing.assert_array_equal(w.crpix, [155.0, 155.0])
    np.testing.assert_allclose(refl.grid.pointing_pix, (154.0, 154.0), atol=1e-9)
    pr = refl.on_pixel_region
    assert_printed([pr.x, pr.y], "198.0399 208.1787", "ON centre in finder pixels")
    assert_printed(pr.radius, "50.00595", "ON r_pix")
    x, _ = _grid_points_in(pr, refl.grid.npix)
    assert x.size == 7850
    assert_printed([r.radius for r in refl.regions], "0.5000117 0.4999954", "OFF radii")


@pytest.mark.parametrize("radius, n_regions", [(0.3, 5), (0.5, 2), (0.6, 1), (0.69, 1), (0.75, 0)])
def test_region_count_vs_radius(seed_reference, radius, n_regions):
    obs = seed_reference.observations[0]
    on = parse_region(f"galactic;circle(347.3,-0.5,{radius})")
    refl = find_reflected_regions(on, pointing(obs), (), "reference")
    assert len(refl) == n_regions


# ------------------------------------------------------------------------- exact method --


def test_exact_method_on_counts(seed_exact):
    assert int(sum(int(s.counts.sum()) for s in seed_exact)) == 2666


def test_exact_method_off_regions(seed_exact, assert_printed):
    for refl in seed_exact.reflected:
        assert len(refl) > 0
        for r in refl.regions:
            assert r.radius == 0.5
    # Delta = 2 arcsin(sin R / sin d) for 20326
    d = np.deg2rad(0.6981665009027258)
    np.testing.assert_allclose(seed_exact.reflected[0].delta, 2 * np.arcsin(np.sin(np.deg2rad(0.5)) / np.sin(d)),
                               rtol=1e-9)
    assert_printed(seed_exact.reflected[0].delta, "1.5966", "exact Delta 20326")
    # same number of OFF regions as the reference finder for the seed runs
    assert [len(r) for r in seed_exact.reflected] == [2, 2, 2, 2, 3, 2]


# ------------------------------------------------------------------------ no OFF region --


@pytest.fixture(scope="module")
def no_off_spectrum(seed_reference):
    """20326 with an ON circle that contains its pointing (347.74, -1.04)."""
    obs = seed_reference.observations[0]
    settings = reduction_settings({"on_region": "galactic;circle(347.6,-0.9,0.5)", "spectrum": {"method": "reference"},
                                   "safe_mask": SAFE_MASK_SETTINGS})
    spec, refl = make_spectrum(obs, make_cube(obs, settings.cube), settings)
    spec.mask_safe = make_safe_mask(spec, settings.safe_mask, obs.bkg)
    return spec, refl


def test_no_off_region(no_off_spectrum):
    spec, refl = no_off_spectrum
    assert len(refl) == 0
    assert spec.usable is False
    assert spec.reason
    assert not spec.mask_safe.any()
    np.testing.assert_array_equal(spec.acceptance_off, 0.0)
    np.testing.assert_array_equal(spec.counts_off, 0)
    np.testing.assert_array_equal(spec.alpha, 0.0)


def test_no_off_region_excluded_from_fit(no_off_spectrum, seed_reference):
    bad, _ = no_off_spectrum
    good = seed_reference[1]  # 20327
    res = fit_joint([bad, good], PL_START, fit_options({"fit": {"covariance": "migrad"}}))
    assert bad.obs_id in res.excluded and res.excluded[bad.obs_id]
    assert res.obs_ids == [good.obs_id]
    alone = fit_joint([good], PL_START, fit_options({"fit": {"covariance": "migrad"}}))
    np.testing.assert_allclose(res.total_stat, alone.total_stat, rtol=1e-12)


# ---------------------------------------------------------------------- exclusion region --


def test_exclusion_region_moves_off_regions(seed_reference, on_region):
    obs, cube = seed_reference.observations[0], seed_reference.cubes[0]
    excl = parse_region("galactic;circle(348.33,-0.667,0.3)")
    spec, refl = make_spectrum(obs, cube, replace(seed_reference.settings, exclusion_regions=(excl,)))
    base = seed_reference.reflected[0]
    assert len(refl) >= 1 and spec.usable
    first = base.regions[0].center
    # the first unexcluded OFF candidate is gone
    assert all(r.center.separation(first) > 0.01 for r in refl.regions)
    # no OFF region overlaps the exclusion (up to the 0.01 deg finder grid)
    for r in refl.regions:
        sep = r.center.separation(excl.center)
        assert sep > r.radius + 0.3 - 0.015
    # still two OFF regions, both moved on past the exclusion (angles from the pointing-ON axis:
    # 96.7 and 187.6 deg without it, 171.2 and 262.1 deg with it, as computed by this finder)
    assert len(base) == len(refl) == 2
    np.testing.assert_allclose(np.degrees(base.angles), [96.68, 187.63], atol=0.01)
    np.testing.assert_allclose(np.degrees(refl.angles), [171.16, 262.12], atol=0.01)
    np.testing.assert_array_equal(spec.acceptance_off, float(len(refl)))
    np.testing.assert_array_equal(spec.counts, seed_reference[0].counts)  # ON side unchanged


def test_unusable_observation_named_in_log(store_path, tmp_path, caplog):
    """The pointing inside the ON region: files are written, the log names obs and reason."""
    import logging

    from extspec.io.ogip import read_spectrum
    from extspec.workflow.pipeline import reduce_observation

    red = {"on_region": "galactic;circle(347.74,-1.04,0.3)",
           "geom": {"width": [1.0, 1.0], "binsz": 0.04, "frame": "galactic", "proj": "CAR"},
           "spectrum": {"method": "exact"},
           "safe_mask": {"methods": ["aeff-default"]}}
    with caplog.at_level(logging.INFO, logger="extspec"):
        reduce_observation(red, store_path, 20326, tmp_path / "obs")
    assert "obs 20326: unusable" in caplog.text and "pointing inside the ON region" in caplog.text
    spec = read_spectrum(tmp_path / "obs")
    assert not spec.usable and not spec.mask_safe.any() and spec.acceptance_off.sum() == 0
    from astropy.io import fits

    with fits.open(tmp_path / "obs" / "bkg.fits") as f:  # no BACKSCAL = 0 (infinite alpha) for other tools
        assert np.all(f["SPECTRUM"].data["BACKSCAL"] == 1.0) and f["SPECTRUM"].header["BKGDUMMY"] is True


@pytest.mark.parametrize("method, heavy_expected", [("exact", []), ("reference", ["astropy"])])
def test_reduction_job_imports(store_path, tmp_path, method, heavy_expected):
    on_text = "galactic;circle(347.3,-0.5,0.5)"
    """A per-observation job (a fresh process in the workflow) reduces a DR1 run without
    importing astropy, regions or matplotlib; only the reference method's float32 frame
    transformation (spec §2.2) goes through astropy."""
    import json
    import subprocess
    import sys

    from extspec.workflow.config import load_config, stage_config

    # what the workflow passes: the reduction settings of a validated config (every default
    # filled in, so the job never reads the schema: no jsonschema, no yaml)
    red = stage_config(load_config({"name": "x", "on_region": on_text, "obs_ids": [20326],
                                    "spectrum": {"method": method}}), "reduce")
    code = (
        "import json, sys\n"
        "from extspec.workflow.pipeline import reduce_observation\n"
        f"red = json.loads({json.dumps(red)!r})\n"
        f"reduce_observation(red, {str(store_path)!r}, 20326, {str(tmp_path)!r})\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'astropy', 'regions', 'matplotlib', "
        "'scipy', 'jsonschema', 'yaml'})))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(res.stdout.splitlines()[-1])
    if method == "reference":  # astropy itself loads yaml
        loaded = [m for m in loaded if m != "yaml"]
    assert loaded == heavy_expected
    from extspec.io.ogip import read_spectrum

    spec = read_spectrum(tmp_path)
    assert spec.obs_id == 20326 and spec.n_off_regions == 2
    # the GTI carries the time reference of the DL3 events header (DR1: MJD 51910 + 0.00074287 TT)
    from astropy.io import fits

    with fits.open(tmp_path / "pha.fits") as f:
        g = f["GTI"].header
        assert (g["MJDREFI"], g["MJDREFF"], g["TIMESYS"], g["TIMEUNIT"]) == (51910, 0.000742870370370241, "TT", "s")
        np.testing.assert_array_equal([f["GTI"].data["START"], f["GTI"].data["STOP"]], spec.gti.T)
    if method == "reference":  # §6.6 check values
        np.testing.assert_array_equal(spec.counts, [int(t) for t in TABLE_66[20326]["on"].split()])
