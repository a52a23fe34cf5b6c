"""Checks of the config against the machine and the data, before any job starts.

A point ON region on full-enclosure IRFs is refused (:func:`check_point_region`); so is a map
too large for memory:

The per-observation reduction holds a few full-size arrays of the map: the counts and the
predicted background per reco-energy bin, the background IRF evaluated at
:data:`extspec.cube.BKG_NODES_PER_BIN` energies per bin with its interpolation temporaries,
the pixel coordinates in three frames, and with the ``reference`` extraction the exposure per
true-energy bin.  :func:`reduction_bytes` adds them up (float64); :func:`check_map_memory`
refuses a geometry whose estimate exceeds this machine's physical memory, with the size.
Standard library only.
"""

from __future__ import annotations

import os

from ..errors import ConfigError
from .basics import has_dl3, runs_have, runs_of_irf_class

__all__ = ["reduction_bytes", "physical_memory", "check_map_memory", "check_point_region", "check_external_binning"]

_BKG_NODES_PER_BIN = 4  # extspec.cube.BKG_NODES_PER_BIN (not imported: cube imports numpy)
_COORD_ARRAYS = 8  # pixel centres, ICRS and FoV coordinates, region masks


def reduction_bytes(npix: int, n_reco: int, n_true: int, method: str) -> int:
    """Estimated peak memory (bytes) of one observation's reduction on a map of ``npix`` pixels."""
    per_pixel = 3 * _BKG_NODES_PER_BIN * n_reco + 2 * n_reco + _COORD_ARRAYS
    if method == "reference":
        per_pixel += 2 * n_true
    return 8 * int(npix) * per_pixel


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_map_memory(settings, limit: int | None = None) -> None:
    """Refuse a map whose reduction would not fit in memory (``limit`` bytes, default this
    machine's physical memory); ``settings`` is the analysis's CubeSettings."""
    limit = physical_memory() if limit is None else limit
    nx, ny = settings.geom.npix
    need = reduction_bytes(nx * ny, settings.energy_reco.nbin, settings.energy_true.nbin, settings.method)
    if limit is not None and need > limit:
        raise ConfigError(
            f"config key 'geom': a map of {nx} x {ny} pixels ({settings.geom.binsz:g} deg) with "
            f"{settings.energy_reco.nbin} reco-energy bins needs about {_gb(need)} per reduction job, more than the "
            f"{_gb(limit)} of memory here; use a larger geom.binsz or a smaller geom.width"
        )


def check_point_region(cfg: dict, store, obs_ids) -> None:
    """A ``point`` ON region needs point-like IRFs in every selected run (HDUCLAS3 of the
    effective area): with full-enclosure IRFs a point holds no reconstructed event (a circle
    with ``model.spatial: {type: point}`` gives the source's flux).  Refused here, before any job, naming the runs;
    an unreadable header is left to the run's reduction job to report."""
    from ..irf import FULL_ENCLOSURE
    from ..skyregions import PointSky, parse_region

    if not isinstance(parse_region(cfg["on_region"], "on_region"), PointSky):
        return
    full = runs_of_irf_class(store, obs_ids, FULL_ENCLOSURE)
    if full:
        raise ConfigError(
            f"config key 'on_region': a point ON region needs point-like IRFs, but obs {runs_have(full)} "
            "full-enclosure IRFs (a point holds no reconstructed event); use a circle ON region, with "
            "model.spatial: {type: point} for the source's flux"
        )


def _axis_words(edges) -> str:
    return f"{len(edges) - 1} bins {edges[0]:.4g}-{edges[-1]:.4g} TeV"


def check_external_binning(cfg: dict, external: list) -> None:
    """``external_spectra`` join the joint fit only with the binning of the analysis: the reco-
    and true-energy edges of the reduced runs (the config's ``energy_axis``/``energy_axis_true``)
    or, without DL3 runs, of the first external set.  The same rule as the fit
    (:class:`extspec.fit.JointData`: equal edges), checked before any job; ``external`` is
    ``[{"pha", ...}]`` of the analysis; a set that cannot be read is left to the jobs reading it."""
    import numpy as np

    from ..errors import FormatError
    from ..io.ogip import read_spectrum
    from .settings import energy_axes

    if not external:
        return
    ref, ref_what = None, None
    if has_dl3(cfg):
        ref = tuple(a.edges for a in energy_axes(cfg))
        ref_what = "the reduced runs (energy_axis{}) have"
    for e in external:
        try:
            s = read_spectrum(e["pha"])
        except FormatError:
            continue  # unreadable: the jobs that read it say so, naming the file
        axes = (s.energy_reco.edges, s.energy_true.edges)
        if ref is None:
            ref, ref_what = axes, f"{e['pha']}{{}} has"
            continue
        for name, suffix, mine, theirs in (("reco", "", axes[0], ref[0]), ("true", "_true", axes[1], ref[1])):
            if not np.array_equal(mine, theirs):
                raise ConfigError(
                    f"config key 'external_spectra': {e['pha']} has {name}-energy {_axis_words(mine)}, "
                    f"{ref_what.format(suffix)} {_axis_words(theirs)}; a joint fit needs one binning (fit it in "
                    "an analysis of its own, or reduce with its axes)"
                )
