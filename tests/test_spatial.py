"""Spatially resolved spectra (config key ``spatial_bins``, extspec.resolved, workflow/rules/spatial.smk).

* geometry: grid boxes, annuli and sectors tile the area they cover (solid angles), the
  refusals (no box inside, boxes smaller than the map's pixels) and the overlap warning;
* closure on simulated stores: two disks side by side of index 2.0 (east) and 2.8 (west)
  -- a source whose spectrum changes across it -- give those indices in the boxes on
  each side and a uniformity p-value far below 1e-6; the same disks with one index give
  p-values spread over (0, 1) for five seeds;
* a box without signal gets an upper limit, not a fit;
* each sub-region's spectrum is the one a single analysis with that sub-region as ON region
  makes (simulated store; DR1 RX J1713 when the data are there), bit for bit although the run's
  region-independent work is shared (RunShare: event projections, the fov OFF-area template);
* the uniformity test's vectorised common fit equals the sub-region by sub-region sum (1e-9);
* the workflow end to end on a small simulated store, and what reruns.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import skip_without
from test_workflow import dry_run, snakemake, write_config

from extspec.errors import ConfigError
from extspec.fit import fit_joint
from extspec.io.datastore import open_datastore
from extspec.reduction import reduce_observation, reduce_regions
from extspec.resolved import fit_regions, overlap_warnings, solid_angle, sub_regions, uniformity_test
from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
from extspec.workflow.settings import (fit_options, reduction_settings, spatial_bin_settings, spatial_fit_settings)

RA, DEC = 83.63, 22.01
PL = {"type": "power_law", "parameters": {"index": {"value": 2.3}, "amplitude": {"value": 1e-12}}}


def config(**over):
    cfg = {"on_region": f"icrs;circle({RA},{DEC},0.5)", "exclusion_regions": [f"icrs;circle({RA},{DEC},0.7)"],
           "geom": {"width": [3, 3], "binsz": 0.05, "frame": "icrs", "proj": "TAN"},
           "energy_axis": {"min": 0.5, "max": 30, "nbins": 8},
           "energy_axis_true": {"min": 0.2, "max": 60, "nbins": 24},
           "background": {"method": "fov"}, "safe_mask": {"methods": ["aeff-default"], "offset_max": 2.5},
           "spatial_bins": {"grid": {"size": 0.25, "within": f"icrs;circle({RA},{DEC},0.3)"}}}
    cfg.update(over)
    return cfg


def two_disks(path, indices, seed, n_runs=4):
    """Two 0.25 deg disks 0.5 deg apart in RA (east one first) with the given indices."""
    srcs = [SourceModel(lon=RA + d / math.cos(math.radians(DEC)), lat=DEC, frame="icrs", morphology="disk",
                        size=0.25, spectrum="power_law", params={"index": i, "amplitude": 4e-11, "reference": 1.0})
            for d, i in zip((0.25, -0.25), indices)]
    return simulate_datastore(path, wobble_pointings(RA, DEC, n_runs, offset=0.7), srcs, livetime=1800, seed=seed)


def resolved(path, cfg=None):
    cfg = cfg or config()
    store = open_datastore(path)
    rs = reduction_settings(cfg)
    subs = sub_regions(spatial_bin_settings(cfg), rs.cube.geom)
    per = [[] for _ in subs]
    for o in store.obs_ids:
        for k, s in enumerate(reduce_regions(store.load(o), rs, [s.region for s in subs])):
            per[k].append(s)
    rows, fits = fit_regions(per, subs, PL, fit_options({}), spatial_fit_settings(cfg))
    return subs, per, rows, uniformity_test(fits, PL, fit_options({}))


# ---------------------------------------------------------------------------- geometry --


def test_sub_regions_tile_their_area():
    grid = sub_regions(spatial_bin_settings(config(spatial_bins={"grid": {
        "size": 0.18, "within": "galactic;circle(347.3,-0.5,0.55)"}}, geom={"frame": "galactic"},
        on_region="galactic;circle(347.3,-0.5,0.5)")))
    assert len(grid) == 29  # the H.E.S.S. 2018 box count, centres within 0.55 deg
    assert [s.ij for s in grid].count((0, 0)) == 1 and grid[0].region.width == 0.18
    for s in grid:
        assert solid_angle(s.region) == pytest.approx((0.18 * math.pi / 180) ** 2, rel=2e-3)
    ann = sub_regions(spatial_bin_settings(config(spatial_bins={"annuli": {"center": [RA, DEC],
                                                                           "edges": [0, 0.2, 0.4]}})))
    sr = (math.pi / 180) ** 2
    assert solid_angle(ann[0].region) == pytest.approx(math.pi * 0.2**2 * sr, rel=1e-3)
    assert solid_angle(ann[1].region) == pytest.approx(math.pi * (0.4**2 - 0.2**2) * sr, rel=3e-3)
    assert [a.coord for a in ann] == pytest.approx([0.1, 0.3])
    sec = sub_regions(spatial_bin_settings(config(spatial_bins={"sectors": {"center": [RA, DEC], "radius": 0.6,
                                                                            "n": 4}})))
    assert [s.coord for s in sec] == [45, 135, 225, 315]
    total = sum(solid_angle(s.region) for s in sec)
    assert total == pytest.approx(math.pi * 0.36 * sr, rel=3e-3)
    assert overlap_warnings(sec) == []


def test_refusals_and_overlap_warning():
    from extspec.resolved import overlap_warnings
    from extspec.workflow.products.spatial import check_spatial_bins
    from extspec.workflow.schema import load_config
    from extspec.workflow.settings import spatial_bin_settings

    def cfg(bins, **over):
        return load_config({"name": "x", "obs_ids": [1], **config(spatial_bins=bins, **over)})

    with pytest.raises(ConfigError, match=r"spatial_bins.grid': no box centre .* lies within"):
        check_spatial_bins(cfg({"grid": {"size": 0.5, "within": f"icrs;circle({RA + 0.1},{DEC + 0.1},0.05)"}}))
    with pytest.raises(ConfigError, match=r"spatial_bins.grid.size': boxes of 0.02 deg are smaller than the map's "
                                          r"pixels \(0.05 deg"):
        check_spatial_bins(cfg({"grid": {"size": 0.02, "within": f"icrs;circle({RA},{DEC},0.1)"}}))
    with pytest.raises(ConfigError, match="sub-region 1 .* does not fit inside the map"):
        check_spatial_bins(cfg({"regions": [f"icrs;circle({RA},{DEC},0.1)", f"icrs;circle({RA + 5},{DEC},0.1)"]}))
    with pytest.raises(ConfigError, match="spatial_bins.annuli.edges': values must increase"):
        check_spatial_bins(cfg({"annuli": {"center": [RA, DEC], "edges": [0, 0.3, 0.2]}}))
    for band in ([100, 1], [1, 1]):  # a reversed band would integrate to a negative flux
        with pytest.raises(ConfigError, match="spatial_fit.flux_band': values must increase"):
            check_spatial_bins(cfg({"annuli": {"center": [RA, DEC], "edges": [0, 0.3]}}, spatial_fit={"flux_band": band}))
    overlapping = cfg({"regions": [f"icrs;circle({RA},{DEC},0.2)", f"icrs;circle({RA + 0.2},{DEC},0.2)",
                                   f"icrs;circle({RA},{DEC + 1},0.1)"]})
    assert check_spatial_bins(overlapping) is None  # allowed; the spatial step logs the overlap
    warn = overlap_warnings(sub_regions(spatial_bin_settings(overlapping)))
    assert len(warn) == 1 and "sub-regions 0" in warn[0] and "and 1" in warn[0] and "correlated" in warn[0]
    with pytest.raises(ConfigError, match="spatial_bins"):  # two kinds at once: the schema refuses
        cfg({"annuli": {"center": [RA, DEC], "edges": [0, 0.2]}, "sectors": {"center": [RA, DEC], "radius": 1, "n": 2}})


# ---------------------------------------------------------------------------- closure --


def test_closure_index_gradient(tmp_path):
    subs, _, rows, test = resolved(two_disks(tmp_path / "grad", (2.0, 2.8), seed=1))
    by_ij = {s.ij: r for s, r in zip(subs, rows)}
    east, west = by_ij[(-1, 0)], by_ij[(1, 0)]  # east: larger RA (pixel x < 0, east left)
    assert east["status"] == west["status"] == "ok"  # the quality gate's verdict
    assert abs(east["index"] - 2.0) < 3 * east["index_err"] and east["index_err"] < 0.1
    assert abs(west["index"] - 2.8) < 3 * west["index_err"] and west["index_err"] < 0.15
    assert 2.0 + 3 * east["index_err"] < by_ij[(0, 0)]["index"] < 2.8 - 3 * west["index_err"]  # both disks
    assert test["dof"] == (len(subs) - 1) * 1 and test["p_value"] < 1e-6
    for r in rows:  # flux in 1-100 TeV with its error, propagated from the covariance
        assert 0 < r["flux_err"] < 0.3 * r["flux"]


def test_uniform_source_gives_spread_p_values(tmp_path):
    p = [resolved(two_disks(tmp_path / f"u{s}", (2.4, 2.4), seed=s))[3]["p_value"] for s in range(1, 6)]
    assert min(p) > 1e-3 and np.median(p) > 0.1, p  # flat over seeds: no p-value near 0 for a uniform source
    assert max(p) > 0.5


def test_a_box_without_signal_gets_an_upper_limit(tmp_path):
    cfg = config(spatial_bins={"regions": [f"icrs;box({RA - 0.25 / math.cos(math.radians(DEC))},{DEC},0.25,0.25,0)",
                                           f"icrs;box({RA},{DEC + 1.0},0.25,0.25,0)"]})
    subs, per, rows, test = resolved(two_disks(tmp_path / "ul", (2.4, 2.4), seed=3), cfg)
    assert rows[0]["status"] == "ok" and rows[0]["sqrt_ts"] > 10
    assert rows[1]["status"] == "not_detected" and rows[1]["sqrt_ts"] < 3 and "TS" in rows[1]["reason"]
    assert np.isnan(rows[1]["flux"]) and np.isnan(rows[1]["index"])
    assert rows[1]["flux_ul"] > 0 and rows[1]["flux_ul"] < 0.2 * rows[0]["flux"]
    assert test["p_value"] is None and test["n_regions"] == 1


def test_each_sub_region_is_a_single_analysis(tmp_path):
    """reduce_regions gives, per sub-region, exactly reduce_observation's spectrum with that
    sub-region as ON region (geom.center fixed: a single analysis centres its map on its ON
    region otherwise)."""
    path = two_disks(tmp_path / "eq", (2.0, 2.8), seed=2, n_runs=2)
    cfg = config(geom={"width": [3, 3], "binsz": 0.05, "frame": "icrs", "proj": "TAN", "center": [RA, DEC]})
    subs, per, rows, _ = resolved(path, cfg)
    store = open_datastore(path)
    for s in subs[:3]:
        single = dataclasses.replace(reduction_settings(cfg), on_region=s.region)
        spectra = [reduce_observation(store.load(o), single)[1] for o in store.obs_ids]
        for a, b in zip(per[s.id], spectra):
            np.testing.assert_array_equal(a.counts, b.counts)
            np.testing.assert_array_equal(a.counts_off, b.counts_off)
            np.testing.assert_array_equal(a.alpha, b.alpha)
            np.testing.assert_array_equal(a.exposure, b.exposure)
            np.testing.assert_array_equal(a.mask_safe, b.mask_safe)
        res = fit_joint(spectra, PL, fit_options({}))
        assert rows[s.id]["index"] == pytest.approx(res.values["index"], rel=1e-9)


def test_run_share_projects_once_and_changes_nothing(tmp_path):
    """RunShare: the events' finder-grid pixels of two grids differing only in CRPIX come from
    one projection and equal Projection.world_to_pix bit for bit; the fov template is made once
    per run and each region's OFF area, predictions and counts equal the unshared ones."""
    from extspec.background import find_fov_background
    from extspec.cube import event_coords, make_cube
    from extspec.sky import Projection
    from extspec.spectrum import RunShare, count_on_off, select_on_region

    path = two_disks(tmp_path / "rs", (2.4, 2.4), seed=4, n_runs=1)
    obs = open_datastore(path).load(open_datastore(path).obs_ids[0])
    lon, lat = event_coords(obs, "icrs", "exact")
    share = RunShare()
    a = Projection.tangent(RA, DEC + 0.7, 0.01, (101.0, 101.0), "icrs")
    b = Projection.tangent(RA, DEC + 0.7, 0.01, (87.5, 87.5), "icrs")
    for proj in (a, b):
        for got, want in zip(share.event_pixels(proj, lon, lat), proj.world_to_pix(lon, lat)):
            np.testing.assert_array_equal(got, want)
    assert len(share._memo) == 1  # one projection for both grids

    rs = reduction_settings(config())
    cube = make_cube(obs, rs.cube, event_coords(obs, rs.cube.geom.frame, "exact"), irf_cubes=False)
    subs = sub_regions(spatial_bin_settings(config()), rs.cube.geom)
    share = RunShare()
    for sub in subs[:3]:
        sel = select_on_region(obs, sub.region, cube.energy_reco)
        args = (obs, cube, sel, rs.exclusion_regions, "exact", "fov", 2.5, None)
        shared, alone = find_fov_background(*args, share=share), find_fov_background(*args)
        np.testing.assert_array_equal(shared.off_mask, alone.off_mask)
        np.testing.assert_array_equal(shared.background_off, alone.background_off)
        np.testing.assert_array_equal(shared.background_on, alone.background_on)
        assert shared.background_off.sum() > 0 and not shared.off_mask[sel.region.to_pixel(
            shared.geom.projection).contains(*np.meshgrid(*map(np.arange, shared.geom.npix)))].any()
        c1 = count_on_off(obs, cube, sel, shared, (lon, lat), "exact", share=share)
        c2 = count_on_off(obs, cube, sel, alone, (lon, lat), "exact")
        for x, y in zip(c1, c2):
            np.testing.assert_array_equal(x, y)
        assert c1[0].sum() > 0 and c1[1].sum() > 0
    assert sum(k[0] == "fov_template" for k in share._memo) == 1


