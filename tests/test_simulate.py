"""Tests of the DL3 simulator (extspec.simulate): format, IRFs, reproducibility, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from extspec.io.datastore import open_datastore
from extspec.errors import ConfigError, DataStoreError
from extspec.simulate import (
    IrfModel,
    SourceModel,
    main,
    run_seed,
    simulate_datastore,
    simulate_observation,
    wobble_pointings,
)

TARGET = (83.63, 22.01)  # ICRS, deg
IRF0 = IrfModel(psf_sigma=0.0)


def _sep(ra1, dec1, ra2, dec2):
    """Great-circle separation in deg (haversine)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    a = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(a)))


def _pl(index=2.5, amplitude=1e-11):
    return {"index": index, "amplitude": amplitude}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim") / "store"
    src = SourceModel(*TARGET, morphology="disk", size=0.3, params=_pl())
    pnts = wobble_pointings(*TARGET, 4, offset=0.7)
    simulate_datastore(root, pnts, src, livetime=600.0, deadc=0.9, seed=3, obs_id_start=100)
    return root


# ------------------------------------------------------------------------------ format --


def test_store_opens_and_runs_load(store):
    ds = open_datastore(store)
    assert list(ds.obs_ids) == [100, 101, 102, 103]
    pnts = wobble_pointings(*TARGET, 4, offset=0.7)
    for i, obs_id in enumerate(ds.obs_ids):
        obs = ds.load(obs_id)
        assert obs.obs_id == obs_id
        assert obs.ra.dtype == np.float32 and obs.energy.dtype == np.float32
        assert obs.time.dtype == np.float64
        assert obs.livetime == pytest.approx(600.0, rel=1e-10)
        assert np.all((obs.time >= obs.gti[0, 0]) & (obs.time <= obs.gti[0, 1]))
        assert np.all(np.diff(obs.time) >= 0)
        assert obs.pointing_radec == pytest.approx(tuple(pnts[i]), abs=1e-9)
        assert obs.bkg is not None and obs.bkg.fovalign == "RADEC"
        assert obs.bkg.unit == "s-1 MeV-1 sr-1"  # the file's MeV-1 s-1 sr-1, read as extspec's unit
        assert (obs.lo_thres, obs.hi_thres) == (0.1, 100.0)
        assert obs.meta["OBS_MODE"] == "WOBBLE"
        with fits.open(obs.source_file) as h:
            assert [x.name for x in h] == ["PRIMARY", "EVENTS", "GTI", "AEFF", "EDISP", "BKG", "PSF"]
            h.verify("exception")
            assert h["PSF"].header["HDUCLAS4"] == "PSF_3GAUSS" and h["PSF"].header["TDIM9"] == "(96,6)"
            hdr = h["EVENTS"].header
            assert obs.livetime == hdr["ONTIME"] * hdr["DEADC"]  # exactly
            assert obs.ontime == hdr["ONTIME"] == hdr["TSTOP"] - hdr["TSTART"]
            assert hdr["LIVETIME"] == obs.livetime
            assert hdr["OBS_ID"] == obs_id
            for key in ("TSTART", "TSTOP", "MJDREFI", "MJDREFF", "RA_PNT", "DEC_PNT"):
                assert key in hdr
            assert h["EDISP"].header["TDIM7"] == "(96,160,6)"
            assert np.array_equal(h["EVENTS"].data["EVENT_ID"], np.arange(1, len(obs.ra) + 1))


def test_index_tables(store):
    with fits.open(store / "obs-index.fits.gz") as h:
        t = h["OBS_INDEX"].data
        for col in ("OBS_ID", "RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT", "ONTIME", "LIVETIME",
                    "DEADC", "TSTART", "TSTOP", "ZEN_PNT", "EVENT_COUNT"):
            assert col in t.columns.names
        counts = dict(zip(t["OBS_ID"], t["EVENT_COUNT"]))
        assert np.allclose(t["LIVETIME"], t["ONTIME"] * t["DEADC"])
        assert np.all(t["TSTART"][1:] >= t["TSTOP"][:-1])
    ds = open_datastore(store)
    for obs_id, n in counts.items():
        assert len(ds.load(obs_id).ra) == n
    # the PSF listed (PSF_3GAUSS, the smearing law); every listed HDU exists
    assert set(ds.hdu_table["HDU_TYPE"]) == {"events", "gti", "aeff", "edisp", "bkg", "psf"}
    assert set(ds.hdu_table["HDU_CLASS"][ds.hdu_table["HDU_TYPE"] == "psf"]) == {"psf_3gauss"}
    from astropy.coordinates import SkyCoord

    c = SkyCoord(t["RA_PNT"], t["DEC_PNT"], unit="deg").galactic
    assert np.allclose(c.l.deg, t["GLON_PNT"]) and np.allclose(c.b.deg, t["GLAT_PNT"])


