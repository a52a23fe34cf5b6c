"""Per run, issue 30's yardstick counted in instructions (valgrind's callgrind): what a loaded
machine does not move.

The yardstick of ``benchmarks/reduce.py`` (reading run 20326's files: both index tables, the
events and IRFs with the PSF, ``open_datastore(..., cached=False).load(..., load_psf=True)``;
against rule ``reduce``'s job in-process, ``extspec.cli.run_in_process`` with the seed
settings, exact method, each job into a fresh folder), counted as the instructions of N calls
minus those of none, after the same imports and two warm-up calls of each; both in a process
of their own under ``valgrind --tool=callgrind``.  Instructions leave out the kernel's work
(page faults, file system) and memory stalls: a complement to the CPU times of
``benchmarks/reduce.py``, not a replacement.  Takes a few minutes (four runs under valgrind).

Usage: python benchmarks/reduce_instructions.py [--obs-id 20326] [--n 4]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SEED_REDUCTION, datastore_path, report


def child(what: str, n: int, obs_id: int) -> None:
    from extspec.cli import run_in_process
    from extspec.io import datastore

    path = datastore_path()
    red = copy.deepcopy(SEED_REDUCTION)
    red["spectrum"]["method"] = "exact"
    tmp = tempfile.mkdtemp()
    jobs = itertools.count()

    def job():
        i = next(jobs)
        run_in_process(["reduce", str(obs_id), "--datastore", str(path), "--outdir", f"{tmp}/job{i}",
                        "--settings", json.dumps(red), "--log", f"{tmp}/job{i}.log", "--quiet"])

    def read():
        datastore.open_datastore(path, cached=False).load(obs_id, load_psf=True)

    for _ in range(2):
        job()
        read()
    for _ in range(n):
        (job if what == "job" else read)()


def instructions(what: str, n: int, obs_id: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                              "--child", what, "--n", str(n), "--obs-id", str(obs_id)],
                             capture_output=True, text=True, check=True)
        m = re.search(r"Collected : (\d+)", run.stderr)
        if m is None:
            raise SystemExit(f"valgrind gave no instruction count: {run.stderr[-500:]}")
        return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs-id", type=int, default=20326)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--child", choices=("job", "read"))
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.obs_id)
        return
    per = {what: (instructions(what, args.n, args.obs_id) - instructions(what, 0, args.obs_id)) / args.n
           for what in ("read", "job")}
    report("read the run's files (index tables, events, IRFs with the PSF; instructions)", per["read"] / 1e6, "M")
    report("rule reduce's job in-process (instructions)", per["job"] / 1e6, "M")
    report("in-process job / reading the run (instructions; target <= 2)", per["job"] / per["read"], "x")


if __name__ == "__main__":
    main()
