"""Wall time of the aggregate Snakemake jobs (stack, fit, flux_points, cumulative).

Each job is a fresh interpreter in the workflow, so the figure that matters is the wall
time of a new process, almost all of it imports.  For every job this script starts, in a
fresh process each time,

* ``function``: ``python -c`` importing extspec and calling the job's library function
  (``extspec.workflow.pipeline.stack_counts`` / ``run_fit`` / ``run_flux_points`` /
  ``run_cumulative``) on real per-observation outputs, and
* ``script``: the rule's script ``workflow/scripts/<job>.py`` with a stand-in ``snakemake``
  object (logging, offline switches, exit path of ``_helpers.run``): what the job runs after
  Snakemake's own preamble, which adds ~0.1 s of snakemake imports not counted here,

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
# snakemake.input / .output of each rule, as expressions of dirs, cubes, phas, fit, out
SNAKEMAKE_IO = {
    "stack": ("dict(cubes=cubes, spectra=phas)", "dict(fits=out + '/counts.fits', png=out + '/counts.png')"),
    "fit": ("dict(pha=phas)", "dict(result=out + '/result.yaml', png=out + '/spectrum.png')"),
    "flux_points": ("dict(pha=phas, fit=fit)", "dict(ecsv=out + '/flux_points.ecsv', png=out + '/sed.png')"),
    "cumulative": ("dict(pha=phas)", "dict(ecsv=out + '/cumulative.ecsv', png=out + '/cumulative.png')"),
}
HEAVY = ("astropy", "astropy.io.fits", "astropy.wcs", "astropy.visualization.wcsaxes", "regions",
         "matplotlib", "matplotlib.pyplot", "scipy", "h5py", "iminuit", "yaml")

SETUP = (
    "import glob, yaml\n"
    "cfg = yaml.safe_load(open({config!r})); res = {results!r}; out = {out!r}\n"
    "dirs = sorted(glob.glob(res + '/obs/*'))\n"
    "cubes = [d + '/cube.h5' for d in dirs]; phas = [d + '/pha.fits' for d in dirs]\n"
    "fit = res + '/fit/result.yaml'\n"
)
STAND_IN = (
    "class _IO(list):\n"
    "    def __init__(self, d=None):\n"
    "        super().__init__(v for v in (d or {{}}).values() if isinstance(v, str))\n"
    "        self.__dict__.update(d or {{}})\n"
    "class _Snakemake:\n"
    "    pass\n"
    "snakemake = _Snakemake()\n"
    "snakemake.rule = {job!r}; snakemake.input = _IO({inp}); snakemake.output = _IO({outp})\n"
    "snakemake.params = _IO(dict(config=cfg)); snakemake.log = _IO(dict(log=out + '/{job}.log'))\n"
    "import runpy, sys\n"
    "sys.path.insert(0, {scripts!r})\n"
    "runpy.run_path({script!r}, init_globals=dict(snakemake=snakemake), run_name='__main__')\n"
)
REPORT = "\nimport sys; print(' '.join(m for m in {heavy!r} if m in sys.modules))\n"


def job_code(job: str, mode: str, results: Path, config: Path, out: Path, report_modules: bool = False) -> str:
    code = SETUP.format(config=str(config), results=str(results), out=str(out))
    if mode == "function":
        code += "from extspec.workflow.pipeline import *\n" + CALLS[job] + "\n"
    else:
        inp, outp = SNAKEMAKE_IO[job]
        scripts = REPO / "workflow" / "scripts"
        code += STAND_IN.format(job=job, inp=inp, outp=outp, scripts=str(scripts), script=str(scripts / f"{job}.py"))
    if report_modules:
        code += REPORT.format(heavy=HEAVY)
    return code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("config", type=Path)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    ap.add_argument("--jobs", nargs="*", default=list(CALLS), choices=list(CALLS))
    ap.add_argument("--modes", nargs="*", default=["function", "script"], choices=["function", "script"])
    args = ap.parse_args()
    results, config = args.results.resolve(), args.config.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        keys = [(job, mode) for job in args.jobs for mode in args.modes]
        modules = {}
        for job, mode in keys:  # also a warm-up of the file system cache
            run = subprocess.run([sys.executable, "-c", job_code(job, mode, results, config, out, True)],
                                 check=True, capture_output=True, text=True)
            modules[job, mode] = (run.stdout.strip().splitlines() or [""])[-1]
        times = {k: [] for k in keys + [("python -c 'import numpy'", "")]}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import numpy"], check=True)
            times["python -c 'import numpy'", ""].append(time.perf_counter() - t0)
            for job, mode in keys:
                code = job_code(job, mode, results, config, out)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
                times[job, mode].append(time.perf_counter() - t0)
        for (job, mode), t in times.items():
            heavy = f"  imports: {modules[job, mode]}" if (job, mode) in modules else ""
            print(f"{job:>24} {mode:<9} median {statistics.median(t):.3f} s  min {min(t):.3f} s{heavy}")


if __name__ == "__main__":
    main()
