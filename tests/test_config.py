"""extspec.workflow.config: defaults, schema validation, semantic checks, obs selection, caching."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from extspec.workflow.config import (
    SCHEMA_PATH,
    STAGE_KEYS,
    load_config,
    prepare_workflow,
    selected_obs_ids,
    stage_config,
    validate_analyses,
    validate_config,
)
from extspec.errors import ConfigError

from conftest import data_path, skip_without

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "config" / "config.yaml"
DR1 = data_path("hess-dl3-dr1")
RXJ15 = [20326, 20327, 20349, 20350, 20396, 20397, 20421, 20422, 20517, 20518, 20519, 20521,
         20898, 20899, 20900]

needs_dr1 = skip_without("hess-dl3-dr1/hdu-index.fits.gz", "HESS DL3 DR1")


def seed_raw():
    raw = yaml.safe_load(SEED.read_text())
    raw["datastore"] = str(DR1)
    return raw


def test_schema_exists_once():
    """The package's schema is the only one: the workflow validates against it too."""
    assert SCHEMA_PATH.is_file()
    copies = [p for p in REPO.rglob("config.schema.yaml") if ".git" not in p.parts and p.resolve() != SCHEMA_PATH]
    assert copies == []


def test_seed_config_public_keys():
    raw = yaml.safe_load(SEED.read_text())
    assert raw["name"] == "rxj1713"
    assert raw["obs_ids"] == [20326, 20327, 20349, 20350, 20396, 20397]
    assert raw["on_region"] == "galactic;circle(347.3,-0.5,0.5)"
    assert raw["geom"] == {"width": [1.5, 1.5], "binsz": 0.04, "frame": "galactic", "proj": "CAR"}
    assert raw["energy_axis"] == {"min": 0.3, "max": 40, "nbins": 10}
    assert raw["energy_axis_true"] == {"min": 0.05, "max": 100, "nbins": 30}
    assert raw["safe_mask"]["methods"] == ["aeff-default", "aeff-max"]
    assert raw["safe_mask"]["aeff_percent"] == 10
    assert raw["spectrum"] == {"method": "exact"}
    assert raw["exclusion_regions"] == []
    assert raw["model"]["type"] == "power_law"


def _schema_keys(node, prefix, root, out):
    if "$ref" in node:
        node = root["$defs"][node["$ref"].split("/")[-1]]
    for branch in node.get("oneOf", []):
        _schema_keys(branch, prefix, root, out)
    for k, sub in node.get("properties", {}).items():
        key = f"{prefix}.{k}" if prefix else k
        out.add(key)
        if prefix.count(".") < 1 and k not in ("parameters",):
            _schema_keys(sub, key, root, out)
    return out


def test_every_key_documented():
    root = yaml.safe_load(SCHEMA_PATH.read_text())
    keys = _schema_keys(root, "", root, set())
    doc = (REPO / "config" / "README.md").read_text()
    missing = [k for k in sorted(keys) if f"`{k}`" not in doc]
    assert not missing, f"undocumented config keys in config/README.md: {missing}"


def test_defaults_filled():
    cfg = load_config({"name": "x", "on_region": "icrs;circle(83.6,22.0,0.1)", "obs_ids": [1]})
    assert cfg["results_dir"] == "results"
    assert cfg["datastore"] is None
    assert cfg["geom"] == {"width": [1.5, 1.5], "binsz": 0.04, "frame": "galactic", "proj": "CAR",
                           "center": None, "edisp_binsz": 0.2}
    assert cfg["energy_axis"] == {"min": 0.3, "max": 40, "nbins": 10}
    assert cfg["energy_axis_true"] == {"min": 0.05, "max": 100, "nbins": 30}
    assert cfg["safe_mask"]["methods"] == ["aeff-default", "aeff-max"]
    assert cfg["spectrum"]["method"] == "exact"
    assert cfg["model"]["type"] == "power_law"
    assert cfg["fit"] == {"minos": False, "integration": "exact", "covariance": "hesse", "compare": [],
                          "allow_negative_amplitude": False, "detection_ts_min": 9.0}
    assert cfg["flux_points"]["energy_edges"] is None
    assert cfg["cumulative"] == {"stacking": "exact"}
    assert cfg["stacked"] == {"energy_range": None, "rad_max_energy": 1.0}
    assert cfg["background"] == {"method": "reflected", "n_off_regions": 3, "fallback": None, "ring": None}
    assert cfg["obs_cone"] is None
    assert "zenodo" in cfg["download"]["url"] and "1421099" in cfg["download"]["url"]


