"""Per-run reduction speed on a DR1 run (issues 2 and 3).

Prints, for the seed geometry of the RX J1713 analysis:

* the median in-process time to load one run and build its cube (counts and predicted
  background; the reference method also its exposure and dispersion kernel), reference and
  exact methods (target <= 40 ms);
* the median time of the whole per-run reduction (cube + ON/OFF + safe mask + writing the
  HDF5 cube and the OGIP files), reference and exact (target <= 60 ms);
* the time to compute the code identity (``extspec.code_identity``: a SHA-256 of the package
  sources, once per job process, recorded in every product).

Usage: python benchmarks/reduce.py [--obs-id 20326] [--repeat 15]
"""

from __future__ import annotations

import argparse
import copy
import tempfile

from _common import SEED_REDUCTION, datastore_path, median_time, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs-id", type=int, default=20326)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    from extspec.cube import make_cube
    from extspec.io.datastore import open_datastore
    from extspec.skyregions import parse_region
    from extspec.workflow.pipeline import reduce_observation
    from extspec.workflow.settings import cube_settings

    path = datastore_path()
    on = parse_region(SEED_REDUCTION["on_region"])
    for method in ("reference", "exact"):
        red = copy.deepcopy(SEED_REDUCTION)
        red["spectrum"]["method"] = method
        settings = cube_settings(red, on)

        def load_and_cube():
            obs = open_datastore(path).load(args.obs_id)
            make_cube(obs, settings)

        report(f"load + cube, one run, {method} (median)", 1e3 * median_time(load_and_cube, args.repeat), "ms")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("reference", "exact"):
            red = copy.deepcopy(SEED_REDUCTION)
            red["spectrum"]["method"] = method

            def whole():
                reduce_observation(red, path, args.obs_id, f"{tmp}/{method}")

            report(f"whole per-run reduction, {method} (median)", 1e3 * median_time(whole, args.repeat), "ms")

    import extspec

    def identity():
        extspec._CODE_IDENTITY = None  # as in a fresh job process (the OS file cache is warm)
        extspec.code_identity()

    report("code identity, once per job (median)", 1e3 * median_time(identity, args.repeat), "ms")


if __name__ == "__main__":
    main()
