"""Clear errors where there were tracebacks or walls of text, each reproduced as a user meets it.

Workflow cases run ``snakemake`` (dry runs where the error comes at start-up) in a temporary
directory on a small simulated store; library cases call what the check or the step calls.
"""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from extspec.errors import ConfigError

from test_background_irfs import DEC, ON, RA
from test_background_irfs import base_store  # noqa: F401 (a fixture: 2 simulated runs)
from test_workflow import snakemake


def sim_config(store, **over):
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2], "on_region": ON,
           "geom": {"width": [2.0, 2.0], "frame": "icrs", "binsz": 0.04},
           "energy_axis": {"min": 0.5, "max": 40, "nbins": 6}}
    cfg.update(over)
    return cfg


def write(tmp_path, cfg, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def assert_one_extspec_line(out: str, pattern: str):
    """The output holds the extspec line and none of Snakemake's exception dumps."""
    for noise in ("InputFunctionException", "MissingInputException", "Traceback", "WorkflowError"):
        assert noise not in out, out[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("extspec")]
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0]), out[-3000:]


# ------------------------------------------------------------------------------ workflow --


def test_missing_explicit_datastore_is_one_line(tmp_path):
    cf = write(tmp_path, {"name": "x", "datastore": str(tmp_path / "nowhere"), "obs_ids": [1], "on_region": ON})
    res = snakemake(tmp_path, cf, "-n", check=False)
    assert res.returncode == 1
    assert_one_extspec_line(res.stdout, rf"extspec: no DL3 data store found \(looked in: {tmp_path}/nowhere\); .*"
                                        r"\(an explicit 'datastore' is never fetched into automatically\)")


def test_missing_dl3_file_is_one_line_naming_it(tmp_path, base_store):
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(base_store, copy)
    (copy / "data" / "obs_000002.fits.gz").unlink()
    res = snakemake(tmp_path, write(tmp_path, sim_config(copy)), "-n", check=False)
    assert res.returncode == 1
    assert_one_extspec_line(res.stdout, rf"extspec: invalid configuration: obs 2: DL3 file {copy}/data/"
                                        rf"obs_000002\.fits\.gz does not exist \(listed in the hdu index of {copy}\); "
                                        r"restore it, or drop obs 2 from the selection")


def test_offline_message_appears_once(tmp_path):
    cf = write(tmp_path, {"name": "x", "obs_ids": [20326], "on_region": ON,
                          "download": {"url": "http://127.0.0.1:9/hess_dl3_dr1.tar.gz", "timeout": 5}})
    res = snakemake(tmp_path, cf, "--cores", "1", check=False)
    assert res.returncode == 1
    assert res.stdout.count("cannot download http://127.0.0.1:9/hess_dl3_dr1.tar.gz") == 1, res.stdout[-4000:]


def test_yaml_error_in_the_default_config_names_file_and_line(tmp_path, base_store):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("name: x\nobs_ids: [1, 2\non_region: 'icrs;circle(1,2,0.1)'\n")
    res = snakemake(tmp_path, write(tmp_path, sim_config(base_store), "overlay.yaml"), "-n", check=False)
    assert res.returncode == 1
    assert_one_extspec_line(res.stdout, r"extspec: invalid configuration: config file config/config\.yaml line 3: "
                                        r"not valid YAML \(expected ',' or '\]', but got ':'\)")


def test_missing_background_irf_file_runs_and_says_what_it_left_out(tmp_path, base_store):
    """A background IRF listed in the index but absent: not an input of the reductions (no
    MissingInputException); the spectra and the fit are made, the maps say they left the runs
    out and are NaN, and bkg-peak says what it used instead."""
    from astropy.io import fits

    from extspec.simulate.variants import write_gadf_variant

    root = write_gadf_variant(base_store, tmp_path / "variant", ["bkg_absent"])
    cfg = sim_config(root, safe_mask={"methods": ["aeff-default", "bkg-peak"]},
                     model={"type": "power_law", "parameters": {"index": {"value": 2.0},
                                                                "amplitude": {"value": 1e-11}}})
    res = snakemake(tmp_path, write(tmp_path, cfg), "--cores", "2", check=False)
    assert res.returncode == 0, res.stdout[-4000:]
    out = tmp_path / "results" / "sim"
    log = (out / "logs" / "reduce" / "1.log").read_text()
    assert re.search(r"WARNING extspec.reduce: obs 1: no background IRF \(obs 1: file \S+/bkg_000001.fits.gz does "
                     r"not exist\), left out of the excess and significance maps", log), log
    assert "the bkg-peak threshold is the peak of the OFF counts instead" in log
    with fits.open(out / "stacked" / "excess.fits") as h:
        assert h[0].header["NOBKG"] == "1 2" and h[0].header["NOBS"] == 0
        assert np.isnan(h[0].data).all()
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert res["success"] is True and res["n_datasets"] == 2


