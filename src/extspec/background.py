"""Template (``fov``) and ``ring`` backgrounds: OFF counts from a large area of the field of
view, alpha per reco-energy bin from the background IRF.

Reflected and wobble regions (:mod:`extspec.reflected`) take the OFF counts from copies of the
ON region at the same offset, so that the acceptance cancels and alpha = 1 / (number of copies).
Extended sources, crowded fields (exclusions) and runs pointed at the source leave no room
for such copies.  Here the OFF area is larger and need not sit at the ON offset; the
background IRF (BKG_3D / BKG_2D) gives the shape of the background across the field, the
OFF counts its normalisation:

``fov``
    OFF area = every position of the field of view within ``r_max`` of the pointing, outside
    the ON region and the exclusion regions;
``ring``
    OFF area = the annulus ``inner <= distance from the ON-region centre < outer`` (deg),
    within ``r_max`` of the pointing, outside the ON region and the exclusion regions.

``r_max`` is the smaller of the safe offset (``safe_mask.offset_max``) and the reach of the
background IRF (where it predicts events at all).  Per reco-energy bin k,

    alpha_k = B_on,k / B_off,k

with B the counts the background IRF predicts (rate x livetime x solid angle, integrated over
the bin, as :func:`extspec.cube.make_background`; summed by :func:`extspec.cube.background_in_mask`)
inside the ON region and inside the OFF area.
The spectrum stores ``acceptance = 1`` and ``acceptance_off = B_off,k / B_on,k`` (the OGIP
``BACKSCAL`` column of the BKG file), so that WStat, stacking and the light curves take the
per-bin alpha as they take the reflected one.  The ratio ``counts_off_k / B_off,k`` is the
background normalisation the data fit (:func:`normalisation_check`).

Geometry.  The OFF area is a boolean mask on a TAN grid centred on the pointing (fov) or on
the ON region (ring: just holding the ring), of :data:`FOV_BINSZ` pixels at most (pixel
centres tested); an event is an OFF event when its grid pixel
is in the mask (and it is not an ON event), so that events and predicted counts cover exactly
the same pixels.  The ON region and the exclusions are grown by one pixel before they are
cut out, so that no pixel partly inside them counts.  Everything but the ON region's cut
(grid, offsets, FoV positions, the IRF's reach, the exclusions) is a :class:`FovTemplate`,
made once per run for all the ON regions of spatially resolved spectra.  The ON prediction samples the region
on a grid of about :data:`ON_SAMPLES` pixels across it with the containment rule its ON
events follow (great-circle distance for circles, the finder frame for other shapes,
``reference``: the cube pixels whose centres are inside), rescaled to the exact area for
circles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FOV_METHODS", "FOV_BINSZ", "ON_SAMPLES", "FovBackground", "FovTemplate", "fov_template",
           "find_fov_background", "off_events",
           "off_band_counts", "normalisation_check", "background_record", "NORM_CHECK_SIGMA", "NORM_CHECK_SYSTEMATIC", "RING_PIXELS"]

FOV_METHODS = ("fov", "ring")
"""Background methods whose alpha comes from the background IRF."""

FOV_BINSZ = 0.1
"""deg; pixel size of the OFF-area grid about the pointing (fov; at most that for ring).  The
events follow the same pixels, so the pixel size sets only how closely the OFF area hugs the
ON region and the exclusions (they are cut out grown by one pixel) and how finely the
background rate is sampled (at pixel centres; H.E.S.S. DR1 tables have 0.1 deg nodes)."""

RING_PIXELS = 6
"""Pixels across the ring's width at least (the ring grid's pixel size is at most
(outer - inner) / RING_PIXELS)."""

ON_SAMPLES = 40
"""Sampling pixels across the ON region for its predicted background (0.002-0.05 deg each)."""

NORM_CHECK_SIGMA = 3.0
"""A background normalisation further than this many standard deviations from the others is
reported (:func:`normalisation_check`)."""

NORM_CHECK_SYSTEMATIC = 0.03
"""Fractional accuracy expected of a background IRF in the normalisation check: a deviation
must also exceed ``n_sigma`` times this (9 % at 3 sigma), since background IRFs describe real
fields to a few per cent (e.g. the H.E.S.S. DR1 templates), and with ~10^4 OFF events per run
statistics alone would name every run."""


@dataclass
class FovBackground:
    """The OFF area of a ``fov`` or ``ring`` background for one run.

    Attributes
    ----------
    method : {"fov", "ring"}

    geom : MapGeom or None
        The OFF-area grid (TAN about the pointing, frame of the ON region).
    off_mask : (ny, nx) bool
        Pixels of the OFF area.
    background_on, background_off : (n_reco,) float64
        Counts predicted by the background IRF inside the ON region and the OFF area.
    grid, on_pixel_region
        The reflected finder's grid about the pointing and the ON region on it (the exact
        method tests non-circular ON regions there, as for reflected regions).
    info : dict
        ``reason`` (why there is no OFF area), ``r_max`` (deg), ``off_solid_angle`` (sr),
        ``pointing_inside``, ``offset_split`` (deg: the median offset of the OFF area).
    bands, background_off_bands
        The OFF area's inner and outer halves (split at ``offset_split``, by solid angle) and
        the counts the IRF predicts in each per bin: they test the IRF's offset shape
        (:func:`off_band_counts`, :func:`normalisation_check`).
    """

    method: str
    geom: object
    off_mask: np.ndarray
    background_on: np.ndarray
    background_off: np.ndarray
    grid: object = None
    on_pixel_region: object = None
    info: dict = field(default_factory=dict)
    regions: list = field(default_factory=list)  # no OFF regions to draw
    pixel_regions: list = field(default_factory=list)
    bands: np.ndarray | None = None  # (ny, nx) int8: 0 inner, 1 outer half of the OFF area, -1 outside
    background_off_bands: np.ndarray | None = None  # (n_reco, 2) predicted counts in the two halves

    @property
    def usable(self) -> bool:
        return not self.info.get("reason")

    def __len__(self):
        return int(self.usable)

    @property
    def acceptance_off(self) -> np.ndarray:
        """B_off / B_on per bin (0 where either prediction vanishes: alpha undefined)."""
        on, off = self.background_on, self.background_off
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((on > 0) & (off > 0), off / np.where(on > 0, on, 1.0), 0.0)


def _bkg_reach(bkg) -> float:
    """Largest offset (deg) inside the background IRF's table in every direction."""
    if hasattr(bkg, "offset"):
        return float(bkg.offset.edges[-1])
    return float(min(np.abs(bkg.fov_lon.edges[[0, -1]]).min(), np.abs(bkg.fov_lat.edges[[0, -1]]).min()))


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel (8-neighbourhood)."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def _on_prediction(obs, cube, sel, grid, on_pix, method: str) -> np.ndarray:
    """Background counts (n_reco,) the IRF predicts inside the ON region, by the containment
    rule of its ON events (see the module docstring)."""
    from .cube import background_in_mask, fov_positions
    from .geometry import MapGeom
    from .reflected import FINDER_BINSZ
    from .skyregions import CircleSky

    if method == "reference":
        from .skyregions import region_pixel_mask

        return cube.background[:, region_pixel_mask(sel.region, cube.geom)].sum(axis=1)
    bb = on_pix.bounding_box
    extent = max(bb.ixmax - bb.ixmin, bb.iymax - bb.iymin, 1) * FINDER_BINSZ  # deg
    step = float(np.clip(extent / ON_SAMPLES, 0.002, 0.05))
    lon0, lat0 = sel.region.center.lonlat(sel.frame)
    fine = MapGeom.create(lon0, lat0, extent + 4 * step, step, sel.frame, "TAN")
    lon, lat = fine.pixel_centers()
    if isinstance(sel.region, CircleSky):
        inside = sel.region.contains_lonlat(lon, lat, sel.frame)
    else:
        inside = on_pix.contains(*grid.wcs.world_to_pix(lon, lat))
    if not inside.any():
        return np.zeros(cube.energy_reco.nbin)
    omega = fine.solid_angle()
    pred = background_in_mask(obs, fine, inside, cube.energy_reco, omega, fov_positions(obs, fine, (lon, lat)))
    if isinstance(sel.region, CircleSky):  # the exact area of the circle
        pred = pred * (2 * np.pi * (1 - np.cos(np.deg2rad(sel.region.radius)))) / float(omega[inside].sum())
    return pred


