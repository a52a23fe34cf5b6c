"""Wall time and peak memory of the aggregate steps (stack, fit, flux_points, cumulative).

For every step this script starts, in a fresh process each time,

* ``function``: ``python -c`` importing extspec and calling the step's library function
  (``extspec.workflow.pipeline.stack_counts`` + ``write_maps`` / ``run_fit`` /
  ``run_flux_points`` / ``run_cumulative``) on the reduced runs of ``RESULTS_DIR``, and
* ``cli`` (``--modes cli``): the step's command line, ``python -m extspec STEP ... --settings JSON``,

and prints the median and minimum wall time over ``--repeat`` runs, the step's own time (the
wall time minus the imports, measured inside the process), its peak memory (maximum resident
set size of the process), and the heavy modules the step imported.  Runs are interleaved (step
by step, repeat by repeat) so that a change in machine load affects all steps alike.

``--before SRC``: the same steps also with another source tree of extspec (e.g. ``git archive
<commit> src | tar -x -C /tmp/before``, then ``--before /tmp/before/src``), interleaved A/B
with this one, each figure printed for both (issue 30: results from partial sums vs reading
every run).

The inputs are what the workflow hands the steps: the batch manifests ``obs/batch-*.json``
when the analysis was reduced in batches (the steps then read the arrays files beside them, and
their per-batch partial sums, :mod:`extspec.io.batch_arrays`), else the run folders
``obs/<id>/``.  ``fit/result.yaml`` of ``RESULTS_DIR`` feeds the flux points (so that job does
not depend on the fit job of this script).  ``--fit-stat``: also the cost of one evaluation of
the joint fit's vectorised WStat over all runs (in this process).

Usage (by hand, not a test)::

    python benchmarks/aggregate_jobs.py RESULTS_DIR CONFIG.yaml [--repeat 5] [--before OLD/src] [--fit-stat] [--first N]

An archive-scale RESULTS_DIR: the workflow run on ``benchmarks/workflow.py``'s
``scale_store(path, N)`` with ``scale_config(...)`` (``reduce.batch_size: auto``, batches of
50 runs), e.g. ``python benchmarks/workflow.py --skip-dr1 --skip-sim --scale-runs 2000 --keep DIR``
(then ``DIR/scale-2000/results/scale2000`` and ``DIR/scale-2000/runs.yaml``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CALLS = {
    "stack": ("inp = read_stack_inputs(cfg, cubes, dirs)\n"
              "stack_counts(cfg, cubes, dirs, out + '/counts.fits', out + '/counts.png', inputs=inp)\n"
              "write_maps(cfg, cubes, dirs, out + '/excess.fits', out + '/significance.fits', out + '/maps.png', "
              "inputs=inp)"),
    "fit": "run_fit(cfg, dirs, out + '/result.yaml', out + '/spectrum.png')",
    "flux_points": "run_flux_points(cfg, dirs, fit, out + '/flux_points.ecsv', out + '/sed.png')",
    "cumulative": "run_cumulative(cfg, dirs, out + '/cumulative.ecsv', out + '/cumulative.png')",
}
# the command line of each job, as expressions of dirs, cubes, fit, out
CLI = {
    "stack": ("['stack', *dirs, '--fits', out + '/counts.fits', '--png', out + '/counts.png', '--excess', "
              "out + '/excess.fits', '--significance', out + '/significance.fits', '--maps-png', out + '/maps.png']"),
    "fit": "['fit', *dirs, '--result', out + '/result.yaml', '--png', out + '/spectrum.png']",
    "flux_points": "['flux-points', *dirs, '--fit', fit, '--ecsv', out + '/flux_points.ecsv', '--png', out + '/sed.png']",
    "cumulative": "['cumulative', *dirs, '--ecsv', out + '/cumulative.ecsv', '--png', out + '/cumulative.png']",
}
HEAVY = ("astropy", "astropy.io.fits", "astropy.wcs", "regions", "matplotlib", "scipy", "h5py", "iminuit", "yaml",
         "snakemake")

SETUP = (
    "import glob, sys, time, yaml\n"
    "t_start = time.perf_counter()\n"
    "from extspec.workflow.config import stage_config, validate_config\n"
    "from extspec.workflow.pipeline import *\n"
    "import extspec.plots, extspec.fit, extspec.fluxpoints, extspec.stacking, extspec.maps, h5py, iminuit\n"
    "full = validate_config(yaml.safe_load(open({config!r})), check_datastore=False)\n"
    "cfg = stage_config(full, {stage!r}); res = {results!r}; out = {out!r}\n"
    "man = sorted(glob.glob(res + '/obs/batch-*.json'), key=lambda p: int(p.rsplit('batch-', 1)[1].split('.')[0]))\n"
    "man = man[:{first}] if {first} else man\n"
    "dirs = man or sorted(d for d in glob.glob(res + '/obs/*') if not d.endswith(('.json', '.h5')))\n"
    "cubes = man or [d + '/cube.h5' for d in dirs]\n"
    "fit = res + '/fit/result.yaml'\n"
    "t_step = time.perf_counter()\n"
)
REPORT = ("\nprint('STEP', time.perf_counter() - t_step)\n"
          "print('MODULES', ' '.join(m for m in {heavy!r} if m in sys.modules))\n")


FIRST = [0]
"""--first N: only the first N batch manifests (0: all)."""


def inputs(results: Path) -> tuple[list, list]:
    """(spectrum inputs, cube inputs) of the steps, as the workflow passes them (with
    ``--first N`` the first N batch manifests, in batch order)."""
    man = sorted((str(p) for p in (results / "obs").glob("batch-*.json")),
                 key=lambda p: int(p.rsplit("batch-", 1)[1].split(".")[0]))
    man = man[:FIRST[0]] if FIRST[0] else man
    if man:
        return man, man
    dirs = sorted(str(p) for p in (results / "obs").iterdir() if p.is_dir())
    return dirs, [d + "/cube.h5" for d in dirs]


def job_cmd(job: str, mode: str, results: Path, config: Path, out: Path) -> list:
    """The argv of one job: ``python -c`` calling the library function, or the command line
    (with the settings computed here, as the workflow passes them ready-made)."""
    if mode == "function":
        code = SETUP.format(config=str(config), results=str(results), out=str(out), stage=job, first=FIRST[0])
        code += CALLS[job] + "\n" + REPORT.format(heavy=HEAVY)
        return [sys.executable, "-c", code]
    import yaml

    from extspec.workflow.config import settings_json, stage_config, validate_config

    cfg = validate_config(yaml.safe_load(config.read_text()), check_datastore=False)
    dirs, cubes = inputs(results)
    fit, out = str(results / "fit" / "result.yaml"), str(out)
    argv = eval(CLI[job])  # noqa: S307  (the fixed expressions above)
    return [sys.executable, "-m", "extspec", *argv, "--settings", settings_json(stage_config(cfg, job)), "-q"]


def run(cmd: list, env: dict) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one process (its own peak: ``os.wait4``'s rusage)."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])[:200]} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


def fit_stat_cost(results: Path) -> None:
    """Milliseconds of one evaluation of the joint fit's WStat (one fold over (runs, true bins,
    reco bins)) and of building its arrays, in this process."""
    from extspec.fit import JointData
    from extspec.io.batch_arrays import read_spectra
    from extspec.models import get_model

    dirs, _ = inputs(results)
    t0 = time.perf_counter()
    spectra = read_spectra(dirs)
    t1 = time.perf_counter()
    data = JointData(spectra)
    t2 = time.perf_counter()
    flux = get_model("power_law").integral(data.e_min, data.e_max, index=2.5, amplitude=3e-11, reference=1)
    n = 50
    t3 = time.perf_counter()
    for _ in range(n):
        data.stat(flux)
    t4 = time.perf_counter()
    shape = data.response.shape
    print(f"fit: read {len(spectra)} spectra: {t1 - t0:.3f} s")
    print(f"fit: JointData arrays (runs x true x reco = {shape[0]} x {shape[1]} x {shape[2]}): {t2 - t1:.3f} s")
    print(f"fit: one vectorised WStat evaluation over {len(data)} runs: {1e3 * (t4 - t3) / n:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("config", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    ap.add_argument("--jobs", nargs="*", default=list(CALLS), choices=list(CALLS))
    ap.add_argument("--modes", nargs="*", default=["function"], choices=["function", "cli"])
    ap.add_argument("--before", type=Path, help="another extspec source tree (its src/), timed A/B against this one")
    ap.add_argument("--fit-stat", action="store_true", help="also time one WStat evaluation of the joint fit")
    ap.add_argument("--first", type=int, default=0,
                    help="only the first N batch manifests (peak memory against the number of runs from one "
                         "results dir: e.g. 10 and 41 batches of 50 runs = 500 and 2,000 runs)")
    args = ap.parse_args()
    FIRST[0] = args.first
    results, config = args.results.resolve(), args.config.resolve()
    trees = {"this": None, **({"before": str(args.before.resolve())} if args.before else {})}
    print(f"inputs: {len(inputs(results)[0])} ({'batch manifests' if inputs(results)[0][0].endswith('.json') else 'runs'})")
    print(f"load average before (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory() as tmp:
        base = (args.out or Path(tmp)).resolve()
        keys = [(job, mode, tree) for job in args.jobs for mode in args.modes for tree in trees]
        envs = {}
        for tree, src in trees.items():
            env = dict(os.environ)
            if src:
                env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
            envs[tree] = env
        cmds = {}
        for job, mode, tree in keys:
            out = base / tree
            out.mkdir(parents=True, exist_ok=True)
            cmds[job, mode, tree] = job_cmd(job, mode, results, config, out)
        stats = {k: {"wall": [], "step": [], "rss": []} for k in keys}
        modules = {}
        for r in range(args.repeat + 1):  # the first round warms the file system cache, not counted
            order = keys if r % 2 == 0 else keys[::-1]
            for k in order:
                wall, rss, out = run(cmds[k], envs[k[2]])
                lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("STEP", "MODULES")))
                modules[k] = lines.get("MODULES", "")
                if r:
                    stats[k]["wall"].append(wall)
                    stats[k]["step"].append(float(lines["STEP"]) if "STEP" in lines else float("nan"))
                    stats[k]["rss"].append(rss)
        for (job, mode, tree), s in stats.items():
            label = f"{job} ({mode}{', ' + tree if len(trees) > 1 else ''})"
            print(f"{label}: wall median {statistics.median(s['wall']):.3f} s, min {min(s['wall']):.3f} s; "
                  f"step median {statistics.median(s['step']):.3f} s; peak RSS {max(s['rss']):.0f} MB"
                  + (f"; imports: {modules[job, mode, tree]}" if modules[job, mode, tree] else ""))
        if len(trees) > 1:
            for job in args.jobs:
                for mode in args.modes:
                    a = statistics.median(stats[job, mode, "this"]["step"])
                    b = statistics.median(stats[job, mode, "before"]["step"])
                    print(f"{job} ({mode}): step this / before: {a:.3f} / {b:.3f} s = {a / b:.2f} x")
    if args.fit_stat:
        fit_stat_cost(results)
    print(f"load average after (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
