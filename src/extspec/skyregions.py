"""Sky regions (ON region, exclusions): DS9 parsing, pixel shapes, containment -- numpy only.

Shapes: ``circle``, ``ellipse``, ``box`` and ``polygon`` in ``icrs``/``fk5`` or ``galactic``,
written as DS9 region strings (``"galactic;circle(347.3,-0.5,0.5)"``, several shapes separated
by ``;`` or newlines) or read from a ``.reg`` file.  Coordinates are degrees (``12.5``,
``12.5d``) or, in icrs/fk5, sexagesimal (``17:13:00,-39:45:00`` or ``17h13m00s,-39d45m00s``);
sizes are degrees unless marked ``'`` (arcmin) or ``"`` (arcsec); angles are degrees.  As in
DS9, an ellipse takes its two semi-axes, a box its full width and height, and a rotation angle
counter-clockwise from the frame's longitude axis as seen on a north-up, east-left image.

Every sky shape converts to a pixel shape on a :class:`~extspec.sky.Projection`: a circle by
its centre and the local pixel scale at the centre (spec §5.1), an ellipse or box by its centre,
the local scale and the local direction of north, a polygon vertex by vertex.  Pixel shapes
test containment (strictly inside), rotate about a point and know their bounding box.
This module deliberately avoids the ``regions`` package, whose import alone (with
``astropy.coordinates``) costs each per-observation job several times its reduction time;
:meth:`SkyRegion.to_regions` converts to it for interoperability.

Parsing errors, unknown frames and regions outside the map geometry raise
:class:`~extspec.errors.ConfigError` naming the config key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .sky import FRAME_ALIASES, SkyPoint, canonical_frame, transform, unit_vectors

__all__ = [
    "SkyRegion", "CircleSky", "EllipseSky", "BoxSky", "PolygonSky", "PointSky",
    "PixelRegion", "CirclePix", "EllipsePix", "BoxPix", "PolygonPix",
    "parse_region", "parse_regions", "parse_ds9", "region_center", "region_to_ds9",
    "check_region_in_geom", "region_frame", "sky_to_pix", "pix_to_sky", "as_sky_region", "region_pixel_mask",
]

SHAPES = ("circle", "ellipse", "box", "polygon", "point")
_IGNORED_FRAMES = {"image", "physical", "linear", "amplifier", "detector", "fk4", "b1950", "ecliptic"}


# ------------------------------------------------------------------------------ pixel shapes --

@dataclass(frozen=True)
class BoundingBox:
    """Integer pixel bounds (like ``regions.BoundingBox``): ixmin <= x < ixmax after rounding."""

    ixmin: int
    ixmax: int
    iymin: int
    iymax: int

    @classmethod
    def from_float(cls, xmin, xmax, ymin, ymax) -> "BoundingBox":
        vals = [xmin, xmax, ymin, ymax]
        if not np.all(np.isfinite(vals)):
            return cls(0, 0, 0, 0)
        return cls(int(math.floor(xmin + 0.5)), int(math.ceil(xmax + 0.5)),
                   int(math.floor(ymin + 0.5)), int(math.ceil(ymax + 0.5)))

    @property
    def finite(self) -> bool:
        return self.ixmax > self.ixmin and self.iymax > self.iymin


def _rotate_xy(x, y, cx, cy, phi):
    c, s = math.cos(phi), math.sin(phi)
    dx, dy = np.asarray(x, float) - cx, np.asarray(y, float) - cy
    return cx + c * dx - s * dy, cy + s * dx + c * dy


class PixelRegion:
    """Base of the pixel shapes (0-based pixel coordinates, angles in rad)."""

    def contains(self, x, y) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def points_inside(self, x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        m = self.contains(x, y)
        return x[m], y[m]


@dataclass(frozen=True)
class CirclePix(PixelRegion):
    x: float
    y: float
    radius: float

    @property
    def center(self):
        return (self.x, self.y)

    @property
    def area(self) -> float:
        return math.pi * self.radius ** 2

    @property
    def bounding_box(self) -> BoundingBox:
        r = self.radius
        return BoundingBox.from_float(self.x - r, self.x + r, self.y - r, self.y + r)

    def contains(self, x, y):
        return np.hypot(np.asarray(x, float) - self.x, np.asarray(y, float) - self.y) < self.radius

    def rotate(self, cx, cy, phi) -> "CirclePix":
        x, y = _rotate_xy(self.x, self.y, cx, cy, phi)
        return CirclePix(float(x), float(y), self.radius)

    def patch(self, **style):
        from matplotlib.patches import Circle

        return Circle((self.x, self.y), self.radius, **style)


@dataclass(frozen=True)
class _Oriented(PixelRegion):
    x: float
    y: float
    width: float
    height: float
    angle: float  # rad, counter-clockwise from +x

    @property
    def center(self):
        return (self.x, self.y)

    def _local(self, x, y):
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = np.asarray(x, float) - self.x, np.asarray(y, float) - self.y
        return c * dx + s * dy, -s * dx + c * dy

    def rotate(self, cx, cy, phi):
        x, y = _rotate_xy(self.x, self.y, cx, cy, phi)
        return type(self)(float(x), float(y), self.width, self.height, self.angle + phi)


@dataclass(frozen=True)
class EllipsePix(_Oriented):
    @property
    def area(self) -> float:
        return math.pi * self.width * self.height / 4.0

    @property
    def bounding_box(self) -> BoundingBox:
        a, b = self.width / 2.0, self.height / 2.0
        c, s = math.cos(self.angle), math.sin(self.angle)
        ex, ey = math.hypot(a * c, b * s), math.hypot(a * s, b * c)
        return BoundingBox.from_float(self.x - ex, self.x + ex, self.y - ey, self.y + ey)

    def contains(self, x, y):
        u, v = self._local(x, y)
        return (u / (self.width / 2.0)) ** 2 + (v / (self.height / 2.0)) ** 2 < 1.0

    def patch(self, **style):
        from matplotlib.patches import Ellipse

        return Ellipse((self.x, self.y), self.width, self.height, angle=math.degrees(self.angle), **style)


@dataclass(frozen=True)
class BoxPix(_Oriented):
    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def vertices(self):
        u = np.array([-1, 1, 1, -1]) * self.width / 2.0
        v = np.array([-1, -1, 1, 1]) * self.height / 2.0
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.x + c * u - s * v, self.y + s * u + c * v

    @property
    def bounding_box(self) -> BoundingBox:
        xs, ys = self.vertices
        return BoundingBox.from_float(xs.min(), xs.max(), ys.min(), ys.max())

    def contains(self, x, y):
        u, v = self._local(x, y)
        return (np.abs(u) < self.width / 2.0) & (np.abs(v) < self.height / 2.0)

    def patch(self, **style):
        from matplotlib.patches import Polygon

        return Polygon(np.column_stack(self.vertices), closed=True, **style)


@dataclass(frozen=True)
class PolygonPix(PixelRegion):
    xs: tuple
    ys: tuple

    @property
    def center(self):
        return (float(np.mean(self.xs)), float(np.mean(self.ys)))

    @property
    def vertices(self):
        return np.asarray(self.xs, float), np.asarray(self.ys, float)

    @property
    def area(self) -> float:
        x, y = self.vertices
        return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))

    @property
    def bounding_box(self) -> BoundingBox:
        x, y = self.vertices
        return BoundingBox.from_float(x.min(), x.max(), y.min(), y.max())

    def contains(self, x, y):
        """Even-odd rule (ray casting towards +x), vectorised over the points."""
        px, py = np.asarray(x, float), np.asarray(y, float)
        vx, vy = self.vertices
        inside = np.zeros(np.broadcast(px, py).shape, bool)
        for x1, y1, x2, y2 in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1)):
            if y1 == y2:
                continue
            crosses = (y1 > py) != (y2 > py)
            xcross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (px < xcross)
        return inside

    def rotate(self, cx, cy, phi) -> "PolygonPix":
        x, y = _rotate_xy(self.xs, self.ys, cx, cy, phi)
        return PolygonPix(tuple(map(float, x)), tuple(map(float, y)))

    def patch(self, **style):
        from matplotlib.patches import Polygon

        return Polygon(np.column_stack(self.vertices), closed=True, **style)


# -------------------------------------------------------------------------------- sky shapes --

def _fmt(v: float) -> str:
    return f"{v:.8f}"


def _pix_frame(proj, point: SkyPoint):
    """Pixel position, local scale (deg/pix) and north angle (rad) of ``point`` on ``proj``,
    with north taken along the point's own frame."""
    x, y = proj.world_to_pix(*point.lonlat(proj.frame))
    d = 1.0 / 3600.0
    step = d if point.lat + d <= 90.0 else -d  # within 1" of the pole: step south, then flip
    x1, y1 = proj.world_to_pix(*SkyPoint(point.lon, point.lat + step, point.frame).lonlat(proj.frame))
    dx, dy = (x1 - x, y1 - y) if step > 0 else (x - x1, y - y1)
    return float(x), float(y), d / float(np.hypot(dx, dy)), float(np.arctan2(dy, dx))


