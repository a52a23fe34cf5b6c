"""Workflow timings, per-job overhead and per-job memory.  Prints lines ``<what>: <value> <unit>``.

For the seed config (6 RX J1713 runs) and the 15-run RX J1713 config, with ``--cores 2``:

* cold run: a fresh working directory (no results, no Snakemake metadata, no config cache);
* no-op rerun: ``snakemake`` again with nothing to do (median of 3);
* add one obs: the same analysis without its last run, then with it again -- one reduction
  plus the aggregates (the removal run before it is reported too).

Every Snakemake run is reported with its wall time and its CPU time (user + system of
Snakemake and all its jobs): on a machine shared with other work the CPU time moves much
less than the wall time.

Per-job overhead, from the 15-run cold run: a job's wall time minus the in-process time of
its step (``done in X s`` in the job's log; the step's imports are logged apart and count as
overhead).  For the reductions the wall time is Snakemake's ``benchmark:`` record of the job
(shell, interpreter, imports, step, exit); the four aggregate jobs are timed by running
their command line (``python -m extspec STEP ...``) afresh on the cold run's outputs.

The four-target DR1 config (``config/hess-dr1.yaml``, 60 runs in four analyses): cold run,
no-op rerun, add one run to one analysis (the Crab analysis without its last run, then with
it), and the time inside each analysis's ``stack`` job (counts image + excess/significance
maps), read from its log.

Then a simulated store (``extspec.simulate``) of N runs (default 500) is reduced end to end,
and the peak memory of the reduction jobs is read from their Snakemake ``benchmark:`` files
(column max_rss, sampled every 0.5 s) and from the jobs' own logs (``peak RSS``, the exact
VmHWM of the job process).

Archive scale (``--scale-runs 2000 10000``): a store of N small simulated runs
(:func:`scale_store`), analysed with ``reduce.batch_size: auto`` (batches of 50): cold run,
no-op rerun, add one run, CPU seconds per run, the fitted index against the simulated one,
step time and peak memory of every aggregate job in the workflow (where they share
Snakemake's process) and of each aggregate alone in its own process on the batches'
manifests (its own VmHWM); then, in the same invocation, Snakemake alone running a DAG of N
trivial ``touch`` jobs, and the load average around it.

extspec's bytecode is compiled first (``python -m compileall`` on the package, as a user's
first run leaves it, and said in the output): with ``PYTHONDONTWRITEBYTECODE=1`` every job
would otherwise compile extspec's modules afresh, which the trivial DAG, importing no extspec,
does not pay.

Usage::

    python benchmarks/workflow.py [--cores 2] [--sim-runs 500] [--skip-sim] [--skip-multi] [--keep DIR]
    python benchmarks/workflow.py --skip-dr1 --skip-sim --skip-multi --scale-runs 2000 10000
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SEED_OBS = [20326, 20327, 20349, 20350, 20396, 20397]
RXJ15_OBS = [20326, 20327, 20349, 20350, 20396, 20397, 20421, 20422, 20517, 20518, 20519, 20521,
             20898, 20899, 20900]


def report(what: str, value, unit: str) -> None:
    print(f"{what}: {value} {unit}", flush=True)


def no_slurm_path():
    """PATH with an always-failing ``scontrol`` first, when SLURM's tools are installed but
    no controller answers: snakemake-executor-plugin-slurm runs ``scontrol show config``
    (timeout 10 s) at every snakemake start, which would otherwise add 10 s to each timing."""
    if shutil.which("scontrol") is None:
        return None
    try:
        if subprocess.run(["scontrol", "ping"], capture_output=True, timeout=5).returncode == 0:
            return None
    except (subprocess.TimeoutExpired, OSError):
        pass
    shim = Path(tempfile.mkdtemp(prefix="extspec-no-slurm-"))
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    print("note: SLURM tools installed but no controller answers; scontrol shimmed for the timings",
          file=sys.stderr)
    return f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"


ENV = dict(os.environ)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


LAST_CPU = [0.0]


def snakemake(workdir: Path, configfile: Path, cores: int, *args) -> float:
    """Run snakemake; return the wall time in s (raises on failure).  Its CPU time (with its
    jobs) is left in LAST_CPU[0]."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", str(cores), "--quiet", "all", *args]
    c0 = children_cpu()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=ENV)
    dt = time.perf_counter() - t0
    LAST_CPU[0] = children_cpu() - c0
    if res.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{(res.stdout + res.stderr)[-3000:]}")
    return dt


