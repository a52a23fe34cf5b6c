"""No silent wrong answer (issue 11): every setting that would give a stale, empty or wrong
product either works or stops before any job with one line naming the key, file or obs id.

Unit tests of the checks in extspec.workflow.config, plus a few Snakemake runs: dry runs for
the refusals and overlays, one real single-observation reduction for the rerun triggers.
"""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import data_path, skip_without
from extspec.cube import TRUE_AXIS_MARGIN
from extspec.errors import ConfigError, ExtspecError
from extspec.workflow.config import (
    apply_overlay,
    check_output_dir,
    load_config,
    setting_file_digests,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "config" / "config.yaml"
DR1 = data_path("hess-dl3-dr1")
SEED_IDS = [20326, 20327, 20349, 20350, 20396, 20397]
needs_dr1 = skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")


def seed_raw(**over):
    raw = yaml.safe_load(SEED.read_text())
    raw["datastore"] = str(DR1)
    raw.update(over)
    return raw


def refusal(raw, check_datastore=False) -> str:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, check_datastore=check_datastore)
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------- empty products, refused --


def test_stacked_range_without_a_whole_bin_refused():
    # default axis: 10 log bins 0.3-40 TeV, edges ... 1.30, 2.12, 3.46 ...: [1, 2] holds none
    msg = refusal(seed_raw(stacked={"energy_range": [1.0, 2.0]}))
    assert msg.startswith("config key 'stacked.energy_range': [1, 2] TeV holds no whole bin"), msg
    assert "1.3, 2.12" in msg
    # [1, 3] holds the bin 1.30-2.12 TeV: accepted
    assert validate_config(seed_raw(stacked={"energy_range": [1.0, 3.0]}), check_datastore=False)


@pytest.mark.parametrize("edges", [[50.0, 100.0], [0.01, 0.2], [1.4, 1.5]])
def test_flux_point_edges_outside_the_axis_refused(edges):
    msg = refusal(seed_raw(flux_points={"energy_edges": edges}))
    assert msg.startswith("config key 'flux_points.energy_edges'") and "no flux point would remain" in msg, msg


def test_flux_point_edges_inside_the_axis_accepted():
    cfg = validate_config(seed_raw(flux_points={"energy_edges": [0.5, 1.0, 3.0, 10.0]}), check_datastore=False)
    assert cfg["flux_points"]["energy_edges"] == [0.5, 1.0, 3.0, 10.0]


# ------------------------------------------------------------ impossible settings --


def test_true_axis_must_cover_reco_axis_with_margin():
    msg = refusal(seed_raw(energy_axis_true={"min": 1.0, "max": 10.0, "nbins": 20}))
    assert msg.startswith("config key 'energy_axis_true': [1, 10] TeV does not cover the reco axis [0.3, 40]"), msg
    assert "[0.2, 60] TeV" in msg  # 0.3 / 1.5 and 40 * 1.5
    assert TRUE_AXIS_MARGIN == 1.5
    # exactly the margin is enough; a little less is not
    validate_config(seed_raw(energy_axis_true={"min": 0.2, "max": 60.0, "nbins": 20}), check_datastore=False)
    refusal(seed_raw(energy_axis_true={"min": 0.21, "max": 60.0, "nbins": 20}))
    refusal(seed_raw(energy_axis_true={"min": 0.2, "max": 55.0, "nbins": 20}))


def test_edisp_grid_larger_than_the_map_refused():
    # the 1.52 deg map (38 x 0.04): 4 deg gives round(0.38) = 0 dispersion pixels
    msg = refusal(seed_raw(geom={"edisp_binsz": 4.0}))
    assert msg.startswith("config key 'geom.edisp_binsz': 4 deg is too large for the map (1.52 x 1.52 deg)"), msg
    validate_config(seed_raw(geom={"edisp_binsz": 1.5}), check_datastore=False)


def test_binsz_not_dividing_width_says_so():
    # 1.5 / 0.35 = 4.3 -> 4 pixels = 1.4 deg: the 1 deg ON circle (+ 1 pixel) fits in 1.5 but not in 1.4
    msg = refusal(seed_raw(geom={"width": 1.5, "binsz": 0.35}))
    assert msg.startswith("config key 'geom.binsz': 0.35 deg does not divide geom.width [1.5, 1.5]"), msg
    assert "4 x 4 pixels, 1.4 x 1.4 deg" in msg
    # a map really too small still asks for a larger width
    msg = refusal(seed_raw(geom={"width": 0.8, "binsz": 0.04}))
    assert msg.startswith("config key 'on_region': region does not fit") and "enlarge 'geom.width'" in msg