# ------------------------------------------------------------------------- library / cli --


def test_disk_full_reason_first_and_the_file_named(capsys, tmp_path):
    from extspec.cli import run_step
    from extspec.io.atomic import os_error_line, temp_path

    tmp = temp_path(tmp_path / "cube.h5")
    h5py_text = (f"Can't close file (file write failed: time = Fri Dec  4 15:18:23 2026\n, filename = '{tmp}', "
                 "file descriptor = 4, errno = 28, error message = 'No space left on device', buf = 0x56, "
                 "total write size = 2048)")
    assert os_error_line(OSError(h5py_text)) == f"No space left on device: cannot write {tmp_path}/cube.h5"
    plain = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "pha.fits"))
    assert os_error_line(plain) == f"No space left on device: cannot write {tmp_path}/pha.fits"

    def step():
        with open("/dev/full", "w") as f:  # a device that is always full
            f.write("x" * 10)
            f.flush()

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert run_step("reduce", "obs 7", step) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["extspec reduce: obs 7: No space left on device"], err


def test_map_too_large_for_memory_refused_with_its_size():
    from extspec.workflow.config import validate_config
    from extspec.workflow.preflight import check_map_memory, physical_memory, reduction_bytes

    cfg = {"name": "x", "obs_ids": [1], "on_region": "galactic;circle(347.3,-0.5,0.5)",
           "geom": {"width": [40.0, 40.0], "binsz": 0.002}}
    need = reduction_bytes(20000 * 20000, 10, 30, "exact")
    assert need > 100e9
    if physical_memory() is not None and physical_memory() < need:
        with pytest.raises(ConfigError) as exc:
            validate_config(cfg, check_datastore=False)
        assert re.fullmatch(r"config key 'geom': a map of 20000 x 20000 pixels \(0.002 deg\) with 10 reco-energy "
                            r"bins needs about \d+ GB per reduction job, more than the [\d.]+ GB of memory here; "
                            r"use a larger geom.binsz or a smaller geom.width", str(exc.value)), str(exc.value)
    # the seed geometry fits in 100 MB, and a limit below its estimate refuses it
    from extspec.skyregions import parse_region
    from extspec.workflow.settings import cube_settings

    seed = cube_settings({}, parse_region("galactic;circle(347.3,-0.5,0.5)"))
    check_map_memory(seed, limit=100_000_000)
    with pytest.raises(ConfigError, match=r"a map of 38 x 38 pixels"):
        check_map_memory(seed, limit=1000)


def test_download_block_takes_text_values_like_every_key():
    from extspec.workflow.config import load_config

    cfg = load_config({"name": "x", "download": {"auto": "false", "timeout": "30", "url": "https://h/1.tar.gz",
                                                  "dest": "123"}})
    assert cfg["download"]["auto"] is False and cfg["download"]["timeout"] == 30
    assert cfg["download"]["dest"] == "123" and cfg["download"]["url"] == "https://h/1.tar.gz"  # text stays text


def test_point_region_on_full_enclosure_refused_by_the_check(base_store):
    from extspec.workflow.config import validate_config

    with pytest.raises(ConfigError) as exc:
        validate_config(sim_config(base_store, on_region=f"icrs;point({RA},{DEC})"))
    assert str(exc.value) == (
        "config key 'on_region': a point ON region needs point-like IRFs, but obs 1, 2 have full-enclosure IRFs "
        "(a point holds no reconstructed event); use a circle ON region, with model.spatial: {type: point} for the "
        "source's flux")