def timed(label: str, workdir: Path, configfile: Path, cores: int, *args) -> float:
    """Run snakemake and report its wall and CPU time."""
    wall = snakemake(workdir, configfile, cores, *args)
    report(label, f"{wall:.2f}", "s")
    report(f"{label}, CPU time (Snakemake + jobs)", f"{LAST_CPU[0]:.2f}", "s")
    return wall


_DONE = re.compile(r"done in ([\d.]+) s \(imports ([\d.]+) s\), peak RSS ([\d.]+) MB")


def step_times(log: Path) -> tuple[float, float, float] | None:
    """(step s, imports s, peak RSS MB) from a job's log, or None."""
    m = _DONE.search(log.read_text()) if log.is_file() else None
    return tuple(float(x) for x in m.groups()) if m else None


def standalone_jobs(tmp: Path, full: dict, commands: dict):
    """Run each aggregate step ``commands[stage]`` (its ``extspec`` argv, settings from the
    config ``full``) as a process of its own; yield (stage, wall s, step_times of its log)."""
    from extspec.workflow.config import settings_json, stage_config

    for stage, argv in commands.items():
        log = tmp / f"{stage}.log"
        cmd = [sys.executable, "-m", "extspec", *map(str, argv), "--settings",
               settings_json(stage_config(full, stage)), "--log", str(log), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=ENV)
        yield stage, time.perf_counter() - t0, step_times(log)


def job_overheads(wd: Path, cfg: dict) -> None:
    """Per-job overhead of the cold run in ``wd`` (see the module docstring)."""
    from extspec.workflow.config import validate_config

    out = wd / "results" / cfg["name"]
    red, steps, imports = [], [], []
    for tsv in sorted((out / "benchmarks" / "reduce").glob("*.tsv")):
        with open(tsv) as fh:
            wall = float(next(csv.DictReader(fh, delimiter="\t"))["s"])
        st = step_times(out / "logs" / "reduce" / f"{tsv.stem}.log")
        if st:
            red.append(wall - st[0])
            steps.append(st[0])
            imports.append(st[1])
    agg = []
    full = validate_config(dict(cfg), check_datastore=False)
    obs = [str(out / "obs" / str(o)) for o in cfg["obs_ids"]]
    tmp = wd / "standalone"
    tmp.mkdir(exist_ok=True)
    commands = {
        "stack": ["stack", *obs, "--fits", tmp / "c.fits", "--png", tmp / "c.png"],
        "fit": ["fit", *obs, "--result", tmp / "r.yaml", "--png", tmp / "s.png"],
        "flux_points": ["flux-points", *obs, "--fit", out / "fit" / "result.yaml", "--ecsv", tmp / "f.ecsv",
                        "--png", tmp / "f.png"],
        "cumulative": ["cumulative", *obs, "--ecsv", tmp / "cu.ecsv", "--png", tmp / "cu.png"],
    }
    for stage, wall, st in standalone_jobs(tmp, full, commands):
        agg.append(wall - st[0])
        report(f"{stage} job: wall / step / imports", f"{wall:.3f} / {st[0]:.3f} / {st[1]:.3f}", "s")
    if red:
        report(f"reduce job: step time inside the job (median of {len(red)})", f"{statistics.median(steps):.3f}", "s")
        report(f"reduce job: imports of the step (median of {len(red)})", f"{statistics.median(imports):.3f}", "s")
        report(f"per-job overhead, reductions (job wall - step, median of {len(red)})",
               f"{statistics.median(red):.3f}", "s")
    report(f"per-job overhead, aggregate jobs (median of {len(agg)})", f"{statistics.median(agg):.3f}", "s")
    report(f"per-job overhead (median over all {len(red) + len(agg)} jobs)", f"{statistics.median(red + agg):.3f}", "s")


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def seed_config(datastore: str, obs_ids, name: str) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(name=name, datastore=datastore, obs_ids=list(obs_ids))
    return cfg


