"""Rule stack: counts image and excess/significance maps (FITS + PNG) from the per-observation cubes (extspec.workflow.pipeline.stack_counts)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import stack_counts

    dirs = [os.path.dirname(f) for f in snakemake.input.spectra]
    out = snakemake.output
    stack_counts(snakemake.params.config, list(snakemake.input.cubes), dirs, out.fits, out.png,
                 maps={"excess": out.excess, "significance": out.significance, "png": out.maps_png})


run(snakemake, "stack", main, snakemake)  # noqa: F821
