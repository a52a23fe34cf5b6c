"""The everyday case side by side: the 15-run RX J1713 analysis, extspec's workflow against gammapy 2.1.

In each round, one right after the other (so that both see the same load of a shared machine):

* gammapy: ``benchmarks/gammapy_rxj1713.py`` in a fresh process (imports included), wall and
  CPU time;
* extspec cold: ``snakemake --cores N`` in a fresh working directory (no results, no
  Snakemake metadata, no config cache), wall and CPU time (Snakemake and all its jobs);
* extspec add one run: the same analysis without its last run, then with it again (one
  reduction job plus the aggregates and the summary);

and the ratios cold / gammapy (wall and CPU) and add-one / cold.  The rounds alternate which
side goes first (A/B, B/A, ...); the medians over the rounds close the output.

Usage::

    python benchmarks/everyday.py [--rounds 3] [--cores 2] [--keep DIR]

Needs gammapy 2.1 in the environment for the yardstick (``--skip-gammapy`` measures extspec
alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import workflow as wf

HERE = Path(__file__).resolve().parent


def gammapy_run(outdir: Path, datastore: str) -> tuple[float, float]:
    """Wall and CPU time of the gammapy script in a fresh process."""
    c0 = wf.children_cpu()
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(HERE / "gammapy_rxj1713.py"), str(outdir), "--datastore", datastore],
                         capture_output=True, text=True, env=wf.ENV)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"gammapy script failed:\n{res.stderr[-3000:]}")
    return wall, wf.children_cpu() - c0


def extspec_round(base: Path, cfg: dict, cores: int) -> tuple[float, float, float, float]:
    """(cold wall, cold CPU, add-one wall, add-one CPU) in a fresh working directory."""
    wd = base
    wd.mkdir(parents=True)
    full = wf.write_config(wd / "full.yaml", cfg)
    cold = wf.snakemake(wd, full, cores)
    cold_cpu = wf.LAST_CPU[0]
    last = cfg["obs_ids"][-1]
    minus = wf.write_config(wd / "minus.yaml", dict(cfg, obs_ids=cfg["obs_ids"][:-1]))
    shutil.rmtree(wd / "results" / cfg["name"] / "obs" / str(last))
    wf.snakemake(wd, minus, cores)
    add = wf.snakemake(wd, full, cores)
    return cold, cold_cpu, add, wf.LAST_CPU[0]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-gammapy", action="store_true")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = ap.parse_args(argv)

    from extspec.io.datastore import resolve_datastore_path

    import extspec

    store = str(resolve_datastore_path(None))
    pkg = Path(extspec.__file__).parent
    wf.report("bytecode of extspec's modules", "present" if any((pkg / "__pycache__").glob("cli.*.pyc")) else
              "absent (every Snakemake run compiles them once; every shell: job did)", "")
    base = args.keep or Path(tempfile.mkdtemp(prefix="extspec-everyday-"))
    base.mkdir(parents=True, exist_ok=True)
    path = wf.no_slurm_path()
    if path:
        wf.ENV["PATH"] = path
    wf.ENV.pop("GAMMAPY_DATA", None)
    cfg = wf.seed_config(store, wf.RXJ15_OBS, "rxj15")
    n = len(cfg["obs_ids"])
    rows = []
    try:
        for r in range(args.rounds):
            wf.report(f"round {r + 1}: load average before (1/5/15 min)", wf.load_average(), "")
            order = ("extspec", "gammapy") if r % 2 == 0 else ("gammapy", "extspec")
            res = {}
            for side in order:
                if side == "gammapy":
                    if not args.skip_gammapy:
                        res["gp"] = gammapy_run(base / f"gammapy-{r}", store)
                else:
                    res["ex"] = extspec_round(base / f"extspec-{r}", cfg, args.cores)
            cold, cold_cpu, add, add_cpu = res["ex"]
            wf.report(f"round {r + 1}: extspec cold ({n} runs, --cores {args.cores}), wall / CPU",
                      f"{cold:.2f} / {cold_cpu:.2f}", "s")
            wf.report(f"round {r + 1}: extspec add one run, wall / CPU", f"{add:.2f} / {add_cpu:.2f}", "s")
            wf.report(f"round {r + 1}: extspec add-one / cold (wall)", f"{add / cold:.2f}", "x")
            row = {"cold": cold, "cold_cpu": cold_cpu, "add": add / cold}
            if "gp" in res:
                gp, gp_cpu = res["gp"]
                wf.report(f"round {r + 1}: gammapy 2.1 script ({n} runs), wall / CPU", f"{gp:.2f} / {gp_cpu:.2f}", "s")
                wf.report(f"round {r + 1}: extspec cold / gammapy, wall / CPU",
                          f"{cold / gp:.2f} / {cold_cpu / gp_cpu:.2f}", "x")
                row.update(wall=cold / gp, cpu=cold_cpu / gp_cpu)
            rows.append(row)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        wf.report(f"extspec cold, wall (median of {len(rows)})", f"{med['cold']:.2f}", "s")
        wf.report(f"extspec cold, CPU per run (median of {len(rows)})", f"{med['cold_cpu'] / n:.3f}", "s")
        wf.report(f"extspec add-one / cold (median of {len(rows)})", f"{med['add']:.2f}", "x")
        if "wall" in med:
            wf.report(f"extspec cold / gammapy 2.1, wall (median of {len(rows)})", f"{med['wall']:.2f}", "x")
            wf.report(f"extspec cold / gammapy 2.1, CPU (median of {len(rows)})", f"{med['cpu']:.2f}", "x")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