def bench_config(label: str, cfg: dict, base: Path, cores: int, overheads: bool = False) -> None:
    wd = base / label
    wd.mkdir(parents=True)
    full = write_config(wd / "full.yaml", cfg)
    cold = timed(f"{label} cold run ({len(cfg['obs_ids'])} runs, --cores {cores})", wd, full, cores)
    if overheads:
        job_overheads(wd, cfg)
    runs = []
    for _ in range(3):
        runs.append((snakemake(wd, full, cores), LAST_CPU[0]))
    report(f"{label} no-op rerun (median of 3)", f"{statistics.median(r[0] for r in runs):.2f}", "s")
    report(f"{label} no-op rerun, CPU time", f"{statistics.median(r[1] for r in runs):.2f}", "s")
    last = cfg["obs_ids"][-1]
    minus = write_config(wd / "minus.yaml", dict(cfg, obs_ids=cfg["obs_ids"][:-1]))
    shutil.rmtree(wd / "results" / cfg["name"] / "obs" / str(last))
    timed(f"{label} remove-one-obs rerun (aggregates only)", wd, minus, cores)
    added = timed(f"{label} add-one-obs rerun (1 reduction + aggregates)", wd, full, cores)
    report(f"{label} add-one-obs / cold", f"{100 * added / cold:.0f}", "%")


def job_seconds(log: Path) -> float | None:
    m = re.search(r"done in ([\d.]+) s", log.read_text()) if log.is_file() else None
    return float(m.group(1)) if m else None


def bench_multi(datastore: str, base: Path, cores: int) -> None:
    """config/hess-dr1.yaml (over the seed config, as --configfile does): four analyses."""
    from extspec.io.datastore import open_datastore
    from extspec.workflow.config import selected_obs_ids, validate_analyses

    cfg = seed_config(datastore, SEED_OBS, "seed")
    over = yaml.safe_load((REPO / "config" / "hess-dr1.yaml").read_text())
    cfg.update(over)
    wd = base / "hess-dr1"
    wd.mkdir(parents=True)
    full = write_config(wd / "full.yaml", cfg)
    cfgs = validate_analyses(cfg)
    store = open_datastore(datastore)
    runs = {name: selected_obs_ids(c, store) for name, c in cfgs.items()}
    n = sum(len(v) for v in runs.values())
    cold = snakemake(wd, full, cores)
    report(f"hess-dr1 cold run ({len(runs)} analyses, {n} runs, --cores {cores})", f"{cold:.1f}", "s")
    noop = statistics.median(snakemake(wd, full, cores) for _ in range(3))
    report("hess-dr1 no-op rerun", f"{noop:.2f}", "s")
    for name in runs:
        t = job_seconds(wd / "results" / name / "logs" / "stack.log")
        if t is not None:
            report(f"hess-dr1 {name} stack job (counts image + maps, {len(runs[name])} runs, inside the job)",
                   f"{t:.2f}", "s")
    crab = runs["crab"]
    minus_cfg = yaml.safe_load(full.read_text())
    minus_cfg["analyses"]["crab"].update(obs_cone=None, obs_ids=crab[:-1])
    minus = write_config(wd / "minus.yaml", minus_cfg)
    shutil.rmtree(wd / "results" / "crab" / "obs" / str(crab[-1]))
    snakemake(wd, minus, cores)
    added = snakemake(wd, full, cores)
    report("hess-dr1 add-one-run rerun (1 reduction + the crab aggregates + summary)", f"{added:.2f}", "s")


def max_rss_from_benchmarks(bench_dir: Path) -> tuple[float, int]:
    peak, n = 0.0, 0
    for f in bench_dir.glob("*.tsv"):
        with open(f) as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                try:
                    peak = max(peak, float(row["max_rss"]))
                    n += 1
                except (KeyError, ValueError):
                    pass
    return peak, n