class SkyRegion:
    """Base of the sky shapes; ``frame`` is 'icrs' or 'galactic'."""

    frame: str

    def to_ds9(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self):
        return self.to_ds9()

    def to_regions(self):
        """The same shape as a ``regions`` sky region (imports regions and astropy)."""
        from regions import Regions

        return Regions.parse(self.to_ds9(), format="ds9")[0]


@dataclass(frozen=True)
class CircleSky(SkyRegion):
    center: SkyPoint
    radius: float  # deg

    @property
    def frame(self):
        return self.center.frame

    def to_pixel(self, proj) -> CirclePix:
        """Centre and local-scale rule of §5.1: r_pix = radius / (deg per pixel at the centre)."""
        lon, lat = self.center.to(proj.frame).lonlat()
        x, y = proj.world_to_pix(lon, lat)
        return CirclePix(float(x), float(y), self.radius / proj.local_scale(lon, lat))

    def contains_lonlat(self, lon, lat, frame: str | None = None) -> np.ndarray:
        """Great-circle containment (strictly inside) of positions in ``frame`` (default own)."""
        return self.contains_vectors(unit_vectors(lon, lat), frame)

    def contains_vectors(self, vecs: np.ndarray, frame: str | None = None) -> np.ndarray:
        """The same for unit vectors ``vecs`` (3, n) in ``frame``, e.g. precomputed per event."""
        c = self.center.to(frame or self.frame)
        return np.tensordot(unit_vectors(c.lon, c.lat), vecs, axes=1) > math.cos(math.radians(self.radius))

    def to_ds9(self) -> str:
        c = self.center
        return f"{c.frame};circle({_fmt(c.lon)},{_fmt(c.lat)},{_fmt(self.radius)})"


