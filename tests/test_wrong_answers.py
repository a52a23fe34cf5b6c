"""No wrong answer reported "ok" (issue 19): each case refuses with one line or excludes what
is broken and says so.

Wobble OFF regions that overlap, runs without events, fits of nothing and failed fits, false
minima from start values, stale or mismatched inputs, duplicate YAML keys.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from extspec.errors import ConfigError, ExtspecError

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "config" / "config.yaml"
DR1 = REPO.parent / "shared" / "data" / "hess-dl3-dr1"
MAGIC = REPO.parent / "shared" / "data" / "magic-rad-max"
needs_dr1 = pytest.mark.skipif(not (DR1 / "hdu-index.fits.gz").is_file(), reason=f"no HESS DL3 DR1 at {DR1}")
needs_magic = pytest.mark.skipif(not (MAGIC / "hdu-index.fits.gz").is_file(), reason=f"no MAGIC data at {MAGIC}")


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


# ------------------------------------------------------------------ duplicate YAML keys --


@pytest.mark.parametrize(
    "text, key, line, first",
    [
        ("name: a\nobs_ids: [1]\non_region: x\nobs_ids: [2]\n", "obs_ids", 4, 2),
        ("analyses:\n  crab: {obs_ids: [1]}\n  pks: {obs_ids: [2]}\n  crab:\n    obs_ids: [3]\n", "crab", 4, 2),
        ("model:\n  type: power_law\n  parameters:\n    index: 2\n    index: 3\n", "index", 5, 4),
    ],
    ids=["obs_ids", "analyses-entry", "nested"],
)
def test_duplicate_yaml_key_refused_naming_key_and_line(tmp_path, text, key, line, first):
    from extspec.workflow.config import read_config_files

    p = tmp_path / "my.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        read_config_files([p])
    assert one_line(exc).startswith(f"config file {p} line {line}: key '{key}' given twice (first on line {first})")


def test_duplicate_yaml_key_refused_by_the_command_line(tmp_path):
    p = tmp_path / "my.yaml"
    p.write_text(SEED.read_text() + "obs_ids: [20326]\n")
    res = subprocess.run([sys.executable, "-m", "extspec", "check", str(p)], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip().endswith("key 'obs_ids' given twice (first on line 9); the second would silently "
                                       "replace the first"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_duplicate_yaml_key_refused_by_the_workflow(tmp_path):
    import test_workflow as sm

    p = tmp_path / "my.yaml"
    p.write_text("name: dup\nobs_ids: [20326]\nobs_ids: [20327]\n")
    res = sm.snakemake(tmp_path, p, "-n", check=False)
    assert res.returncode != 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("Using ")]
    assert lines == [f"extspec: invalid configuration: config file {p} line 3: key 'obs_ids' given twice "
                     "(first on line 2); the second would silently replace the first"], res.stdout


# ------------------------------------------------------------- wobble OFF regions that overlap --


def _pairwise_min_separation(regions, on):
    centres = [on.center] + [r.center for r in regions]
    return min(a.separation(b) for i, a in enumerate(centres) for b in centres[i + 1:])


def test_wobble_regions_never_overlap_geometry():
    from extspec.reflected import WobbleOverlapError, find_wobble_regions, wobble_max_regions
    from extspec.sky import SkyPoint
    from extspec.skyregions import parse_region

    on = parse_region("icrs;circle(83.63,22.01,0.1)")
    pnt = SkyPoint(83.63, 22.51, "icrs")
    # seen from 0.5 deg the 0.1 deg circle spans 2 arcsin(sin 0.1 / sin 0.5) = 23.07 deg: 360 / 23.07 = 15.6
    assert wobble_max_regions(2 * np.arcsin(np.sin(np.radians(0.1)) / np.sin(np.radians(0.5)))) == 14
    off = find_wobble_regions(on, pnt, (), 14, "exact")
    assert len(off) == 14
    assert _pairwise_min_separation(off.regions, on) >= 2 * 0.1 - 1e-9  # circles touch at most
    with pytest.raises(WobbleOverlapError) as exc:
        find_wobble_regions(on, pnt, (), 15, "exact")
    assert exc.value.n_max == 14
    assert one_line(exc) == ("config key 'background.n_off_regions': 15 wobble OFF regions 22.5 deg apart overlap "
                             "each other and the ON region, which spans 23.1 deg seen from the pointing (0.50 deg "
                             "away); at most 14 fit (set n_off_regions: 14)")
    # the seed's 0.5 deg circle at 0.7 deg: 91.2 deg wide, so 3 copies 90 deg apart overlap by a sliver
    big = parse_region("galactic;circle(347.3,-0.5,0.5)")
    gp = SkyPoint(348.0, -0.5, "galactic")
    with pytest.raises(WobbleOverlapError, match=r"at most 2 fit") as exc:
        find_wobble_regions(big, gp, (), 12, "exact")
    two = find_wobble_regions(big, gp, (), 2, "exact")
    assert len(two) == 2 and _pairwise_min_separation(two.regions, big) >= 1.0 - 1e-9


def test_wobble_alpha_from_the_regions_kept():
    from extspec.reflected import find_wobble_regions
    from extspec.sky import SkyPoint
    from extspec.skyregions import parse_region

    on = parse_region("icrs;circle(83.63,22.01,0.1)")
    pnt = SkyPoint(83.63, 22.51, "icrs")
    full = find_wobble_regions(on, pnt, (), 5, "exact")
    c = full.regions[2].center
    kept = find_wobble_regions(on, pnt, [f"icrs;circle({c.lon},{c.lat},0.05)"], 5, "exact")
    assert len(kept) == 4 and kept.info["n_dropped"] == 1  # alpha = 1/4 downstream (n_off_regions kept)


@needs_dr1
def test_seed_wobble_twelve_refused_at_config_time_naming_the_largest_n():
    from extspec.workflow.config import validate_config

    raw = yaml.safe_load(SEED.read_text())
    raw.update(datastore=str(DR1), background={"method": "wobble", "n_off_regions": 12})
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, check_datastore=True)
    msg = one_line(exc)
    assert msg.startswith("config key 'background.n_off_regions': 12 wobble OFF regions 27.7 deg apart overlap "
                          "each other and the ON region"), msg
    assert msg.endswith("at most 2 fit (set n_off_regions: 2)"), msg
    raw["background"]["n_off_regions"] = 2
    assert validate_config(raw, check_datastore=True)["background"]["n_off_regions"] == 2


@needs_dr1
def test_seed_wobble_significance_does_not_double(tmp_path):
    """The reduction step refuses overlapping copies too (the config check bypassed); with the
    largest number that fits, the seed's excess significance stays near the reflected ~10.6 sigma."""
    from extspec.io.ogip import read_spectrum
    from extspec.stacking import stack_spectra
    from extspec.stats import wstat_sqrt_ts
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation

    raw = yaml.safe_load(SEED.read_text())
    raw.update(datastore=str(DR1), background={"method": "wobble", "n_off_regions": 12})
    red = stage_config(load_config(raw), "reduce")
    with pytest.raises(ExtspecError) as exc:
        reduce_observation(red, DR1, 20326, tmp_path / "x")
    assert one_line(exc).startswith("obs 20326: config key 'background.n_off_regions': 12 wobble OFF regions")
    assert not (tmp_path / "x").exists()
    red["background"]["n_off_regions"] = 2
    spectra = []
    for o in raw["obs_ids"]:
        reduce_observation(red, DR1, o, tmp_path / str(o))
        spectra.append(read_spectrum(tmp_path / str(o)))
    assert all(s.n_off_regions == 2 for s in spectra)
    st = stack_spectra(spectra, float32=False)
    m = st.mask_safe
    n_on, n_off = st.counts[m].sum(), st.counts_off[m].sum()
    alpha = float(np.sum(st.alpha[m] * st.counts_off[m]) / n_off)
    sig = float(wstat_sqrt_ts(n_on, n_off, alpha))
    assert 7.0 < sig < 14.0, sig  # 39 sigma with 12 overlapping copies before issue 19