def max_rss_from_logs(log_dir: Path) -> float:
    peak = 0.0
    for f in log_dir.glob("*.log"):
        m = re.search(r"peak RSS ([\d.]+) MB", f.read_text())
        if m:
            peak = max(peak, float(m.group(1)))
    return peak


def bench_simulated(n_runs: int, base: Path, cores: int) -> None:
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    t0 = time.perf_counter()
    src = SourceModel(83.63, 22.01, frame="icrs", morphology="disk", size=0.2, spectrum="power_law",
                      params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(base / "sim-store", wobble_pointings(83.63, 22.01, n_runs, 0.7), src,
                               livetime=1800.0)
    report(f"simulate {n_runs}-run store", f"{time.perf_counter() - t0:.1f}", "s")
    wd = base / "sim"
    wd.mkdir()
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": list(range(1, n_runs + 1)),
           "on_region": "icrs;circle(83.63,22.01,0.3)", "geom": {"width": [3.0, 3.0], "frame": "icrs"}}
    cf = write_config(wd / "sim.yaml", cfg)
    timed(f"simulated {n_runs}-run store end to end (--cores {cores})", wd, cf, cores)
    peak, n = max_rss_from_benchmarks(wd / "results" / "sim" / "benchmarks" / "reduce")
    report(f"peak memory per reduce job (benchmark max_rss, {n} jobs)", f"{peak:.0f}", "MB")
    report("peak memory per reduce job (VmHWM, from the job logs)",
           f"{max_rss_from_logs(wd / 'results' / 'sim' / 'logs' / 'reduce'):.0f}", "MB")
    for rule in ("stack", "fit", "flux_points", "cumulative"):
        m = re.search(r"peak RSS ([\d.]+) MB", (wd / "results" / "sim" / "logs" / f"{rule}.log").read_text())
        if m:
            report(f"peak memory of {rule} ({n_runs} runs)", m.group(1), "MB")
    timed(f"simulated {n_runs}-run store no-op rerun", wd, cf, cores)


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def scale_store(path: Path, n_runs: int) -> Path:
    """A store of small simulated runs for the archive-scale benchmark: 300 s each, a third of
    the default background, a point source with index 2.5 at 0.5 deg offset; the simulator's
    default effective-area and dispersion tables (96 energy bins, 160 migration bins, as DR1),
    coarse offset and background axes.

    Not coarser effective-area or dispersion tables: with 24 energy and 48 migration bins the
    tables no longer represent the response the events are drawn from well enough, and the
    fitted index came out 2.4931 +- 0.0024 (1,000 runs of 1,500 s; 2.4977 with 160 migration
    bins, 2.5003 with both default axes, the same events otherwise)."""
    import numpy as np

    from extspec.simulate import IrfModel, SourceModel, simulate_datastore, wobble_pointings

    irf = IrfModel(theta_nodes=(0.0, 1.0, 2.0, 3.0),
                   bkg_energy_edges=tuple(np.geomspace(0.1, 100, 9).tolist()),
                   bkg_fov_edges=tuple(np.linspace(-3, 3, 13).tolist()))
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": SCALE_INDEX,
                                                                                  "amplitude": 3e-11})
    return simulate_datastore(path, wobble_pointings(83.63, 22.01, n_runs, 0.5), src, livetime=300.0, irf=irf,
                              bkg_scale=0.3)


SCALE_INDEX = 2.5


def scale_config(store: Path, name: str, obs_ids) -> dict:
    """Coarse maps and axes (0.1 deg pixels, 6 reco / 12 true energy bins); reduce.batch_size auto."""
    return {"name": name, "datastore": str(store), "obs_ids": list(obs_ids),
            "on_region": "icrs;circle(83.63,22.01,0.2)", "geom": {"width": [2.0, 2.0], "binsz": 0.1, "frame": "icrs"},
            "energy_axis": {"min": 0.3, "max": 30, "nbins": 6},
            "energy_axis_true": {"min": 0.1, "max": 100, "nbins": 12}}


