"""The light curve in the workflow: one small simulated store, two analyses in one DAG (one with
a light curve cutting runs and spectra per time bin, one without), what reruns, the summary
column, and the config refusals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import find_data
from test_workflow import dry_run, snakemake, summary_rows, write_config

from extspec.errors import ConfigError
from extspec.io.ecsv import read_ecsv_rows

RA, DEC = 83.63, 22.01


@pytest.fixture(scope="module")
def lc_store(tmp_path_factory):
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    src = SourceModel(RA, DEC, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 5e-11})
    return simulate_datastore(tmp_path_factory.mktemp("lc") / "store", wobble_pointings(RA, DEC, 3, 0.5), src,
                              livetime=600.0)


def run_spans(store):
    """(first GTI start - 1 s, last GTI stop + 1 s) of each run as ISO UTC text."""
    from astropy.time import Time

    from extspec.io.datastore import open_datastore
    from extspec.timebins import mjd_utc_from_met

    s = open_datastore(store)
    out = []
    for o in s.obs_ids:
        obs = s.load(int(o))
        lo, hi = mjd_utc_from_met([obs.gti[:, 0].min(), obs.gti[:, 1].max()], obs.meta)
        out.append(tuple(str(t) for t in Time([lo - 1 / 86400, hi + 1 / 86400], format="mjd", scale="utc").isot))
    return out


def lc_config(store, time_bins, obs_ids=(1, 2, 3), **lc):
    return {"datastore": str(store), "obs_ids": list(obs_ids), "on_region": f"icrs;circle({RA},{DEC},0.2)",
            "geom": {"width": [2.0, 2.0], "frame": "icrs"},
            "analyses": {"lc": {"light_curve": {"time_bins": time_bins, **lc}}, "plain": {"obs_ids": [3]}}}


def test_light_curve_workflow(tmp_path, lc_store):
    spans = run_spans(lc_store)
    # 5-minute bins over runs 1 and 2 (each ~11 min long): bins cut the runs; run 3 lies outside
    grid = {"start": spans[0][0], "stop": spans[1][1], "width_s": 300}
    wd = tmp_path / "wd"
    wd.mkdir()
    cf = write_config(wd, **lc_config(lc_store, grid, spectra=True, energy_edges=[0.5, 2, 40]))
    snakemake(wd, cf, "--cores", "2")
    out = wd / "results" / "lc" / "lightcurve"
    rows, meta = read_ecsv_rows(out / "lightcurve.ecsv")
    assert meta["SED_TYPE"] == "flux" and meta["TIMESYS"] == "utc" and meta["obs_ids_outside_bins"] == [3]
    assert 0 <= meta["variability_p_value"] <= 1 and meta["variability_ndf"] > 0
    t_bins = sorted({(r["time_min"], r["time_max"]) for r in rows})
    assert {(r["e_min"], r["e_max"]) for r in rows} == {(0.5, 2.0), (2.0, 40.0)} or len(t_bins) * 2 == len(rows)
    assert all(r["success"] for r in rows) and all(np.isfinite(r["flux_errn"]) for r in rows)
    # the bins hold every event and every second of runs 1 and 2: as many counts as their spectra
    from extspec.io.ogip import read_spectrum

    lc_lt = sum(r["livetime"] for r in rows if r["e_min"] == rows[0]["e_min"])
    specs = [read_spectrum(wd / "results" / "lc" / "obs" / str(o)) for o in (1, 2)]
    assert lc_lt == pytest.approx(sum(s.livetime for s in specs), rel=1e-9)
    e_lo, e_hi = rows[0]["e_min"], rows[0]["e_max"]
    sel = [(s.energy_reco.edges[:-1] >= e_lo * 0.999) & (s.energy_reco.edges[1:] <= e_hi * 1.001) & s.mask_safe
           for s in specs]
    assert sum(r["counts"] for r in rows if r["e_min"] == e_lo) == sum(int(s.counts[m].sum()) for s, m in
                                                                        zip(specs, sel))
    srows, _ = read_ecsv_rows(out / "spectra.ecsv")
    assert len(srows) == len(t_bins) and {"index", "index_err", "amplitude", "stat", "success"} <= set(srows[0])
    for name in ("lightcurve.png", "spectra.png", "lightcurve_gadf.ecsv"):
        assert (out / name).stat().st_size > 0
    assert not (wd / "results" / "plain" / "lightcurve").exists()
    assert (wd / "results" / "plain" / "obs" / "3" / "pha.fits").is_file()
    assert not (wd / "results" / "plain" / "obs" / "3" / "onoff_events.h5").exists()
    assert (wd / "results" / "lc" / "obs" / "1" / "onoff_events.h5").is_file()
    summary = summary_rows(wd)
    assert summary["lc"]["variability_p_value"] == pytest.approx(meta["variability_p_value"])
    assert np.isnan(summary["plain"]["variability_p_value"])
    # other time bins rerun only the light curve (and the summary); a new run its reduction too
    cf2 = write_config(wd, "night.yaml", **lc_config(lc_store, "night", spectra=True, energy_edges=[0.5, 2, 40]))
    assert dry_run(wd, cf2) == {"light_curve_spectra": 1, "summary": 1, "all": 1}
    snakemake(wd, cf2, "--cores", "1")
    rows, _ = read_ecsv_rows(out / "lightcurve.ecsv")
    assert len(rows) == 2 and rows[0]["n_runs"] == 3  # the three runs of one night, two energy bins
    cf3 = write_config(wd, "two.yaml", **lc_config(lc_store, "run", obs_ids=(1, 2)))
    counts = dry_run(wd, cf3)
    assert counts["light_curve"] == 1 and "reduce" not in counts and "reduce_lc" not in counts


def test_light_curve_config_refusals(tmp_path):
    from extspec.workflow.config import validate_config

    base = {"name": "x", "obs_ids": [1], "on_region": f"icrs;circle({RA},{DEC},0.2)",
            "geom": {"width": [2.0, 2.0], "frame": "icrs"}}

    def check(lc, msg, **over):
        with pytest.raises(ConfigError, match=msg):
            validate_config({**base, **over, "light_curve": lc}, check_datastore=False)

    check({"time_bins": "weekly"}, "light_curve.time_bins")
    check({"time_bins": {"start": "2006-07-29T20:00", "stop": "yesterday", "width_s": 600}},
          r"light_curve.time_bins.stop'.*ISO 8601")
    check({"time_bins": [["2006-07-29T21:00:00", "2006-07-29T20:00:00"]]}, r"time_bins\[0\]'.*not before")
    check({"time_bins": [["2006-07-29T20:00:00", "2006-07-29T21:00:00"], ["2006-07-29T20:30:00",
                                                                          "2006-07-29T22:00:00"]]}, "overlap")
    check({"time_bins": {"start": "2006-07-29T20:00:00", "stop": "2007-07-29T20:00:00", "width_s": 1}}, "width_s")
    check({"energy_edges": [50, 60]}, "light_curve.energy_edges")
    check({"night_boundary_utc": 25}, "night_boundary_utc")
    check({"sqrt_ts_threshold_ul": -1}, "sqrt_ts_threshold_ul")
    check({}, "needs observations reduced from DL3", obs_ids=[], external_spectra=["x.fits"])
    # unquoted YAML times arrive as datetimes and are taken as UTC text
    import datetime

    cfg = validate_config({**base, "light_curve": {"time_bins": [[datetime.datetime(2006, 7, 29, 20),
                                                                  datetime.datetime(2006, 7, 29, 21)]]}},
                          check_datastore=False)
    assert cfg["light_curve"] == {"time_bins": [["2006-07-29T20:00:00", "2006-07-29T21:00:00"]],
                                  "night_boundary_utc": 12, "energy_edges": None, "spectra": False,
                                  "sqrt_ts_threshold_ul": 2.0, "variability_min_counts": 10}


@pytest.mark.parametrize("case", ["exact", "reference", "point-like"])
def test_onoff_events_bin_to_the_spectrum(tmp_path, lc_store, case):
    """The events of onoff_events.h5 bin to exactly the spectrum's ON and OFF counts, for every
    way ON and OFF events are selected (exact circles, reference pixels, point-like RAD_MAX);
    the other products are those of a reduction without the file."""
    from extspec.io.onoff_events import read_onoff_events
    from extspec.io.ogip import read_spectrum
    from extspec.workflow.config import load_config, stage_config
    from extspec.workflow.pipeline import reduce_observation

    if case == "point-like":
        store, obs_id = find_data("magic-rad-max/hdu-index.fits.gz", "the MAGIC store").parent, 5029747
        cfg = {"name": "m", "obs_ids": [obs_id], "on_region": "icrs;point(83.6331,22.0145)",
               "background": {"method": "wobble", "n_off_regions": 3}, "geom": {"width": [2.0, 2.0], "frame": "icrs"},
               "safe_mask": {"methods": ["aeff-default"]}}
    else:
        store, obs_id = lc_store, 2
        cfg = {"name": "s", "obs_ids": [obs_id], "on_region": f"icrs;circle({RA},{DEC},0.2)",
               "geom": {"width": [2.0, 2.0], "frame": "icrs"}, "spectrum": {"method": case}}
    red = stage_config(load_config(cfg), "reduce")
    reduce_observation(red, store, obs_id, tmp_path / "a", onoff_events=True)
    reduce_observation(red, store, obs_id, tmp_path / "b")
    assert not (tmp_path / "b" / "onoff_events.h5").exists()
    for name in ("pha.fits", "bkg.fits", "arf.fits", "rmf.fits"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    spec = read_spectrum(tmp_path / "a")
    ev = read_onoff_events(tmp_path / "a" / "onoff_events.h5")
    n = spec.energy_reco.nbin
    assert spec.counts.sum() > 0 and spec.counts_off.sum() > 0
    assert np.bincount(ev.energy_bin_on, minlength=n).tolist() == spec.counts.tolist()
    assert np.bincount(ev.energy_bin_off, minlength=n).tolist() == spec.counts_off.tolist()
    assert ev.deadc * np.sum(np.diff(ev.gti, axis=1)) == pytest.approx(spec.livetime)
    assert ev.time_ref["TIMESYS"].upper() in ("TT", "UTC")


def test_light_curve_from_batches(tmp_path, lc_store):
    """An analysis with a light curve reduced in batches: the batch jobs write each run's
    onoff_events.h5 with the bytes of one job per run, and the light curve is the same."""
    spans = run_spans(lc_store)
    grid = {"start": spans[0][0], "stop": spans[2][1], "width_s": 300}  # 5-minute bins cutting the runs
    cfg = lc_config(lc_store, grid)
    cfg["analyses"] = {"lc": cfg["analyses"]["lc"]}
    target = "results/lc/lightcurve/lightcurve.ecsv"
    out = {}
    for size in (2, 1):
        wd = tmp_path / f"size{size}"
        wd.mkdir()
        cf = write_config(wd, **cfg, reduce={"batch_size": size})
        counts = dry_run(wd, cf, target)
        if size == 2:  # runs 1 (block 0) and 2, 3 (block 1): two batch jobs, no per-run job
            assert counts["reduce_batch_lc_0"] == 1 and counts["reduce_batch_lc_1"] == 1, counts
            assert "reduce_lc" not in counts and "reduce" not in counts
        else:
            assert counts["reduce_lc"] == 3 and not any(k.startswith("reduce_batch") for k in counts), counts
        snakemake(wd, cf, "--cores", "2", target)
        out[size] = wd / "results" / "lc"
    for o in (1, 2, 3):
        a, b = ((out[s] / "obs" / str(o) / "onoff_events.h5").read_bytes() for s in (2, 1))
        assert len(a) > 1000 and a == b, o
    (rows2, meta2), (rows1, meta1) = (read_ecsv_rows(out[s] / "lightcurve" / "lightcurve.ecsv") for s in (2, 1))
    assert len(rows1) > 3 and sum(r["counts"] for r in rows1) > 0
    assert rows2 == rows1
    assert {k: v for k, v in meta2.items() if k != "creator"} == {k: v for k, v in meta1.items() if k != "creator"}