def test_region_file_in_image_coordinates_names_the_file(tmp_path):
    reg = tmp_path / "on.reg"
    reg.write_text("# Region file format: DS9 version 4.1\nglobal color=green\nimage\n"
                   + "".join(f"# a long comment line {i}\n" for i in range(50)) + "circle(512.5,400.1,20)\n")
    msg = refusal(seed_raw(on_region=str(reg)))
    assert msg == f"config key 'on_region': cannot parse region file {reg}: frame 'image' not supported (use icrs or galactic)"
    reg.write_text("")
    assert refusal(seed_raw(on_region=str(reg))) == f"config key 'on_region': region file {reg} is empty"


def test_output_folder_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cfg = load_config(seed_raw(results_dir=str(blocker / "results")))
    with pytest.raises(ConfigError, match=rf"^config key 'results_dir': {re.escape(str(blocker))} is not a folder"):
        check_output_dir(cfg)
    # read-only: the probe file cannot be created (simulated: the tests may run as root)
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    cfg = load_config(seed_raw(results_dir=str(tmp_path / "ro")))
    check_output_dir(cfg)
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(ConfigError) as exc:
        check_output_dir(cfg)
    assert str(exc.value) == (f"config key 'results_dir': cannot write into {tmp_path} (Permission denied); "
                              f"outputs go to {tmp_path / 'ro' / 'rxj1713'}")
    assert not (tmp_path / "ro").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_read_only_for_real(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="cannot write into"):
            check_output_dir(load_config(seed_raw(results_dir=str(ro / "results"))))
    finally:
        ro.chmod(0o755)


@needs_dr1
def test_on_region_far_from_every_pointing_names_the_runs():
    msg = refusal(seed_raw(on_region="galactic;circle(10,-0.5,0.5)"), check_datastore=True)
    assert msg.startswith("config key 'on_region': centre (10.000, -0.500) galactic lies outside the IRF offset "
                          "range of 6 of 6 selected run(s): 20326 ("), msg
    for o in SEED_IDS:
        assert f"{o} (" in msg
    # one Crab run among the RX J1713 ones: only it is named
    msg = refusal(seed_raw(obs_ids=SEED_IDS + [23523]), check_datastore=True)
    assert re.search(r"1 of 7 selected run\(s\): 23523 \(\d+\.\d\d > 2\.50 deg\)", msg), msg
    assert validate_config(seed_raw(), check_datastore=True)["obs_ids"] == SEED_IDS


# --------------------------------------------------------------------- config overlays --


def snakemake_merge(*layers):
    """Merge config layers exactly as Snakemake does (configfile, then --configfile/--config)."""
    from snakemake.utils import update_config

    out = {}
    for layer in layers:
        update_config(out, copy.deepcopy(layer))
    return out


def test_overlay_switching_the_model_type():
    base = seed_raw()
    overlay = {"model": {"type": "log_parabola", "parameters": {"alpha": 2.3, "beta": {"value": 0.1}}}}
    merged = snakemake_merge(base, overlay)
    assert "index" in merged["model"]["parameters"]  # what Snakemake's merge alone gives
    with pytest.raises(ConfigError, match="unknown parameter.*'index'"):
        validate_config(merged, check_datastore=False)
    cfg = validate_config(apply_overlay(merged, overlay), check_datastore=False)
    assert cfg["model"] == {"type": "log_parabola", "parameters": {"alpha": 2.3, "beta": {"value": 0.1}}}
    # an overlay with parameters only still merges into the base model
    overlay = {"model": {"parameters": {"index": {"value": 2.5}}}}
    cfg = validate_config(apply_overlay(snakemake_merge(base, overlay), overlay), check_datastore=False)
    assert cfg["model"]["type"] == "power_law"
    assert cfg["model"]["parameters"]["index"] == {"value": 2.5, "frozen": False}
    assert cfg["model"]["parameters"]["reference"] == {"value": 1.0, "frozen": True}  # from the base
    assert "amplitude" not in cfg["model"]["parameters"]  # not in the base either: from the data (issue 19)


def test_config_obs_ids_from_the_command_line():
    from snakemake.cli import parse_config

    over = parse_config(["obs_ids=[20326,20327,20349,20350,20396,20397,20421]", "fit={minos: true}",
                         "geom={binsz: 0.05}"])
    assert over["obs_ids"][-1] == "20421"  # Snakemake hands the list over as text
    cfg = load_config(snakemake_merge(seed_raw(), over))
    assert cfg["obs_ids"] == SEED_IDS + [20421]
    assert cfg["fit"]["minos"] is True and cfg["geom"]["binsz"] == 0.05
    # text keys stay text
    assert load_config(seed_raw(name="2024"))["name"] == "2024"


