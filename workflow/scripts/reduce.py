"""Rule reduce: one observation -> cube.h5 + pha/bkg/arf/rmf.fits (extspec.workflow.pipeline.reduce_observation)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import reduce_observation

    p = snakemake.params
    outdir = os.path.dirname(snakemake.output.cube)
    reduce_observation(p.reduction, p.datastore, p.obs_id, outdir)


run(snakemake, f"obs {snakemake.params.obs_id}", main, snakemake)  # noqa: F821
