"""Spatially resolved spectra: one ON/OFF spectrum, fit and flux per sub-region (``spatial_bins``).

Three parts, in the order data flows:

* geometry: the sub-regions of the config's ``spatial_bins`` (:class:`SpatialBinSettings`):
  a grid of square boxes kept where their centre lies within a region, annuli, sectors, or
  given regions (:func:`sub_regions`), with the one-line refusals (a grid with no box inside,
  boxes smaller than the map's pixels) and the overlap warning (:func:`overlap_warnings`);
* reduction: every sub-region is an ON region of its own with the analysis's background
  method, all reduced from one reading of a run (:func:`extspec.reduction.reduce_regions`);
* fits (:func:`fit_regions`, :class:`SpatialFitSettings`): per sub-region the analysis's model
  fitted with :func:`extspec.fit.fit_joint` and judged by the one quality gate
  (:mod:`extspec.quality`): a ``not_detected`` sub-region (TS below ``fit.detection_ts_min``)
  gets an upper limit on its flux in ``flux_band`` instead of parameters; and the uniformity
  test (:func:`uniformity_test`): one spectral shape for every measured sub-region (shape
  parameters tied, amplitudes free) against free shapes, a likelihood ratio with
  (n_regions - 1) x n_shape degrees of freedom (Wilks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["SpatialBinSettings", "SpatialFitSettings", "SubRegion", "sub_regions", "overlap_warnings",
           "solid_angle", "fit_regions", "uniformity_test", "REGION_UNITS", "FEW_COUNTS_EXCESS", "UNIFORMITY_STATUSES",
           "SOLID_ANGLE_STEP", "grid_images"]

SOLID_ANGLE_STEP = 0.002
"""deg; spacing of the tangent-plane grid on which a sub-region's solid angle is counted
(circles: exact, 2 pi (1 - cos r))."""

FEW_COUNTS_EXCESS = 50.0
"""A fitted sub-region with less excess than this makes the uniformity test's Wilks
approximation doubtful: it is named in the test's ``few_counts``."""

_ARC_POINTS = 128
"""Vertices per full circle of the polygons drawn for sectors and annuli."""


@dataclass(frozen=True)
class SpatialBinSettings:
    """The geometry of ``spatial_bins`` (no defaults here: the schema holds them).

    Attributes
    ----------
    kind : {"grid", "annuli", "sectors", "regions"}

    frame : str
        Frame of the map: the grid, the annuli and the sectors live in it.
    size : float or None
        grid: side of the square boxes, deg.
    within : SkyRegion or None
        grid: boxes are kept where their centre lies inside it.
    anchor : (lon, lat) or None
        grid: the centre of the box (0, 0) in ``frame``, deg: the map's centre, so that the
        grid is the same whatever ``within`` selects; the boxes are the pixels of a TAN
        projection tangent there.
    center : (lon, lat) or None
        annuli, sectors: their centre in ``frame``, deg.
    edges : tuple of float or None
        annuli: radii, deg, increasing.
    radius : float or None
        sectors: their outer radius, deg.
    n_sectors : int or None
        sectors: how many, equal angles, the first starting at position angle 0 (north of
        ``frame``), counted towards east.
    regions : tuple of SkyRegion
        regions: the given sub-regions.
    """

    kind: str
    frame: str
    size: float | None
    within: object | None
    anchor: tuple | None
    center: tuple | None
    edges: tuple | None
    radius: float | None
    n_sectors: int | None
    regions: tuple


@dataclass(frozen=True)
class SpatialFitSettings:
    """What the sub-regions' rows report (``spatial_fit``; no defaults here).  The fits
    themselves are the analysis's (``model``, ``fit``: :class:`~extspec.fit.FitOptions`,
    whose ``detection_ts_min`` decides between a fit and an upper limit).

    Attributes
    ----------
    flux_band : (float, float)
        TeV; the band of the integral flux (and its upper limit) in ``regions.ecsv``.
    """

    flux_band: tuple


