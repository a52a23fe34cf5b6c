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
    mask &= usable  # an unusable spectrum has no safe bin (as make_spectrum makes it)
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
            "MJDREFI": 51910, "MJDREFF": 0.000742870370370241, "TIMESYS": "TT", "TIMEUNIT": "s",
            "TIMEREF": "local",
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
    with fits.open(tmp_path / "bkg.fits") as f:  # no BACKSCAL = 0 (infinite alpha) for other tools
        h, d = f["SPECTRUM"].header, f["SPECTRUM"].data
        assert np.all(d["BACKSCAL"] == 1.0) and np.all(d["QUALITY"] == ogip.QUALITY_BAD)
        assert h["USABLE"] is False and h["BKGDUMMY"] is True
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
        g = f["GTI"].header  # the time reference of START/STOP, from the DL3 events header
        assert (g["MJDREFI"], g["MJDREFF"], g["TIMESYS"], g["TIMEUNIT"], g["TIMEREF"]) == (
            51910, 0.000742870370370241, "TT", "s", "local")
        assert np.array_equal(f["EBOUNDS"].data["E_MIN"], ds.energy_reco.edges[:-1])
        assert np.array_equal(f["EBOUNDS"].data["E_MAX"], ds.energy_reco.edges[1:])
        assert list(f["OFFREGS"].data["REGION"]) == OFF
        assert f["OFFREGS"].header["RA_PNT"] == ds.pointing_radec[0]
        assert f["OFFREGS"].header["DEC_PNT"] == ds.pointing_radec[1]
        assert f["EXTSPEC"].columns["EDISP_WEIGHT"].unit == "m2 s"
    with fits.open(tmp_path / "bkg.fits") as f:
        h = f["SPECTRUM"].header
        assert h["HDUCLAS2"] == "BKG" and h["HDUCLASS"] == "OGIP" and h["EXPOSURE"] == ds.livetime
        assert np.array_equal(f["SPECTRUM"].data["COUNTS"], ds.counts_off)
        assert np.array_equal(f["EBOUNDS"].data["E_MAX"], ds.energy_reco.edges[1:])
        assert "BKGDUMMY" not in h
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
        # per-row (variable-length) arrays: one group per run of non-zero channels, 0-based;
        # the two all-zero rows of make_dataset have no group
        assert [c.format[:2] for c in m.columns[3:]] == ["PJ", "PJ", "PD"]
        assert list(m.data["N_GRP"]) == [0, 0] + [1] * (ds.energy_true.nbin - 2)
        for i in range(ds.energy_true.nbin):
            row = np.zeros(ds.energy_reco.nbin)
            for f0, n0 in zip(m.data["F_CHAN"][i], m.data["N_CHAN"][i]):
                row[f0:f0 + n0] = m.data["MATRIX"][i][:n0] if len(m.data["F_CHAN"][i]) == 1 else np.nan
            assert np.array_equal(row, ds.edisp[i]), i
        assert m.header["NUMGRP"] == ds.energy_true.nbin - 2
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


def _continue_parts_one_by_one(text):
    """The OGIP long-string split character by character (the rule card_images follows): at most
    67 characters a card, an escaped quote ('') never cut."""
    parts, cur = [], ""
    for ch in text:
        esc = "''" if ch == "'" else ch
        if len(cur) + len(esc) > 67:
            parts.append(cur)
            cur = ""
        cur += esc
    return parts + [cur]


@pytest.mark.parametrize("n", [69, 134, 135, 200, 201, 1000])
@pytest.mark.parametrize("quote_every", [0, 1, 7, 66])
def test_long_string_cards_cut_as_one_by_one(n, quote_every):
    text = "".join("'" if quote_every and i % quote_every == quote_every - 1 else chr(48 + i % 43) for i in range(n))
    cards = card_images("LONGKEY", text)
    want = _continue_parts_one_by_one(text)
    assert len(cards) == len(want)
    for i, (card, part) in enumerate(zip(cards, want)):
        lead = "LONGKEY = " if i == 0 else "CONTINUE  "
        assert card == f"{lead}'{part}{'&' if i < len(want) - 1 else ''}'".ljust(80)
    assert fits.Header.fromstring("".join(cards) + f"{'END':<80}")["LONGKEY"] == text


