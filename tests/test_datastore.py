"""GADF DL3 data store (reduction-spec §1, §10 livetimes): check values and bad input.

Every bad-input case must raise :class:`extspec.errors.DataStoreError` whose message is one
line and names the culprit (directory, obs id, file or HDU).
"""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest

from extspec.io.datastore import open_datastore, resolve_datastore_path
from extspec.errors import DataStoreError

OBS = 20326
FILE_20326 = "hess_dl3_dr1_obs_id_020326.fits.gz"
RXJ_RUNS = [20326, 20327, 20349, 20350, 20396, 20397, 20421, 20422, 20517, 20518, 20519, 20521,
            20898, 20899, 20900]
LIVETIMES = [1500.0090973600734, 1497.0739418193739, 1494.502411410215, 1497.654479131104,
             1499.0009730756312, 1505.1713367998582]


@pytest.fixture(scope="module")
def obs20326(datastore):
    return datastore.load(OBS)


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, f"message is not one line: {msg!r}"
    return msg


# ------------------------------------------------------------------------- §1.2 scalars --


def test_ontime_livetime_20326(obs20326):
    # time-object arithmetic of the reference gives 1682.9999999999993; GTI sum is 1683
    np.testing.assert_allclose(obs20326.ontime, 1682.9999999999993, rtol=1e-14)
    np.testing.assert_allclose(obs20326.livetime, 1500.0090973600734, rtol=1e-14)
    np.testing.assert_allclose(obs20326.livetime, obs20326.ontime * obs20326.deadc, rtol=1e-15)
    # the header keyword LIVETIME (1500.00903320312) is NOT used
    assert abs(obs20326.livetime - 1500.00903320312) > 1e-6


def test_pointing_from_events_header(obs20326, store_path):
    from astropy.io import fits

    with fits.open(store_path / "data" / FILE_20326) as hdul:
        hdr = hdul["EVENTS"].header
        assert obs20326.pointing_radec == (hdr["RA_PNT"], hdr["DEC_PNT"])
    from astropy.coordinates import SkyCoord

    p = SkyCoord(*obs20326.pointing_radec, unit="deg", frame="icrs").galactic
    # §6.6: pointing (l, b) = (347.74039, -1.04179)
    assert abs(p.l.deg - 347.74039) < 5e-6 and abs(p.b.deg - -1.04179) < 5e-6
    assert obs20326.ra.dtype == np.float32 and obs20326.dec.dtype == np.float32
    assert obs20326.energy.dtype == np.float32


def test_safe_range_keywords_from_aeff_header(obs20326):
    # LO_THRES of the AEFF header, not the PSF header's 0.01
    assert obs20326.lo_thres == pytest.approx(0.234422881531992, rel=1e-15)
    assert obs20326.hi_thres == 100.0


def test_per_run_livetimes(seed_reference):
    got = [o.livetime for o in seed_reference.observations]
    np.testing.assert_allclose(got, LIVETIMES, rtol=1e-14)
    assert [o.obs_id for o in seed_reference.observations] == seed_reference.obs_ids


# ----------------------------------------------------------------------- §1.3-§1.4 IRFs --


@pytest.mark.parametrize(
    "energy, theta, expected",
    [
        (1, 0.5, 228994.11373223073),
        (1, 0.7, 213508.94283861987),
        (0.2, 0.7, 69318.25979883285),
        (10, 0.7, 280331.2159765455),
        (1, 2.6, 51327.465252636015),  # extrapolated from the 2.0 and 2.5 deg nodes
        (0.1, 0.7, 0.0),  # table is zero there
        (1, 2.76, 0.0),  # beyond the last offset edge 2.75
        (120, 0.5, 0.0),  # above the last energy edge 100 TeV
    ],
)
def test_aeff_check_values(obs20326, energy, theta, expected):
    got = float(obs20326.aeff.evaluate(energy, theta))
    if expected == 0:
        assert got == 0.0
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_aeff_vectorised_matches_scalar(obs20326):
    e = np.array([0.2, 1.0, 10.0])
    t = np.array([0.7, 0.5, 0.7])
    np.testing.assert_allclose(obs20326.aeff.evaluate(e, t),
                               [69318.25979883285, 228994.11373223073, 280331.2159765455], rtol=1e-13)


def test_edisp_density_check_values(obs20326, assert_printed):
    got = obs20326.edisp.evaluate(1.0, np.array([0.995, 1.025]), 0.5576836)
    assert_printed(got, "2.29380501 2.13802848", "M(1 TeV, mu, 0.5576836 deg)")


