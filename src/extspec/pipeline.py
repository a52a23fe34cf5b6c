"""High-level steps the Snakemake rules call, one function per rule.

Each function takes the (validated, defaults-filled) analysis config as a plain dict plus
input/output paths, does one stage, and writes its outputs atomically.  Nothing here imports
Snakemake.  Heavy modules are imported inside the functions so that a per-observation job
only pays for what it uses.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "REDUCTION_KEYS",
    "reduction_config",
    "reduce_observation",
    "stack_counts",
    "run_fit",
    "run_flux_points",
    "run_cumulative",
]

REDUCTION_KEYS = (
    "on_region",
    "exclusion_regions",
    "geom",
    "energy_axis",
    "energy_axis_true",
    "safe_mask",
    "spectrum",
)
"""Config keys that a per-observation reduction depends on (and nothing else)."""


def reduction_config(config: dict) -> dict:
    """The part of the config a per-observation job needs (its Snakemake ``params``)."""
    return {k: config[k] for k in REDUCTION_KEYS if k in config}


def reduce_observation(reduction: dict, datastore: str | Path, obs_id: int, outdir: str | Path) -> None:
    """Reduce one observation: ``cube.h5`` and ``pha/bkg/arf/rmf.fits`` in ``outdir``.

    ``reduction`` is :func:`reduction_config` of the analysis config.  Raises
    ExtspecError (one-line message naming the obs id) on bad input; never leaves a
    half-written file.
    """
    raise NotImplementedError


def stack_counts(config: dict, cube_paths: list, spectrum_dirs: list, out_fits, out_png) -> None:
    """Stack the cubes' counts into ``stacked/counts.fits`` (+ WCS) and draw ``counts.png``."""
    raise NotImplementedError


def run_fit(config: dict, spectrum_dirs: list, out_yaml, out_png) -> None:
    """Joint WStat fit of ``config['model']`` over the usable observations."""
    raise NotImplementedError


def run_flux_points(config: dict, spectrum_dirs: list, fit_yaml, out_ecsv, out_png) -> None:
    """Flux points (GADF SED ECSV) and the SED plot from the best-fit model."""
    raise NotImplementedError


def run_cumulative(config: dict, spectrum_dirs: list, out_ecsv, out_png) -> None:
    """Cumulative excess/significance table (ECSV) and its plot."""
    raise NotImplementedError
