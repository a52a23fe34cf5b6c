"""The cumulative excess/significance table of an analysis, registered as the product
``cumulative`` (:data:`PRODUCT`; rule in ``workflow/rules/cumulative.smk``; the step itself is
:func:`extspec.workflow.pipeline.run_cumulative`, the science :func:`extspec.stacking.cumulative_rows`).

Every analysis has it (no config block switches it on); the summary reads its table.

This module imports only the standard library at import time.
"""

from __future__ import annotations

from ..product import Product, Step

__all__ = ["PRODUCT"]

_IMPORTS = ("numpy", "numpy.char", "extspec.io.batch", "extspec.io.batch_arrays", "h5py", "extspec.io.fitsread",
            "extspec.io.ogip", "extspec.io.units", "extspec.spectrum", "extspec.geometry", "extspec.sky",
            "extspec.timebins", "extspec.io.ecsv", "extspec.stacking", "matplotlib.figure",
            "matplotlib.backends.backend_agg", "extspec.figures", "extspec.plots", "extspec.workflow.pipeline")


def _arguments(p) -> None:
    p.add_argument("obs", nargs="+", metavar="SPECTRUM",
                   help="spectra: observation directories written by `extspec reduce`, batch manifests of `extspec "
                        "reduce-batch`, or PHA files of OGIP sets (e.g. other tools' spectra, whose header names their "
                        "BKG/ARF/RMF)")
    p.add_argument("--ecsv", required=True, metavar="FILE", help="table (ECSV)")
    p.add_argument("--png", required=True, metavar="FILE", help="plot")


def _step(settings: dict, args) -> str:
    from ...io.batch import expand_manifests
    from ..pipeline import run_cumulative

    n = len(expand_manifests(args.obs))
    run_cumulative(settings, args.obs, args.ecsv, args.png)
    return f"{n} spectra"


PRODUCT = Product(
    name="cumulative", config_key=None, schema_keys=("cumulative",), needs_dl3=False,
    rule_file="workflow/rules/cumulative.smk",
    outputs=lambda cfg: ["cumulative.ecsv", "cumulative.png"],
    steps=(Step(stage="cumulative", command="cumulative", per_obs=False, imports=_IMPORTS,
                help="cumulative excess/significance table",
                description="Cumulative excess and significance, one row per usable observation in the given order "
                "(ECSV + plot).",
                arguments=_arguments, run=_step, what=lambda args: "cumulative"),),
)
"""The registration of the cumulative table (:class:`extspec.workflow.product.Product`)."""
