"""The Snakemake workflow: dry-run job counts, incremental reruns, failures, end to end.

Every test runs ``python -m snakemake`` in a subprocess with ``--directory`` pointing into a
temporary directory and its own ``--configfile``, so the repository's results/ is untouched.
Job counts are read from the "Job stats" table of dry runs (``-n``).
"""

import copy
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import data_path, find_data, skip_without

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
DR1 = data_path("hess-dl3-dr1")
ON = "galactic;circle(347.3,-0.5,0.5)"
AGGREGATES = {"stack": 1, "fit": 1, "flux_points": 1, "cumulative": 1, "summary": 1, "all": 1}

needs_dr1 = skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")


# ----------------------------------------------------------------------------- helpers --


def write_config(workdir: Path, filename="config.yaml", **cfg) -> Path:
    path = Path(workdir) / filename
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def small_config(**over):
    cfg = {"name": "small", "datastore": str(DR1), "obs_ids": [20326, 20327], "on_region": ON}
    cfg.update(over)
    return cfg


@functools.lru_cache(maxsize=None)
def subprocess_path():
    """PATH for the snakemake subprocesses, or None to keep the current one.

    snakemake-executor-plugin-slurm runs ``scontrol show config`` (timeout 10 s) when it is
    imported, i.e. at every snakemake start, also for local runs.  Where SLURM's client
    tools are installed but no controller answers, that stalls every run by 10 s; an
    ``scontrol`` that fails at once, first on PATH, avoids it.
    """
    if shutil.which("scontrol") is None:
        return None
    try:
        up = subprocess.run(["scontrol", "ping"], capture_output=True, timeout=5).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        up = False
    if up:
        return None
    shim = Path(tempfile.mkdtemp(prefix="extspec-no-slurm-"))
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"