@pytest.mark.parametrize("bad", ["caf\u00e9", "tab\there", "nl\n", "del\x7f", "\x00", "x" * 100 + "\u00b5"])
@pytest.mark.parametrize("where", ["value", "comment"])
def test_card_refuses_what_is_not_printable_ascii(bad, where):
    value, comment = (bad, "") if where == "value" else ("ok", bad)
    with pytest.raises(ValueError) as ei:
        card_images("OBJECT", value, comment)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("keyword OBJECT: value ") and "not printable ASCII" in msg
    assert card_images("OBJECT", " ~!" + "x" * 90, "printable: 32-126")  # the edges pass


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
        hdus = fits.HDUList([h.copy() for h in f if h.name != "SPECTRUM"])
        hdus.writeto(tmp_path / "pha.fits", overwrite=True)
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "SPECTRUM" in _one_line(e, str(tmp_path / "pha.fits"))

    # EBOUNDS: from the RMF, else from the PHA; neither -> an error naming it
    write_spectrum(make_dataset(), tmp_path)
    for name in ("rmf.fits", "pha.fits"):
        with fits.open(tmp_path / name, mode="update") as f:
            del f["EBOUNDS"]
        if name == "rmf.fits":
            assert read_spectrum(tmp_path).energy_reco == make_dataset().energy_reco
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "'EBOUNDS'" in _one_line(e, str(tmp_path / "rmf.fits"))

    # EXPOSURE is what really must be there
    write_spectrum(make_dataset(), tmp_path)
    with fits.open(tmp_path / "pha.fits", mode="update") as f:
        del f["SPECTRUM"].header["EXPOSURE"]
    with pytest.raises(FormatError) as e:
        read_spectrum(tmp_path)
    assert "keyword 'EXPOSURE'" in _one_line(e, str(tmp_path / "pha.fits"))

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


# ----------------------------------------------- OGIP sets of other tools (read_spectrum) --


def write_foreign_set(d, unit="keV", area_unit="cm2", backscal="column", rmf="vla", obs_id_key=True):
    """A standard OGIP type-I set as other tools write it (astropy): no extspec extras.

    Energies in ``unit``, EBOUNDS in the PHA and the RMF, float32 energies in the RMF,
    no ONTIME / GTI / OFFREGS / EXTSPEC.  ``backscal``: ``column`` (per channel) or
    ``keyword`` (scalar).  ``rmf``: ``vla`` (variable-length groups, TLMIN 0) or ``fixed``
    (full rows, TLMIN 1).  Returns the dict of the true arrays (energies in TeV).
    """
    rng = np.random.default_rng(11)
    nr, nt = 8, 12
    scale = {"keV": 1e9, "MeV": 1e6, "GeV": 1e3, "TeV": 1.0}[unit]
    e_reco = np.geomspace(0.1, 100, nr + 1)
    e_true = np.geomspace(0.05, 200, nt + 1)
    kernel = rng.random((nt, nr)) * (rng.random((nt, nr)) > 0.4)
    kernel[0] = 0.0
    kernel /= np.maximum(kernel.sum(axis=1, keepdims=True), 1e-30) * 1.05
    truth = dict(
        e_reco=e_reco, e_true=e_true, kernel=kernel,
        counts=rng.poisson(30, nr), counts_off=rng.poisson(200, nr),
        backscal_on=np.full(nr, 1.0), backscal_off=rng.uniform(8, 12, nr) if backscal == "column" else np.full(nr, 9.5),
        quality=np.where(np.arange(nr) < 2, 1, 0), specresp_cm2=rng.uniform(1e8, 1e9, nt), exposure_s=1581.7,
    )
    area = truth["specresp_cm2"] / (1e4 if area_unit == "m2" else 1.0)

    def ebounds():
        return fits.BinTableHDU.from_columns([
            fits.Column("CHANNEL", "I", array=np.arange(nr)),
            fits.Column("E_MIN", "D", unit=unit, array=e_reco[:-1] * scale),
            fits.Column("E_MAX", "D", unit=unit, array=e_reco[1:] * scale)], name="EBOUNDS")

    def spectrum(counts, bs, hduclas2, files):
        cols = [fits.Column("CHANNEL", "I", array=np.arange(nr)), fits.Column("COUNTS", "J", array=counts),
                fits.Column("QUALITY", "I", array=truth["quality"])]
        if backscal == "column":
            cols += [fits.Column("BACKSCAL", "D", array=bs), fits.Column("AREASCAL", "D", array=np.ones(nr))]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
        h = hdu.header
        h.update({"HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUCLAS2": hduclas2, "HDUCLAS3": "COUNT",
                  "EXPOSURE": truth["exposure_s"], "DETCHANS": nr, **files})
        if obs_id_key:
            h["OBS_ID"] = 4242
        if backscal == "keyword":
            h["BACKSCAL"], h["AREASCAL"] = float(bs[0]), 1.0
        return fits.HDUList([fits.PrimaryHDU(), hdu, ebounds()])

    files = {"BACKFILE": "bkg_obs4242.fits", "ANCRFILE": "arf_obs4242.fits", "RESPFILE": "rmf_obs4242.fits"}
    spectrum(truth["counts"], truth["backscal_on"], "TOTAL", files).writeto(d / "pha_obs4242.fits")
    spectrum(truth["counts_off"], truth["backscal_off"], "BKG", {}).writeto(d / "bkg_obs4242.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([
        fits.Column("ENERG_LO", "D", unit=unit, array=e_true[:-1] * scale),
        fits.Column("ENERG_HI", "D", unit=unit, array=e_true[1:] * scale),
        fits.Column("SPECRESP", "D", unit=area_unit, array=area)], name="SPECRESP")]).writeto(d / "arf_obs4242.fits")
    e_cols = [fits.Column("ENERG_LO", "E", unit=unit, array=(e_true[:-1] * scale).astype(np.float32)),
              fits.Column("ENERG_HI", "E", unit=unit, array=(e_true[1:] * scale).astype(np.float32))]
    if rmf == "vla":  # one group per run of non-zero channels; an empty row: one group of 0 channels
        f_chan, n_chan, mat = [], [], []
        for row in kernel:
            nz = np.flatnonzero(row)
            runs = np.split(nz, np.flatnonzero(np.diff(nz) != 1) + 1) if nz.size else []
            f_chan.append(np.array([r[0] for r in runs] or [0], np.int16))
            n_chan.append(np.array([r.size for r in runs] or [0], np.int16))
            mat.append(row[nz].astype(np.float32))
        cols = e_cols + [fits.Column("N_GRP", "I", array=[len(f) for f in f_chan]),
                         fits.Column("F_CHAN", "PI()", array=f_chan), fits.Column("N_CHAN", "PI()", array=n_chan),
                         fits.Column("MATRIX", "PE()", array=mat)]
        tlmin = 0
    else:
        cols = e_cols + [fits.Column("N_GRP", "I", array=np.ones(nt)), fits.Column("F_CHAN", "J", array=np.ones(nt)),
                         fits.Column("N_CHAN", "J", array=np.full(nt, nr)),
                         fits.Column("MATRIX", f"{nr}E", array=kernel.astype(np.float32))]
        tlmin = 1
    m = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    m.header.update({"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "RSP_MATRIX", "DETCHANS": nr,
                     "TLMIN4": tlmin})
    fits.HDUList([fits.PrimaryHDU(), m, ebounds()]).writeto(d / "rmf_obs4242.fits")
    return truth