# ---------------------------------------------------------------- simulated runs for the rest --


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Two simulated Crab-like runs (obs 1, 2) and a run without events (obs 10, another store),
    reduced by the library; the analysis config of the first store."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation

    base = tmp_path_factory.mktemp("wrong")
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(base / "store", wobble_pointings(83.63, 22.01, 2, 0.5), src, livetime=1800.0)
    empty = simulate_datastore(base / "empty", wobble_pointings(83.63, 22.01, 1, 0.5), None, livetime=1800.0,
                               bkg_scale=0.0, obs_id_start=10)
    raw = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2], "on_region": "icrs;circle(83.63,22.01,0.2)",
           "geom": {"width": [2.0, 2.0], "frame": "icrs"}}
    cfg = load_config(raw)
    red = stage_config(cfg, "reduce")
    dirs = {}
    for o, s in ((1, store), (2, store), (10, empty)):
        dirs[o] = base / "obs" / str(o)
        reduce_observation(red, s, o, dirs[o])
    return {"base": base, "store": store, "empty": empty, "raw": raw, "cfg": cfg, "dirs": dirs}


# ---------------------------------------------------------------------- runs with no events --


def test_no_events_reason():
    from extspec.spectrum import no_events_reason

    edges = np.geomspace(0.3, 40, 11)
    assert no_events_reason(np.zeros(0), edges) == "no events (the EVENTS table has no rows)"
    assert no_events_reason(np.array([0.1, 0.2, 50.0]), edges) == (
        "no events in the reco-energy range [0.3, 40] TeV (3 outside it)")
    assert no_events_reason(np.array([0.1, 1.0]), edges) == ""


