"""Sky regions from DS9 strings or ``.reg`` files (ON region, exclusions).

Any shape the ``regions`` package parses in DS9 syntax works; circle, ellipse, rectangle and
polygon are tested, in icrs or galactic.  Parsing errors, unknown frames and regions outside
the map geometry raise :class:`~extspec.errors.ConfigError` naming the config key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = [
    "parse_region",
    "parse_regions",
    "region_center",
    "region_to_ds9",
    "check_region_in_geom",
    "region_frame",
]

_FRAMES = {"icrs": "icrs", "fk5": "icrs", "galactic": "galactic"}


def _read_text(text_or_path: str, key: str) -> str:
    s = str(text_or_path).strip()
    if s.endswith(".reg") and "(" not in s:
        p = Path(s)
        if not p.is_file():
            raise ConfigError(f"config key '{key}': region file {p} does not exist")
        return p.read_text()
    return s


def parse_regions(text_or_path, key: str = "exclusion_regions") -> list:
    """Parse a DS9 string (several shapes allowed) or a ``.reg`` file into sky regions."""
    from regions import Regions, SkyRegion

    if isinstance(text_or_path, (list, tuple)):
        out = []
        for i, item in enumerate(text_or_path):
            out.extend(parse_regions(item, f"{key}[{i}]"))
        return out
    text = _read_text(text_or_path, key)
    if not text:
        return []
    low = text.lower()
    if not any(f in low for f in ("icrs", "fk5", "galactic")):
        raise ConfigError(
            f"config key '{key}': region '{text.strip()}' has no known frame "
            "(start it with 'icrs;' or 'galactic;')"
        )
    try:
        regs = Regions.parse(text, format="ds9")
    except Exception as exc:  # regions raises several types for bad syntax
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config key '{key}': cannot parse region '{text.strip()}': {msg}") from None
    out = []
    for r in regs:
        if not isinstance(r, SkyRegion):
            raise ConfigError(f"config key '{key}': region '{text.strip()}' is in image coordinates; use icrs or galactic")
        frame = region_frame(r)
        if frame not in _FRAMES:
            raise ConfigError(f"config key '{key}': region frame '{frame}' not supported (use icrs or galactic)")
        out.append(r)
    if not out:
        raise ConfigError(f"config key '{key}': no region found in '{text.strip()}'")
    return out


def parse_region(text_or_path, key: str = "on_region"):
    """Parse exactly one sky region."""
    regs = parse_regions(text_or_path, key)
    if len(regs) != 1:
        raise ConfigError(f"config key '{key}': expected one region, found {len(regs)}")
    return regs[0]


def region_frame(region) -> str:
    """Frame name of a sky region's reference coordinate."""
    c = region_center(region)
    return c.frame.name


def region_center(region):
    """The SkyCoord at the region's centre (polygon: mean of the vertices on the sphere)."""
    if hasattr(region, "center"):
        return region.center
    from astropy.coordinates import CartesianRepresentation, SkyCoord, SphericalRepresentation

    v = region.vertices
    xyz = v.cartesian.xyz.value.mean(axis=1)
    sph = CartesianRepresentation(*xyz).represent_as(SphericalRepresentation)
    return SkyCoord(sph.lon, sph.lat, frame=v.frame)


def region_to_ds9(region) -> str:
    """One-line DS9 string of a sky region (with its frame)."""
    from regions import Regions

    text = Regions([region]).serialize(format="ds9", precision=8)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#") and not ln.startswith("global")]
    return ";".join(lines)


def check_region_in_geom(region, geom, key: str = "on_region", pad_pix: float = 1.0) -> None:
    """Raise ConfigError unless ``region`` (padded by ``pad_pix`` pixels) lies inside ``geom``."""
    pix = region.to_pixel(geom.wcs)
    bb = pix.bounding_box
    nx, ny = geom.npix
    lo_ok = bb.ixmin - pad_pix >= -0.5 and bb.iymin - pad_pix >= -0.5
    hi_ok = bb.ixmax + pad_pix <= nx + 0.5 and bb.iymax + pad_pix <= ny + 0.5
    if not (lo_ok and hi_ok and np.isfinite([bb.ixmin, bb.ixmax, bb.iymin, bb.iymax]).all()):
        raise ConfigError(
            f"config key '{key}': region does not fit inside the map geometry "
            f"({geom.width[0]:.2f} x {geom.width[1]:.2f} deg around "
            f"({geom.lon:.3f}, {geom.lat:.3f}) {geom.frame}); enlarge 'geom.width'"
        )


def local_pixel_scale(wcs, lon: float, lat: float, offset_deg: float = 1.0 / 3600.0) -> float:
    """deg per pixel at (lon, lat): offset by 1 arcsec towards +lat, measure in pixels (§5.1)."""
    x0, y0 = wcs.wcs_world2pix(lon, lat, 0)
    x1, y1 = wcs.wcs_world2pix(lon, lat + offset_deg, 0)
    return offset_deg / float(np.hypot(x1 - x0, y1 - y0))


def sky_to_pix(region, wcs):
    """Sky region -> pixel region; circles follow the centre-and-local-scale rule of §5.1."""
    from regions import CirclePixelRegion, CircleSkyRegion, PixCoord

    if isinstance(region, CircleSkyRegion):
        c = region.center
        lon, lat = c.spherical.lon.deg, c.spherical.lat.deg
        x, y = wcs.wcs_world2pix(lon, lat, 0)
        r = region.radius.to_value("deg") / local_pixel_scale(wcs, lon, lat)
        return CirclePixelRegion(PixCoord(float(x), float(y)), r)
    return region.to_pixel(wcs)


def pix_to_sky(pix_region, wcs, frame: str):
    """Pixel region -> sky region; circles get radius r_pix x local scale at the new centre (§6.2)."""
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    from regions import CirclePixelRegion, CircleSkyRegion

    if isinstance(pix_region, CirclePixelRegion):
        lon, lat = wcs.wcs_pix2world(pix_region.center.x, pix_region.center.y, 0)
        s = local_pixel_scale(wcs, float(lon), float(lat))
        return CircleSkyRegion(SkyCoord(float(lon) * u.deg, float(lat) * u.deg, frame=frame),
                               pix_region.radius * s * u.deg)
    return pix_region.to_sky(wcs)
