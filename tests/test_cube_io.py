"""Round trip and error handling of the HDF5 cube product (extspec.io.cube_io)."""

import os
import time

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from extspec.io import cube_io
from extspec.cube import CubeDataset
from extspec.io.cube_io import read_cube, write_cube
from extspec.errors import FormatError
from extspec.geometry import MapGeom, make_energy_axis


def make_synthetic_cube(lo_thres=0.3, hi_thres=None, meta=None) -> CubeDataset:
    rng = np.random.default_rng(42)
    geom = MapGeom.create(348.3, -0.66, (1.2, 1.0), 0.04, "galactic", "CAR")
    cgeom = geom.with_binsz(0.2)
    e_reco = make_energy_axis(0.3, 40, 7)
    e_true = make_energy_axis(0.05, 100, 11)
    ny, nx = geom.shape
    nyc, nxc = cgeom.shape
    kernel = rng.random((nyc, nxc, e_true.nbin, e_reco.nbin))
    kernel /= kernel.sum(axis=-1, keepdims=True)
    return CubeDataset(
        obs_id=20136,
        geom=geom,
        edisp_geom=cgeom,
        energy_reco=e_reco,
        energy_true=e_true,
        counts=rng.poisson(3.0, (e_reco.nbin, ny, nx)).astype(np.int32),
        exposure=rng.random((e_true.nbin, ny, nx)) * 1e9,
        edisp_kernel=kernel,
        edisp_exposure=rng.random((e_true.nbin, nyc, nxc)) * 1e9,
        livetime=1581.736,
        ontime=1687.0,
        deadc=0.9376,
        pointing_radec=(258.1125, -39.6867),
        gti=np.array([[1.0e8, 1.0e8 + 1000.0], [1.0e8 + 1200.0, 1.0e8 + 1887.0]]),
        lo_thres=lo_thres,
        hi_thres=hi_thres,
        method="exact",
        source_file="/data/hess_dl3/run020136.fits.gz",
        checksum="ab" * 32,
        meta={"OBJECT": "RX J1713.7-3946", "OBS_MODE": "WOBBLE"} if meta is None else meta,
        background=rng.random((e_reco.nbin, ny, nx)) * 2.0,
    )


