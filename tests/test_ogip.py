"""Round trip and OGIP conformance of the spectrum files (extspec.io.ogip)."""

import os
import time

import numpy as np
import pytest
from astropy.io import fits

from extspec.io import ogip
from extspec.errors import FormatError
from extspec.geometry import make_energy_axis
from extspec.io.fitswrite import card_images
from extspec.io.ogip import read_spectrum, write_spectrum
from extspec.spectrum import SpectrumDataset

OFF = [
    "galactic;circle(348.3,-0.66,0.5)",
    "galactic;circle(347.71234567890123,-0.12345678901234567,0.5)",
    "galactic;circle(348.9,-1.2,0.5)",
]
ON = "galactic;circle(347.3,-0.5,0.5)" + " # text={a very long comment to force CONTINUE cards in the header}"


def make_dataset(usable=True, n_reco=12, n_true=20) -> SpectrumDataset:
    rng = np.random.default_rng(7)
    e_reco = make_energy_axis(0.3, 40, n_reco)
    e_true = make_energy_axis(0.05, 100, n_true)
    kernel = rng.random((n_true, n_reco))
    kernel /= kernel.sum(axis=1, keepdims=True) * 1.1
    kernel[:2] = 0.0
    mask = np.ones(n_reco, bool)
    mask[:2] = False
    mask[-1] = False
    livetime = 1581.7361234567891
    n_off = 3 if usable else 0
    return SpectrumDataset(
        obs_id=20136,
        energy_reco=e_reco,
        energy_true=e_true,
        counts=rng.poisson(50, n_reco).astype(np.int64),
        counts_off=rng.poisson(120, n_reco).astype(np.int64) if usable else np.zeros(n_reco, np.int64),
        acceptance=np.ones(n_reco) * (1.0 + rng.random(n_reco) * 1e-3),
        acceptance_off=np.full(n_reco, float(n_off)) + (rng.random(n_reco) * 1e-3 if usable else 0.0),
        exposure=np.concatenate([[0.0], rng.random(n_true - 1) * 1e9 * np.pi]),
        edisp=kernel,
        edisp_weight=rng.random(n_true) * 1e9,
        mask_safe=mask,
        livetime=livetime,
        ontime=1687.0000001,
        gti=np.array([[1.0e8 + 0.123, 1.0e8 + 1000.0], [1.0e8 + 1200.5, 1.0e8 + 1887.25]]),
        usable=usable,
        reason="" if usable else "no OFF region found: source's distance to the pointing is 0.2 deg",
        on_region=ON,
        off_regions=OFF[:n_off],
        pointing_radec=(258.11250000000001, -39.686700000000002),
        meta={
            "OBJECT": "RX J1713.7-3946",
            "method": "exact",
            "lo_thres": 0.3123456789012345,
            "hi_thres": None,
            "n_iter": 3,
            "flag": True,
            "tiny": -4.233264489725757e-10,
            "nan": float("nan"),
            "stacked_obs_ids": [20136, 20137, 20151],
            "nested": {"a": [1.5, "x"], "b": None},
            "source_file": "/data/hess_dl3/" + "x" * 120 + "/run020136.fits.gz",
        },
    )


