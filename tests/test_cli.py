"""The ``extspec`` command line: every subcommand's success and failure paths.

Most tests call :func:`extspec.cli.main` in-process (exit status returned, stdout/stderr
captured); one runs ``python -m extspec`` and the console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from extspec.cli import EXIT_BUG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

from conftest import data_path, skip_without

DR1 = data_path("hess-dl3-dr1")
needs_dr1 = skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")
SUBCOMMANDS = ("info", "check", "reduce", "stack", "fit", "flux-points", "cumulative", "light-curve", "summary",
               "joint-fit", "spatial-reduce", "spatial")


def run(capsys, *argv):
    """(exit status, stdout, stderr lines) of ``extspec argv``."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, [ln for ln in err.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A simulated 3-run store, a config for it and its 3 reductions (by the command line)."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    base = tmp_path_factory.mktemp("cli")
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(base / "store", wobble_pointings(83.63, 22.01, 3, 0.5), src, livetime=1800.0)
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2, 3], "on_region": "icrs;circle(83.63,22.01,0.2)",
           "geom": {"width": [2.0, 2.0], "frame": "icrs"}}
    config = base / "sim.yaml"
    config.write_text(yaml.safe_dump(cfg))
    for o in (1, 2, 3):
        assert main(["reduce", str(o), "--config", str(config), "--outdir", str(base / "obs" / str(o)),
                     "--log", str(base / "logs" / f"{o}.log"), "--quiet"]) == EXIT_OK
    return {"base": base, "store": store, "config": config, "cfg": cfg,
            "obs": [str(base / "obs" / str(o)) for o in (1, 2, 3)]}


# ------------------------------------------------------------------------- help, usage --


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_of_every_subcommand(capsys, cmd):
    status, out, _ = run(capsys, cmd, "--help")
    assert status == EXIT_OK
    assert out.startswith(f"usage: extspec {cmd}") and "exit status: 0 success" in out


def test_usage_error_is_one_line_with_status_2(capsys):
    status, out, err = run(capsys, "reduce", "1", "--settings", "{}")  # --outdir missing
    assert status == EXIT_USAGE and out == ""
    assert err == ["extspec reduce: error: the following arguments are required: --outdir "
                   "(see extspec reduce --help)"]
    status, _, err = run(capsys, "nonsense")
    assert status == EXIT_USAGE and len(err) == 1 and "invalid choice: 'nonsense'" in err[0]


