"""Cumulative table, stacked spectrum and flux points (reduction-spec §10, §11, §12.1)."""

from __future__ import annotations

import numpy as np
import pytest

from extspec.fit import fit_joint
from extspec.fluxpoints import compute_flux_points, snap_edges
from extspec.stacking import cumulative_rows, stack_spectra
from extspec.workflow.settings import fit_options, flux_point_settings

SEED_IDS = [20326, 20327, 20349, 20350, 20396, 20397]
PL_START = {"type": "power_law", "parameters": {"index": {"value": 2}, "amplitude": {"value": 2e-11}}}
FLUX_POINT_EDGES = flux_point_settings({"flux_points": {"energy_edges": [0.3, 1, 3, 10, 40]}})

# counts, counts_off, excess, sqrt_ts, alpha, acceptance_off, livetime, stat_sum
TABLE_10 = [
    (450, 687, 106.5, 4.405517626186096, 0.5, 20, 1500.0090973600734, 41.619587630493804),
    (845, 1341, 174.5, 5.215405763158092, 0.5, 40, 2997.083039179447, 68.99758872776455),
    (1288, 1966, 305.0, 7.457874883123557, 0.5, 60, 4491.585450589662, 110.36192929546934),
    (1725, 2682, 384.0, 8.075257505628382, 0.5, 80, 5989.239929720767, 150.00796042782275),
    (2198, 3618, 544.9998779296875, 10.400166037309209, 0.4568822979927063, 109.4373779296875,
     7488.240902796398, 193.5483224149079),
    (2626, 4315, 624.4998779296875, 10.837684594884903, 0.4638470709323883, 129.3529815673828,
     8993.412239596255, 213.441629407014),
]
FLOAT_COLUMNS = ("excess", "sqrt_ts", "alpha", "acceptance_off", "livetime", "stat_sum")


@pytest.fixture(scope="module")
def rows32(seed_reference):
    return cumulative_rows(list(seed_reference), float32=True)


@pytest.fixture(scope="module")
def rows64(seed_reference):
    return cumulative_rows(list(seed_reference), float32=False)


@pytest.fixture(scope="module")
def stacked(seed_reference):
    return stack_spectra(list(seed_reference), float32=True)


# ------------------------------------------------------------------ §10 cumulative rows --


@pytest.mark.parametrize("r", range(6), ids=[f"rows1..{r + 1}" for r in range(6)])
def test_cumulative_rows_float32(rows32, r):
    row = rows32[r]
    counts, counts_off, *values = TABLE_10[r]
    assert row["obs_id"] == SEED_IDS[r]
    assert row["counts"] == counts and row["counts_off"] == counts_off
    for name, want in zip(FLOAT_COLUMNS, values):
        np.testing.assert_allclose(row[name], want, rtol=1e-6, err_msg=name)
    assert row["acceptance"] == 10.0 * (r + 1)
    assert row["n_fit_bins"] == 10
    np.testing.assert_allclose(row["background"], row["alpha"] * counts_off, rtol=1e-6)
    np.testing.assert_allclose(row["excess"], counts - row["background"], rtol=1e-12)
    np.testing.assert_allclose(row["acceptance_off"], row["acceptance"] / row["alpha"], rtol=1e-6)
    np.testing.assert_allclose(row["counts_rate"], counts / row["livetime"], rtol=1e-12)


def test_cumulative_float32_quirk_exact(rows32):
    # float32 stacking reproduces the reference's printed digits, not just to 1e-6
    assert rows32[4]["alpha"] == 0.4568822979927063
    assert rows32[4]["excess"] == 544.9998779296875
    assert rows32[4]["acceptance_off"] == 109.4373779296875
    assert rows32[5]["alpha"] == 0.4638470709323883
    assert rows32[5]["excess"] == 624.4998779296875
    assert rows32[5]["acceptance_off"] == 129.3529815673828
    np.testing.assert_allclose(rows32[5]["sqrt_ts"], 10.837684594884903, rtol=1e-12)


def test_cumulative_row_1_extras(rows32):
    row = rows32[0]
    assert row["background"] == 343.5
    assert row["exposure_min"] == 4309262.5
    assert row["exposure_max"] == 422238464.0
    np.testing.assert_allclose(row["ontime"], 1682.9999999999993, rtol=1e-13)
    np.testing.assert_allclose(row["livetime"], 1500.0090973600734, rtol=1e-14)


def test_cumulative_ontime_is_gti_union(rows32, seed_reference):
    np.testing.assert_allclose(rows32[-1]["ontime"], sum(o.ontime for o in seed_reference.observations),
                               rtol=1e-13)