def assert_same(a: SpectrumDataset, b: SpectrumDataset):
    assert a.energy_reco == b.energy_reco
    assert a.energy_true == b.energy_true
    for name in ("counts", "counts_off", "acceptance", "acceptance_off", "edisp", "edisp_weight", "mask_safe", "gti"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name
    assert b.counts.dtype == np.int64 and b.counts_off.dtype == np.int64
    assert b.mask_safe.dtype == bool
    assert b.edisp.dtype == np.float64 and b.exposure.dtype == np.float64
    np.testing.assert_allclose(b.exposure, a.exposure, rtol=1e-12, atol=0)
    for name in ("obs_id", "livetime", "ontime", "usable", "reason", "on_region", "off_regions"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(np.array(a.pointing_radec), np.array(b.pointing_radec))
    assert a.meta.keys() == b.meta.keys()
    for k, v in a.meta.items():
        w = b.meta[k]
        if isinstance(v, float) and np.isnan(v):
            assert isinstance(w, float) and np.isnan(w), k
        else:
            assert w == v and type(w) is type(v), k


def test_round_trip(tmp_path):
    ds = make_dataset()
    write_spectrum(ds, tmp_path)  # warm-up (imports)
    times_w, times_r = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        pha = write_spectrum(ds, tmp_path)
        t1 = time.perf_counter()
        back = read_spectrum(tmp_path)
        t2 = time.perf_counter()
        times_w.append(t1 - t0)
        times_r.append(t2 - t1)
    print(f"\nOGIP write {1e3 * min(times_w):.1f} ms, read {1e3 * min(times_r):.1f} ms (best of 5)")
    assert pha == tmp_path / "pha.fits"
    assert sorted(os.listdir(tmp_path)) == ["arf.fits", "bkg.fits", "pha.fits", "rmf.fits"]
    assert_same(ds, back)
    assert_same(ds, read_spectrum(pha))
    assert isinstance(back.obs_id, int) and isinstance(back.usable, bool)


def test_round_trip_unusable(tmp_path):
    ds = make_dataset(usable=False)
    write_spectrum(ds, tmp_path)
    back = read_spectrum(tmp_path)
    assert_same(ds, back)
    assert back.usable is False and back.off_regions == []
    assert np.all(back.acceptance_off == 0) and np.all(back.alpha == 0)


def test_round_trip_defaults(tmp_path):
    """Empty GTI, unknown pointing (NaN), no meta, zero livetime."""
    ds = make_dataset()
    ds.gti = np.zeros((0, 2))
    ds.pointing_radec = (np.nan, np.nan)
    ds.meta = {}
    ds.on_region = ""
    ds.livetime = 0.0
    write_spectrum(ds, tmp_path)
    back = read_spectrum(tmp_path)
    assert back.gti.shape == (0, 2)
    assert np.all(np.isnan(back.pointing_radec))
    assert back.meta == {} and back.on_region == ""
    assert back.livetime == 0.0 and np.all(back.exposure == 0)
    with fits.open(tmp_path / "arf.fits") as f:
        assert np.all(f["SPECRESP"].data["SPECRESP"] == 0)


def _same_exactly(a: SpectrumDataset, b: SpectrumDataset):
    """Every field equal, including the exposure bit for bit (same files, two readers)."""
    assert_same(a, b)
    np.testing.assert_array_equal(a.exposure, b.exposure)
    assert a.edisp.dtype == b.edisp.dtype and a.gti.dtype == b.gti.dtype


@pytest.mark.parametrize("usable", [True, False])
def test_fitsread_equals_astropy_read(tmp_path, monkeypatch, usable):
    """read_spectrum through extspec.io.fitsread gives exactly what the astropy reader gives."""
    from extspec.io import fitsread

    ds = make_dataset(usable=usable)
    write_spectrum(ds, tmp_path)
    fast = read_spectrum(tmp_path)

    def unsupported(*args, **kwargs):
        raise fitsread.Unsupported("forced")

    monkeypatch.setattr(fitsread, "read_tables", unsupported)  # -> astropy fallback for every file
    slow = read_spectrum(tmp_path)
    _same_exactly(fast, slow)
    assert_same(ds, fast)
    assert fast.meta["source_file"] == slow.meta["source_file"] == ds.meta["source_file"]
    assert fast.on_region == ON and len(fast.on_region) > 68  # a CONTINUE-card string
    assert fast.livetime == 1581.7361234567891 and fast.counts.sum() == ds.counts.sum()


def test_unsupported_feature_falls_back_to_astropy(tmp_path):
    """A file with a column fitsread does not decode (TZERO) is read with astropy."""
    ds = make_dataset()
    write_spectrum(ds, tmp_path)
    with fits.open(tmp_path / "arf.fits") as f:
        old = f["SPECRESP"]
        extra = fits.Column("FLAGS", "J", bzero=2**31, array=np.full(len(old.data), 2**31 + 5, dtype=np.int64))
        hdu = fits.BinTableHDU.from_columns(list(old.columns) + [extra], header=old.header, name="SPECRESP")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "arf.fits", overwrite=True)
    from extspec.io import fitsread

    with pytest.raises(fitsread.Unsupported, match="FLAGS"):
        fitsread.read_tables(tmp_path / "arf.fits")
    back = read_spectrum(tmp_path)
    assert_same(ds, back)


def test_reading_does_not_import_astropy(tmp_path):
    import subprocess
    import sys

    write_spectrum(make_dataset(), tmp_path)
    code = ("import sys; from extspec.io.ogip import read_spectrum; s = read_spectrum(sys.argv[1]); "
            "print(int(s.counts.sum()), sorted(m for m in sys.modules if m.split('.')[0] == 'astropy'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split(None, 1) == [str(int(make_dataset().counts.sum())), "[]\n"]


def test_ogip_keywords(tmp_path):
    ds = make_dataset()
    write_spectrum(ds, tmp_path)
    with fits.open(tmp_path / "pha.fits") as f:
        h = f["SPECTRUM"].header
        expected = {
            "HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUCLAS2": "TOTAL", "HDUCLAS3": "COUNT",
            "HDUCLAS4": "TYPE:I", "HDUVERS": "1.2.1", "POISSERR": True, "CHANTYPE": "PI",
            "DETCHANS": ds.energy_reco.nbin, "BACKFILE": "bkg.fits", "ANCRFILE": "arf.fits",
            "RESPFILE": "rmf.fits", "OBS_ID": 20136, "TELESCOP": "HESS", "USABLE": True,
            "ONREGION": ON, "EXPOSURE": ds.livetime, "LIVETIME": ds.livetime, "ONTIME": ds.ontime,
        }
        for k, v in expected.items():
            assert h[k] == v, k
        assert "CONTINUE" in repr(h)
        cols = f["SPECTRUM"].columns
        assert cols.names == ["CHANNEL", "COUNTS", "QUALITY", "BACKSCAL", "AREASCAL"]
        assert [c.format for c in cols] == ["J", "J", "I", "D", "D"]
        d = f["SPECTRUM"].data
        assert list(d["CHANNEL"]) == list(range(ds.energy_reco.nbin))
        assert list(d["QUALITY"]) == [5, 5] + [0] * (ds.energy_reco.nbin - 3) + [5]
        assert np.all(d["AREASCAL"] == 1.0)
        assert f["GTI"].columns.names == ["START", "STOP"]
        assert list(f["OFFREGS"].data["REGION"]) == OFF
        assert f["OFFREGS"].header["RA_PNT"] == ds.pointing_radec[0]
        assert f["OFFREGS"].header["DEC_PNT"] == ds.pointing_radec[1]
        assert f["EXTSPEC"].columns["EDISP_WEIGHT"].unit == "m2 s"
    with fits.open(tmp_path / "bkg.fits") as f:
        h = f["SPECTRUM"].header
        assert h["HDUCLAS2"] == "BKG" and h["HDUCLASS"] == "OGIP" and h["EXPOSURE"] == ds.livetime
        assert np.array_equal(f["SPECTRUM"].data["COUNTS"], ds.counts_off)
    with fits.open(tmp_path / "arf.fits") as f:
        a = f["SPECRESP"]
        assert a.header["HDUCLAS1"] == "RESPONSE" and a.header["HDUCLAS2"] == "SPECRESP"
        assert a.columns["ENERG_LO"].unit == "TeV" and a.columns["SPECRESP"].unit == "cm2"
        assert all(c.format == "D" for c in a.columns)
        np.testing.assert_allclose(a.data["SPECRESP"], ds.exposure / ds.livetime * 1e4, rtol=1e-15)
    with fits.open(tmp_path / "rmf.fits") as f:
        m = f["MATRIX"]
        assert m.header["HDUCLAS1"] == "RESPONSE" and m.header["HDUCLAS2"] == "RSP_MATRIX"
        assert m.header["DETCHANS"] == ds.energy_reco.nbin
        assert m.columns.names == ["ENERG_LO", "ENERG_HI", "N_GRP", "F_CHAN", "N_CHAN", "MATRIX"]
        assert m.header["TLMIN%d" % (m.columns.names.index("F_CHAN") + 1)] == 0
        assert np.all(m.data["N_GRP"] == 1) and np.all(m.data["F_CHAN"] == 0)
        assert np.all(m.data["N_CHAN"] == ds.energy_reco.nbin)
        assert m.columns["MATRIX"].format == f"{ds.energy_reco.nbin}D"
        e = f["EBOUNDS"]
        assert e.columns.names == ["CHANNEL", "E_MIN", "E_MAX"]
        assert e.columns["E_MIN"].unit == "TeV"
        assert e.header["HDUCLAS2"] == "EBOUNDS"


@pytest.mark.parametrize("usable", [True, False])
def test_files_pass_astropy_verification(tmp_path, usable):
    import warnings

    write_spectrum(make_dataset(usable=usable), tmp_path)
    for name in ("pha.fits", "bkg.fits", "arf.fits", "rmf.fits"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(tmp_path / name) as f:
                f.verify("exception")
                for hdu in f:
                    hdu.header.tostring()
                    if hdu.data is not None:
                        np.asarray(hdu.data)
                    hdu.verify("exception")
            with fits.open(tmp_path / name, checksum=False) as f:
                assert f[0].header["SIMPLE"] is True and f[0].header["NAXIS"] == 0


@pytest.mark.parametrize("value", [
    "", "a", "it's", "'" * 40, "x" * 67 + "'", "x" * 66 + "'y", "a'b" * 50,
    "galactic;polygon(" + ",".join(f"{v:.6f}" for v in np.linspace(340, 350, 40)) + ")",
    True, False, 0, -7, 2**40, 0.1, -0.0, 1e20, 5e-324, 1.7976931348623157e308,
    -4.233264489725757e-10, 1581.7361234567891, None,
])
def test_card_round_trip(value):
    cards = card_images("TESTKEY", value, "a comment")
    assert all(len(c) == 80 for c in cards)
    h = fits.Header.fromstring("".join(cards) + f"{'END':<80}")
    got = h["TESTKEY"]
    assert got == value and type(got) is type(value)


def test_backscal_ratio_is_alpha(tmp_path):
    ds = make_dataset()
    write_spectrum(ds, tmp_path)
    with fits.open(tmp_path / "pha.fits") as p, fits.open(tmp_path / "bkg.fits") as b:
        alpha = p["SPECTRUM"].data["BACKSCAL"] / b["SPECTRUM"].data["BACKSCAL"]
    np.testing.assert_allclose(alpha, ds.alpha, rtol=1e-15)
    assert np.allclose(alpha, 1 / 3, rtol=1e-3)


def test_general_rmf_grouping(tmp_path):
    """A compressed RMF (variable-length groups, TLMIN=1) as written by other tools reads back."""
    ds = make_dataset()
    write_spectrum(ds, tmp_path)
    nt, nr = ds.edisp.shape
    n_grp, f_chan, n_chan, mat = [], [], [], []
    for row in ds.edisp:
        nz = np.nonzero(row)[0]
        if nz.size == 0:
            n_grp.append(0), f_chan.append([]), n_chan.append([]), mat.append([])
            continue
        # two groups: first half and second half of the non-zero span
        lo, hi = nz[0], nz[-1] + 1
        mid = (lo + hi) // 2
        n_grp.append(2)
        f_chan.append([lo + 1, mid + 1])
        n_chan.append([mid - lo, hi - mid])
        mat.append(row[lo:hi])
    with fits.open(tmp_path / "rmf.fits") as f:
        old = f["MATRIX"]
        cols = [
            old.columns["ENERG_LO"], old.columns["ENERG_HI"],
            fits.Column("N_GRP", "I", array=np.array(n_grp)),
            fits.Column("F_CHAN", "PJ()", array=[np.array(x, np.int32) for x in f_chan]),
            fits.Column("N_CHAN", "PJ()", array=[np.array(x, np.int32) for x in n_chan]),
            fits.Column("MATRIX", "PD()", array=[np.array(x, np.float64) for x in mat]),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
        hdu.header["TLMIN4"] = 1
        fits.HDUList([fits.PrimaryHDU(), hdu, f["EBOUNDS"].copy()]).writeto(tmp_path / "rmf.fits", overwrite=True)
    back = read_spectrum(tmp_path)
    np.testing.assert_array_equal(back.edisp, ds.edisp)


# ------------------------------------------------------------------- atomicity, errors --


def test_failure_mid_write_leaves_no_set(tmp_path, monkeypatch):
    out = tmp_path / "obs"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ogip, "_pha_bytes", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_spectrum(make_dataset(), out)
    assert os.listdir(out) == []


def test_failure_keeps_previous_set(tmp_path, monkeypatch):
    ds = make_dataset()
    write_spectrum(ds, tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ogip, "_bkg_bytes", boom)
    with pytest.raises(KeyboardInterrupt):
        write_spectrum(make_dataset(usable=False), tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before


def _one_line(excinfo, name):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert name in msg
    return msg


@pytest.mark.parametrize("name", ["rmf.fits", "arf.fits", "bkg.fits"])
def test_missing_sibling(tmp_path, name):
    write_spectrum(make_dataset(), tmp_path)
    os.remove(tmp_path / name)
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    _one_line(e, str(tmp_path / name))


def test_missing_pha(tmp_path):
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    _one_line(e, str(tmp_path / "pha.fits"))


def test_not_fits(tmp_path):
    write_spectrum(make_dataset(), tmp_path)
    (tmp_path / "rmf.fits").write_text("this is not FITS")
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    _one_line(e, str(tmp_path / "rmf.fits"))


def test_truncated(tmp_path):
    write_spectrum(make_dataset(), tmp_path)
    data = (tmp_path / "arf.fits").read_bytes()
    (tmp_path / "arf.fits").write_bytes(data[: len(data) - 2880])
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    _one_line(e, str(tmp_path / "arf.fits"))


def test_missing_extension_and_column(tmp_path):
    write_spectrum(make_dataset(), tmp_path)
    with fits.open(tmp_path / "pha.fits") as f:
        hdus = fits.HDUList([h.copy() for h in f if h.name != "EXTSPEC"])
        hdus.writeto(tmp_path / "pha.fits", overwrite=True)
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "EXTSPEC" in _one_line(e, str(tmp_path / "pha.fits"))

    write_spectrum(make_dataset(), tmp_path)
    with fits.open(tmp_path / "arf.fits") as f:
        old = f["SPECRESP"]
        hdu = fits.BinTableHDU.from_columns([old.columns["ENERG_LO"], old.columns["ENERG_HI"]], name="SPECRESP")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "arf.fits", overwrite=True)
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "SPECRESP" in _one_line(e, str(tmp_path / "arf.fits"))


def test_mismatched_bins(tmp_path):
    write_spectrum(make_dataset(), tmp_path)
    other = tmp_path / "other"
    write_spectrum(make_dataset(n_reco=8), other)
    os.replace(other / "bkg.fits", tmp_path / "bkg.fits")
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    _one_line(e, str(tmp_path / "bkg.fits"))


def test_newer_extspec_version(tmp_path):
    write_spectrum(make_dataset(), tmp_path)
    with fits.open(tmp_path / "pha.fits", mode="update") as f:
        f["EXTSPEC"].header["FMTVERS"] = ogip.FORMAT_VERSION + 1
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "newer" in _one_line(e, str(tmp_path / "pha.fits"))
