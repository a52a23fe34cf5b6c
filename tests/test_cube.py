"""Counts / exposure / dispersion cube of one observation (reduction-spec §2-§4, §11).

Uses the session reductions of tests/conftest.py (``seed_reference`` and ``seed_exact``).
"""

from __future__ import annotations

import numpy as np
import pytest

from extspec.cube import energy_bin_index, pixel_offsets

RECO_EDGES = np.geomspace(0.3, 40, 11)


@pytest.fixture(scope="module")
def cube(seed_reference):
    return seed_reference.cubes[0]  # 20326


@pytest.fixture(scope="module")
def obs(seed_reference):
    return seed_reference.observations[0]


# ------------------------------------------------------------------------------- §2.1 WCS --


def test_map_wcs_keywords(cube):
    g = cube.geom
    assert g.npix == (38, 38)  # rint(37.5) = 38, half to even
    assert g.width == pytest.approx((1.52, 1.52), rel=1e-15)
    w = g.wcs.wcs
    assert list(w.ctype) == ["GLON-CAR", "GLAT-CAR"]
    np.testing.assert_array_equal(w.crval, [347.3, -0.5])
    np.testing.assert_array_equal(w.crpix, [19.5, 19.5])
    np.testing.assert_array_equal(w.cdelt, [-0.04, 0.04])
    assert cube.counts.shape == (10, 38, 38)
    assert cube.exposure.shape == (30, 38, 38)


def test_oblique_pixel_centres(cube, assert_printed):
    lon, lat = cube.geom.pixel_centers()
    assert_printed([lon[18, 18], lat[18, 18]], "347.32000082 -0.51999997", "pixel (18, 18)")
    assert_printed([lon[0, 0], lat[0, 0]], "348.0401116 -1.2399583", "pixel (0, 0)")
    # not the hand formula l = 347.3 + (i - 18.5) * 0.04 (the projection is oblique)
    assert abs(lat[0, 0] - -1.24) > 1e-5


def test_coarse_geometry(cube):
    g = cube.edisp_geom
    assert g.npix == (8, 8)
    np.testing.assert_array_equal(g.wcs.wcs.crpix, [4.5, 4.5])
    assert g.binsz == 0.2
    assert cube.edisp_kernel.shape == (8, 8, 30, 10)
    assert cube.edisp_exposure.shape == (30, 8, 8)


# ---------------------------------------------------------------------------- §2.2 counts --


def test_counts_20326(cube):
    assert int(cube.counts.sum()) == 1128
    np.testing.assert_array_equal(cube.counts.sum(axis=(1, 2)), [573, 276, 127, 65, 49, 19, 12, 5, 1, 1])


@pytest.mark.parametrize(
    "energy, expected",
    [
        (0.3, 0),  # first edge included
        (0.2999999, -1),  # below 0.3 TeV excluded
        (0.1, -1),
        (RECO_EDGES[1], 1),  # an energy exactly at an edge goes to the upper bin
        (RECO_EDGES[5], 5),
        (RECO_EDGES[9], 9),
        (RECO_EDGES[5] * (1 - 1e-12), 4),
        (39.999, 9),
        (40.0, -1),  # last edge excluded
        (100.0, -1),
    ],
)
def test_energy_bin_index_float64(energy, expected):
    assert energy_bin_index(np.array([energy]), RECO_EDGES)[0] == expected


def test_energy_bin_index_float32_events():
    # float32 energies are binned with a float32 ln E (§2.2); stay clear of the edges here,
    # within ~1.5e-7 of an edge the float32 logarithm may put an event on the other side
    e = np.array([0.31, 40.0, 41.0, 0.29, 1.0, 39.0], dtype=np.float32)
    np.testing.assert_array_equal(energy_bin_index(e, RECO_EDGES), [0, -1, -1, -1, 2, 9])


# -------------------------------------------------------------------------- §3 exposure --

EXPOSURE_TABLE = [
    ((18, 18), "0.6700383", "1.054336e8 2.796979e8 4.104065e8 4.233673e8 3.683984e8 2.699200e8"),
    ((0, 0), "0.3592647", "1.066550e8 2.984190e8 4.380638e8 4.248366e8 3.620019e8 2.830629e8"),
    ((37, 37), "1.7424522", "5.077859e7 1.438131e8 2.508516e8 3.303770e8 3.455298e8 2.907125e8"),
]
TRUE_BINS = [5, 10, 15, 20, 25, 29]


@pytest.mark.parametrize("pix, theta, values", EXPOSURE_TABLE, ids=["18-18", "0-0", "37-37"])
def test_exposure_table(cube, obs, assert_printed, pix, theta, values):
    x, y = pix
    assert_printed(pixel_offsets(obs, cube.geom)[y, x], theta, f"theta{pix}")
    assert_printed(cube.exposure[TRUE_BINS, y, x], values, f"exposure{pix}")