def test_load_config_from_file_equals_dict(tmp_path):
    assert load_config(SEED) == load_config(yaml.safe_load(SEED.read_text()))


def test_input_not_modified():
    raw = {"name": "x", "on_region": "icrs;circle(83.6,22.0,0.1)", "obs_ids": [1]}
    before = copy.deepcopy(raw)
    load_config(raw)
    assert raw == before


def test_yaml_exponent_without_dot_is_a_number():
    raw = yaml.safe_load("name: x\non_region: 'icrs;circle(1,2,0.1)'\nobs_ids: [1]\n"
                         "model: {type: power_law, parameters: {amplitude: {value: 1e-12}}}\n")
    assert raw["model"]["parameters"]["amplitude"]["value"] == "1e-12"  # YAML 1.1
    cfg = load_config(raw)
    assert cfg["model"]["parameters"]["amplitude"]["value"] == 1e-12


def test_scalar_width_normalised():
    cfg = load_config({"name": "x", "on_region": "icrs;circle(1,2,0.1)", "obs_ids": [1], "geom": {"width": 2}})
    assert cfg["geom"]["width"] == [2.0, 2.0]


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c.update(foo=1), "'foo'"),
        (lambda c: c["geom"].update(widht=1.0), "'geom.widht'"),
        (lambda c: c["geom"].update(binsz="big"), "'geom.binsz'"),
        (lambda c: c["geom"].update(binsz=-0.1), "'geom.binsz'"),
        (lambda c: c["geom"].update(width=[1.0]), "'geom.width'"),
        (lambda c: c["geom"].update(frame="fk4"), "'geom.frame'"),
        (lambda c: c.update(obs_ids="20326"), "'obs_ids'"),
        (lambda c: c.update(obs_ids=[20326, 20326]), "'obs_ids'"),
        (lambda c: c.pop("name"), "'name'"),
        (lambda c: c.update(name="a b"), "'name'"),
        (lambda c: c["spectrum"].update(method="fast"), "'spectrum.method'"),
        (lambda c: c["safe_mask"].update(methods=["aeff-foo"]), "'safe_mask.methods[0]'"),
        (lambda c: c["energy_axis"].update(min=50.0), "'energy_axis'"),
        (lambda c: c["energy_axis_true"].update(nbins=0), "'energy_axis_true.nbins'"),
        (lambda c: c["model"].update(type="pl"), "'model.type'"),
        (lambda c: c["model"]["parameters"].update(index="soft"), "'model.parameters.index'"),
        (lambda c: c["model"]["parameters"].update(lambda_=0.1), "'model.parameters.lambda_'"),
        (lambda c: c["model"]["parameters"].update(index={"value": 2.0, "min": 3.0}), "'model.parameters.index'"),
        (lambda c: c["fit"].update(compare=["powerlaw"]), "'fit.compare[0]'"),
        (lambda c: c["fit"].update(minos="yes"), "'fit.minos'"),
        (lambda c: c["flux_points"].update(energy_edges=[1.0, 0.5]), "'flux_points.energy_edges'"),
        (lambda c: c["stacked"].update(energy_range=[1.0]), "'stacked.energy_range'"),
        (lambda c: c["cumulative"].update(stacking="float16"), "'cumulative.stacking'"),
        (lambda c: c.update(obs_cone={"radius": 0}), "'obs_cone.radius'"),
        (lambda c: c.update(obs_ids=[], obs_cone=None), "'obs_ids'"),
        (lambda c: c.update(on_region="circle(347.3,-0.5,0.5)"), "'on_region'"),
        (lambda c: c.update(on_region="galactic;circle(347.3,-0.5"), "'on_region'"),
        (lambda c: c.update(on_region="galactic;circle(347.3,-0.5,0.5);circle(347,0,0.2)"), "'on_region'"),
        (lambda c: c.update(exclusion_regions=["galactic;box(1,2"]), "'exclusion_regions[0]'"),
        (lambda c: c["geom"].update(center=[340.0, 0.0]), "'on_region'"),
        (lambda c: c["geom"].update(width=[0.5, 0.5]), "'on_region'"),
        (lambda c: c.update(on_region="missing.reg"), "'on_region'"),
        (lambda c: c["download"].update(sha256="abc"), "'download.sha256'"),
    ],
)
def test_invalid_config_one_line_naming_key(change, key):
    raw = seed_raw()
    change(raw)
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, check_datastore=False)
    msg = str(exc.value)
    assert "\n" not in msg
    assert key in msg, msg