def test_offset_node_axis(obs20326):
    for axis in (obs20326.aeff.offset, obs20326.edisp.offset):
        np.testing.assert_allclose(axis.nodes, [0, 0.5, 1, 1.5, 2, 2.5], atol=1e-12)
        np.testing.assert_allclose(axis.edges, [-0.25, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75], atol=1e-12)
        assert not axis.log


def test_energy_and_migra_edge_axes(obs20326):
    e = obs20326.aeff.energy
    assert e.log and e.edges.size == 97
    np.testing.assert_allclose(e.edges[[0, -1]], [0.01, 100.0], rtol=1e-6)  # float32 columns
    np.testing.assert_allclose(e.nodes, np.sqrt(e.edges[:-1] * e.edges[1:]), rtol=1e-15)
    m = obs20326.edisp.migra
    assert not m.log and m.edges.size == 161
    np.testing.assert_allclose(m.edges[[0, -1]], [0.2, 5.0], rtol=1e-6)
    np.testing.assert_allclose(np.diff(m.edges), 0.03, rtol=1e-5)
    assert obs20326.aeff.data.dtype == np.float64 and obs20326.aeff.data.shape == (96, 6)
    assert obs20326.edisp.data.shape == (96, 160, 6)


# ----------------------------------------------------------------------------- selection --


def test_select_by_ids_keeps_order(datastore):
    assert datastore.select(obs_ids=[20327, 20326]) == [20327, 20326]


def test_select_by_cone_rxj1713(datastore):
    cone = {"lon": 347.3, "lat": -0.5, "radius": 2.0, "frame": "galactic"}
    assert datastore.select(cone=cone) == RXJ_RUNS


def test_select_ids_and_cone_is_union(datastore):
    cone = {"lon": 347.3, "lat": -0.5, "radius": 2.0, "frame": "galactic"}
    got = datastore.select(obs_ids=[20136, 20326], cone=cone)
    assert got == [20136, 20326] + [o for o in RXJ_RUNS if o != 20326]


def test_select_unknown_id(datastore):
    with pytest.raises(DataStoreError) as ei:
        datastore.select(obs_ids=[20326, 99999])
    msg = one_line(ei)
    assert "99999" in msg


# ------------------------------------------------------------------------------ bad input --


def small_store(tmp_path, store_path, data: bool = True):
    """tmp_path holding both index files and (optionally) the data file of 20326."""
    for name in ("obs-index.fits.gz", "hdu-index.fits.gz"):
        shutil.copy(store_path / name, tmp_path / name)
    (tmp_path / "data").mkdir()
    if data:
        shutil.copy(store_path / "data" / FILE_20326, tmp_path / "data" / FILE_20326)
    return tmp_path


def write_20326_variant(store_path, target, drop=(), replace=None):
    """Write 20326's HDUs to ``target`` minus ``drop``, with HDU ``replace=(name, hdu)`` swapped."""
    from astropy.io import fits

    with fits.open(store_path / "data" / FILE_20326) as hdul:
        out = []
        for h in hdul:
            if h.name in drop:
                continue
            if replace is not None and h.name == replace[0]:
                out.append(replace[1])
            else:
                out.append(h.copy())
        fits.HDUList(out).writeto(target, overwrite=True)


def test_small_store_loads(tmp_path, store_path):
    ds = open_datastore(small_store(tmp_path, store_path))
    obs = ds.load(OBS)
    np.testing.assert_allclose(obs.livetime, 1500.0090973600734, rtol=1e-14)


def test_not_a_store(tmp_path):
    with pytest.raises(DataStoreError) as ei:
        open_datastore(tmp_path)
    msg = one_line(ei)
    assert str(tmp_path) in msg and "obs-index" in msg


def test_not_a_directory(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataStoreError) as ei:
        open_datastore(f)
    assert str(f) in one_line(ei)


def test_obs_id_not_in_index(datastore):
    with pytest.raises(DataStoreError) as ei:
        datastore.load(12345)
    msg = one_line(ei)
    assert "12345" in msg
    known = [str(o) for o in sorted(datastore.obs_ids)[:3]]
    assert any(k in msg for k in known), f"message should name a few known ids: {msg}"


def test_missing_data_file(tmp_path, store_path):
    ds = open_datastore(small_store(tmp_path, store_path, data=False))
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert FILE_20326 in msg and "not exist" in msg