def test_exposure_true_centres(cube, assert_printed):
    c = cube.energy_true.centers
    assert_printed(c[[0, 1, 29]], "0.0567528 0.0731175 88.1014", "true log-centres")
    assert_printed(c[[5, 10, 15, 20, 25]], "0.2014 0.7150 2.538 9.009 31.98", "true log-centres")


def test_exposure_is_aeff_times_livetime(cube, obs):
    off = pixel_offsets(obs, cube.geom)
    e = cube.energy_true.centers
    want = obs.aeff.evaluate(e[:, None, None], off[None]) * obs.livetime
    np.testing.assert_allclose(cube.exposure, want, rtol=1e-14, atol=0)


# ------------------------------------------------------------------------ §4 the kernel --

KERNEL_ROWS = {
    8: "0.707659 0.216646 0.020692 0.002040 0 0 0 0 0 0",
    12: "0.004330 0.051480 0.667961 0.248745 0.026262 0.001088 0 0 0 0",
    16: "0 3.404579e-05 3.710959e-03 4.398223e-02 0.6189926 0.3138043 1.909965e-02 3.762134e-04 0 0",
    20: "0 0 0 2.807265e-04 2.755590e-03 3.312879e-02 0.5081697 0.4419906 1.300710e-02 6.675330e-04",
}
ROW_SUMS = """0 .008833 .010966 .020535 .030502 .067244 .239431 .683266 .947037 .98663 .996385 .999581
    .999866 1 1 1 1 1 1 1 1 1 .999351 .999581 .992473 .928092 .502108 .143589 .045693 .025928"""


@pytest.mark.parametrize("row", sorted(KERNEL_ROWS))
def test_kernel_rows(cube, assert_printed, row):
    k = cube.edisp_kernel[3, 3]  # coarse pixel (3, 3) supplies the ON kernel (§4.4)
    assert_printed(k[row], KERNEL_ROWS[row], f"K[{row}]")
    # printed zeros are exact zeros (threshold 1e-8)
    zeros = [j for j, t in enumerate(KERNEL_ROWS[row].split()) if t == "0"]
    assert np.all(k[row, zeros] == 0.0)


def test_kernel_row_sums(cube):
    s = cube.edisp_kernel[3, 3].sum(axis=1)
    want = np.array([float(t) for t in ROW_SUMS.split()])
    np.testing.assert_allclose(s, want, rtol=0, atol=5.0001e-7)
    assert s[0] == 0.0
    assert np.all(s <= 1 + 1e-12)


def test_kernel_entries_thresholded(cube):
    k = cube.edisp_kernel
    assert np.all((k == 0) | (k >= 1e-8))


def test_kernel_pixel_offset(cube, obs, assert_printed):
    # the ON kernel comes from coarse pixel (3, 3) at 0.5576836 deg, not the centre at 0.698
    off = pixel_offsets(obs, cube.edisp_geom)
    assert_printed(off[3, 3], "0.5576836", "offset of coarse pixel (3, 3)")


# -------------------------------------------------------------------- §11 stacked cube --


def test_stacked_counts_and_livetime(seed_reference):
    cubes = seed_reference.cubes
    assert int(sum(int(c.counts.sum()) for c in cubes)) == 6473
    np.testing.assert_allclose(sum(c.livetime for c in cubes), 8993.412239596255, rtol=1e-14)


def test_stacked_cube_exposure(seed_reference):
    x = sum(c.exposure[:, 18, 18] for c in seed_reference.cubes)
    np.testing.assert_allclose(x[[10, 20]], [1.6534738e9, 2.5017295e9], rtol=1e-6)
    np.testing.assert_allclose(x[[10, 20]].astype(np.float32), [1.6534738e9, 2.5017295e9], rtol=1e-7)


# ------------------------------------------------------------------------- exact method --


def test_exact_method_counts(seed_reference, seed_exact):
    """The exact method rotates the float32 event positions in float64 (the reference in
    float32, §2.2): a handful of events sitting within ~1e-5 deg of a pixel edge move to the
    neighbouring pixel, nothing else changes."""
    moved = 0
    for ref, ex in zip(seed_reference.cubes, seed_exact.cubes):
        assert ex.method == "exact" and ref.method == "reference"
        np.testing.assert_array_equal(ex.counts.sum(axis=(1, 2)), ref.counts.sum(axis=(1, 2)))
        diff = np.abs(ex.counts.astype(int) - ref.counts)
        moved += int(diff.sum()) // 2
        # a moved event leaves one pixel for an adjacent one
        for k, iy, ix in zip(*np.nonzero(diff)):
            others = np.argwhere(diff[k])
            assert np.min(np.abs(others - [iy, ix]).max(axis=1)[np.any(others != [iy, ix], axis=1)]) == 1
    assert 1 <= moved <= 6


