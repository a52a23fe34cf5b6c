"""Rule fit: joint WStat fit of the configured model (extspec.workflow.pipeline.run_fit)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_fit

    dirs = [os.path.dirname(f) for f in snakemake.input.pha]
    run_fit(snakemake.params.config, dirs, snakemake.output.result, snakemake.output.png)


run(snakemake, "fit", main, snakemake)  # noqa: F821
