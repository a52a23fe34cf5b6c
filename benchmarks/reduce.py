"""Per-run reduction speed on a DR1 run (issues 2 and 3).

Prints, for the seed geometry of the RX J1713 analysis:

* the median in-process time to load one run and build its cube (counts and predicted
  background; the reference method also its exposure and dispersion kernel), reference and
  exact methods (target <= 40 ms);
* the median time of the whole per-run reduction (cube + ON/OFF + safe mask + writing the
  HDF5 cube and the OGIP files), reference and exact (target <= 60 ms);
* the time to compute the code identity (``extspec.code_identity``: a SHA-256 of the package
  sources, once per job process, recorded in every product);
* per run, the yardstick of issue 30: reading the run's files (the data store's index tables,
  the events and IRF files, the PSF included, which the job reads for its containment note:
  gunzip and parse, ``open_datastore(..., cached=False).load(..., load_psf=True)``) against
  the job of rule ``reduce`` as the workflow runs it, in-process (``extspec.cli.run_in_process``:
  settings parsed, the reduction, its files and log; each job into a fresh folder, as
  Snakemake removes a job's outputs before it runs it), both medians, and their ratio (target
  <= 2), in wall time and in CPU time (``time.process_time``: what moves least on a machine
  shared with other work).  The job keeps the data store's index tables per process (as the
  jobs of one Snakemake process do); the job that reads them again (the first of a process)
  is reported too.  For contrast, the same job as a process of its own (``extspec reduce``:
  the interpreter's start and the imports included; median of 5).

Usage: python benchmarks/reduce.py [--obs-id 20326] [--repeat 15]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time

from _common import SEED_REDUCTION, datastore_path, median_time, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs-id", type=int, default=20326)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    from extspec.cube import make_cube
    from extspec.io.datastore import open_datastore
    from extspec.skyregions import parse_region
    from extspec.workflow.pipeline import reduce_observation
    from extspec.workflow.settings import cube_settings

    path = datastore_path()
    on = parse_region(SEED_REDUCTION["on_region"])
    for method in ("reference", "exact"):
        red = copy.deepcopy(SEED_REDUCTION)
        red["spectrum"]["method"] = method
        settings = cube_settings(red, on)

        def load_and_cube():
            obs = open_datastore(path).load(args.obs_id)
            make_cube(obs, settings)

        report(f"load + cube, one run, {method} (median)", 1e3 * median_time(load_and_cube, args.repeat), "ms")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("reference", "exact"):
            red = copy.deepcopy(SEED_REDUCTION)
            red["spectrum"]["method"] = method

            def whole():
                reduce_observation(red, path, args.obs_id, f"{tmp}/{method}")

            report(f"whole per-run reduction, {method} (median)", 1e3 * median_time(whole, args.repeat), "ms")

    red = copy.deepcopy(SEED_REDUCTION)
    red["spectrum"]["method"] = "exact"
    settings = json.dumps(red)
    from extspec.cli import run_in_process
    from extspec.io import datastore

    def read_run():
        datastore.open_datastore(path, cached=False).load(args.obs_id, load_psf=True)

    with tempfile.TemporaryDirectory() as tmp:
        jobs = itertools.count()

        def argv():  # a fresh output folder and log per job
            i = next(jobs)
            return ["reduce", str(args.obs_id), "--datastore", str(path), "--outdir", f"{tmp}/job{i}",
                    "--settings", settings, "--log", f"{tmp}/job{i}.log", "--quiet"]

        def job():
            run_in_process(argv())

        def first_job():  # the index tables read again, as by the first job of a process
            datastore._OPENED.clear()
            run_in_process(argv())

        for f in (read_run, job, first_job):  # warm-up
            f()
        times = {}  # (what, clock) -> durations; the three taken in turn, so that they share the minutes
        for _ in range(2 * args.repeat):
            for what, f in (("read", read_run), ("job", job), ("first", first_job)):
                w0, c0 = time.perf_counter(), time.process_time()
                f()
                times.setdefault((what, "wall"), []).append(time.perf_counter() - w0)
                times.setdefault((what, "CPU"), []).append(time.process_time() - c0)
        for name in ("wall", "CPU"):
            t_read, t_job, t_first = (statistics.median(times[what, name]) for what in ("read", "job", "first"))
            report(f"read the run's files (index tables, events, IRFs with the PSF; median {name})", 1e3 * t_read,
                   "ms")
            report(f"rule reduce's job in-process (run_in_process: the reduction, its files and log; median {name})",
                   1e3 * t_job, "ms")
            report(f"in-process job / reading the run ({name}; target <= 2)", t_job / t_read, "x")
            report(f"the same, the job reading the index tables too (first of a process; {name})",
                   t_first / t_read, "x")
        argv = argv()
        walls = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "extspec", *argv], check=True)
            walls.append(time.perf_counter() - t0)
        walls.sort()
        report("the same job as a process of its own (python -m extspec reduce; median of 5)", 1e3 * walls[2], "ms")

    import extspec

    def identity():
        extspec._CODE_IDENTITY = None  # as in a fresh job process (the OS file cache is warm)
        extspec.code_identity()

    report("code identity, once per job (median)", 1e3 * median_time(identity, args.repeat), "ms")


if __name__ == "__main__":
    main()