def snakemake(workdir, configfile, *args, check=True, timeout=600, env=None):
    """Run snakemake in ``workdir``; return the CompletedProcess (stdout+stderr in .stdout)."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(configfile)]
    run_env = dict(os.environ)
    run_env.pop("GAMMAPY_DATA", None)
    if subprocess_path():
        run_env["PATH"] = subprocess_path()
    if env:
        run_env.update(env)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                         env=run_env, cwd=workdir)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}")
    return res


def job_counts(output: str) -> dict:
    """{rule: count} from a dry run's "Job stats" table; {} when nothing is to be done."""
    if "Nothing to be done" in output:
        return {}
    m = re.search(r"Job stats:\s*\njob\s+count\s*\n[-\s]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert m, f"no job stats in:\n{output[-3000:]}"
    counts = {}
    for line in m.group(1).splitlines():
        rule, n = line.split()
        counts[rule] = int(n)
    return counts


def dry_run(workdir, configfile, *args) -> dict:
    return job_counts(snakemake(workdir, configfile, "-n", *args).stdout)


def outputs(workdir: Path, name: str) -> dict:
    out = Path(workdir) / "results" / name
    return {
        "counts_fits": out / "stacked" / "counts.fits",
        "counts_png": out / "stacked" / "counts.png",
        "result": out / "fit" / "result.yaml",
        "spectrum_png": out / "fit" / "spectrum.png",
        "flux_points": out / "fit" / "flux_points.ecsv",
        "sed_png": out / "fit" / "sed.png",
        "cumulative": out / "cumulative.ecsv",
        "cumulative_png": out / "cumulative.png",
        "excess": out / "stacked" / "excess.fits",
        "significance": out / "stacked" / "significance.fits",
        "maps_png": out / "stacked" / "maps.png",
    }


def check_outputs(workdir: Path, name: str, obs_ids):
    """All outputs exist and are sane; returns (fit result dict, cumulative table)."""
    from astropy.io import fits
    from astropy.table import Table

    out = Path(workdir) / "results" / name
    for o in obs_ids:
        for f in ("cube.h5", "pha.fits", "bkg.fits", "arf.fits", "rmf.fits"):
            p = out / "obs" / str(o) / f
            assert p.is_file() and p.stat().st_size > 0, p
        assert (out / "logs" / "reduce" / f"{o}.log").is_file()
        with fits.open(out / "obs" / str(o) / "pha.fits") as h:
            assert "SPECTRUM" in [x.name for x in h]
    files = outputs(workdir, name)
    for key, p in files.items():
        assert p.is_file() and p.stat().st_size > 0, p
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000, p
    for rule in ("stack", "fit", "flux_points", "cumulative"):
        assert (out / "logs" / f"{rule}.log").is_file()
    with fits.open(files["counts_fits"]) as h:
        img, hdr = h[0].data, h[0].header
        assert hdr["CTYPE1"].startswith("GLON") and hdr["CTYPE2"].startswith("GLAT")
        assert img.ndim == 2 and img.sum() > 100
    result = yaml.safe_load(files["result"].read_text())
    assert result["success"] is True
    assert result["model"]["type"] == "power_law"
    assert 1.5 < result["model"]["parameters"]["index"]["value"] < 3.5
    assert result["model"]["parameters"]["amplitude"]["value"] > 0
    assert [int(o) for o in result["obs_ids"]] == list(obs_ids)
    fp = Table.read(files["flux_points"], format="ascii.ecsv")
    assert len(fp) >= 3 and {"e_ref", "e_min", "e_max", "dnde"} <= set(fp.colnames)
    assert np.all(np.diff(np.asarray(fp["e_ref"])) > 0)
    cum = Table.read(files["cumulative"], format="ascii.ecsv")
    assert len(cum) == len(obs_ids)
    return result, cum


# ------------------------------------------------------------------------ dry runs only --


@needs_dr1
def test_seed_config_dry_run(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["datastore"] = str(DR1)
    counts = dry_run(tmp_path, write_config(tmp_path, **cfg))
    assert counts == {"reduce": 6, **AGGREGATES}


@needs_dr1
def test_obs_cone_dry_run(tmp_path):
    cfg = small_config(obs_ids=[], obs_cone={"radius": 2.0})
    assert dry_run(tmp_path, write_config(tmp_path, **cfg)) == {"reduce": 15, **AGGREGATES}


@needs_dr1
@pytest.mark.parametrize(
    "over, key",
    [
        ({"obs_idz": [1]}, "config key 'obs_idz'"),
        ({"geom": {"binsz": "fine"}}, "config key 'geom.binsz'"),
        ({"obs_ids": [20326, 12345]}, "config key 'obs_ids'"),
        ({"geom": {"center": [0.0, 0.0]}}, "config key 'on_region'"),
        ({"external_spectra": ["/nonexistent/pha_*.fits"]}, "config key 'external_spectra[0]': no file matches"),
    ],
)
def test_invalid_config_stops_before_any_job(tmp_path, over, key):
    # a missing data store is reported when the DAG needs it, after Snakemake's banner:
    # test_download.test_explicit_missing_datastore_is_never_downloaded_to
    res = snakemake(tmp_path, write_config(tmp_path, **small_config(**over)), "--cores", "1", check=False)
    assert res.returncode != 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("Using ")]
    assert len(lines) == 1, res.stdout
    assert lines[0].startswith("extspec: ") and key in lines[0], lines[0]
    assert "Traceback" not in res.stdout
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------ end to end + incremental --


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """A real run of a 2-run RX J1713 config (the shared state of the tests below)."""
    find_data("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")
    wd = tmp_path_factory.mktemp("e2e")
    cfg = small_config()
    cf = write_config(wd, **cfg)
    t0 = time.perf_counter()
    res = snakemake(wd, cf, "--cores", "2")
    print(f"end-to-end 2 runs: {time.perf_counter() - t0:.1f} s")
    return {"wd": wd, "cfg": cfg, "cf": cf, "log": res.stdout}


def variant(e2e, filename, **over):
    cfg = dict(e2e["cfg"])
    cfg.update(over)
    return write_config(e2e["wd"], filename, **cfg)


def summary_rows(workdir) -> dict:
    from astropy.table import Table

    t = Table.read(Path(workdir) / "results" / "summary.ecsv", format="ascii.ecsv")
    return {str(r["analysis"]): r for r in t}


def test_end_to_end_outputs(e2e):
    check_outputs(e2e["wd"], "small", [20326, 20327])
    row = summary_rows(e2e["wd"])["small"]
    assert row["status"] == "ok" and row["n_runs"] == 2 and row["model"] == "power_law"
    assert row["excess"] > 50 and row["significance"] > 3 and 0 < row["flux_above_1tev_err"] < row["flux_above_1tev"]
    assert "index = " in row["parameters"] and "+-" in row["parameters"]
    bench = e2e["wd"] / "results" / "small" / "benchmarks" / "reduce" / "20326.tsv"
    assert "max_rss" in bench.read_text()


def test_per_run_and_aggregate_jobs_run_in_snakemakes_process(e2e):
    # the workflow profile's force-use-threads: rule reduce and the aggregates run `extspec STEP`
    # in Snakemake's threads (extspec_in_process), each with its own log
    logs = e2e["wd"] / "results" / "small" / "logs"
    pids = {}
    for log in [logs / "reduce" / "20326.log", logs / "reduce" / "20327.log", logs / "stack.log", logs / "fit.log",
                logs / "flux_points.log", logs / "cumulative.log"]:
        text = log.read_text()
        m = re.search(r": start \(pid (\d+)\)", text)
        assert m and "done in" in text, text
        pids[log.name] = m.group(1)
    assert len(set(pids.values())) == 1, pids
    assert "obs 20327" not in (logs / "reduce" / "20326.log").read_text()


def test_every_product_records_the_code(e2e):
    """Version + source hash of the library that wrote it, in every product."""
    import h5py
    from astropy.io import fits
    from astropy.table import Table

    import extspec

    ident = extspec.code_identity()
    assert re.fullmatch(r"extspec \S+\+src\.[0-9a-f]{12}", ident)
    out = e2e["wd"] / "results" / "small"
    with h5py.File(out / "obs" / "20326" / "cube.h5", "r") as f:
        assert f.attrs["created_by"] == ident
    for name in ("pha", "bkg", "arf", "rmf"):
        with fits.open(out / "obs" / "20326" / f"{name}.fits") as h:
            assert all(x.header["CREATOR"] == ident for x in h[1:] if "HDUCLASS" in x.header and
                       x.header["HDUCLAS1"] != "GTI"), name
    assert fits.getval(out / "stacked" / "counts.fits", "CREATOR") == ident
    assert yaml.safe_load((out / "fit" / "result.yaml").read_text())["versions"]["extspec"] == ident
    for table in (out / "fit" / "flux_points.ecsv", out / "cumulative.ecsv"):
        assert Table.read(table, format="ascii.ecsv").meta["creator"] == ident


def test_no_op_after_run(e2e):
    assert dry_run(e2e["wd"], e2e["cf"]) == {}


def test_add_one_obs_reruns_one_reduction(e2e):
    cf = variant(e2e, "add.yaml", obs_ids=[20326, 20327, 20349])
    assert dry_run(e2e["wd"], cf) == {"reduce": 1, **AGGREGATES}


def test_remove_one_obs_reruns_only_aggregates(e2e):
    cf = variant(e2e, "remove.yaml", obs_ids=[20326])
    assert dry_run(e2e["wd"], cf) == AGGREGATES


def test_reordered_obs_ids_rerun_the_cumulative_table(e2e):
    """The cumulative table follows obs_ids: reordering them reruns it (and the summary reading
    it), nothing else; the order back as it was reruns nothing."""
    cf = variant(e2e, "reorder.yaml", obs_ids=[20327, 20326])
    assert dry_run(e2e["wd"], cf) == {"cumulative": 1, "summary": 1, "all": 1}
    assert dry_run(e2e["wd"], e2e["cf"]) == {}


def test_add_external_spectrum_reruns_only_what_reads_spectra(e2e, tmp_path):
    """An OGIP set from elsewhere (here extspec's own of run 20349) joins fit and products."""
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation

    reduce_observation(stage_config(load_config(e2e["cfg"]), "reduce"), DR1, 20349, tmp_path / "ext")
    cf = variant(e2e, "ext.yaml", external_spectra=[str(tmp_path / "ext" / "pha.fits")])
    assert dry_run(e2e["wd"], cf) == {"fit": 1, "flux_points": 1, "cumulative": 1, "summary": 1, "all": 1}


def test_model_change_reruns_only_fit_and_flux_points(e2e):
    model = {"type": "power_law", "parameters": {"index": {"value": 2.5}, "amplitude": {"value": 2.0e-12}}}
    refit = {"fit": 1, "flux_points": 1, "summary": 1, "all": 1}
    assert dry_run(e2e["wd"], variant(e2e, "model.yaml", model=model)) == refit
    cf = variant(e2e, "compare.yaml", fit={"compare": ["exp_cutoff_power_law"]})
    assert dry_run(e2e["wd"], cf) == refit


def test_product_settings_rerun_only_their_product(e2e):
    cf = variant(e2e, "stacked.yaml", stacked={"energy_range": [1.0, 10.0]})
    assert dry_run(e2e["wd"], cf) == {"stack": 1, "all": 1}
    cf = variant(e2e, "maps.yaml", maps={"correlation_radius": 0.2})
    assert dry_run(e2e["wd"], cf) == {"stack": 1, "all": 1}
    cf = variant(e2e, "cumul.yaml", cumulative={"stacking": "reference"})
    assert dry_run(e2e["wd"], cf) == {"cumulative": 1, "summary": 1, "all": 1}
    cf = variant(e2e, "fp.yaml", flux_points={"energy_edges": [0.5, 1.0, 3.0, 10.0]})
    assert dry_run(e2e["wd"], cf) == {"flux_points": 1, "all": 1}


@pytest.mark.parametrize(
    "over",
    [
        {"geom": {"width": [1.5, 1.5], "binsz": 0.05}},
        {"energy_axis": {"min": 0.5, "max": 40, "nbins": 10}},
        {"safe_mask": {"methods": ["aeff-default"]}},
        {"spectrum": {"method": "reference"}},
        {"exclusion_regions": ["galactic;circle(348.5,0.5,0.2)"]},
    ],
    ids=["geom", "energy_axis", "safe_mask", "method", "exclusion"],
)
def test_reduction_settings_rerun_reductions(e2e, over):
    assert dry_run(e2e["wd"], variant(e2e, "reduction.yaml", **over)) == {"reduce": 2, **AGGREGATES}


def test_report(e2e):
    report = e2e["wd"] / "report.html"
    snakemake(e2e["wd"], e2e["cf"], "--report", str(report))
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 50_000
    for text in ("counts.png", "maps.png", "spectrum.png", "sed.png", "cumulative.png", "summary.html", "Counts image"):
        assert text in html, text


def test_add_one_obs_for_real(e2e, tmp_path):
    # in a copy of the run (outputs, mtimes and Snakemake's metadata): the shared run stays as
    # it was, so the other tests on it pass in any order
    wd = tmp_path / "e2e"
    shutil.copytree(e2e["wd"], wd, symlinks=True)
    kept = wd / "results" / "small" / "obs" / "20326" / "pha.fits"
    before = kept.stat().st_mtime_ns
    assert before == (e2e["wd"] / "results" / "small" / "obs" / "20326" / "pha.fits").stat().st_mtime_ns
    cf = write_config(wd, "add.yaml", **{**e2e["cfg"], "obs_ids": [20326, 20327, 20349]})
    assert dry_run(wd, cf) == {"reduce": 1, **AGGREGATES}
    res = snakemake(wd, cf, "--cores", "2")
    assert len(re.findall(r"^(?:local)?rule reduce:", res.stdout, re.M)) == 1
    assert kept.stat().st_mtime_ns == before
    check_outputs(wd, "small", [20326, 20327, 20349])
    assert dry_run(wd, cf) == {}


# ---------------------------------------------------------------- several analyses --


@needs_dr1
def test_hess_dr1_config_dry_run(tmp_path):
    """config/hess-dr1.yaml over the seed config, as `snakemake --configfile config/hess-dr1.yaml`."""
    def merge(base, over):  # as Snakemake merges config files: mappings key by key
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    seed = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = merge(seed, yaml.safe_load((REPO / "config" / "hess-dr1.yaml").read_text()))
    cfg["datastore"] = str(DR1)
    res = snakemake(tmp_path, write_config(tmp_path, **cfg), "-n")
    assert job_counts(res.stdout) == {"reduce": 4 + 21 + 20 + 15, "stack": 4, "fit": 4, "flux_points": 4,
                                      "cumulative": 4, "summary": 1, "all": 1}


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """A real run of two analyses (one DR1 run each) sharing the top-level keys."""
    find_data("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")
    wd = tmp_path_factory.mktemp("multi")
    analyses = {"a": {}, "b": {"obs_ids": [20327], "model": {"type": "log_parabola"}}}
    cfg = small_config(obs_ids=[20326], analyses=analyses)
    cf = write_config(wd, **cfg)
    snakemake(wd, cf, "--cores", "2")
    return {"wd": wd, "cfg": cfg, "cf": cf}


def multi_variant(multi, filename, **analyses):
    cfg = copy.deepcopy(multi["cfg"])
    cfg["analyses"].update(analyses)
    return write_config(multi["wd"], filename, **cfg)


def scheduled_outputs(output: str) -> str:
    return "\n".join(ln for ln in output.splitlines() if ln.strip().startswith("output:"))


def test_multi_outputs_and_no_op(multi):
    wd = multi["wd"]
    for name, obs in (("a", [20326]), ("b", [20327])):
        for key, p in outputs(wd, name).items():
            assert p.is_file() and p.stat().st_size > 0, p
        result = yaml.safe_load(outputs(wd, name)["result"].read_text())
        assert result["obs_ids"] == obs
    assert yaml.safe_load(outputs(wd, "b")["result"].read_text())["model"]["type"] == "log_parabola"
    rows = summary_rows(wd)
    assert list(rows) == ["a", "b"] and all(r["status"] == "ok" for r in rows.values())
    assert "<td class=\"text\">b</td>" in (wd / "results" / "summary.html").read_text()
    assert dry_run(wd, multi["cf"]) == {}


def test_multi_add_obs_to_one_analysis(multi):
    cf = multi_variant(multi, "add.yaml", a={"obs_ids": [20326, 20349]})
    res = snakemake(multi["wd"], cf, "-n")
    assert job_counts(res.stdout) == {"reduce": 1, **AGGREGATES}
    assert "results/b/" not in scheduled_outputs(res.stdout)


def test_multi_model_change_reruns_only_that_fit(multi):
    cf = multi_variant(multi, "model.yaml", b={"obs_ids": [20327], "model": {"type": "power_law"}})
    res = snakemake(multi["wd"], cf, "-n")
    assert job_counts(res.stdout) == {"fit": 1, "flux_points": 1, "summary": 1, "all": 1}
    assert "results/a/" not in scheduled_outputs(res.stdout)


def test_multi_add_analysis_runs_only_its_jobs(multi):
    cf = multi_variant(multi, "new.yaml", c={"obs_ids": [20349]})
    res = snakemake(multi["wd"], cf, "-n")
    assert job_counts(res.stdout) == {"reduce": 1, **AGGREGATES}
    out = scheduled_outputs(res.stdout)
    assert "results/c/obs/20349/pha.fits" in out and "results/a/" not in out and "results/b/" not in out


# -------------------------------------------------------------------- failure handling --


@pytest.fixture
def sim_store(tmp_path):
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    return simulate_datastore(tmp_path / "store", wobble_pointings(83.63, 22.01, 3, 0.5), src, livetime=600.0)


def sim_config(store, **over):
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2, 3], "on_region": "icrs;circle(83.63,22.01,0.2)",
           "geom": {"width": [2.0, 2.0], "frame": "icrs"}}
    cfg.update(over)
    return cfg