def test_external_spectra_of_another_binning_refused_by_the_check(tmp_path, base_store):
    from extspec.workflow.config import prepare_workflow, stage_config, validate_analyses
    from extspec.workflow.pipeline import reduce_observation

    other = validate_analyses(sim_config(base_store, energy_axis={"min": 0.5, "max": 40, "nbins": 8}))["sim"]
    reduce_observation(stage_config(other, "reduce"), base_store, 2, tmp_path / "ext")
    with pytest.raises(ConfigError) as exc:
        prepare_workflow(sim_config(base_store, obs_ids=[1], external_spectra=[str(tmp_path / "ext" / "pha.fits")]),
                         cache_dir=None)
    assert str(exc.value) == (
        f"config key 'external_spectra': {tmp_path}/ext/pha.fits has reco-energy 8 bins 0.5-40 TeV, the reduced "
        "runs (energy_axis) have 6 bins 0.5-40 TeV; a joint fit needs one binning (fit it in an analysis of its "
        "own, or reduce with its axes)")
    ok = prepare_workflow(sim_config(base_store, obs_ids=[1], energy_axis={"min": 0.5, "max": 40, "nbins": 8},
                                     external_spectra=[str(tmp_path / "ext" / "pha.fits")]), cache_dir=None)
    assert ok["analyses"]["sim"]["external"][0]["obs_id"] == 2


def test_info_into_a_closed_pipe_is_quiet(base_store):
    p = subprocess.Popen([sys.executable, "-m", "extspec", "info", str(base_store)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # the reader (e.g. `head`) has gone before the listing is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0 and err == "", err


def test_excess_map_bunit_is_a_fits_unit_and_no_background_is_nan(tmp_path, base_store):
    from astropy import units as u
    from astropy.io import fits

    from extspec.maps import make_maps
    from test_maps import _run_maps

    _run_maps(tmp_path, base_store, [1], ON, 0.1, width=2.0)
    with fits.open(tmp_path / "excess.fits") as h:
        assert u.Unit(h[0].header["BUNIT"], format="fits") == u.count
        assert np.isfinite(h[0].data).all()
    counts = np.full((6, 6), 3.0)
    mask = np.ones((6, 6), bool)
    m = make_maps([counts], [None], [1], mask, 1.0)  # no run has a background IRF
    assert m.without_background == [1]
    assert np.isnan(m.background).all() and np.isnan(m.excess).all() and np.isnan(m.significance).all()
    half = np.zeros((6, 6))
    half[:, :3] = 1.0  # the IRF covers the left half only
    m = make_maps([counts], [half], [1], mask, 0.0)
    assert np.isnan(m.excess[:, 3:]).all() and np.isfinite(m.excess[:, :3]).all()


def test_tests_look_for_data_where_the_workflow_looks(tmp_path, monkeypatch):
    """$GAMMAPY_DATA first, as for the workflow's data store: data only there is found (it
    used to be looked for in ../shared/data alone, and the tests skipped silently)."""
    from conftest import REPO, data_candidates, data_path, find_data
    from extspec.io.datastore import candidate_datastore_paths

    store = tmp_path / "hess-dl3-dr1"
    store.mkdir()
    (store / "hdu-index.fits.gz").write_bytes(b"")
    monkeypatch.setenv("GAMMAPY_DATA", str(tmp_path))
    assert data_candidates("hess-dl3-dr1") == candidate_datastore_paths(None, base=REPO)
    assert data_path("hess-dl3-dr1") == store.resolve()
    assert find_data("hess-dl3-dr1/hdu-index.fits.gz", "DR1") == store.resolve() / "hdu-index.fits.gz"
    with pytest.raises(pytest.skip.Exception) as exc:
        find_data("cta-1dc/index/gps/hdu-index.fits.gz", "the CTA 1DC files")
    assert str(exc.value).startswith(f"the CTA 1DC files not found (looked in: {tmp_path}/cta-1dc/index/gps/"
                                     f"hdu-index.fits.gz, {REPO}/data/cta-1dc/")
