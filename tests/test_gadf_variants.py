"""GADF variants (CTA, MAGIC/LST point-like IRFs with RAD_MAX) and point-source ON regions.

* the reader on every variant ``extspec.simulate.variants`` writes and on the real MAGIC store;
* closure: the true spectrum recovered within 2 sigma from each variant;
* every refusal, by its one-line message;
* the wobble OFF finder;
* end to end with ``snakemake --cores 2``: the MAGIC runs and a simulated store in the CTA
  data-challenge layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from extspec.cube import make_cube
from extspec.errors import ConfigError, DataStoreError
from extspec.fit import fit_joint
from extspec.io.datastore import open_datastore
from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
from extspec.simulate.variants import write_gadf_variant
from extspec.skyregions import parse_region
from extspec.spectrum import make_spectrum
from extspec.workflow.settings import cube_settings, fit_options, reduction_settings

from conftest import data_path, skip_without

RA, DEC = 83.63, 22.01
TRUTH = {"index": 2.4, "amplitude": 3e-11, "reference": 1.0}
MAGIC = data_path("magic-rad-max")
needs_magic = skip_without("magic-rad-max/hdu-index.fits.gz", "the MAGIC RAD_MAX store")
CRAB_POINT = "icrs;point(83.6331,22.0145)"


def rad_max_2d(energy):
    """An energy-dependent RAD_MAX (deg): wide at low energy, narrow at high energy."""
    return np.clip(0.15 * np.asarray(energy, float) ** -0.1, 0.1, 0.25)


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum="power_law", params=TRUTH)
    return simulate_datastore(tmp_path_factory.mktemp("base") / "store", wobble_pointings(RA, DEC, 4, offset=0.5),
                              src, livetime=3600, seed=11)


@pytest.fixture(scope="module")
def variant(base_store, tmp_path_factory):
    made = {}

    def get(*names, **kw):
        key = (names, tuple(sorted((k, str(v)) for k, v in kw.items())))
        if key not in made:
            made[key] = write_gadf_variant(base_store, tmp_path_factory.mktemp("_".join(names)), names, **kw)
        return made[key]

    return get


def reduce_store(path, on_text, background=None):
    from test_closure import reduce_store as reduce_closure

    return reduce_closure(path, on_text, background=background)


def assert_closure(spectra):
    assert all(s.usable for s in spectra)
    res = fit_joint(spectra, {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1e-11}}},
                    fit_options({}))
    assert res.success, res.message
    for name, p in zip(res.values, res.parameters):
        if not p.frozen:
            assert abs(p.value - TRUTH[name]) < 2 * p.error, f"{name}: {p.value:.4g} +- {p.error:.3g}, truth {TRUTH[name]}"
    return res


# ------------------------------------------------------------------------------ reader --


def test_variants_read_as_the_base_store(base_store, variant):
    base = open_datastore(base_store).load(1)
    e, th = np.geomspace(0.2, 50, 7), np.full(7, 0.5)
    for names in [("etrue",), ("units",), ("renamed_index",), ("caldb", "etrue", "cta_units")]:
        store = open_datastore(variant(*names))
        obs = store.load(1)
        np.testing.assert_allclose(obs.aeff.evaluate(e, th), base.aeff.evaluate(e, th), rtol=1e-6)
        np.testing.assert_allclose(obs.edisp.data, base.edisp.data, rtol=1e-6)
        np.testing.assert_allclose(obs.bkg.data, base.bkg.data, rtol=1e-5)
        np.testing.assert_array_equal(obs.energy, base.energy)
        assert obs.livetime == pytest.approx(base.livetime, rel=1e-12)
        assert obs.pointing_radec == pytest.approx(base.pointing_radec)
        np.testing.assert_allclose(store.pointings()[0], open_datastore(base_store).pointings()[0])
    assert open_datastore(variant("etrue")).load(1).edisp.energy.name == "ETRUE"


def test_caldb_layout_shared_uncompressed_irf_outside_the_index_folder(variant):
    root = variant("caldb", "etrue", "cta_units")
    store = open_datastore(root)
    irf, name = store.hdu_location(1, "aeff")
    assert name == "EFFECTIVE AREA" and ".." in str(irf) and irf.name == "irf_file.fits"
    assert irf.read_bytes()[:6] == b"SIMPLE"  # not gzipped
    assert store.hdu_location(2, "edisp")[0] == irf  # shared by every run
    assert store.hdu_location(1, "events")[0].read_bytes()[:6] == b"SIMPLE"


def test_single_offset_bin_holds_inside_the_bin_only(base_store, variant):
    obs = open_datastore(variant("single_offset")).load(1)
    base = open_datastore(base_store).load(1)
    assert obs.aeff.offset.single_bin and tuple(obs.aeff.offset.edges) == (0.25, 0.75)
    a = obs.aeff.evaluate(np.full(3, 1.0), np.array([0.3, 0.5, 0.74]))
    np.testing.assert_allclose(a, base.aeff.evaluate(1.0, 0.5), rtol=1e-6)  # constant in the bin
    assert obs.aeff.evaluate(1.0, 0.8) == 0.0 and obs.aeff.evaluate(1.0, 0.2) == 0.0


def test_units_converted_at_load(variant, base_store):
    # the variant stores GeV, cm2 and s-1 TeV-1 deg-2; the values read are TeV, m2, s-1 MeV-1 sr-1
    from astropy.io import fits

    path = open_datastore(variant("units")).hdu_location(1, "events")[0]
    with fits.open(path) as h:
        assert h["AEFF"].columns["EFFAREA"].unit == "cm2" and h["AEFF"].columns["ENERG_LO"].unit == "GeV"
        assert h["BKG"].columns["BKG"].unit == "s-1 TeV-1 deg-2"
    obs = open_datastore(variant("units")).load(1)
    assert obs.aeff.energy.edges[0] == pytest.approx(0.01, rel=1e-6)
    assert obs.bkg.unit == "s-1 MeV-1 sr-1"


def test_bad_unit_is_one_line(tmp_path, base_store):
    from astropy.io import fits

    root = write_gadf_variant(base_store, tmp_path / "v", ["units"])
    path = open_datastore(root).hdu_location(1, "events")[0]
    with fits.open(path) as h:
        h = fits.HDUList([x.copy() for x in h])
    h["AEFF"].columns["EFFAREA"].unit = "s"
    h["AEFF"].header["TUNIT5"] = "s"
    h.writeto(path.with_suffix(""), overwrite=True)
    import gzip
    path.write_bytes(gzip.compress(path.with_suffix("").read_bytes()))
    with pytest.raises(DataStoreError, match=r"^obs 1: HDU 'AEFF' of .*: column EFFAREA has unit 's', which is "
                                             r"not convertible to m2") as exc:
        open_datastore(root).load(1)
    assert "\n" not in str(exc.value)


@needs_magic
def test_magic_store_reads():
    store = open_datastore(MAGIC)  # its hdu index is a table named OBS_INDEX
    assert sorted(store.obs_ids.tolist()) == [5029747, 5029748]
    obs = store.load(5029747)
    assert obs.irf_class == "point-like" and not obs.rad_max.is_fixed
    assert obs.meta["TELESCOP"] == "MAGIC" and obs.meta["INSTRUME"] == "MAGIC stereo"
    assert obs.aeff.offset.single_bin
    np.testing.assert_allclose(obs.rad_max.evaluate(np.array([1.0, 10.0]), 0.4), [0.1, 0.1], rtol=1e-6)
    assert obs.bkg is None
    assert obs.livetime == pytest.approx(1188.111761868 * 0.991545, rel=1e-3)


# ----------------------------------------------------------------------------- closure --


@pytest.mark.parametrize("names,kw,on,background", [
    (("etrue",), {}, f"icrs;circle({RA},{DEC},0.2)", None),
    (("single_offset",), {}, f"icrs;circle({RA},{DEC},0.2)", None),
    (("units",), {}, f"icrs;circle({RA},{DEC},0.2)", None),
    (("caldb", "etrue", "cta_units"), {}, f"icrs;circle({RA},{DEC},0.2)", None),
    (("renamed_index",), {}, f"icrs;circle({RA},{DEC},0.2)", {"method": "wobble", "n_off_regions": 3}),
    (("point_like",), {"rad_max": 0.15}, f"icrs;point({RA},{DEC})", None),
    (("point_like",), {"rad_max": 0.15}, f"icrs;circle({RA},{DEC},0.1505)", {"method": "wobble", "n_off_regions": 3}),
    (("point_like", "single_offset"), {"rad_max": rad_max_2d}, f"icrs;point({RA},{DEC})",
     {"method": "wobble", "n_off_regions": 3}),
    (("point_like",), {"rad_max": rad_max_2d}, f"icrs;point({RA},{DEC})", None),
], ids=["etrue", "single_offset", "units", "cta_layout", "renamed_index_wobble", "pointlike_fixed",
        "pointlike_fixed_circle_wobble", "pointlike_2d_single_offset_wobble", "pointlike_2d_reflected"])
def test_closure_per_variant(variant, names, kw, on, background):
    spectra = reduce_store(variant(*names, **kw), on, background)
    if "point_like" in names:
        assert all(s.meta["irf_class"] == "point-like" for s in spectra)
        if not callable(kw["rad_max"]):
            assert all(np.allclose(s.meta["rad_max"], 0.15, rtol=1e-6) and len(s.meta["rad_max"]) == 12 for s in spectra)
    if background:
        assert all(s.n_off_regions == 3 for s in spectra)
    assert_closure(spectra)


def test_pointlike_counts_use_each_bins_radius(variant):
    """The same events reduced with RAD_MAX_2D and with a fixed 0.15 deg cut: bins whose RAD_MAX
    is wider count a superset of the ON events, narrower bins a subset."""
    fixed = reduce_store(variant("point_like", rad_max=0.15), f"icrs;point({RA},{DEC})")
    vary = reduce_store(variant("point_like", rad_max=rad_max_2d), f"icrs;point({RA},{DEC})")
    r = np.array(vary[0].meta["rad_max"])
    np.testing.assert_allclose(r, rad_max_2d(vary[0].energy_reco.centers), rtol=0.02)
    wider, narrower = r > 0.151, r < 0.149
    assert wider.any() and narrower.any()
    on_f = sum(s.counts for s in fixed)
    on_v = sum(s.counts for s in vary)
    assert np.all(on_v[wider] >= on_f[wider]) and on_v[wider].sum() > on_f[wider].sum()
    assert np.all(on_v[narrower] <= on_f[narrower]) and on_v[narrower].sum() < on_f[narrower].sum()
    assert vary[0].meta["rad_max_placement"] == pytest.approx(r[vary[0].mask_safe].max())


# ----------------------------------------------------------------------------- refusals --


GEOM = {"frame": "icrs", "width": [2.0, 2.0]}


def _first(path):
    store = open_datastore(path)
    obs = store.load(int(store.obs_ids[0]))
    settings = cube_settings({"geom": GEOM}, parse_region(f"icrs;circle({RA},{DEC},0.3)"))
    return obs, make_cube(obs, settings)


def _on(text):
    """Reduction settings with ``text`` as the ON region (the schema's defaults otherwise)."""
    return reduction_settings({"on_region": text, "geom": GEOM})


def test_refuse_pointlike_with_extended_region(variant):
    obs, cube = _first(variant("point_like", rad_max=rad_max_2d))
    with pytest.raises(ConfigError) as exc:
        make_spectrum(obs, cube, _on(f"icrs;ellipse({RA},{DEC},0.3,0.2,10)"))
    msg = str(exc.value)
    assert "\n" not in msg
    assert re.match(r"obs 1: point-like IRFs \(HDUCLAS3 = POINT-LIKE, an energy-dependent RAD_MAX \(RAD_MAX_2D\)\) "
                    r"describe only events within RAD_MAX of a point source, not the extended ON region "
                    r"icrs;ellipse\(.*\): use on_region: \"icrs;point\(83\.6300,22\.0100\)\", or full-enclosure "
                    r"IRFs for an extended source$", msg), msg
    with pytest.raises(ConfigError, match=r"^obs 1: point-like IRFs .*RAD_MAX_2D.*not the extended ON region icrs;circle"):
        make_spectrum(obs, cube, _on(f"icrs;circle({RA},{DEC},0.1)"))


def test_refuse_pointlike_circle_of_another_radius(variant):
    obs, cube = _first(variant("point_like", rad_max=0.15))
    with pytest.raises(ConfigError) as exc:
        make_spectrum(obs, cube, _on(f"icrs;circle({RA},{DEC},0.2)"))
    assert str(exc.value) == (
        "obs 1: point-like IRFs (HDUCLAS3 = POINT-LIKE) with a fixed RAD_MAX of 0.1500 deg, but the ON circle has "
        "radius 0.2000 deg: use on_region: \"icrs;point(83.6300,22.0100)\" or a circle of radius 0.1500 deg")
    make_spectrum(obs, cube, _on(f"icrs;circle({RA},{DEC},0.1509)"))  # within 1e-3 deg: accepted


def test_refuse_full_enclosure_with_point_region(base_store):
    obs, cube = _first(base_store)
    with pytest.raises(ConfigError) as exc:
        make_spectrum(obs, cube, _on(f"icrs;point({RA},{DEC})"))
    assert str(exc.value) == (
        "obs 1: full-enclosure IRFs with a point ON region: its counts would need a PSF "
        "containment in a region, not a point; use a circle ON region with model.spatial: {type: point} for the "
        "source's flux, or point-like IRFs")


def test_refuse_region_outside_the_single_offset_bin(variant):
    obs, cube = _first(variant("single_offset"))
    with pytest.raises(DataStoreError) as exc:
        make_spectrum(obs, cube, _on(f"icrs;circle({RA},{DEC},0.4)"))
    assert re.fullmatch(r"obs 1: its IRFs hold only for offsets 0\.250-0\.750 deg from the pointing \(one THETA "
                        r"bin\), but the ON region lies at 0\.1\d\d-0\.9\d\d deg", str(exc.value)), str(exc.value)


@needs_magic
def test_refuse_bkg_peak_without_background_irf_at_validation():
    from extspec.workflow.config import validate_config

    cfg = {"name": "m", "datastore": str(MAGIC), "obs_ids": [5029747, 5029748], "on_region": CRAB_POINT,
           "safe_mask": {"methods": ["aeff-default", "bkg-peak"]}}
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    assert str(exc.value) == (
        f"config key 'safe_mask.methods': bkg-peak needs a background IRF, but obs 5029747, 5029748 have none in "
        f"{MAGIC.resolve()}; drop bkg-peak (e.g. use aeff-default, aeff-max)")


# ----------------------------------------------------------------------------- wobble --


def test_wobble_regions_rotated_about_the_pointing():
    from extspec.reflected import find_wobble_regions
    from extspec.sky import SkyPoint

    on = parse_region("icrs;circle(83.63,22.01,0.1)")
    pnt = SkyPoint(83.63, 22.51, "icrs")
    off = find_wobble_regions(on, pnt, (), 3, "exact")
    np.testing.assert_allclose(np.degrees(off.angles), [90.0, 180.0, 270.0])
    seps = [r.center.separation(pnt) for r in off.regions]
    np.testing.assert_allclose(seps, 0.5, atol=1e-6)
    assert all(r.radius == 0.1 for r in off.regions)
    # the 180 deg region lies on the far side of the pointing, at Dec ~ 23.01
    assert off.regions[1].center.lat == pytest.approx(23.01, abs=1e-3)
    # an exclusion touching one OFF region removes only that one
    c = off.regions[0].center
    off2 = find_wobble_regions(on, pnt, [f"icrs;circle({c.lon},{c.lat},0.05)"], 3, "exact")
    assert len(off2) == 2 and off2.info["n_dropped"] == 1
    np.testing.assert_allclose(np.degrees(off2.angles), [180.0, 270.0])


# ------------------------------------------------------------------------ end to end --


def _run_workflow(tmp_path, cfg):
    import yaml

    from test_workflow import snakemake

    wd = tmp_path / "wd"
    wd.mkdir()
    cf = wd / "config.yaml"
    cf.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(wd, cf, "--cores", "2")
    return wd / "results" / cfg["name"]


@needs_magic
def test_magic_end_to_end_point_source_wobble(tmp_path):
    import yaml

    from extspec.io.ogip import read_spectrum

    out = _run_workflow(tmp_path, {
        "name": "magic", "datastore": str(MAGIC), "obs_ids": [5029747, 5029748], "on_region": CRAB_POINT,
        "background": {"method": "wobble", "n_off_regions": 3}, "geom": {"width": [2.0, 2.0], "frame": "icrs"},
        "safe_mask": {"methods": ["aeff-default"]},
        "model": {"type": "power_law", "parameters": {"index": {"value": 2.5}, "amplitude": {"value": 3.0e-11}}},
    })
    spectra = {o: read_spectrum(out / "obs" / str(o)) for o in (5029747, 5029748)}
    counts = {o: (int(s.counts.sum()), int(s.counts_off.sum()), s.n_off_regions) for o, s in spectra.items()}
    assert counts == {5029747: (153, 23, 3), 5029748: (127, 14, 3)}, counts
    for s in spectra.values():
        assert s.meta["TELESCOP"] == "MAGIC" and s.meta["irf_class"] == "point-like"
        assert s.on_region.startswith("icrs;point(83.633")
        np.testing.assert_allclose(s.alpha, 1 / 3)
    from astropy.io import fits

    with fits.open(out / "obs" / "5029747" / "pha.fits") as h:
        assert h["SPECTRUM"].header["TELESCOP"] == "MAGIC" and h["SPECTRUM"].header["INSTRUME"] == "MAGIC stereo"
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert res["success"] is True
    assert res["instrument"] == [{"telescop": "MAGIC", "instrume": "MAGIC stereo", "irf_class": "point-like"}]
    index = res["model"]["parameters"]["index"]["value"]
    amp = res["model"]["parameters"]["amplitude"]["value"]
    assert 2.3 < index < 2.8, index  # the Crab near 1 TeV
    assert 2.5e-11 < amp < 5e-11, amp  # cm-2 s-1 TeV-1 at 1 TeV
    for f in ("fit/flux_points.ecsv", "cumulative.ecsv", "stacked/counts.png", "fit/sed.png"):
        assert (out / f).stat().st_size > 500


def test_cta_layout_end_to_end(tmp_path, variant):
    import yaml

    root = variant("caldb", "etrue", "cta_units")
    out = _run_workflow(tmp_path, {
        "name": "cta", "datastore": str(root), "obs_ids": [1, 2, 3, 4], "on_region": f"icrs;circle({RA},{DEC},0.2)",
        "geom": {"width": [2.0, 2.0], "frame": "icrs"},
        "model": {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1.0e-11}}},
    })
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert res["success"] is True and res["n_datasets"] == 4
    p = res["model"]["parameters"]
    assert abs(p["index"]["value"] - TRUTH["index"]) < 2 * p["index"]["error"]
    assert abs(p["amplitude"]["value"] - TRUTH["amplitude"]) < 2 * p["amplitude"]["error"]