@dataclass(frozen=True)
class SubRegion:
    """One sub-region: ``id`` (0, 1, ...), ``label``, its sky region, its grid cell ``ij``
    (grids; else None) and its profile coordinate ``coord`` (annuli: mid radius, deg;
    sectors: mid position angle, deg; else None)."""

    id: int
    label: str
    region: object
    ij: tuple | None
    coord: float | None


# ------------------------------------------------------------------------------ geometry --


def _offset(lon0: float, lat0: float, r, pa):
    """Points at great-circle distance ``r`` and position angle ``pa`` (deg, east of north)."""
    la0, r, pa = math.radians(lat0), np.radians(r), np.radians(pa)
    lat = np.arcsin(np.sin(la0) * np.cos(r) + np.cos(la0) * np.sin(r) * np.cos(pa))
    dlon = np.arctan2(np.sin(pa) * np.sin(r) * np.cos(la0), np.cos(r) - np.sin(la0) * np.sin(lat))
    return (lon0 + np.degrees(dlon)) % 360.0, np.degrees(lat)


def _inside(region, lon, lat, frame: str) -> np.ndarray:
    """Whether sky positions (deg, ``frame``) lie inside ``region`` (pixel test on a tangent
    plane at the region's centre, 1 deg per pixel)."""
    from .sky import Projection

    c = region.center.to(frame)
    proj = Projection.tangent(c.lon, c.lat, 1.0, (1.0, 1.0), frame)
    return region.to_pixel(proj).contains(*proj.world_to_pix(lon, lat))


def _grid_projection(bins: SpatialBinSettings):
    """The TAN projection of the grid: tangent at ``anchor``, one pixel per box."""
    from .sky import Projection

    return Projection.tangent(*bins.anchor, float(bins.size), (1.0, 1.0), bins.frame)


def _grid(bins: SpatialBinSettings) -> list:
    from .sky import SkyPoint
    from .skyregions import BoxSky

    proj = _grid_projection(bins)
    bb = bins.within.to_pixel(proj).bounding_box
    j, i = np.mgrid[int(math.floor(bb.iymin)) - 1: int(math.ceil(bb.iymax)) + 2,
                    int(math.floor(bb.ixmin)) - 1: int(math.ceil(bb.ixmax)) + 2]
    lon, lat = proj.pix_to_world(i.ravel(), j.ravel())
    keep = _inside(bins.within, lon, lat, bins.frame)
    out = []
    for ii, jj, lo, la in zip(i.ravel()[keep], j.ravel()[keep], lon[keep], lat[keep]):
        out.append(SubRegion(len(out), f"box ({int(ii)},{int(jj)})",
                             BoxSky(SkyPoint(float(lo), float(la), bins.frame), float(bins.size),
                                    float(bins.size), 0.0),
                             (int(ii), int(jj)), None))
    if not out:
        raise ConfigError(f"config key 'spatial_bins.grid': no box centre of the {bins.size} deg grid lies within "
                          f"{bins.within.to_ds9()}: use a larger 'within' region or smaller boxes")
    return out


def _polygon(lon0, lat0, parts, frame):
    from .skyregions import PolygonSky

    lons = np.concatenate([p[0] for p in parts])
    lats = np.concatenate([p[1] for p in parts])
    return PolygonSky(tuple(map(float, lons)), tuple(map(float, lats)), frame)


def _annuli(bins: SpatialBinSettings) -> list:
    """Annuli; an inner radius above 0 makes a keyhole polygon (the outer circle, then the
    inner one backwards, joined along a zero-width cut), which the even-odd containment of
    polygons reads as the ring."""
    from .sky import SkyPoint
    from .skyregions import CircleSky

    lon0, lat0 = bins.center
    out = []
    for k, (r0, r1) in enumerate(zip(bins.edges[:-1], bins.edges[1:])):
        if r0 <= 0:
            region = CircleSky(SkyPoint(lon0, lat0, bins.frame), float(r1))
        else:
            pa = np.linspace(0.0, 360.0, _ARC_POINTS + 1)
            region = _polygon(lon0, lat0, [_offset(lon0, lat0, r1, pa), _offset(lon0, lat0, r0, pa[::-1])],
                              bins.frame)
        out.append(SubRegion(k, f"annulus {r0:g}-{r1:g} deg", region, None, 0.5 * (r0 + r1)))
    return out


