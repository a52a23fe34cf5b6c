"""Rule stack: counts image (FITS + PNG) from the per-observation cubes (extspec.workflow.pipeline.stack_counts)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import stack_counts

    dirs = [os.path.dirname(f) for f in snakemake.input.spectra]
    stack_counts(snakemake.params.config, list(snakemake.input.cubes), dirs,
                 snakemake.output.fits, snakemake.output.png)


run(snakemake, "stack", main, snakemake)  # noqa: F821