@dataclass(frozen=True)
class PointSky(SkyRegion):
    """A point (DS9 ``point(lon,lat)``): the ON "region" of a point source analysed with
    point-like IRFs, whose ON region is the circle of radius RAD_MAX around it."""

    center: SkyPoint

    @property
    def frame(self):
        return self.center.frame

    def to_pixel(self, proj) -> CirclePix:
        """A circle of 1e-6 pixel at the point: it has a centre and a bounding box (map
        containment checks) and contains no pixel centre."""
        x, y = proj.world_to_pix(*self.center.to(proj.frame).lonlat())
        return CirclePix(float(x), float(y), 1e-6)

    def circle(self, radius: float) -> CircleSky:
        """The circle of ``radius`` deg around the point."""
        return CircleSky(self.center, float(radius))

    def to_ds9(self) -> str:
        c = self.center
        return f"{c.frame};point({_fmt(c.lon)},{_fmt(c.lat)})"


@dataclass(frozen=True)
class _OrientedSky(SkyRegion):
    center: SkyPoint
    width: float  # deg, full size
    height: float
    angle: float = 0.0  # deg

    _pixcls = None
    _ds9_name = ""
    _ds9_size_factor = 1.0  # DS9 writes an ellipse's semi-axes, a box's full sizes

    @property
    def frame(self):
        return self.center.frame

    def to_pixel(self, proj):
        x, y, scale, north = _pix_frame(proj, self.center)
        return self._pixcls(x, y, self.width / scale, self.height / scale,
                            math.radians(self.angle) + north - math.pi / 2)

    def to_ds9(self) -> str:
        c, f = self.center, self._ds9_size_factor
        return (f"{c.frame};{self._ds9_name}({_fmt(c.lon)},{_fmt(c.lat)},{_fmt(self.width * f)},"
                f"{_fmt(self.height * f)},{_fmt(self.angle)})")


