"""PSF containment (``model.spatial``) on the DR1 examples: cost and the figures it changes.

* cost: ``source_containment`` for one Crab run (0.1 deg circle, 30 true bins) for a point
  source, a 0.3 deg disk and a 0.2 deg Gaussian (median wall time);
* the ``crab`` and ``pks2155`` analyses of ``config/hess-dr1.yaml`` (0.11 deg circles, runs by
  ``obs_cone``), reduced and fitted as the workflow does, without and with
  ``spatial: {type: point}``: the fitted parameters, the flux above 1 TeV and its ratio; for
  PKS 2155-304 also with the EBL block of ``config/pks2155-ebl.yaml`` (intrinsic index);
* ``config/crab-joint.yaml``: the joint H.E.S.S. + MAGIC power-law fit with ``spatial: {type:
  point}`` in both analyses, against the example without it: the normalisation nuisances.

Printed as ``<what>: <value> <unit>`` lines (measured on a loaded machine for the times).

Usage: python benchmarks/containment.py [--out DIR] [--skip-pks]   (needs the DR1 and MAGIC data)
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import datastore_path, median_time, report

REPO = Path(__file__).resolve().parents[1]
EBL = {"table": str(REPO.parent / "shared/data/ebl/ebl_dominguez11.fits.gz"), "redshift": 0.116}


def _timing():
    from extspec.containment import SpatialModel, source_containment
    from extspec.io.datastore import open_datastore
    from extspec.sky import SkyPoint
    from extspec.skyregions import parse_region

    obs = open_datastore(datastore_path()).load(23523, load_psf=True)
    on = parse_region("icrs;circle(83.633,22.0145,0.1)")
    pnt = SkyPoint(*obs.pointing_radec, "icrs")
    energy = np.geomspace(0.05, 100, 31)
    energy = np.sqrt(energy[1:] * energy[:-1])
    for sp in (SpatialModel("point", 83.633, 22.0145, "icrs", None, None, None, None),
               SpatialModel("disk", 83.633, 22.0145, "icrs", 0.3, None, None, None),
               SpatialModel("gauss", 83.633, 22.0145, "icrs", None, 0.2, None, None)):
        t = median_time(lambda: source_containment(obs.psf, obs.aeff, pnt, sp, on, [], energy), repeat=3, warmup=1)
        report(f"containment time, 0.1 deg circle, 30 true bins, {sp.describe().split(' at ')[0]}", t, "s")


def _analysis(raw_all: dict, name: str, model_update: dict | None, out: Path):
    """Reduce and fit one analysis of a config as the workflow's steps do; returns (result, spectra)."""
    from extspec.io.datastore import open_datastore, resolve_datastore_path
    from extspec.io.fitresult import read_fit_result
    from extspec.workflow.analyses import validate_analyses
    from extspec.workflow.config import stage_config
    from extspec.workflow.pipeline import read_spectra, reduce_observation, run_fit
    from extspec.workflow.store_checks import selected_obs_ids

    raw = copy.deepcopy(raw_all)
    entry = raw["analyses"][name]
    if model_update is not None:
        entry["model"] = {k: v for k, v in {**entry["model"], **model_update}.items() if v is not None}
    cfg = validate_analyses(raw)[name]
    store_path = resolve_datastore_path(cfg["datastore"])
    obs_ids = selected_obs_ids(cfg, open_datastore(store_path))
    dirs = [out / "obs" / str(o) for o in obs_ids]
    t0 = time.perf_counter()
    for o, d in zip(obs_ids, dirs):
        reduce_observation(stage_config(cfg, "reduce"), store_path, o, d)
    t_red = time.perf_counter() - t0
    run_fit(stage_config(cfg, "fit"), dirs, out / "result.yaml", out / "spectrum.png")
    return read_fit_result(out / "result.yaml"), read_spectra(dirs), t_red, dirs


def _flux(result):
    from extspec.summary import flux_above

    return flux_above(result)


