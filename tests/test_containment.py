"""PSF containment (``model.spatial``, :mod:`extspec.containment`).

* the containment of point, disk and Gaussian sources in a circular ON region, for the three
  GADF PSF formats, against an independent integration written here: the fraction of a radial
  PSF centred at distance d from the centre of a circle of radius R that falls inside it is
  ``int P(r) 2 pi r phi(r, d, R) dr`` with the arc fraction ``phi`` in closed form, integrated
  over the source in rings (no grid, no FFT);
* the leakage into an OFF circle, the same way;
* the PSF readers (PSF_3GAUSS from the simulator, PSF_KING written here, PSF_TABLE of DR1);
* closure: the simulator's disk and Gaussian sources through its PSF, with ON regions smaller than
  the source, give back the true amplitude with ``model.spatial`` (pulls over seeds), and without
  it a flux lower by the containment;
* a run without a PSF is unusable with its reason; point-like IRFs refuse an extended source.
"""

from __future__ import annotations

import numpy as np
import pytest

from extspec.containment import SpatialModel, point_containment, source_containment
from extspec.irf import Aeff2D, Psf3Gauss, PsfKing, PsfTable, make_axis
from extspec.sky import SkyPoint
from extspec.skyregions import parse_region

from conftest import data_path, skip_without

RA, DEC = 83.63, 22.01
E = np.array([0.5, 2.0, 10.0])  # TeV


# ----------------------------------------------------------------- synthetic IRFs --

def _axes():
    e = make_axis("ENERG", np.array([0.1, 1.0, 10.0]), np.array([1.0, 10.0, 100.0]), True)
    t = make_axis("THETA", np.array([0.0, 2.0]), np.array([0.0, 2.0]), False)  # node axis 0 and 2 deg
    return e, t


def flat_aeff():
    e, t = _axes()
    return Aeff2D(e, t, np.full((3, 2), 1e5))


def gauss_psf():  # two Gaussians, energy dependent: sigma1 = 0.05 (E/1 TeV)^-0.2, sigma2 = 0.12
    e, t = _axes()
    s1 = 0.05 * e.nodes ** -0.2
    p = np.zeros((3, 2, 6))
    p[..., 0] = 1.0
    p[..., 1] = s1[:, None]
    p[..., 2] = 0.1
    p[..., 3] = 0.12
    return Psf3Gauss(e, t, p)


def king_psf():
    e, t = _axes()
    p = np.zeros((3, 2, 2))
    p[..., 0] = 2.5
    p[..., 1] = 0.04
    return PsfKing(e, t, p)


def table_psf():  # a King profile tabulated in fine rad bins (sr^-1), normalised over the table
    e, t = _axes()
    edges = np.linspace(0.0, 1.2, 1201)
    rad = make_axis("RAD", edges[:-1], edges[1:], False)
    dens = king_psf().density(e.nodes, 0.5, rad.nodes)  # deg^-2
    data = np.repeat(dens[:, None, :], 2, axis=1) / (np.pi / 180) ** 2
    return PsfTable(e, t, rad, data)


PSFS = {"psf_3gauss": gauss_psf, "psf_king": king_psf, "psf_table": table_psf}


# ------------------------------------------------------------ independent integral --

def arc_fraction(r, d, big_r):
    """Fraction of the circle of radius r around a point at distance d from the centre of a disk
    of radius big_r that lies inside the disk (flat sky)."""
    r = np.asarray(r, float)[None, :]
    d = np.atleast_1d(np.asarray(d, float))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (r**2 + d**2 - big_r**2) / (2 * r * d)
        part = np.arccos(np.clip(c, -1, 1)) / np.pi
    return np.where(r + d <= big_r, 1.0, np.where(r >= big_r + d, 0.0, np.where(r <= d - big_r, 0.0, part)))


def psf_inside(psf, energy, d, big_r):
    """F(d): the PSF's fraction inside a circle of radius big_r centred at distance d, (nE, nd)."""
    edges = np.linspace(0.0, 2.0, 8001)
    r = 0.5 * (edges[1:] + edges[:-1])
    w = psf.density(energy, 1.0, r) * np.pi * np.diff(edges**2)  # (nE, nr) probability per ring
    return w @ arc_fraction(r, d, big_r).T


