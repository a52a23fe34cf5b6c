"""Wall time of the aggregate Snakemake jobs (stack, fit, flux_points, cumulative).

Each job is a fresh interpreter in the workflow, so the figure that matters is the wall
time of a new process, almost all of it imports.  For every job this script starts, in a
fresh process each time,

* ``function``: ``python -c`` importing extspec and calling the job's library function
  (``extspec.workflow.pipeline.stack_counts`` / ``run_fit`` / ``run_flux_points`` /
  ``run_cumulative``) on real per-observation outputs, and
* ``cli``: the job's command line, ``python -m extspec STEP ... --settings JSON``, as the rule
  runs it (Snakemake adds only its ``bash -c`` around it),

and prints the median and minimum wall time over ``--repeat`` runs, plus the heavy modules
the job imported.  Runs are interleaved (job by job, repeat by repeat) so that a change in
machine load affects all jobs alike.

Usage (by hand, not a test)::

    PYTHONPATH=src python benchmarks/aggregate_jobs.py RESULTS_DIR CONFIG.yaml [--repeat 7]

``RESULTS_DIR`` holds ``obs/<id>/{cube.h5,pha,bkg,arf,rmf}.fits`` and ``fit/result.yaml``
(the flux-points job reads the fit result from there, so it does not depend on the fit job
of this script).  The interpreter and ``PYTHONPATH`` of this process are used; outputs go
to a temporary directory (or ``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CALLS = {
    "stack": "stack_counts(cfg, cubes, dirs, out + '/counts.fits', out + '/counts.png')",
    "fit": "run_fit(cfg, dirs, out + '/result.yaml', out + '/spectrum.png')",
    "flux_points": "run_flux_points(cfg, dirs, fit, out + '/flux_points.ecsv', out + '/sed.png')",
    "cumulative": "run_cumulative(cfg, dirs, out + '/cumulative.ecsv', out + '/cumulative.png')",
}
# the command line of each job, as expressions of dirs, fit, out
CLI = {
    "stack": "['stack', *dirs, '--fits', out + '/counts.fits', '--png', out + '/counts.png']",
    "fit": "['fit', *dirs, '--result', out + '/result.yaml', '--png', out + '/spectrum.png']",
    "flux_points": "['flux-points', *dirs, '--fit', fit, '--ecsv', out + '/flux_points.ecsv', '--png', out + '/sed.png']",
    "cumulative": "['cumulative', *dirs, '--ecsv', out + '/cumulative.ecsv', '--png', out + '/cumulative.png']",
}
HEAVY = ("astropy", "astropy.io.fits", "astropy.wcs", "astropy.visualization.wcsaxes", "regions",
         "matplotlib", "matplotlib.pyplot", "scipy", "h5py", "iminuit", "yaml", "snakemake")

SETUP = (
    "import glob, yaml\n"
    "cfg = yaml.safe_load(open({config!r})); res = {results!r}; out = {out!r}\n"
    "dirs = sorted(glob.glob(res + '/obs/*'))\n"
    "cubes = [d + '/cube.h5' for d in dirs]; phas = [d + '/pha.fits' for d in dirs]\n"
    "fit = res + '/fit/result.yaml'\n"
)
REPORT = "\nimport sys; print(' '.join(m for m in {heavy!r} if m in sys.modules))\n"


def job_cmd(job: str, mode: str, results: Path, config: Path, out: Path, report_modules: bool = False) -> list:
    """The argv of one job: ``python -c`` calling the library function, or the command line
    (with the settings computed here, as the workflow passes them ready-made)."""
    if mode == "function":
        code = SETUP.format(config=str(config), results=str(results), out=str(out))
        code += "from extspec.workflow.pipeline import *\n" + CALLS[job] + "\n"
        if report_modules:
            code += REPORT.format(heavy=HEAVY)
        return [sys.executable, "-c", code]
    import glob

    import yaml

    from extspec.workflow.config import settings_json, stage_config, validate_config

    cfg = validate_config(yaml.safe_load(config.read_text()), check_datastore=False)
    dirs, fit, out = sorted(glob.glob(str(results / "obs" / "*"))), str(results / "fit" / "result.yaml"), str(out)
    argv = eval(CLI[job])  # noqa: S307  (the fixed expressions above)
    cmd = [sys.executable, "-m", "extspec", *argv, "--settings", settings_json(stage_config(cfg, job)), "-q"]
    if report_modules:  # the same job in-process, to list its imports
        code = ("import sys\nfrom extspec.cli import main\nmain(sys.argv[1:])\n" + REPORT.format(heavy=HEAVY))
        return [sys.executable, "-c", code, *cmd[3:]]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("config", type=Path)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    ap.add_argument("--jobs", nargs="*", default=list(CALLS), choices=list(CALLS))
    ap.add_argument("--modes", nargs="*", default=["function", "cli"], choices=["function", "cli"])
    args = ap.parse_args()
    results, config = args.results.resolve(), args.config.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        keys = [(job, mode) for job in args.jobs for mode in args.modes]
        modules = {}
        for job, mode in keys:  # also a warm-up of the file system cache
            run = subprocess.run(job_cmd(job, mode, results, config, out, True),
                                 check=True, capture_output=True, text=True)
            modules[job, mode] = (run.stdout.strip().splitlines() or [""])[-1]
        cmds = {(job, mode): job_cmd(job, mode, results, config, out) for job, mode in keys}
        times = {k: [] for k in keys + [("python -c 'import numpy'", "")]}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import numpy"], check=True)
            times["python -c 'import numpy'", ""].append(time.perf_counter() - t0)
            for job, mode in keys:
                t0 = time.perf_counter()
                subprocess.run(cmds[job, mode], check=True, stdout=subprocess.DEVNULL)
                times[job, mode].append(time.perf_counter() - t0)
        for (job, mode), t in times.items():
            heavy = f"  imports: {modules[job, mode]}" if (job, mode) in modules else ""
            print(f"{job:>24} {mode:<9} median {statistics.median(t):.3f} s  min {min(t):.3f} s{heavy}")


if __name__ == "__main__":
    main()