def assert_cubes_equal(a: CubeDataset, b: CubeDataset):
    for name in ("counts", "exposure", "edisp_kernel", "edisp_exposure", "gti", "background"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name
    assert b.counts.dtype == np.int32
    assert b.exposure.dtype == np.float64
    assert a.geom == b.geom and a.edisp_geom == b.edisp_geom
    assert a.energy_reco == b.energy_reco and a.energy_true == b.energy_true
    for name in ("obs_id", "livetime", "ontime", "deadc", "lo_thres", "hi_thres", "method",
                 "source_file", "checksum", "meta"):
        assert getattr(a, name) == getattr(b, name), name
    assert tuple(a.pointing_radec) == tuple(b.pointing_radec)


def test_round_trip(tmp_path):
    cube = make_synthetic_cube()
    path = tmp_path / "cube.h5"
    t0 = time.perf_counter()
    write_cube(cube, path)
    t1 = time.perf_counter()
    back = read_cube(path)
    t2 = time.perf_counter()
    print(f"\ncube write {1e3 * (t1 - t0):.1f} ms, read {1e3 * (t2 - t1):.1f} ms, {path.stat().st_size} bytes")
    assert_cubes_equal(cube, back)
    assert isinstance(back.obs_id, int)
    assert isinstance(back.geom.npix[0], int)


def test_round_trip_none_thresholds_and_empty_meta_gti(tmp_path):
    cube = make_synthetic_cube(lo_thres=None, hi_thres=None, meta={})
    cube.gti = np.zeros((0, 2))
    path = tmp_path / "cube.h5"
    write_cube(cube, path)
    back = read_cube(path)
    assert back.lo_thres is None and back.hi_thres is None
    assert back.meta == {}
    assert back.gti.shape == (0, 2)
    assert_cubes_equal(cube, back)


def test_overwrite(tmp_path):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    cube = make_synthetic_cube(lo_thres=0.5)
    write_cube(cube, path)
    assert read_cube(path).lo_thres == 0.5
    assert os.listdir(tmp_path) == ["cube.h5"]


def test_layout(tmp_path):
    cube = make_synthetic_cube(hi_thres=None)
    path = tmp_path / "cube.h5"
    write_cube(cube, path)
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "extspec-cube"
        assert a["format_version"] == 2
        assert a["has_irf_cubes"] == 1 and a["has_background"] == 1
        assert f["background"].attrs["dims"] == "energy_reco,lat,lon"
        assert a["obs_id"] == 20136
        assert np.isnan(a["hi_thres"]) and a["lo_thres"] == 0.3
        assert a["source_sha256"] == cube.checksum
        assert a["created_by"].startswith("extspec ")
        for key in ("livetime", "ontime", "deadc", "pointing_ra", "pointing_dec", "method", "source_file"):
            assert key in a
        assert f["axes/energy_reco_edges"].attrs["unit"] == "TeV"
        assert f["axes/energy_true_edges"].attrs["unit"] == "TeV"
        for g in ("geom", "edisp_geom"):
            ga = f[g].attrs
            for key in ("lon", "lat", "frame", "proj", "nx", "ny", "binsz"):
                assert key in ga
            assert "CTYPE1" in ga["wcs_header"] and "GLON-CAR" in ga["wcs_header"]
            hdr = fits.Header.fromstring(ga["wcs_header"], sep="\n")
            geom = getattr(cube, g)
            assert (hdr["NAXIS1"], hdr["NAXIS2"]) == geom.npix
            assert np.allclose(WCS(hdr).wcs_pix2world([[0.0, 0.0], [5.0, 7.0]], 0),
                               geom.wcs.wcs_pix2world([[0.0, 0.0], [5.0, 7.0]], 0), rtol=0, atol=1e-12)
        assert f["counts"].dtype == np.int32
        assert f["counts"].attrs["dims"] == "energy_reco,lat,lon"
        assert f["exposure"].attrs["unit"] == "m2 s"
        assert f["edisp_exposure"].attrs["unit"] == "m2 s"
        assert f["gti"].attrs["unit"] == "s"
        assert f["meta"].attrs["OBJECT"] == "RX J1713.7-3946"
        for name in ("exposure", "edisp_exposure"):
            assert f[name].compression is None, name
        for name in cube_io.COMPRESSED:
            assert f[name].compression == "gzip", name
            assert f[name].compression_opts == cube_io.COMPRESSION_LEVEL, name
            assert f[name].shuffle, name


def test_constants_are_used(tmp_path):
    """The names in the file are exactly the module constants."""
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    with h5py.File(path, "r") as f:
        root = {v for k, v in vars(cube_io).items() if k.startswith("ATTR_") and not k.startswith("ATTR_GEOM")}
        root -= {cube_io.ATTR_UNIT, cube_io.ATTR_DIMS}
        assert set(f.attrs) == root
        datasets = {v for k, v in vars(cube_io).items() if k.startswith("DS_")}
        groups = {v for k, v in vars(cube_io).items() if k.startswith("GROUP_")}
        names = set()
        f.visit(lambda n: names.add(n.split("/")[-1]))
        assert names == datasets | groups


@pytest.mark.parametrize("step", ["_write_geom", "_write_arrays", "_write_meta"])
def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch, step):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cube_io, step, boom)
    path = tmp_path / "cube.h5"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_cube(make_synthetic_cube(), path)
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cube_io, "_write_meta", boom)
    with pytest.raises(KeyboardInterrupt):
        write_cube(make_synthetic_cube(lo_thres=1.0), path)
    assert os.listdir(tmp_path) == ["cube.h5"]
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------ errors --


