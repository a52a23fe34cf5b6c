"""Per-run cost of the background methods (issue 28): reflected, fov and ring.

For DR1 runs (PKS 2155-304 with a 0.11 deg ON circle and the source excluded within 0.3 deg,
and RX J1713 grown to a 0.6 deg circle with the remnant excluded within 0.75 deg), prints:

* the median time of the OFF step alone (the reflected finder, or the fov/ring OFF area with
  its predicted ON and OFF background: ``extspec.spectrum.find_background``), per run;
* the median time of the whole in-memory per-run reduction (cube, ON/OFF spectrum, safe
  mask: ``extspec.reduction.reduce_observation``), per run, the observation already loaded;
* the median time of the reduction job's step (``extspec.workflow.pipeline.reduce_observation``:
  loading the run, reducing it, writing the cube and the OGIP set), per run.

Usage: python benchmarks/background.py [--repeat 15]
"""

from __future__ import annotations

import argparse

from _common import datastore_path, median_time, report

BASE = {"energy_axis": {"min": 0.3, "max": 40, "nbins": 12},
        "energy_axis_true": {"min": 0.05, "max": 100, "nbins": 30},
        "safe_mask": {"methods": ["aeff-default", "aeff-max", "offset-max"], "aeff_percent": 10, "offset_max": 2.5}}
CASES = {
    "pks2155 (0.11 deg)": (33787, {"on_region": "icrs;circle(329.7169,-30.2256,0.11)",
                                   "exclusion_regions": ["icrs;circle(329.7169,-30.2256,0.3)"],
                                   "geom": {"width": [1.0, 1.0], "binsz": 0.02, "frame": "icrs"}}),
    "rxj1713 (0.6 deg)": (20326, {"on_region": "galactic;circle(347.3,-0.5,0.6)",
                                  "exclusion_regions": ["galactic;circle(347.3,-0.5,0.75)"],
                                  "geom": {"width": [1.6, 1.6], "binsz": 0.04, "frame": "galactic"}}),
}
METHODS = {"reflected": {}, "fov": {"method": "fov"}, "ring": {"method": "ring", "ring": {"inner": 0.8, "outer": 1.2}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    import logging

    logging.getLogger("extspec").setLevel(logging.ERROR)  # the normalisation warnings of each repeat

    import tempfile

    from extspec.cube import make_cube
    from extspec.io.datastore import open_datastore
    from extspec.reduction import reduce_observation
    from extspec.spectrum import find_background, select_on_region
    from extspec.workflow.pipeline import reduce_observation as reduce_step
    from extspec.workflow.settings import reduction_settings

    path = datastore_path()
    store = open_datastore(path)
    tmp = tempfile.TemporaryDirectory()
    for case, (obs_id, regions) in CASES.items():
        obs = store.load(obs_id)
        for name, bg in METHODS.items():
            settings = reduction_settings({**BASE, **regions, "background": bg})
            cube = make_cube(obs, settings.cube)
            sel = select_on_region(obs, settings.on_region, cube.energy_reco)

            def off_step():
                find_background(obs, cube, sel, settings, settings.cube.method)

            def whole():
                reduce_observation(obs, settings)

            def job():
                reduce_step({**BASE, **regions, "background": bg}, path, obs_id, f"{tmp.name}/{name}")

            report(f"{case} {name}: OFF step per run (median)", 1e3 * median_time(off_step, args.repeat), "ms")
            report(f"{case} {name}: whole reduction per run (median)", 1e3 * median_time(whole, args.repeat), "ms")
            report(f"{case} {name}: reduce job step per run, load + reduce + write (median)",
                   1e3 * median_time(job, args.repeat), "ms")
    tmp.cleanup()


if __name__ == "__main__":
    main()