def test_corrupt_observation_keep_going(tmp_path, sim_store):
    bad = sim_store / "data" / "obs_000002.fits.gz"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    wd = tmp_path / "wd"
    wd.mkdir()
    res = snakemake(wd, write_config(wd, **sim_config(sim_store)), "--cores", "2", "--keep-going", check=False)
    assert res.returncode != 0
    log = (wd / "results" / "sim" / "logs" / "reduce" / "2.log").read_text()
    assert re.search(r"obs 2: .*(corrupt|truncated)", log), log
    assert "Traceback" not in log
    for o in (1, 3):
        assert (wd / "results" / "sim" / "obs" / str(o) / "pha.fits").is_file()
    assert not (wd / "results" / "sim" / "obs" / "2" / "pha.fits").exists()
    assert not (wd / "results" / "sim" / "obs" / "2" / "cube.h5").exists()
    assert "obs 2: cannot read" in res.stdout  # the failed job's log is shown


def test_failed_analysis_keep_going_named_in_summary(tmp_path, sim_store):
    """One analysis with a corrupt run, one whose only run is unusable, one good one."""
    from extspec.simulate import wobble_pointings

    bad = sim_store / "data" / "obs_000002.fits.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    ra, dec = wobble_pointings(83.63, 22.01, 3, 0.5)[0]
    analyses = {
        "good": {"obs_ids": [1, 3]},
        "broken": {"obs_ids": [2]},
        "nousable": {"obs_ids": [1], "on_region": f"icrs;circle({ra},{dec},0.2)"},  # pointing inside ON
    }
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, **sim_config(sim_store, analyses=analyses))
    res = snakemake(wd, cf, "--cores", "2", "--keep-going", check=False)
    assert res.returncode != 0
    assert outputs(wd, "good")["flux_points"].is_file()
    assert not outputs(wd, "nousable")["result"].exists()  # a fit without a usable run fails
    rows = summary_rows(wd)
    assert list(rows) == ["good", "broken", "nousable"]
    assert rows["good"]["status"] == "ok" and rows["good"]["n_runs"] == 2
    assert re.match(r"failed: obs 2: .*(corrupt|truncated|cannot read)", str(rows["broken"]["status"])), rows["broken"]
    assert re.match(r"failed: .*usable", str(rows["nousable"]["status"])), rows["nousable"]
    assert "not finished: broken, nousable" in res.stdout
    # the next run does the missing jobs and redoes the summary with its rule
    assert "summary" in dry_run(wd, cf)