def expected(psf, energy, kind, size, big_r, d0=0.0):
    """Containment of a source concentric with the ON circle (point: at distance d0)."""
    if kind == "point":
        return psf_inside(psf, energy, d0, big_r)[:, 0]
    dd = np.linspace(0.0, size * (1.0 if kind == "disk" else 6.0), 3001)
    dm = 0.5 * (dd[1:] + dd[:-1])
    weight = dm * np.diff(dd) * (np.ones_like(dm) if kind == "disk" else np.exp(-0.5 * (dm / size) ** 2))
    return psf_inside(psf, energy, dm, big_r) @ (weight / weight.sum())


def spatial(kind, size, dlon=0.0):
    return SpatialModel(kind, RA + dlon, DEC, "icrs", size if kind == "disk" else None,
                        size if kind == "gauss" else None, None, None)


POINTING = SkyPoint(RA, DEC + 1.0, "icrs")  # 1 deg offset


@pytest.mark.parametrize("fmt", list(PSFS))
@pytest.mark.parametrize("kind, size, big_r", [("point", 0.0, 0.1), ("disk", 0.3, 0.15), ("gauss", 0.15, 0.1)])
def test_containment_matches_an_independent_integration(fmt, kind, size, big_r):
    psf = PSFS[fmt]()
    on = parse_region(f"icrs;circle({RA},{DEC},{big_r})")
    res = source_containment(psf, flat_aeff(), POINTING, spatial(kind, size), on, [], E)
    want = expected(psf, E, kind, size, big_r)
    assert np.all((want > 0.05) & (want < 0.95))  # a real test: neither all in nor all out
    np.testing.assert_allclose(res.containment, want, rtol=0.01)
    # with a flat effective area the exposure factor is the containment
    np.testing.assert_allclose(res.exposure_factor, res.containment, rtol=1e-9)


def test_point_source_off_centre_and_leakage_into_an_off_circle():
    psf = gauss_psf()
    on = parse_region(f"icrs;circle({RA},{DEC},0.1)")
    # a point 0.05 deg from the ON centre
    sp = spatial("point", 0.0, dlon=0.05 / np.cos(np.radians(DEC)))
    off_dist = 0.25  # an OFF circle of the same radius, its centre 0.25 deg east of the source
    off = parse_region(f"icrs;circle({RA + (0.05 + off_dist) / np.cos(np.radians(DEC))},{DEC},0.1)")
    res = source_containment(psf, flat_aeff(), POINTING, sp, on, [off], E)
    want_on = psf_inside(psf, E, 0.05, 0.1)[:, 0]
    want_off = psf_inside(psf, E, off_dist, 0.1)[:, 0]
    np.testing.assert_allclose(res.containment, want_on, rtol=0.01)
    np.testing.assert_allclose(res.leakage, want_off / want_on, rtol=0.03, atol=1e-4)
    assert res.leakage.max() > 0.01


def test_exposure_factor_follows_the_effective_area_over_the_source():
    """An effective area falling with offset: the factor is sum S A F / <A>_ON, not the containment."""
    e, t = _axes()
    aeff = Aeff2D(e, t, np.array([[2e5, 1e5]] * 3))  # linear in offset: 2e5 at 0 deg, 1e5 at 2 deg
    on = parse_region(f"icrs;circle({RA},{DEC},0.1)")
    res = source_containment(gauss_psf(), aeff, POINTING, spatial("point", 0.0), on, [], E)
    a_src = 2e5 - 0.5e5 * 1.0  # the source at 1 deg
    # <A>_ON = A at the ON centre for a linear A and a symmetric region (to O(r^2 / offset))
    np.testing.assert_allclose(res.exposure_factor, res.containment * a_src / a_src, rtol=2e-3)


