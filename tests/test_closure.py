"""Closure tests: simulate a known spectrum, reduce and fit it, recover the truth.

Two levels:

* DL3 level: ``extspec.simulate`` writes a GADF store (events drawn through the IRFs), the
  full reduction (cube, ON/OFF with reflected regions, safe mask) and the joint fit run on it
  exactly as on real data; the fitted parameters must contain the truth within 2 sigma.
* Spectrum level: many Poisson realisations of ON/OFF spectra on reduced IRFs
  (``simulate_onoff``) give pull distributions with mean ~0 and width ~1.
"""

from __future__ import annotations

import numpy as np
import pytest

from extspec.fit import fit_joint
from extspec.io.datastore import open_datastore
from extspec.reduction import reduce_observation
from extspec.simulate import SourceModel, simulate_datastore, simulate_onoff, wobble_pointings
from extspec.workflow.settings import fit_options, reduction_settings

RA, DEC = 83.63, 22.01
SAFE = {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10}


def reduce_store(path, on_text, method="exact", width=2.0, background=None):
    store = open_datastore(path)
    settings = reduction_settings({
        "on_region": on_text,
        "geom": {"width": [width, width], "binsz": 0.04, "frame": "icrs", "proj": "TAN"},
        "energy_axis": {"min": 0.3, "max": 40, "nbins": 12},
        "energy_axis_true": {"min": 0.1, "max": 100, "nbins": 36},
        "spectrum": {"method": method},
        "background": background or {},
        "safe_mask": SAFE,
    })
    return [reduce_observation(store.load(oid), settings)[1] for oid in store.obs_ids]


def fit_cfg(mtype, start):
    return {"type": mtype, "parameters": {k: {"value": v} for k, v in start.items()}}


CASES = {
    "power_law": ({"index": 2.4, "amplitude": 3e-11, "reference": 1.0}, {"index": 2.0, "amplitude": 1e-11}),
    "exp_cutoff_power_law": (
        {"index": 2.0, "amplitude": 3e-11, "reference": 1.0, "lambda_": 0.25, "alpha": 1.0},
        {"index": 2.2, "amplitude": 2e-11, "lambda_": 0.1},
    ),
    "log_parabola": ({"alpha": 2.2, "beta": 0.3, "amplitude": 3e-11, "reference": 1.0},
                     {"alpha": 2.0, "beta": 0.1, "amplitude": 2e-11}),
    "broken_power_law": ({"index1": 2.0, "index2": 3.0, "amplitude": 3e-12, "ebreak": 3.0},
                         {"index1": 2.2, "index2": 2.8, "amplitude": 2e-12, "ebreak": 3.0}),
}


@pytest.mark.parametrize("mtype", list(CASES))
def test_dl3_closure_point_source(tmp_path, mtype):
    truth, start = CASES[mtype]
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum=mtype, params=truth)
    path = simulate_datastore(tmp_path / "store", wobble_pointings(RA, DEC, 4, offset=0.5), src,
                              livetime=3600, seed=11)
    spectra = reduce_store(path, f"icrs;circle({RA},{DEC},0.2)")
    assert all(s.usable for s in spectra)
    cfg = fit_cfg(mtype, start)
    if mtype == "broken_power_law":
        cfg["parameters"]["ebreak"]["frozen"] = True
    res = fit_joint(spectra, cfg, fit_options({}))
    assert res.success, res.message
    for name, p in zip(res.values, res.parameters):
        if p.frozen:
            continue
        pull = (p.value - truth[name]) / p.error
        assert abs(pull) < 2.0, f"{mtype}.{name}: fit {p.value:.4g} +- {p.error:.3g}, truth {truth[name]}"


def test_dl3_closure_extended_disk_exact_vs_reference(tmp_path):
    """A 0.3 deg disk inside a 0.5 deg ON circle: the exact method recovers the flux, and the
    reference (pixelised ON region) gives less excess for the same events."""
    truth = {"index": 2.3, "amplitude": 4e-11, "reference": 1.0}
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="disk", size=0.3, spectrum="power_law", params=truth)
    path = simulate_datastore(tmp_path / "store", wobble_pointings(RA, DEC, 4, offset=1.0), src,
                              livetime=3600, seed=5, bkg_scale=3.0)
    on = f"icrs;circle({RA},{DEC},0.5)"
    exact = reduce_store(path, on, "exact", width=2.0)
    ref = reduce_store(path, on, "reference", width=2.0)
    res = fit_joint(exact, fit_cfg("power_law", {"index": 2.0, "amplitude": 1e-11}), fit_options({}))
    assert res.success
    amp = res.parameters[1]
    assert abs(amp.value - truth["amplitude"]) < 2 * amp.error
    assert abs(res.values["index"] - truth["index"]) < 2 * res.parameters[0].error
    exc_exact = sum(float(np.sum(s.excess[s.mask_safe])) for s in exact)
    exc_ref = sum(float(np.sum(s.excess[s.mask_safe])) for s in ref)
    assert exc_ref < exc_exact


def test_spectrum_level_pulls(tmp_path):
    """300 Poisson realisations: pulls of index and amplitude have mean ~0 and width ~1."""
    truth = {"index": 2.5, "amplitude": 1e-11, "reference": 1.0}
    src = SourceModel(lon=RA, lat=DEC, frame="icrs", morphology="point", size=0.0, spectrum="power_law", params=truth)
    path = simulate_datastore(tmp_path / "store", wobble_pointings(RA, DEC, 2, offset=0.5), src, livetime=1800, seed=3)
    templates = reduce_store(path, f"icrs;circle({RA},{DEC},0.2)")
    rng = np.random.default_rng(2024)
    cfg = fit_cfg("power_law", {"index": 2.0, "amplitude": 2e-11})
    pulls = {"index": [], "amplitude": []}
    n = 300
    for _ in range(n):
        sims = [simulate_onoff(t, "power_law", truth, rng) for t in templates]
        res = fit_joint(sims, cfg, fit_options({}))
        assert res.success
        for p in res.parameters[:2]:
            pulls[p.name].append((p.value - truth[p.name]) / p.error)
    for name, values in pulls.items():
        v = np.array(values)
        # 3-sigma bands for n = 300: mean +- 3/sqrt(n) = 0.17, std +- 3/sqrt(2n) = 0.12 (+ small-count bias)
        assert abs(v.mean()) < 0.2, (name, v.mean())
        assert 0.85 < v.std() < 1.15, (name, v.std())
