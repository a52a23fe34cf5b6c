"""Joint-fit speed (issue 4).

Prints the median time of a joint power-law WStat fit (MIGRAD + HESSE, exact method)

* of the 15 RX J1713 runs of DR1 (reduced once beforehand; target <= 50 ms), and
* of 1,000 simulated runs (target <= 3 s): DL3 runs written by ``extspec.simulate`` and
  reduced with the exact method serve as templates, and 1,000 ON/OFF spectra are drawn from
  them with Poisson statistics for a known power law (``extspec.simulate.simulate_onoff``);
* of the same runs as two instruments of a joint fit with energy-scale and normalisation
  nuisances (``extspec.joint.fit_instruments``).

Usage: python benchmarks/fit.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import copy
import tempfile

import numpy as np
from _common import RXJ_RUNS, SEED_REDUCTION, datastore_path, median_time, report

MODEL = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 2e-11}}}


def reduce_runs(store_path, obs_ids, reduction):
    from extspec.io.datastore import open_datastore
    from extspec.reduction import reduce_observation
    from extspec.workflow.settings import reduction_settings

    store = open_datastore(store_path)
    settings = reduction_settings(reduction)
    return [reduce_observation(store.load(oid), settings)[1] for oid in obs_ids]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--n-sim", type=int, default=1000)
    args = ap.parse_args()

    from extspec.fit import JointData, fit_joint
    from extspec.workflow.settings import fit_options

    opts = fit_options({})  # the schema's defaults: MIGRAD + HESSE, exact integration
    spectra = reduce_runs(datastore_path(), RXJ_RUNS, SEED_REDUCTION)
    res = fit_joint(spectra, MODEL, opts)
    report("joint fit, 15 RX J1713 runs (median)", 1e3 * median_time(lambda: fit_joint(spectra, MODEL, opts), args.repeat), "ms")
    print(f"  (15 runs: index {res.values['index']:.4f} +- {res.parameters[0].error:.4f}, "
          f"{res.nfcn} calls, success {res.success})")

    from extspec.simulate import SourceModel, simulate_datastore, simulate_onoff, wobble_pointings

    truth = {"index": 2.3, "amplitude": 2e-12, "reference": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        src = SourceModel(lon=83.63, lat=22.01, frame="icrs", morphology="point", size=0.0,
                          spectrum="power_law", params=truth)
        store = simulate_datastore(f"{tmp}/store", wobble_pointings(83.63, 22.01, 8, offset=0.5), src, seed=1)
        red = copy.deepcopy(SEED_REDUCTION)
        red["on_region"] = "icrs;circle(83.63,22.01,0.2)"
        red["geom"] = {"width": [1.2, 1.2], "binsz": 0.04, "frame": "icrs", "proj": "TAN"}
        templates = reduce_runs(store, None or list(range(1, 9)), red)
    rng = np.random.default_rng(42)
    sims = [simulate_onoff(templates[i % len(templates)], "power_law", truth, rng, obs_id=i + 1) for i in range(args.n_sim)]
    data = JointData(sims)
    res = fit_joint(sims, MODEL, opts, data=data)
    t = median_time(lambda: fit_joint(sims, MODEL, opts), max(3, args.repeat // 2), warmup=1)
    report(f"joint fit, {args.n_sim} simulated runs (median)", t, "s")
    print(f"  ({args.n_sim} runs: index {res.values['index']:.4f} +- {res.parameters[0].error:.4f} "
          f"(truth {truth['index']}), {res.nfcn} calls, success {res.success})")

    # the same runs as two instruments of a joint fit (extspec.joint), each with an energy-scale
    # and a normalisation nuisance: 2 model + 4 nuisance parameters
    from extspec.joint import Instrument, Systematics, fit_instruments

    half = args.n_sim // 2
    sys10 = Systematics(energy_scale=0.1, norm=0.1)
    instruments = [Instrument("a", JointData(sims[:half]), sys10), Instrument("b", JointData(sims[half:]), sys10)]
    jf = fit_instruments(instruments, MODEL, opts)
    t = median_time(lambda: fit_instruments(instruments, MODEL, opts), max(3, args.repeat // 2), warmup=1)
    report(f"joint fit across 2 instruments with 4 nuisances, {args.n_sim} simulated runs (median)", t, "s")
    print(f"  (index {jf.result.values['index']:.4f} +- {jf.result.parameters[0].error:.4f}, "
          f"{jf.result.nfcn} calls, success {jf.result.success})")


if __name__ == "__main__":
    main()