def test_the_containment_note_is_the_point_source_containment():
    """point_containment (the note without model.spatial) computes only what it records: the
    same bits as the full point-source computation, its other results left out (NaN factor)."""
    from extspec.irf import PsfTable

    on = parse_region(f"icrs;circle({RA},{DEC},0.3)")
    offs = [parse_region(f"icrs;circle({RA + 0.8},{DEC + 1.0},0.3)")]
    for psf in (gauss_psf(), _table_psf()):
        full = source_containment(psf, flat_aeff(), POINTING, spatial("point", 0.0), on, [], E)
        with_off = source_containment(psf, flat_aeff(), POINTING, spatial("point", 0.0), on, offs, E)
        note = point_containment(psf, flat_aeff(), POINTING, on, E)
        assert note.tobytes() == full.containment.tobytes() == with_off.containment.tobytes()
        assert 0.5 < note.min() and note.max() < 1.0
        lean = source_containment(psf, flat_aeff(), POINTING, spatial("point", 0.0), on, [], E, note_only=True)
        assert np.isnan(lean.exposure_factor).all() and np.isfinite(full.exposure_factor).all()
        assert isinstance(psf, (PsfTable, Psf3Gauss))


def _table_psf():
    """gauss_psf tabulated as a PSF_TABLE (0.002 deg rad bins out to 1 deg)."""
    g = gauss_psf()
    rad = np.linspace(0.0, 1.0, 501)
    e_edges, t_edges = g.energy.edges, g.offset.edges
    mid = 0.5 * (rad[1:] + rad[:-1])
    data = np.stack([np.stack([g.density(np.array([e]), t, mid)[0] for t in g.offset.nodes])
                     for e in g.energy.nodes]) / np.radians(1.0) ** 2  # deg^-2 -> sr^-1
    return PsfTable(g.energy, g.offset, make_axis("RAD", rad[:-1], rad[1:], False), data)


# -------------------------------------------------------------------------- readers --

def test_psf_king_read_from_fits(tmp_path):
    from astropy.io import fits

    from extspec.io.datastore import _psf
    from extspec.io.datastore import read_file_tables

    e_lo, e_hi = np.array([0.1, 1.0, 10.0]), np.array([1.0, 10.0, 100.0])
    t_lo, t_hi = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    shape = (1, 2, 3)  # one row, (theta, energy) in numpy = TDIM (energy, theta)

    def col(name, arr, unit=""):
        a = np.asarray(arr, np.float32).reshape(1, -1)
        return fits.Column(name=name, format=f"{a.shape[1]}E", unit=unit, array=a,
                           dim=f"({shape[2]},{shape[1]})" if a.shape[1] == 6 else None)

    axes = [col("ENERG_LO", e_lo, "TeV"), col("ENERG_HI", e_hi, "TeV"), col("THETA_LO", t_lo, "deg"),
            col("THETA_HI", t_hi, "deg")]
    king = fits.BinTableHDU.from_columns(axes + [col("GAMMA", np.full(shape, 2.5)),
                                                 col("SIGMA", np.full(shape, 2.4), "arcmin")], name="PSF")
    path = tmp_path / "king.fits"
    fits.HDUList([fits.PrimaryHDU(), king]).writeto(path)
    t = read_file_tables(path, "king", {"PSF"})["PSF"]
    psf = _psf(t.header, t, "king", "psf_king")
    assert isinstance(psf, PsfKing)
    np.testing.assert_allclose(psf.params[..., 1], 0.04, rtol=1e-6)  # arcmin -> deg
    # the King profile integrates to 1 and its containment matches the closed form
    r68 = psf.containment_radius(np.array([1.0]), 0.5, 0.68)[0]
    closed = 0.04 * np.sqrt(2 * 2.5 * ((1 - 0.68) ** (-1 / (2.5 - 1)) - 1))
    assert abs(r68 - closed) < 0.0015


def test_simulator_writes_its_psf_into_the_store(tmp_path):
    from extspec.io.datastore import open_datastore
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point")
    store = open_datastore(simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 1), src, livetime=60))
    obs = store.load(1, load_psf=True)
    assert isinstance(obs.psf, Psf3Gauss) and obs.psf_error is None
    # the simulator's Gaussian of 0.05 deg: 68 % within 0.05 sqrt(-2 ln 0.32)
    np.testing.assert_allclose(obs.psf.containment_radius(np.array([1.0]), 0.5, 0.68), 0.0755, atol=0.0015)


@skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")
def test_hess_dr1_point_containment_in_a_small_circle():
    """DR1 PSF_TABLE, Crab run 23523: 55-70 % of a point source inside 0.1 deg at 1-10 TeV, >97 % in 0.5 deg."""
    from extspec.io.datastore import open_datastore

    obs = open_datastore(data_path("hess-dl3-dr1/hdu-index.fits.gz").parent).load(23523, load_psf=True)
    assert isinstance(obs.psf, PsfTable)
    pnt = SkyPoint(*obs.pointing_radec, "icrs")
    small = point_containment(obs.psf, obs.aeff, pnt, parse_region("icrs;circle(83.633,22.0145,0.1)"),
                              np.array([1.0, 3.0, 10.0]))
    big = point_containment(obs.psf, obs.aeff, pnt, parse_region("icrs;circle(83.633,22.0145,0.5)"),
                            np.array([1.0, 3.0, 10.0]))
    assert np.all((small > 0.55) & (small < 0.70)), small
    assert np.all(big > 0.97), big


# -------------------------------------------------------------- reduction and closure --

SAFE = {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10}


def _settings(on_text, spatial_cfg, excl=()):
    from extspec.workflow.settings import reduction_settings

    cfg = {"on_region": on_text, "exclusion_regions": list(excl),
           "geom": {"width": [3.0, 3.0], "binsz": 0.05, "frame": "icrs", "proj": "TAN"},
           "energy_axis": {"min": 0.5, "max": 30, "nbins": 8},
           "energy_axis_true": {"min": 0.2, "max": 80, "nbins": 20},
           "safe_mask": SAFE}
    if spatial_cfg:
        cfg["model"] = {"type": "power_law", "spatial": spatial_cfg}
    return reduction_settings(cfg)


def _reduce(path, settings):
    from extspec.io.datastore import open_datastore
    from extspec.reduction import reduce_observation

    store = open_datastore(path)
    return [reduce_observation(store.load(o, load_psf=True), settings)[1] for o in store.obs_ids]


TRUTH = {"index": 2.3, "amplitude": 4e-11, "reference": 1.0}


def _fit(spectra):
    from extspec.fit import fit_joint
    from extspec.workflow.settings import fit_options

    res = fit_joint(spectra, {"type": "power_law", "parameters": {"index": {"value": 2.0},
                                                                 "amplitude": {"value": 1e-11}}}, fit_options({}))
    assert res.success, res.message
    p = {q.name: q for q in res.parameters}
    return p["amplitude"].value, p["amplitude"].error


@pytest.mark.parametrize("morph, size, on_r", [("disk", 0.3, 0.15),
                                               pytest.param("gauss", 0.15, 0.12, marks=pytest.mark.slow)])