def test_ring_boxes_are_single_analyses(tmp_path):
    """With a ring background (its grid about each ON region: only the event projections and
    kernels are shared) each box is still exactly the single analysis's."""
    path = two_disks(tmp_path / "ring", (2.4, 2.4), seed=6, n_runs=1)
    cfg = config(background={"method": "ring", "ring": {"inner": 0.8, "outer": 1.2}},
                 geom={"width": [3, 3], "binsz": 0.05, "frame": "icrs", "proj": "TAN", "center": [RA, DEC]})
    rs = reduction_settings(cfg)
    subs = sub_regions(spatial_bin_settings(cfg), rs.cube.geom)
    obs = open_datastore(path).load(open_datastore(path).obs_ids[0])
    boxes = reduce_regions(obs, rs, [s.region for s in subs[:3]])
    for sub, box in zip(subs[:3], boxes):
        _, one = reduce_observation(obs, dataclasses.replace(rs, on_region=sub.region))
        assert box.meta["background"] == "ring" and box.counts_off.sum() > 0
        for name in ("counts", "counts_off", "alpha", "exposure", "edisp", "mask_safe"):
            np.testing.assert_array_equal(getattr(box, name), getattr(one, name))
        assert box.meta == one.meta


def test_shared_dispersion_kernels_bit_identical(tmp_path):
    """edisp_kernel with a run's node_kernels (each offset node's kernels kept across ON
    regions, nodes in any order and repeated) and EDisp2D's kept energy interpolation equal
    the plain computation bit for bit, and a second region reuses the first's nodes."""
    from extspec.cube import edisp_kernel
    from extspec.geometry import make_energy_axis

    path = two_disks(tmp_path / "ek", (2.4, 2.4), seed=5, n_runs=1)
    obs = open_datastore(path).load(open_datastore(path).obs_ids[0])
    et, er = make_energy_axis(0.2, 60, 24), make_energy_axis(0.5, 30, 8)
    kept: dict = {}
    for nodes, w in ((np.array([0.5, 0.6, 0.7]), np.array([0.2, 0.5, 0.3])),
                     (np.array([0.7, 0.6, 0.8, 0.9]), np.array([0.1, 0.4, 0.3, 0.2]))):
        obs.edisp.__dict__.pop("_at_energies_cache", None)  # plain: the energy interpolation made anew
        plain = edisp_kernel(obs.edisp, obs.aeff, et, er, nodes, "exact", 4, offset_weights=w)
        assert len(obs.edisp.__dict__["_at_energies_cache"]) == 1  # then kept for the shared call
        shared = edisp_kernel(obs.edisp, obs.aeff, et, er, nodes, "exact", 4, offset_weights=w, node_kernels=kept)
        for a, b in zip(plain, shared):
            np.testing.assert_array_equal(a, b)
        assert plain[0].sum() > 1
    assert sorted(kept) == [0.5, 0.6, 0.7, 0.8, 0.9]


