"""Rule summary: one row per analysis (extspec.workflow.pipeline.write_summary)."""
import os

from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import write_summary

    results_dir = os.path.dirname(snakemake.output.ecsv)  # <results_dir>/summary.ecsv
    write_summary(results_dir, snakemake.params.analyses, snakemake.output.ecsv, snakemake.output.html)


run(snakemake, "summary", main, snakemake)  # noqa: F821