def test_irfs_match_analytic(store):
    irf = IrfModel()
    obs = open_datastore(store).load(100)
    # effective area at the table nodes (float32 storage)
    e = obs.aeff.energy.nodes[[10, 30, 50, 95]]
    for theta in (0.0, 0.5, 1.5, 2.5):
        assert np.allclose(obs.aeff.evaluate(e, theta), irf.effective_area(e, theta), rtol=1e-6)
    assert obs.aeff.evaluate(1.0, 2.76) == 0.0
    # energy dispersion: a density per unit migration that integrates to 1 ...
    dmu = obs.edisp.migra.bin_widths
    for ie in (0, 40, 95):
        for it in (0, 3, 5):
            assert np.sum(obs.edisp.data[ie, :, it] * dmu) == pytest.approx(1.0, abs=1e-5)
    # ... and is the log-normal of the model: bin averages exactly, pointwise within 1 %
    m = obs.edisp.migra.edges
    assert np.allclose(obs.edisp.data[30, :, 2], irf.edisp_bin_density(m[:-1], m[1:]), rtol=1e-6,
                       atol=1e-30)
    mu = np.array([0.9, 0.995, 1.025, 1.1])
    dens = obs.edisp.evaluate(1.0, mu, 0.7)
    assert np.allclose(dens, irf.edisp_density(mu), rtol=1e-2)
    mu_mean = np.sum(obs.edisp.migra.nodes * obs.edisp.data[50, :, 0] * dmu)
    assert mu_mean == pytest.approx(math.exp(0.5 * 0.1**2), rel=1e-4)
    # background at its nodes
    b = obs.bkg
    x, y = b.fov_lon.nodes, b.fov_lat.nodes
    r = np.hypot(x[None, :], y[:, None])
    want = irf.background_rate(b.energy.nodes[:, None, None], r[None])
    assert np.allclose(b.data, want, rtol=1e-6, atol=0)
    assert b.data.shape == (20, 50, 50)
    assert b.fov_lon.edges[0] == -6.0 and b.fov_lon.edges[-1] == 6.0


# ---------------------------------------------------------------------- reproducibility --


def _events(root, obs_id):
    obs = open_datastore(root).load(obs_id)
    return obs.time, obs.ra, obs.dec, obs.energy