# ------------------------------------------------------------------ regions and config --


def test_point_region_parses_and_round_trips():
    from extspec.skyregions import PointSky

    p = parse_region("galactic;point(184.5575,-5.7843) # point=cross")
    assert isinstance(p, PointSky) and p.frame == "galactic"
    assert p.to_ds9() == "galactic;point(184.55750000,-5.78430000)"
    assert parse_region(p.to_ds9()) == p
    with pytest.raises(ConfigError, match=r"^config key 'on_region': cannot parse region .*: point takes 2 values, got 3$"):
        parse_region("icrs;point(1,2,3)")


def test_regions_drawn_at_the_chosen_energy(variant):
    from extspec.spectrum import regions_at_energy

    spec = reduce_store(variant("point_like", rad_max=rad_max_2d), f"icrs;point({RA},{DEC})")[0]
    k = int(np.searchsorted(spec.energy_reco.edges, 1.0) - 1)
    on, offs, r = regions_at_energy(spec, 1.0)
    assert r == pytest.approx(spec.meta["rad_max"][k]) and r == pytest.approx(0.15, rel=0.02)
    assert parse_region(on).radius == pytest.approx(r, abs=1e-8)
    assert parse_region(on).center.separation(parse_region(spec.on_region).center) < 1e-8
    assert len(offs) == spec.n_off_regions and all(parse_region(o).radius == pytest.approx(r, abs=1e-8) for o in offs)
    # a full-enclosure spectrum keeps its regions
    full = reduce_store(variant("etrue"), f"icrs;circle({RA},{DEC},0.2)")[0]
    assert regions_at_energy(full, 1.0) == (full.on_region, full.off_regions, None)


def test_background_block_in_the_schema():
    from extspec.workflow.config import load_config

    base = {"name": "x", "on_region": CRAB_POINT, "obs_ids": [1]}
    assert load_config(base)["background"] == {"method": "reflected", "n_off_regions": 3, "fallback": None,
                                               "ring": None}
    with pytest.raises(ConfigError, match=r"^config key 'background.method': 'annulus' is not one of reflected, "
                                          r"wobble, fov, ring$"):
        load_config({**base, "background": {"method": "annulus"}})
    with pytest.raises(ConfigError, match=r"^config key 'background.n_off_regions': must be >= 1, got 0$"):
        load_config({**base, "background": {"method": "wobble", "n_off_regions": 0}})
