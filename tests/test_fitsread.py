"""extspec.io.fitsread (fast binary-table reader) and extspec.io.fitswrite (own FITS writer),
each checked against astropy.io.fits."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from extspec.io import fitsread, fitswrite
from extspec.geometry import MapGeom


# ------------------------------------------------------------------------- fitsread --
def test_columns_and_header_match_astropy(tmp_path):
    rng = np.random.default_rng(3)
    cols = [
        fits.Column("E", "D", unit="TeV", array=rng.random(5) * 10),
        fits.Column("N", "J", array=np.arange(5, dtype=np.int32) - 2),
        fits.Column("Q", "I", array=np.array([0, 5, 0, 5, 5], np.int16)),
        fits.Column("V", "3E", array=rng.random((5, 3)).astype(np.float32)),
        fits.Column("M", "6D", dim="(3,2)", array=rng.random((5, 2, 3))),
        fits.Column("S", "12A", array=["a", "bb c", "", "xxxxxxxxxxxx", "q"]),
        fits.Column("B", "L", array=[True, False, True, True, False]),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="DATA")
    long_text = "circle(1,2,3) # " + "t" * 150 + "&end"
    hdu.header["LONGSTRN"] = "OGIP 1.0"
    hdu.header["TEXT"] = long_text
    hdu.header["FLAG"] = False
    hdu.header["X"] = -4.233264489725757e-10
    hdu.header["QUOTE"] = "it's"
    hdu.header["NOVAL"] = None
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "t.fits")

    t = fitsread.read_tables(tmp_path / "t.fits")["DATA"]
    with fits.open(tmp_path / "t.fits") as f:
        ref = f["DATA"]
        for name in ref.columns.names:
            want = np.asarray(ref.data[name])
            got = t.columns[name]
            assert got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
        assert t.units["E"] == "TeV"
        x_ref = ref.header["X"]  # astropy writes at most 16 significant digits
    h = t.header
    assert h["TEXT"] == long_text  # CONTINUE cards joined, the final '&' of the text kept
    assert h["FLAG"] is False and h["NAXIS2"] == 5
    assert h["X"] == x_ref and abs(x_ref / -4.233264489725757e-10 - 1) < 1e-13
    assert h["QUOTE"] == "it's"
    assert h["NOVAL"] is None
    assert t.columns["M"].shape == (5, 2, 3)  # TDIM (3,2): numpy order (2, 3)


@pytest.mark.parametrize("desc", ["P", "Q"])
def test_variable_length_arrays(tmp_path, desc):
    rows = [np.array([0.5, 0.25, 0.125]), np.array([]), np.array([1e-300, 7.0]), np.array([3.0])]
    chans = [np.array([1, 4], np.int32), np.array([], np.int32), np.array([2], np.int32), np.array([9], np.int32)]
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("N_GRP", "I", array=np.array([2, 0, 1, 1], np.int16)),
        fits.Column("F_CHAN", f"{desc}J()", array=chans),
        fits.Column("MATRIX", f"{desc}D()", array=rows),
    ], name="MATRIX")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "v.fits")
    t = fitsread.read_tables(tmp_path / "v.fits")["MATRIX"]
    assert t.columns["MATRIX"].dtype == object and len(t.columns["MATRIX"]) == 4
    for got, want in zip(t.columns["MATRIX"], rows):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
    for got, want in zip(t.columns["F_CHAN"], chans):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(t.columns["N_GRP"], [2, 0, 1, 1])


def test_zero_rows_and_only(tmp_path):
    empty = fits.BinTableHDU.from_columns([fits.Column("REGION", "1A", array=np.array([], "S1"))], name="OFFREGS")
    other = fits.BinTableHDU.from_columns([fits.Column("A", "D", array=[1.0, 2.0])], name="OTHER")
    fits.HDUList([fits.PrimaryHDU(), empty, other]).writeto(tmp_path / "z.fits")
    tables = fitsread.read_tables(tmp_path / "z.fits", only={"OFFREGS"})
    assert list(tables) == ["OFFREGS"]
    assert tables["OFFREGS"].columns["REGION"].shape == (0,)


def test_unsupported_and_corrupt(tmp_path):
    hdu = fits.BinTableHDU.from_columns([fits.Column("A", "J", array=[1, 2], bzero=10)], name="S")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "s.fits")
    with pytest.raises(fitsread.Unsupported, match="column A"):
        fitsread.read_tables(tmp_path / "s.fits")
    data = (tmp_path / "s.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(data[:-2880])
    with pytest.raises(fitsread.Corrupt, match="truncated"):
        fitsread.read_tables(tmp_path / "cut.fits")
    (tmp_path / "txt.fits").write_text("not FITS at all " * 200)
    with pytest.raises(fitsread.Corrupt, match="SIMPLE"):
        fitsread.read_tables(tmp_path / "txt.fits")


# ------------------------------------------------------------------------ fitswrite --
@pytest.mark.parametrize("frame,proj,npix", [("galactic", "CAR", (38, 38)), ("icrs", "TAN", (50, 30))])
def test_image_round_trip_with_wcs(tmp_path, frame, proj, npix):
    binsz = 0.04
    geom = MapGeom.create(347.3 if frame == "galactic" else 83.63, -0.5 if frame == "galactic" else 22.01,
                          (npix[0] * binsz, npix[1] * binsz), binsz, frame, proj)
    rng = np.random.default_rng(5)
    image = rng.poisson(7.0, geom.shape).astype(np.int32)
    image[0, 0] = -2**31
    image[-1, -1] = 2**31 - 1
    cards = list(geom.header_dict().items()) + [
        ("BUNIT", "counts", "events per pixel"), ("EMIN", 0.3, "TeV"), ("NOBS", 15),
        ("OBS_IDS", " ".join(str(20000 + i) for i in range(30)))]
    path = tmp_path / "img.fits"
    path.write_bytes(fitswrite.image_bytes(image, cards))
    assert path.stat().st_size % 2880 == 0

    with fits.open(path) as f:
        f.verify("exception")
        assert len(f) == 1
        h = f[0].header
        assert h["BITPIX"] == 32 and h["NAXIS"] == 2 and (h["NAXIS1"], h["NAXIS2"]) == npix
        assert f[0].data.dtype.kind == "i" and f[0].data.dtype.itemsize == 4
        np.testing.assert_array_equal(f[0].data, image)
        assert h["BUNIT"] == "counts" and h["EMIN"] == 0.3 and h["NOBS"] == 15
        assert h["OBS_IDS"].split() == [str(20000 + i) for i in range(30)]
        w = WCS(h)
    assert w.wcs.compare(geom.wcs.wcs)
    assert w.pixel_shape == tuple(npix)
    lon, lat = geom.pixel_centers()
    got = w.wcs_pix2world(np.array([0.0, npix[0] - 1.0]), np.array([0.0, npix[1] - 1.0]), 0)
    np.testing.assert_allclose(got[0], [lon[0, 0], lon[-1, -1]], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[1], [lat[0, 0], lat[-1, -1]], rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float32, np.float64])
def test_image_dtypes(tmp_path, dtype):
    a = (np.arange(12).reshape(3, 4) * 3 - (0 if dtype == np.uint8 else 7)).astype(dtype)
    (tmp_path / "a.fits").write_bytes(fitswrite.image_bytes(a))
    with fits.open(tmp_path / "a.fits") as f:
        assert f[0].data.dtype.newbyteorder("=") == np.dtype(dtype)
        np.testing.assert_array_equal(f[0].data, a)


def test_image_rejects_layout_keywords():
    a = np.zeros((3, 4), np.int32)
    assert fitswrite.image_bytes(a, [("NAXIS1", 4), ("NAXIS2", 3)]) == fitswrite.image_bytes(a)
    for card in [("NAXIS1", 5), ("BITPIX", 16), ("BZERO", 1.0), ("NAXIS3", 1)]:
        with pytest.raises(ValueError, match=card[0]):
            fitswrite.image_bytes(a, [card])
    with pytest.raises(TypeError):
        fitswrite.image_bytes(np.zeros(3, complex))


# ------------------------------------------------------ fitsread on the whole DR1 release --
def _dr1_files(store_path):
    return sorted(store_path.glob("*-index.fits.gz")) + sorted((store_path / "data").glob("*.fits*"))


def test_fitsread_equals_astropy_on_every_dr1_file(store_path):
    """Every binary table of every DR1 file (105 runs + the two index files): same extension
    names, header keywords (all valued cards; COMMENT/HISTORY are not read), column names,
    units, dtypes, shapes and values as astropy.io.fits.  (astropy reads the decompressed
    bytes: its own gzip path triples the test's run time.)"""
    import gzip
    import io

    files = _dr1_files(store_path)
    assert len(files) == 107
    n_tables = n_values = 0
    for f in files:
        ours = fitsread.read_tables(f)
        raw = f.read_bytes()
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        with fits.open(io.BytesIO(raw), memmap=False) as hdul:
            theirs = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
            assert list(ours) == [h.name.upper() for h in theirs], f
            for h in theirs:
                t = ours[h.name.upper()]
                hdr = {k: v for k, v in h.header.items() if k not in ("COMMENT", "HISTORY", "")}
                assert t.header == hdr, (f, h.name)
                assert t.names == list(h.columns.names), (f, h.name)
                for c in h.columns:
                    want = np.asarray(h.data[c.name])
                    got = t.columns[c.name]
                    assert t.units[c.name] == str(c.unit or ""), (f, h.name, c.name)
                    assert got.dtype == want.dtype.newbyteorder("=") and got.shape == want.shape, (f, c.name)
                    assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f"), (f, h.name, c.name)
                    n_values += want.size
                n_tables += 1
    assert n_tables == 2 + 105 * 6 and n_values > 2e7


def test_recurring_cards_keep_their_type():
    """card_images keeps the cards it made (most recur from file to file): values equal in
    Python (True, 1, 1.0, np.int64(1); 0.0 and -0.0) still give their own cards."""
    want = {"T": True, "1": 1, "1.0": 1.0, "-0.0": -0.0, "0.0": 0.0, "F": False, "0": 0}
    for _ in range(2):
        for text, value in list(want.items()) + [("1", np.int64(1)), ("-0.0", np.float64(-0.0))]:
            card = fitswrite.card_images("KEY", value, "c")[0]
            assert card[10:30].strip() == text and card.endswith(" / c".ljust(80 - 30)), (value, card)


def test_string_values_read_as_the_one_by_one_rule():
    """The reader's string values ('' an escaped quote, the value ending at a lone quote or the
    card's end, trailing blanks dropped) against the rule written character by character."""
    import random

    def one_by_one(s):
        out, i = [], 1
        while i < len(s):
            if s[i] == "'":
                if i + 1 < len(s) and s[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(s[i])
            i += 1
        return "".join(out).rstrip()

    rng = random.Random(7)
    for _ in range(3000):
        raw = "'" + "".join(rng.choice("ab '/ x&") for _ in range(rng.randint(0, 30)))
        assert fitsread._value(raw) == one_by_one(raw.strip()), raw
    assert fitsread._value("'it''s'   / a comment") == "it's" and fitsread._value("'  '") == ""
