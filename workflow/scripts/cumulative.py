"""Rule cumulative: cumulative excess/significance table and plot (extspec.workflow.pipeline.run_cumulative)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_cumulative

    dirs = [os.path.dirname(f) for f in snakemake.input.pha]
    run_cumulative(snakemake.params.config, dirs, snakemake.output.ecsv, snakemake.output.png)


run(snakemake, "cumulative", main, snakemake)  # noqa: F821