def test_run_without_events_excluded_with_its_reason(sim, tmp_path):
    from astropy.io import fits

    from extspec.workflow.pipeline import run_fit
    from extspec.workflow.summary_step import write_summary

    with fits.open(sim["dirs"][10] / "pha.fits") as h:
        assert h["SPECTRUM"].header["USABLE"] is False
        assert h["SPECTRUM"].header["REASON"] == "no events (the EVENTS table has no rows)"
        assert not np.any(h["SPECTRUM"].data["QUALITY"] == 0)  # every channel bad
    out = tmp_path / "results" / "sim"
    dirs = [sim["dirs"][o] for o in (1, 2, 10)]
    run_fit(sim["cfg"], dirs, out / "fit" / "result.yaml", out / "fit" / "spectrum.png")
    res = yaml.safe_load((out / "fit" / "result.yaml").read_text())
    assert res["obs_ids"] == [1, 2]
    assert res["excluded"] == [{"obs_id": 10, "reason": "no events (the EVENTS table has no rows)"}]
    # the empty run does not drag the amplitude down: the same fit as without it
    alone = tmp_path / "alone.yaml"
    run_fit(sim["cfg"], dirs[:2], alone, tmp_path / "alone.png")
    a = yaml.safe_load(alone.read_text())["model"]["parameters"]["amplitude"]["value"]
    assert res["model"]["parameters"]["amplitude"]["value"] == pytest.approx(a, rel=1e-9)
    assert a == pytest.approx(3e-11, rel=0.25)
    rows = write_summary(tmp_path / "results", ["sim"], tmp_path / "s.ecsv", tmp_path / "s.html")
    assert rows[0]["n_excluded"] == 1 and rows[0]["excluded"] == "10"


# ------------------------------------------------------------------ fits of nothing, failed fits --