def _analyses(out: Path, skip_pks: bool):
    from extspec.workflow.analyses import read_config_files

    raw = read_config_files([REPO / "config/config.yaml", REPO / "config/hess-dr1.yaml"])
    names = ["crab"] + ([] if skip_pks else ["pks2155"])
    for name in names:
        runs = {}
        for label, upd in (("without spatial", {"spatial": None}), ("with spatial point", {"spatial": {"type": "point"}})):
            res, spectra, t_red, _ = _analysis(raw, name, upd, out / name / label.replace(" ", "_"))
            runs[label] = res
            vals = ", ".join(f"{p.name} {p.value:.4g} +- {p.error:.2g}" for p in res.parameters if not p.frozen)
            f, e = _flux(res)
            report(f"{name} {label}: {len(res.obs_ids)} runs, reductions", t_red, "s")
            print(f"{name} {label}: {vals}; flux above 1 TeV {f:.4g} +- {e:.2g} cm-2 s-1; "
                  f"status {res.goodness_of_fit.get('poor') and 'poor fit' or 'ok'}")
            c = [np.median(s.meta["containment"]) for s in spectra if isinstance(s.meta.get("containment"), list)]
            if c:
                print(f"{name}: median containment per run {min(c):.3f}-{max(c):.3f}")
        ratio = _flux(runs["without spatial"])[0] / _flux(runs["with spatial point"])[0]
        print(f"{name}: flux above 1 TeV inside the circle / source's: {ratio:.3f}")
        if name == "pks2155":
            for label, upd in (("EBL without spatial", {"spatial": None, "ebl": EBL}),
                               ("EBL with spatial point", {"spatial": {"type": "point"}, "ebl": EBL})):
                res, *_ = _analysis(raw, name, upd, out / name / label.replace(" ", "_"))
                p = {q.name: q for q in res.parameters}
                print(f"pks2155 {label}: intrinsic index {p['index'].value:.3f} +- {p['index'].error:.3f}, "
                      f"amplitude {p['amplitude'].value:.4g} +- {p['amplitude'].error:.2g}")


def _joint(out: Path):
    import yaml

    from extspec.workflow.analyses import read_config_files, validate_analyses
    from extspec.workflow.config import stage_config
    from extspec.workflow.joint_config import joint_settings, validate_joint
    from extspec.workflow.joint_fit import run_joint_fit
    from extspec.workflow.pipeline import reduce_observation

    base = read_config_files([REPO / "config/config.yaml", REPO / "config/crab-joint.yaml"])
    for label, spatial in (("without spatial", None), ("with spatial point", {"type": "point"})):
        raw = copy.deepcopy(base)
        for a in ("crab_hess", "crab_magic"):
            raw["analyses"][a]["model"].pop("spatial", None)
            if spatial:
                raw["analyses"][a]["model"]["spatial"] = spatial
        analyses = validate_analyses(raw)
        joint = validate_joint(raw, analyses)
        spectra = {}
        for a in ("crab_hess", "crab_magic"):
            cfg = analyses[a]
            dirs = [out / "joint" / label.replace(" ", "_") / a / str(o) for o in cfg["obs_ids"]]
            for o, d in zip(cfg["obs_ids"], dirs):
                reduce_observation(stage_config(cfg, "reduce"), cfg["datastore"], o, d)
            spectra[a] = dirs
        jdir = out / "joint" / label.replace(" ", "_") / "fit"
        run_joint_fit(joint_settings("crab_joint", joint["crab_joint"], analyses), spectra, jdir)
        r = yaml.safe_load((jdir / "result.yaml").read_text())
        p = r["model"]["parameters"]
        print(f"crab joint {label}: index {p['index']['value']:.3f} +- {p['index']['error']:.3f}, amplitude "
              f"{p['amplitude']['value']:.4g} +- {p['amplitude']['error']:.2g}; flux_definition: {r['flux_definition']}")
        print(f"crab joint {label}: systematics {r.get('systematics')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-pks", action="store_true", help="leave out the 21 PKS 2155-304 runs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    out = args.out or Path(tempfile.mkdtemp(prefix="extspec-containment-"))
    _timing()
    _analyses(out, args.skip_pks)
    _joint(out)


if __name__ == "__main__":
    main()