def test_interrupted_run_resumes(tmp_path, sim_store):
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, **sim_config(sim_store))
    targets = [f"results/sim/obs/{o}/pha.fits" for o in (1, 2, 3)]  # the reductions only
    cmd = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(SNAKEFILE), "--directory", str(wd),
           "--configfile", str(cf), "--cores", "1"]
    env = dict(os.environ, PATH=subprocess_path() or os.environ.get("PATH", ""))
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    logs = wd / "results" / "sim" / "logs" / "reduce"
    try:  # kill everything as soon as the first reduction has started (--cores 1: the only one)
        deadline = time.monotonic() + 60
        while not (logs.is_dir() and any(logs.iterdir())) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert logs.is_dir() and any(logs.iterdir()), "the first reduction never started"
    # without --rerun-incomplete nothing of the killed job is trusted: it is either redone
    # (outputs missing) or Snakemake refuses to go on (incomplete outputs)
    res = snakemake(wd, cf, "-n", *targets, "--workflow-profile", "none", check=False)
    if res.returncode == 0:
        assert job_counts(res.stdout) == {"reduce": 3}
    else:
        assert "incomplete" in res.stdout.lower()
    # the killed run left its lock: release it, then the default profile (rerun-incomplete)
    # resumes the run and completes it
    snakemake(wd, cf, "--unlock")
    snakemake(wd, cf, "--cores", "2", *targets)
    assert dry_run(wd, cf, *targets) == {}
    for o in (1, 2, 3):
        assert (wd / "results" / "sim" / "obs" / str(o) / "pha.fits").is_file()