def _write_variant(sim, tmp_path, name, change):
    """The simulated runs 1 and 2 with their arrays changed by ``change(spectrum)`` (a dict of fields)."""
    import dataclasses

    from extspec.io.ogip import read_spectrum, write_spectrum

    dirs = []
    for o in (1, 2):
        s = read_spectrum(sim["dirs"][o])
        d = tmp_path / name / str(o)
        write_spectrum(dataclasses.replace(s, **change(s)), d)
        dirs.append(d)
    return dirs


def test_fit_of_nothing_fails_with_one_line(sim, tmp_path):
    from extspec.workflow.pipeline import run_fit, run_flux_points

    dirs = _write_variant(sim, tmp_path, "nothing", lambda s: {"counts": np.zeros_like(s.counts),
                                                                "counts_off": np.zeros_like(s.counts_off)})
    out = tmp_path / "fit"
    with pytest.raises(ExtspecError) as exc:
        run_fit(sim["cfg"], dirs, out / "result.yaml", out / "spectrum.png")
    assert one_line(exc).startswith("fit: power_law fit of sim failed: no counts in any fitted bin of the 2 usable "
                                    "run(s) (safe range "), str(exc.value)
    res = yaml.safe_load((out / "result.yaml").read_text())
    assert res["success"] is False and res["model"]["parameters"]["index"]["value"] is None
    # no flux-point table from a failed fit
    with pytest.raises(ExtspecError, match=r"^flux points: the fit in .* did not succeed \(no counts"):
        run_flux_points(sim["cfg"], dirs, out / "result.yaml", out / "fp.ecsv", out / "sed.png")
    assert not (out / "fp.ecsv").exists()


def test_failed_fit_fails_the_command_and_the_summary_names_it(sim, tmp_path):
    """`extspec fit` on runs without counts: exit 1, one line; the summary names the failure."""
    from extspec.workflow.summary_step import write_summary

    dirs = _write_variant(sim, tmp_path, "nothing", lambda s: {"counts": np.zeros_like(s.counts),
                                                                "counts_off": np.zeros_like(s.counts_off)})
    cfg_file = tmp_path / "sim.yaml"
    cfg_file.write_text(yaml.safe_dump(sim["raw"]))
    res_dir = tmp_path / "results"
    log = res_dir / "sim" / "logs" / "fit.log"
    res = subprocess.run([sys.executable, "-m", "extspec", "fit", *map(str, dirs), "--config", str(cfg_file),
                          "--result", str(tmp_path / "r.yaml"), "--png", str(tmp_path / "r.png"), "--log", str(log),
                          "--quiet"], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip().startswith("extspec fit: power_law fit of sim failed: no counts in any fitted bin")
    assert len(res.stderr.strip().splitlines()) == 1
    rows = write_summary(res_dir, ["sim"], tmp_path / "s.ecsv", tmp_path / "s.html")
    assert rows[0]["status"].startswith("failed: fit: power_law fit of sim failed: no counts"), rows[0]["status"]


@pytest.mark.parametrize(
    "model, message",
    [
        ({"type": "power_law", "parameters": {"reference": {"value": 0.0, "frozen": True}}},
         "config key 'model.parameters.reference': 0 is impossible for a reference energy (TeV); it must be > 0"),
        ({"type": "power_law", "parameters": {"index": float("nan")}},
         "config key 'model.parameters.index': value nan is not a finite number"),
        ({"type": "power_law", "parameters": {"amplitude": {"value": float("inf")}}},
         "config key 'model.parameters.amplitude': value inf is not a finite number"),
        ({"type": "power_law", "parameters": {"index": {"value": 2.0, "max": float("inf")}}},
         "config key 'model.parameters.index': max inf is not a finite number"),
        ({"type": "exp_cutoff_power_law", "parameters": {"lambda_": -1.0}},
         "config key 'model.parameters.lambda_': -1 is impossible for an inverse cutoff energy (TeV^-1); "
         "it must be >= 0"),
        ({"type": "broken_power_law", "parameters": {"ebreak": -2.0}},
         "config key 'model.parameters.ebreak': -2 is impossible for a break energy (TeV); it must be > 0"),
        ({"type": "power_law", "parameters": {"amplitude": 0.0}},
         "config key 'model.parameters.amplitude': a start amplitude of 0 leaves the fit no scale"),
        ({"type": "power_law", "parameters": {"amplitude": -1.0e-12}},
         "config key 'model.parameters.amplitude': negative amplitude -1e-12; amplitudes stay >= 0 unless "
         "fit.allow_negative_amplitude is true"),
    ],
    ids=["reference-0", "nan-index", "inf-amplitude", "inf-max", "lambda-negative", "ebreak-negative",
         "amplitude-0", "amplitude-negative"],
)
def test_impossible_start_values_are_config_errors(model, message):
    from extspec.workflow.config import validate_config

    raw = {**yaml.safe_load(SEED.read_text()), "model": model}
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, check_datastore=False)
    assert one_line(exc).startswith(message), str(exc.value)


