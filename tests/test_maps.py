"""Excess and significance maps (extspec.maps) and the background cube they are made from.

Closure tests on small stores written by extspec.simulate (which writes a BKG_3D table):
an empty field gives Li & Ma significances of mean 0 and width 1, and a point source of
known flux gives the excess of its simulated events.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from extspec.maps import correlate, disk_offsets, make_maps
from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
from extspec.workflow.config import stage_config, validate_analyses
from extspec.workflow.pipeline import reduce_observation, stack_counts, write_maps

RA, DEC = 83.63, 22.01


def test_disk_offsets_and_correlate():
    off = disk_offsets(1.0)
    assert {tuple(o) for o in off} == {(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)}
    assert len(disk_offsets(2.5)) == 21  # pixel centres within 2.5 pixels
    img = np.zeros((7, 9))
    img[3, 4] = 5.0
    out = correlate(img, 1.0)
    assert out.sum() == 25.0 and out[3, 4] == 5.0 and out[2, 4] == 5.0 and out[2, 3] == 0.0
    # zero outside the image: a corner pixel collects only what lies inside
    assert correlate(np.ones((4, 4)), 1.0)[0, 0] == 3.0


def test_make_maps_normalisation_and_missing_background():
    rng = np.random.default_rng(1)
    bkg = np.full((20, 20), 4.0)
    counts = rng.poisson(2 * bkg)  # the IRF predicts half the real background
    mask = np.ones((20, 20), bool)
    mask[8:12, 8:12] = False  # ON region
    m = make_maps([counts, counts], [bkg, None], [1, 2], mask, 2.0)
    assert m.without_background == [2]
    assert m.norms[1] == pytest.approx(counts[mask].sum() / bkg[mask].sum())
    assert m.n_norm == counts[mask].sum()
    # by construction the uncorrelated excess sums to 0 over the normalisation region
    unc = make_maps([counts], [bkg], [1], mask, 0.0)
    assert unc.excess[mask].sum() == pytest.approx(0.0, abs=1e-9)


def _run_maps(tmp_path, store, obs_ids, on, radius, width=3.0):
    raw = {"name": "maps", "datastore": str(store), "obs_ids": obs_ids, "on_region": on,
           "geom": {"width": [width, width], "frame": "icrs", "binsz": 0.04},
           "energy_axis": {"min": 0.5, "max": 50, "nbins": 6}, "maps": {"correlation_radius": radius}}
    cfg = validate_analyses(raw)["maps"]
    cubes, dirs = [], []
    for o in obs_ids:
        out = tmp_path / "obs" / str(o)
        reduce_observation(stage_config(cfg, "reduce"), store, o, out)
        cubes.append(out / "cube.h5")
        dirs.append(out)
    paths = {"excess": tmp_path / "excess.fits", "significance": tmp_path / "sig.fits", "png": tmp_path / "maps.png"}
    stack_counts(stage_config(cfg, "stack"), cubes, dirs, tmp_path / "counts.fits", tmp_path / "counts.png")
    write_maps(stage_config(cfg, "stack"), cubes, dirs, paths["excess"], paths["significance"], paths["png"])
    with fits.open(paths["excess"]) as h:
        excess, hdr = h[0].data.astype(float), h[0].header
    with fits.open(paths["significance"]) as h:
        sig = h[0].data.astype(float)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return excess, sig, hdr


def test_empty_field_significance_is_standard_normal(tmp_path):
    store = simulate_datastore(tmp_path / "store", wobble_pointings(RA, DEC, 4, 0.5), None, livetime=1800.0,
                               bkg_scale=50.0, seed=3)  # ~50 counts per correlation circle
    excess, sig, hdr = _run_maps(tmp_path, store, [1, 2, 3, 4], f"icrs;circle({RA},{DEC},0.2)", 0.1)
    assert hdr["NOBS"] == 4 and hdr["CORRRAD"] == 0.1 and hdr["NORMCNTS"] > 1e4
    s = sig[np.isfinite(sig)]
    assert s.size > 4000
    print(f"empty field: {s.size} pixels, significance mean {s.mean():.3f}, std {s.std():.3f}")
    assert abs(s.mean()) < 0.1
    assert 0.9 < s.std() < 1.1


def test_point_source_excess(tmp_path):
    src = SourceModel(RA, DEC, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 2e-11})
    store = simulate_datastore(tmp_path / "store", wobble_pointings(RA, DEC, 2, 0.5), src, livetime=900.0,
                               bkg_scale=20.0, seed=5)
    radius = 0.3  # the simulated PSF (sigma 0.05 deg) is entirely inside
    excess, sig, hdr = _run_maps(tmp_path, store, [1, 2], f"icrs;circle({RA},{DEC},0.3)", radius, width=2.52)
    # the simulated source events in the map's energy range (every one lies well within 0.3 deg)
    n_src = 0
    for f in sorted((store / "data").glob("obs_*.fits.gz")):
        with fits.open(f) as h:
            ev = h["EVENTS"].data
            e = ev["ENERGY"]
            n_src += int(np.sum((ev["MC_ID"] == 1) & (e >= hdr["EMIN"]) & (e < hdr["EMAX"])))
    ny, nx = sig.shape
    assert (ny, nx) == (63, 63)
    iy, ix = 31, 31  # the map is centred on the source: the central pixel
    ex = excess[iy, ix]
    # the error of the excess is the Poisson error of the background in the circle
    with fits.open(tmp_path / "counts.fits") as h:
        counts = h[0].data.astype(float)
    yy, xx = np.mgrid[0:ny, 0:nx]
    circle = (yy - iy) ** 2 + (xx - ix) ** 2 <= (radius / 0.04) ** 2
    background = counts[circle].sum() - ex
    err = np.sqrt(background)
    print(f"point source: {n_src} simulated events, excess {ex:.1f} +- {err:.1f}, peak significance {sig[iy, ix]:.1f}")
    assert n_src > 150
    assert abs(ex - n_src) < 3 * err
    assert sig[iy, ix] > 10