@needs_dr1
def test_seed_config_valid_with_datastore():
    cfg = validate_config(seed_raw())
    assert cfg["name"] == "rxj1713"


@needs_dr1
def test_obs_id_not_in_store():
    raw = seed_raw()
    raw["obs_ids"] = [20326, 99999]
    with pytest.raises(ConfigError, match=r"config key 'obs_ids'.*99999"):
        validate_config(raw)


def test_missing_datastore_message(tmp_path):
    raw = seed_raw()
    raw["datastore"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError) as exc:
        validate_config(raw)
    msg = str(exc.value)
    assert "'datastore'" in msg and str(tmp_path / "nowhere") in msg and "1421099" in msg


@needs_dr1
def test_obs_cone_selects_the_15_rxj1713_runs():
    from extspec.io.datastore import open_datastore

    raw = seed_raw()
    raw["obs_ids"] = []
    raw["obs_cone"] = {"radius": 2.0}
    cfg = validate_config(raw)
    store = open_datastore(DR1)
    assert sorted(selected_obs_ids(cfg, store)) == RXJ15
    # explicit centre in another frame, and union with obs_ids (ids first, no duplicates)
    cfg["obs_cone"] = {"radius": 2.0, "center": [258.1, -39.7], "frame": "icrs"}
    cfg["obs_ids"] = [20900, 23523]
    sel = selected_obs_ids(cfg, store)
    assert sel[:2] == [20900, 23523]
    assert sorted(sel[2:]) == sorted(set(RXJ15) - {20900})
    cfg["obs_ids"] = []
    cfg["obs_cone"] = {"radius": 0.1, "center": [0.0, 0.0], "frame": "galactic"}
    with pytest.raises(ConfigError, match="obs_cone"):
        selected_obs_ids(cfg, store)


def test_stage_config_subsets():
    cfg = load_config(seed_raw())
    assert set(stage_config(cfg, "fit")) == {"name", "model", "fit"}
    for stage, keys in STAGE_KEYS.items():
        sub = stage_config(cfg, stage)
        # the optional light_curve block (absent: no light curve) and model.spatial (absent by default)
        assert set(sub) == set(keys) - {"light_curve", "model.spatial"}
        assert "obs_ids" not in sub and "datastore" not in sub
    assert "model" not in stage_config(cfg, "cumulative")
    assert "model" not in stage_config(cfg, "stack")


def test_model_spatial_reruns_the_reductions_and_the_rest_of_model_does_not():
    """model.spatial is part of the exposure: in the reduce step's settings, alone of its block."""
    cfg = load_config(seed_raw())
    assert "model" not in stage_config(cfg, "reduce")
    cfg2 = load_config({**seed_raw(), "model": {**cfg["model"], "spatial": {"type": "disk", "radius": 0.6}}})
    assert stage_config(cfg2, "reduce")["model"] == {"spatial": {"type": "disk", "radius": 0.6}}
    other = {**cfg2, "model": {**cfg2["model"], "parameters": {"index": 2.7}}}
    assert stage_config(other, "reduce") == stage_config(cfg2, "reduce")
    assert stage_config(other, "fit") != stage_config(cfg2, "fit")


@pytest.mark.parametrize("spatial, match", [
    ({"type": "disk"}, "model.spatial.radius' is missing"),
    ({"type": "gauss", "radius": 0.2}, "model.spatial.sigma' is missing"),
    ({"type": "point", "sigma": 0.2}, "model.spatial.sigma': not a parameter of type point"),
    ({"type": "point", "lon": 10.0}, "give both lon and lat"),
])
def test_model_spatial_refusals(spatial, match):
    raw = seed_raw()
    raw["model"] = {**(raw.get("model") or {"type": "power_law"}), "spatial": spatial}
    with pytest.raises(ConfigError, match=match):
        validate_config(raw, check_datastore=False)


