"""Spatially resolved spectra (issue 29): a 29-box grid over RX J1713 against the one-region analysis.

The 15 RX J1713 runs of DR1, fov background with the remnant excluded within 0.7 deg, 0.18 deg
boxes kept where their centre lies within 0.55 deg of (347.3, -0.5) (29 boxes, as H.E.S.S.
2018).  Each variant runs cold in a fresh process (its own imports, every run read from the
store), the workflow's steps called in order:

* ``one``: per run the reduction job's step (``pipeline.reduce_observation``: the cube and the
  ON/OFF spectrum of the 0.5 deg ON region), then the fit (``pipeline.run_fit``);
* ``grid``: per run ``spatial.reduce_spatial`` (the run read once, 29 boxes), then
  ``spatial.run_spatial`` (29 fits, the uniformity test, the products).

The two variants run alternately ``repeats`` times (default 3), each time in a fresh process,
so that both see the same load on a shared machine; printed are the fastest of the repeats
(the one least disturbed by other processes) and the median, the peak RSS, and the ratio of
the fastest grid to the fastest one-region run, and of the medians.
Usage: python benchmarks/spatial.py [repeats]
"""

from __future__ import annotations

import json
import statistics
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


def _run(variant: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, variant, tmp], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent)
        if p.returncode:
            sys.exit(p.stderr[-3000:])
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["process"] = time.perf_counter() - t0
        return res


def main() -> None:
    if len(sys.argv) == 3:
        return child(*sys.argv[1:])
    repeats = int(sys.argv[1]) if len(sys.argv) == 2 else 3
    runs = {"one": [], "grid": []}
    for _ in range(repeats):
        for variant in runs:
            runs[variant].append(_run(variant))

    def best(variant, key):
        return min(r[key] for r in runs[variant])

    def median(variant, key):
        return statistics.median(r[key] for r in runs[variant])

    n = runs["grid"][0]["boxes"]
    report(f"one-region analysis, 15 runs cold (reduce + fit), steps, fastest of {repeats}", best("one", "time"), "s")
    report("one-region analysis, steps, median", median("one", "time"), "s")
    report("one-region analysis, process incl. imports, fastest", best("one", "process"), "s")
    report("one-region analysis, peak RSS", max(r["rss_mb"] for r in runs["one"]), "MB")
    report(f"{n}-box grid, 15 runs cold (spatial-reduce + spatial), steps, fastest of {repeats}",
           best("grid", "time"), "s")
    report(f"{n}-box grid, steps, median", median("grid", "time"), "s")
    report(f"{n}-box grid, of which the per-run reductions, fastest", best("grid", "reduce_s"), "s")
    report(f"{n}-box grid, process incl. imports, fastest", best("grid", "process"), "s")
    report(f"{n}-box grid, peak RSS", max(r["rss_mb"] for r in runs["grid"]), "MB")
    report("grid / one-region, steps, fastest / fastest", best("grid", "time") / best("one", "time"), "x")
    report("grid / one-region, steps, median / median", median("grid", "time") / median("one", "time"), "x")
    g = runs["grid"][0]
    report(f"uniformity p-value ({g['n_fitted']} boxes measured)", g["p_value"] or float("nan"), "")


if __name__ == "__main__":
    main()
