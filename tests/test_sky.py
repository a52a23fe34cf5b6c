"""extspec.sky (own projection and frame rotation) against astropy, and the DS9 shapes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from extspec.errors import ConfigError
from extspec.sky import ICRS_TO_GALACTIC, Projection, SkyPoint, separation, transform
from extspec.skyregions import (BoxPix, BoxSky, CirclePix, CircleSky, EllipsePix, EllipseSky, PolygonPix,
                                PolygonSky, parse_region, parse_regions, pix_to_sky)


def test_icrs_to_galactic_matrix_is_astropys():
    from astropy.coordinates import ICRS, CartesianRepresentation, Galactic

    eye = np.eye(3)
    m = ICRS(CartesianRepresentation(eye[0], eye[1], eye[2])).transform_to(Galactic()).cartesian.xyz.value
    np.testing.assert_allclose(ICRS_TO_GALACTIC, m, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ICRS_TO_GALACTIC @ ICRS_TO_GALACTIC.T, np.eye(3), atol=1e-14)


def test_transform_matches_astropy():
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, 5000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 5000)))
    l, b = transform(ra, dec, "icrs", "galactic")
    g = SkyCoord(ra, dec, unit="deg").galactic
    assert separation(l, b, g.l.deg, g.b.deg).max() < 1e-12
    assert np.all((l >= 0) & (l < 360))
    r2, d2 = transform(l, b, "galactic", "icrs")
    assert separation(ra, dec, r2, d2).max() < 1e-12
    # the Galactic centre and the RX J1713 pointing of run 20326
    gc = SkyPoint(0.0, 0.0, "galactic").to("icrs")
    assert abs(gc.lon - 266.40498829) < 1e-7 and abs(gc.lat + 28.93617776) < 1e-7
    assert SkyPoint(0, 0, "fk5").frame == "icrs"


def test_separation_vincenty():
    assert separation(10.0, 20.0, 10.0, 20.0) == 0.0
    np.testing.assert_allclose(separation(0.0, 0.0, 180.0, 0.0), 180.0, rtol=1e-15)
    np.testing.assert_allclose(separation(0.0, 89.0, 180.0, 89.0), 2.0, rtol=1e-12)
    # tiny angles stay accurate (no arccos)
    np.testing.assert_allclose(separation(0.0, 0.0, 1e-9, 0.0), 1e-9, rtol=1e-6)


@pytest.mark.parametrize("proj", ["CAR", "TAN"])
@pytest.mark.parametrize("frame", ["galactic", "icrs"])
def test_projection_matches_wcslib(proj, frame):
    """Own Paper II implementation vs astropy.wcs (WCSLIB) over many reference points,
    including oblique CAR (CRVAL2 != 0), the equator and near the poles."""
    rng = np.random.default_rng(5)
    worst_sky = worst_pix = 0.0
    for lat0, lon0 in itertools.product([-89.5, -60, -0.5, 0.0, 0.5, 30, 89.5], [0.0, 83.63, 347.3, 359.9]):
        p = Projection(proj, (lon0, lat0), (19.5, 20.5), (-0.04, 0.04), frame)
        w = p.to_astropy()
        x, y = rng.uniform(-20, 60, 300), rng.uniform(-20, 60, 300)
        lon, lat = p.pix_to_world(x, y)
        lon2, lat2 = w.wcs_pix2world(x, y, 0)
        worst_sky = max(worst_sky, float(separation(lon, lat, lon2, lat2).max()))
        xx, yy = p.world_to_pix(lon2, lat2)
        xx2, yy2 = w.wcs_world2pix(lon2, lat2, 0)
        worst_pix = max(worst_pix, float(np.abs(xx - xx2).max()), float(np.abs(yy - yy2).max()))
    assert worst_sky < 1e-10
    assert worst_pix < 1e-8


def test_projection_spec_values():
    """§2.1: the oblique CAR map of the seed analysis."""
    p = Projection("CAR", (347.3, -0.5), (19.5, 19.5), (-0.04, 0.04), "galactic")
    lon, lat = p.pix_to_world(18.0, 18.0)
    assert abs(lon - 347.32000082) < 5e-9 and abs(lat + 0.51999997) < 5e-9
    lon, lat = p.pix_to_world(0.0, 0.0)
    assert abs(lon - 348.0401116) < 5e-8 and abs(lat + 1.2399583) < 5e-8
    # tangent point of a TAN grid maps exactly to the reference pixel (atan2, not arcsin)
    t = Projection.tangent(347.74, -1.04, 0.01, (155.0, 155.0), "galactic")
    x, y = t.world_to_pix(347.74, -1.04)
    assert abs(x - 154.0) < 1e-9 and abs(y - 154.0) < 1e-9
    # behind a TAN tangent plane there is no pixel
    assert np.isnan(t.world_to_pix(167.74, 1.04)[0])
    with pytest.raises(ValueError, match="AIT"):
        Projection("AIT", (0, 0), (1, 1), (-1, 1))


# -------------------------------------------------------------------------------- DS9 --


@pytest.mark.parametrize("text, cls, values", [
    ("galactic;circle(347.3,-0.5,0.5)", CircleSky, dict(radius=0.5)),
    ("galactic;circle(347.3d,-0.5d,30')", CircleSky, dict(radius=0.5)),
    ('icrs;circle(17:13:00,-39:45:00,1800")', CircleSky, dict(radius=0.5)),
    ("fk5;circle(17h13m00s,-39d45m00s,0.5)", CircleSky, dict(radius=0.5)),
    ("icrs;ellipse(258.25,-39.75,0.4,0.2,30)", EllipseSky, dict(width=0.8, height=0.4, angle=30.0)),
    ("galactic;box(347.3,-0.5,0.6,0.4,20)", BoxSky, dict(width=0.6, height=0.4, angle=20.0)),
    ("galactic;box(347.3,-0.5,0.6,0.4)", BoxSky, dict(width=0.6, height=0.4, angle=0.0)),
])
def test_parse_shapes(text, cls, values):
    r = parse_region(text)
    assert type(r) is cls
    for k, v in values.items():
        assert getattr(r, k) == pytest.approx(v, rel=1e-12)
    if r.frame == "icrs":
        assert (r.center.lon, r.center.lat) == pytest.approx((258.25, -39.75), rel=1e-12)
    # round trip through the 8-decimal DS9 string
    back = parse_region(r.to_ds9())
    assert type(back) is cls and back.to_ds9() == r.to_ds9()


def test_parse_file_like_text_and_polygon():
    text = ("# Region file format: DS9 version 4.1\nglobal color=green\ngalactic\n"
            "circle(347.0,-0.5,0.1) # text={a}\n+polygon(347,-1,347.5,-1,347.2,0)\n")
    regs = parse_regions(text)
    assert [type(r) for r in regs] == [CircleSky, PolygonSky]
    poly = regs[1]
    assert poly.lons == (347.0, 347.5, 347.2) and poly.frame == "galactic"
    c = poly.center
    assert 347.0 < c.lon < 347.5 and -1.0 < c.lat < 0.0


@pytest.mark.parametrize("text, match", [
    ("galactic;annulus(347.3,-0.5,0.1,0.2)", "not supported"),
    ("galactic;-circle(347.3,-0.5,0.1)", "excluded shape"),
    ("galactic;circle(347.3,-0.5,-1)", "radius"),
    ("galactic;circle(347.3,-0.5)", "takes 3 values"),
    ("galactic;polygon(1,2,3,4)", "at least 3"),
    ("galactic;circle(abc,-0.5,0.1)", "bad coordinate"),
    ("fk4;circle(1,2,3)", "frame"),
    ("galactic;circle(347.3,95,0.5)", "latitude 95 outside"),
    ("galactic;polygon(347,-1,347.5,-91,347.2,0)", "latitude -91 outside"),
])
def test_parse_errors(text, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_region(text, "on_region")
    assert "'on_region'" in str(err.value) and "\n" not in str(err.value)


def test_parse_accepts_regions_objects():
    from regions import Regions

    r = Regions.parse("galactic;ellipse(347.3,-0.5,0.3,0.2,40)", format="ds9")[0]
    ours = parse_region(r)
    assert type(ours) is EllipseSky
    assert (ours.width, ours.height, ours.angle) == pytest.approx((0.6, 0.4, 40.0))


# ------------------------------------------------------------------------ pixel shapes --


def test_pixel_shapes_contains_area_rotate():
    c = CirclePix(5.0, 5.0, 2.0)
    assert c.contains(np.array([5.0, 6.9, 7.0]), np.array([5.0, 5.0, 5.0])).tolist() == [True, True, False]
    assert c.area == pytest.approx(4 * math.pi)
    e = EllipsePix(0.0, 0.0, 4.0, 2.0, math.radians(90))  # long axis along y
    assert e.contains(np.array([0.0, 1.9, 0.0]), np.array([1.9, 0.0, 0.0])).tolist() == [True, False, True]
    b = BoxPix(0.0, 0.0, 4.0, 2.0, 0.0)
    assert b.contains(np.array([1.9, 0.0, 2.1]), np.array([0.9, 1.1, 0.0])).tolist() == [True, False, False]
    assert b.area == 8.0
    p = PolygonPix((0.0, 4.0, 4.0, 0.0), (0.0, 0.0, 4.0, 4.0))
    assert p.area == 16.0
    assert p.contains(np.array([1.0, 5.0]), np.array([1.0, 1.0])).tolist() == [True, False]
    # rotation about a point keeps the area and moves the centre on a circle
    for shape in (c, e, b, p):
        r = shape.rotate(10.0, 10.0, 0.7)
        assert r.area == pytest.approx(shape.area, rel=1e-12)
        d0 = math.hypot(shape.center[0] - 10, shape.center[1] - 10)
        assert math.hypot(r.center[0] - 10, r.center[1] - 10) == pytest.approx(d0, rel=1e-12)
    bb = CirclePix(5.2, 5.0, 2.0).bounding_box
    assert (bb.ixmin, bb.ixmax, bb.iymin, bb.iymax) == (3, 8, 3, 8)


@pytest.mark.parametrize("text", ["galactic;ellipse(347.3,-0.5,0.3,0.2,40)", "galactic;box(347.3,-0.5,0.5,0.2,70)",
                                  "galactic;circle(347.6,-0.2,0.3)"])
def test_sky_pixel_sky_round_trip(text):
    """to_pixel then pix_to_sky gives the same shape back (on the oblique CAR map)."""
    p = Projection("CAR", (347.3, -0.5), (19.5, 19.5), (-0.04, 0.04), "galactic")
    r = parse_region(text)
    back = pix_to_sky(r.to_pixel(p), p, "galactic")
    assert back.center.separation(r.center) < 1e-9
    for k in ("radius", "width", "height", "angle"):
        if hasattr(r, k):
            assert getattr(back, k) == pytest.approx(getattr(r, k), rel=1e-6, abs=1e-9)


def test_region_in_other_frame_than_projection():
    """An icrs circle on a galactic map lands where astropy puts its centre."""
    from astropy.coordinates import SkyCoord

    p = Projection("CAR", (347.3, -0.5), (19.5, 19.5), (-0.04, 0.04), "galactic")
    r = parse_region("icrs;circle(258.3,-39.8,0.2)")
    pix = r.to_pixel(p)
    g = SkyCoord(258.3, -39.8, unit="deg").galactic
    x, y = p.to_astropy().wcs_world2pix(g.l.deg, g.b.deg, 0)
    assert abs(pix.x - x) < 1e-8 and abs(pix.y - y) < 1e-8
    assert pix.radius == pytest.approx(0.2 / 0.04, rel=1e-3)


def test_reference_rotation_through_astropy_never_downloads():
    """`spectrum: {method: reference}` rotates events ICRS <-> Galactic through astropy (§2.2).

    That rotation is time-independent: it never opens the IERS tables nor the network, which
    is why no job switches astropy's downloads off.  Fails if an astropy release starts
    fetching anything for it (then set ``astropy.utils.iers.conf.auto_download`` there).
    """
    import subprocess
    import sys

    code = (
        "import numpy as np, urllib.request, astropy.utils.data as data\n"
        "from astropy.utils import iers\n"
        "def fail(*a, **k):\n"
        "    raise RuntimeError('network or IERS access')\n"
        "urllib.request.urlopen = fail\n"
        "data.download_file = fail\n"
        "iers.IERS_Auto.open = classmethod(fail)\n"
        "iers.IERS_A.open = classmethod(fail)\n"
        "from extspec.geometry import sky_to_frame\n"
        "ra, dec = np.array([258.1, 83.63], np.float32), np.array([-39.7, 22.01], np.float32)\n"
        "l, b = sky_to_frame(ra, dec, 'icrs', 'galactic', float32_astropy=True)\n"
        "r, d = sky_to_frame(l, b, 'galactic', 'icrs', float32_astropy=True)\n"
        "print(*np.round(l, 2), *np.round(r, 2))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["347.25", "184.56", "258.1", "83.63"], res.stdout
