"""Rule fit: joint WStat fit of the configured model (extspec.workflow.pipeline.run_fit)."""
from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_fit

    phas = list(snakemake.input.pha)  # reduced observations' pha.fits, then external_spectra
    run_fit(snakemake.params.config, phas, snakemake.output.result, snakemake.output.png)


run(snakemake, "fit", main, snakemake)  # noqa: F821