def test_cumulative_rows_float64(rows64):
    for r in range(4):
        counts, counts_off, excess, sqrt_ts, alpha, acc_off, livetime, stat_sum = TABLE_10[r]
        row = rows64[r]
        assert row["counts"] == counts and row["counts_off"] == counts_off
        assert row["alpha"] == alpha and row["excess"] == excess
        np.testing.assert_allclose(row["sqrt_ts"], sqrt_ts, rtol=1e-12)
        np.testing.assert_allclose(row["stat_sum"], stat_sum, rtol=1e-12)
    np.testing.assert_allclose(rows64[4]["alpha"], 0.45688225539, rtol=1e-10)
    np.testing.assert_allclose(rows64[4]["excess"], 545.0, rtol=1e-12)
    np.testing.assert_allclose(rows64[4]["sqrt_ts"], 10.400169391, rtol=1e-10)
    np.testing.assert_allclose(rows64[5]["alpha"], 0.46384704519, rtol=1e-10)
    np.testing.assert_allclose(rows64[5]["excess"], 624.5, rtol=1e-12)
    np.testing.assert_allclose(rows64[5]["sqrt_ts"], 10.837686779, rtol=1e-10)
    # float64 alpha is the OFF-weighted mean of the per-run alphas: runs 1-4 have alpha 1/2
    # and 2682 OFF counts, run 5 alpha 1/3 and 3618 - 2682 = 936, so (1341 + 312) / 3618
    np.testing.assert_allclose(rows64[4]["alpha"], (2682 / 2 + 936 / 3) / 3618, rtol=1e-14)


def test_cumulative_skips_unusable(seed_reference):
    import dataclasses

    bad = dataclasses.replace(seed_reference[1], usable=False, mask_safe=np.zeros(10, bool))
    rows = cumulative_rows([seed_reference[0], bad, seed_reference[2]], float32=True)
    assert [r["obs_id"] for r in rows] == [20326, 20349]


# ------------------------------------------------------------------- §11 stacked dataset --


def test_stacked_counts(stacked):
    np.testing.assert_array_equal(stacked.counts, [1243, 599, 335, 199, 130, 68, 35, 12, 2, 3])
    np.testing.assert_array_equal(stacked.counts_off, [2489, 914, 417, 228, 153, 67, 27, 15, 4, 1])
    np.testing.assert_array_equal(stacked.acceptance, 6.0)
    assert stacked.mask_safe.all()


def test_stacked_acceptance_off_alpha(stacked):
    np.testing.assert_allclose(
        stacked.acceptance_off,
        [12.879689, 13.031287, 12.930231, 13.1328, 12.929578, 12.898396, 13.315068, 12.857142, 13.090909, 18.0],
        rtol=1e-6)
    np.testing.assert_allclose(
        stacked.alpha,
        [0.46584976, 0.46043035, 0.46402884, 0.45687133, 0.46405226, 0.46517414, 0.45061728, 0.46666667,
         0.45833334, 0.33333334],
        rtol=1e-6)
    assert stacked.alpha.dtype == np.float32


def test_stacked_exposure_livetime(stacked, seed_reference):
    np.testing.assert_allclose(stacked.exposure[[5, 10, 15, 20, 25]],
                               [6.3202176e8, 1.6151447e9, 2.3705034e9, 2.4829972e9, 2.1839480e9], rtol=1e-6)
    np.testing.assert_allclose(stacked.livetime, 8993.412239596255, rtol=1e-14)
    # §10.1: the kernel is the per-true-bin mean weighted by the coarse-pixel exposure
    # (all masks are all-true here); rows without any weight stay 0
    k = np.array([s.edisp for s in seed_reference])
    w = np.array([s.edisp_weight for s in seed_reference])
    tot = w.sum(axis=0)
    pos = tot > 0
    assert pos.sum() >= 27
    want = np.einsum("di,dij->ij", w[:, pos], k[:, pos]) / tot[pos, None]
    np.testing.assert_allclose(stacked.edisp[pos], want, rtol=1e-13, atol=1e-17)
    assert np.all(stacked.edisp[~pos] == 0.0)
    np.testing.assert_allclose(stacked.edisp_weight, tot, rtol=1e-13)


def test_stacked_power_law_fit(stacked):
    r = fit_joint([stacked], PL_START, fit_options({"fit": {"covariance": "migrad"}}))
    assert r.success
    np.testing.assert_allclose(r.values["index"], 2.0975984371517056, rtol=1e-4)
    np.testing.assert_allclose(r.values["amplitude"], 1.2834491375933198e-11, rtol=1e-4)
    err = {p.name: p.error for p in r.parameters}
    np.testing.assert_allclose(err["index"], 0.06665984, rtol=1e-4)
    np.testing.assert_allclose(err["amplitude"], 1.02164957e-12, rtol=1e-4)
    np.testing.assert_allclose(r.total_stat, 20.825267212361858, rtol=1e-6)


# ----------------------------------------------------------------------- §12.1 flux points --

