"""Sky coordinates without astropy: frame rotations and the FITS CAR / TAN projections.

Every per-observation job converts event and pointing positions between ICRS and Galactic
and between the sky and map pixels.  Importing ``astropy.coordinates`` and ``astropy.wcs``
costs about half a second per process, a multiple of the whole reduction, so these
conversions are done here on plain float64 numpy arrays:

* :func:`transform` rotates unit vectors with the ICRS -> Galactic matrix of astropy's
  frame graph (ICRS -> FK5 J2000 -> Galactic, all static), so results agree with
  ``SkyCoord.transform_to`` to ~1e-13 deg (tested).
* :class:`Projection` is the celestial part of a FITS WCS (Calabretta & Greisen 2002,
  A&A 395, 1077, "Paper II") for the zenithal TAN and the cylindrical CAR projections, with
  the LONPOLE / LATPOLE defaults of the standard.  For CAR with CRVAL2 != 0 the native equator
  is oblique (spec §2.1), exactly as in WCSLIB; results agree with ``astropy.wcs.WCS`` to
  ~1e-10 pixel (tested).

:class:`SkyPixels` and :func:`sky_grid` give a map's coordinate grid in pixel space (lines of
constant lon/lat and their tick labels), from its own pixel <-> sky conversion, for the
counts image of :mod:`extspec.plots` (no astropy WCSAxes).

Angles are in degrees throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "FRAMES",
    "CTYPE_PREFIXES",
    "frame_of_ctype",
    "ICRS_TO_GALACTIC",
    "SkyPoint",
    "Projection",
    "transform",
    "transform_point",
    "separation",
    "unit_vectors",
    "fov_coords",
    "SkyPixels",
    "sky_grid",
]

FRAMES = ("icrs", "galactic")
CTYPE_PREFIXES = {"icrs": ("RA---", "DEC--"), "galactic": ("GLON-", "GLAT-")}
"""FITS CTYPE1/CTYPE2 of each frame, without the projection code (``"RA---" + "CAR"``)."""
# fk5 (J2000) differs from ICRS by the 20 mas frame bias; DS9 files say fk5 for ICRS-like
# positions, and the DL3 headers say FK5 for what the reference reads as ICRS (spec §0).
FRAME_ALIASES = {"icrs": "icrs", "fk5": "icrs", "j2000": "icrs", "galactic": "galactic", "gal": "galactic"}

# v_galactic = ICRS_TO_GALACTIC @ v_icrs (unit vectors).  Columns are astropy's Galactic images
# of the ICRS basis vectors (astropy 6/7, ICRS -> FK5(J2000) -> Galactic; the matrix is
# orthonormal to 2e-15); tests/test_sky.py checks it against astropy at run time.
ICRS_TO_GALACTIC = np.array([
    [-0.05487565771259163, -0.8734370519556159, -0.48383507361671546],
    [0.4941094371927268, -0.4448297212232952, 0.7469821839866676],
    [-0.8676661375596576, -0.19807633727300053, 0.4559838136873016],
])

_D2R = np.pi / 180.0
_R2D = 180.0 / np.pi


def frame_of_ctype(ctype1: str) -> str:
    """The frame of a FITS longitude axis type (``GLON-...`` is galactic, else icrs)."""
    return "galactic" if str(ctype1).strip().upper().startswith("GLON") else "icrs"


def canonical_frame(frame: str) -> str:
    """'icrs' or 'galactic' for any accepted spelling; ValueError otherwise."""
    f = FRAME_ALIASES.get(str(frame).strip().lower())
    if f is None:
        raise ValueError(f"unknown sky frame '{frame}' (use icrs or galactic)")
    return f


def unit_vectors(lon, lat) -> np.ndarray:
    """Unit vectors, shape (3, ...), of positions (lon, lat) in deg (float64)."""
    lon = np.asarray(lon, dtype=np.float64) * _D2R
    lat = np.asarray(lat, dtype=np.float64) * _D2R
    c = np.cos(lat)
    if lon.shape != lat.shape or lon.ndim == 0:
        return np.stack([c * np.cos(lon), c * np.sin(lon), np.sin(lat)])
    v = np.empty((3,) + lon.shape)  # the same products, written in place (no stacked copy)
    np.multiply(c, np.cos(lon, out=v[0]), out=v[0])
    np.multiply(c, np.sin(lon, out=v[1]), out=v[1])
    np.sin(lat, out=v[2])
    return v


def _lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = v
    lon = np.arctan2(y, x) * _R2D
    lon = np.where(lon < 0, lon + 360.0, lon)
    lat = np.arctan2(z, np.hypot(x, y)) * _R2D
    return lon, lat


def transform(lon, lat, from_frame: str, to_frame: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions (deg) converted between 'icrs' and 'galactic' (float64; lon in [0, 360))."""
    a, b = canonical_frame(from_frame), canonical_frame(to_frame)
    if a == b:
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    m = ICRS_TO_GALACTIC if a == "icrs" else ICRS_TO_GALACTIC.T
    v = unit_vectors(lon, lat)
    return _lonlat(np.tensordot(m, v, axes=1))


