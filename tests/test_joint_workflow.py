"""Joint fits in the workflow: H.E.S.S. + MAGIC on the Crab from the DL3 in ../shared, end to end.

One real Snakemake run (two H.E.S.S. DR1 Crab runs, two MAGIC runs with point-like IRFs, each
analysis with its own data store, binning and safe range; one joint fit with energy-scale and
normalisation nuisances), then dry runs of what a change reruns, as tests/test_workflow.py
does for single analyses.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from test_workflow import dry_run, scheduled_outputs, snakemake, write_config

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DR1, MAGIC = DATA / "hess-dl3-dr1", DATA / "magic-rad-max"
AGGREGATES = {"stack": 1, "fit": 1, "flux_points": 1, "cumulative": 1}
JOINT_RULE = "joint_fit_crab_joint"


def crab_config():
    """config/crab-joint.yaml made small: two runs per instrument, one joint fit (power law)."""
    cfg = yaml.safe_load((REPO / "config" / "crab-joint.yaml").read_text())
    cfg["analyses"]["crab_hess"].update(datastore=str(DR1), obs_ids=[23523, 23526])
    cfg["analyses"]["crab_magic"]["datastore"] = str(MAGIC)
    cfg["joint"] = {"crab_joint": cfg["joint"]["crab_joint"]}
    return cfg


@pytest.fixture(scope="module")
def crab(tmp_path_factory):
    if not (DR1 / "hdu-index.fits.gz").is_file() or not (MAGIC / "hdu-index.fits.gz").is_file():
        pytest.skip(f"H.E.S.S. DR1 or MAGIC DL3 not found under {DATA}")
    wd = tmp_path_factory.mktemp("crab-joint")
    cfg = crab_config()
    cf = write_config(wd, **cfg)
    snakemake(wd, cf, "--cores", "2")
    return {"wd": wd, "cfg": cfg, "cf": cf, "out": wd / "results" / "crab_joint" / "fit"}


def variant(crab, filename, edit):
    cfg = copy.deepcopy(crab["cfg"])
    edit(cfg)
    return write_config(crab["wd"], filename, **cfg)


def test_crab_joint_fit_real_numbers(crab):
    from extspec.io.fitresult import read_fit_result

    out = crab["out"]
    d = yaml.safe_load((out / "result.yaml").read_text())
    assert d["success"] is True and d["joint"]["analyses"] == ["crab_hess", "crab_magic"]
    p = d["model"]["parameters"]
    # the Crab between 0.1 and 40 TeV as a power law: index 2.4-2.6 (H.E.S.S. alone ~2.6, MAGIC ~2.35)
    assert 2.35 < p["index"]["value"] < 2.65 and 0.01 < p["index"]["error"] < 0.1
    # and between the instruments' own fits (H.E.S.S. above 0.5 TeV is softer than MAGIC from 0.13 TeV:
    # the Crab's spectrum curves), with a smaller error than either
    alone = {a: yaml.safe_load((crab["wd"] / "results" / a / "fit" / "result.yaml").read_text())["model"]
             ["parameters"]["index"] for a in ("crab_hess", "crab_magic")}
    assert alone["crab_magic"]["value"] < p["index"]["value"] < alone["crab_hess"]["value"]
    assert p["index"]["error"] < min(v["error"] for v in alone.values())
    assert 2.0e-11 < p["amplitude"]["value"] < 4.5e-11 and p["amplitude"]["error"] > 0
    # both instruments' datasets are in the likelihood, each on its own binning
    assert d["obs_ids"] == [23523, 23526, 5029747, 5029748] and d["excluded"] == []
    ins = d["instruments"]
    assert ins["crab_hess"]["obs_ids"] == [23523, 23526] and ins["crab_magic"]["obs_ids"] == [5029747, 5029748]
    assert ins["crab_hess"]["instrument"][0]["telescop"] == "HESS"
    assert ins["crab_magic"]["instrument"][0]["irf_class"] == "point-like"
    assert ins["crab_magic"]["energy_range"]["min"] < 0.2 < 0.5 <= ins["crab_hess"]["energy_range"]["min"]
    w = ins["crab_hess"]["stat"] + ins["crab_magic"]["stat"]
    priors = sum((v["value"] / v["prior_sigma"]) ** 2 for s in d["systematics"].values() for v in s.values())
    assert d["total_stat"] == pytest.approx(w + priors, rel=1e-9)
    # the nuisances: one energy scale and one norm per instrument, pulled less than 2 sigma
    for a in ("crab_hess", "crab_magic"):
        for kind in ("energy_scale", "norm"):
            s = d["systematics"][a][kind]
            assert s["prior_sigma"] == 0.1 and abs(s["value"]) < 0.2 and 0 < s["error"] < 0.1
    assert d["covariance_all"]["names"][-4:] == ["crab_hess.energy_scale", "crab_hess.norm",
                                                 "crab_magic.energy_scale", "crab_magic.norm"]
    # provenance: which inputs, with their digests; the data stores
    prov = d["provenance"]["analyses"]
    assert prov["crab_magic"]["datastore"] == str(MAGIC.resolve())
    assert [Path(i["path"]).parts[-2] for i in prov["crab_hess"]["inputs"]] == ["23523", "23526"]
    assert all(len(i["sha256"]) == 64 for a in prov.values() for i in a["inputs"])
    assert read_fit_result(out / "result.yaml").values["index"] == p["index"]["value"]


def test_crab_joint_products(crab):
    from astropy.table import Table

    out = crab["out"]
    comb = Table.read(out / "flux_points.ecsv", format="ascii.ecsv")
    hess = Table.read(out / "flux_points_crab_hess.ecsv", format="ascii.ecsv")
    magic = Table.read(out / "flux_points_crab_magic.ecsv", format="ascii.ecsv")
    assert len(comb) >= 6 and len(hess) >= 5 and len(magic) >= 5
    # combined points hold both instruments' datasets where they overlap, each its own alone
    assert all(len(c) == 4 for c in comb["counts"]) and all(len(c) == 2 for c in hess["counts"])
    assert magic["e_min"][0] < 0.2 and hess["e_min"][0] >= 0.5
    ok = ~np.asarray(comb["is_ul"], bool)
    assert ok.sum() >= 5 and np.all(np.abs(np.asarray(comb["norm"])[ok] - 1) < 0.5)
    for f in ("sed.png", "spectrum_crab_hess.png", "spectrum_crab_magic.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / f).stat().st_size > 5000
    rows = {r["analysis"]: r for r in Table.read(crab["wd"] / "results" / "summary.ecsv", format="ascii.ecsv")}
    assert list(rows) == ["crab_hess", "crab_magic", "crab_joint"]
    assert rows["crab_joint"]["status"] == "ok" and rows["crab_joint"]["n_runs"] == 4
    assert rows["crab_joint"]["flux_above_1tev"] > 1e-11


def test_no_op_after_run(crab):
    assert dry_run(crab["wd"], crab["cf"]) == {}


def test_joint_model_change_reruns_only_the_joint_fit(crab):
    def lp(cfg):
        cfg["joint"]["crab_joint"]["model"] = {"type": "log_parabola", "parameters": {"amplitude": 3.5e-11}}

    assert dry_run(crab["wd"], variant(crab, "lp.yaml", lp)) == {JOINT_RULE: 1, "summary": 1, "all": 1}

    def sys(cfg):
        cfg["joint"]["crab_joint"]["systematics"] = {"norm": {"crab_magic": 0.2}}

    assert dry_run(crab["wd"], variant(crab, "sys.yaml", sys)) == {JOINT_RULE: 1, "summary": 1, "all": 1}


def test_add_run_to_one_analysis_reruns_its_chain_and_the_joint_fit(crab):
    def add(cfg):
        cfg["analyses"]["crab_hess"]["obs_ids"].append(23559)

    res = snakemake(crab["wd"], variant(crab, "add.yaml", add), "-n")
    from test_workflow import job_counts

    assert job_counts(res.stdout) == {"reduce": 1, **AGGREGATES, JOINT_RULE: 1, "summary": 1, "all": 1}
    out = scheduled_outputs(res.stdout)
    assert "crab_hess/obs/23559/pha.fits" in out and "results/crab_magic/" not in out


def test_adding_an_analysis_model_change_leaves_the_joint_fit(crab):
    def model(cfg):
        # the same model.spatial (part of the reduction: changing it would rerun the reductions)
        cfg["analyses"]["crab_magic"]["model"] = {"type": "log_parabola", "parameters": {"amplitude": 3.5e-11},
                                                  "spatial": cfg["analyses"]["crab_magic"]["model"].get("spatial")}
        if cfg["analyses"]["crab_magic"]["model"]["spatial"] is None:
            del cfg["analyses"]["crab_magic"]["model"]["spatial"]

    assert dry_run(crab["wd"], variant(crab, "m.yaml", model)) == {"fit": 1, "flux_points": 1, "summary": 1,
                                                                     "all": 1}


def test_missing_datastore_of_one_analysis_is_one_line(tmp_path):
    cfg = crab_config()
    cfg["analyses"]["crab_magic"]["datastore"] = str(tmp_path / "nowhere")
    res = snakemake(tmp_path, write_config(tmp_path, **cfg), "-n", check=False)
    assert res.returncode != 0
    line = [ln for ln in res.stdout.splitlines() if "invalid configuration" in ln]
    assert line and "config key 'analyses.crab_magic.datastore'" in line[0] and "nowhere" in line[0]


def test_external_spectra_in_a_joint_fit(crab):
    """OGIP sets of another tool (the joint-crab H.E.S.S. spectra, written by gammapy, energies
    in keV) as one analysis of a joint fit with the reduced MAGIC runs: only the joint job runs."""
    ext = DATA / "joint-crab-spectra" / "hess"
    if not (ext / "pha_obs23523.fits").is_file():
        pytest.skip(f"no joint-crab spectra in {ext}")

    def add(cfg):
        cfg["analyses"]["hess_ogip"] = {"obs_ids": [], "external_spectra": [str(ext / "pha_obs*.fits")]}
        cfg["joint"]["ogip_joint"] = {"analyses": ["crab_magic", "hess_ogip"],
                                      "model": cfg["joint"]["crab_joint"]["model"]}

    cf = variant(crab, "ogip.yaml", add)
    target = "results/ogip_joint/fit/result.yaml"
    from test_workflow import job_counts

    res = snakemake(crab["wd"], cf, "--cores", "1", target)
    assert job_counts(res.stdout) == {"joint_fit_ogip_joint": 1}
    d = yaml.safe_load((crab["wd"] / target).read_text())
    assert d["success"] and d["obs_ids"] == [5029747, 5029748, 23523, 23526, 23559, 23592]
    assert 2.3 < d["model"]["parameters"]["index"]["value"] < 2.7 and d["systematics"] == {}
    assert [Path(i["path"]).name for i in d["provenance"]["analyses"]["hess_ogip"]["inputs"]] == [
        "pha_obs23523.fits", "pha_obs23526.fits", "pha_obs23559.fits", "pha_obs23592.fits"]


def test_joint_fit_with_ebl(crab):
    """model.ebl in a joint fit (as for PKS 2155-304 at z = 0.116, here on the small Crab setup):
    only the joint job runs; result.yaml holds the intrinsic parameters and the ebl block, both
    flux-point tables the de-absorbed columns; editing the EBL table reruns only the joint fit."""
    import shutil

    from astropy.table import Table

    src = DATA / "ebl" / "ebl_dominguez11.fits.gz"
    if not src.is_file():
        pytest.skip(f"no EBL table at {src}")
    table = crab["wd"] / "ebl_copy.fits.gz"
    shutil.copyfile(src, table)

    def add(cfg):
        cfg["joint"]["crab_ebl"] = {
            "analyses": ["crab_hess", "crab_magic"], "systematics": {"norm": 0.1},
            "model": {**cfg["joint"]["crab_joint"]["model"],
                      "ebl": {"table": str(table), "redshift": 0.116}}}

    cf = variant(crab, "ebl.yaml", add)
    from test_workflow import job_counts

    res = snakemake(crab["wd"], cf, "--cores", "1", "results/crab_ebl/fit/result.yaml")
    assert job_counts(res.stdout) == {"joint_fit_crab_ebl": 1}
    out = crab["wd"] / "results" / "crab_ebl" / "fit"
    d = yaml.safe_load((out / "result.yaml").read_text())
    observed = yaml.safe_load((crab["out"] / "result.yaml").read_text())["model"]["parameters"]
    assert d["success"] and list(d["model"]["parameters"]) == ["index", "amplitude", "reference"]
    ebl = d["model"]["ebl"]
    assert ebl["table"] == str(table) and ebl["name"] == "dominguez11" and len(ebl["sha256"]) == 64
    assert ebl["redshift"]["value"] == 0.116 and ebl["alpha_norm"]["value"] == 1.0
    # the intrinsic spectrum is harder than the observed one (the EBL absorbs the high energies)
    p = d["model"]["parameters"]
    assert observed["index"]["value"] - p["index"]["value"] > 0.1 and p["index"]["error"] > 0
    for f in ("flux_points.ecsv", "flux_points_crab_hess.ecsv", "flux_points_crab_magic.ecsv"):
        t = Table.read(out / f, format="ascii.ecsv")
        assert len(t) >= 4 and t.meta["ebl"]["name"] == "dominguez11", f
        a = np.asarray(t["absorption"])
        assert np.all((a > 0) & (a < 1)) and np.all(np.diff(a) < 0), f  # more absorbed at higher energy
        np.testing.assert_allclose(t["dnde_intrinsic"], t["dnde"] / a, rtol=1e-12)
        np.testing.assert_allclose(t["e2dnde_intrinsic_err"], t["e2dnde_err"] / a, rtol=1e-12)
        assert t["dnde_intrinsic"].unit == t["dnde"].unit, f
    assert (out / "sed.png").stat().st_size > 5000
    # the EBL table is an input of the joint rule: a new version reruns the joint fit only
    from astropy.io import fits

    with fits.open(src) as hdul:
        hdul[0].header["HISTORY"] = "edited by test_joint_fit_with_ebl"
        hdul.writeto(table, overwrite=True)
    counts = dry_run(crab["wd"], cf)
    assert counts.get("joint_fit_crab_ebl") == 1 and JOINT_RULE not in counts
    assert not {"reduce", "stack", "fit", "flux_points"} & set(counts)
