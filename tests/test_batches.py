"""Reductions in batches (config key reduce.batch_size): fixed blocks of obs ids, the same
bytes as one job per run, only the changed batch reruns, a bad run inside a batch."""

import os
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


def test_batch_bookkeeping_helpers(tmp_path):
    """What the batch rules give Snakemake instead of per-run outputs and DL3 inputs."""
    from extspec.workflow.batches import files_signature, missing_run_files

    (tmp_path / "1").mkdir()
    for name in ("a.fits", "b.fits"):
        (tmp_path / "1" / name).write_text("x")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "b.fits").write_text("x")
    assert missing_run_files(tmp_path, [1, 2, 3], ("a.fits", "b.fits")) == [
        str(tmp_path / "2" / "a.fits"), str(tmp_path / "3" / "a.fits"), str(tmp_path / "3" / "b.fits")]
    f = tmp_path / "1" / "a.fits"
    sig = files_signature([f, tmp_path / "1" / "b.fits"])
    assert len(sig) == 16 and files_signature([f, tmp_path / "1" / "b.fits"]) == sig
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched: another digest
    assert files_signature([f, tmp_path / "1" / "b.fits"]) != sig
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    f.write_text("xy")  # same time, another size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert files_signature([f, tmp_path / "1" / "b.fits"]) != sig
    f.write_text("x")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert files_signature([f, tmp_path / "1" / "b.fits"]) == sig
    f.unlink()  # removed
    assert files_signature([f, tmp_path / "1" / "b.fits"]) != sig


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
    # a batch job declares only its manifest and arrays file, yet a removed per-run file reruns
    # its batch (and the aggregates), which writes it again, byte for byte
    arf = batched / "results" / "sim" / "obs" / "2" / "arf.fits"
    before = arf.read_bytes()
    arf.unlink()
    assert dry_run(batched, cf) == {"reduce_batch_sim_0": 1, **AGGREGATES}
    snakemake(batched, cf, "--cores", "2")
    assert arf.read_bytes() == before and dry_run(batched, cf) == {}
    # the DL3 files are not inputs (params: a digest of their sizes and times): touching run 5's
    # reruns its batch alone
    dl3 = store / "data" / "obs_000005.fits.gz"
    st = dl3.stat()
    os.utime(dl3, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert dry_run(batched, cf) == {"reduce_batch_sim_1": 1, **AGGREGATES}
    os.utime(dl3, ns=(st.st_atime_ns, st.st_mtime_ns))
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


def test_aggregates_read_the_batch_arrays_file_as_the_run_files(tmp_path, store):
    """The arrays file of a batch holds each run as the per-run files read back, so every
    aggregate product is the same bytes from the manifest as from the runs' folders."""
    import io
    import json

    import numpy as np
    from astropy.table import Table

    from extspec.cli import main
    from extspec.io.batch_arrays import read_cube_counts_all, read_spectra
    from extspec.io.cube_io import read_cube_counts
    from extspec.io.ogip import read_spectrum

    cf = tmp_path / "sim.yaml"
    cf.write_text(yaml.safe_dump(config(store, obs_ids=[1, 2, 3], reduce={"batch_size": 4})))
    obs = tmp_path / "obs"
    manifest = obs / "batch-0.json"
    assert main(["reduce-batch", "1", "2", "3", "--outroot", str(obs), "--manifest", str(manifest),
                 "--config", str(cf), "--quiet"]) == 0
    assert json.loads(manifest.read_text())["arrays"] == "batch-0.h5" and (obs / "batch-0.h5").is_file()
    from_arrays = read_spectra([manifest])
    assert [s.obs_id for s in from_arrays] == [1, 2, 3]
    for s in from_arrays:
        r = read_spectrum(obs / str(s.obs_id))
        assert r.counts.sum() > 100 and r.counts_off.sum() > 3
        for name, value in vars(r).items():
            other = getattr(s, name)
            if isinstance(value, np.ndarray):
                assert value.dtype == other.dtype and np.array_equal(value, other), name
            elif name == "energy_reco" or name == "energy_true":
                assert np.array_equal(value.edges, other.edges)
            else:
                assert repr(value) == repr(other), name
    for (path, c), o in zip(read_cube_counts_all([manifest]), (1, 2, 3)):
        r = read_cube_counts(obs / str(o) / "cube.h5")
        assert path.endswith(f"{o}/cube.h5") and r.geom == c.geom and r.obs_id == c.obs_id
        assert r.counts.dtype == c.counts.dtype and np.array_equal(r.counts, c.counts) and r.counts.sum() > 10
        assert np.array_equal(r.background, c.background) and r.livetime == c.livetime
    outs = {}
    for label, inputs in (("arrays", [str(manifest)]), ("runs", [str(obs / str(o)) for o in (1, 2, 3)])):
        out = tmp_path / label
        common = ["--config", str(cf), "--quiet"]
        assert main(["stack", *inputs, "--fits", f"{out}/counts.fits", "--png", f"{out}/counts.png", "--excess",
                     f"{out}/excess.fits", "--significance", f"{out}/sig.fits", "--maps-png", f"{out}/maps.png",
                     *common]) == 0
        assert main(["fit", *inputs, "--result", f"{out}/result.yaml", "--png", f"{out}/spectrum.png", *common]) == 0
        assert main(["flux-points", *inputs, "--fit", f"{out}/result.yaml", "--ecsv", f"{out}/fp.ecsv",
                     "--png", f"{out}/sed.png", *common]) == 0
        assert main(["cumulative", *inputs, "--ecsv", f"{out}/cum.ecsv", "--png", f"{out}/cum.png", *common]) == 0
        outs[label] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(outs["arrays"]) == 11
    # the cumulative table from the batch's partial sums: the same bytes as from the runs
    from extspec.io.batch_arrays import partial_sources

    assert partial_sources([manifest], "cumulative") == [str(obs / "batch-0.h5")]
    assert outs["arrays"]["cum.ecsv"] == outs["runs"]["cum.ecsv"]
    a = Table.read(io.BytesIO(outs["arrays"]["cum.ecsv"]), format="ascii.ecsv")
    assert len(a) == 3
    assert a["counts"][-1] > 100 and a["sqrt_ts"][-1] > 3
    for name, data in outs["runs"].items():
        assert len(data) > 500 and outs["arrays"][name] == data, name


def test_bad_run_in_a_batch_marks_its_onoff_events(tmp_path, store):
    """With onoff_events (an analysis with a light curve) a failed run of a batch gets the
    marker under onoff_events.h5 too, and the light curve's reader stops on it naming the run."""
    from extspec.errors import ExtspecError
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import _read_events, reduce_batch

    bad_store = tmp_path / "store"
    shutil.copytree(store, bad_store)
    bad = bad_store / "data" / "obs_000002.fits.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    red = stage_config(load_config(config(bad_store)), "reduce")
    failed = reduce_batch(red, bad_store, [2], tmp_path / "obs", onoff_events=True)
    assert list(failed) == [2]
    for name in (*PRODUCTS, "onoff_events.h5"):
        assert re.match(r"EXTSPEC-FAILED obs 2: cannot read", (tmp_path / "obs" / "2" / name).read_text()), name
    with pytest.raises(ExtspecError, match=r"obs 2: cannot read .* remove the run from obs_ids"):
        _read_events(tmp_path / "obs" / "2")