def test_module_and_console_script(tmp_path):
    """``python -m extspec`` works; so does the installed ``extspec`` script when it is on PATH."""
    res = subprocess.run([sys.executable, "-m", "extspec", "check", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True)
    assert res.returncode == EXIT_FAILED and res.stdout == ""
    assert res.stderr.strip() == (f"extspec check: invalid configuration: config file {tmp_path / 'none.yaml'}: "
                                  "cannot read it (No such file or directory)")
    script = shutil.which("extspec", path=os.path.dirname(sys.executable))
    if script:
        res = subprocess.run([script, "--version"], capture_output=True, text=True)
        assert res.returncode == 0 and res.stdout.startswith("extspec ")


def test_a_reduction_job_imports_neither_snakemake_nor_plotting(sim, tmp_path):
    code = ("import sys\nfrom extspec.cli import main\n"
            f"status = main(['reduce', '1', '--config', {str(sim['config'])!r}, '--outdir', {str(tmp_path)!r}, '-q'])\n"
            "print(status, *[m for m in ('snakemake', 'matplotlib', 'astropy', 'regions', 'scipy') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["0"]


# -------------------------------------------------------------------------------- info --


@needs_dr1
def test_info_lists_runs_with_irf_class_and_background(capsys):
    status, out, err = run(capsys, "info", DR1, "--cone", 347.3, -0.5, 2.0, "--frame", "galactic")
    assert status == EXIT_OK and err == []
    lines = out.splitlines()
    assert lines[0].split() == ["obs_id", "ra_pnt", "dec_pnt", "offset_deg", "livetime_s", "zenith_deg", "irf", "bkg"]
    rows = [ln.split() for ln in lines[1:]]
    assert len(rows) == 15 and rows[0][0] == "20326"
    assert rows[0][1:] == ["259.299", "-39.762", "0.698", "1500.0", "18.7", "full-enclosure", "yes"]
    assert all(float(r[3]) <= 2.0 for r in rows)
    status, out, _ = run(capsys, "info", DR1)
    assert status == EXIT_OK and len(out.splitlines()) == 1 + 105


def test_info_simulated_store_and_a_broken_run(capsys, tmp_path):
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(tmp_path / "s", wobble_pointings(83.63, 22.01, 2, 0.5), src, livetime=600.0)
    status, out, err = run(capsys, "info", store)
    assert status == EXIT_OK and err == []
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2"] and [r[5:] for r in rows] == [["full-enclosure", "yes"]] * 2
    assert float(rows[0][3]) == pytest.approx(600.0, rel=0.1)
    broken = store / "data" / "obs_000002.fits.gz"
    broken.write_bytes(broken.read_bytes()[:500])
    status, out, err = run(capsys, "info", store)
    assert status == EXIT_OK and out.splitlines()[2].split()[5] == "?"
    assert len(err) == 1 and err[0].startswith("extspec info: warning: obs 2: cannot read") and "obs_000002" in err[0]


def test_info_without_a_store_fails_with_one_line(capsys, tmp_path):
    status, out, err = run(capsys, "info", tmp_path / "nowhere")
    assert status == EXIT_FAILED and out == ""
    assert len(err) == 1 and err[0].startswith(f"extspec info: no DL3 data store found (looked in: {tmp_path}/nowhere)")


# ------------------------------------------------------------------------------- check --


def test_check_valid_config_and_print_settings(capsys, sim):
    status, out, err = run(capsys, "check", sim["config"])
    assert status == EXIT_OK and err == []
    assert out == f"{sim['config']}: valid; 3 observations (1, 2, 3) in {sim['store'].resolve()}\n"
    status, out, _ = run(capsys, "check", sim["config"], "--print-settings", "fit")
    settings = json.loads(out)
    assert status == EXIT_OK and set(settings) == {"name", "model", "fit"}
    assert settings["model"]["type"] == "power_law" and settings["fit"]["covariance"] == "hesse"
    status, out, _ = run(capsys, "check", sim["config"], "--print-settings", "reduce")
    assert json.loads(out)["spectrum"] == {"method": "exact", "oversample": 4}


def test_check_merges_config_files_like_snakemake(capsys, sim, tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text("obs_ids: [2]\ngeom: {binsz: 0.05}\n")
    status, out, _ = run(capsys, "check", sim["config"], over, "--print-settings", "reduce")
    geom = json.loads(out)["geom"]
    assert status == EXIT_OK and geom["binsz"] == 0.05 and geom["width"] == [2.0, 2.0] and geom["frame"] == "icrs"


@pytest.mark.parametrize(
    "over, message",
    [
        ({"obs_idz": [1]}, "invalid configuration: unknown config key 'obs_idz'"),
        ({"geom": {"binsz": -0.04}}, "invalid configuration: config key 'geom.binsz': must be > 0, got -0.04"),
        ({"obs_ids": [1, 99]}, "invalid configuration: config key 'obs_ids': data store"),
        ({"datastore": "/nonexistent/store"}, "no DL3 data store found (looked in: /nonexistent/store)"),
        ({"model": {"type": "power_law", "ebl": {"table": "/nonexistent/ebl.fits", "redshift": 0.1}}},
         "invalid configuration: config key 'model.ebl.table': EBL table /nonexistent/ebl.fits: no such file, and not "
         "one of the tables known by name (dominguez11)"),
        ({"model": {"type": "power_law", "ebl": {"table": str(Path(__file__)), "redshift": 0.1}}},
         f"invalid configuration: config key 'model.ebl.table': {Path(__file__)}: not a readable FITS file"),
    ],
)
def test_check_invalid_config_one_line_exit_1(capsys, sim, tmp_path, over, message):
    cfg = dict(sim["cfg"], **over)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    status, out, err = run(capsys, "check", path)
    assert status == EXIT_FAILED and out == ""
    assert len(err) == 1 and err[0].startswith(f"extspec check: {message}"), err


def test_check_invalid_yaml(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\non_region: [unclosed\n")
    status, _, err = run(capsys, "check", path)
    assert status == EXIT_FAILED
    assert err == [f"extspec check: invalid configuration: config file {path} line 3: not valid YAML "
                   "(expected ',' or ']', but got '<stream end>')"]


# ------------------------------------------------------------------------------ reduce --


def test_reduce_writes_products_log_and_progress(capsys, sim, tmp_path):
    from extspec.io.ogip import read_spectrum

    settings = tmp_path / "reduce.json"
    _, out, _ = run(capsys, "check", sim["config"], "--print-settings", "reduce")
    settings.write_text(out)
    status, out, err = run(capsys, "reduce", 2, "--settings", settings, "--datastore", sim["store"],
                           "--outdir", tmp_path / "o2", "--log", tmp_path / "o2.log")
    assert status == EXIT_OK and out == ""
    assert len(err) == 1 and err[0].startswith(f"extspec reduce: obs 2: reduced into {tmp_path / 'o2'} (")
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["arf.fits", "bkg.fits", "cube.h5", "pha.fits",
                                                                    "rmf.fits"]
    log = (tmp_path / "o2.log").read_text()
    assert "obs 2: start" in log and "ON," in log and "peak RSS" in log and "done in" in log
    mine, ref = read_spectrum(tmp_path / "o2"), read_spectrum(sim["obs"][1])  # --settings == --config
    assert mine.counts.sum() > 100 and np.array_equal(mine.counts, ref.counts)
    assert np.array_equal(mine.counts_off, ref.counts_off)
    # the same with the settings as JSON text, quiet: nothing on stderr
    status, _, err = run(capsys, "reduce", 2, "--settings", settings.read_text(), "--datastore", sim["store"],
                         "--outdir", tmp_path / "o2b", "--quiet")
    assert status == EXIT_OK and err == []


def test_reduce_corrupt_observation_one_line_nothing_written(capsys, sim, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(sim["store"], store)
    bad = store / "data" / "obs_000002.fits.gz"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    status, out, err = run(capsys, "reduce", 2, "--config", sim["config"], "--datastore", store,
                           "--outdir", tmp_path / "o", "--log", tmp_path / "o.log")
    assert status == EXIT_FAILED and out == ""
    assert len(err) == 1 and err[0].startswith("extspec reduce: obs 2: cannot read") and "truncated" in err[0]
    assert not (tmp_path / "o" / "pha.fits").exists() and not (tmp_path / "o" / "cube.h5").exists()
    log = (tmp_path / "o.log").read_text()
    assert "ERROR" in log and "obs 2: cannot read" in log and "Traceback" not in log


@pytest.mark.parametrize(
    "args, message",
    [
        (["99"], "obs 99: data store"),
        (["1", "--datastore", "/nonexistent"], "obs 1: data store /nonexistent: not a directory"),
        (["1", "--settings", "{not json"], "obs 1: --settings: not valid JSON"),
        (["1", "--settings", "/nonexistent.json"], "obs 1: settings file /nonexistent.json: cannot read it"),
    ],
)
def test_reduce_bad_input(capsys, sim, tmp_path, args, message):
    argv = ["reduce", *args, "--outdir", tmp_path / "o"]
    if "--settings" not in args:
        argv += ["--config", sim["config"]]
    status, _, err = run(capsys, *argv)
    assert status == EXIT_FAILED and len(err) == 1 and err[0].startswith(f"extspec reduce: {message}"), err
    assert not (tmp_path / "o" / "pha.fits").exists()


def test_reduce_in_process_in_threads_own_logs_same_files(sim, tmp_path):
    # rule reduce runs `extspec reduce` in Snakemake's threads: two at once, each with its log
    import logging
    import threading

    from extspec.cli import run_in_process

    level = logging.getLogger().level
    errors = []

    def job(o):
        try:
            run_in_process(["reduce", str(o), "--config", str(sim["config"]), "--outdir", str(tmp_path / str(o)),
                            "--log", str(tmp_path / f"{o}.log"), "--quiet"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(o,)) for o in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, o in enumerate((1, 2, 3)):
        log = (tmp_path / f"{o}.log").read_text()
        assert f"obs {o}: start" in log and f"obs {o}: done in" in log and " ON, " in log
        assert all(f"obs {other}:" not in log for other in (1, 2, 3) if other != o), log
        for name in ("cube.h5", "pha.fits", "bkg.fits", "arf.fits", "rmf.fits"):  # as the command line writes them
            assert (tmp_path / str(o) / name).read_bytes() == (Path(sim["obs"][i]) / name).read_bytes(), name
    # the root logger as before: its level, and none of the steps' handlers left
    assert logging.getLogger().level == level
    assert not [h for h in logging.getLogger().handlers if str(tmp_path) in str(getattr(h, "baseFilename", ""))
                or type(h.formatter).__name__ == "_StderrFormatter"]


def test_in_process_jobs_share_one_parser(monkeypatch):
    """run_in_process builds the command-line parser once per process (argparse and gettext
    cost ~8 ms a job); its parses share nothing (an appended option starts empty each time)."""
    import threading

    from extspec import cli

    monkeypatch.setattr(cli, "_SHARED_PARSER", None)
    built = []
    real = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: built.append(1) or real())
    parsers = []
    threads = [threading.Thread(target=lambda: parsers.append(cli.shared_parser())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and all(p is parsers[0] for p in parsers)
    a = parsers[0].parse_args(["reduce", "1", "--outdir", "o", "--config", "a.yaml", "--config", "b.yaml"])
    b = parsers[0].parse_args(["reduce", "2", "--outdir", "p", "--config", "c.yaml"])
    assert a.config == ["a.yaml", "b.yaml"] and b.config == ["c.yaml"] and (a.obs_id, b.obs_id) == (1, 2)
    assert a.func is b.func is cli._cmd_reduce and b.settings is None and not b.quiet


def test_reduce_in_process_failure_raises_one_line(sim, tmp_path):
    from extspec.cli import run_in_process
    from extspec.errors import StepFailed

    log = tmp_path / "99.log"
    with pytest.raises(StepFailed) as err:
        run_in_process(["reduce", "99", "--config", str(sim["config"]), "--outdir", str(tmp_path / "o"),
                        "--log", str(log), "--quiet"])
    assert str(err.value) == f"extspec reduce 99: failed with exit status {EXIT_FAILED}; its log: {log}"
    assert "ERROR extspec.reduce: obs 99: data store" in log.read_text()
    assert not (tmp_path / "o" / "pha.fits").exists()
    # a usage error ends no thread (a SystemExit in a thread of Snakemake's hangs it): StepFailed
    with pytest.raises(StepFailed, match=r"extspec reduce 1: wrong usage of the command line \(exit status 2\)"):
        run_in_process(["reduce", "1", "--no-such-option"])


def test_unexpected_error_exit_3_traceback_in_log(capsys, sim, tmp_path, monkeypatch):
    import extspec.workflow.pipeline as pipeline

    def broken(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline, "run_cumulative", broken)
    log = tmp_path / "c.log"
    status, _, err = run(capsys, "cumulative", *sim["obs"], "--config", sim["config"], "--ecsv", tmp_path / "c.ecsv",
                         "--png", tmp_path / "c.png", "--log", log)
    assert status == EXIT_BUG
    assert err == [f"extspec cumulative: unexpected error (ZeroDivisionError: a bug); traceback in {log}"]
    assert "Traceback" in log.read_text() and "a bug" in log.read_text()


# ---------------------------------------------------------------------- the aggregates --


def test_aggregate_steps_end_to_end(capsys, sim, tmp_path):
    out = tmp_path
    status, _, err = run(capsys, "stack", *sim["obs"], "--config", sim["config"], "--fits", out / "counts.fits",
                         "--png", out / "counts.png")
    assert status == EXIT_OK and err[0].startswith("extspec stack: 3 observations (")
    assert (out / "counts.fits").read_bytes().startswith(b"SIMPLE  =") and not (out / "excess.fits").exists()
    status, _, err = run(capsys, "stack", *sim["obs"], "--config", sim["config"], "--fits", out / "counts.fits",
                         "--png", out / "counts.png", "--excess", out / "excess.fits", "--significance",
                         out / "significance.fits", "--maps-png", out / "maps.png", "-q")
    assert status == EXIT_OK and err == [] and (out / "significance.fits").stat().st_size > 2880
    status, _, err = run(capsys, "stack", *sim["obs"], "--config", sim["config"], "--fits", out / "c2.fits",
                         "--png", out / "c2.png", "--excess", out / "e2.fits")
    assert status == EXIT_FAILED and err == ["extspec stack: --excess, --significance and --maps-png go together"]
    assert (out / "counts.png").read_bytes()[:4] == b"\x89PNG"
    # fit: the spectra given as their pha.fits files, as the rules pass them
    status, _, err = run(capsys, "fit", *(f"{d}/pha.fits" for d in sim["obs"]), "--config", sim["config"],
                         "--result", out / "result.yaml", "--png", out / "spectrum.png", "--log", out / "fit.log")
    result = yaml.safe_load((out / "result.yaml").read_text())
    assert status == EXIT_OK and result["success"] is True and result["obs_ids"] == [1, 2, 3]
    index = result["model"]["parameters"]["index"]
    assert abs(index["value"] - 2.5) < 4 * index["error"] and index["error"] < 0.2
    status, _, _ = run(capsys, "flux-points", *sim["obs"], "--config", sim["config"], "--fit", out / "result.yaml",
                       "--ecsv", out / "fp.ecsv", "--png", out / "sed.png", "--quiet")
    assert status == EXIT_OK and "e_ref" in (out / "fp.ecsv").read_text()
    status, _, _ = run(capsys, "cumulative", *sim["obs"], "--config", sim["config"], "--ecsv", out / "cum.ecsv",
                       "--png", out / "cum.png", "-q")
    rows = [ln for ln in (out / "cum.ecsv").read_text().splitlines() if not ln.startswith("#")]
    assert status == EXIT_OK and len(rows) == 1 + 3


@pytest.mark.parametrize("cmd", ["stack", "fit", "cumulative"])
def test_aggregate_missing_observation_one_line(capsys, sim, tmp_path, cmd):
    outs = {"stack": ["--fits", tmp_path / "c.fits"], "fit": ["--result", tmp_path / "r.yaml"],
            "cumulative": ["--ecsv", tmp_path / "c.ecsv"]}[cmd]
    status, _, err = run(capsys, cmd, sim["obs"][0], tmp_path / "missing", "--config", sim["config"], *outs,
                         "--png", tmp_path / "x.png")
    assert status == EXIT_FAILED and len(err) == 1, err
    assert err[0].startswith(f"extspec {cmd}: ") and str(tmp_path / "missing") in err[0]
    assert not any(p.suffix in (".fits", ".yaml", ".ecsv", ".png") for p in tmp_path.iterdir())


def test_flux_points_without_fit_result(capsys, sim, tmp_path):
    status, _, err = run(capsys, "flux-points", *sim["obs"], "--config", sim["config"], "--fit", tmp_path / "no.yaml",
                         "--ecsv", tmp_path / "fp.ecsv", "--png", tmp_path / "sed.png")
    assert status == EXIT_FAILED and len(err) == 1 and str(tmp_path / "no.yaml") in err[0], err
    assert not (tmp_path / "fp.ecsv").exists()


def test_summary_of_finished_and_failed_analyses(capsys, sim, tmp_path):
    """`extspec summary`: one row per analysis from its fit result and cumulative table; an
    analysis without results gets a row naming the first error of its logs."""
    results = tmp_path / "results"
    ana = results / "sim"
    status, _, _ = run(capsys, "fit", *sim["obs"], "--config", sim["config"], "--result", ana / "fit" / "result.yaml",
                       "--png", ana / "fit" / "spectrum.png", "-q")
    assert status == EXIT_OK
    status, _, _ = run(capsys, "cumulative", *sim["obs"], "--config", sim["config"], "--ecsv", ana / "cumulative.ecsv",
                       "--png", ana / "cumulative.png", "-q")
    assert status == EXIT_OK
    (results / "broken" / "logs").mkdir(parents=True)
    (results / "broken" / "logs" / "fit.log").write_text("2026-01-01 00:00:00,000 ERROR extspec.fit: fit: no usable observation\n")
    status, _, err = run(capsys, "summary", results, "sim", "broken", "--ecsv", results / "summary.ecsv",
                         "--html", results / "summary.html", "--log", tmp_path / "summary.log")
    assert status == EXIT_OK and len(err) == 1 and err[0].startswith("extspec summary: 2 analyses, not finished: broken (")
    from extspec.io.ecsv import read_ecsv_rows

    rows, _ = read_ecsv_rows(results / "summary.ecsv")
    assert [r["analysis"] for r in rows] == ["sim", "broken"]
    fit = yaml.safe_load((ana / "fit" / "result.yaml").read_text())
    assert rows[0]["status"] == "ok" and int(rows[0]["n_runs"]) == 3
    assert rows[0]["livetime"] == pytest.approx(3 * 1800.0 / 3600, rel=1e-6)
    index = fit["model"]["parameters"]["index"]
    assert f"index = {index['value']:.4g} +- {index['error']:.2g}" in rows[0]["parameters"]
    assert rows[1]["status"].startswith("failed") and "no usable observation" in rows[1]["status"]
    assert "<table" in (results / "summary.html").read_text()
    # an output folder that cannot be made (a file stands in its place): one line, exit 1
    (tmp_path / "afile").write_text("x")
    status, _, err = run(capsys, "summary", results, "sim", "--ecsv", tmp_path / "afile" / "s.ecsv",
                         "--html", results / "s.html")
    assert status == EXIT_FAILED and len(err) == 1 and "afile" in err[0], err
    assert not (results / "s.html").exists()


def test_summary_tells_a_flagged_result_from_no_result(capsys, sim, tmp_path):
    """A fit the quality gate flags (here not detected: a detection threshold no signal meets)
    is a finished analysis that is not ok; the summary's line and metadata say so apart from
    the analyses without a result."""
    results = tmp_path / "results"
    cfg = dict(sim["cfg"], fit={"detection_ts_min": 1e9})
    config = tmp_path / "faint.yaml"
    config.write_text(yaml.safe_dump(cfg))
    status, _, _ = run(capsys, "fit", *sim["obs"], "--config", config, "--result", results / "faint" / "fit" / "result.yaml",
                       "--png", results / "faint" / "fit" / "spectrum.png", "-q")
    assert status == EXIT_OK
    (results / "broken" / "logs").mkdir(parents=True)
    (results / "broken" / "logs" / "fit.log").write_text("2026-01-01 00:00:00,000 ERROR extspec.fit: fit: no usable observation\n")
    status, _, err = run(capsys, "summary", results, "faint", "broken", "--ecsv", results / "summary.ecsv",
                         "--html", results / "summary.html", "--log", tmp_path / "summary.log")
    assert status == EXIT_OK and len(err) == 1, err
    assert err[0].startswith("extspec summary: 2 analyses, not finished: broken; finished but not ok: faint (not detected) ("), err
    from extspec.io.ecsv import read_ecsv_rows

    rows, meta = read_ecsv_rows(results / "summary.ecsv")
    assert [r["status"] for r in rows][0] == "not detected"
    assert meta["failed"] == ["broken"] and meta["not_ok"] == ["faint"], meta


def test_step_imports_are_complete(sim, tmp_path):
    """After extspec.workflow.products.import_step(step), the step imports no further package
    of its own (so that the job log's step time is the step's work, not its imports)."""
    code = (
        "import sys, json\n"
        "from extspec.cli import main\n"
        "from extspec.workflow.products import import_step\n"
        "CLI_MODULES = ('extspec.cli', 'extspec.workflow.settings', 'extspec.workflow.schema', 'extspec.workflow.coerce',\n"
        "               'extspec.workflow.process_exit')\n"
        "step, argv = sys.argv[1], sys.argv[2:]\n"
        "import_step(step)\n"
        "before = set(sys.modules)\n"
        "assert main(argv) == 0\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in ('numpy', 'h5py', 'yaml', 'iminuit') and m.count('.') < 2\n"
        "               or m.startswith('extspec.') and m not in CLI_MODULES\n"
        "               or m in ('matplotlib', 'matplotlib.figure'))\n"
        "print(json.dumps(heavy))\n"
    )
    from extspec.workflow.config import settings_json, stage_config, validate_config
    cfg = validate_config(dict(sim["cfg"], light_curve={"time_bins": "run"},
                               spatial_bins={"regions": ["icrs;circle(83.63,22.01,0.1)", "icrs;circle(83.63,22.11,0.1)"]}),
                          check_datastore=False)

    def settings(step):
        return ["--settings", settings_json(stage_config(cfg, step)),
                "-q"]

    fit = tmp_path / "r.yaml"
    argvs = {
        "reduce": ["reduce", "3", "--outdir", str(tmp_path / "o"), "--datastore", str(sim["store"]),
                   "--onoff-events", *settings("reduce")],
        "stack": ["stack", *sim["obs"], "--fits", str(tmp_path / "c.fits"), "--png", str(tmp_path / "c.png"),
                  "--excess", str(tmp_path / "e.fits"), "--significance", str(tmp_path / "s.fits"),
                  "--maps-png", str(tmp_path / "m.png"), *settings("stack")],
        "fit": ["fit", *sim["obs"], "--result", str(fit), "--png", str(tmp_path / "s.png"), *settings("fit")],
        "flux_points": ["flux-points", *sim["obs"], "--fit", str(fit), "--ecsv", str(tmp_path / "f.ecsv"),
                        "--png", str(tmp_path / "f.png"), *settings("flux_points")],
        "cumulative": ["cumulative", *sim["obs"], "--ecsv", str(tmp_path / "cu.ecsv"), "--png",
                       str(tmp_path / "cu.png"), *settings("cumulative")],
        "light_curve": ["light-curve", *sim["obs"], "--fit", str(fit), "--ecsv", str(tmp_path / "lc.ecsv"),
                        "--png", str(tmp_path / "lc.png"), *settings("light_curve")],
        "joint_fit": ["joint-fit", "--spectra", "a", *sim["obs"][:2], "--spectra", "b", sim["obs"][2],
                      "--outdir", str(tmp_path / "j"), "-q", "--settings",
                      settings_json({"name": "j", "analyses": ["a", "b"], "model": cfg["model"],
                                     "systematics": {"norm": 0.1}, "fit": cfg["fit"], "flux_points": {}})],
    }
    argvs["spatial_reduce"] = ["spatial-reduce", "1", "--out", str(tmp_path / "sp.h5"), "--datastore", str(sim["store"]),
                               *settings("spatial_reduce")]
    argvs["spatial"] = ["spatial", str(tmp_path / "sp.h5"), "--outdir", str(tmp_path / "sp"), *settings("spatial")]
    from extspec.workflow.products import steps

    assert {s.stage for s in steps()} <= set(argvs)  # every registered product's steps too
    for step, argv in argvs.items():
        res = subprocess.run([sys.executable, "-c", code, step, *argv], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout) == [], step


def test_config_with_several_analyses(capsys, sim, tmp_path):
    cfg = dict(sim["cfg"], analyses={"one": {"obs_ids": [1]}, "two": {"obs_ids": [2, 3], "geom": {"binsz": 0.05}}})
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    status, out, _ = run(capsys, "check", path)
    assert status == EXIT_OK and out.splitlines() == [
        f"{path} [one]: valid; 1 observations (1) in {sim['store'].resolve()}",
        f"{path} [two]: valid; 2 observations (2, 3) in {sim['store'].resolve()}"]
    status, out, err = run(capsys, "check", path, "--print-settings", "reduce")
    assert status == EXIT_FAILED and out == ""
    assert err == ["extspec check: the config has 2 analyses (one, two): choose one with --analysis"]
    status, out, _ = run(capsys, "check", path, "--print-settings", "reduce", "--analysis", "two")
    assert status == EXIT_OK and json.loads(out)["geom"]["binsz"] == 0.05
    status, _, err = run(capsys, "reduce", 2, "--config", path, "--analysis", "three", "--outdir", tmp_path / "o")
    assert status == EXIT_FAILED and err == ["extspec reduce: obs 2: --analysis three: no such analysis "
                                             "(the config has one, two)"]
    status, _, _ = run(capsys, "reduce", 2, "--config", path, "--analysis", "two", "--outdir", tmp_path / "o", "-q")
    assert status == EXIT_OK and (tmp_path / "o" / "pha.fits").is_file()


def test_joint_fit_from_a_config(capsys, sim, tmp_path):
    cfg = dict(sim["cfg"], analyses={"one": {"obs_ids": [1]}, "two": {"obs_ids": [2, 3]}},
               joint={"both": {"analyses": ["one", "two"], "model": {"type": "power_law", "parameters": {
                   "index": 2.3, "amplitude": 2e-11}}, "systematics": {"norm": {"two": 0.1}}}})
    path = tmp_path / "joint.yaml"
    path.write_text(yaml.safe_dump(cfg))
    status, out, _ = run(capsys, "check", path)
    assert status == EXIT_OK and out.splitlines()[-1] == f"{path} [both]: valid; joint fit of one, two"
    spectra = ["--spectra", "one", sim["obs"][0], "--spectra", "two", *sim["obs"][1:]]
    status, _, err = run(capsys, "joint-fit", *spectra, "--config", path, "--joint", "none", "--outdir", tmp_path)
    assert status == EXIT_FAILED and err == ["extspec joint-fit: --joint none: no such joint fit (the config has both)"]
    status, _, err = run(capsys, "joint-fit", "--spectra", "one", sim["obs"][0], "--config", path, "--joint", "both",
                         "--outdir", tmp_path)
    assert status == EXIT_FAILED and err == ["extspec joint-fit: joint fit both: spectra given for one, the "
                                             "settings name one, two"]
    out = tmp_path / "fit"
    status, _, _ = run(capsys, "joint-fit", *spectra, "--config", path, "--joint", "both", "--outdir", out, "-q")
    assert status == EXIT_OK
    result = yaml.safe_load((out / "result.yaml").read_text())
    index = result["model"]["parameters"]["index"]
    assert result["success"] and abs(index["value"] - 2.5) < 3 * index["error"]  # the simulated truth
    assert list(result["systematics"]) == ["two"] and result["obs_ids"] == [1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["result.yaml", "flux_points.ecsv", "sed.png", "flux_points_one.ecsv", "flux_points_two.ecsv",
         "spectrum_one.png", "spectrum_two.png"])