@dataclass(frozen=True)
class EllipseSky(_OrientedSky):
    _pixcls = EllipsePix
    _ds9_name = "ellipse"
    _ds9_size_factor = 0.5


@dataclass(frozen=True)
class BoxSky(_OrientedSky):
    _pixcls = BoxPix
    _ds9_name = "box"


@dataclass(frozen=True)
class PolygonSky(SkyRegion):
    lons: tuple
    lats: tuple
    frame: str = "icrs"

    @property
    def center(self) -> SkyPoint:
        """Mean of the vertices' unit vectors, back on the sphere."""
        v = unit_vectors(self.lons, self.lats).mean(axis=1)
        lon = math.degrees(math.atan2(v[1], v[0])) % 360.0
        lat = math.degrees(math.atan2(v[2], math.hypot(v[0], v[1])))
        return SkyPoint(lon, lat, self.frame)

    def to_pixel(self, proj) -> PolygonPix:
        x, y = proj.world_to_pix(*transform(self.lons, self.lats, self.frame, proj.frame))
        return PolygonPix(tuple(map(float, x)), tuple(map(float, y)))

    def to_ds9(self) -> str:
        pts = ",".join(f"{_fmt(a)},{_fmt(b)}" for a, b in zip(self.lons, self.lats))
        return f"{self.frame};polygon({pts})"


# ---------------------------------------------------------------------------------- parsing --

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_SEXA = re.compile(r"^([+-]?)(\d+)[:hd ](\d+)[:m' ](" + r"\d+\.?\d*" + r")s?\"?$", re.I)


def _parse_coord(tok: str, axis: str, frame: str) -> float:
    t = tok.strip()
    m = _SEXA.match(t)
    if m:
        sign = -1.0 if m.group(1) == "-" else 1.0
        val = float(m.group(2)) + float(m.group(3)) / 60 + float(m.group(4)) / 3600
        hours = axis == "lon" and frame == "icrs" and ("h" in t.lower() or ":" in t)
        return sign * val * (15.0 if hours else 1.0)
    if t.lower().endswith("d"):
        t = t[:-1]
    if not re.fullmatch(_NUM, t):
        raise ValueError(f"bad coordinate '{tok.strip()}'")
    return float(t)


def _parse_size(tok: str) -> float:
    t = tok.strip()
    factor = 1.0
    if t.endswith('"'):
        t, factor = t[:-1], 1.0 / 3600
    elif t.endswith("'"):
        t, factor = t[:-1], 1.0 / 60
    elif t.lower().endswith("d"):
        t = t[:-1]
    elif t.lower().endswith("r"):
        t, factor = t[:-1], 180.0 / math.pi
    if not re.fullmatch(_NUM, t):
        raise ValueError(f"bad size '{tok.strip()}'")
    return float(t) * factor