def test_negative_start_amplitude_allowed_by_the_fit_option():
    from extspec.workflow.config import validate_config

    raw = {**yaml.safe_load(SEED.read_text()), "fit": {"allow_negative_amplitude": True},
           "model": {"type": "power_law", "parameters": {"amplitude": -1.0e-12}}}
    assert validate_config(raw, check_datastore=False)["fit"]["allow_negative_amplitude"] is True


def test_amplitude_stays_physical_unless_negatives_are_allowed(sim):
    """Runs whose ON counts lie below the background (negative excess): amplitude >= 0 by
    default, negative with fit.allow_negative_amplitude."""
    import dataclasses

    from extspec.fit import fit_joint
    from extspec.io.ogip import read_spectrum
    from extspec.workflow.settings import fit_options

    spectra = []
    for o in (1, 2):
        s = read_spectrum(sim["dirs"][o])
        # 400 OFF counts per bin, ON 30 % below alpha x 400: a clear negative excess in every bin
        spectra.append(dataclasses.replace(s, counts_off=np.full(s.counts.size, 400),
                                           counts=np.rint(400 * s.alpha * 0.7).astype(np.int64)))
    model = {"type": "power_law", "parameters": {"index": {"value": 2.5}, "amplitude": {"value": 1.0e-11}}}
    free = fit_joint(spectra, model, fit_options({"fit": {"allow_negative_amplitude": True}}))
    assert free.success and free.values["amplitude"] < 0
    phys = fit_joint(spectra, model, fit_options({}))
    assert phys.success and 0 <= phys.values["amplitude"] < 1e-15
    assert phys.total_stat > free.total_stat + 10


# ---------------------------------------------------------------- false minima from start values --


def _readme_magic_example() -> dict:
    """The MAGIC tutorial's config (docs/tutorials/instruments.md shows it)."""
    return yaml.safe_load((REPO / "config" / "magic-crab.yaml").read_text())


@pytest.fixture(scope="module")
def magic(tmp_path_factory):
    """The MAGIC tutorial's config (over config/config.yaml, as the workflow merges them), reduced."""
    from extspec.workflow.config import load_config, read_config_files, stage_config
    from extspec.workflow.pipeline import reduce_observation

    base = tmp_path_factory.mktemp("magic")
    ex = _readme_magic_example()
    ex["datastore"] = str(MAGIC)
    (base / "magic.yaml").write_text(yaml.safe_dump(ex))
    cfg = load_config(read_config_files([SEED, base / "magic.yaml"]))
    dirs = [base / "obs" / str(o) for o in ex["obs_ids"]]
    for o, d in zip(ex["obs_ids"], dirs):
        reduce_observation(stage_config(cfg, "reduce"), MAGIC, o, d)
    return cfg, dirs, base


