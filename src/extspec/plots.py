"""Diagnostic PNG plots of the analysis products (matplotlib, Agg backend).

Figures are made with :class:`matplotlib.figure.Figure` and rendered by
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` directly: ``matplotlib.pyplot``
(backend selection, figure manager) adds ~0.2 s to the import of a job that draws one plot.
Labels use Unicode text (σ, √TS, 10⁻¹¹), not mathtext, whose parser costs ~60 ms on first use.
The counts image is drawn in pixel space with a sky-coordinate grid and tick labels computed
from the map's own pixel <-> sky conversion, not with astropy's WCSAxes (~0.15 s of imports
on top of astropy.wcs); see :func:`plot_counts_image` and the grid's own code,
:class:`extspec.sky.SkyPixels` and :func:`extspec.sky.sky_grid`.

The image smoothing (:func:`extspec.maps.gaussian_smooth`) and the model's error band
(:func:`extspec.models.sed_butterfly`) are computed in their stage modules; this module only
draws.  Every plot is written atomically (:func:`extspec.io.atomic.atomic_path`: a uniquely named
temporary file in the same directory, renamed over ``out_png``), so a reader never sees a
half-written file and no temporary file is left behind, even on error.

Functions
---------
plot_counts_image(image, geom, out_png, on_region, off_regions, exclusion_regions, ...)
    Smoothed counts map in sky coordinates with the ON / OFF / exclusion regions.
plot_spectrum_fit(energy_edges, counts, counts_off, alpha, npred_sig, mask_safe, out_png)
    Stacked excess spectrum with the predicted signal counts and the residuals.
plot_sed(flux_points, model_dnde, energy_range, out_png, butterfly=None)
    Flux points, upper limits, best-fit model and its 1-sigma butterfly (E^2 dN/dE).
plot_cumulative(rows, out_png)
    Excess and sqrt(TS) against the cumulative livetime.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .maps import gaussian_smooth
from .sky import SkyPixels, sky_grid

__all__ = [
    "plot_counts_image",
    "plot_spectrum_fit",
    "plot_sed",
    "plot_cumulative",
    "plot_light_curve",
    "plot_spectra_vs_time",
]

from .figures import _DPI, _TIGHT_PAD_INCHES, _figure, _fixed_layout, _save  # noqa: F401 (plots_spatial, tests)

# OFF-region colours per observation: visible on the viridis map, distinct from the white
# ON region and the red exclusion regions.
_OFF_COLOURS = ["cyan", "magenta", "orange", "lime", "deepskyblue", "yellow", "violet", "springgreen",
                "gold", "lightpink"]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
_MATH_POWER = re.compile(r"^\$\\mathdefault\{(?:(?P<m>[0-9.]+)\\times)?10\^\{(?P<e>-?\d+)\}\}\$$")


def _unicode_power(label: str) -> str:
    """'$\\mathdefault{2\\times10^{-11}}$' -> '2×10⁻¹¹'; any other label is returned unchanged."""
    m = _MATH_POWER.match(label)
    if m is None:
        return label
    power = "10" + m["e"].translate(_SUPERSCRIPT)
    return f"{m['m']}\u00d7{power}" if m["m"] else power


def _unicode_log_ticks(*axes) -> None:
    """Tick labels of log-scaled axes as Unicode text ('10⁻¹¹') instead of mathtext.

    matplotlib labels log axes with mathtext, whose parser costs ~60 ms on first use in a
    fresh process.  Each axis keeps its own log formatters (same ticks, same choice of
    labelled minor ticks); only the label strings are converted.  Call after set_*scale.
    """
    from matplotlib.ticker import Formatter

    class UnicodePowers(Formatter):
        def __init__(self, inner):
            self.inner = inner

        def set_axis(self, axis):
            super().set_axis(axis)
            self.inner.set_axis(axis)

        def set_locs(self, locs):
            self.inner.set_locs(locs)

        def __call__(self, x, pos=None):
            return _unicode_power(self.inner(x, pos))

        def format_data(self, value):
            return self.inner.format_data(value)

        def format_data_short(self, value):
            return self.inner.format_data_short(value)

        def get_offset(self):
            return self.inner.get_offset()

    for axis in axes:
        axis.set_major_formatter(UnicodePowers(axis.get_major_formatter()))
        axis.set_minor_formatter(UnicodePowers(axis.get_minor_formatter()))


def _no_data(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4")


def _region_texts(spec) -> list:
    """Flatten a region spec (DS9 string, .reg path, region object(s), list) into items."""
    if spec is None:
        return []
    if isinstance(spec, (str, Path)):
        s = str(spec).strip()
        if not s:
            return []
        if s.endswith(".reg") and "(" not in s and Path(s).is_file():
            s = Path(s).read_text()
        return [s]
    if isinstance(spec, (list, tuple)) or type(spec).__name__ == "Regions":
        out = []
        for item in spec:
            out.extend(_region_texts(item))
        return out
    return [spec]


def _pixel_regions(spec, proj) -> list:
    """Pixel shapes (:mod:`extspec.skyregions`) of ``spec`` on the Projection ``proj``;
    unparsable / unprojectable regions are warned about and skipped."""
    from .errors import ConfigError
    from .skyregions import PixelRegion, as_sky_region, parse_ds9

    out = []
    for item in _region_texts(spec):
        try:
            regs = parse_ds9(item) if isinstance(item, str) else [item]
        except ValueError as exc:
            warnings.warn(f"plots: cannot parse region {item!r}: {exc}", stacklevel=3)
            continue
        for r in regs:
            try:
                if not isinstance(r, PixelRegion):
                    r = as_sky_region(r).to_pixel(proj)
                pts = np.atleast_2d(np.asarray(r.center, float))
                if isinstance(getattr(r, "xs", None), tuple):
                    pts = np.column_stack(r.vertices)
                if not np.all(np.isfinite(pts)):
                    raise ValueError("region does not project onto the map")
            except (ValueError, TypeError, ConfigError) as exc:
                warnings.warn(f"plots: skipping region {r!r}: {exc}", stacklevel=3)
                continue
            out.append(r)
    return out


def _plot_regions(ax, pix_regions, label=None, **style):
    first = True
    for r in pix_regions:
        kw = dict(style, fill=False)
        if first and label:
            kw["label"] = label
        ax.add_patch(r.patch(**kw))
        first = False


def _off_label(label, i):
    if label is None:
        return f"OFF set {i + 1}"
    s = str(label).strip()
    if s.lstrip("-").isdigit():
        return f"OFF obs {s}"
    return s


# --------------------------------------------------------------------------------------
# 1. counts image
# --------------------------------------------------------------------------------------
def plot_counts_image(image, geom, out_png, on_region=None, off_regions=(), exclusion_regions=(),
                      smooth_sigma_pix=1.0, title="", off_labels=None, colorbar_label=None, cmap="viridis",
                      symmetric=False):
    """Smoothed counts map in sky coordinates with the analysis regions.

    The image is drawn in pixel space (north up for the map's frame, longitude increasing to
    the left as CDELT1 < 0); the axes are labelled in the map frame's longitude and latitude
    (deg) with a coordinate grid computed by :func:`extspec.sky.sky_grid` from the map's own
    pixel <-> sky conversion.

    Parameters
    ----------
    image : 2D array (ny, nx)
        Counts per pixel.
    geom : extspec.geometry.MapGeom or astropy.wcs.WCS
        The map's geometry (pixel <-> sky through its ``pixel_centers``/``world_to_pix``), or
        a celestial WCS (galactic or icrs; extra axes are dropped).

    out_png : path

    on_region : DS9 string / .reg path / region, optional
        Drawn white, solid.
    off_regions : list of lists of DS9 strings
        One list per observation, each drawn dashed in its own colour.
    exclusion_regions : list of DS9 strings
        Drawn red, dotted.
    smooth_sigma_pix : float
        Gaussian smoothing width in pixels (0: no smoothing).

    title : str

    off_labels : list, optional
        One legend label per observation: an obs id (int or digits) gives "OFF obs <id>",
        any other string is used verbatim.  Default "OFF set <n>".
    colorbar_label : str, optional
        Default "counts (smoothed ...)".

    cmap : str

    symmetric : bool
        Colour scale symmetric around 0 (for a significance map); NaN pixels are grey.

    Regions partly or entirely outside the image are clipped; regions that cannot be
    parsed or projected are skipped with a warning.
    """
    from matplotlib.lines import Line2D

    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"plot_counts_image expects a 2D image, got shape {img.shape}")
    conv = SkyPixels(geom, img.shape)
    sm = gaussian_smooth(img, smooth_sigma_pix, normalize_edges=True)
    ny, nx = sm.shape

    # regions first (pixel coordinates), so that the layout knows whether a legend is needed
    layers = []  # (pixel regions, style, legend label), in drawing order (ON on top)
    region_specs = [exclusion_regions, on_region, *(off_regions or ())]
    wcs = conv.projection if any(_region_texts(r) for r in region_specs) else None
    excl = _pixel_regions(exclusion_regions, wcs) if wcs is not None else []
    if excl:
        layers.append((excl, dict(edgecolor="red", linestyle=":", linewidth=1.8), "exclusion"))
    off_lists = list(off_regions or ())
    if off_lists and all(isinstance(o, (str, Path)) for o in off_lists):
        off_lists = [off_lists]  # a flat list of strings is a single observation
    labels = list(off_labels) if off_labels is not None else []
    for i, offs in enumerate(off_lists):
        regs = _pixel_regions(offs, wcs) if wcs is not None else []
        if regs:
            lab = _off_label(labels[i] if i < len(labels) else None, i)
            col = _OFF_COLOURS[i % len(_OFF_COLOURS)]
            layers.append((regs, dict(edgecolor=col, linestyle="--", linewidth=1.4), f"{lab} ({len(regs)})"))
    on = _pixel_regions(on_region, wcs) if wcs is not None else []
    if on:
        layers.append((on, dict(edgecolor="white", linestyle="-", linewidth=2.0), "ON"))

    legend = bool(layers)
    fig = _figure(figsize=(9.6, 6.4) if legend else (7.6, 6.4))
    if legend:
        ax = fig.add_axes([0.115, 0.10, 0.52, 0.80])
        cax = fig.add_axes([0.655, 0.10, 0.022, 0.80])
    else:
        ax = fig.add_axes([0.15, 0.10, 0.66, 0.80])
        cax = fig.add_axes([0.835, 0.10, 0.028, 0.80])
    finite = sm[np.isfinite(sm)]
    if symmetric:
        vmax = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        vmin = -vmax
        ax.set_facecolor("0.7")
    else:
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        vmin = 0.0
    im = ax.imshow(sm, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    cb = fig.colorbar(im, cax=cax)
    sig = float(smooth_sigma_pix or 0)
    cb.set_label(colorbar_label or ("counts (smoothed" + (f", \u03c3 = {sig:g} pix)" if sig > 0 else ")")))

    # sky coordinates: grid lines and tick labels from the map's pixel <-> sky conversion
    grid = sky_grid(conv)
    for x, y in grid["lon_lines"] + grid["lat_lines"]:
        ax.plot(x, y, color="white", alpha=0.25, linestyle="solid", linewidth=0.5, zorder=1.5)
    xlab, ylab = conv.axis_labels()
    ax.set_xticks([t for t, _ in grid["xticks"]], [lab for _, lab in grid["xticks"]])
    ax.set_yticks([t for t, _ in grid["yticks"]], [lab for _, lab in grid["yticks"]])
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab)

    handles = []
    for regs, style, lab in layers:
        _plot_regions(ax, regs, facecolor="none", **style)
        handles.append(Line2D([], [], color=style["edgecolor"], linestyle=style["linestyle"],
                              linewidth=style["linewidth"], label=lab))
    # regions and grid lines must not change the view: keep the image extent (they are clipped)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    # colour bar as tall as the (aspect-constrained) image
    ax.apply_aspect()
    pos, cpos = ax.get_position(), cax.get_position()
    cax.set_position([pos.x1 + 0.02, pos.y0, cpos.width, pos.height])
    leg_anchor = (pos.x1 + 0.02 + cpos.width + 0.07, pos.y1)
    if handles:
        handles = handles[-1:] + handles[:-1] if on else handles  # ON first in the legend
        small = len(handles) > 16
        leg = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=leg_anchor,
                         fontsize=6 if small else 8, ncol=2 if small else 1, frameon=True,
                         title="regions (number)", title_fontsize=8)
        leg.get_frame().set_facecolor("0.6")
    if title:
        ax.set_title(title, y=1.0)  # fixed: no search for top tick labels (none)
    return _save(fig, out_png, tight=True)


# --------------------------------------------------------------------------------------
# 2. spectrum
# --------------------------------------------------------------------------------------
def _false_runs(mask):
    """(start, stop) index pairs of the runs of False in ``mask``."""
    runs, start = [], None
    for i, m in enumerate(mask):
        if not m and start is None:
            start = i
        elif m and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


def plot_spectrum_fit(energy_edges, counts, counts_off, alpha, npred_sig, mask_safe, out_png, title=""):
    """Stacked ON/OFF excess spectrum, predicted signal counts and residuals.

    Upper panel: excess = counts - alpha * counts_off with error sqrt(counts + alpha^2 counts_off)
    at the log-centre of each reco bin, and the predicted signal ``npred_sig`` as a step
    histogram.  Lower panel: excess - npred_sig with the same errors.  Bins outside the
    safe mask are shaded grey and their points drawn open.
    """
    from matplotlib.patches import Patch

    edges = np.asarray(energy_edges, dtype=float)
    n = edges.size - 1
    counts = np.broadcast_to(np.asarray(counts, float), (n,))
    counts_off = np.broadcast_to(np.asarray(counts_off, float), (n,))
    alpha = np.broadcast_to(np.asarray(alpha, float), (n,))
    npred = np.broadcast_to(np.asarray(npred_sig, float), (n,))
    safe = np.broadcast_to(np.asarray(mask_safe, bool), (n,))

    lo, hi = edges[:-1], edges[1:]
    ec = np.sqrt(lo * hi)
    xerr = np.vstack([ec - lo, hi - ec])
    excess = counts - alpha * counts_off
    err = np.sqrt(np.clip(counts + alpha ** 2 * counts_off, 0, None))
    resid = excess - npred

    fig = _figure(figsize=(7.5, 6.5))
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1], "hspace": 0.05})
    for a in (ax, axr):
        for i0, i1 in _false_runs(safe):
            a.axvspan(edges[i0], edges[i1], color="0.88", zorder=0, lw=0)
    handles = []
    if (~safe).any():
        handles.append(Patch(color="0.88", label="outside safe range"))

    ax.stairs(npred, edges, color="tab:red", lw=1.6, label="predicted signal (fit)", zorder=2)
    ax.axhline(0, color="0.5", lw=0.8, zorder=1)
    pt = dict(fmt="o", ms=4.5, capsize=0, elinewidth=1.1, zorder=3)
    if safe.any():
        ax.errorbar(ec[safe], excess[safe], yerr=err[safe], xerr=xerr[:, safe], color="black",
                    label="excess (safe bins)", **pt)
        axr.errorbar(ec[safe], resid[safe], yerr=err[safe], xerr=xerr[:, safe], color="black", **pt)
    if (~safe).any():
        ax.errorbar(ec[~safe], excess[~safe], yerr=err[~safe], xerr=xerr[:, ~safe], color="0.55",
                    mfc="white", label="excess (not fitted)", **pt)
        axr.errorbar(ec[~safe], resid[~safe], yerr=err[~safe], xerr=xerr[:, ~safe], color="0.55",
                     mfc="white", **pt)
    axr.axhline(0, color="tab:red", lw=1.2, ls="--", zorder=2)

    ax.set_xscale("log")
    _unicode_log_ticks(ax.xaxis)  # shared with the residual panel
    if n > 0 and np.all(edges > 0):
        ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("Excess counts")
    axr.set_ylabel("Residuals [counts]")
    axr.set_xlabel("Reconstructed energy [TeV]")
    # y range from the safe (fitted) bins; unsafe points outside it are clipped
    if safe.any():
        vals = np.concatenate([excess[safe] + err[safe], excess[safe] - err[safe], npred[safe], [0.0]])
        vals = vals[np.isfinite(vals)]
        y0, y1 = float(vals.min()), float(vals.max())
        pad = 0.08 * (y1 - y0) if y1 > y0 else 1.0
        ax.set_ylim(y0 - pad, y1 + pad)
    # symmetric residual axis around zero
    fin = np.isfinite(resid) & np.isfinite(err)
    sel = fin & safe if (fin & safe).any() else fin
    r = float(np.max(np.abs(resid[sel]) + err[sel])) if sel.any() else 1.0
    r = r if r > 0 else 1.0
    axr.set_ylim(-1.15 * r, 1.15 * r)
    if not np.any(counts) and not np.any(counts_off) and not np.any(npred):
        _no_data(ax, "no counts")
    h, _ = ax.get_legend_handles_labels()
    ax.legend(handles=h + handles, fontsize=9, loc="best")
    for a in (ax, axr):
        a.grid(True, which="major", alpha=0.3)
        a.tick_params(which="both", direction="in", top=True, right=True)
    if title:
        ax.set_title(title, y=1.0)  # fixed: no search for top tick labels (none)
    fig.align_ylabels([ax, axr])
    fig.subplots_adjust(left=0.12, right=0.97, top=0.93, bottom=0.09)
    return _save(fig, out_png)


# --------------------------------------------------------------------------------------
# 3. SED
# --------------------------------------------------------------------------------------
def _get(row, key, default=np.nan):
    try:
        v = row[key]
    except (KeyError, IndexError, TypeError, ValueError):
        return default
    if v is None:
        return default
    return getattr(v, "value", v)


def _as_bool(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes", "t")
    try:
        return bool(v)
    except (TypeError, ValueError):
        return False


def _sed_points(flux_points, suffix=""):
    """Points and upper limits of the columns ``e2dnde<suffix>``, ``e2dnde<suffix>_err``,
    ``e2dnde<suffix>_ul`` of flux-point rows, with the x/y extents they need."""
    ys, xs = [], []
    pts = {"x": [], "xl": [], "xh": [], "y": [], "yl": [], "yh": []}
    uls = {"x": [], "xl": [], "xh": [], "y": []}
    for row in flux_points or []:
        x, x0, x1 = float(_get(row, "e_ref")), float(_get(row, "e_min")), float(_get(row, "e_max"))
        if not np.isfinite(x) or x <= 0:
            if np.isfinite(x0) and np.isfinite(x1) and x0 > 0 and x1 > 0:
                x = np.sqrt(x0 * x1)
            else:
                continue
        xl = x - x0 if np.isfinite(x0) and 0 < x0 <= x else 0.0
        xh = x1 - x if np.isfinite(x1) and x1 >= x else 0.0
        if _as_bool(_get(row, "is_ul", False)):
            ul = float(_get(row, f"e2dnde{suffix}_ul"))
            if np.isfinite(ul) and ul > 0:
                for k, v in zip(("x", "xl", "xh", "y"), (x, xl, xh, ul)):
                    uls[k].append(v)
                ys.extend([ul, 0.6 * ul])
                xs.extend([x - xl, x + xh])
            continue
        y, dy = float(_get(row, f"e2dnde{suffix}")), float(_get(row, f"e2dnde{suffix}_err"))
        if not np.isfinite(y) or y <= 0:
            continue
        dy = dy if np.isfinite(dy) and dy > 0 else 0.0
        dlo = min(dy, 0.9999 * y)
        for k, v in zip(pts, (x, xl, xh, y, dlo, dy)):
            pts[k].append(v)
        ys.extend([y + dy] + ([y - dy] if y - dy > 0 else [y]))
        xs.extend([x - xl, x + xh])
    return pts, uls, ys, xs


def _draw_sed_model(ax, model_dnde, butterfly, erange, style, ys, xs, decades=None) -> None:
    """The model line E^2 dN/dE over ``erange`` and its 1-sigma band; extents into ys, xs
    (with ``decades``: only the part within that many decades of the line's maximum)."""
    color, label = style
    emin, emax = erange
    out = []  # the extents of this model
    if butterfly is not None:
        be, blo, bhi = (np.asarray(a, float) for a in butterfly)
        ok = np.isfinite(be) & np.isfinite(bhi) & (be > 0) & (bhi > 0)
        if ok.any():
            floor = 1e-3 * np.min(bhi[ok])
            lo_c = np.where(np.isfinite(blo) & (blo > 0), blo, floor)
            ax.fill_between(be[ok], lo_c[ok], bhi[ok], color=color, alpha=0.25, lw=0,
                            label=f"{label} 1\u03c3 band", zorder=1)
            out.extend(bhi[ok])
            out.extend(blo[ok & (blo > 0)])
            xs.extend([be[ok].min(), be[ok].max()])
    if np.isfinite(emin) and np.isfinite(emax) and 0 < emin < emax and model_dnde is not None:
        em = np.geomspace(emin, emax, 200)
        try:
            with np.errstate(all="ignore"):
                ym = em ** 2 * np.asarray(model_dnde(em), float)
        except Exception as exc:
            warnings.warn(f"plots: model evaluation failed: {exc}", stacklevel=3)
            ym = np.full_like(em, np.nan)
        okm = np.isfinite(ym) & (ym > 0)
        if okm.any():
            ax.plot(em[okm], ym[okm], color=color, lw=1.8, label=label, zorder=2)
            out.extend(ym[okm])
            xs.extend([emin, emax])
    if decades is not None and out:  # an absorbed model falls by tens of decades
        top = max(out)
        out = [v for v in out if v >= top * 10.0 ** -decades]
    ys.extend(out)


def _draw_sed_points(ax, pts, uls, color, label, extra, marker="o", size=5) -> None:
    from matplotlib.lines import Line2D

    if pts["x"]:
        ax.errorbar(pts["x"], pts["y"], xerr=[pts["xl"], pts["xh"]], yerr=[pts["yl"], pts["yh"]],
                    fmt=marker, color=color, ms=size, elinewidth=1.2, capsize=0, label=label, zorder=4)
    if uls["x"]:
        u = np.asarray(uls["y"])
        ax.errorbar(uls["x"], u, xerr=[uls["xl"], uls["xh"]], fmt="none", ecolor=color,
                    elinewidth=1.2, capsize=0, zorder=4)
        ax.errorbar(uls["x"], u, yerr=0.4 * u, uplims=True, fmt="none", ecolor=color, color=color,
                    elinewidth=1.2, capsize=4, zorder=4)
        extra.append(Line2D([], [], color=color, lw=1.2, marker="v", ms=6,
                            label="upper limits" if label == "flux points" else f"{label}: upper limits"))


def plot_sed(flux_points, model_dnde, energy_range, out_png, butterfly=None, title="", intrinsic=None, groups=(),
             label="flux points"):
    """Spectral energy distribution: flux points, upper limits, model and butterfly.

    Parameters
    ----------
    flux_points : list of dict (or table rows)
        Keys e_ref, e_min, e_max [TeV], e2dnde, e2dnde_err, e2dnde_ul [TeV cm-2 s-1], is_ul.
    model_dnde : callable
        E [TeV array] -> dN/dE [cm-2 s-1 TeV-1]; drawn over ``energy_range``.
    energy_range : (emin, emax) TeV
        Fit range; a non-finite range draws no model.
    butterfly : (energies, e2dnde_lo, e2dnde_hi), optional
        1-sigma band (see :func:`extspec.models.sed_butterfly`).
    intrinsic : (model_dnde, butterfly), optional
        For an EBL-absorbed model: the intrinsic model and its band, drawn in orange with the
        de-absorbed points (row keys e2dnde_intrinsic, e2dnde_intrinsic_err,
        e2dnde_intrinsic_ul); the observed points and the absorbed model stay as above.
    groups : sequence of (label, flux_points)
        More sets of points (e.g. one per instrument of a joint fit), each in its own colour;
        ``flux_points`` (labelled ``label``) is drawn in black on top.
    """
    fig = _figure(figsize=(7.5, 5.5))
    ax = fig.subplots()
    extra = []
    pts, uls, ys, xs = _sed_points(flux_points)
    emin, emax = (float(v) for v in energy_range) if energy_range is not None else (np.nan, np.nan)
    absorbed = intrinsic is not None
    _draw_sed_model(ax, model_dnde, butterfly, (emin, emax),
                    ("tab:blue", "absorbed model" if absorbed else "best-fit model"), ys, xs, 3 if absorbed else None)
    colors = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
    colors = colors[1:] if absorbed else colors  # orange is the intrinsic model's
    for k, (name, rows) in enumerate(groups):
        gpts, guls, gys, gxs = _sed_points(rows)
        _draw_sed_points(ax, gpts, guls, colors[k % len(colors)], name, extra, marker="sD^vP*X"[k % 7], size=4)
        ys.extend(gys)
        xs.extend(gxs)
    _draw_sed_points(ax, pts, uls, "black", "observed flux points" if absorbed else label, extra)
    if absorbed:
        _draw_sed_model(ax, intrinsic[0], intrinsic[1], (emin, emax), ("tab:orange", "intrinsic model"), ys, xs)
        ipts, iuls, iys, ixs = _sed_points(flux_points, "_intrinsic")
        _draw_sed_points(ax, ipts, iuls, "tab:red", "de-absorbed flux points", extra)
        ys.extend(iys)
        xs.extend(ixs)

    ax.set_xscale("log")
    ax.set_yscale("log")
    _unicode_log_ticks(ax.xaxis, ax.yaxis)
    ys = np.asarray([v for v in ys if np.isfinite(v) and v > 0])
    xs = np.asarray([v for v in xs if np.isfinite(v) and v > 0])
    if ys.size:
        ax.set_ylim(ys.min() / 1.6, ys.max() * 1.6)
    if xs.size:
        ax.set_xlim(xs.min() / 1.3, xs.max() * 1.3)
    if not ys.size:
        _no_data(ax, "no flux point and no model")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("E\u00b2 dN/dE [TeV cm\u207b\u00b2 s\u207b\u00b9]")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.tick_params(which="both", direction="in", top=True, right=True)
    handles = ax.get_legend_handles_labels()[0] + extra
    if handles:
        ax.legend(handles=handles, fontsize=9, loc="best")
    if title:
        ax.set_title(title, y=1.0)
    _fixed_layout(fig, title, left=0.13, right=0.98, bottom=0.097, top_in=0.36)
    return _save(fig, out_png)


# --------------------------------------------------------------------------------------
# 4. cumulative
# --------------------------------------------------------------------------------------
def plot_cumulative(rows, out_png, title=""):
    """Excess and sqrt(TS) against the cumulative livetime.

    ``rows``: dicts with livetime [s], excess, sqrt_ts (and obs_id), one per cumulative
    step.  The right panel has a dashed sqrt(TS) ~ sqrt(t) reference through the last point
    and a horizontal line at 5 sigma.
    """
    rows = list(rows or [])
    t = np.array([float(_get(r, "livetime")) for r in rows]) / 3600.0
    exc = np.array([float(_get(r, "excess")) for r in rows])
    sts = np.array([float(_get(r, "sqrt_ts")) for r in rows])
    order = np.argsort(t, kind="stable")
    t, exc, sts = t[order], exc[order], sts[order]

    fig = _figure(figsize=(11, 4.5))
    axl, axr = fig.subplots(1, 2)
    line = dict(marker="o", ms=4.5, lw=1.3, color="tab:blue")
    if t.size:
        axl.plot(t, exc, label="excess", **line)
        axr.plot(t, sts, label="\u221aTS", **line)
        ok = np.isfinite(t) & np.isfinite(sts) & (t > 0)
        if ok.any():
            tl, sl = t[ok][-1], sts[ok][-1]
            tt = np.linspace(0, max(np.nanmax(t), tl), 200)
            axr.plot(tt, sl * np.sqrt(tt / tl), ls="--", color="0.4", lw=1.1,
                     label="\u221d \u221at (through last point)")
    else:
        for a in (axl, axr):
            _no_data(a, "no usable observation")
    axr.axhline(5.0, color="tab:red", ls=":", lw=1.3, label="5\u03c3")
    axl.axhline(0.0, color="0.5", lw=0.8)
    axl.set_xlabel("Cumulative livetime [h]")
    axr.set_xlabel("Cumulative livetime [h]")
    axl.set_ylabel("Excess counts")
    axr.set_ylabel("Significance \u221aTS [\u03c3]")
    for a in (axl, axr):
        a.set_xlim(left=0)
        a.grid(True, alpha=0.3)
        a.tick_params(direction="in", top=True, right=True)
    axr.set_ylim(bottom=min(0.0, float(np.nanmin(sts)) * 1.1) if sts.size and np.isfinite(sts).any() else 0.0,
                 top=max(6.0, 1.1 * float(np.nanmax(sts)) if sts.size and np.isfinite(sts).any() else 6.0))
    axr.legend(fontsize=9, loc="upper left")
    if t.size:
        axl.legend(fontsize=9, loc="upper left")
    if title:
        fig.suptitle(title)
    _fixed_layout(fig, title, left=0.08, right=0.986, bottom=0.119, top_in=0.48, wspace=0.15)
    return _save(fig, out_png)


def _hours_since(t0: float, mjd) -> np.ndarray:
    return (np.asarray(mjd, float) - t0) * 24.0


def plot_light_curve(rows, out_png, reference_flux=None, variability=None, title=""):
    """Flux against time, one panel per energy bin (``rows`` of :mod:`extspec.lightcurve`).

    Points with asymmetric errors (``flux_errn``/``flux_errp``, else ``flux_err``) and a
    horizontal bar for the bin width; upper limits (``is_ul``) as downward arrows at
    ``flux_ul``.  ``reference_flux``: {(e_min, e_max): flux} of the joint fit, drawn as a line;
    ``variability``: the constant-flux test, its chi2/ndf and p-value per panel.
    """
    rows = [r for r in (rows or [])]
    groups = sorted({(float(r["e_min"]), float(r["e_max"])) for r in rows}) or [(np.nan, np.nan)]
    t0 = np.floor(min((float(r["time_min"]) for r in rows), default=0.0))
    fig = _figure(figsize=(9, 2.0 + 2.6 * len(groups)))
    axes = np.atleast_1d(fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0])
    per = (variability or {}).get("per_energy_bin") or []
    for k, (ax, (e_lo, e_hi)) in enumerate(zip(axes, groups)):
        sel = [r for r in rows if (float(r["e_min"]), float(r["e_max"])) == (e_lo, e_hi) and _as_bool(r["success"])]
        if not sel:
            _no_data(ax, "no fitted time bin")
        tmin = _hours_since(t0, [r["time_min"] for r in sel])
        tmax = _hours_since(t0, [r["time_max"] for r in sel])
        tc, terr = 0.5 * (tmin + tmax), 0.5 * (tmax - tmin)
        ul = np.array([_as_bool(r["is_ul"]) for r in sel], bool)
        f = np.array([float(r["flux"]) for r in sel])
        en = np.array([float(_get(r, "flux_errn")) for r in sel])
        ep = np.array([float(_get(r, "flux_errp")) for r in sel])
        e1 = np.array([float(r["flux_err"]) for r in sel])
        en, ep = np.where(np.isfinite(en), en, e1), np.where(np.isfinite(ep), ep, e1)
        fu = np.array([float(r["flux_ul"]) for r in sel])
        if (~ul).any():
            ax.errorbar(tc[~ul], f[~ul], xerr=terr[~ul], yerr=[en[~ul], ep[~ul]], fmt="o", ms=4, color="tab:blue",
                        lw=1.2, label="flux")
        if ul.any():
            ax.errorbar(tc[ul], fu[ul], xerr=terr[ul], yerr=0.25 * np.abs(fu[ul]), uplims=True, fmt="none",
                        color="tab:gray", lw=1.2, label="upper limit (95 %)")
        ref = (reference_flux or {}).get((e_lo, e_hi))
        if ref is not None and np.isfinite(ref):
            ax.axhline(ref, color="tab:red", ls="--", lw=1.1, label="joint fit")
        ax.axhline(0.0, color="0.6", lw=0.7)
        text = f"{e_lo:.3g}-{e_hi:.3g} TeV"
        if k < len(per) and per[k].get("ndf"):
            text += f"\nconstant: \u03c7\u00b2/ndf = {per[k]['chi2']:.1f}/{per[k]['ndf']}, p = {per[k]['p_value']:.2g}"
        ax.text(0.01, 0.97, text, transform=ax.transAxes, va="top", fontsize=9)
        ax.set_ylabel("Flux [cm\u207b\u00b2 s\u207b\u00b9]")
        ax.grid(True, alpha=0.3)
        ax.tick_params(direction="in", top=True, right=True)
        if sel:
            ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel(f"Time - MJD {t0:.0f} (UTC) [h]")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_spectra_vs_time(rows, parameter: str, unit: str, out_png, reference=None, title=""):
    """One parameter of the per-time-bin spectral fits against time (``rows``: spectra rows with
    ``time_min``, ``time_max``, ``parameter``, ``<parameter>_err``, ``success``); ``reference``:
    the joint fit's value, drawn as a line."""
    rows = [r for r in (rows or []) if _as_bool(r["success"])]
    t0 = np.floor(min((float(r["time_min"]) for r in rows), default=0.0))
    fig = _figure(figsize=(9, 4.2))
    ax = fig.subplots()
    if rows:
        tmin = _hours_since(t0, [r["time_min"] for r in rows])
        tmax = _hours_since(t0, [r["time_max"] for r in rows])
        ax.errorbar(0.5 * (tmin + tmax), [float(r[parameter]) for r in rows], xerr=0.5 * (tmax - tmin),
                    yerr=[float(r[f"{parameter}_err"]) for r in rows], fmt="o", ms=4, color="tab:blue",
                    label="fit per time bin")
    else:
        _no_data(ax, "no successful fit")
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, color="tab:red", ls="--", lw=1.1, label="joint fit")
    ax.set_xlabel(f"Time - MJD {t0:.0f} (UTC) [h]")
    ax.set_ylabel(f"{parameter}" + (f" [{unit}]" if unit else ""))
    ax.grid(True, alpha=0.3)
    ax.tick_params(direction="in", top=True, right=True)
    if rows or reference is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out_png)