def _make_shape(name: str, args: list[str], frame: str) -> SkyRegion:
    def lat(tok):
        v = _parse_coord(tok, "lat", frame)
        if not -90.0 <= v <= 90.0:
            raise ValueError(f"latitude {tok.strip()} outside [-90, 90] deg")
        return v

    def center():
        return SkyPoint(_parse_coord(args[0], "lon", frame), lat(args[1]), frame)

    def need(n):
        if len(args) != n:
            raise ValueError(f"{name} takes {n} values, got {len(args)}")

    if name == "point":
        need(2)
        return PointSky(center())
    if name == "circle":
        need(3)
        r = _parse_size(args[2])
        if not r > 0:
            raise ValueError("circle radius must be > 0")
        return CircleSky(center(), r)
    if name in ("ellipse", "box"):
        if len(args) == 4:
            args = args + ["0"]
        need(5)
        a, b = _parse_size(args[2]), _parse_size(args[3])
        if not (a > 0 and b > 0):
            raise ValueError(f"{name} sizes must be > 0")
        ang = float(_parse_coord(args[4], "angle", frame))
        if name == "ellipse":
            return EllipseSky(center(), 2 * a, 2 * b, ang)
        return BoxSky(center(), a, b, ang)
    if name == "polygon":
        if len(args) < 6 or len(args) % 2:
            raise ValueError("polygon needs at least 3 (lon, lat) pairs")
        lons = tuple(_parse_coord(a, "lon", frame) for a in args[0::2])
        lats = tuple(lat(a) for a in args[1::2])
        return PolygonSky(lons, lats, frame)
    raise ValueError(f"shape '{name}' not supported (use {', '.join(SHAPES)})")


def parse_ds9(text: str) -> list[SkyRegion]:
    """Parse DS9 region text into sky shapes (ValueError with the reason on bad input)."""
    frame = None
    out = []
    for stmt in re.split(r"[;\n]", text):
        s = stmt.split("#", 1)[0].strip()
        if not s:
            continue
        low = s.lower()
        if low.startswith("global"):
            continue
        if low in FRAME_ALIASES:
            frame = canonical_frame(low)
            continue
        if low in _IGNORED_FRAMES:
            raise ValueError(f"frame '{s}' not supported (use icrs or galactic)")
        if s[0] in "+-":
            if s[0] == "-":
                raise ValueError(f"excluded shape '{s}' not supported; list exclusions in exclusion_regions")
            s = s[1:].strip()
        m = re.fullmatch(r"([A-Za-z]+)\s*\((.*)\)(?:\s*\|\|)?", s)
        if not m:
            raise ValueError(f"cannot read '{s}'")
        if frame is None:
            raise ValueError("no coordinate frame before the shape (start with 'icrs;' or 'galactic;')")
        args = [a for a in (x.strip() for x in m.group(2).split(",")) if a]
        out.append(_make_shape(m.group(1).lower(), args, frame))
    return out


def region_file(text_or_path) -> Path | None:
    """The path of a region setting that names a ``.reg`` file, None for a DS9 string."""
    s = str(text_or_path).strip()
    return Path(s) if s.endswith(".reg") and "(" not in s else None


def _read_text(text_or_path: str, key: str) -> tuple[str, str]:
    """(region text, how to name it in a message: the file path, or the DS9 string itself)."""
    p = region_file(text_or_path)
    if p is not None:
        if not p.is_file():
            raise ConfigError(f"config key '{key}': region file {p} does not exist")
        try:
            return p.read_text(), f"region file {p}"
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config key '{key}': region file {p}: cannot read it ({exc})") from None
    s = str(text_or_path).strip()
    return s, f"region '{s}'"


def as_sky_region(obj, key: str = "region") -> SkyRegion:
    """A SkyRegion from one of ours, a DS9 string, or a ``regions`` sky region."""
    if isinstance(obj, SkyRegion):
        return obj
    if isinstance(obj, (str, Path)):
        return parse_region(obj, key)
    if hasattr(obj, "serialize"):  # a regions.SkyRegion
        from regions import Regions

        return parse_region(Regions([obj]).serialize(format="ds9", precision=12), key)
    raise ConfigError(f"config key '{key}': not a sky region: {obj!r}")