def test_closure_extended_source_larger_than_the_on_region(tmp_path, morph, size, on_r):
    """Simulated disk / Gaussian sources through the simulator's PSF, ON circles smaller than the
    source: with model.spatial the fitted amplitude is the truth within errors over three seeds;
    without it, the flux inside the region (lower by about the containment)."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology={"gauss": "gaussian"}.get(morph, morph), size=size,
                      params=TRUTH)
    on = f"icrs;circle({RA},{DEC},{on_r})"
    excl = [f"icrs;circle({RA},{DEC},{size * (1.3 if morph == 'disk' else 3.5)})"]  # OFF regions off the source
    with_sp = _settings(on, {"type": morph, ("radius" if morph == "disk" else "sigma"): size}, excl)
    without = _settings(on, None, excl)
    pulls = []
    for seed in (1, 2, 3):
        path = simulate_datastore(tmp_path / f"s{seed}", wobble_pointings(RA, DEC, 2, offset=1.0), src,
                                  livetime=1800, seed=seed)
        spectra = _reduce(path, with_sp)
        assert all(s.usable for s in spectra)
        c = np.array(spectra[0].meta["containment"])
        assert 0.1 < c[5:15].mean() < 0.6  # the ON region holds a fraction of the source
        assert spectra[0].meta["leakage"] < 0.03
        amp, err = _fit(spectra)
        pulls.append((amp - TRUTH["amplitude"]) / err)
        if seed == 1:
            amp_in, _ = _fit(_reduce(path, without))
            assert amp_in / TRUTH["amplitude"] == pytest.approx(c[5:15].mean(), rel=0.25)
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls) < 3.0), pulls
    assert abs(pulls.mean()) < 2.0, pulls


def test_run_without_psf_is_unusable_with_its_reason(tmp_path):
    from extspec.simulate import IrfModel, SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point")
    path = simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 1), src, livetime=300,
                              irf=IrfModel(psf_sigma=0.0))
    (spec,) = _reduce(path, _settings(f"icrs;circle({RA},{DEC},0.2)", {"type": "point"}))
    assert not spec.usable and not spec.mask_safe.any()
    assert "no PSF for model.spatial" in spec.reason and "no PSF in the hdu index" in spec.reason


def test_without_spatial_the_spectrum_records_a_point_source_containment(tmp_path):
    """Absent model.spatial: numbers untouched, meta says how much of a point source the region holds."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point")
    path = simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 1), src, livetime=300)
    on = f"icrs;circle({RA},{DEC},0.06)"
    (plain,) = _reduce(path, _settings(on, None))
    (point,) = _reduce(path, _settings(on, {"type": "point"}))
    want = 1 - np.exp(-0.5 * (0.06 / 0.05) ** 2)  # the simulator's Gaussian PSF inside 0.06 deg
    assert plain.meta["point_containment"] == pytest.approx(want, rel=0.02)
    assert "spatial" not in plain.meta
    np.testing.assert_array_equal(plain.counts, point.counts)
    ratio = point.exposure[plain.exposure > 0] / plain.exposure[plain.exposure > 0]
    np.testing.assert_allclose(ratio, want, rtol=0.02)


def test_point_like_irfs_take_point_and_refuse_an_extended_source():
    from extspec.containment import apply_spatial
    from extspec.errors import ConfigError

    class Obs:  # what apply_spatial reads of a point-like run
        obs_id, rad_max, pointing_radec = 7, object(), (RA, DEC + 0.4)

    class Spec:
        meta = {"irf_class": "point-like"}

    spec = Spec()
    apply_spatial(Obs(), spec, None, None, spatial("point", 0.0))
    assert spec.meta["spatial"]["type"] == "point" and "RAD_MAX" in spec.meta["containment"]
    with pytest.raises(ConfigError, match="obs 7: model.spatial type 'disk' with point-like IRFs"):
        apply_spatial(Obs(), Spec(), None, None, spatial("disk", 0.3))


# ---------------------------------------------------------------- products say it --

def _steps(tmp_path, store, spatial_cfg, on_r):
    """The workflow's steps (the functions its rules call) on a simulated store: reduce, fit,
    flux points, summary.  Returns (result.yaml as dict, flux-point metadata, summary rows)."""
    import yaml

    from extspec.io.ecsv import read_ecsv_rows
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation, run_fit, run_flux_points, run_light_curve
    from extspec.workflow.summary_step import write_summary

    model = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 1e-11}}}
    if spatial_cfg:
        model["spatial"] = spatial_cfg
    cfg = load_config({"name": "psf", "obs_ids": [1, 2], "on_region": f"icrs;circle({RA},{DEC},{on_r})",
                       "model": model, "safe_mask": SAFE,
                       "energy_axis": {"min": 0.5, "max": 30, "nbins": 8},
                       "energy_axis_true": {"min": 0.2, "max": 80, "nbins": 20},
                       "geom": {"width": [3.0, 3.0], "binsz": 0.05, "frame": "icrs", "proj": "TAN"},
                       "light_curve": {"time_bins": "run"}})
    adir = tmp_path / "results" / "psf"
    dirs = [adir / "obs" / str(o) for o in (1, 2)]
    for o, d in zip((1, 2), dirs):
        reduce_observation(stage_config(cfg, "reduce"), store, o, d)
    fit = adir / "fit" / "result.yaml"
    run_fit(stage_config(cfg, "fit"), dirs, fit, adir / "fit" / "spectrum.png")
    run_flux_points(stage_config(cfg, "flux_points"), dirs, fit, adir / "fit" / "flux_points.ecsv",
                    adir / "fit" / "sed.png")
    _, fp_meta = read_ecsv_rows(adir / "fit" / "flux_points.ecsv")
    lc = adir / "lightcurve" / "lightcurve.ecsv"
    run_light_curve(stage_config(cfg, "light_curve"), dirs, fit, lc, adir / "lightcurve" / "lightcurve.png")
    _, lc_meta = read_ecsv_rows(lc)
    assert lc_meta["flux_definition"] == fp_meta["flux_definition"]
    rows = write_summary(tmp_path / "results", ["psf"], tmp_path / "summary.ecsv", tmp_path / "summary.html")
    return yaml.safe_load(fit.read_text()), fp_meta, rows


