"""Rule flux_points: GADF SED table and SED plot (extspec.workflow.pipeline.run_flux_points)."""
from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_flux_points

    phas = list(snakemake.input.pha)  # reduced observations' pha.fits, then external_spectra
    run_flux_points(snakemake.params.config, phas, snakemake.input.fit,
                    snakemake.output.ecsv, snakemake.output.png)


run(snakemake, "flux points", main, snakemake)  # noqa: F821