TRIVIAL_SNAKEFILE = """
N = int(config["n_jobs"])
rule all:
    input: expand("t/{i}.txt", i=range(N))
rule trivial:
    output: "t/{i}.txt"
    shell: "touch {output}"
"""


def trivial_dag(base: Path, n_jobs: int, cores: int) -> tuple[float, float]:
    """Wall and CPU time of Snakemake running ``n_jobs`` jobs of ``touch`` (+ the target rule)."""
    wd = base / f"trivial-{n_jobs}"
    wd.mkdir()
    (wd / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(wd / "Snakefile"), "--directory", str(wd),
           "--cores", str(cores), "--scheduler", "greedy", "--workflow-profile", "none", "--quiet", "all",
           "--config", f"n_jobs={n_jobs}"]
    c0 = children_cpu()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=wd, env=ENV)
    return time.perf_counter() - t0, children_cpu() - c0


def standalone_aggregates(wd: Path, out: Path, cfg: dict, n: int) -> None:
    """Each aggregate step as its command line in a process of its own, on the batches'
    manifests of the finished run: wall time, step time and the process's own peak memory
    (VmHWM; in the workflow the steps share Snakemake's process, whose peak includes its DAG)."""
    from extspec.workflow.config import validate_config

    full = validate_config(dict(cfg), check_datastore=False)
    manifests = sorted(map(str, (out / "obs").glob("batch-*.json")))
    tmp = wd / "standalone"
    tmp.mkdir(exist_ok=True)
    commands = {
        "stack": ["stack", *manifests, "--fits", tmp / "c.fits", "--png", tmp / "c.png", "--excess", tmp / "e.fits",
                  "--significance", tmp / "s.fits", "--maps-png", tmp / "m.png"],
        "fit": ["fit", *manifests, "--result", tmp / "r.yaml", "--png", tmp / "s.png"],
        "flux_points": ["flux-points", *manifests, "--fit", out / "fit" / "result.yaml", "--ecsv", tmp / "f.ecsv",
                        "--png", tmp / "f.png"],
        "cumulative": ["cumulative", *manifests, "--ecsv", tmp / "cu.ecsv", "--png", tmp / "cu.png"],
    }
    for stage, wall, st in standalone_jobs(tmp, full, commands):
        report(f"scale {n - 1}: {stage} alone ({n} runs, {len(manifests)} batches): wall / step / peak memory",
               f"{wall:.2f} s / {st[0]:.2f} s / {st[2]:.0f}", "MB")


