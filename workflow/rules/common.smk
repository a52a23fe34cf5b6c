# Config validation, input functions and wildcard constraints.  No rules here.
#
# The config is validated once at parse time by extspec.workflow.config.prepare_workflow (schema +
# regions + geometry + obs ids in the data store); the result -- the config with defaults,
# the selected obs ids and each observation's DL3 files -- is cached in
# .snakemake/extspec/, so a no-op run neither imports astropy nor reads the data store.
# An invalid config stops Snakemake here with one line and no job started.
import sys

from extspec.workflow.config import apply_overlay, prepare_workflow, stage_config
from extspec.errors import ExtspecError
from extspec.workflow.pipeline import reduction_config

try:
    # an overlay (--configfile / --config) that sets model.type replaces the whole model block
    ANALYSIS = prepare_workflow(apply_overlay(config, CONFIG_OVERLAY))
except ExtspecError as err:
    sys.exit(f"extspec: invalid configuration: {err}")

# A missing data store stops here too, unless the `download` rule was asked for (it must
# run without a store); then the analysis rules report it only if the DAG needs them.
# An analysis of only external spectra (no obs_ids / obs_cone) needs no data store.
HAS_DL3 = bool(ANALYSIS["config"]["obs_ids"] or ANALYSIS["config"]["obs_cone"])
if HAS_DL3 and ANALYSIS["datastore_error"] and "download" not in sys.argv[1:]:
    sys.exit(f"extspec: {ANALYSIS['datastore_error']}")

CFG = ANALYSIS["config"]
config.update(CFG)  # defaults filled in, also for report captions
OUT = f"{CFG['results_dir']}/{CFG['name']}"
LOGS = f"{OUT}/logs"
REDUCTION = reduction_config(CFG)
# Code identity (version + source hash) and the SHA-256 of every region file: in the params
# of every rule, so that a changed library or an edited .reg file reruns what it affects
# (opt out with --rerun-triggers mtime).
PROVENANCE = ANALYSIS["provenance"]

# Snakemake's modules and the parsed workflow live until the process exits: move them out of
# the garbage collector's sight (the final collection at exit alone took ~0.3 s).  Objects
# created from here on are collected as usual.
import gc

gc.freeze()


wildcard_constraints:
    obs_id=r"\d+",


def datastore():
    """The data store directory; stops with where it looked and how to get DR1 if missing."""
    if ANALYSIS["datastore_error"]:
        sys.exit(f"extspec: {ANALYSIS['datastore_error']}")
    return ANALYSIS["datastore"]


def obs_ids():
    """The selected observations (config keys obs_ids and obs_cone)."""
    if not HAS_DL3:
        return []
    datastore()
    return ANALYSIS["obs_ids"]


def obs_files(wildcards):
    """The DL3 file(s) one observation is read from (from the data store's hdu index)."""
    datastore()
    files = ANALYSIS["obs_files"].get(str(int(wildcards.obs_id)))
    if files is None:
        sys.exit(
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


def cancel_idle_timers(log=None):
    """Let Snakemake exit as soon as the work is done (onsuccess / onerror hook).

    Snakemake's job-rate limiter re-arms a 1 s ``threading.Timer`` after every scheduling
    round; the timer is not a daemon thread, so the process waits for the last one before it
    can exit, about a second after the final job.  Once the scheduler has returned those
    timers have nothing left to do: cancelling them ends the run at once.
    """
    import gc
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()
    gc.freeze()
