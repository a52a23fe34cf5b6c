"""Reductions in batches (config key reduce.batch_size): fixed blocks of obs ids, the same
bytes as one job per run, only the changed batch reruns, a bad run inside a batch."""

import re
import shutil

import pytest
import yaml

from test_workflow import dry_run, snakemake, write_config

PRODUCTS = ("cube.h5", "pha.fits", "bkg.fits", "arf.fits", "rmf.fits")
AGGREGATES = {"stack": 1, "fit": 1, "flux_points": 1, "cumulative": 1, "summary": 1, "all": 1}


def test_batch_membership_is_fixed_by_the_obs_id():
    from extspec.workflow.batches import AUTO_BATCH_SIZE, AUTO_MIN_RUNS, batch_size, make_batches

    assert make_batches([7, 1, 4, 2], 4) == {0: [1, 2], 1: [4, 7]}
    before = make_batches(range(1, 500), 50)
    after = make_batches([*range(1, 500), 1000, 120], 50)  # adding runs moves no other run
    assert {k: v for k, v in after.items() if k not in (2, 20)} == {k: v for k, v in before.items() if k != 2}
    assert after[2] == sorted(before[2] + [120]) and after[20] == [1000]
    assert batch_size(1, 10_000) == 1 and batch_size(7, 3) == 7
    assert batch_size("auto", AUTO_MIN_RUNS - 1) == 1 and batch_size("auto", AUTO_MIN_RUNS) == AUTO_BATCH_SIZE


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    return simulate_datastore(tmp_path_factory.mktemp("batches") / "store", wobble_pointings(83.63, 22.01, 6, 0.5),
                              src, livetime=600.0)


def config(store, **over):
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2, 3, 4, 5], "on_region": "icrs;circle(83.63,22.01,0.2)",
           "geom": {"width": [2.0, 2.0], "frame": "icrs"}, "reduce": {"batch_size": 4}}
    cfg.update(over)
    return cfg


def test_batches_write_the_bytes_of_one_job_per_run(tmp_path, store):
    batched, single = tmp_path / "batched", tmp_path / "single"
    batched.mkdir()
    single.mkdir()
    cf = write_config(batched, **config(store))
    # runs 1-3 (block 0) and 4-5 (block 1): two reduction jobs instead of five
    assert dry_run(batched, cf) == {"reduce_batch_sim_0": 1, "reduce_batch_sim_1": 1, **AGGREGATES}
    snakemake(batched, cf, "--cores", "2")
    log = (batched / "results" / "sim" / "logs" / "reduce" / "batch-0.log").read_text()
    assert [int(o) for o in re.findall(r"obs (\d): \d+ ON", log)] == [1, 2, 3]
    # batch_size 1 is today's DAG: one reduce job per run
    cf1 = write_config(single, **config(store, reduce={"batch_size": 1}))
    assert dry_run(single, cf1) == {"reduce": 5, **AGGREGATES}
    snakemake(single, cf1, "--cores", "2", *[f"results/sim/obs/{o}/pha.fits" for o in range(1, 6)])
    for o in range(1, 6):
        for name in PRODUCTS:
            a = (batched / "results" / "sim" / "obs" / str(o) / name).read_bytes()
            b = (single / "results" / "sim" / "obs" / str(o) / name).read_bytes()
            assert len(a) > 1000 and a == b, (o, name)
    # adding run 6 (block 1) reruns block 1 and the aggregates, not block 0
    assert dry_run(batched, write_config(batched, "six.yaml", **config(store, obs_ids=[1, 2, 3, 4, 5, 6]))) == {
        "reduce_batch_sim_1": 1, **AGGREGATES}
    assert dry_run(batched, cf) == {}
    snakemake(batched, write_config(batched, "four.yaml", **config(store, obs_ids=[1, 2, 3, 4])), "--cores", "2")
    # removing run 5 rewrote block 1 under a new manifest, and the stale one is gone
    assert len(list((batched / "results" / "sim" / "obs").glob("batch-1.*.json"))) == 1


def test_bad_run_in_a_batch_keeps_the_others(tmp_path, store):
    bad_store = tmp_path / "store"
    shutil.copytree(store, bad_store)
    bad = bad_store / "data" / "obs_000002.fits.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, **config(bad_store, obs_ids=[1, 2, 3]))
    res = snakemake(wd, cf, "--cores", "2", "--keep-going", check=False)
    assert res.returncode != 0
    obs = wd / "results" / "sim" / "obs"
    for o in (1, 3):  # the good runs of the batch are reduced and kept
        assert (obs / str(o) / "pha.fits").read_bytes()[:6] == b"SIMPLE"
        assert (obs / str(o) / "cube.h5").read_bytes()[:4] == b"\x89HDF"
    for name in PRODUCTS:  # the bad one is marked, by obs id and reason
        assert re.match(r"EXTSPEC-FAILED obs 2: cannot read .*(corrupt|truncated)", (obs / "2" / name).read_text())
    assert re.search(r"ERROR extspec.reduce: obs 2: cannot read",
                     (wd / "results" / "sim" / "logs" / "reduce" / "batch-0.log").read_text())
    # the aggregates stop on it with one line naming the run, as after a failed per-run job
    for rule in ("fit", "stack", "cumulative"):
        log = (wd / "results" / "sim" / "logs" / f"{rule}.log").read_text()
        assert re.search(rf"ERROR extspec.{rule}: .*obs 2: cannot read .* remove the run from obs_ids", log), log
        assert "Traceback" not in log
    summary = (wd / "results" / "summary.ecsv").read_text()
    assert "failed: " in summary and "obs 2: cannot read" in summary
    # dropping the run reruns its batch (its inputs changed) and the aggregates, which now succeed
    cf2 = write_config(wd, "good.yaml", **config(bad_store, obs_ids=[1, 3]))
    assert dry_run(wd, cf2) == {"reduce_batch_sim_0": 1, **AGGREGATES}
    snakemake(wd, cf2, "--cores", "2")
    result = yaml.safe_load((wd / "results" / "sim" / "fit" / "result.yaml").read_text())
    assert result["success"] and [int(o) for o in result["obs_ids"]] == [1, 3]
