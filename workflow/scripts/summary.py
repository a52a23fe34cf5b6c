"""Rule summary: one row per analysis (extspec.workflow.pipeline.write_summary)."""
from _helpers import run


def main(snakemake):
    from extspec.workflow.pipeline import write_summary

    write_summary(snakemake.params.results_dir, snakemake.params.analyses, snakemake.output.ecsv,
                  snakemake.output.html)


run(snakemake, "summary", main, snakemake)  # noqa: F821