@dataclass(frozen=True)
class FovTemplate:
    """The part of an OFF area that does not depend on the ON region: the grid, its pixel
    centres and their offsets from the pointing, FoV positions and solid angles, and the
    pixels within ``r_max`` of the pointing where the background IRF predicts events, outside
    the exclusion regions (grown by one pixel).  The ON region (grown by one pixel) is cut out
    of ``mask`` per region (:func:`find_fov_background`); a ``fov`` template is made once per
    run for every ON region (:class:`extspec.spectrum.RunShare`)."""

    geom: object
    lon: np.ndarray
    lat: np.ndarray
    offset: np.ndarray
    positions: tuple
    omega: np.ndarray
    mask: np.ndarray


def fov_template(obs, geom, pointing_lonlat, r_max: float, exclusion_regions) -> FovTemplate:
    """The :class:`FovTemplate` of ``geom`` for a run (``pointing_lonlat`` in the grid's frame;
    ``r_max`` already cut to the background IRF's reach)."""
    from .cube import background_predicted_at, fov_positions
    from .sky import separation
    from .skyregions import parse_regions, region_pixel_mask

    lon, lat = geom.pixel_centers()
    offset = separation(lon, lat, *pointing_lonlat)
    mask = offset < r_max
    positions = fov_positions(obs, geom, (lon, lat))
    mask &= background_predicted_at(obs, geom, positions)
    for ex in parse_regions(list(exclusion_regions), "exclusion_regions"):
        mask &= ~_grow(region_pixel_mask(ex, geom))
    return FovTemplate(geom, lon, lat, offset, positions, geom.solid_angle(), mask)