@needs_magic
def test_readme_magic_example_lands_at_the_data_minimum(magic):
    from extspec.workflow.pipeline import run_fit

    cfg, dirs, base = magic
    run_fit(cfg, dirs, base / "r.yaml", base / "r.png")
    r = yaml.safe_load((base / "r.yaml").read_text())
    p = r["model"]["parameters"]
    assert r["success"] and p["index"]["value"] == pytest.approx(2.58, abs=0.01)
    assert p["amplitude"]["value"] == pytest.approx(3.74e-11, rel=0.01)
    assert r["total_stat"] == pytest.approx(11.5, abs=0.05)
    g = r["goodness_of_fit"]
    assert g["dof"] == 18 and g["n_bins"] == 20 and g["p_value"] == pytest.approx(0.87, abs=0.01)
    assert g["poor"] is False and "warning" not in g
    assert g["predicted_excess"] == pytest.approx(g["observed_excess"], rel=0.01)


@needs_magic
def test_default_start_amplitude_comes_from_the_data(magic):
    """The seed's model without an amplitude (the default): the amplitude starts from the excess."""
    from extspec.workflow.pipeline import run_fit

    cfg, dirs, base = magic
    cfg = {**cfg, "model": {"type": "power_law", "parameters": {"index": {"value": 2.0}}}}
    run_fit(cfg, dirs, base / "d.yaml", base / "d.png")
    r = yaml.safe_load((base / "d.yaml").read_text())
    assert r["model"]["parameters"]["index"]["value"] == pytest.approx(2.58, abs=0.01)
    assert r["goodness_of_fit"]["poor"] is False


@needs_magic
def test_false_minimum_is_flagged(magic, tmp_path, caplog):
    """Started at amplitude 1e-12 the fit converges at index 6.5: result.yaml, the log and the
    summary say the fit is poor."""
    import logging

    from extspec.workflow.pipeline import run_fit
    from extspec.workflow.summary_step import write_summary

    cfg, dirs, _ = magic
    cfg = {**cfg, "model": {"type": "power_law", "parameters": {"index": 2.0, "amplitude": 1.0e-12}}}
    out = tmp_path / "results" / "magic-crab" / "fit"
    with caplog.at_level(logging.WARNING, logger="extspec.fit"):
        run_fit(cfg, dirs, out / "result.yaml", out / "spectrum.png")
    r = yaml.safe_load((out / "result.yaml").read_text())
    assert r["model"]["parameters"]["index"]["value"] == pytest.approx(6.47, abs=0.05)
    g = r["goodness_of_fit"]
    assert g["poor"] is True and g["p_value"] < 1e-20
    assert g["warning"].startswith("poor fit: WStat 179.1 for 18 degrees of freedom (p = 1.4e-28); "
                                   "predicted excess 210.9 vs observed 267.7 +- 16.9")
    assert any("poor fit: WStat 179.1" in rec.getMessage() for rec in caplog.records)
    rows = write_summary(tmp_path / "results", ["magic-crab"], tmp_path / "s.ecsv", tmp_path / "s.html")
    assert rows[0]["status"] == "poor fit" and rows[0]["fit_status"].startswith("poor fit: WStat 179.1")


# ---------------------------------------------------------------- stale or mismatched inputs --