@pytest.mark.parametrize("unit, area_unit, backscal, rmf", [
    ("keV", "cm2", "column", "vla"),
    ("TeV", "m2", "keyword", "fixed"),
    ("GeV", "cm2", "column", "fixed"),
    ("MeV", "cm2", "keyword", "vla"),
])
def test_read_foreign_ogip(tmp_path, unit, area_unit, backscal, rmf):
    """keV/MeV/GeV/TeV energies, cm2/m2 areas, per-channel or scalar BACKSCAL, VLA or fixed
    RMF rows, float32 RMF energies, no ONTIME/GTI/extspec extensions: every field comes back."""
    t = write_foreign_set(tmp_path, unit, area_unit, backscal, rmf)
    s = read_spectrum(tmp_path / "pha_obs4242.fits")
    np.testing.assert_allclose(s.energy_reco.edges, t["e_reco"], rtol=1e-12)
    np.testing.assert_allclose(s.energy_true.edges, t["e_true"], rtol=1e-12)  # the ARF's float64 edges
    np.testing.assert_array_equal(s.counts, t["counts"])
    np.testing.assert_array_equal(s.counts_off, t["counts_off"])
    np.testing.assert_allclose(s.alpha, t["backscal_on"] / t["backscal_off"], rtol=1e-15)
    np.testing.assert_array_equal(s.mask_safe, t["quality"] == 0)
    np.testing.assert_allclose(s.exposure, t["specresp_cm2"] * t["exposure_s"] / 1e4, rtol=1e-12)
    np.testing.assert_allclose(s.edisp, t["kernel"], rtol=1e-7, atol=0)  # float32 in the file
    assert s.livetime == t["exposure_s"] and s.ontime == t["exposure_s"]  # no ONTIME, no GTI: livetime
    assert s.obs_id == 4242 and s.usable and s.gti.shape == (0, 2) and s.off_regions == []
    np.testing.assert_array_equal(s.edisp_weight, s.exposure)
    assert s.meta == {"source_file": str(tmp_path / "pha_obs4242.fits")}


def test_read_foreign_ogip_fallbacks_and_errors(tmp_path):
    write_foreign_set(tmp_path, obs_id_key=False)
    pha = tmp_path / "pha_obs4242.fits"
    assert read_spectrum(pha).obs_id == 4242  # no OBS_ID: the number in the file name
    with fits.open(pha, mode="update") as f:  # ONTIME missing, a GTI present: its duration
        f.append(fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[10.0, 100.0]),
                                                fits.Column("STOP", "D", array=[50.0, 130.0])], name="GTI"))
    s = read_spectrum(pha)
    assert s.ontime == 70.0 and s.gti.tolist() == [[10.0, 50.0], [100.0, 130.0]]
    with fits.open(tmp_path / "arf_obs4242.fits", mode="update") as f:
        f["SPECRESP"].columns["ENERG_LO"].unit = "erg"
        f["SPECRESP"].header["TUNIT1"] = "erg"
    with pytest.raises(FormatError) as e:
        read_spectrum(pha)
    assert "unit 'erg'" in _one_line(e, str(tmp_path / "arf_obs4242.fits"))
    with fits.open(pha, mode="update") as f:
        del f["SPECTRUM"].header["ANCRFILE"]
    with pytest.raises(FormatError) as e:
        read_spectrum(pha)
    assert "ANCRFILE" in _one_line(e, str(pha))