def _sectors(bins: SpatialBinSettings) -> list:
    lon0, lat0 = bins.center
    n = int(bins.n_sectors)
    out = []
    for k in range(n):
        a0, a1 = 360.0 * k / n, 360.0 * (k + 1) / n
        pa = np.linspace(a0, a1, max(2, int(math.ceil(_ARC_POINTS * (a1 - a0) / 360.0)) + 1))
        region = _polygon(lon0, lat0, [(np.array([lon0]), np.array([lat0])),
                                       _offset(lon0, lat0, bins.radius, pa)], bins.frame)
        out.append(SubRegion(k, f"sector {a0:g}-{a1:g} deg", region, None, 0.5 * (a0 + a1)))
    return out


def sub_regions(bins: SpatialBinSettings, geom=None) -> list:
    """The sub-regions of ``bins``, in order; with ``geom`` (the analysis's map, a
    :class:`~extspec.geometry.MapGeom`) boxes smaller than its pixels are refused."""
    if bins.kind == "grid":
        if geom is not None and float(bins.size) < float(geom.binsz):
            raise ConfigError(f"config key 'spatial_bins.grid.size': boxes of {bins.size} deg are smaller than the "
                              f"map's pixels ({geom.binsz} deg, key 'geom.binsz'): their counts would be "
                              "pixel noise; use boxes of at least one pixel")
        return _grid(bins)
    if bins.kind == "annuli":
        return _annuli(bins)
    if bins.kind == "sectors":
        return _sectors(bins)
    return [SubRegion(k, f"region {k}", r, None, None) for k, r in enumerate(bins.regions)]


def _samples(region, step: float = SOLID_ANGLE_STEP):
    """(lon, lat, weight sr) of a tangent-plane grid of ``step`` deg covering ``region``, the
    points inside it; the weight is each point's solid angle (TAN: cos^3 of the distance)."""
    from .sky import Projection

    c = region.center
    proj = Projection.tangent(c.lon, c.lat, step, (1.0, 1.0), c.frame)
    bb = region.to_pixel(proj).bounding_box
    y, x = np.mgrid[bb.iymin - 1: bb.iymax + 2, bb.ixmin - 1: bb.ixmax + 2].astype(float) + 0.5  # cell centres
    keep = region.to_pixel(proj).contains(x, y)
    lon, lat = proj.pix_to_world(x[keep], y[keep])
    rho = np.radians(step) * np.hypot(x[keep], y[keep])
    return lon, lat, np.radians(step) ** 2 * np.cos(np.arctan(rho)) ** 3


def solid_angle(region) -> float:
    """Solid angle of a sky region, sr (circles exact; other shapes counted on a
    :data:`SOLID_ANGLE_STEP` grid, a relative error ~1e-2 for a 0.1 deg box)."""
    from .skyregions import CircleSky

    if isinstance(region, CircleSky):
        return float(2 * math.pi * (1 - math.cos(math.radians(region.radius))))
    return float(_samples(region)[2].sum())


def overlap_warnings(subs) -> list:
    """One line per pair of sub-regions that overlap (their results are then correlated).
    Grid boxes, annuli and sectors tile the sky by construction; given regions are tested
    on each other's sample points."""
    out = []
    pts = {s.id: _samples(s.region) for s in subs}
    for a in subs:
        lon, lat, _ = pts[a.id]
        for b in subs:
            if b.id <= a.id or lon.size == 0:
                continue
            n = int(np.count_nonzero(_inside(b.region, lon, lat, a.region.center.frame)))
            if n:
                out.append(f"spatial_bins: sub-regions {a.id} ({a.region.to_ds9()}) and {b.id} "
                           f"({b.region.to_ds9()}) overlap: their results are correlated")
    return out


