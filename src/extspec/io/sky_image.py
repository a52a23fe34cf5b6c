"""A sky image read from FITS: the surface-brightness template of ``model.spatial: {type: template}``.

:func:`read_template` reads the first image HDU (primary or extension) with a celestial WCS
(any projection astropy knows, ICRS/FK5 or Galactic) and returns its pixels as weighted sky
samples (:class:`~extspec.containment.SkyTemplate`): the centre of every pixel with a positive
value, in the image's frame, its weight the value times the pixel's solid angle (so an image
in any surface-brightness unit, on any projection, gives the brightness distribution on the
sky).  Bad input is one :class:`~extspec.errors.FormatError` line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_template"]


def read_template(path):
    """The template of ``path`` as a :class:`~extspec.containment.SkyTemplate` (see the module)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from ..containment import SkyTemplate
    from ..errors import FormatError

    path = Path(path)
    what = f"model.spatial.file {path}"
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.is_image and h.data is not None and h.data.ndim >= 2), None)
            if hdu is None:
                raise FormatError(f"{what}: no image HDU (a 2D sky image of the source's surface brightness)")
            data = np.asarray(hdu.data, dtype=np.float64)
            header = hdu.header
    except OSError as exc:
        raise FormatError(f"{what}: cannot read it as FITS ({exc})") from None
    while data.ndim > 2:  # degenerate axes (e.g. a single energy plane)
        if data.shape[0] != 1:
            raise FormatError(f"{what}: a {data.ndim}D image with {data.shape[0]} planes; give one 2D sky image")
        data = data[0]
    try:
        wcs = WCS(header, naxis=2).celestial
    except Exception as exc:  # astropy raises several types for a bad WCS
        raise FormatError(f"{what}: its WCS cannot be read ({type(exc).__name__}: {exc})") from None
    ctype = str(wcs.wcs.ctype[0]).upper()
    frame = "galactic" if ctype.startswith("GLON") else "icrs" if ctype.startswith("RA") else ""
    if not frame or wcs.naxis != 2:
        raise FormatError(f"{what}: no celestial WCS in RA/DEC or GLON/GLAT (CTYPE1 '{ctype}')")
    if not np.all(np.isfinite(data)) or data.min() < 0:
        raise FormatError(f"{what}: values must be finite and >= 0 (a surface brightness)")
    if not np.any(data > 0):
        raise FormatError(f"{what}: every pixel is 0")
    ny, nx = data.shape
    y, x = np.nonzero(data > 0)
    lon, lat = wcs.wcs_pix2world(x.astype(float), y.astype(float), 0)
    # solid angle of each used pixel from its corners' great-circle sides (small pixels)
    cx = np.stack([x - 0.5, x + 0.5, x - 0.5]).astype(float)
    cy = np.stack([y - 0.5, y - 0.5, y + 0.5]).astype(float)
    clon, clat = wcs.wcs_pix2world(cx.ravel(), cy.ravel(), 0)
    clon, clat = clon.reshape(3, -1), clat.reshape(3, -1)
    from ..sky import separation

    area = separation(clon[0], clat[0], clon[1], clat[1]) * separation(clon[0], clat[0], clon[2], clat[2])
    weight = data[y, x] * area
    if not np.all(np.isfinite(lon)) or not np.all(np.isfinite(area)):
        raise FormatError(f"{what}: some pixels of the image are not on the sky (undefined projection)")
    return SkyTemplate(lon=np.asarray(lon, float) % 360.0, lat=np.asarray(lat, float), weight=weight / weight.sum(),
                       frame=frame, pixel=float(np.sqrt(np.median(area))), source=str(path))
