"""The seed workflow through profiles/slurm on a real SLURM cluster, compared with a local run.

.ci/run starts a single-node cluster with ../shared/tools/slurm-local.sh before the tests;
where no cluster answers (`sinfo` missing or failing) or the executor plugin is not
installed, the test is skipped with the reason.  The partition comes from
$SLURM_PARTITION, else the default partition `sinfo` reports.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import DR1, REPO, check_outputs, job_counts, snakemake, small_config, write_config  # noqa: E402

pytestmark = pytest.mark.slurm

PROFILE = REPO / "profiles" / "slurm"


def _run(cmd, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def slurm_partition() -> str:
    """The partition to use, or pytest.skip with the reason."""
    import importlib.util

    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[cluster]')")
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.skip("no SLURM here: sinfo/sbatch not found (start one with ../shared/tools/slurm-local.sh start)")
    # `scontrol ping` fails at once when no controller answers (sinfo takes ~10 s to say so)
    if shutil.which("scontrol") is not None:
        try:
            ping = _run(["scontrol", "ping"], timeout=10)
        except subprocess.TimeoutExpired:
            pytest.skip("no SLURM here: scontrol ping timed out")
        if ping.returncode != 0:
            pytest.skip(f"no SLURM controller answers: {' '.join(ping.stdout.split())[:200]}")
    try:
        res = _run(["sinfo", "-h", "-o", "%P %a"])
    except subprocess.TimeoutExpired:
        pytest.skip("no SLURM here: sinfo timed out")
    if res.returncode != 0 or not res.stdout.strip():
        pytest.skip(f"no SLURM here: sinfo failed ({(res.stderr or res.stdout).strip()[:200]})")
    if os.environ.get("SLURM_PARTITION"):
        return os.environ["SLURM_PARTITION"]
    parts = [ln.split()[0] for ln in res.stdout.splitlines() if ln.split() and ln.split()[-1] == "up"]
    if not parts:
        pytest.skip(f"no SLURM partition is up: {res.stdout.strip()[:200]}")
    default = [p for p in parts if p.endswith("*")]
    return (default or parts)[0].rstrip("*")


@pytest.mark.skipif(not (DR1 / "hdu-index.fits.gz").is_file(), reason=f"no HESS DL3 DR1 at {DR1}")
def test_seed_workflow_on_slurm(tmp_path):
    partition = slurm_partition()
    if _run(["sacct", "-n", "-X", "-S", "now-1minutes"]).returncode != 0:
        pytest.skip("SLURM accounting (sacct) is not available")
    cfg = small_config(name="seed", obs_ids=[20326, 20327, 20349])
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    local.mkdir()
    cluster.mkdir()
    # the reference: a local run
    snakemake(local, write_config(local, **cfg), "--cores", "2")
    # the same through the profile, checking job states every 2 s
    cf = write_config(cluster, **cfg)
    t0 = time.time()
    res = snakemake(
        cluster, cf,
        "--profile", str(PROFILE),
        "--default-resources", f"slurm_partition={partition}", "runtime=10", "mem_mb=1000", "cpus_per_task=1",
        "--slurm-init-seconds-before-status-checks", "1",
        "--seconds-between-status-checks", "2",
        "--latency-wait", "10",
        timeout=900,
    )
    print(f"SLURM run: {time.time() - t0:.1f} s")
    ids = sorted(set(re.findall(r"submitted with SLURM jobid (\d+)", res.stdout)), key=int)
    # 3 reductions in one group job + stack, fit, cumulative, flux points (the summary is a local rule)
    assert len(ids) == 5, res.stdout[-3000:]
    assert re.search(r"localrule summary:", res.stdout), res.stdout[-3000:]
    acct = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State,Partition,AllocCPUS", "-j", ",".join(ids)])
    assert acct.returncode == 0, acct.stderr
    rows = [ln.split("|") for ln in acct.stdout.splitlines() if ln.strip()]
    assert sorted((r[0] for r in rows), key=int) == ids
    assert all(r[1] == "COMPLETED" and r[2] == partition for r in rows), rows
    # the results are the local run's
    res_local, cum_local = check_outputs(local, "seed", cfg["obs_ids"])
    res_slurm, cum_slurm = check_outputs(cluster, "seed", cfg["obs_ids"])
    for name, p in res_local["model"]["parameters"].items():
        q = res_slurm["model"]["parameters"][name]
        assert q["value"] == pytest.approx(p["value"], rel=1e-9, abs=0)
        assert q["error"] == pytest.approx(p["error"], rel=1e-6, abs=1e-30)
    assert res_slurm["total_stat"] == pytest.approx(res_local["total_stat"], rel=1e-10)
    assert cum_local.colnames == cum_slurm.colnames
    for c in cum_local.colnames:
        np.testing.assert_allclose(np.asarray(cum_slurm[c], float), np.asarray(cum_local[c], float), rtol=1e-12)
    # nothing left to do, and the profile's own file is what was used
    assert job_counts(snakemake(cluster, cf, "-n").stdout) == {}
    assert yaml.safe_load((PROFILE / "config.yaml").read_text())["executor"] == "slurm"


def test_batches_on_slurm_one_job_per_batch(tmp_path):
    """reduce.batch_size through the profile: SLURM jobs = batches + the four aggregates."""
    partition = slurm_partition()
    if _run(["sacct", "-n", "-X", "-S", "now-1minutes"]).returncode != 0:
        pytest.skip("SLURM accounting (sacct) is not available")
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(tmp_path / "store", wobble_pointings(83.63, 22.01, 7, 0.5), src, livetime=300.0)
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, name="sim", datastore=str(store), obs_ids=list(range(1, 8)),
                      on_region="icrs;circle(83.63,22.01,0.2)", geom={"width": [2.0, 2.0], "frame": "icrs"},
                      reduce={"batch_size": 4})
    res = snakemake(
        wd, cf, "--profile", str(PROFILE),
        "--default-resources", f"slurm_partition={partition}", "runtime=10", "mem_mb=1000", "cpus_per_task=1",
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        "--latency-wait", "10", timeout=900,
    )
    ids = sorted(set(re.findall(r"submitted with SLURM jobid (\d+)", res.stdout)), key=int)
    # runs 1-3 and 4-7: two batch jobs, then stack, fit, flux points, cumulative (the summary is local)
    assert len(ids) == 2 + 4, res.stdout[-3000:]
    assert len(set(re.findall(r"rule (reduce_batch_sim_\d+):", res.stdout))) == 2, res.stdout[-3000:]
    acct = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(ids)])
    assert all(ln.split("|")[1] == "COMPLETED" for ln in acct.stdout.splitlines() if ln.strip()), acct.stdout
    out = wd / "results" / "sim"
    for o in range(1, 8):
        assert (out / "obs" / str(o) / "pha.fits").read_bytes()[:6] == b"SIMPLE"
    result = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert result["success"] and [int(o) for o in result["obs_ids"]] == list(range(1, 8))
    assert job_counts(snakemake(wd, cf, "-n").stdout) == {}
