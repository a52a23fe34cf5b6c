"""Background IRFs of every published release: BKG/BGD columns, BKG_2D, absent or unreadable.

* the reader on each variant :mod:`extspec.simulate.variants` writes (``bgd``, ``bkg_2d``,
  ``bkg_absent``, ``bkg_unreadable``) and a full reduction of each;
* the real CTA first-data-challenge IRF file (``BGD`` column) and a CTA prod5 file (axes in
  another order) from ``$GAMMAPY_DATA``, skipped with where they were looked for.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from extspec.cube import make_background
from extspec.io.datastore import open_datastore
from extspec.irf import Bkg2D, Bkg3D
from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
from extspec.simulate.variants import write_gadf_variant
from extspec.skyregions import parse_region
from extspec.workflow.settings import cube_settings

from conftest import find_data

RA, DEC = 83.63, 22.01
ON = f"icrs;circle({RA},{DEC},0.2)"


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum="power_law",
                      params={"index": 2.4, "amplitude": 3e-11, "reference": 1.0})
    return simulate_datastore(tmp_path_factory.mktemp("base") / "store", wobble_pointings(RA, DEC, 2, offset=0.5),
                              src, livetime=1800, seed=5)


@pytest.fixture(scope="module")
def variant(base_store, tmp_path_factory):
    made = {}

    def get(name):
        if name not in made:
            made[name] = write_gadf_variant(base_store, tmp_path_factory.mktemp(name), [name])
        return made[name]

    return get


def _bkg_map(obs):
    on = parse_region(ON)
    settings = cube_settings({"geom": {"width": [2.0, 2.0], "binsz": 0.1, "frame": "icrs"},
                              "energy_axis": {"min": 0.3, "max": 40, "nbins": 6}}, on)
    return make_background(obs, settings.geom, settings.energy_reco)


def test_bgd_column_reads_as_bkg(base_store, variant):
    base = open_datastore(base_store).load(1).bkg
    bgd = open_datastore(variant("bgd")).load(1)
    assert isinstance(bgd.bkg, Bkg3D) and bgd.bkg_error is None
    np.testing.assert_array_equal(bgd.bkg.data, base.data)
    assert base.data.max() > 0


def test_bkg_2d_offset_only_predicts_the_same_background(base_store, variant):
    base = open_datastore(base_store).load(1)
    obs = open_datastore(variant("bkg_2d")).load(1)
    assert isinstance(obs.bkg, Bkg2D) and obs.bkg.data.shape == (20, 60)
    # radially symmetric: the same rate at the same offset in any direction
    e = np.array([1.0])
    a = obs.bkg.evaluate(e, np.array([0.7]), np.array([0.0]))
    b = obs.bkg.evaluate(e, np.array([0.0]), np.array([-0.7]))
    c = obs.bkg.evaluate(e, np.array([0.7 / np.sqrt(2)]), np.array([0.7 / np.sqrt(2)]))
    np.testing.assert_allclose([b[0, 0], c[0, 0]], a[0, 0], rtol=1e-12)
    assert a[0, 0] > 0
    # the predicted background map agrees with the BKG_3D table it was made from
    m3, m2 = _bkg_map(base), _bkg_map(obs)
    assert m2.shape == m3.shape and m3.sum() > 50
    np.testing.assert_allclose(m2.sum(axis=(1, 2)), m3.sum(axis=(1, 2)), rtol=0.02)
    inner = m3 > 0.05 * m3.max()
    np.testing.assert_allclose(m2[inner], m3[inner], rtol=0.01)  # within the 2.5-deg cut-off of the simulation
    # the bkg-peak threshold reads the FoV-integrated rate: the same peak energy
    assert np.argmax(obs.bkg.rate_vs_energy()) == np.argmax(base.bkg.rate_vs_energy())
    np.testing.assert_allclose(obs.bkg.rate_vs_energy(), base.bkg.rate_vs_energy(), rtol=0.03)


@pytest.mark.parametrize("name,reason", [("bkg_absent", r"file \S*/bkg_000002.fits.gz does not exist"),
                                         ("bkg_unreadable", r"cannot read \S*/bkg_000002.fits.gz: corrupt")])
def test_missing_background_irf_does_not_stop_the_spectrum(base_store, variant, name, reason):
    from test_closure import reduce_store

    obs = open_datastore(variant(name)).load(2)
    assert obs.bkg is None
    assert re.match(rf"obs 2: {reason}", obs.bkg_error), obs.bkg_error
    assert "\n" not in obs.bkg_error
    assert _bkg_map(obs) is None
    # reflected regions need no background IRF: the same ON/OFF spectra as from the full store
    got = reduce_store(variant(name), ON)
    want = reduce_store(base_store, ON)
    for g, w in zip(got, want):
        assert g.usable and g.counts.sum() > 20
        np.testing.assert_array_equal(g.counts, w.counts)
        np.testing.assert_array_equal(g.counts_off, w.counts_off)
        np.testing.assert_allclose(g.alpha, w.alpha)


# ----------------------------------------------------------------- real files ($GAMMAPY_DATA) --


def test_real_cta_1dc_irf_file_bgd_column():
    """The CTA first data challenge (gammapy-data ``cta-1dc``): background column ``BGD`` in
    ``1/s/MeV/sr``, IRFs in ``caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits``."""
    root = find_data("cta-1dc/index/gps/hdu-index.fits.gz", "the CTA 1DC files of gammapy-data").parent
    store = open_datastore(root)
    obs = store.load(110380)
    assert obs.bkg_error is None and isinstance(obs.bkg, Bkg3D)
    assert obs.bkg.data.shape == (21, 36, 36)  # (energy, DETY, DETX) from TDIM (36, 36, 21)
    assert obs.meta["TELESCOP"] == "CTA"
    # the 1DC background is symmetric about the pointing: DETX <-> DETY and x -> -x
    d = obs.bkg.data
    np.testing.assert_allclose(d, np.swapaxes(d, 1, 2), rtol=1e-5)
    np.testing.assert_allclose(d, d[:, :, ::-1], rtol=1e-5)
    rate = obs.bkg.rate_vs_energy()
    assert np.all(rate[8:] > 0) and rate[-1] < 1e-3 * rate[np.argmax(rate)]  # falls steeply with energy
    m = _bkg_map_at(obs)
    assert np.isfinite(m).all() and m.sum() > 0


def _bkg_map_at(obs):
    ra, dec = obs.pointing_radec
    settings = cube_settings({"geom": {"width": [2.0, 2.0], "binsz": 0.1, "frame": "icrs"},
                              "energy_axis": {"min": 0.1, "max": 100, "nbins": 6}},
                             parse_region(f"icrs;circle({ra},{dec},0.2)"))
    return make_background(obs, settings.geom, settings.energy_reco)


def test_real_cta_prod5_background_axes_in_column_order():
    """CTA prod5 writes the columns ENERG, DETX, DETY (TDIM (21, 60, 60)); DR1 and 1DC write
    DETX, DETY, ENERG: the axis columns' order gives the array's."""
    from extspec.io.datastore import _background
    from extspec.io.fitsread import read_tables_any

    path = find_data("cta-caldb/Prod5-North-20deg-AverageAz-4LSTs09MSTs.180000s-v0.1.fits.gz",
                     "the CTA prod5 IRFs of gammapy-data")
    t = read_tables_any(path, {"BACKGROUND"})["BACKGROUND"]
    bkg = _background(t.header, t, str(path))
    assert bkg.data.shape == (21, 60, 60)
    profile = bkg.data[:, 30, 30]  # at the centre of the field of view
    peak = int(np.argmax(profile))
    assert bkg.energy.nodes[peak] < 0.2 and np.all(np.diff(profile[peak:]) < 0)  # energy is axis 0


@pytest.mark.parametrize("kind", ["bkg_3d", "bkg_2d", "altaz"])
def test_background_in_mask_is_the_cube_sum(base_store, variant, kind):
    """The fov/ring OFF-area prediction (weights gathered on the table's nodes) equals the
    per-pixel cube summed, for BKG_3D, BKG_2D and an ALTAZ-aligned BKG_3D (azimuth average)."""
    import dataclasses

    from extspec.cube import background_in_mask, background_predicted_at

    obs = open_datastore(variant("bkg_2d") if kind == "bkg_2d" else base_store).load(1)
    if kind == "altaz":
        obs = dataclasses.replace(obs, bkg=dataclasses.replace(obs.bkg, fovalign="ALTAZ"))
    on = parse_region(ON)
    settings = cube_settings({"geom": {"width": [4.0, 4.0], "binsz": 0.1, "frame": "icrs"},
                              "energy_axis": {"min": 0.3, "max": 40, "nbins": 6}}, on)
    geom = settings.geom
    lon, lat = geom.pixel_centers()
    mask = (lon > RA - 0.3) & background_predicted_at(obs, geom)
    cube = make_background(obs, geom, settings.energy_reco)
    assert cube[:, ~background_predicted_at(obs, geom)].sum() == 0
    np.testing.assert_allclose(background_in_mask(obs, geom, mask, settings.energy_reco),
                               cube[:, mask].sum(axis=1), rtol=1e-10)