def test_uniformity_common_fit_equals_region_sum(tmp_path):
    """The common-shape fit stacks every sub-region's runs into one WStat: at any point its
    statistic equals the sum of the sub-regions' own WStat (1e-12 relative: only the order of
    summation differs), the vectorised fold equals the per-run fold, and the fit's minimum is
    the sub-region by sub-region sum's (to the minimiser's tolerance)."""
    from extspec.fit import Parameter, fold, minimise
    from extspec.resolved import _integ, common_shape_stat

    subs, per, rows, test = resolved(two_disks(tmp_path / "uf", (2.0, 2.8), seed=1, n_runs=2))
    opts = fit_options({})
    _, fits = fit_regions(per, subs, PL, opts, spatial_fit_settings(config()))
    ids = sorted(fits)
    assert test["n_regions"] == len(ids) >= 3
    d0 = fits[ids[0]][1]
    flux = np.abs(np.random.default_rng(0).normal(1e-12, 1e-13, (len(d0), d0.e_min.size)))
    np.testing.assert_allclose(fold(flux, d0.response), [fold(f, r) for f, r in zip(flux, d0.response)], rtol=1e-12)

    first = fits[ids[0]][0]
    frozen = {p.name: p.value for p in first.parameters if p.frozen}
    integ = _integ(PL, opts.integration)
    stat = common_shape_stat(fits, ids, ["index"], frozen, PL, opts)

    def loop_stat(v):  # the sub-region by sub-region sum
        return sum(fits[k][1].stat(integ(fits[k][1].e_min, fits[k][1].e_max,
                                         {**frozen, "index": v["index"], "amplitude": v[f"amplitude_{k}"]}))
                   for k in ids)

    rng = np.random.default_rng(1)
    for _ in range(5):
        v = {"index": rng.uniform(1.8, 3.0), **{f"amplitude_{k}": fits[k][0].values["amplitude"] * rng.uniform(0.5, 2)
                                                for k in ids}}
        assert stat(v) == pytest.approx(loop_stat(v), rel=1e-12) and loop_stat(v) > 0
    params = [Parameter("index", 2.4)] + [Parameter(f"amplitude_{k}", fits[k][0].values["amplitude"], "", False, 0.0)
                                          for k in ids]
    m = minimise(params, loop_stat, opts)
    assert test["w_common"] == pytest.approx(float(m.fval), abs=1e-3)
    assert test["ts"] > 20  # two indices: the common shape is far worse