def bench_scale(n_runs: int, base: Path, cores: int) -> None:
    """Archive scale: N small simulated runs (reduce.batch_size auto) next to N trivial jobs."""
    t0 = time.perf_counter()
    store = scale_store(base / f"scale-store-{n_runs}", n_runs + 1)
    report(f"scale {n_runs}: simulate the store ({n_runs + 1} runs)", f"{time.perf_counter() - t0:.1f}", "s")
    report(f"scale {n_runs}: load average before (1/5/15 min)", load_average(), "")
    wd = base / f"scale-{n_runs}"
    wd.mkdir()
    name = f"scale{n_runs}"
    cf = write_config(wd / "runs.yaml", scale_config(store, name, range(1, n_runs + 1)))
    cold = timed(f"scale {n_runs}: cold run (--cores {cores})", wd, cf, cores)
    cold_cpu = LAST_CPU[0]
    report(f"scale {n_runs}: CPU seconds per run (Snakemake + jobs, cold)", f"{cold_cpu / n_runs:.4f}", "s")
    noop = [snakemake(wd, cf, cores) for _ in range(2)]
    report(f"scale {n_runs}: no-op rerun (median of 2)", f"{statistics.median(noop):.2f}", "s")
    plus = write_config(wd / "plus.yaml", scale_config(store, name, range(1, n_runs + 2)))
    added = timed(f"scale {n_runs}: add one run (its batch + aggregates)", wd, plus, cores)
    report(f"scale {n_runs}: add-one / cold", f"{100 * added / cold:.0f}", "%")
    out = wd / "results" / name
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    idx = res["model"]["parameters"]["index"]
    report(f"scale {n_runs}: fitted index (true {SCALE_INDEX})", f"{idx['value']:.4f} +- {idx['error']:.4f}", "")
    report(f"scale {n_runs}: index pull (fit - true) / error", f"{(idx['value'] - SCALE_INDEX) / idx['error']:.2f}", "")
    for rule in ("stack", "fit", "flux_points", "cumulative"):
        st = step_times(out / "logs" / f"{rule}.log")
        if st:
            report(f"scale {n_runs}: {rule} job ({n_runs + 1} runs): step / peak memory", f"{st[0]:.2f} s / {st[2]:.0f}",
                   "MB")
    standalone_aggregates(wd, out, scale_config(store, name, range(1, n_runs + 2)), n_runs + 1)
    batches = sorted((out / "logs" / "reduce").glob("batch-*.log"))
    steps = [step_times(b) for b in batches]
    steps = [s for s in steps if s]
    if steps:
        report(f"scale {n_runs}: reduce-batch jobs: count / median step / max peak memory",
               f"{len(batches)} / {statistics.median(s[0] for s in steps):.2f} s / {max(s[2] for s in steps):.0f}", "MB")
    wall, cpu = trivial_dag(base, n_runs, cores)
    report(f"scale {n_runs}: Snakemake alone, {n_runs} trivial shell jobs (--cores {cores})", f"{wall:.2f}", "s")
    report(f"scale {n_runs}: Snakemake alone, CPU time", f"{cpu:.2f}", "s")
    report(f"scale {n_runs}: cold run / trivial DAG", f"{cold / wall:.2f}", "x")
    report(f"scale {n_runs}: load average after (1/5/15 min)", load_average(), "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--sim-runs", type=int, default=500)
    ap.add_argument("--skip-sim", action="store_true", help="skip the simulated-store benchmark")
    ap.add_argument("--skip-dr1", action="store_true", help="skip the DR1 (seed and 15-run) benchmarks")
    ap.add_argument("--skip-seed", action="store_true", help="skip the 6-run seed benchmark")
    ap.add_argument("--skip-multi", action="store_true", help="skip the four-target DR1 benchmark")
    ap.add_argument("--scale-runs", type=int, nargs="*", default=[],
                    help="archive scale: simulated stores of these many small runs (e.g. 2000 10000), cold / "
                         "no-op / add-one next to as many trivial Snakemake jobs")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = ap.parse_args(argv)

    from extspec.io.datastore import resolve_datastore_path

    import extspec

    # PYTHONDONTWRITEBYTECODE=1 (set on the benchmark machine) would leave every job compiling
    # extspec's modules afresh, which a user's first run does once for all: compile them first,
    # as that first run leaves them (the trivial DAG imports no extspec, so it would be unfair)
    pkg = Path(extspec.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg)], check=True, env=ENV)
    cached = any((pkg / "__pycache__").glob("cli.*.pyc"))
    report("bytecode of extspec's modules", "pre-compiled (python -m compileall, as a user's first run leaves it)"
           if cached else "absent (compileall wrote none: every job compiles them)", "")
    base = args.keep or Path(tempfile.mkdtemp(prefix="extspec-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    env_gp = os.environ.pop("GAMMAPY_DATA", None)
    ENV.pop("GAMMAPY_DATA", None)
    path = no_slurm_path()
    if path:
        ENV["PATH"] = path
    try:
        if not args.skip_dr1:
            store = str(resolve_datastore_path(None) if env_gp is None else resolve_datastore_path(Path(env_gp) / "hess-dl3-dr1"))
            if not args.skip_seed:
                bench_config("seed", seed_config(store, SEED_OBS, "seed"), base, args.cores)
            bench_config("rxj1713-15", seed_config(store, RXJ15_OBS, "rxj15"), base, args.cores, overheads=True)
            if not args.skip_multi:
                bench_multi(store, base, args.cores)
        if not args.skip_sim:
            bench_simulated(args.sim_runs, base, args.cores)
        for n in args.scale_runs:
            bench_scale(n, base, args.cores)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
