# Config validation, input functions and wildcard constraints.  No rules here.
#
# The config is validated once at parse time by extspec.workflow.config.prepare_workflow (schema +
# regions + geometry + obs ids in the data store); the result -- the config with defaults,
# the selected obs ids and each observation's DL3 files -- is cached in
# .snakemake/extspec/, so a no-op run neither imports astropy nor reads the data store.
# An invalid config stops Snakemake here with one line and no job started.
import functools
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

from extspec.io.download import HOWTO
from extspec.workflow.config import apply_overlay, prepare_workflow, settings_json, stage_config
from extspec.errors import ExtspecError
from extspec.workflow.pipeline import reduction_config
from extspec.workflow.process_exit import cancel_scheduler_timers, skip_final_collections

# Exit without idle time (extspec.workflow.process_exit: the final garbage collections
# here; Snakemake's job-rate timers in the Snakefile's onsuccess/onerror hooks).
skip_final_collections()

# an overlay (--configfile / --config) that sets model.type replaces the whole model block
RAW_CONFIG = apply_overlay(config, CONFIG_OVERLAY)
try:
    ANALYSIS = prepare_workflow(RAW_CONFIG)
except ExtspecError as err:
    sys.exit(f"extspec: invalid configuration: {err}")

# An analysis of only external spectra (no obs_ids / obs_cone) needs no data store; a
# missing one is reported (or fetched) by prepared() when the DAG needs it.
HAS_DL3 = bool(ANALYSIS["config"]["obs_ids"] or ANALYSIS["config"]["obs_cone"])
CFG = ANALYSIS["config"]
config.update(CFG)  # defaults filled in, also for report captions
OUT = f"{CFG['results_dir']}/{CFG['name']}"
LOGS = f"{OUT}/logs"
REDUCTION = reduction_config(CFG)
# Code identity (version + source hash) and the SHA-256 of every region file: in the params
# of every rule, so that a changed library or an edited .reg file reruns what it affects
# (opt out with --rerun-triggers mtime).
PROVENANCE = ANALYSIS["provenance"]

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


def prepared():
    """The prepared workflow (data store, obs ids, DL3 files), for input functions.

    A missing data store is reported only here, i.e. only when the DAG needs the data (so
    `snakemake download` and other targets work without one).  With no store found, no
    explicit `datastore:` and `download.auto` on, the store is fetched first: the
    checkpoint fetch_datastore (download.smk) runs, then Snakemake calls this again and the
    observations are selected from the new store.
    """
    if ANALYSIS["datastore"] is not None:
        return ANALYSIS
    missing = ANALYSIS["datastore_error"]
    if CFG["datastore"]:
        raise WorkflowError(f"extspec: {missing} (an explicit 'datastore' is never fetched into automatically)")
    if not CFG["download"]["auto"]:
        raise WorkflowError(
            f"extspec: {missing.split(';')[0]}; download.auto is false: {HOWTO}, "
            "or run `snakemake download --cores 1`"
        )
    if not os.path.exists(rules.fetch_datastore.output[0]):
        announce_fetch(missing.split(";")[0])
    checkpoints.fetch_datastore.get()  # until it has run: Snakemake runs it, then asks again
    return fetched(DOWNLOAD_DEST)


@functools.cache
def announce_fetch(missing):
    """Say once per process, also in a dry run, what will be fetched and where to."""
    print(f"extspec: {missing}; it will be fetched first (download.auto): "
          f"{CFG['download']['url']} -> {DOWNLOAD_DEST}", file=sys.stderr)


@functools.cache
def fetched(store):
    """prepare_workflow on the store the checkpoint has just installed (once per process)."""
    try:
        return prepare_workflow(dict(RAW_CONFIG, datastore=store))
    except ExtspecError as err:
        raise WorkflowError(f"extspec: invalid configuration: {err}") from None


def datastore():
    """The data store directory (see prepared())."""
    return prepared()["datastore"]


def obs_ids():
    """The selected observations (config keys obs_ids and obs_cone)."""
    if not HAS_DL3:
        return []
    return prepared()["obs_ids"]


def obs_files(wildcards):
    """The DL3 file(s) one observation is read from (from the data store's hdu index)."""
    files = prepared()["obs_files"].get(str(int(wildcards.obs_id)))
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


# external_spectra: OGIP sets of other tools (PHA, BKG, ARF, RMF each), read by the fit and
# the products next to the reduced observations; all their files are inputs, so editing one
# reruns what reads it.
EXTERNAL_PHA = [e["pha"] for e in ANALYSIS["external"]]
EXTERNAL_FILES = [f for e in ANALYSIS["external"] for f in e["files"]]


def spectra_pha(wildcards):
    """Input function: the PHA file of every spectrum, reduced observations first."""
    return per_obs("pha.fits")(wildcards) + EXTERNAL_PHA


def all_outputs(wildcards):
    obs_ids()
    stacked = [f"{OUT}/stacked/counts.fits", f"{OUT}/stacked/counts.png"] if HAS_DL3 else []
    return stacked + [
        f"{OUT}/fit/result.yaml",
        f"{OUT}/fit/spectrum.png",
        f"{OUT}/fit/flux_points.ecsv",
        f"{OUT}/fit/sed.png",
        f"{OUT}/cumulative.ecsv",
        f"{OUT}/cumulative.png",
    ]