# -------------------------------------------------------- stale results: rerun triggers --


def test_region_file_digest_follows_content(tmp_path):
    reg = tmp_path / "on.reg"
    reg.write_text("galactic\ncircle(347.3,-0.5,0.5)\n")
    cfg = seed_raw(on_region=str(reg), exclusion_regions=["galactic;circle(348.5,0.5,0.2)"])
    d1 = setting_file_digests(cfg)
    assert list(d1) == [str(reg)] and len(d1[str(reg)]) == 64
    st = reg.stat()
    reg.write_text("galactic\ncircle(347.3,-0.5,0.3)\n")
    os.utime(reg, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, other content
    assert setting_file_digests(cfg)[str(reg)] != d1[str(reg)]


def _code_identity_of(src: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", "import extspec; print(extspec.code_identity())"],
                         capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def test_code_identity_changes_with_the_source(tmp_path):
    import extspec

    src = tmp_path / "src"
    shutil.copytree(Path(extspec.__file__).parent, src / "extspec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    ident = _code_identity_of(src)
    assert ident == extspec.code_identity()
    assert re.fullmatch(rf"extspec {re.escape(extspec.__version__)}\+src\.[0-9a-f]{{12}}", ident)
    with open(src / "extspec" / "stats.py", "a") as f:
        f.write("# a comment changes the identity\n")
    assert _code_identity_of(src) != ident


@needs_dr1
def test_no_usable_observation_fails_after_writing(tmp_path, seed_reference):
    import dataclasses

    import numpy as np

    from extspec.io.ogip import write_spectrum
    from extspec.workflow.pipeline import run_fit

    dirs = []
    for spec, reason in zip(seed_reference[:2], ["no OFF region found", "pointing inside the ON region"]):
        bad = dataclasses.replace(spec, usable=False, reason=reason, mask_safe=np.zeros(spec.counts.size, bool))
        d = tmp_path / str(spec.obs_id)
        write_spectrum(bad, d)
        dirs.append(d)
    cfg = load_config(seed_raw())
    with pytest.raises(ExtspecError) as exc:
        run_fit(cfg, dirs, tmp_path / "fit" / "result.yaml", tmp_path / "fit" / "spectrum.png")
    assert str(exc.value) == ("fit: no usable observation (obs 20326: no OFF region found; "
                              "obs 20327: pointing inside the ON region)")
    res = yaml.safe_load((tmp_path / "fit" / "result.yaml").read_text())
    assert res["success"] is False and res["obs_ids"] == []
    assert [e["obs_id"] for e in res["excluded"]] == [20326, 20327]
    assert (tmp_path / "fit" / "spectrum.png").stat().st_size > 1000


# ------------------------------------------------------------------- Snakemake runs --


def _sm():
    import test_workflow

    return test_workflow


@needs_dr1
@pytest.mark.parametrize(
    "over, start",
    [
        ({"on_region": "galactic;circle(10,-0.5,0.5)"}, "extspec: invalid configuration: config key 'on_region': centre"),
        ({"stacked": {"energy_range": [1.0, 2.0]}}, "extspec: invalid configuration: config key 'stacked.energy_range'"),
        ({"energy_axis_true": {"min": 1.0, "max": 10.0, "nbins": 10}},
         "extspec: invalid configuration: config key 'energy_axis_true'"),
        ({"geom": {"edisp_binsz": 4.0}}, "extspec: invalid configuration: config key 'geom.edisp_binsz'"),
        ({"results_dir": "afile/results"}, "extspec: invalid configuration: config key 'results_dir'"),
    ],
    ids=["far-region", "stacked-range", "true-axis", "edisp-grid", "output-folder"],
)
def test_refused_before_any_job(tmp_path, over, start):
    sm = _sm()
    (tmp_path / "afile").write_text("not a folder")
    res = sm.snakemake(tmp_path, sm.write_config(tmp_path, **sm.small_config(**over)), "--cores", "1", check=False)
    assert res.returncode != 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("Using ")]
    assert len(lines) == 1 and lines[0].startswith(start), res.stdout
    assert not (tmp_path / "results").exists()


@needs_dr1
def test_overlay_and_command_line_obs_ids_in_snakemake(tmp_path):
    """From a folder holding config/config.yaml (the default), --configfile may switch the model
    type, and --config obs_ids=[...] works."""
    sm = _sm()
    (tmp_path / "config").mkdir()
    sm.write_config(tmp_path / "config", **seed_raw())
    model = {"type": "log_parabola", "parameters": {"alpha": 2.3, "beta": 0.1}}
    my = sm.write_config(tmp_path, "my.yaml", model=model, obs_ids=[20326, 20327])
    res = sm.snakemake(tmp_path, my, "-n", "--config", "obs_ids=[20326,20327,20349]")
    assert sm.job_counts(res.stdout) == {"reduce": 3, **sm.AGGREGATES}
    cached = list((tmp_path / ".snakemake" / "extspec").glob("config-*.json"))
    assert len(cached) == 1
    cfg = yaml.safe_load(cached[0].read_text())["analyses"]["rxj1713"]["config"]
    assert cfg["model"] == model and cfg["obs_ids"] == [20326, 20327, 20349]


@needs_dr1
def test_region_file_and_code_changes_rerun_the_reduction(tmp_path):
    """An edited .reg file or a changed library reruns the reduction; --rerun-triggers mtime opts out."""
    import extspec

    sm = _sm()
    reg = tmp_path / "on.reg"
    reg.write_text("galactic\ncircle(347.3,-0.5,0.5)\n")
    cf = sm.write_config(tmp_path, **sm.small_config(obs_ids=[20326], on_region=str(reg)))
    target = "results/small/obs/20326/pha.fits"
    sm.snakemake(tmp_path, cf, "--cores", "1", target)
    assert sm.dry_run(tmp_path, cf, target) == {}
    from astropy.io import fits

    assert fits.getval(tmp_path / target, "CREATOR", ext=1) == extspec.code_identity()

    st = reg.stat()
    reg.write_text("galactic\ncircle(347.3,-0.5,0.3)\n")
    os.utime(reg, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the content differs
    assert sm.dry_run(tmp_path, cf, target) == {"reduce": 1}
    assert sm.dry_run(tmp_path, cf, target, "--rerun-triggers", "mtime") == {}
    reg.write_text("galactic\ncircle(347.3,-0.5,0.5)\n")
    assert sm.dry_run(tmp_path, cf, target) == {}

    # the same workflow run with a changed copy of the library
    src = tmp_path / "src"
    shutil.copytree(Path(extspec.__file__).parent, src / "extspec", ignore=shutil.ignore_patterns("__pycache__"))
    with open(src / "extspec" / "stats.py", "a") as f:
        f.write("# changed\n")
    env = {"PYTHONPATH": str(src)}
    res = sm.snakemake(tmp_path, cf, "-n", target, env=env)
    assert sm.job_counts(res.stdout) == {"reduce": 1}
    res = sm.snakemake(tmp_path, cf, "-n", target, "--rerun-triggers", "mtime", env=env)
    assert sm.job_counts(res.stdout) == {}


@needs_dr1
def test_flux_points_without_safe_bins_give_no_row_and_fail(tmp_path, seed_reference, seed_fit):
    """Groups where no run has a safe bin give no row; if none is left the step fails with one
    line instead of writing an empty table."""
    import dataclasses

    import numpy as np

    from extspec.fluxpoints import compute_flux_points
    from extspec.io.fitresult import fit_result_dict
    from extspec.io.ogip import write_spectrum
    from extspec.workflow.pipeline import run_flux_points
    from extspec.workflow.settings import flux_point_settings

    # the two lowest reco bins (0.3-0.80 TeV) unsafe in every run
    cut = [dataclasses.replace(s, mask_safe=np.arange(10) >= 2) for s in seed_reference]
    edges = flux_point_settings({"flux_points": {"energy_edges": [0.3, 1, 3, 10, 40]}})
    rows = compute_flux_points(cut, seed_fit, edges, "exact")
    assert [r["e_min"] for r in rows] == pytest.approx([0.7981953, 3.4641016, 9.2167617], rel=1e-6)
    assert all(np.isfinite(r["norm_ul"]) for r in rows)

    dirs = []
    for s in cut:
        write_spectrum(s, tmp_path / str(s.obs_id))
        dirs.append(tmp_path / str(s.obs_id))
    fit_yaml = tmp_path / "result.yaml"
    fit_yaml.write_text(yaml.safe_dump(fit_result_dict(seed_fit)))
    cfg = load_config(seed_raw(flux_points={"energy_edges": [0.3, 0.8]}))
    with pytest.raises(ExtspecError, match=r"^flux points: no group of flux_points.energy_edges \[0.3, 0.8\] "
                                           r"overlaps the safe energy range"):
        run_flux_points(cfg, dirs, fit_yaml, tmp_path / "fp.ecsv", tmp_path / "sed.png")
    assert not (tmp_path / "fp.ecsv").exists()
