"""Sky and energy geometry: the map WCS (§2.1) and log-spaced energy axes.

Every pixel <-> sky conversion follows the FITS WCS defined by exactly the keywords of §2.1
(:meth:`MapGeom.header_dict`; the CAR projection is oblique when CRVAL2 != 0, so pixel centres
do not lie on lines of constant latitude).  The conversions are computed by extspec's own
implementation of those WCS projections (:class:`extspec.sky.Projection`, equal to astropy's
WCSLIB to 1e-11 deg, checked in the tests) so that a reduction job never imports astropy;
:attr:`MapGeom.wcs` gives the astropy ``WCS`` for plotting.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .sky import CTYPE_PREFIXES, FRAMES, transform

__all__ = ["EnergyAxis", "MapGeom", "FRAMES", "PROJECTIONS", "make_energy_axis", "sky_to_frame"]

PROJECTIONS = ("CAR", "TAN")


@dataclass(frozen=True)
class EnergyAxis:
    """An energy axis given by its edges in TeV; centres are logarithmic (§0)."""

    edges: np.ndarray

    @property
    def nbin(self) -> int:
        return self.edges.size - 1

    @property
    def centers(self) -> np.ndarray:
        return np.sqrt(self.edges[:-1] * self.edges[1:])

    def __eq__(self, other):
        return isinstance(other, EnergyAxis) and np.array_equal(self.edges, other.edges)

    def __hash__(self):
        return hash(self.edges.tobytes())


def make_energy_axis(emin: float, emax: float, nbins: int) -> EnergyAxis:
    """``nbins`` log-spaced bins from ``emin`` to ``emax`` TeV (edges from ``np.geomspace``)."""
    if not (emin > 0 and emax > emin and int(nbins) >= 1):
        raise ValueError(f"energy axis needs 0 < min < max and nbins >= 1, got {emin}, {emax}, {nbins}")
    return EnergyAxis(np.geomspace(float(emin), float(emax), int(nbins) + 1))


@dataclass(frozen=True)
class MapGeom:
    """A 2D sky map geometry.

    Attributes
    ----------
    lon, lat : float
        Map centre (CRVAL) in deg, in ``frame``.

    frame : {"icrs", "galactic"}

    proj : {"CAR", "TAN"}

    npix : (nx, ny)

    binsz : float
        Pixel size in deg.
    """

    lon: float
    lat: float
    frame: str
    proj: str
    npix: tuple[int, int]
    binsz: float

    @classmethod
    def create(cls, lon, lat, width, binsz, frame="galactic", proj="CAR") -> "MapGeom":
        """Geometry of §2.1: npix = rint(width / binsz) per axis (round half to even)."""
        frame = frame.lower()
        proj = proj.upper()
        if frame not in FRAMES:
            raise ValueError(f"unknown frame '{frame}' (use one of {', '.join(FRAMES)})")
        if proj not in PROJECTIONS:
            raise ValueError(f"unknown projection '{proj}' (use one of {', '.join(PROJECTIONS)})")
        w = np.broadcast_to(np.asarray(width, float), (2,))
        npix = tuple(int(n) for n in np.rint(w / binsz))
        if min(npix) < 1:
            raise ValueError(f"map width {tuple(w)} smaller than a pixel ({binsz} deg)")
        return cls(float(lon), float(lat), frame, proj, npix, float(binsz))

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape (ny, nx)."""
        return (self.npix[1], self.npix[0])

    @property
    def width(self) -> tuple[float, float]:
        return (self.npix[0] * self.binsz, self.npix[1] * self.binsz)

    def header_dict(self) -> dict:
        c1, c2 = CTYPE_PREFIXES[self.frame]
        return {
            "WCSAXES": 2,
            "CTYPE1": c1 + self.proj,
            "CTYPE2": c2 + self.proj,
            "CRVAL1": self.lon,
            "CRVAL2": self.lat,
            "CRPIX1": (self.npix[0] + 1) / 2.0,
            "CRPIX2": (self.npix[1] + 1) / 2.0,
            "CDELT1": -self.binsz,
            "CDELT2": self.binsz,
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "NAXIS1": self.npix[0],
            "NAXIS2": self.npix[1],
        }

    @cached_property
    def projection(self):
        """The map WCS as an :class:`extspec.sky.Projection` (no astropy)."""
        from .sky import Projection

        h = self.header_dict()
        return Projection(self.proj, (h["CRVAL1"], h["CRVAL2"]), (h["CRPIX1"], h["CRPIX2"]),
                          (h["CDELT1"], h["CDELT2"]), self.frame)

    @cached_property
    def wcs(self):
        """The astropy WCS (built once per geometry; treat as read-only; imports astropy)."""
        from astropy.wcs import WCS

        h = self.header_dict()
        h.pop("NAXIS1")
        h.pop("NAXIS2")
        w = WCS(h)
        w.pixel_shape = self.npix
        return w

    def with_binsz(self, binsz: float) -> "MapGeom":
        """Same centre and projection, same true width, different pixel size (§4.1)."""
        w = np.array(self.width)
        npix = tuple(int(n) for n in np.rint(w / binsz))
        return MapGeom(self.lon, self.lat, self.frame, self.proj, npix, float(binsz))

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates (lon, lat) of all pixel centres, arrays of shape (ny, nx)."""
        ny, nx = self.shape
        y, x = np.mgrid[0:ny, 0:nx].astype(float)
        return self.projection.pix_to_world(x, y)

    def world_to_pix(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        return self.projection.world_to_pix(lon, lat)

    def solid_angle(self) -> np.ndarray:
        """Solid angle (sr) of every pixel, shape (ny, nx): half the cross product of the
        diagonals between its corners' unit vectors (exact to second order in the pixel size)."""
        from .sky import unit_vectors

        ny, nx = self.shape
        y, x = np.mgrid[0:ny + 1, 0:nx + 1].astype(float) - 0.5
        v = unit_vectors(*self.projection.pix_to_world(x, y))
        d1 = v[:, 1:, 1:] - v[:, :-1, :-1]
        d2 = v[:, 1:, :-1] - v[:, :-1, 1:]
        return 0.5 * np.linalg.norm(np.cross(d1, d2, axis=0), axis=0)


def sky_to_frame(lon, lat, from_frame: str, to_frame: str, float32_astropy: bool = False):
    """Convert coordinates between frames.

    By default in float64 with :func:`extspec.sky.transform`.  ``float32_astropy=True``
    reproduces the reference (spec §2.2 precision trap): float32 inputs go unchanged through
    astropy's ``SkyCoord.transform_to``, which then runs at float32 precision.
    """
    if not float32_astropy:
        return transform(lon, lat, from_frame, to_frame)
    if from_frame == to_frame:
        return np.asarray(lon), np.asarray(lat)
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    c = SkyCoord(lon * u.deg, lat * u.deg, frame=from_frame).transform_to(to_frame)
    sph = c.spherical
    return sph.lon.deg, sph.lat.deg