FP_TABLE = [
    # e_ref, norm, norm_err, ts, dnde, dnde_err
    (0.48934497, 0.81434334, 0.13166535, 40.226223, 4.7078487e-11, 7.6117841e-12),
    (1.66283751, 1.19431828, 0.11555251, 124.502984, 5.2766930e-12, 5.1052983e-13),
    (5.65046900, 1.16851243, 0.22181629, 34.651851, 3.9454986e-13, 7.4896579e-14),
    (19.2007937, 0.23960865, 0.29676017, 0.664197, 6.1829800e-15, 7.6577460e-15),
]
FP_COLUMNS = ("e_ref", "norm", "norm_err", "ts", "dnde", "dnde_err")


def test_snap_edges():
    reco = np.geomspace(0.3, 40, 11)
    got = snap_edges([0.3, 1, 3, 10, 40], reco)
    np.testing.assert_array_equal(got, reco[[0, 2, 5, 7, 10]])
    np.testing.assert_allclose(got, [0.3, 0.798195, 3.464102, 9.216762, 40], rtol=1e-6)
    # outside the axis: clipped to the ends; duplicates removed
    np.testing.assert_array_equal(snap_edges([0.1, 0.31, 100], reco), reco[[0, 10]])


@pytest.fixture(scope="module")
def flux_points(seed_reference, seed_fit):
    return compute_flux_points(list(seed_reference), seed_fit, FLUX_POINT_EDGES, "exact")


def test_flux_points_table(flux_points):
    assert len(flux_points) == 4
    for k, (row, want) in enumerate(zip(flux_points, FP_TABLE)):
        for name, w in zip(FP_COLUMNS, want):
            np.testing.assert_allclose(row[name], w, rtol=1e-5, err_msg=f"group {k} {name}")
        assert row["success"]
        np.testing.assert_allclose(row["sqrt_ts"], np.sign(row["norm"]) * np.sqrt(row["ts"]), rtol=1e-12)


def test_flux_points_edges_and_ul(flux_points):
    reco = np.geomspace(0.3, 40, 11)
    np.testing.assert_array_equal([r["e_min"] for r in flux_points], reco[[0, 2, 5, 7]])
    np.testing.assert_array_equal([r["e_max"] for r in flux_points], reco[[2, 5, 7, 10]])
    assert [r["is_ul"] for r in flux_points] == [False, False, False, True]
    for r in flux_points:
        assert r["norm_ul"] > r["norm"]
        np.testing.assert_allclose(r["dnde_ul"] / r["dnde"], r["norm_ul"] / r["norm"], rtol=1e-12)


# ------------------------------------------------------------------ stacked counts image --


@pytest.mark.parametrize("erange", [None, [1.0, 10.0]])
def test_stack_counts_fits_and_png(tmp_path, seed_reference, erange):
    """stacked/counts.fits (own FITS writer) opens in astropy with the map's WCS and the
    summed counts; the PNG is written next to it."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    from extspec.io.cube_io import write_cube
    from extspec.io.ogip import write_spectrum
    from extspec.workflow.pipeline import stack_counts

    cubes, dirs = [], []
    for cube, spec in zip(seed_reference.cubes, seed_reference):
        d = tmp_path / "obs" / str(spec.obs_id)
        write_cube(cube, d / "cube.h5")
        write_spectrum(spec, d)
        cubes.append(d / "cube.h5")
        dirs.append(d)
    config = {"name": "seed", "on_region": "galactic;circle(347.3,-0.5,0.5)", "exclusion_regions": [],
              "stacked": {"energy_range": erange}}
    out = tmp_path / "stacked"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stack_counts(config, cubes, dirs, out / "counts.fits", out / "counts.png")
    assert sorted(p.name for p in out.iterdir()) == ["counts.fits", "counts.png"]

    geom = seed_reference.cubes[0].geom
    edges = seed_reference.cubes[0].energy_reco.edges
    sel = slice(None) if erange is None else (edges[:-1] >= 1.0 - 1e-9) & (edges[1:] <= 10.0 + 1e-9)
    want = sum(c.counts[sel].sum(axis=0) for c in seed_reference.cubes)
    with fits.open(out / "counts.fits") as f:
        f.verify("exception")
        h, data = f[0].header, f[0].data
        assert data.dtype.kind == "i" and data.dtype.itemsize == 4
        np.testing.assert_array_equal(data, want)
        assert data.shape == geom.shape == (38, 38) and int(data.sum()) == int(want.sum()) > 500
        assert WCS(h).wcs.compare(geom.wcs.wcs)
        assert h["CTYPE1"] == "GLON-CAR" and h["CRVAL1"] == 347.3 and h["CDELT2"] == 0.04
        assert h["BUNIT"] == "count" and h["NOBS"] == 6
        assert h["OBS_IDS"] == " ".join(map(str, SEED_IDS))
        if erange is None:
            assert (h["EMIN"], h["EMAX"]) == (edges[0], edges[-1]) == (0.3, 40.0)
        else:
            assert h["EMIN"] == edges[:-1][sel].min() and h["EMAX"] == edges[1:][sel].max()
            assert 1.0 <= h["EMIN"] < h["EMAX"] <= 10.0
    png = (out / "counts.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