def find_fov_background(obs, cube, sel, exclusion_regions, method: str, kind: str, r_max: float,
                        ring: tuple | None, share=None) -> FovBackground:
    """The OFF area and the predicted ON and OFF background of one run (``kind``: fov or ring).

    ``sel``: the run's :class:`extspec.spectrum.OnSelection`; ``method``: exact or reference
    (how the ON region is sampled); ``r_max``: the safe offset (deg), cut further to the reach
    of the background IRF; ``ring``: ``(inner, outer)`` deg from the ON-region centre for
    ``ring``.  Without a background IRF, with point-like IRFs or with an empty OFF area the
    result has ``info['reason']`` and no OFF area (the spectrum is then unusable or falls back).
    ``share``: the run's :class:`extspec.spectrum.RunShare`: the ``fov`` template
    (:func:`fov_template`) is then made once for all the run's ON regions.
    """
    from .cube import background_in_mask
    from .geometry import MapGeom
    from .reflected import _finder_setup
    from .sky import separation
    from .skyregions import region_pixel_mask

    nreco = cube.energy_reco.nbin
    zeros = np.zeros(nreco)

    grid = on_pix = None
    if not sel.point_like:
        region, grid, on_pix, _, _ = _finder_setup(sel.region, sel.pointing)

    def none(reason, **extra):
        return FovBackground(kind, None, np.zeros((0, 0), bool), zeros, zeros.copy(), grid, on_pix,
                             info={"reason": reason, "method": kind, **extra})

    if sel.point_like:
        return none(f"point-like IRFs: background method '{kind}' needs full-enclosure IRFs (RAD_MAX varies the "
                    "ON region per energy bin)")
    if obs.bkg is None:
        why = f": {obs.bkg_error}" if getattr(obs, "bkg_error", None) else ""
        return none(f"no background IRF{why} (background method '{kind}' needs one)")
    r_max = float(min(r_max, _bkg_reach(obs.bkg)))
    plon, plat = sel.pointing.lonlat(sel.frame)
    if kind == "ring":  # a grid about the ON centre just holding the ring, fine enough for its width
        binsz = min(FOV_BINSZ, (ring[1] - ring[0]) / RING_PIXELS)
        clon, clat = region.center.lonlat(sel.frame)
        geom = MapGeom.create(clon, clat, 2 * ring[1] + 2 * binsz, binsz, sel.frame, "TAN")
        tpl = fov_template(obs, geom, (plon, plat), r_max, exclusion_regions)
    else:  # the grid about the pointing: the same for every ON region of the run
        def make():
            geom = MapGeom.create(plon, plat, 2 * r_max + 2 * FOV_BINSZ, FOV_BINSZ, sel.frame, "TAN")
            return fov_template(obs, geom, (plon, plat), r_max, exclusion_regions)

        tpl = make() if share is None else share.get(("fov_template", sel.frame), make)
    geom, lon, lat, offset, positions, omega = tpl.geom, tpl.lon, tpl.lat, tpl.offset, tpl.positions, tpl.omega
    mask = tpl.mask & ~_grow(region_pixel_mask(region, geom))
    if kind == "ring":
        inner, outer = ring
        clon, clat = region.center.lonlat(sel.frame)
        d = separation(lon, lat, clon, clat)
        mask &= (d >= inner) & (d < outer)
    info = {"method": kind, "r_max": r_max, "ring": tuple(ring) if kind == "ring" else (), "pointing_inside": bool(
        sel.offset == 0.0 or on_pix.contains(*grid.pointing_pix)), "off_solid_angle": float(omega[mask].sum())}
    if not mask.any():
        where = f"ring {ring[0]}-{ring[1]} deg" if kind == "ring" else "field of view"
        return none(f"no OFF area: the {where} within {r_max:.2f} deg of the pointing lies inside the ON region or "
                    "the exclusion regions", r_max=r_max)
    # the OFF area split at its median offset (by solid angle): the inner and outer halves test
    # the IRF's offset shape (normalisation_check)
    order = np.argsort(offset[mask])
    cum = np.cumsum(omega[mask][order])
    r_split = float(offset[mask][order][np.searchsorted(cum, 0.5 * cum[-1])])
    inner = mask & (offset < r_split)
    b_in = background_in_mask(obs, geom, inner, cube.energy_reco, omega, positions)
    b_out = background_in_mask(obs, geom, mask & ~inner, cube.energy_reco, omega, positions)
    info["offset_split"] = r_split
    bands = np.where(mask, np.where(inner, 0, 1), -1).astype(np.int8)
    b_on = _on_prediction(obs, cube, sel, grid, on_pix, method)
    return FovBackground(kind, geom, mask, b_on, b_in + b_out, grid, on_pix, info, bands=bands,
                         background_off_bands=np.stack([b_in, b_out], axis=1))


