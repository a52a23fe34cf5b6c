"""Rule flux_points: GADF SED table and SED plot (extspec.pipeline.run_flux_points)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.pipeline import run_flux_points

    dirs = [os.path.dirname(f) for f in snakemake.input.pha]
    run_flux_points(snakemake.params.config, dirs, snakemake.input.fit,
                    snakemake.output.ecsv, snakemake.output.png)


run(snakemake, "flux points", main, snakemake)  # noqa: F821