# ---------------------------------------------------------------------------------- fits --


REGION_UNITS = {
    "id": "", "label": "", "shape": "", "lon": "deg", "lat": "deg", "frame": "", "solid_angle": "sr",
    "n_runs": "", "obs_ids": "", "counts": "", "counts_off": "", "excess": "", "sqrt_ts": "", "status": "",
    "reason": "",
    "flux": "cm-2 s-1", "flux_err": "cm-2 s-1", "flux_ul": "cm-2 s-1", "ts": "",
}
"""Columns of ``regions.ecsv`` with units; each fitted parameter adds ``<name>`` and
``<name>_err`` in its own unit."""


def _integ(model_cfg, integration):
    from .ebl import spectral_model
    from .models import integrator

    return integrator(spectral_model(model_cfg), integration, "fit.integration")


def _band_flux(model, band, values: dict) -> float:
    return float(model.integral(np.array([band[0]]), np.array([band[1]]), **values)[0])


def _region_row(sub: SubRegion, data) -> dict:
    c = sub.region.center
    used = [int(d.obs_id) for d in data.datasets]
    n = float(np.sum(data.counts_masked)) if len(data) else 0.0
    m = float(np.sum(data.counts_off_masked)) if len(data) else 0.0
    exc = float(np.sum(data.counts_masked - data.alpha_masked * data.counts_off_masked)) if len(data) else 0.0
    return {"id": sub.id, "label": sub.label, "shape": sub.region.to_ds9(), "lon": c.lon, "lat": c.lat,
            "frame": c.frame, "solid_angle": solid_angle(sub.region), "n_runs": len(used),
            "obs_ids": " ".join(map(str, used)), "counts": int(n), "counts_off": int(m), "excess": exc}


UNIFORMITY_STATUSES = ("ok", "poor_fit")
"""Quality-gate statuses (:mod:`extspec.quality`) of the sub-region fits the uniformity test
takes: a measurement (an upper limit, a failed or unconstrained fit has no shape to compare)."""