def test_same_seed_identical_different_seed_different(tmp_path):
    src = SourceModel(*TARGET, params=_pl(amplitude=3e-11))
    pnts = wobble_pointings(*TARGET, 2)
    kw = dict(livetime=300.0)
    a = simulate_datastore(tmp_path / "a", pnts, src, seed=7, **kw)
    b = simulate_datastore(tmp_path / "b", pnts, src, seed=7, **kw)
    c = simulate_datastore(tmp_path / "c", pnts, src, seed=8, **kw)
    for obs_id in (1, 2):
        for x, y in zip(_events(a, obs_id), _events(b, obs_id)):
            assert np.array_equal(x, y)
        assert not np.array_equal(_events(a, obs_id)[3], _events(c, obs_id)[3])
    # byte-identical files (no time stamps anywhere)
    for name in ("obs-index.fits.gz", "hdu-index.fits.gz", "data/obs_000001.fits.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_adding_runs_keeps_earlier_runs(tmp_path):
    src = SourceModel(*TARGET, morphology="gaussian", size=0.2, params=_pl(amplitude=3e-11))
    a = simulate_datastore(tmp_path / "a", wobble_pointings(*TARGET, 2), src, livetime=300.0, seed=1)
    b = simulate_datastore(tmp_path / "b", wobble_pointings(*TARGET, 3), src, livetime=300.0, seed=1)
    assert list(open_datastore(b).obs_ids) == [1, 2, 3]
    for obs_id in (1, 2):
        for x, y in zip(_events(a, obs_id), _events(b, obs_id)):
            assert np.array_equal(x, y)
    # run i of a store is simulate_observation with run_seed(seed, i)
    sim = simulate_observation(wobble_pointings(*TARGET, 2)[1], src, livetime=300.0,
                               tstart=open_datastore(a).load(2).gti[0, 0], seed=run_seed(1, 1))
    assert np.array_equal(sim.energy, _events(a, 2)[3])
    assert np.array_equal(sim.time, _events(a, 2)[0])


def test_overwrite(tmp_path):
    pnts = wobble_pointings(*TARGET, 3)
    simulate_datastore(tmp_path, pnts, None, livetime=60.0)
    with pytest.raises(DataStoreError, match="overwrite"):
        simulate_datastore(tmp_path, pnts, None, livetime=60.0)
    simulate_datastore(tmp_path, pnts[:1], None, livetime=60.0, overwrite=True)
    assert list(open_datastore(tmp_path).obs_ids) == [1]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["obs_000001.fits.gz"]
    assert not list(tmp_path.rglob("*.tmp"))


# -------------------------------------------------------------------------- statistics --


def _within_5_sigma(n, mu):
    return abs(n - mu) <= 5 * math.sqrt(mu) + 1


def test_counts_match_expectation():
    pnt = (TARGET[0], TARGET[1] + 0.5)
    src = SourceModel(*TARGET, params=_pl(index=2.5, amplitude=2e-11))
    # source only
    s = simulate_observation(pnt, src, livetime=1800.0, irf=IRF0, bkg_scale=0.0, seed=11)
    assert np.all(s.mc_id == 1) and s.npred_background == 0.0
    assert _within_5_sigma(s.n_events, s.npred_source)
    # independent expectation with the analytic effective area (table interpolation: <1%)
    e = np.geomspace(0.01, 100.0, 20001)
    f = src.dnde(e) * IRF0.effective_area(e, _sep(*pnt, *TARGET)) * e
    want = 1800.0 * 1e4 * np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(np.log(e)))
    assert s.npred_source == pytest.approx(want, rel=0.01)
    # background only
    b = simulate_observation(pnt, None, livetime=1800.0, irf=IRF0, seed=12)
    assert np.all(b.mc_id == 0) and b.npred_source == 0.0
    assert _within_5_sigma(b.n_events, b.npred_background)
    g, sig, rmax = IRF0.bkg_index, math.radians(IRF0.bkg_offset_sigma), math.radians(2.5)
    e_int = (0.1 ** (1 - g) - 100.0 ** (1 - g)) / (g - 1)
    omega = 2 * math.pi * sig**2 * (1 - math.exp(-0.5 * (rmax / sig) ** 2))
    assert b.npred_background == pytest.approx(1800.0 * IRF0.bkg_norm * 1e6 * e_int * omega, rel=1e-3)
    offs = _sep(*pnt, b.ra.astype(float), b.dec.astype(float))
    assert offs.max() <= 2.5 + 1e-4
    assert np.all((b.energy >= 0.1 * (1 - 1e-6)) & (b.energy <= 100.0 * (1 + 1e-6)))
    # both together: the source stream does not depend on the background
    both = simulate_observation(pnt, src, livetime=1800.0, irf=IRF0, seed=11)
    assert np.array_equal(np.sort(both.energy[both.mc_id == 1]), np.sort(s.energy))
    assert both.npred_background == pytest.approx(b.npred_background)


def _mean_log_truncated_pl(index, e0, e1):
    """E[ln(E/e0)] for dN/dE ~ E^-index on [e0, e1]."""
    a, x1 = index - 1.0, math.log(e1 / e0)
    return 1.0 / a - x1 * math.exp(-a * x1) / (1.0 - math.exp(-a * x1))


def test_power_law_energy_distribution():
    index = 2.5
    src = SourceModel(*TARGET, params=_pl(index=index, amplitude=1e-9))
    sim = simulate_observation((TARGET[0], TARGET[1] + 0.5), src, livetime=1800.0, irf=IRF0,
                               bkg_scale=0.0, seed=5)
    e0, e1 = 2.0, 50.0  # A_eff is flat there (1 - exp(-(2/0.3)^2) = 1 - 5e-20)
    want = _mean_log_truncated_pl(index, e0, e1)
    for energy in (sim.energy_true, sim.energy.astype(float)):  # true, and reco (scale-free law)
        sel = energy[(energy >= e0) & (energy <= e1)]
        x = np.log(sel / e0)
        assert sel.size > 500
        assert abs(x.mean() - want) < 5 * x.std() / math.sqrt(sel.size)
    # energy dispersion: ln(E_reco / E_true) ~ N(0, 0.1)
    lnmu = np.log(sim.energy.astype(float) / sim.energy_true)
    assert abs(lnmu.mean()) < 5 * 0.1 / math.sqrt(lnmu.size)
    assert lnmu.std() == pytest.approx(0.1, rel=0.05)
    # detected spectrum follows dnde x A_eff: few events far below threshold
    assert np.mean(sim.energy_true < 0.1) < np.mean(sim.energy_true > 0.3)


