"""EBL absorption speed (issue 21).

Prints the median time of

* the absorbed bin integrals over the default true-energy axis (30 bins, 0.05-100 TeV) of a
  power law with the Dominguez (2011) table at z = 0.116, next to the plain power law's
  closed form, and
* a joint WStat fit (MIGRAD + HESSE) of the 6 seed runs of DR1 with and without the EBL.

Usage: python benchmarks/ebl.py [--repeat 7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import SEED_REDUCTION, SEED_RUNS, datastore_path, median_time, report
from fit import reduce_runs

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ebl" / "ebl_dominguez11.fits.gz"
MODEL = {"type": "power_law", "parameters": {"index": {"value": 2.0}, "amplitude": {"value": 2e-11}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    from extspec.ebl import spectral_model
    from extspec.fit import fit_joint
    from extspec.models import get_model
    from extspec.workflow.settings import fit_options

    opts = fit_options({})  # the schema's defaults: MIGRAD + HESSE, exact integration
    ebl_model = {**MODEL, "ebl": {"table": str(TABLE), "redshift": 0.116, "alpha_norm": 1.0}}
    edges = np.geomspace(0.05, 100, 31)
    p = {"index": 2.3, "amplitude": 3e-11, "reference": 1.0}
    absorbed = spectral_model(ebl_model)
    plain = get_model("power_law")
    n = 200
    report("absorbed power-law integral, 30 true bins (median)",
           1e3 * median_time(lambda: [absorbed.integral(edges[:-1], edges[1:], **p, redshift=0.116, alpha_norm=1.0)
                                      for _ in range(n)], args.repeat) / n, "ms")
    report("plain power-law integral, 30 true bins (median)",
           1e3 * median_time(lambda: [plain.integral(edges[:-1], edges[1:], **p) for _ in range(n)], args.repeat) / n,
           "ms")
    spectra = reduce_runs(datastore_path(), SEED_RUNS, SEED_REDUCTION)
    report("joint fit, 6 seed runs, power law (median)",
           1e3 * median_time(lambda: fit_joint(spectra, MODEL, opts), args.repeat), "ms")
    report("joint fit, 6 seed runs, power law x EBL z=0.116 (median)",
           1e3 * median_time(lambda: fit_joint(spectra, ebl_model, opts), args.repeat), "ms")


if __name__ == "__main__":
    main()
