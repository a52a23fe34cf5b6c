"""Rule flux_points: GADF SED table and SED plot (extspec.workflow.pipeline.run_flux_points)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import run_flux_points

    dirs = [os.path.dirname(f) for f in snakemake.input.pha]
    run_flux_points(snakemake.params.config, dirs, snakemake.input.fit,
                    snakemake.output.ecsv, snakemake.output.png)


run(snakemake, "flux points", main, snakemake)  # noqa: F821