def off_events(off: FovBackground, ev_lon, ev_lat, share=None) -> np.ndarray:
    """Events (positions in the frame of ``off.geom``) whose OFF-grid pixel is in the OFF area
    (``share``: the run's :class:`extspec.spectrum.RunShare`, projecting the events once)."""
    from .cube import pixel_index

    if off.geom is None:
        return np.zeros(np.shape(ev_lon), bool)
    if share is None or off.method != "fov":  # a ring's grid is the ON region's own: nothing to share
        ix, iy = pixel_index(off.geom, ev_lon, ev_lat)
    else:
        ix, iy = share.pixel_index(off.geom, ev_lon, ev_lat)
    ok = ix >= 0
    return ok & off.off_mask[np.where(ok, iy, 0), np.where(ok, ix, 0)]


def _significance(n: float, b: float, n_rest: float, b_rest: float) -> float:
    """Li & Ma significance of ``n`` OFF counts where the IRF predicts ``b``, against the norm
    ``n_rest / b_rest`` of the rest (an ON/OFF problem with alpha = b / b_rest; signed)."""
    from .stats import li_ma_significance

    if b_rest <= 0 or b <= 0:
        return 0.0
    return float(li_ma_significance(n, n_rest, b / b_rest))


def _strays(n: float, b: float, n_rest: float, b_rest: float, n_sigma: float) -> bool:
    """``n`` OFF counts (IRF prediction ``b``) stray from the norm of the rest: beyond
    ``n_sigma`` in Li & Ma significance and beyond ``n_sigma`` times the systematic floor
    :data:`NORM_CHECK_SYSTEMATIC` in relative deviation."""
    if b_rest <= 0 or b <= 0 or n_rest <= 0:
        return False
    expect = b * n_rest / b_rest
    return (abs(_significance(n, b, n_rest, b_rest)) > n_sigma
            and abs(n - expect) > n_sigma * NORM_CHECK_SYSTEMATIC * expect)


