"""The figures of :mod:`extspec.plots` (and :mod:`extspec.plots_spatial`): matplotlib imported,
a figure made, laid out and written as PNG with one draw.

Every PNG is written atomically (:func:`extspec.io.atomic.atomic_path`).  A figure is made at the
PNG's resolution and drawn once by the Agg canvas; its pixels are the file
(:func:`_save`): no second draw for ``bbox_inches="tight"`` (cropped to the drawn box instead)
and no ``tight_layout`` (fixed margins, :func:`_fixed_layout`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__: list = []


_DPI = 120
"""Resolution of every PNG (dots per inch)."""


def _figure(**kwargs):
    """A new Figure drawn by the Agg canvas (no pyplot: no global figure registry to close),
    at the PNG's resolution (:data:`_DPI`), so that :func:`_save` writes the pixels of one draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=_DPI, **kwargs)
    FigureCanvasAgg(fig)
    return fig


_PNG_COMPRESS_LEVEL = 1
"""zlib level of the PNGs: level 1 encodes a plot in a third of the time of the default 6; the
files are ~20 % larger (plots of flat colours and lines compress well either way)."""

_TIGHT_PAD_INCHES = 0.15


def _save(fig, out_png, tight=False) -> Path:
    """Save ``fig`` atomically to ``out_png`` (:func:`extspec.io.atomic.atomic_path`) with ONE draw.

    The figure is rendered once by its Agg canvas and the pixels are written as PNG
    (:data:`_PNG_COMPRESS_LEVEL`).  ``tight``: the picture is cropped to the bounding box of
    what is drawn plus :data:`_TIGHT_PAD_INCHES` (matplotlib's ``bbox_inches="tight"`` finds
    the same box but draws the figure twice: once to measure, once to render); a box reaching
    outside the figure (nothing of the plots here does) falls back to matplotlib's way.
    """
    from matplotlib.image import imsave

    from .io.atomic import atomic_path

    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if tight:
        bbox = fig.get_tightbbox(canvas.get_renderer()).padded(_TIGHT_PAD_INCHES)
        w, h = fig.get_size_inches()
        if bbox.x0 < 0 or bbox.y0 < 0 or bbox.x1 > w or bbox.y1 > h:
            with atomic_path(out_png) as tmp:
                fig.savefig(tmp, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=_TIGHT_PAD_INCHES)
            return Path(out_png)
        ny = rgba.shape[0]
        x0, x1 = round(bbox.x0 * _DPI), round(bbox.x1 * _DPI)
        y0, y1 = ny - round(bbox.y1 * _DPI), ny - round(bbox.y0 * _DPI)  # rows run top down
        rgba = rgba[max(y0, 0):y1, max(x0, 0):x1]
    with atomic_path(out_png) as tmp:
        imsave(tmp, rgba, format="png", dpi=_DPI, pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
    return Path(out_png)



def _fixed_layout(fig, title: str, left: float, right: float, bottom: float, top_in: float, **kw) -> None:
    """Axes margins without ``tight_layout`` (which lays out every text once more before the
    draw): the fractions matplotlib's tight layout gives these plots, the top margin ``top_in``
    inches plus one line height per title line after the first."""
    lines = max(1, len(str(title or "").splitlines()))
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=1 - (top_in + _TITLE_LINE_IN * (lines - 1)) / height,
                        **kw)


_TITLE_LINE_IN = 0.218
"""Height (inches) of one more line of a 12 pt title."""


