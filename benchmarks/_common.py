"""Shared helpers of the benchmark scripts (not part of the library)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

SEED_RUNS = [20326, 20327, 20349, 20350, 20396, 20397]
RXJ_RUNS = SEED_RUNS + [20421, 20422, 20517, 20518, 20519, 20521, 20898, 20899, 20900]
SEED_REDUCTION = {
    "on_region": "galactic;circle(347.3,-0.5,0.5)",
    "exclusion_regions": [],
    "geom": {"width": [1.5, 1.5], "binsz": 0.04, "frame": "galactic", "proj": "CAR"},
    "energy_axis": {"min": 0.3, "max": 40, "nbins": 10},
    "energy_axis_true": {"min": 0.05, "max": 100, "nbins": 30},
    "safe_mask": {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10},
    "spectrum": {"method": "exact"},
}


def datastore_path() -> Path:
    from extspec.io.datastore import resolve_datastore_path

    return resolve_datastore_path(os.environ.get("EXTSPEC_DATASTORE"))


def median_time(func, repeat: int = 15, warmup: int = 2) -> float:
    """Median wall time of ``func()`` in seconds after ``warmup`` calls."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(what: str, value: float, unit: str) -> None:
    print(f"{what}: {value:.3g} {unit}" if value < 100 else f"{what}: {value:.1f} {unit}", flush=True)