def test_every_product_says_which_flux(tmp_path, caplog):
    """Without model.spatial and a circle holding ~50 % of a point source: result.yaml, flux points and
    summary say 'inside the ON region', result.yaml and the log give the containment and the hint.
    With type: point: 'the whole source', the per-run containment, and a flux larger by 1/containment."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", params=TRUTH)
    store = simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 2), src, livetime=900, seed=4)
    with caplog.at_level("WARNING"):
        inside, fp_in, rows_in = _steps(tmp_path / "a", store, None, 0.06)
    assert inside["flux_definition"].startswith("flux inside the ON region icrs;circle(")
    assert fp_in["flux_definition"] == inside["flux_definition"]
    assert rows_in[0]["flux_definition"] == inside["flux_definition"]
    want = 1 - np.exp(-0.5 * (0.06 / 0.05) ** 2)  # 51 % of the simulator's Gaussian PSF
    psc = inside["point_source_containment"]
    assert psc["min"] == pytest.approx(want, rel=0.02) and "model.spatial: {type: point}" in psc["note"]
    assert "containment" not in inside
    assert any("holds 51% of a point source's flux" in r.getMessage() for r in caplog.records)

    source, fp_src, rows_src = _steps(tmp_path / "b", store, {"type": "point"}, 0.06)
    assert source["flux_definition"].startswith("flux of the whole source (model.spatial: point source at (")
    assert fp_src["flux_definition"] == source["flux_definition"] == rows_src[0]["flux_definition"]
    runs = source["containment"]["runs"]
    assert sorted(runs) == [1, 2] and len(runs[1]["containment"]) == 20
    assert np.median(runs[1]["containment"]) == pytest.approx(want, rel=0.02)
    amp = {k: v["value"] for k, v in source["model"]["parameters"].items()}["amplitude"]
    amp_in = {k: v["value"] for k, v in inside["model"]["parameters"].items()}["amplitude"]
    assert amp_in / amp == pytest.approx(want, rel=0.03)
    assert abs(amp - TRUTH["amplitude"]) < 3 * source["model"]["parameters"]["amplitude"]["error"]


def test_leakage_into_off_regions_is_warned_and_recorded(tmp_path, caplog):
    """A 0.6 deg disk, a 0.2 deg ON circle and no exclusion region: the reflected OFF regions next
    to the ON region catch part of the disk; the reduction warns naming the run, result.yaml records it."""
    import yaml

    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation, run_fit

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="disk", size=0.6, params=TRUTH)
    store = simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 1, offset=0.7), src, livetime=900)
    cfg = load_config({"name": "leak", "obs_ids": [1], "on_region": f"icrs;circle({RA},{DEC},0.2)",
                       "model": {"type": "power_law", "parameters": {"index": 2.0, "amplitude": 1.0e-11},
                                 "spatial": {"type": "disk", "radius": 0.6}},
                       "safe_mask": SAFE, "energy_axis": {"min": 0.5, "max": 30, "nbins": 8},
                       "energy_axis_true": {"min": 0.2, "max": 80, "nbins": 20},
                       "geom": {"width": [3.0, 3.0], "binsz": 0.05, "frame": "icrs", "proj": "TAN"}})
    with caplog.at_level("WARNING"):
        _, spec = reduce_observation(stage_config(cfg, "reduce"), store, 1, tmp_path / "obs" / "1")
    assert spec.meta["leakage"] > 0.03
    assert any(r.getMessage().startswith("obs 1: the model's signal inside the OFF regions is") for r in caplog.records)
    run_fit(stage_config(cfg, "fit"), [tmp_path / "obs" / "1"], tmp_path / "result.yaml", tmp_path / "spectrum.png")
    c = yaml.safe_load((tmp_path / "result.yaml").read_text())["containment"]
    assert c["runs"][1]["leakage"] == pytest.approx(spec.meta["leakage"], rel=1e-5)
    assert "obs 1 (" in c["leakage_warning"]


needs_magic = skip_without("magic-rad-max/hdu-index.fits.gz", "the MAGIC RAD_MAX store")
MAGIC_RAW = {"name": "m", "obs_ids": [5029747], "on_region": "icrs;point(83.6331,22.0145)",
             "background": {"method": "wobble", "n_off_regions": 3}, "safe_mask": {"methods": ["aeff-default"]},
             "energy_axis": {"min": 0.08, "max": 20, "nbins": 12}, "geom": {"width": [2.0, 2.0], "frame": "icrs"}}


@needs_magic
def test_point_like_runs_take_type_point_as_they_are_and_the_check_refuses_a_disk(tmp_path):
    from extspec.errors import ConfigError
    from extspec.workflow.config import load_config, stage_config, validate_config
    from extspec.workflow.pipeline import reduce_observation

    store = data_path("magic-rad-max/hdu-index.fits.gz").parent
    raw = {**MAGIC_RAW, "datastore": str(store)}
    with pytest.raises(ConfigError, match=r"^config key 'model.spatial': a disk needs full-enclosure IRFs with a "
                                          r"PSF, but obs 5029747 has point-like IRFs"):
        validate_config({**raw, "model": {"type": "power_law", "spatial": {"type": "disk", "radius": 0.2}}})
    specs = {}
    for label, model in (("none", {"type": "power_law"}),
                         ("point", {"type": "power_law", "spatial": {"type": "point"}})):
        cfg = load_config({**raw, "model": model})
        _, specs[label] = reduce_observation(stage_config(cfg, "reduce"), store, 5029747, tmp_path / label)
    np.testing.assert_array_equal(specs["point"].exposure, specs["none"].exposure)
    assert "RAD_MAX" in specs["point"].meta["containment"]
    assert "point_containment" not in specs["none"].meta


@pytest.mark.slow
@needs_magic
@skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")
def test_joint_hess_magic_crab_with_type_point_keeps_the_nuisances_within_their_priors(tmp_path):
    """config/crab-joint.yaml as shipped (both analyses type: point): the normalisation nuisances stay
    well inside their 10 % priors; with the H.E.S.S. analysis measuring the flux inside its circle
    they are pulled apart, and result.yaml says the fluxes are mixed."""
    from pathlib import Path

    import yaml

    from extspec.workflow.analyses import read_config_files, validate_analyses
    from extspec.workflow.config import stage_config
    from extspec.workflow.joint_config import joint_settings, validate_joint
    from extspec.workflow.joint_fit import run_joint_fit
    from extspec.workflow.pipeline import reduce_observation

    repo = Path(__file__).resolve().parents[1]
    base = read_config_files([repo / "config/config.yaml", repo / "config/crab-joint.yaml"])
    base["analyses"]["crab_hess"]["datastore"] = str(data_path("hess-dl3-dr1/hdu-index.fits.gz").parent)
    base["analyses"]["crab_magic"]["datastore"] = str(data_path("magic-rad-max/hdu-index.fits.gz").parent)
    norms = {}
    for label in ("point", "inside"):
        raw = {**base, "analyses": {a: dict(v) for a, v in base["analyses"].items()}}
        if label == "inside":
            raw["analyses"]["crab_hess"]["model"] = {k: v for k, v in raw["analyses"]["crab_hess"]["model"].items()
                                                     if k != "spatial"}
        analyses = validate_analyses(raw)
        joint = validate_joint(raw, analyses)
        spectra = {}
        for a in ("crab_hess", "crab_magic"):
            dirs = [tmp_path / label / a / str(o) for o in analyses[a]["obs_ids"]]
            for o, d in zip(analyses[a]["obs_ids"], dirs):
                reduce_observation(stage_config(analyses[a], "reduce"), analyses[a]["datastore"], o, d)
            spectra[a] = dirs
        run_joint_fit(joint_settings("crab_joint", joint["crab_joint"], analyses), spectra, tmp_path / label / "fit")
        r = yaml.safe_load((tmp_path / label / "fit" / "result.yaml").read_text())
        norms[label] = {a: r["systematics"][a]["norm"]["value"] for a in ("crab_hess", "crab_magic")}
        assert r["flux_definition"].startswith("flux of the whole source" if label == "point" else "mixed")
    assert max(abs(v) for v in norms["point"].values()) < 0.03, norms
    assert norms["inside"]["crab_hess"] < norms["point"]["crab_hess"] - 0.03, norms


# ---------------------------------------------------------------------- templates --

def _gauss_image(path, sigma, binsz=0.01, npix=201):
    """A FITS image (TAN, ICRS) of a 2D Gaussian of ``sigma`` deg at (RA, DEC), in arbitrary units."""
    from astropy.io import fits
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA, DEC]
    w.wcs.crpix = [(npix + 1) / 2] * 2
    w.wcs.cdelt = [-binsz, binsz]
    y, x = np.mgrid[0:npix, 0:npix]
    r = np.hypot(x - (npix - 1) / 2, y - (npix - 1) / 2) * binsz
    fits.PrimaryHDU(7.0 * np.exp(-0.5 * (r / sigma) ** 2), header=w.to_header()).writeto(path)
    return path


def test_template_of_a_gaussian_has_the_gaussian_containment(tmp_path):
    from extspec.io.sky_image import read_template
    from extspec.workflow.settings import spatial_model

    path = _gauss_image(tmp_path / "g.fits", 0.15)
    on = parse_region(f"icrs;circle({RA},{DEC},0.1)")
    sp = spatial_model({"model": {"type": "power_law", "spatial": {"type": "template", "file": str(path)}}}, on)
    assert sp.type == "template" and sp.frame == "icrs"
    assert sp.lon == pytest.approx(RA, abs=1e-6) and sp.lat == pytest.approx(DEC, abs=1e-6)
    t = read_template(path)
    assert t.weight.sum() == pytest.approx(1.0) and t.pixel == pytest.approx(0.01, rel=1e-3)
    psf = gauss_psf()
    res = source_containment(psf, flat_aeff(), POINTING, sp, on, [], E)
    np.testing.assert_allclose(res.containment, expected(psf, E, "gauss", 0.15, 0.1), rtol=0.02)
    assert "template" in sp.describe() and sp.as_meta()["file"] == str(path)


def test_template_refusals(tmp_path):
    from extspec.errors import ConfigError
    from extspec.workflow.config import validate_config

    raw = {"name": "t", "obs_ids": [1], "on_region": f"icrs;circle({RA},{DEC},0.1)"}
    good = _gauss_image(tmp_path / "g.fits", 0.1)
    bad = tmp_path / "bad.fits"
    bad.write_text("not a fits file")
    for sp, match in (({"type": "template"}, "model.spatial.file' is missing"),
                      ({"type": "template", "file": str(good), "lon": 1.0, "lat": 2.0}, "placed by its image's WCS"),
                      ({"type": "template", "file": str(bad)}, f"model.spatial.file {bad}: cannot read it as FITS"),
                      ({"type": "disk", "radius": 0.2, "file": str(good)}, "model.spatial.file': not a parameter")):
        with pytest.raises(ConfigError, match=match):
            validate_config({**raw, "model": {"type": "power_law", "spatial": sp}}, check_datastore=False)


def test_a_source_far_from_the_on_region_makes_the_run_unusable(tmp_path):
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point")
    path = simulate_datastore(tmp_path / "s", wobble_pointings(RA, DEC, 1), src, livetime=300)
    far = {"type": "point", "lon": RA + 0.5, "lat": DEC}  # 0.46 deg from a 0.1 deg circle, PSF 0.05 deg
    (spec,) = _reduce(path, _settings(f"icrs;circle({RA},{DEC},0.1)", far))
    assert not spec.usable and "puts under 1% of its photons inside the ON region" in spec.reason
