"""Adding one run at archive scale, this code against another source tree, interleaved.

Two work directories, each holding ``runs.yaml`` (N runs) and ``plus.yaml`` (N + 1 runs) as
``benchmarks/workflow.py --keep DIR`` leaves them (``DIR/scale-2000/``; copy the two files into
an empty directory for the second code: the code hash is a param of every job, so the two codes
need workdirs of their own).  The script runs ``snakemake --cores 2`` cold on ``runs.yaml`` in
each (``--cold``), then for ``--rounds`` rounds adds the run (``plus.yaml``) and removes it
again (``runs.yaml``), this code and the other one alternating, and prints each wall and CPU
time (Snakemake and its jobs) and the load average.  Set ``PATH=/tmp/shim:$PATH`` where
``scontrol`` is slow (see BRIEF).

Usage (by hand, not a test)::

    python benchmarks/add_one_ab.py WORKDIR_THIS WORKDIR_BEFORE --before OLD/src [--rounds 3] [--cold]

``OLD/src``: e.g. ``git archive <commit> src | tar -x -C /tmp/before`` -> ``/tmp/before/src``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

SNAKEFILE = Path(__file__).resolve().parents[1] / "Snakefile"


def snakemake(workdir: Path, config: str, src: str | None) -> tuple[float, float]:
    """(wall s, CPU s of Snakemake and its jobs) of one ``snakemake --cores 2`` run."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(workdir / config), "--cores", "2", "--quiet", "all"]
    t0, c0 = time.perf_counter(), os.times()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    wall, c1 = time.perf_counter() - t0, os.times()
    if res.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{(res.stdout + res.stderr)[-3000:]}")
    return wall, (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("this", type=Path, help="workdir of this code (runs.yaml, plus.yaml)")
    ap.add_argument("other", type=Path, help="workdir of the other code")
    ap.add_argument("--before", type=Path, required=True, help="the other code's src/ directory")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="first a cold run of runs.yaml in each workdir")
    args = ap.parse_args()
    trees = {"this": (args.this.resolve(), None), "before": (args.other.resolve(), str(args.before.resolve()))}
    steps = [("cold run", "runs.yaml")] if args.cold else []
    for r in range(1, args.rounds + 1):
        steps += [(f"add one run (round {r})", "plus.yaml"), (f"remove it again (round {r})", "runs.yaml")]
    for i, (label, config) in enumerate(steps):
        order = list(trees.items())
        for name, (wd, src) in (order if i % 2 == 0 else order[::-1]):  # who goes first alternates
            wall, cpu = snakemake(wd, config, src)
            load = os.getloadavg()[0]
            print(f"{name}: {label}, wall: {wall:.2f} s")
            print(f"{name}: {label}, CPU (Snakemake + jobs): {cpu:.2f} s")
            print(f"{name}: {label}, load average (1 min): {load:.2f}", flush=True)


if __name__ == "__main__":
    main()