@needs_dr1
def test_lint_clean_apart_from_software_environments(tmp_path):
    cfg = small_config()
    res = snakemake(tmp_path, write_config(tmp_path, **cfg), "--lint", check=False)
    lints = [ln.strip() for ln in res.stdout.splitlines() if ln.strip().startswith("* ")]
    assert lints and all("conda environment or container" in ln for ln in lints), lints


# --------------------------------------------------------------------------- slow: seed --


@needs_dr1
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EXTSPEC_SLOW"), reason="the full 6-run seed run: set EXTSPEC_SLOW=1")
def test_seed_workflow_end_to_end(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["datastore"] = str(DR1)
    cf = write_config(tmp_path, **cfg)
    snakemake(tmp_path, cf, "--cores", "2")
    result, cum = check_outputs(tmp_path, "rxj1713", cfg["obs_ids"])
    assert dry_run(tmp_path, cf) == {}


# ------------------------------------------------------------ external spectra only --

JOINT_CRAB = data_path("joint-crab-spectra/hess")


@skip_without("joint-crab-spectra/hess/pha_obs23523.fits", "the joint-crab H.E.S.S. spectra")
def test_external_spectra_only(tmp_path):
    """Only OGIP sets of another tool: no data store, no reduction or stacking; editing one of
    their files reruns the fit and the products."""
    import yaml as _yaml

    from extspec.fit import fit_joint
    from extspec.workflow.settings import fit_options
    from extspec.io.ogip import read_spectrum

    ext = tmp_path / "ext"
    ext.mkdir()
    for f in JOINT_CRAB.glob("*_obs*.fits"):
        shutil.copy(f, ext / f.name)
    model = {"type": "power_law", "parameters": {"index": {"value": 2.5}, "amplitude": {"value": 3.0e-11}}}
    cf = write_config(tmp_path, name="jc", datastore="/nonexistent/store", obs_ids=[], model=model,
                      external_spectra=["ext/pha_obs*.fits"])
    assert dry_run(tmp_path, cf) == {"fit": 1, "flux_points": 1, "cumulative": 1, "summary": 1, "all": 1}
    snakemake(tmp_path, cf, "--cores", "2")
    out = tmp_path / "results" / "jc"
    assert not (out / "obs").exists() and not (out / "stacked").exists()
    result = _yaml.safe_load((out / "fit" / "result.yaml").read_text())
    phas = sorted(ext.glob("pha_obs*.fits"))
    assert [int(o) for o in result["obs_ids"]] == [23523, 23526, 23559, 23592]
    want = fit_joint([read_spectrum(p) for p in phas], model, fit_options({}))  # the same files, in process
    for name in ("index", "amplitude"):
        np.testing.assert_allclose(result["model"]["parameters"][name]["value"], want.values[name], rtol=1e-9)
    assert 2.0 < want.values["index"] < 3.5
    from astropy.table import Table

    assert len(Table.read(out / "cumulative.ecsv", format="ascii.ecsv")) == 4
    assert len(Table.read(out / "fit" / "flux_points.ecsv", format="ascii.ecsv")) >= 5
    assert dry_run(tmp_path, cf) == {}
    from astropy.io import fits

    # edit a sibling named by BACKFILE (Snakemake reruns on a changed checksum, not on a touch)
    with fits.open(ext / "bkg_obs23559.fits", mode="update") as f:
        f["SPECTRUM"].header["EDITED"] = (True, "changed by the test")
    later = time.time() + 2
    os.utime(ext / "bkg_obs23559.fits", (later, later))
    assert dry_run(tmp_path, cf) == {"fit": 1, "flux_points": 1, "cumulative": 1, "summary": 1, "all": 1}
