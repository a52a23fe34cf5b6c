"""Spatially resolved spectra (issue 29): a 29-box grid over RX J1713 against the one-region analysis.

The 15 RX J1713 runs of DR1, fov background with the remnant excluded within 0.7 deg, 0.18 deg
boxes kept where their centre lies within 0.55 deg of (347.3, -0.5) (29 boxes, as H.E.S.S.
2018).  Each variant runs cold in a fresh process (its own imports, every run read from the
store), the workflow's steps called in order:

* ``one``: per run the reduction job's step (``pipeline.reduce_observation``: the cube and the
  ON/OFF spectrum of the 0.5 deg ON region), then the fit (``pipeline.run_fit``);
* ``grid``: per run ``spatial.reduce_spatial`` (the run read once, 29 boxes), then
  ``spatial.run_spatial`` (29 fits, the uniformity test, the products).

Prints the wall time and peak RSS of each, and their ratio.  Usage: python benchmarks/spatial.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RXJ_RUNS, SEED_REDUCTION, datastore_path, report

CONFIG = {**SEED_REDUCTION, "name": "rxj1713", "exclusion_regions": ["galactic;circle(347.3,-0.5,0.7)"],
          "geom": {"width": [3.0, 3.0], "binsz": 0.02, "frame": "galactic", "proj": "CAR"},
          "background": {"method": "fov"},
          "model": {"type": "power_law", "parameters": {"index": 2.3, "amplitude": 1e-12}},
          "spatial_bins": {"grid": {"size": 0.18, "within": "galactic;circle(347.3,-0.5,0.55)"}}}


def child(variant: str, out: str) -> None:
    import resource

    from extspec.workflow.config import validate_config
    from extspec.workflow.settings import stage_config

    store = datastore_path()
    cfg = validate_config({**CONFIG, "obs_ids": RXJ_RUNS, "datastore": str(store)}, check_datastore=False)
    t0 = time.perf_counter()
    if variant == "one":
        from extspec.workflow.pipeline import reduce_observation, run_fit

        red = stage_config(cfg, "reduce")
        for o in RXJ_RUNS:
            reduce_observation(red, store, o, f"{out}/obs/{o}")
        run_fit(stage_config(cfg, "fit"), [f"{out}/obs/{o}" for o in RXJ_RUNS], f"{out}/result.yaml", f"{out}/s.png")
        extra = {}
    else:
        from extspec.workflow.products.spatial import reduce_spatial, run_spatial

        red = stage_config(cfg, "spatial_reduce")
        t_red = time.perf_counter()
        n = [reduce_spatial(red, store, o, f"{out}/obs/{o}/spatial.h5") for o in RXJ_RUNS]
        t_red = time.perf_counter() - t_red
        test = run_spatial(stage_config(cfg, "spatial"), [f"{out}/obs/{o}/spatial.h5" for o in RXJ_RUNS],
                           f"{out}/spatial")
        extra = {"boxes": n[0], "reduce_s": t_red, "p_value": test["p_value"], "n_fitted": test["n_regions"]}
    dt = time.perf_counter() - t0
    print(json.dumps({"time": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}))


def main() -> None:
    if len(sys.argv) == 3:
        return child(*sys.argv[1:])
    res = {}
    for variant in ("one", "grid"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, __file__, variant, tmp], capture_output=True, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
            if p.returncode:
                sys.exit(p.stderr[-3000:])
            res[variant] = json.loads(p.stdout.strip().splitlines()[-1])
            res[variant]["process"] = time.perf_counter() - t0
    one, grid = res["one"], res["grid"]
    report("one-region analysis, 15 runs cold (reduce + fit), steps", one["time"], "s")
    report("one-region analysis, process incl. imports", one["process"], "s")
    report("one-region analysis, peak RSS", one["rss_mb"], "MB")
    report(f"{grid['boxes']}-box grid, 15 runs cold (spatial-reduce + spatial), steps", grid["time"], "s")
    report(f"{grid['boxes']}-box grid, of which the per-run reductions", grid["reduce_s"], "s")
    report(f"{grid['boxes']}-box grid, process incl. imports", grid["process"], "s")
    report(f"{grid['boxes']}-box grid, peak RSS", grid["rss_mb"], "MB")
    report("grid / one-region, steps", grid["time"] / one["time"], "x")
    report(f"uniformity p-value ({grid['n_fitted']} boxes measured)", grid["p_value"] or float("nan"), "")


if __name__ == "__main__":
    main()