def test_missing_hdu(tmp_path, store_path):
    root = small_store(tmp_path, store_path, data=False)
    write_20326_variant(store_path, root / "data" / FILE_20326, drop=("EDISP",))
    ds = open_datastore(root)
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert FILE_20326 in msg and "edisp" in msg.lower()


def test_truncated_gzip(tmp_path, store_path):
    root = small_store(tmp_path, store_path, data=False)
    raw = (store_path / "data" / FILE_20326).read_bytes()
    (root / "data" / FILE_20326).write_bytes(raw[: len(raw) // 2])
    ds = open_datastore(root)
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert FILE_20326 in msg and ("truncated" in msg or "corrupt" in msg)


@pytest.mark.parametrize("content", [b"this is not a FITS file at all\n" * 10,
                                     gzip.compress(b"plain text, gzipped, not FITS\n" * 200)],
                         ids=["garbage", "gzipped-text"])
def test_corrupt_non_fits(tmp_path, store_path, content):
    root = small_store(tmp_path, store_path, data=False)
    (root / "data" / FILE_20326).write_bytes(content)
    ds = open_datastore(root)
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert FILE_20326 in msg


def test_corrupt_index_file(tmp_path, store_path):
    small_store(tmp_path, store_path)
    (tmp_path / "hdu-index.fits.gz").write_bytes(b"broken")
    with pytest.raises(DataStoreError) as ei:
        open_datastore(tmp_path)
    assert "hdu-index" in one_line(ei)


def test_irf_table_wrong_shape(tmp_path, store_path):
    """EFFAREA cell of 5 x 96 while the THETA axis has 6 nodes."""
    from astropy.io import fits

    root = small_store(tmp_path, store_path, data=False)
    with fits.open(store_path / "data" / FILE_20326) as hdul:
        old = hdul["AEFF"]
        cols = [c.copy() for c in old.columns if c.name != "EFFAREA"]
        area = np.asarray(old.data["EFFAREA"][0])  # (6, 96)
        cols.append(fits.Column(name="EFFAREA", format="480E", unit="m2", dim="(96,5)",
                                array=area[None, :5, :]))
        new = fits.BinTableHDU.from_columns(cols, header=old.header.copy(), name="AEFF")
        new.header["TDIM5"] = "(96,5)"
    write_20326_variant(store_path, root / "data" / FILE_20326, replace=("AEFF", new))
    ds = open_datastore(root)
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert "EFFAREA" in msg and "shape" in msg and FILE_20326 in msg


def test_irf_axis_length_mismatch(tmp_path, store_path):
    """THETA_LO and THETA_HI of different lengths."""
    from astropy.io import fits

    root = small_store(tmp_path, store_path, data=False)
    with fits.open(store_path / "data" / FILE_20326) as hdul:
        old = hdul["AEFF"]
        cols = []
        for c in old.columns:
            if c.name == "THETA_HI":
                cols.append(fits.Column(name="THETA_HI", format="5E", unit="deg",
                                        array=np.asarray(old.data["THETA_HI"])[:, :5]))
            else:
                cols.append(c.copy())
        new = fits.BinTableHDU.from_columns(cols, header=old.header.copy(), name="AEFF")
    write_20326_variant(store_path, root / "data" / FILE_20326, replace=("AEFF", new))
    ds = open_datastore(root)
    with pytest.raises(DataStoreError) as ei:
        ds.load(OBS)
    msg = one_line(ei)
    assert "THETA" in msg and FILE_20326 in msg


# --------------------------------------------------------------- resolve_datastore_path --


def test_resolve_explicit_path_wins(tmp_path, store_path, monkeypatch):
    other = tmp_path / "gp" / "hess-dl3-dr1"
    other.mkdir(parents=True)
    small_store(other, store_path, data=False)
    monkeypatch.setenv("GAMMAPY_DATA", str(tmp_path / "gp"))
    assert resolve_datastore_path(store_path) == store_path
    assert resolve_datastore_path() == other.resolve()


def test_resolve_gammapy_data(tmp_path, store_path, monkeypatch):
    gp = tmp_path / "gammapy-data"
    store = gp / "hess-dl3-dr1"
    store.mkdir(parents=True)
    small_store(store, store_path)
    monkeypatch.setenv("GAMMAPY_DATA", str(gp))
    monkeypatch.chdir(tmp_path)
    assert resolve_datastore_path() == store.resolve()
    ds = open_datastore()
    assert ds.path == store.resolve() and OBS in ds.obs_ids


def test_resolve_nothing_found(tmp_path, monkeypatch):
    gp = tmp_path / "empty-gammapy-data"
    gp.mkdir()
    work = tmp_path / "work" / "main"
    work.mkdir(parents=True)
    monkeypatch.setenv("GAMMAPY_DATA", str(gp))
    monkeypatch.chdir(work)
    with pytest.raises(DataStoreError) as ei:
        resolve_datastore_path()
    msg = one_line(ei)
    assert str(gp / "hess-dl3-dr1") in msg
    assert "shared" in msg and "hess-dl3-dr1" in msg
    assert "1421099" in msg and "Zenodo" in msg


def test_resolve_wrong_explicit_path_no_fallback(tmp_path, store_path, monkeypatch):
    monkeypatch.setenv("GAMMAPY_DATA", str(store_path.parent))  # would be valid
    wrong = tmp_path / "nowhere"
    with pytest.raises(DataStoreError) as ei:
        resolve_datastore_path(wrong)
    msg = one_line(ei)
    assert str(wrong) in msg and "1421099" in msg


def test_psf_table_loaded_on_request(datastore):
    """PSF_TABLE is loaded only on request (the chain never uses it): axes from the file,
    containment integrates to ~1."""
    obs = datastore.load(20326, load_psf=True)
    assert obs.psf is not None and obs.psf.data.shape == (32, 6, 144)
    assert obs.psf.unit == "sr^-1"
    np.testing.assert_allclose(obs.psf.containment(10, 1)[-1], 1.0, atol=1e-3)
    assert datastore.load(20326).psf is None


# ------------------------------------------------------------- index tables per process --


def test_open_datastore_keeps_the_index_until_it_changes(tmp_path, store_path):
    """The index tables are parsed once per process and store (rule reduce's jobs share a
    process), again when an index file's bytes change (whatever its file times say), and
    cached=False always reads afresh."""
    from astropy.io import fits

    (tmp_path / "s").mkdir()
    root = small_store(tmp_path / "s", store_path)
    first = open_datastore(root)
    assert open_datastore(root) is first and open_datastore(str(root)) is first
    fresh = open_datastore(root, cached=False)
    assert fresh is not first and np.array_equal(fresh.obs_ids, first.obs_ids)
    n = len(first.obs_ids)
    original = (root / "obs-index.fits.gz").read_bytes()
    # the obs index rewritten without its first row (written aside, then renamed over it)
    with fits.open(root / "obs-index.fits.gz") as hdul:
        hdul[1] = fits.BinTableHDU(hdul[1].data[1:], header=hdul[1].header, name=hdul[1].name)
        hdul.writeto(tmp_path / "new.fits.gz")
    os.replace(tmp_path / "new.fits.gz", root / "obs-index.fits.gz")
    changed = open_datastore(root)
    assert changed is not first and len(changed.obs_ids) == n - 1
    # rewritten in place with its own bytes: kept; with the original bytes at once, in place
    # (the same inode, file times that may not have moved): parsed again
    (root / "obs-index.fits.gz").write_bytes((root / "obs-index.fits.gz").read_bytes())
    assert open_datastore(root) is changed
    (root / "obs-index.fits.gz").write_bytes(original)
    again = open_datastore(root)
    assert again is not changed and np.array_equal(again.obs_ids, first.obs_ids)
    # an unreadable index is refused as before, not served from the cache
    (root / "hdu-index.fits.gz").write_bytes(b"not fits")
    with pytest.raises(DataStoreError) as ei:
        open_datastore(root)
    assert "hdu-index.fits.gz" in one_line(ei)


@pytest.mark.parametrize("cached", [True, False])
def test_unreadable_index_is_one_line_either_way(monkeypatch, tmp_path, store_path, cached):
    """An index file that cannot be read (here: permission denied) gives the store's one-line
    DataStoreError naming the file, whether the per-process index is used or not."""
    import pathlib
    import shutil

    from extspec.io import datastore as dsm

    root = tmp_path / "store"
    root.mkdir()
    for name in ("obs-index.fits.gz", "hdu-index.fits.gz"):
        shutil.copy(store_path / name, root / name)
    real = pathlib.Path.read_bytes

    def deny(self):
        if "index" in self.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", deny)
    with pytest.raises(DataStoreError, match=r"cannot read .*index\.fits\.gz"):
        dsm.open_datastore(root, cached=cached)