def off_band_counts(off: FovBackground, ev_lon, ev_lat, off_ev, kbin, nreco: int, share=None) -> np.ndarray:
    """OFF counts (n_reco, 2) in the inner and outer halves of the OFF area (events ``off_ev``
    with their reco-energy bins ``kbin``; ``share`` as for :func:`off_events`)."""
    from .cube import pixel_index

    if share is None or off.method != "fov":
        ix, iy = pixel_index(off.geom, ev_lon[off_ev], ev_lat[off_ev])
    else:
        ix, iy = (a[off_ev] for a in share.pixel_index(off.geom, ev_lon, ev_lat))
    band = off.bands[iy, ix].astype(np.int64)
    return np.bincount(kbin[off_ev] * 2 + band, minlength=2 * nreco).reshape(nreco, 2).astype(np.int64)


def normalisation_check(spectra, n_sigma: float = NORM_CHECK_SIGMA) -> dict:
    """The background normalisation of each ``fov``/``ring`` run, and where it strays.

    Per run and safe reco-energy bin, norm_k = counts_off_k / B_off,k (OFF counts over the
    counts the background IRF predicts in the OFF area; meta ``background_off_predicted``),
    Poisson error sqrt(counts_off_k) / B_off,k.  A run's norm is the ratio of its sums over
    the safe bins.  A comparison strays when it is beyond ``n_sigma`` both in Li & Ma
    significance (the OFF counts of the bin or run against the norm of the others: an ON/OFF
    problem, right for few counts too) and in relative deviation over the
    :data:`NORM_CHECK_SYSTEMATIC` floor.  Reported:

    * ``bins``: a bin whose norm differs from the run's norm over its other safe bins by more
      than ``n_sigma`` standard deviations (the background IRF's energy shape is off there);
    * ``runs``: a run whose norm differs from the norm of the other runs by more than
      ``n_sigma`` (the IRF's normalisation or shape is off in that field);
    * the offset shape: a run whose norm in the inner half of its OFF area (by solid angle,
      split at its median offset from the pointing) differs from the outer half's
      (``norm_inner``, ``norm_outer``, ``offset_shape_significance``): the IRF's shape across
      the field, on which alpha rests, does not describe the run.

    Returns ``{"runs": {obs_id: {"norm", "norm_err", "method", "bins_off": [...],
    "significance_vs_other_runs"}}, "warnings": [one line each], "n_sigma", "systematic"}``;
    empty ``runs`` without a fov or ring run.
    """
    runs, warnings, tot = {}, [], []
    for s in spectra:
        pred = s.meta.get("background_off_predicted")
        if not pred or not s.usable:
            continue
        b = np.asarray(pred, float)
        m = np.asarray(s.mask_safe, bool) & (b > 0)
        if not m.any():
            continue
        n = np.asarray(s.counts_off, float)
        n_sum, b_sum = float(n[m].sum()), float(b[m].sum())
        norm = n_sum / b_sum
        strays = []
        for k in np.flatnonzero(m):
            n_rest, b_rest = n_sum - n[k], b_sum - b[k]
            if b_rest <= 0:
                continue
            if _strays(n[k], b[k], n_rest, b_rest, n_sigma):
                strays.append(int(k))
        runs[int(s.obs_id)] = {"norm": norm, "norm_err": float(np.sqrt(n_sum) / b_sum), "method":
                               str(s.meta.get("background", "")), "bins_off": strays}
        bands_n, bands_b = s.meta.get("background_off_counts_bands"), s.meta.get("background_off_predicted_bands")
        if bands_n and bands_b:  # the IRF's offset shape: inner against outer half of the OFF area
            (n_in, n_out), (b_in, b_out) = (np.asarray(a, float)[m].sum(axis=0) for a in (bands_n, bands_b))
            r = runs[int(s.obs_id)]
            r.update(norm_inner=float(n_in / b_in) if b_in > 0 else float("nan"),
                     norm_outer=float(n_out / b_out) if b_out > 0 else float("nan"),
                     offset_split=float(s.meta.get("background_offset_split", float("nan"))),
                     offset_shape_significance=_significance(n_in, b_in, n_out, b_out))
            if _strays(n_in, b_in, n_out, b_out, n_sigma):
                warnings.append(
                    f"obs {s.obs_id}: background normalisation {r['norm_inner']:.3f} in the inner half of the OFF "
                    f"area (offsets below {r['offset_split']:.2f} deg) differs from {r['norm_outer']:.3f} in the "
                    f"outer half by more than {n_sigma:g} sigma: the background IRF's offset shape does not "
                    "describe this run, and alpha, which rests on it, is biased")
        tot.append((int(s.obs_id), n_sum, b_sum))
        if strays:
            edges = s.energy_reco.edges
            where = ", ".join(f"{edges[k]:.3g}-{edges[k + 1]:.3g} TeV" for k in strays)
            warnings.append(f"obs {s.obs_id}: background normalisation (OFF counts / background IRF) in {where} "
                            f"differs from the run's other bins by more than {n_sigma:g} sigma: the background "
                            "IRF's energy shape does not describe this run")
    if len(tot) > 1:
        # each run against the pooled norm of the others; a run found straying is left out of the
        # others' pool (worst first), so that one bad field does not make the good ones look off
        flagged: set = set()

        def pull(i):
            rest = [t for j, t in enumerate(tot) if j != i and j not in flagged]
            n_rest, b_rest = sum(t[1] for t in rest), sum(t[2] for t in rest)
            if b_rest <= 0:
                return 0.0, float("nan")
            _, n_sum, b_sum = tot[i]
            return _significance(n_sum, b_sum, n_rest, b_rest), n_rest / b_rest

        def off(i):
            rest = [t for j, t in enumerate(tot) if j != i and j not in flagged]
            return _strays(tot[i][1], tot[i][2], sum(t[1] for t in rest), sum(t[2] for t in rest), n_sigma)

        while len(tot) - len(flagged) > 2:
            pulls = {i: abs(pull(i)[0]) for i in range(len(tot)) if i not in flagged and off(i)}
            if not pulls:
                break
            flagged.add(max(pulls, key=pulls.get))
        for i, (obs_id, n_sum, b_sum) in enumerate(tot):
            p, others = pull(i)
            runs[obs_id]["significance_vs_other_runs"] = p
            if off(i):
                warnings.append(f"obs {obs_id}: background normalisation {n_sum / b_sum:.3f} differs from the "
                                f"other runs' {others:.3f} by more than {n_sigma:g} sigma: the background "
                                "IRF does not describe this run's field")
    return {"runs": runs, "warnings": warnings, "n_sigma": float(n_sigma), "systematic": NORM_CHECK_SYSTEMATIC}