def _error_line(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.h5"
    with pytest.raises(FormatError) as e:
        read_cube(path)
    _error_line(e, path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "cube.h5"
    path.write_text("SIMPLE  =                    T\n")
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "HDF5" in _error_line(e, path)


def test_truncated(tmp_path):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError) as e:
        read_cube(path)
    _error_line(e, path)


def test_foreign_file_without_format(tmp_path):
    path = tmp_path / "cube.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("counts", data=np.zeros(3))
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "format" in _error_line(e, path)


def test_foreign_file_other_format(tmp_path):
    path = tmp_path / "cube.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something-else"
        f.attrs["format_version"] = 1
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "something-else" in _error_line(e, path)


def test_newer_version(tmp_path):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = cube_io.FORMAT_VERSION + 1
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "newer" in _error_line(e, path)


@pytest.mark.parametrize("reader, name", [
    *((read_cube, n) for n in ["exposure", "edisp_kernel", "axes/energy_true_edges", "gti", "geom"]),
    *((cube_io.read_cube_counts, n) for n in ["counts", "axes/energy_reco_edges", "geom"]),
])
def test_missing_dataset(tmp_path, reader, name):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    with h5py.File(path, "r+") as f:
        del f[name]
    with pytest.raises(FormatError) as e:
        reader(path)
    assert name in _error_line(e, path)


def test_missing_root_attribute(tmp_path):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    with h5py.File(path, "r+") as f:
        del f.attrs["livetime"]
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "livetime" in _error_line(e, path)


def test_wrong_shape(tmp_path):
    path = tmp_path / "cube.h5"
    write_cube(make_synthetic_cube(), path)
    with h5py.File(path, "r+") as f:
        del f["counts"]
        f.create_dataset("counts", data=np.zeros((2, 3, 4), np.int32))
    with pytest.raises(FormatError) as e:
        read_cube(path)
    assert "counts" in _error_line(e, path)


# ------------------------------------------------------------------ counts-only reader --


def test_read_cube_counts_equals_read_cube(tmp_path):
    path = tmp_path / "cube.h5"
    cube = make_synthetic_cube()
    write_cube(cube, path)
    full = read_cube(path)
    part = cube_io.read_cube_counts(path)
    assert part.obs_id == full.obs_id == 20136
    assert part.geom == full.geom == cube.geom and part.geom.shape == (25, 30)
    assert part.energy_reco == full.energy_reco and part.energy_reco.nbin == 7
    assert part.counts.dtype == np.int32 and part.counts.shape == (7, 25, 30)
    np.testing.assert_array_equal(part.counts, cube.counts)
    assert int(part.counts.sum()) == int(cube.counts.sum())


def test_read_cube_counts_missing_file(tmp_path):
    with pytest.raises(FormatError) as e:
        cube_io.read_cube_counts(tmp_path / "missing.h5")
    _error_line(e, tmp_path / "missing.h5")


def test_optional_arrays_round_trip(tmp_path):
    """Without IRF cubes and background (as a workflow reduction of a run without BKG_3D)
    nothing of them is written and they read back as None; the counts reader gets the
    background and livetime when present."""
    from dataclasses import replace

    full = make_synthetic_cube()
    bare = replace(full, exposure=None, edisp_kernel=None, edisp_exposure=None, background=None)
    path = tmp_path / "cube.h5"
    write_cube(bare, path)
    with h5py.File(path, "r") as f:
        assert not {"exposure", "edisp_kernel", "edisp_exposure", "background"} & set(f)
    back = read_cube(path)
    assert back.exposure is None and back.edisp_kernel is None and back.background is None
    np.testing.assert_array_equal(back.counts, full.counts)
    assert cube_io.read_cube_counts(path).background is None
    write_cube(replace(full, exposure=None, edisp_kernel=None, edisp_exposure=None), path)
    c = cube_io.read_cube_counts(path)
    np.testing.assert_array_equal(c.background, full.background)
    assert c.livetime == full.livetime


def test_version_1_file_is_read(tmp_path):
    """A version-1 file (no has_* flags, always the IRF cubes, no background) still reads."""
    from dataclasses import replace

    path = tmp_path / "cube.h5"
    write_cube(replace(make_synthetic_cube(), background=None), path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1
        del f.attrs["has_irf_cubes"]
        del f.attrs["has_background"]
    back = read_cube(path)
    assert back.exposure is not None and back.background is None


def test_attributes_written_as_h5py_writes_them(tmp_path, monkeypatch):
    """write_cube sets its attributes with h5py's low-level calls (_set_attrs): the file is the
    one h5py's ``obj.attrs[name] = value`` writes, byte for byte, and reads back the same."""
    cube = make_synthetic_cube(meta={"note": "caf\u00e9 \u00b5", "n": 3, "non_ascii_key_\u00e9": "x"})
    fast = write_cube(cube, tmp_path / "fast.h5")

    def by_h5py(obj, items):
        for name, value in items:
            obj.attrs[name] = value

    monkeypatch.setattr(cube_io, "_set_attrs", by_h5py)
    slow = write_cube(cube, tmp_path / "slow.h5")
    assert fast.read_bytes() == slow.read_bytes()
    with h5py.File(fast, "r") as f:
        assert f.attrs["obs_id"] == cube.obs_id and f.attrs["obs_id"].dtype == np.int64
        assert f.attrs["livetime"] == cube.livetime and f["meta"].attrs["note"] == "caf\u00e9 \u00b5"
        assert f["meta"].attrs["non_ascii_key_\u00e9"] == "x"
    back = read_cube(fast)
    assert back.meta["note"] == "caf\u00e9 \u00b5" and back.livetime == cube.livetime