def parse_regions(text_or_path, key: str = "exclusion_regions") -> list:
    """Parse a DS9 string (several shapes allowed), a ``.reg`` file or a list of them."""
    if isinstance(text_or_path, (list, tuple)):
        out = []
        for i, item in enumerate(text_or_path):
            out.extend(parse_regions(item, f"{key}[{i}]"))
        return out
    if isinstance(text_or_path, SkyRegion) or hasattr(text_or_path, "serialize"):
        return [as_sky_region(text_or_path, key)]
    text, what = _read_text(text_or_path, key)
    if not text.strip():
        if what.startswith("region file"):
            raise ConfigError(f"config key '{key}': {what} is empty")
        return []
    try:
        out = parse_ds9(text)
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': cannot parse {what}: {exc}") from None
    if not out:
        low = text.lower()
        if not any(f in low for f in ("icrs", "fk5", "j2000", "galactic")):
            raise ConfigError(f"config key '{key}': {what} has no known frame (start it with 'icrs;' or 'galactic;')")
        raise ConfigError(f"config key '{key}': no region found in {what}")
    return out


def parse_region(text_or_path, key: str = "on_region") -> SkyRegion:
    """Parse exactly one sky region."""
    regs = parse_regions(text_or_path, key)
    if len(regs) != 1:
        raise ConfigError(f"config key '{key}': expected one region, found {len(regs)}")
    return regs[0]


def region_frame(region) -> str:
    """Frame name ('icrs' or 'galactic') of a sky region."""
    return as_sky_region(region).frame


def region_center(region) -> SkyPoint:
    """The region's centre (polygon: mean of the vertices on the sphere)."""
    return as_sky_region(region).center


def region_to_ds9(region) -> str:
    """One-line DS9 string of a sky region (with its frame, 8 decimals)."""
    return as_sky_region(region).to_ds9()


def check_region_in_geom(region, geom, key: str = "on_region", pad_pix: float = 1.0) -> None:
    """Raise ConfigError unless ``region`` (padded by ``pad_pix`` pixels) lies inside ``geom``."""
    bb = as_sky_region(region).to_pixel(geom.projection).bounding_box
    nx, ny = geom.npix
    lo_ok = bb.ixmin - pad_pix >= -0.5 and bb.iymin - pad_pix >= -0.5
    hi_ok = bb.ixmax + pad_pix <= nx + 0.5 and bb.iymax + pad_pix <= ny + 0.5
    if not (bb.finite and lo_ok and hi_ok):
        raise ConfigError(
            f"config key '{key}': region does not fit inside the map geometry "
            f"({geom.width[0]:.2f} x {geom.width[1]:.2f} deg around "
            f"({geom.lon:.3f}, {geom.lat:.3f}) {geom.frame}); enlarge 'geom.width'"
        )


def sky_to_pix(region, proj) -> PixelRegion:
    """Sky region -> pixel region on a Projection (circles: §5.1 centre and local scale)."""
    return as_sky_region(region).to_pixel(proj)


def region_pixel_mask(region, geom) -> np.ndarray:
    """Map pixels whose centres lie strictly inside ``region`` (spec §5.1), shape (ny, nx);
    ``geom`` is a :class:`extspec.geometry.MapGeom`."""
    pr = sky_to_pix(region, geom.projection)
    ny, nx = geom.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    return pr.contains(x, y)


def pix_to_sky(pix_region: PixelRegion, proj, frame: str) -> SkyRegion:
    """Pixel region -> sky region in ``frame``; a circle gets r_pix x the local scale at its
    new centre (§6.2), an ellipse/box its sizes scaled and its angle measured from north there."""
    frame = canonical_frame(frame)
    if isinstance(pix_region, PolygonPix):
        lon, lat = transform(*proj.pix_to_world(np.asarray(pix_region.xs), np.asarray(pix_region.ys)),
                             proj.frame, frame)
        return PolygonSky(tuple(map(float, lon)), tuple(map(float, lat)), frame)
    lon, lat = proj.pix_to_world(pix_region.x, pix_region.y)
    lon, lat = float(lon), float(lat)
    center = SkyPoint(lon, lat, proj.frame).to(frame)
    if isinstance(pix_region, CirclePix):
        return CircleSky(center, pix_region.radius * proj.local_scale(lon, lat))
    _, _, scale, north = _pix_frame(proj, center)
    cls = EllipseSky if isinstance(pix_region, EllipsePix) else BoxSky
    angle = math.degrees(pix_region.angle - north + math.pi / 2)
    return cls(center, pix_region.width * scale, pix_region.height * scale, angle)
