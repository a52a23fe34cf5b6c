"""Shared by the workflow scripts (the `download` rule and the `fetch_datastore` checkpoint): the command line's way of running a step.

Every other rule runs the extspec command line through ``shell:``; this keeps the script
rules' log and error handling the same: one log per job, one-line errors, exit status 1.
"""

import sys


def run(snakemake, what, func, *args, **kwargs):
    """Call ``func(*args, **kwargs)`` as a step of rule ``snakemake.rule`` (extspec.cli.run_step):
    logging to the rule's log file, an ExtspecError as one line; exits with its status on failure."""
    from extspec.cli import run_step

    status = run_step(snakemake.rule, what, lambda: func(*args, **kwargs),
                      log_path=snakemake.log[0] if len(snakemake.log) else None, quiet=True)
    if status:
        sys.exit(status)