def test_exact_method_exposure_close(seed_reference, seed_exact):
    for ref, ex in zip(seed_reference.cubes, seed_exact.cubes):
        r = ex.exposure[5:26] / ref.exposure[5:26] - 1
        assert np.all(np.isfinite(r))
        assert np.max(np.abs(r)) < 0.02
        # it is a different method: bin-averaged, not sampled at the log-centre
        assert np.max(np.abs(r)) > 1e-4


def test_exact_kernel_interpolated_on_offset_grid(seed_exact):
    """The exact method interpolates kernels from a 0.1 deg offset grid: within 3e-4 of
    evaluating every coarse pixel directly, rows still normalised."""
    from extspec.cube import edisp_kernel

    cube = seed_exact.cubes[0]
    obs = seed_exact.observations[0]
    offsets = pixel_offsets(obs, cube.edisp_geom).ravel()
    direct, _ = edisp_kernel(obs.edisp, obs.aeff, cube.energy_true, cube.energy_reco, offsets, "exact", 4)
    got = cube.edisp_kernel.reshape(direct.shape)
    assert np.abs(got - direct).max() < 3e-4
    assert np.all(got.sum(axis=-1) <= 1 + 1e-9)


def _edisp_with_holes():
    """A small EDisp2D with NaN and negative entries (the density's cleaning is exercised)."""
    from extspec.irf import EDisp2D, make_axis

    rng = np.random.default_rng(3)
    e = np.geomspace(0.05, 100, 13)
    mu = np.linspace(0.2, 3.0, 41)
    th = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    data = rng.random((12, 40, 5))
    data[3, 7, 2], data[5, 9, 1], data[0, :, 0] = np.nan, -0.2, 0.0
    return EDisp2D(make_axis("ENERG", e[:-1], e[1:], True), make_axis("MIGRA", mu[:-1], mu[1:], False),
                   make_axis("THETA", th[:-1], th[1:], False), data)


def test_dispersion_kernel_as_the_formula():
    """density_at_nodes and _kernel_from_density (in place, offset by offset) give the bits of
    the formulas of §4.2-§4.3 written out plainly."""
    from extspec.cube import _kernel_from_density
    from extspec.irf import interp_weights

    ed = _edisp_with_holes()
    energy = np.geomspace(0.06, 80, 57)
    offsets = np.array([0.1, 0.55, 0.9, 1.3, 2.24, 2.6])
    it, wt0, wt1 = interp_weights(ed.offset, offsets)
    ie, we0, we1 = interp_weights(ed.energy, energy)
    d = np.moveaxis(ed.data, 2, 0)
    de = d[:, ie] * we0[None, :, None] + d[:, ie + 1] * we1[None, :, None]
    want = de[it] * wt0[:, None, None] + de[it + 1] * wt1[:, None, None]
    want = np.clip(np.where(np.isfinite(want), want, 0.0), 0.0, None)
    got = ed.density_at_nodes(energy, offsets)
    assert got.tobytes() == want.tobytes() and np.isnan(ed.data).any()

    reco = np.geomspace(0.3, 40, 11)
    mu_edges = ed.migra.edges
    dmu = np.diff(mu_edges)
    cdf = np.zeros(want.shape[:-1] + (want.shape[-1] + 1,))
    np.cumsum(want * dmu, axis=-1, out=cdf[..., 1:])
    norm = cdf[..., -1]
    mu = reco[None, :] / energy[:, None]
    idx = np.clip(np.searchsorted(mu_edges, mu, side="right") - 1, 0, dmu.size - 1)
    frac = np.where(mu < mu_edges[0], 0.0, np.clip((mu - mu_edges[idx]) / dmu[idx], 0.0, 1.0))
    rows = np.arange(energy.size)[:, None]
    c0, c1 = cdf[..., rows, idx], cdf[..., rows, idx + 1]
    c = np.where(mu > mu_edges[-1], norm[..., None], c0 + frac * (c1 - c0))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(norm[..., None] > 0, c / np.where(norm > 0, norm, 1.0)[..., None], 0.0)
    k_want = np.maximum(0.0, np.diff(c, axis=-1))
    k_want[k_want < 1e-8] = 0.0
    k = _kernel_from_density(got, mu_edges, energy, reco)
    assert k.tobytes() == k_want.tobytes()
    assert k.sum(axis=-1).max() > 0.5  # a real kernel, not zeros