def _radial_fraction(aeff, r_in, r_out, pdf):
    """Fraction within r_in of a radial law ``pdf(r)`` on [0, r_out], weighted by A_eff(r)."""
    r = np.linspace(0.0, r_out, 20001)
    w = pdf(r) * aeff.evaluate(10.0, r)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(r))])
    return np.interp(r_in, r, cdf) / cdf[-1]


def test_disk_and_gaussian_morphology(store):
    aeff = open_datastore(store).load(100).aeff  # the reader's law for the default IRF
    radius = 0.6
    disk = SourceModel(*TARGET, morphology="disk", size=radius, params=_pl(amplitude=1e-10))
    sim = simulate_observation(TARGET, disk, livetime=1800.0, irf=IRF0, bkg_scale=0.0, seed=9)
    r = _sep(*TARGET, sim.ra.astype(float), sim.dec.astype(float))
    n = r.size
    assert n > 2000
    assert np.all(r <= radius + 1e-4)  # PSF 0: every event inside the disk
    p = _radial_fraction(aeff, radius / 2, radius, lambda x: np.sin(np.radians(x)))
    assert abs(np.mean(r <= radius / 2) - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert p > 0.25  # the offset fall-off of A_eff favours the centre (and it is simulated)

    sigma = 0.2
    gauss = SourceModel(*TARGET, morphology="gaussian", size=sigma, params=_pl(amplitude=1e-10))
    sim = simulate_observation(TARGET, gauss, livetime=1800.0, irf=IRF0, bkg_scale=0.0, seed=10)
    r = _sep(*TARGET, sim.ra.astype(float), sim.dec.astype(float))
    p = _radial_fraction(aeff, sigma, 3.0, lambda x: x * np.exp(-0.5 * (x / sigma) ** 2))
    assert abs(np.mean(r <= sigma) - p) < 5 * math.sqrt(p * (1 - p) / r.size)

    # the PSF smears point-source positions by a 2D gaussian of the given sigma
    point = SourceModel(*TARGET, params=_pl(amplitude=1e-10))
    sim = simulate_observation(TARGET, point, livetime=600.0, irf=IrfModel(psf_sigma=0.1),
                               bkg_scale=0.0, seed=4)
    r = _sep(*TARGET, sim.ra.astype(float), sim.dec.astype(float))
    assert np.sqrt(np.mean(r**2) / 2) == pytest.approx(0.1, rel=0.05)


# ------------------------------------------------------------------------------- errors --


def test_truncated_file_gives_datastore_error(tmp_path):
    root = simulate_datastore(tmp_path, wobble_pointings(*TARGET, 2), None, livetime=60.0)
    f = root / "data" / "obs_000002.fits.gz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    ds = open_datastore(root)
    ds.load(1)
    with pytest.raises(DataStoreError) as err:
        ds.load(2)
    msg = str(err.value)
    assert "obs_000002.fits.gz" in msg and "\n" not in msg


def test_invalid_inputs(tmp_path):
    with pytest.raises(ConfigError):
        SourceModel(*TARGET, morphology="ring")
    with pytest.raises(ConfigError):
        SourceModel(*TARGET, morphology="disk", size=0.0)
    with pytest.raises(ConfigError):
        SourceModel(*TARGET, spectrum="nope")
    with pytest.raises(ConfigError):
        simulate_datastore(tmp_path, np.zeros((2, 3)), None)


def test_wobble_pointings():
    p = wobble_pointings(*TARGET, 6, offset=0.7)
    assert p.shape == (6, 2)
    assert np.allclose(_sep(*TARGET, p[:, 0], p[:, 1]), 0.7)
    assert np.allclose(p[4], p[0]) and np.allclose(p[5], p[1])
    assert p[0, 1] > TARGET[1] and p[2, 1] < TARGET[1]  # north, then east, south, west


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0
    assert "--n-runs" in capsys.readouterr().out
    out = tmp_path / "cli"
    assert main([str(out), "--n-runs", "2", "--seed", "3", "--livetime", "60"]) == 0
    assert list(open_datastore(out).obs_ids) == [1, 2]
    assert main([str(out), "--n-runs", "2"]) == 1  # exists, no --overwrite
    assert "overwrite" in capsys.readouterr().err