def fit_regions(spectra_per_region, subs, model_cfg: dict, options, fit: SpatialFitSettings):
    """Fit every sub-region through the one quality gate: ``(rows, fits)``.

    ``spectra_per_region``: per sub-region (order of ``subs``) the list of its runs'
    :class:`~extspec.spectrum.SpectrumDataset`.  Each is fitted with
    :func:`extspec.fit.fit_joint`, whose verdict (:mod:`extspec.quality`) is the row's
    ``status`` (``ok``, ``not_detected``, ``poor_fit``, ...; ``reason`` says why).  A row holds
    counts, excess, ``ts``/``sqrt_ts`` (the gate's detection test: W without signal - W at the
    best fit), the fitted parameters with errors and the flux in ``fit.flux_band`` with its
    error propagated from the covariance; a ``not_detected`` sub-region gets instead the 95 %
    upper limit of that flux for the model's start shape (:func:`extspec.norms.flux_upper_limit`),
    and no parameters (an upper limit, not a fit of noise).  ``fits``: ``{id: (FitResult,
    JointData)}`` of the sub-regions whose status is in :data:`UNIFORMITY_STATUSES`, for
    :func:`uniformity_test`.
    """
    from .ebl import result_model
    from .fit import JointData, fit_joint, model_parameters
    from .norms import flux_upper_limit
    from .models import propagate_errors

    _, start = model_parameters(model_cfg)
    start_values = {p.name: p.value for p in start}
    integ = _integ(model_cfg, options.integration)
    rows, fits = [], {}
    for sub, spectra in zip(subs, spectra_per_region):
        data = JointData(spectra)
        row = _region_row(sub, data)
        row.update(sqrt_ts=float("nan"), ts=float("nan"), flux=float("nan"), flux_err=float("nan"),
                   flux_ul=float("nan"))
        rows.append(row)
        for p in start:
            if not p.frozen:
                row[p.name], row[p.name + "_err"] = float("nan"), float("nan")
        res = fit_joint(spectra, model_cfg, options, data=data)
        row.update(status=res.status, reason=res.quality.reason if res.quality is not None else res.message)
        det = (res.quality.checks.get("detection") if res.quality is not None else None) or {}
        if "ts" in det:
            row.update(ts=float(det["ts"]), sqrt_ts=float(np.sqrt(max(det["ts"], 0.0))))
        if res.status == "not_detected":
            ul = flux_upper_limit([(data, integ(data.e_min, data.e_max, start_values))],
                                  lambda e1, e2: integ(e1, e2, start_values), fit.flux_band,
                                  "the model at its start values (model.parameters)")
            row["flux_ul"] = ul["flux_ul"]
            continue
        if not res.success:
            continue
        for p in res.parameters:
            if not p.frozen:
                row[p.name], row[p.name + "_err"] = float(p.value), float(p.error)
        model = result_model(res)
        names, cov = res.free_covariance()
        f, ferr = propagate_errors(lambda _x, **v: np.array([_band_flux(model, fit.flux_band, v)]), None,
                                   res.values, names, cov)
        row.update(flux=float(f[0]), flux_err=float(ferr[0]))
        if res.status in UNIFORMITY_STATUSES:
            fits[sub.id] = (res, data)
    return rows, fits


def common_shape_stat(fits: dict, ids: list, shape: list, frozen: dict, model_cfg: dict, options):
    """The statistic of :func:`uniformity_test`'s null hypothesis: ``stat({name: value})`` with
    the ``shape`` parameters common and ``amplitude_<id>`` per sub-region, the WStat of every
    sub-region's runs summed.  All runs of all sub-regions are stacked into one
    :class:`~extspec.fit.JointData`, each with its sub-region's flux: one vectorised WStat per
    call, the same terms as the sub-regions' own statistics summed in another order (equal to
    1e-12 relative)."""
    from .fit import JointData

    integ = _integ(model_cfg, options.integration)
    data = JointData([d for k in ids for d in fits[k][1].datasets])
    region_of = np.repeat(np.arange(len(ids)), [len(fits[k][1]) for k in ids])

    def stat(v):
        common = {**frozen, **{name: v[name] for name in shape}}
        flux = np.array([integ(data.e_min, data.e_max, {**common, "amplitude": v[f"amplitude_{k}"]}) for k in ids])
        return data.stat(flux[region_of])

    return stat


