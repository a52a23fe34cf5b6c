"""Rule cumulative: cumulative excess/significance table and plot (extspec.workflow.pipeline.run_cumulative)."""
from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_cumulative

    phas = list(snakemake.input.pha)  # reduced observations' pha.fits, then external_spectra
    run_cumulative(snakemake.params.config, phas, snakemake.output.ecsv, snakemake.output.png)


run(snakemake, "cumulative", main, snakemake)  # noqa: F821
