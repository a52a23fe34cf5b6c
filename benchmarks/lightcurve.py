"""The light curve of the PKS 2155-304 flare night (DR1, 2006-07-29/30) from cached reductions.

The 21 DR1 runs within 2 deg of PKS 2155-304 (the pks2155 analysis of config/hess-dr1.yaml),
a light curve in 34 ten-minute bins from 2006-07-29T20:20 to 2006-07-30T02:00 UTC (bins cut
the runs; the six 2008 runs lie outside every bin and are ignored) and two energy bins
(0.3-1 and 1-40 TeV requested; snapped to reco edges).  Every step runs as the workflow runs
it, ``python -m extspec STEP ... --settings JSON`` in a fresh process:

* cold: 20 runs (all but 33794) reduced with ``--onoff-events``, the joint fit, the light curve;
* after adding run 33794: its reduction, the fit, the light curve (what the workflow reruns
  besides the other aggregates).

Printed: the reductions' total time, each light-curve job's wall time, its step's time
after its imports (from the job's log) and its peak memory (``resource.getrusage`` of the
job process), the light curve's cost relative to the reductions it reads, and the size of
the per-run event files.

Fine binning (issue 27): on the same reductions, light curves with ``--fine`` widths (default
10 s and 1 s bins over the same span): the job's time per time bin (wall, and the step after
its imports), its peak memory, the number of rows and the constant-flux p-value.  The target
is at most 1 ms per time bin on 2 cores and memory that does not grow with the bins beyond
the output table.  The figures are wall times: on a shared, loaded machine they are upper
bounds.

Usage: python benchmarks/lightcurve.py [--out DIR] [--fine 10 1]   (needs the DR1 data store)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import datastore_path, report

REPO = Path(__file__).resolve().parents[1]
ADDED_RUN = 33794
LIGHT_CURVE = {"time_bins": {"start": "2006-07-29T20:20:00", "stop": "2006-07-30T02:00:00", "width_s": 600},
               "energy_edges": [0.3, 1.0, 40.0]}
# the job's command line in-process, printing its peak memory at the end
JOB = ("import resource, sys\nfrom extspec.cli import main\nrc = main(sys.argv[1:])\n"
       "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\nsys.exit(rc)\n")


def pks_config() -> dict:
    from extspec.workflow.config import validate_analyses

    raw = yaml.safe_load((REPO / "config" / "hess-dr1.yaml").read_text())
    raw["analyses"] = {"pks2155": dict(raw["analyses"]["pks2155"], light_curve=LIGHT_CURVE)}
    raw["datastore"] = str(datastore_path())
    return validate_analyses(raw, check_datastore=True)["pks2155"]


def run(argv, settings, log: Path) -> tuple[float, float, float]:
    """Run one step; (wall s, the step's own time after its imports from its log, peak MB)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", JOB, *argv, "--settings", settings, "-q", "--log", str(log)],
                         check=True, capture_output=True, text=True).stdout.split()
    wall = time.perf_counter() - t0
    step = re.search(r"done in ([0-9.]+) s", log.read_text())
    return wall, float(step.group(1)) if step else float("nan"), float(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    ap.add_argument("--fine", type=float, nargs="*", default=[10.0, 1.0], help="bin widths (s) of the fine curves")
    args = ap.parse_args()
    from extspec.io.datastore import open_datastore
    from extspec.io.ecsv import read_ecsv_rows
    from extspec.workflow.config import selected_obs_ids, settings_json, stage_config

    cfg = pks_config()
    store = datastore_path()
    obs = selected_obs_ids(cfg, open_datastore(store))
    assert len(obs) == 21 and ADDED_RUN in obs, obs
    settings = {s: settings_json(stage_config(cfg, s)) for s in ("reduce", "fit", "light_curve")}
    with tempfile.TemporaryDirectory() as tmp:
        out = (args.out or Path(tmp)).resolve()

        def reduce(o):
            return run(["reduce", str(o), "--datastore", str(store), "--outdir", str(out / "obs" / str(o)),
                        "--onoff-events"], settings["reduce"], out / f"reduce-{o}.log")

        def aggregate(runs):
            dirs = [str(out / "obs" / str(o)) for o in runs]
            fit = run(["fit", *dirs, "--result", str(out / "result.yaml"), "--png", str(out / "spectrum.png")],
                      settings["fit"], out / "fit.log")
            lc = run(["light-curve", *dirs, "--fit", str(out / "result.yaml"), "--ecsv", str(out / "lightcurve.ecsv"),
                      "--png", str(out / "lightcurve.png")], settings["light_curve"], out / "light_curve.log")
            return fit, lc

        cold = [o for o in obs if o != ADDED_RUN]
        red = [reduce(o) for o in cold]
        fit, lc = aggregate(cold)
        fine(cfg, out, cold, args.fine)
        t_red = sum(r[0] for r in red)
        rows, _ = read_ecsv_rows(out / "lightcurve.ecsv")
        report("cold: reductions of 20 runs (one process each, sequential)", t_red, "s")
        report("cold: reduction per run (median)", sorted(r[0] for r in red)[len(red) // 2], "s")
        report("cold: joint fit job", fit[0], "s")
        report("cold: light-curve job (20 runs)", lc[0], "s")
        report("cold: light-curve job: the step after its imports", lc[1], "s")
        report("cold: light-curve job peak memory", lc[2], "MB")
        report("cold: light-curve rows (time bins with data x energy bins)", len(rows), "rows")
        report("cold: light-curve job / reductions it reads", 100 * lc[0] / t_red, "%")
        sizes = sorted((out / "obs" / str(o) / "onoff_events.h5").stat().st_size / 1024 for o in cold)
        report("onoff_events.h5 per run (median)", sizes[len(sizes) // 2], "kB")
        added = reduce(ADDED_RUN)
        fit2, lc2 = aggregate(obs)
        report(f"added run {ADDED_RUN}: its reduction", added[0], "s")
        report("added run: joint fit job", fit2[0], "s")
        report("added run: light-curve job (21 runs)", lc2[0], "s")
        report("added run: light-curve job: the step after its imports", lc2[1], "s")
        report("added run: light-curve job peak memory", lc2[2], "MB")
        rows, meta = read_ecsv_rows(out / "lightcurve.ecsv")
        report("added run: light-curve rows", len(rows), "rows")
        report("added run: constant-flux chi2 per degree of freedom",
               meta["variability_chi2"] / max(meta["variability_ndf"], 1), "")
        print(f"runs outside every bin: {meta['obs_ids_outside_bins']}")


def fine(cfg: dict, out: Path, runs: list, widths: list) -> None:
    """Light-curve jobs at fine binning on the reductions in ``out`` (see the module doc)."""
    from extspec.io.ecsv import read_ecsv_rows
    from extspec.workflow.config import settings_json, stage_config

    dirs = [str(out / "obs" / str(o)) for o in runs]
    for width in widths:
        lc_cfg = dict(cfg, light_curve={**cfg["light_curve"], "time_bins": {**LIGHT_CURVE["time_bins"],
                                                                             "width_s": width}})
        ecsv = out / f"lightcurve_{width:g}s.ecsv"
        wall, step, mem = run(["light-curve", *dirs, "--fit", str(out / "result.yaml"), "--ecsv", str(ecsv),
                               "--png", str(out / f"lightcurve_{width:g}s.png")],
                              settings_json(stage_config(lc_cfg, "light_curve")), out / f"light_curve_{width:g}s.log")
        rows, meta = read_ecsv_rows(ecsv)
        n_bins = len({(r["time_min"], r["time_max"]) for r in rows})
        report(f"fine {width:g} s bins: time bins with data", n_bins, "bins")
        report(f"fine {width:g} s bins: light-curve job", wall, "s")
        report(f"fine {width:g} s bins: job wall time per time bin (loaded machine)", 1e3 * wall / n_bins, "ms")
        report(f"fine {width:g} s bins: step after its imports per time bin (loaded machine)", 1e3 * step / n_bins,
               "ms")
        report(f"fine {width:g} s bins: peak memory", mem, "MB")
        report(f"fine {width:g} s bins: output table", ecsv.stat().st_size / 2**20, "MB")
        report(f"fine {width:g} s bins: constant-flux p-value", meta["variability_p_value"], "")
        report(f"fine {width:g} s bins: constant-flux groups (energy bin 1)",
               meta["variability_per_energy_bin"][0]["n_groups"], "groups")


if __name__ == "__main__":
    main()