DR1_ON = "galactic;circle(347.3,-0.5,0.5)"


@skip_without("hess-dl3-dr1", "H.E.S.S. DL3 DR1")
def test_rxj1713_boxes_equal_single_analyses(tmp_path):
    """Three 0.18 deg boxes of the RX J1713 grid, two runs, fov background with the remnant
    excluded: each box's spectrum and fit equal those of a single analysis with the box as ON
    region (through the written files of both steps)."""
    from conftest import data_path

    from extspec.workflow.pipeline import reduce_observation as reduce_step
    from extspec.workflow.pipeline import read_spectra
    from extspec.workflow.products.spatial import reduce_spatial

    store = data_path("hess-dl3-dr1")
    cfg = {"on_region": DR1_ON, "exclusion_regions": ["galactic;circle(347.3,-0.5,0.7)"],
           "geom": {"width": [4, 4], "binsz": 0.02, "frame": "galactic", "center": [347.3, -0.5]},
           "background": {"method": "fov"},
           "spatial_bins": {"regions": ["galactic;box(347.3,-0.5,0.18,0.18,0)", "galactic;box(347.12,-0.5,0.18,0.18,0)",
                                        "galactic;box(347.3,-0.32,0.18,0.18,0)"]}}
    from extspec.io.batch_arrays import read_arrays_spectra

    n = len(cfg["spatial_bins"]["regions"])
    per, singles = [[] for _ in range(n)], [[] for _ in range(n)]
    for obs in (20326, 20327):
        reduce_spatial(cfg, store, obs, tmp_path / f"{obs}.h5")
        boxes = read_arrays_spectra(tmp_path / f"{obs}.h5")
        for k, box in enumerate(cfg["spatial_bins"]["regions"]):
            single = {**cfg, "on_region": box}
            reduce_step(single, store, obs, tmp_path / f"{obs}-{k}")
            (one,) = read_spectra([tmp_path / f"{obs}-{k}"])
            np.testing.assert_array_equal(boxes[k].counts, one.counts)
            np.testing.assert_array_equal(boxes[k].counts_off, one.counts_off)
            np.testing.assert_array_equal(boxes[k].alpha, one.alpha)
            np.testing.assert_array_equal(boxes[k].exposure, one.exposure)
            np.testing.assert_array_equal(boxes[k].edisp, one.edisp)
            assert boxes[k].counts.sum() > 10 and boxes[k].meta["background"] == "fov"
            per[k].append(boxes[k])
            singles[k].append(one)
    subs = sub_regions(spatial_bin_settings(cfg))
    rows, _ = fit_regions(per, subs, PL, fit_options({"fit": {"detection_ts_min": 0.0}}), spatial_fit_settings({}))
    for k in range(n):
        res = fit_joint(singles[k], PL, fit_options({}))
        assert rows[k]["index"] == res.values["index"] and rows[k]["amplitude"] == res.values["amplitude"]
        assert rows[k]["counts"] == sum(int(s.counts[s.mask_safe].sum()) for s in singles[k])