def background_record(spectra) -> dict:
    """The ``background`` entry of ``result.yaml``: the method each run used (``methods``:
    method -> number of runs, ``runs``: obs id -> method, ``fallbacks``: obs id -> why the
    configured method failed) and, for fov and ring runs, the background normalisation check
    (:func:`extspec.background.normalisation_check`: OFF counts over the background IRF's
    prediction per run, the runs and energy bins that stray beyond their statistics)."""
    runs = {int(s.obs_id): str(s.meta.get("background", "reflected")) for s in spectra if s.usable}
    methods = {}
    for m in runs.values():
        methods[m] = methods.get(m, 0) + 1
    out = {"methods": methods, "runs": runs}
    fallbacks = {int(s.obs_id): f"{s.meta['background_fallback_from']}: {s.meta['background_fallback_reason']}"
                 for s in spectra if s.usable and s.meta.get("background_fallback_from")}
    if fallbacks:
        out["fallbacks"] = fallbacks
    check = normalisation_check([s for s in spectra if s.usable])
    if check["runs"]:
        out["normalisation_check"] = {
            "what": "OFF counts / counts predicted by the background IRF in the OFF area, summed over the "
                    "run's safe bins (fov and ring runs); norm_inner, norm_outer: the same in the inner and "
                    "outer half of the OFF area (split at offset_split deg from the pointing), "
                    "offset_shape_significance: Li & Ma significance of their difference (the IRF's offset "
                    "shape, on which alpha rests); bins_off: reco-energy bins straying from the run's "
                    "other bins, significance_vs_other_runs: Li & Ma significance of the run's OFF counts "
                    "against the other runs' norm; a bin or run strays beyond n_sigma in significance "
                    "and beyond n_sigma x systematic in relative deviation",
            "n_sigma": check["n_sigma"], "systematic": check["systematic"], "runs": check["runs"],
            "warnings": check["warnings"]}
    return out
