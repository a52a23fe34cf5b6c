"""The pictures of spatially resolved spectra (drawing only): ``maps.png`` and ``profile.png``.

The sub-regions are drawn on the tangent plane at their mean centre, 1 unit = 1 deg, east
to the left; rows are those of ``regions.ecsv`` (:func:`extspec.resolved.fit_regions`).
"""

from __future__ import annotations

import numpy as np

from .figures import _figure, _save

__all__ = ["plot_spatial_maps", "plot_spatial_profile"]

def _panel(fig, ax, pix, values, label, cmap, mark_ul=None):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    v = np.asarray(values, float)
    good = np.isfinite(v)
    lo, hi = (np.nanmin(v), np.nanmax(v)) if good.any() else (0.0, 1.0)
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    cm = ScalarMappable(norm=norm, cmap=cmap)
    for k, (p, x) in enumerate(zip(pix, v)):
        face = cm.to_rgba(x) if np.isfinite(x) else (0.85, 0.85, 0.85, 1.0)
        hatch = "//" if mark_ul is not None and mark_ul[k] else None
        ax.add_patch(p.patch(facecolor=face, edgecolor="k", linewidth=0.6, hatch=hatch))
    fig.colorbar(cm, ax=ax, label=label, shrink=0.8)


def plot_spatial_maps(rows, regions, shape_param, out_png, title=""):
    """Three panels: each sub-region coloured by its sqrt(TS), by its first shape parameter
    (``shape_param``, e.g. ``index``) and by its flux; sub-regions with an upper limit are
    grey and hatched in the last two."""
    from .sky import Projection
    from .skyregions import region_center

    centres = [region_center(r) for r in regions]
    frame = centres[0].frame
    lon = np.array([c.to(frame).lon for c in centres])
    lat = np.array([c.to(frame).lat for c in centres])
    lon0 = float(np.degrees(np.arctan2(np.sin(np.radians(lon)).mean(), np.cos(np.radians(lon)).mean())) % 360)
    proj = Projection("TAN", (lon0, float(lat.mean())), (1.0, 1.0), (-1.0, 1.0), frame)
    pix = [r.to_pixel(proj) for r in regions]
    ul = [not np.isfinite(r["flux"]) for r in rows]  # no measurement (an upper limit, or a failed fit)
    panels = [("sqrt_ts", "sqrt(TS)", "viridis")]
    if shape_param:
        panels.append((shape_param, shape_param, "coolwarm"))
    panels.append(("flux", "flux (cm$^{-2}$ s$^{-1}$)", "magma"))
    fig = _figure(figsize=(5.0 * len(panels), 4.4))
    for k, (col, label, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        vals = [r.get(col, np.nan) if (col == "sqrt_ts" or not u) else np.nan for r, u in zip(rows, ul)]
        _panel(fig, ax, pix, vals, label, cmap, mark_ul=None if col == "sqrt_ts" else ul)
        ext = np.array([q.get_path().get_extents(q.get_patch_transform()).extents for q in (p.patch() for p in pix)])
        pad = 0.05
        ax.set_xlim(ext[:, 2].max() + pad, ext[:, 0].min() - pad)  # east left
        ax.set_ylim(ext[:, 1].min() - pad, ext[:, 3].max() + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"offset in {'l' if frame == 'galactic' else 'RA'} (deg, TAN at {lon0:.2f}, {lat.mean():.2f})")
        ax.set_ylabel(f"offset in {'b' if frame == 'galactic' else 'Dec'} (deg)")
        ax.set_title(label + ("" if col == "sqrt_ts" else "  (hatched: upper limit)"), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_spatial_profile(rows, coords, xlabel, shape_param, out_png, title=""):
    """Flux (upper limits as arrows) and the first shape parameter against radius or angle."""
    x = np.asarray(coords, float)
    fitted = np.array([np.isfinite(r["flux"]) for r in rows])
    n = 2 if shape_param else 1
    fig = _figure(figsize=(6.0, 3.0 * n + 0.6))
    ax = fig.add_subplot(n, 1, 1)
    f = np.array([r["flux"] for r in rows], float)
    fe = np.array([r["flux_err"] for r in rows], float)
    ful = np.array([r["flux_ul"] for r in rows], float)
    ax.errorbar(x[fitted], f[fitted], yerr=fe[fitted], fmt="o", color="C0", label="flux")
    lim = np.isfinite(ful)
    if lim.any():
        ax.errorbar(x[lim], ful[lim], yerr=0.3 * ful[lim], uplims=True, fmt="v", color="C1",
                    label="95 % upper limit")
    ax.set_ylabel("flux (cm$^{-2}$ s$^{-1}$)")
    ax.legend(fontsize=8)
    if shape_param:
        ax2 = fig.add_subplot(n, 1, 2, sharex=ax)
        v = np.array([r.get(shape_param, np.nan) for r in rows], float)
        ve = np.array([r.get(shape_param + "_err", np.nan) for r in rows], float)
        ax2.errorbar(x[fitted], v[fitted], yerr=ve[fitted], fmt="s", color="C2")
        ax2.set_ylabel(shape_param)
        ax2.set_xlabel(xlabel)
    else:
        ax.set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)