def uniformity_test(fits: dict, model_cfg: dict, options) -> dict:
    """Is the spectral shape the same in every fitted sub-region?

    ``fits``: ``{id: (FitResult, JointData)}`` of :func:`fit_regions` (statuses
    :data:`UNIFORMITY_STATUSES`).  The null hypothesis fits one shape to all of them at once (shape
    parameters tied, one amplitude per sub-region, WStat summed); the alternative is the
    sum of the free fits.  ``ts = W_common - sum W_free``, ``dof = (n - 1) x n_shape``,
    ``p_value = P(chi2_dof > ts)`` (Wilks: approximate when a sub-region has few counts,
    listed in ``few_counts``; sub-regions overlapping each other are not independent).
    """
    from .fit import Parameter, minimise
    from .stats import chi2_sf, p_to_sigma

    ids = sorted(fits)
    out = {"test": "likelihood ratio: one spectral shape for all fitted sub-regions (shape parameters tied, "
                   "amplitudes free) against free shapes; WStat; Wilks' theorem",
           "regions": ids, "n_regions": len(ids)}
    if len(ids) < 2:
        return {**out, "ts": None, "dof": 0, "p_value": None, "note": "fewer than 2 fitted sub-regions: no test"}
    first = fits[ids[0]][0]
    shape = [p for p in first.parameters if not p.frozen and p.name != "amplitude"]
    if not shape or not any(p.name == "amplitude" and not p.frozen for p in first.parameters):
        return {**out, "ts": None, "dof": 0, "p_value": None, "note": "the model has no free shape parameter"}
    best = max(ids, key=lambda k: fits[k][1].counts_masked.sum())
    frozen = {p.name: p.value for p in first.parameters if p.frozen}
    params = [Parameter(p.name, fits[best][0].values[p.name], p.unit, False, p.min, p.max) for p in shape]
    params += [Parameter(f"amplitude_{k}", fits[k][0].values["amplitude"], "", False, 0.0, None) for k in ids]
    m = minimise(params, common_shape_stat(fits, ids, [p.name for p in shape], frozen, model_cfg, options), options)
    w_free = float(sum(fits[k][0].total_stat for k in ids))
    ts = max(float(m.fval) - w_free, 0.0)
    dof = (len(ids) - 1) * len(shape)
    p = float(chi2_sf(ts, dof))
    few = [k for k in ids if (fits[k][1].counts_masked - fits[k][1].alpha_masked * fits[k][1].counts_off_masked).sum()
           < FEW_COUNTS_EXCESS]
    return {**out, "ts": ts, "dof": dof, "p_value": p, "significance": float(p_to_sigma(p)),
            "w_common": float(m.fval), "w_free": w_free, "common_fit_success": bool(m.success),
            "common_shape": {q.name: {"value": float(q.value), "error": float(q.error), "unit": q.unit}
                             for q in params[:len(shape)]},
            "few_counts": few,
            "validity": ("Wilks' theorem holds asymptotically; " +
                         (f"sub-regions {few} have an excess below {FEW_COUNTS_EXCESS:g} counts: the p-value is "
                          "approximate" if few else "every fitted sub-region has enough counts"))}


def grid_images(rows, subs, bins, shape_names) -> tuple[dict, dict]:
    """The per-box quantities of a grid as images on the grid's TAN WCS.

    ``rows``: the ``regions.ecsv`` rows of ``subs`` (the grid's boxes, each with its grid index
    ``ij``); ``shape_names``: ``(parameter, unit)`` of the fitted shape parameters.  Returns
    ``({EXTNAME: (image, column, unit)}, wcs_cards)``: FLUX, FLUX_ERR, FLUX_UL, SQRT_TS, each
    shape parameter and its error (float32, NaN where no box or no measurement) and SUBREGION
    (int32 row id, -1 where no box); the WCS cards place pixel (i, j) on box (i, j).
    """
    proj = _grid_projection(bins)
    ii = np.array([s.ij[0] for s in subs])
    jj = np.array([s.ij[1] for s in subs])
    i0, j0 = ii.min(), jj.min()
    shape = (jj.max() - j0 + 1, ii.max() - i0 + 1)
    wcs = dict(proj.header_cards())
    wcs["CRPIX1"], wcs["CRPIX2"] = float(1 - i0), float(1 - j0)
    names = {"FLUX": ("flux", "cm-2 s-1"), "FLUX_ERR": ("flux_err", "cm-2 s-1"), "FLUX_UL": ("flux_ul", "cm-2 s-1"),
             "SQRT_TS": ("sqrt_ts", ""), "SUBREGION": ("id", "")}
    for p, unit in shape_names:
        names[p.upper()] = (p, unit)
        names[p.upper() + "_ERR"] = (p + "_err", unit)
    out = {}
    for ext, (col, unit) in names.items():
        img = np.full(shape, np.nan if col != "id" else -1.0)
        img[jj - j0, ii - i0] = [r[col] for r in rows]
        out[ext] = (img.astype(np.float32 if col != "id" else np.int32), col, unit)
    return out, wcs