def test_model_spatial_refused_with_the_reference_extraction_and_in_compare():
    raw = seed_raw()
    raw["model"] = {**(raw.get("model") or {"type": "power_law"}), "spatial": {"type": "point"}}
    with pytest.raises(ConfigError, match="spectrum.method 'reference'"):
        validate_config({**raw, "spectrum": {"method": "reference"}}, check_datastore=False)
    with pytest.raises(ConfigError, match=r"fit.compare\[0\].spatial"):
        validate_config({**raw, "fit": {"compare": [{"type": "log_parabola", "spatial": {"type": "point"}}]}},
                        check_datastore=False)


@needs_dr1
def test_prepare_workflow_cached_without_heavy_imports(tmp_path):
    raw = seed_raw()
    out = prepare_workflow(raw, cache_dir=tmp_path)
    assert out["analyses"][raw["name"]]["obs_ids"] == raw["obs_ids"]
    assert out["datastore"] == str(DR1.resolve())
    assert out["datastore_error"] is None
    files_of = out["analyses"][raw["name"]]["obs_files"]
    assert sorted(files_of) == sorted(map(str, raw["obs_ids"]))
    assert all(f.endswith(".fits.gz") for files in files_of.values() for f in files)
    assert len(list(tmp_path.glob("config-*.json"))) == 1
    # a second process hits the cache: no astropy, regions or jsonschema import
    code = (
        "import json, sys\n"
        "from extspec.workflow.config import prepare_workflow\n"
        f"out = prepare_workflow(json.loads({json.dumps(json.dumps(raw))}), "
        f"cache_dir={str(tmp_path)!r})\n"
        "heavy = [m for m in ('astropy', 'regions', 'jsonschema') if m in sys.modules]\n"
        "print(json.dumps({'obs': next(iter(out['analyses'].values()))['obs_ids'], 'heavy': heavy}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd())
    got = json.loads(res.stdout)
    assert got == {"obs": raw["obs_ids"], "heavy": []}
    # a different config is a different cache entry
    raw2 = dict(raw, obs_ids=[20326])
    assert prepare_workflow(raw2, cache_dir=tmp_path)["analyses"][raw["name"]]["obs_ids"] == [20326]
    assert len(list(tmp_path.glob("config-*.json"))) == 2


def test_prepare_workflow_missing_store_is_deferred(tmp_path):
    raw = seed_raw()
    raw["datastore"] = str(tmp_path / "nowhere")
    out = prepare_workflow(raw, cache_dir=tmp_path / "cache")
    assert out["datastore"] is None and out["analyses"][raw["name"]]["obs_ids"] == []
    assert re.search(r"no DL3 data store found \(looked in: .*nowhere\)", out["datastore_error"])
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.json"))


def test_defaults_come_from_the_schema_only():
    """The settings builders given partial configs use the schema's defaults (no second copy)."""
    from extspec.workflow.config import read_schema, schema_defaults, setting
    from extspec.skyregions import parse_region
    from extspec.workflow.settings import cube_settings

    schema = read_schema()
    d = schema_defaults()
    assert d["geom"]["binsz"] == schema["properties"]["geom"]["properties"]["binsz"]["default"] == 0.04
    assert d["energy_axis_true"] == schema["properties"]["energy_axis_true"]["default"]
    assert d["safe_mask"]["methods"] == ["aeff-default", "aeff-max"]
    assert setting({"fit": {"minos": True}}, "fit", "minos") is True
    assert setting({"fit": {"minos": True}}, "fit", "covariance") == "hesse"
    s = cube_settings({"spectrum": {"method": "reference"}}, parse_region("galactic;circle(347.3,-0.5,0.5)"))
    assert s.method == "reference" and s.oversample == d["spectrum"]["oversample"]
    assert s.geom.binsz == 0.04 and s.geom.npix == (38, 38) and s.edisp_binsz == 0.2
    assert (s.energy_true.edges[0], s.energy_true.edges[-1], s.energy_true.nbin) == (0.05, 100.0, 30)
    # a validated config equals its own defaults-filled version: nothing else fills values
    full = load_config(seed_raw())
    for block in ("geom", "energy_axis", "energy_axis_true", "safe_mask", "spectrum", "fit", "flux_points"):
        for k in d[block]:
            assert setting(full, block, k) == full[block][k]


def _ogip_set(d, stem="pha_obs777", obs_id=777):
    """A minimal OGIP PHA whose header names its three siblings (empty files suffice here)."""
    from astropy.io import fits

    d.mkdir(parents=True, exist_ok=True)
    hdu = fits.BinTableHDU.from_columns([fits.Column("COUNTS", "J", array=[1, 2])], name="SPECTRUM")
    rest = stem.removeprefix("pha_")
    hdu.header.update({"BACKFILE": f"bkg_{rest}.fits", "ANCRFILE": f"arf_{rest}.fits",
                       "RESPFILE": f"rmf_{rest}.fits", "EXPOSURE": 1.0})
    if obs_id is not None:
        hdu.header["OBS_ID"] = obs_id
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(d / f"{stem}.fits")
    for kind in ("bkg", "arf", "rmf"):
        (d / f"{kind}_{rest}.fits").write_bytes(b"")
    return d / f"{stem}.fits"


def test_external_spectra_only(tmp_path, monkeypatch):
    """Only external spectra: no on_region, obs ids or data store needed; globs resolved,
    each set's four files listed; problems are one-line errors naming the key."""
    monkeypatch.chdir(tmp_path)
    _ogip_set(tmp_path / "ext", "pha_obs12", 12)
    _ogip_set(tmp_path / "ext", "pha_obs3", None)  # no OBS_ID: the number in the file name
    raw = {"name": "ext", "datastore": "/nonexistent", "external_spectra": ["ext/pha_obs*.fits"]}
    out = prepare_workflow(raw, cache_dir=None)
    ext = out["analyses"]["ext"]
    assert out["datastore"] is None and out["datastore_error"] is None and ext["obs_ids"] == []
    assert [e["pha"] for e in ext["external"]] == ["ext/pha_obs12.fits", "ext/pha_obs3.fits"]
    assert [e["obs_id"] for e in ext["external"]] == [12, 3]
    assert ext["external"][0]["files"] == [f"ext/{k}_obs12.fits" for k in ("pha", "bkg", "arf", "rmf")]

    with pytest.raises(ConfigError, match=r"^config key 'external_spectra\[1\]': no file matches 'nope/\*.fits'$"):
        prepare_workflow({**raw, "external_spectra": ["ext/pha_obs12.fits", "nope/*.fits"]}, cache_dir=None)
    with pytest.raises(ConfigError, match=r"^config key 'obs_ids': no observations selected"):
        validate_config({"name": "x"}, check_datastore=False)
    with pytest.raises(ConfigError, match=r"^config key 'on_region' is missing"):
        validate_config({"name": "x", "obs_ids": [1]}, check_datastore=False)
    (tmp_path / "ext" / "rmf_obs3.fits").unlink()
    with pytest.raises(ConfigError) as e:
        prepare_workflow(raw, cache_dir=None)
    assert str(e.value).startswith("config key 'external_spectra': ") and "rmf_obs3.fits: no such file" in str(e.value)
    _ogip_set(tmp_path / "dup", "pha_a", 12)
    with pytest.raises(ConfigError, match="same obs id 12"):
        prepare_workflow({**raw, "external_spectra": ["ext/pha_obs12.fits", "dup/pha_a.fits"]}, cache_dir=None)


# ----------------------------------------------------------------------------- analyses --


def test_analyses_merge_over_the_top_level():
    raw = seed_raw()
    raw["analyses"] = {
        "a": {},
        "b": {"geom": {"binsz": 0.05}, "obs_ids": [20326],
              "model": {"type": "log_parabola", "parameters": {"alpha": 2.3}}},
    }
    cfgs = validate_analyses(raw, check_datastore=False)
    assert list(cfgs) == ["a", "b"]
    a, b = cfgs["a"], cfgs["b"]
    assert a["name"] == "a" and b["name"] == "b"
    assert a["obs_ids"] == raw["obs_ids"] and b["obs_ids"] == [20326]
    assert b["geom"]["binsz"] == 0.05 and b["geom"]["width"] == a["geom"]["width"]  # merged key by key
    assert b["model"]["type"] == "log_parabola" and set(b["model"]["parameters"]) == {"alpha"}  # replaced
    assert "analyses" not in a
    # per-stage settings differ only where the analyses do
    assert stage_config(a, "reduce") != stage_config(b, "reduce")
    assert stage_config(a, "cumulative") == {**stage_config(b, "cumulative"), "name": "a"}


def test_without_analyses_one_analysis_named_by_name():
    cfgs = validate_analyses(seed_raw(), check_datastore=False)
    assert list(cfgs) == ["rxj1713"] and cfgs["rxj1713"] == validate_config(seed_raw(), check_datastore=False)


@pytest.mark.parametrize("entry, message", [
    ({"b": {"geom": {"binsz": -1}}}, "config key 'analyses.b.geom.binsz': must be > 0"),
    ({"b": {"download": {"auto": False}}}, "config key 'analyses.b.download': set it at the top level"),
    ({"b": {"joint": {}}}, "config key 'analyses.b.joint': set it at the top level"),
    ({"b": {"name": "c"}}, "config key 'analyses.b.name'"),
    ({"b": {"obs_idz": [1]}}, "unknown config key 'analyses.b.obs_idz'"),
    ({"b c": {}}, "config key 'analyses'"),
    ({"logs": {}}, "analysis logs: config key 'name': 'logs' is reserved"),
    ({"b": {"model": {"type": "power_law", "parameters": {"alpha": 1.0}}}},
     "config key 'analyses.b.model.parameters.alpha'"),
    ({"b": {"geom": {"center": [0.0, 0.0]}}}, "analysis b: config key 'on_region'"),
])
def test_invalid_analysis_names_its_key(entry, message):
    raw = seed_raw()
    raw["analyses"] = entry
    with pytest.raises(ConfigError) as e:
        validate_analyses(raw, check_datastore=False)
    assert str(e.value).startswith(message) or message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_analyses_without_top_level_name_or_region():
    raw = {"obs_ids": [20326], "analyses": {"x": {"on_region": "galactic;circle(347.3,-0.5,0.5)"}}}
    assert list(validate_analyses(raw, check_datastore=False)) == ["x"]
    raw["analyses"]["y"] = {}
    with pytest.raises(ConfigError, match=r"^analysis y: config key 'on_region' is missing"):
        validate_analyses(raw, check_datastore=False)


@pytest.mark.parametrize("block", [{"fit": {"detection_ts_min": float("nan")}},
                                   {"light_curve": {"time_bins": "run", "variability_min_counts": float("nan")}},
                                   {"geom": {"binsz": float("nan")}}])
def test_nan_is_refused_naming_the_key(block):
    """NaN passes every bound of the schema (each comparison with it is false): it would switch
    the detection test off silently. Refused for any key, in one line naming it."""
    from extspec.workflow.schema import load_config

    (top, inner), = block.items()
    key = f"{top}.{[k for k, v in inner.items() if v != v][0]}"
    with pytest.raises(ConfigError, match=rf"^config key '{key}': must be a number, got nan$"):
        load_config({"name": "x", **block})


def test_schema_default_is_a_copy_of_one_value():
    """setting() of a missing key copies that default alone (schema_default), never the shared tree."""
    from extspec.workflow.schema import schema_default, schema_defaults
    from extspec.workflow.settings import setting

    methods = schema_default("safe_mask", "methods")
    assert methods == schema_defaults()["safe_mask"]["methods"] and isinstance(methods, list) and methods
    methods.append("changed")
    block = schema_default("safe_mask")
    block["methods"].append("changed too")
    assert schema_default("safe_mask", "methods") == schema_defaults()["safe_mask"]["methods"] != methods
    assert setting({}, "safe_mask", "methods") == schema_defaults()["safe_mask"]["methods"]
    assert setting({"safe_mask": {"methods": ["x"]}}, "safe_mask", "methods") == ["x"]