def test_stack_refuses_runs_reduced_on_different_grids(sim, tmp_path):
    """Obs 2 reduced again around a shifted ON region (map centre 0.3 deg away, same size):
    its image would be added pixel by pixel to obs 1's, unaligned."""
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation, stack_counts

    raw = dict(sim["raw"], on_region="icrs;circle(83.63,22.31,0.2)")
    reduce_observation(stage_config(load_config(raw), "reduce"), sim["store"], 2, tmp_path / "2")
    cubes = [sim["dirs"][1] / "cube.h5", tmp_path / "2" / "cube.h5"]
    with pytest.raises(ExtspecError) as exc:
        stack_counts(sim["cfg"], cubes, [sim["dirs"][1], tmp_path / "2"], tmp_path / "c.fits", tmp_path / "c.png")
    assert one_line(exc) == (f"stack: {cubes[1]} (obs 2) was reduced on another grid than {cubes[0]} (obs 1): "
                             "CRVAL2 22.01 vs 22.31; reduce every run with the same geom and energy_axis")
    assert not (tmp_path / "c.fits").exists()
    # and by the command line: exit 1, one line
    res = subprocess.run([sys.executable, "-m", "extspec", "stack", str(sim["dirs"][1]), str(tmp_path / "2"),
                          "--settings", '{"name": "sim"}', "--fits", str(tmp_path / "c.fits"),
                          "--png", str(tmp_path / "c.png"), "--quiet"], capture_output=True, text=True)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "was reduced on another grid than" in res.stderr
    # same grid: fine
    stack_counts(sim["cfg"], [sim["dirs"][1] / "cube.h5", sim["dirs"][2] / "cube.h5"],
                 [sim["dirs"][1], sim["dirs"][2]], tmp_path / "ok.fits", tmp_path / "ok.png")


def _rewrite_index_keeping_size_and_mtime(store: Path, keep):
    """Drop every run not in ``keep`` from the (uncompressed) index files, as a restored copy
    would: same file size (FITS pads to 2880-byte blocks), the old modification time."""
    import os

    from astropy.io import fits

    for name in ("obs-index.fits", "hdu-index.fits"):
        p = store / name
        st = p.stat()
        with fits.open(p) as h:
            hdus = [fits.PrimaryHDU(header=h[0].header)]
            for ext in h[1:]:
                rows = np.isin(ext.data["OBS_ID"], keep)
                hdus.append(fits.BinTableHDU(ext.data[rows], header=ext.header))
            fits.HDUList(hdus).writeto(p, overwrite=True)
        assert p.stat().st_size == st.st_size
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_run_removed_from_the_store_is_not_fitted(tmp_path):
    """A run that leaves the data store's index: with obs_cone it is no longer selected (its old
    products are not read by any job); named in obs_ids it is refused with one line."""
    import gzip
    import shutil

    import test_workflow as sm

    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(tmp_path / "store", wobble_pointings(83.63, 22.01, 3, 0.5), src, livetime=600.0)
    for name in ("obs-index.fits", "hdu-index.fits"):  # uncompressed, as many stores are
        with gzip.open(store / f"{name}.gz") as f, open(store / name, "wb") as g:
            shutil.copyfileobj(f, g)
        (store / f"{name}.gz").unlink()
    cfg = {"name": "sim", "datastore": str(store), "obs_cone": {"radius": 2.0},
           "on_region": "icrs;circle(83.63,22.01,0.2)", "geom": {"width": [2.0, 2.0], "frame": "icrs"}}
    cf = tmp_path / "c.yaml"
    cf.write_text(yaml.safe_dump(cfg))
    sm.snakemake(tmp_path, cf, "--cores", "1", "-q")
    result = tmp_path / "results" / "sim" / "fit" / "result.yaml"
    assert yaml.safe_load(result.read_text())["obs_ids"] == [1, 2, 3]
    _rewrite_index_keeping_size_and_mtime(store, [1, 2])
    sm.snakemake(tmp_path, cf, "--cores", "1", "-q")
    assert yaml.safe_load(result.read_text())["obs_ids"] == [1, 2]
    from extspec.io.ecsv import read_ecsv_rows

    rows, _ = read_ecsv_rows(tmp_path / "results" / "sim" / "cumulative.ecsv")
    assert [int(r["obs_id"]) for r in rows] == [1, 2]
    cf.write_text(yaml.safe_dump(dict(cfg, obs_cone=None, obs_ids=[1, 2, 3])))
    res = sm.snakemake(tmp_path, cf, "--cores", "1", "-n", check=False)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("Using ")]
    assert res.returncode != 0 and len(lines) == 1 and lines[0].startswith("extspec: invalid configuration: "), lines
    assert "config key 'obs_ids'" in lines[0] and "obs id(s) 3 not in the index" in lines[0], lines[0]
