# Config validation, input functions and wildcard constraints.  No rules here.
#
# The config is validated once at parse time by extspec.workflow.config.prepare_workflow (schema +
# regions + geometry + obs ids in the data store); the result -- the config with defaults,
# the selected obs ids and each observation's DL3 files -- is cached in
# .snakemake/extspec/, so a no-op run neither imports astropy nor reads the data store.
# An invalid config stops Snakemake here with one line and no job started.
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

from extspec.workflow.config import prepare_workflow, settings_json, stage_config
from extspec.errors import ExtspecError
from extspec.workflow.pipeline import reduction_config
from extspec.workflow.process_exit import cancel_scheduler_timers, skip_final_collections

# Exit without idle time (extspec.workflow.process_exit: the final garbage collections
# here; Snakemake's job-rate timers in the Snakefile's onsuccess/onerror hooks).
skip_final_collections()

try:
    ANALYSIS = prepare_workflow(config)
except ExtspecError as err:
    sys.exit(f"extspec: invalid configuration: {err}")

# A missing data store stops here too, unless the `download` rule was asked for (it must
# run without a store); then the analysis rules report it only if the DAG needs them.
if ANALYSIS["datastore_error"] and "download" not in sys.argv[1:]:
    sys.exit(f"extspec: {ANALYSIS['datastore_error']}")

CFG = ANALYSIS["config"]
config.update(CFG)  # defaults filled in, also for report captions
OUT = f"{CFG['results_dir']}/{CFG['name']}"
LOGS = f"{OUT}/logs"
REDUCTION = reduction_config(CFG)

# Every job runs the extspec command line (extspec.cli): `extspec STEP ...` in the rules'
# shell commands, so a job imports only what its step needs, never Snakemake.  `extspec` is a
# shell function put in front of every command (Snakemake's shell.prefix) that runs
# `python -m extspec` with the interpreter running Snakemake: the same environment, whether
# or not its bin directory is on PATH, and the interpreter's path stays out of the rules'
# commands (a moved environment does not rerun them through the code trigger).  Settings go
# in as JSON params (settings_json), so that Snakemake's params trigger sees them.
_BASH = os.path.basename(shell.get_executable() or "") == "bash"
shell.prefix(
    ("set -euo pipefail; " if _BASH else "")
    + f'extspec() {{{{ {shlex.quote(sys.executable)} -m extspec "$@"; }}}}; '
)


wildcard_constraints:
    obs_id=r"\d+",


def datastore():
    """The data store directory; stops with where it looked and how to get DR1 if missing."""
    if ANALYSIS["datastore_error"]:
        raise WorkflowError(f"extspec: {ANALYSIS['datastore_error']}")
    return ANALYSIS["datastore"]


def obs_ids():
    """The selected observations (config keys obs_ids and obs_cone)."""
    datastore()
    return ANALYSIS["obs_ids"]


def obs_files(wildcards):
    """The DL3 file(s) one observation is read from (from the data store's hdu index)."""
    datastore()
    files = ANALYSIS["obs_files"].get(str(int(wildcards.obs_id)))
    if files is None:
        raise WorkflowError(
            f"extspec: obs {wildcards.obs_id} is not among the selected observations "
            "(config keys obs_ids and obs_cone)"
        )
    return files


def per_obs(name):
    """Input function: one file per selected observation, e.g. per_obs('cube.h5')."""

    def inputs(wildcards):
        return [f"{OUT}/obs/{o}/{name}" for o in obs_ids()]

    return inputs


def all_outputs(wildcards):
    obs_ids()
    return [
        f"{OUT}/stacked/counts.fits",
        f"{OUT}/stacked/counts.png",
        f"{OUT}/fit/result.yaml",
        f"{OUT}/fit/spectrum.png",
        f"{OUT}/fit/flux_points.ecsv",
        f"{OUT}/fit/sed.png",
        f"{OUT}/cumulative.ecsv",
        f"{OUT}/cumulative.png",
    ]