@lru_cache(maxsize=512)
def transform_point(lon: float, lat: float, from_frame: str, to_frame: str) -> tuple[float, float]:
    """One position converted between frames (cached: pointings and centres recur)."""
    lo, la = transform(lon, lat, from_frame, to_frame)
    return float(lo), float(la)


def separation(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle separation in deg (Vincenty formula, stable at all angles)."""
    lon1, lat1, lon2, lat2 = (np.asarray(v, dtype=np.float64) * _D2R for v in (lon1, lat1, lon2, lat2))
    sdlon, cdlon = np.sin(lon2 - lon1), np.cos(lon2 - lon1)
    slat1, slat2 = np.sin(lat1), np.sin(lat2)
    clat1, clat2 = np.cos(lat1), np.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    den = slat1 * slat2 + clat1 * clat2 * cdlon
    return np.arctan2(np.hypot(num1, num2), den) * _R2D


def fov_coords(lon, lat, lon0: float, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Field-of-view coordinates (deg) of positions relative to a pointing (lon0, lat0).

    The frame of the positions rotated so that the pointing is at (0, 0) and its north stays
    north; the longitude is reflected (GADF FoV convention: FOV_LON grows westwards, towards
    decreasing RA).  Longitudes in (-180, 180].
    """
    v = unit_vectors(lon, lat)
    a, d = lon0 * _D2R, lat0 * _D2R
    ca, sa, cd, sd = np.cos(a), np.sin(a), np.cos(d), np.sin(d)
    x = cd * (ca * v[0] + sa * v[1]) + sd * v[2]
    y = -sa * v[0] + ca * v[1]
    z = -sd * (ca * v[0] + sa * v[1]) + cd * v[2]
    return -np.arctan2(y, x) * _R2D, np.arctan2(z, np.hypot(x, y)) * _R2D


@dataclass(frozen=True)
class SkyPoint:
    """A position on the sky: (lon, lat) in deg in ``frame`` ('icrs' or 'galactic')."""

    lon: float
    lat: float
    frame: str = "icrs"

    def __post_init__(self):
        object.__setattr__(self, "frame", canonical_frame(self.frame))
        object.__setattr__(self, "lon", float(self.lon))
        object.__setattr__(self, "lat", float(self.lat))

    def to(self, frame: str) -> "SkyPoint":
        frame = canonical_frame(frame)
        if frame == self.frame:
            return self
        return SkyPoint(*transform_point(self.lon, self.lat, self.frame, frame), frame)

    def lonlat(self, frame: str | None = None) -> tuple[float, float]:
        p = self if frame is None else self.to(frame)
        return p.lon, p.lat

    def separation(self, other: "SkyPoint") -> float:
        """Great-circle distance in deg (``other`` converted to this frame)."""
        o = as_skypoint(other).to(self.frame)
        return float(separation(self.lon, self.lat, o.lon, o.lat))

    def to_astropy(self):
        """This position as an ``astropy.coordinates.SkyCoord`` (imports astropy)."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.lon, self.lat, unit="deg", frame=self.frame)


def as_skypoint(p, frame: str = "icrs") -> SkyPoint:
    """A SkyPoint from a SkyPoint, an astropy SkyCoord or a (lon, lat) pair in ``frame``."""
    if isinstance(p, SkyPoint):
        return p
    if hasattr(p, "spherical") and hasattr(p, "frame"):  # astropy SkyCoord / frame instance
        name = p.frame.name
        if name not in FRAME_ALIASES:
            p, name = p.icrs, "icrs"
        sph = p.spherical
        return SkyPoint(float(sph.lon.deg), float(sph.lat.deg), name)
    lon, lat = p
    return SkyPoint(float(lon), float(lat), frame)


class Projection:
    """Celestial FITS WCS (Paper II) for the TAN and CAR projections.

    Parameters
    ----------
    proj : {"CAR", "TAN"}
    crval : (lon, lat) of the reference point, deg
    crpix : (x, y) reference pixel, 1-based as in FITS
    cdelt : (dx, dy) deg per pixel (dx < 0 for the usual east-left images)

    ``LONPOLE`` and ``LATPOLE`` take the standard defaults (LONPOLE = 0 if CRVAL2 >= theta_0
    else 180; LATPOLE = +90), as WCSLIB does when the header does not set them.
    Pixel coordinates are 0-based in :meth:`world_to_pix` / :meth:`pix_to_world`.
    """

    def __init__(self, proj: str, crval, crpix, cdelt, frame: str = "icrs"):
        self.proj = str(proj).upper()
        self.frame = canonical_frame(frame)
        if self.proj not in ("CAR", "TAN"):
            raise ValueError(f"projection '{proj}' not supported (use CAR or TAN)")
        self.crval = (float(crval[0]), float(crval[1]))
        self.crpix = (float(crpix[0]), float(crpix[1]))
        self.cdelt = (float(cdelt[0]), float(cdelt[1]))
        a0, d0 = self.crval
        if self.proj == "TAN":
            phi0, theta0 = 0.0, 90.0
        else:
            phi0, theta0 = 0.0, 0.0
        phi_p = 0.0 if d0 >= theta0 else 180.0
        if theta0 == 90.0:
            alpha_p, delta_p = a0, d0
        else:
            dphi = (phi_p - phi0) * _D2R
            t0, dd0 = theta0 * _D2R, d0 * _D2R
            base = np.arctan2(np.sin(t0), np.cos(t0) * np.cos(dphi))
            arg = np.sin(dd0) / np.sqrt(1.0 - (np.cos(t0) * np.sin(dphi)) ** 2)
            half = np.arccos(np.clip(arg, -1.0, 1.0))
            cands = [np.rad2deg(base + half), np.rad2deg(base - half)]
            cands = [((c + 180.0) % 360.0) - 180.0 for c in cands]
            cands = [c for c in cands if -90.0 - 1e-12 <= c <= 90.0 + 1e-12] or cands
            delta_p = float(min(cands, key=lambda c: abs(c - 90.0)))  # closest to LATPOLE = +90
            delta_p = float(np.clip(delta_p, -90.0, 90.0))
            if abs(delta_p - 90.0) < 1e-12:
                alpha_p = a0 + phi_p - phi0 - 180.0
            elif abs(delta_p + 90.0) < 1e-12:
                alpha_p = a0 - phi_p + phi0
            else:
                dp = delta_p * _D2R
                sin_da = np.sin(dphi) * np.cos(t0) / np.cos(dd0)
                cos_da = (np.sin(t0) - np.sin(dp) * np.sin(dd0)) / (np.cos(dp) * np.cos(dd0))
                alpha_p = a0 - float(np.rad2deg(np.arctan2(sin_da, cos_da)))
        self._phi_p = phi_p * _D2R
        self._alpha_p = alpha_p * _D2R
        self._delta_p = delta_p * _D2R
        self._sdp, self._cdp = np.sin(self._delta_p), np.cos(self._delta_p)

    def __repr__(self):
        return (f"Projection({self.proj!r}, crval={self.crval}, crpix={self.crpix}, cdelt={self.cdelt}, "
                f"frame={self.frame!r})")

    @classmethod
    def tangent(cls, lon: float, lat: float, binsz: float, crpix=(1.0, 1.0), frame: str = "icrs") -> "Projection":
        """TAN grid with tangent point (lon, lat) and square pixels of ``binsz`` deg (east left)."""
        return cls("TAN", (lon, lat), crpix, (-binsz, binsz), frame)

    # -- native <-> celestial (Paper II eqs. 2 and 5) --
    def _native_to_celestial(self, phi, theta):
        dphi = phi - self._phi_p
        st, ct = np.sin(theta), np.cos(theta)
        cdphi = np.cos(dphi)  # (each subexpression computed once: the same values)
        x = st * self._cdp - ct * self._sdp * cdphi
        y = -ct * np.sin(dphi)
        lon = (self._alpha_p + np.arctan2(y, x)) * _R2D % 360.0
        # atan2 of the rotated unit vector, not arcsin: exact to the last bit near the poles
        lat = np.arctan2(st * self._sdp + ct * self._cdp * cdphi, np.hypot(x, y)) * _R2D
        return lon, lat

    def _celestial_to_native(self, lon, lat):
        da = lon * _D2R - self._alpha_p
        lat = lat * _D2R
        sd, cd = np.sin(lat), np.cos(lat)
        cda = np.cos(da)  # (each subexpression computed once: the same values)
        x = sd * self._cdp - cd * self._sdp * cda
        y = -cd * np.sin(da)
        phi = self._phi_p + np.arctan2(y, x)
        theta = np.arctan2(sd * self._sdp + cd * self._cdp * cda, np.hypot(x, y))
        return phi, theta

    def pix_to_world(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates -> (lon, lat) deg; NaN where the projection is undefined."""
        xi = (np.asarray(x, dtype=np.float64) + 1.0 - self.crpix[0]) * self.cdelt[0]
        yi = (np.asarray(y, dtype=np.float64) + 1.0 - self.crpix[1]) * self.cdelt[1]
        if self.proj == "CAR":
            phi, theta = xi * _D2R, yi * _D2R
            bad = np.abs(yi) > 90.0
        else:
            r = np.hypot(xi, yi)
            phi = np.arctan2(xi, -yi)
            theta = np.arctan2(_R2D, r)
            bad = np.zeros(np.shape(r), bool)
        lon, lat = self._native_to_celestial(phi, theta)
        if np.any(bad):
            lon, lat = np.where(bad, np.nan, lon), np.where(bad, np.nan, lat)
        return lon, lat

    def world_to_pix(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) deg -> 0-based pixel coordinates; NaN where the projection is undefined."""
        return self.pix_from_reference(*self.world_to_reference(lon, lat))

    def pix_from_reference(self, dx, dy) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates from :meth:`world_to_reference` (bit for bit as
        :meth:`world_to_pix`)."""
        return dx + self.crpix[0] - 1.0, dy + self.crpix[1] - 1.0

    def world_to_reference(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) deg -> pixels from the reference pixel (CRPIX); independent of CRPIX, so
        that grids differing only in CRPIX share it (:class:`extspec.spectrum.RunShare`)."""
        phi, theta = self._celestial_to_native(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        if self.proj == "CAR":
            xi = ((phi * _R2D + 180.0) % 360.0) - 180.0
            yi = theta * _R2D
        else:
            st = np.sin(theta)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(st > 0, _R2D * np.cos(theta) / st, np.nan)
            xi = r * np.sin(phi)
            yi = -r * np.cos(phi)
        return xi / self.cdelt[0], yi / self.cdelt[1]

    def local_scale(self, lon: float, lat: float, offset_deg: float = 1.0 / 3600.0) -> float:
        """deg per pixel at (lon, lat): step ``offset_deg`` towards +lat, measure in pixels (§5.1)."""
        x0, y0 = self.world_to_pix(lon, lat)
        x1, y1 = self.world_to_pix(lon, lat + offset_deg)
        return offset_deg / float(np.hypot(x1 - x0, y1 - y0))

    def to_astropy(self):
        """The same WCS as an ``astropy.wcs.WCS`` (imports astropy)."""
        from astropy.wcs import WCS

        return WCS(self.header_cards())

    def header_cards(self) -> dict:
        """The FITS WCS keywords of this projection."""
        c1, c2 = CTYPE_PREFIXES[self.frame]
        return {"WCSAXES": 2, "CTYPE1": c1 + self.proj, "CTYPE2": c2 + self.proj,
                "CRVAL1": self.crval[0], "CRVAL2": self.crval[1], "CRPIX1": self.crpix[0],
                "CRPIX2": self.crpix[1], "CDELT1": self.cdelt[0], "CDELT2": self.cdelt[1],
                "CUNIT1": "deg", "CUNIT2": "deg"}


# --------------------------------------------------------------------------------------
# The coordinate grid of a map in pixel space (drawn by extspec.plots.plot_counts_image)
# --------------------------------------------------------------------------------------
class SkyPixels:
    """Pixel <-> sky conversions of a map, from a MapGeom or an astropy celestial WCS.

    A geometry (anything with ``frame``, ``pixel_centers()`` and ``world_to_pix()``, e.g.
    :class:`extspec.geometry.MapGeom`) is used through those methods only; an astropy WCS
    through ``wcs_pix2world`` / ``wcs_world2pix``.  Pixel coordinates are 0-based, pixel
    centres at integers.
    """

    def __init__(self, geom_or_wcs, shape):
        self.obj = geom_or_wcs
        self.shape = tuple(shape)  # (ny, nx) of the image
        self.is_geom = hasattr(geom_or_wcs, "world_to_pix") and hasattr(geom_or_wcs, "pixel_centers")
        if not self.is_geom and getattr(geom_or_wcs, "naxis", 2) > 2:
            self.obj = geom_or_wcs.celestial

    @property
    def projection(self):
        """The map's :class:`Projection`, for the region drawing (``extspec.plots``)."""
        if self.is_geom:
            return self.obj.projection
        w = self.obj.wcs
        ctype = [str(c).upper() for c in w.ctype]
        return Projection(ctype[0][-3:], tuple(w.crval), tuple(w.crpix), tuple(w.cdelt), frame_of_ctype(ctype[0]))

    def pixel_centers(self):
        """(lon, lat) deg of every pixel centre, arrays shaped like the image."""
        if self.is_geom:
            lon, lat = self.obj.pixel_centers()
            if np.shape(lon) == self.shape:
                return np.asarray(lon, float), np.asarray(lat, float)
            raise ValueError(f"image shape {self.shape} does not match the geometry's {np.shape(lon)}")
        y, x = np.mgrid[0:self.shape[0], 0:self.shape[1]].astype(float)
        lon, lat = self.obj.wcs_pix2world(x, y, 0)
        return np.asarray(lon, float), np.asarray(lat, float)

    def world_to_pix(self, lon, lat):
        with np.errstate(all="ignore"):
            if self.is_geom:
                x, y = self.obj.world_to_pix(lon, lat)
            else:
                x, y = self.obj.wcs_world2pix(np.asarray(lon, float), np.asarray(lat, float), 0)
        return np.asarray(x, float), np.asarray(y, float)

    def axis_labels(self):
        if self.is_geom:
            frame = str(self.obj.frame).lower()
            if frame == "galactic":
                return "Galactic longitude [deg]", "Galactic latitude [deg]"
            return f"Right ascension ({frame.upper()}) [deg]", f"Declination ({frame.upper()}) [deg]"
        return _sky_axis_labels(self.obj)


def _sky_axis_labels(wcs):
    ctype = [str(wcs.wcs.ctype[i]).upper() for i in range(2)]
    if ctype[0].startswith("GLON"):
        return "Galactic longitude [deg]", "Galactic latitude [deg]"
    if ctype[0].startswith("RA"):
        frame = str(getattr(wcs.wcs, "radesys", "") or "ICRS").strip().upper() or "ICRS"
        return f"Right ascension ({frame}) [deg]", f"Declination ({frame}) [deg]"
    return f"{ctype[0]} [deg]", f"{ctype[1]} [deg]"


def _nice_step(span: float, target: int = 4) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``target`` intervals over ``span``."""
    if not np.isfinite(span) or span <= 0:
        return 1.0
    raw = span / target
    k = np.floor(np.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0 ** k >= raw * 0.75:
            return float(m * 10.0 ** k)
    return float(10.0 ** (k + 1))  # pragma: no cover


def _tick_text(value: float, step: float, wrap: bool) -> str:
    decimals = max(1, int(-np.floor(np.log10(step) + 1e-9)))
    v = round(float(value), decimals)
    if wrap:
        v = round(v % 360.0, decimals)
        v = 0.0 if v >= 360.0 else v
    return f"{v + 0.0:.{decimals}f}".replace("-", "\u2212")  # + 0.0: no "-0.0"; a typographic minus as matplotlib


def _edge_crossings(u, v, edge: float, lo: float, hi: float) -> list:
    """u positions where the polyline (u, v) crosses v = edge, with lo <= u <= hi."""
    d = v - edge
    ok = np.isfinite(u) & np.isfinite(d)
    i = np.nonzero(ok[:-1] & ok[1:] & (np.sign(d[:-1]) != np.sign(d[1:])))[0]
    out = []
    for j in i:
        t = d[j] / (d[j] - d[j + 1]) if d[j] != d[j + 1] else 0.0
        uc = u[j] + t * (u[j + 1] - u[j])
        if lo <= uc <= hi:
            out.append(float(uc))
    return out


def sky_grid(conv: "SkyPixels", n_sample: int = 200) -> dict:
    """Coordinate grid of a map in pixel space (for :func:`extspec.plots.plot_counts_image`).

    Lines of constant longitude and latitude at 'nice' steps (1, 2 or 5 x 10^k deg, about
    four intervals across the map) are sampled in sky coordinates and converted to pixels
    with the map's own world -> pixel function, so the grid is right for any projection
    (oblique CAR, TAN).  A longitude line is labelled where it crosses the bottom edge of
    the image, a latitude line where it crosses the left edge.

    Returns
    -------
    dict with ``lon_lines`` / ``lat_lines`` (lists of (x, y) pixel arrays) and
    ``xticks`` / ``yticks`` (lists of (pixel position, label)).
    """
    ny, nx = conv.shape
    lon, lat = conv.pixel_centers()
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return {"lon_lines": [], "lat_lines": [], "xticks": [], "yticks": []}
    # longitudes unwrapped around the map centre (a map across lon = 0/360 stays continuous)
    lon_c = float(lon[ny // 2, nx // 2]) if ok[ny // 2, nx // 2] else float(lon[ok][0])
    lon_u = lon_c + (lon - lon_c + 180.0) % 360.0 - 180.0
    l0, l1 = float(lon_u[ok].min()), float(lon_u[ok].max())
    b0, b1 = float(lat[ok].min()), float(lat[ok].max())
    pad_l = 0.1 * (l1 - l0) + 1e-9
    pad_b = 0.1 * (b1 - b0) + 1e-9
    step = _nice_step(max(b1 - b0, (l1 - l0) * np.cos(np.deg2rad(np.clip((b0 + b1) / 2, -89, 89)))))
    step_l = step if l1 - l0 < 180 else _nice_step(l1 - l0)
    grid = {"lon_lines": [], "lat_lines": [], "xticks": [], "yticks": []}
    lat_s = np.linspace(max(b0 - pad_b, -90.0), min(b1 + pad_b, 90.0), n_sample)
    lon_s = np.linspace(l0 - pad_l, l1 + pad_l, n_sample)
    xe, ye = (-0.5, nx - 0.5), (-0.5, ny - 0.5)
    for v in np.arange(np.ceil((l0 - pad_l) / step_l), np.floor((l1 + pad_l) / step_l) + 1) * step_l:
        x, y = conv.world_to_pix(np.full_like(lat_s, v % 360.0), lat_s)
        grid["lon_lines"].append((x, y))
        for xc in _edge_crossings(x, y, ye[0], *xe)[:1]:
            grid["xticks"].append((xc, _tick_text(v, step_l, wrap=True)))
    for v in np.arange(np.ceil((b0 - pad_b) / step), np.floor((b1 + pad_b) / step) + 1) * step:
        if abs(v) > 90:
            continue
        x, y = conv.world_to_pix(lon_s % 360.0, np.full_like(lon_s, v))
        grid["lat_lines"].append((x, y))
        for yc in _edge_crossings(y, x, xe[0], *ye)[:1]:
            grid["yticks"].append((yc, _tick_text(v, step, wrap=False)))
    return grid