# ---------------------------------------------------------------------------- workflow --


def test_spatial_workflow_end_to_end(tmp_path):
    from astropy.io import fits

    from extspec.io.ecsv import read_ecsv_rows

    store = two_disks(tmp_path / "store", (2.0, 2.8), seed=4, n_runs=3)
    wd = tmp_path / "wd"
    wd.mkdir()
    cfg = {"name": "grad", "datastore": str(store), "obs_ids": [1, 2], **config(), "model": PL}
    cf = write_config(wd, **cfg)
    snakemake(wd, cf, "--cores", "2")
    out = wd / "results" / "grad" / "spatial"
    rows, meta = read_ecsv_rows(out / "regions.ecsv")
    assert len(rows) == 5 and meta["kind"] == "grid" and meta["uniformity_p_value"] < 1e-3
    assert meta["flux_band_tev"] == [1.0, 100.0] and "creator" in meta
    assert all(r["status"] == "ok" and r["n_runs"] == 2 and r["obs_ids"] == "1 2" for r in rows)
    with fits.open(out / "images.fits") as h:
        idx = h["INDEX"].data
        assert h["INDEX"].header["CTYPE1"] == "RA---TAN" and idx.shape == (3, 3)
        assert h["FLUX"].header["CREATOR"].startswith("extspec") and h["FLUX"].header["BUNIT"] == "cm-2 s-1"
        assert idx[1, 0] < idx[1, 2]  # east (x = 0, larger RA) harder than west
        assert np.isnan(idx[0, 0]) and h["SUBREGION"].data[0, 0] == -1
        assert {"FLUX", "FLUX_ERR", "FLUX_UL", "SQRT_TS", "INDEX_ERR"} <= {x.name for x in h}
    assert (out / "maps.png").stat().st_size > 10000 and (out / "uniformity.yaml").exists()
    summary, smeta = read_ecsv_rows(wd / "results" / "summary.ecsv")  # the product's summary column
    assert summary[0]["uniformity_p_value"] == pytest.approx(meta["uniformity_p_value"], rel=1e-12)
    assert "one spectral shape" in smeta["uniformity_p_value"]
    assert dry_run(wd, cf) == {}
    # a new model reruns only the fits; a third run adds its two jobs and the aggregates
    cf2 = write_config(wd, "model.yaml", **{**cfg, "model": {"type": "power_law", "parameters": {"index": 2.5}}})
    counts = dry_run(wd, cf2)
    assert counts.get("spatial_grad") == 1 and "spatial_reduce" not in counts and "reduce" not in counts
    cf3 = write_config(wd, "more.yaml", **{**cfg, "obs_ids": [1, 2, 3]})
    counts = dry_run(wd, cf3)
    assert counts["spatial_reduce"] == 1 and counts["reduce"] == 1 and counts["spatial_grad"] == 1
    # other bins: the spatial jobs only, never the analysis's own reductions or fit
    cf4 = write_config(wd, "ann.yaml", **{**cfg, "spatial_bins": {"annuli": {"center": [RA, DEC],
                                                                              "edges": [0, 0.2, 0.4]}}})
    counts = dry_run(wd, cf4)
    assert counts["spatial_reduce"] == 2 and counts["spatial_grad"] == 1
    assert "reduce" not in counts and "fit" not in counts
    snakemake(wd, cf4, "--cores", "2")
    rows, meta = read_ecsv_rows(out / "regions.ecsv")
    assert meta["kind"] == "annuli" and [r["label"] for r in rows] == ["annulus 0-0.2 deg", "annulus 0.2-0.4 deg"]
    assert (out / "profile.png").stat().st_size > 10000
