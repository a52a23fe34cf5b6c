# Config validation, input functions and wildcard constraints.  No rules here.
#
# The config is validated once at parse time by extspec.workflow.config.prepare_workflow (schema +
# regions + geometry + obs ids in the data store); the result -- the config with defaults,
# the selected obs ids and each observation's DL3 files -- is cached in
# .snakemake/extspec/, so a no-op run neither imports astropy nor reads the data store.
# An invalid config stops Snakemake here with one line and no job started.
# Several analyses (config key `analyses`) share the rules through the {analysis} wildcard:
# every output lives under <results_dir>/<analysis>/, and each job's params are that
# analysis's settings of its stage only (STAGE_KEYS in extspec.workflow.config), so caching
# works per analysis.
import re
import sys

from extspec.workflow.config import apply_overlay, has_dl3, prepare_workflow, stage_config
from extspec.errors import ExtspecError

try:
    # an overlay (--configfile / --config) that sets model.type replaces the whole model block
    PREPARED = prepare_workflow(apply_overlay(config, CONFIG_OVERLAY))
except ExtspecError as err:
    sys.exit(f"extspec: invalid configuration: {err}")

# A missing data store stops here too, unless the `download` rule was asked for (it must
# run without a store); then the analysis rules report it only if the DAG needs them.
# An analysis of only external spectra (no obs_ids / obs_cone) needs no data store.
DL3_ANALYSES = [n for n, a in PREPARED["analyses"].items() if has_dl3(a["config"])]
if DL3_ANALYSES and PREPARED["datastore_error"] and "download" not in sys.argv[1:]:
    sys.exit(f"extspec: {PREPARED['datastore_error']}")

CFG = PREPARED["config"]  # the keys shared by every analysis (results_dir, datastore, download)
ANALYSES = PREPARED["analyses"]  # {name: {"config": ..., "obs_ids": [...], "external": [...]}}
RESULTS = CFG["results_dir"]
OUT = f"{RESULTS}/{{analysis}}"  # every per-analysis path starts with this pattern
LOGS = f"{OUT}/logs"
if len(ANALYSES) == 1:  # report captions of a single analysis may use config["name"] etc.
    config.update(next(iter(ANALYSES.values()))["config"])
# Code identity (version + source hash) and the SHA-256 of every region file of the
# analysis: in the params of every rule, so that a changed library or an edited .reg file
# reruns what it affects (opt out with --rerun-triggers mtime).
CODE = PREPARED["code"]

# Snakemake's modules and the parsed workflow live until the process exits: move them out of
# the garbage collector's sight (the final collection at exit alone took ~0.3 s).  Objects
# created from here on are collected as usual.
import gc

gc.freeze()


wildcard_constraints:
    obs_id=r"\d+",
    analysis="|".join(re.escape(name) for name in ANALYSES),


def datastore():
    """The data store directory; stops with where it looked and how to get DR1 if missing."""
    if PREPARED["datastore_error"]:
        sys.exit(f"extspec: {PREPARED['datastore_error']}")
    return PREPARED["datastore"]


def obs_ids(analysis):
    """The observations an analysis selects (config keys obs_ids and obs_cone)."""
    if analysis not in DL3_ANALYSES:
        return []
    datastore()
    return ANALYSES[analysis]["obs_ids"]


def obs_files(wildcards):
    """The DL3 file(s) one observation is read from (from the data store's hdu index)."""
    if int(wildcards.obs_id) not in obs_ids(wildcards.analysis):
        sys.exit(
            f"extspec: obs {wildcards.obs_id} is not among the observations of analysis "
            f"{wildcards.analysis} (config keys obs_ids and obs_cone)"
        )
    return PREPARED["obs_files"][str(int(wildcards.obs_id))]


def provenance(wildcards):
    """Params function: code identity and region-file digests of the job's analysis."""
    return ANALYSES[wildcards.analysis]["provenance"]


def settings(stage):
    """Params function: the analysis's settings of one stage (STAGE_KEYS), e.g. settings('fit')."""
    per_analysis = {name: stage_config(a["config"], stage) for name, a in ANALYSES.items()}

    def params(wildcards):
        return per_analysis[wildcards.analysis]

    return params


def per_obs(name):
    """Input function: one file per observation of the analysis, e.g. per_obs('cube.h5')."""

    def inputs(wildcards):
        return [f"{RESULTS}/{wildcards.analysis}/obs/{o}/{name}" for o in obs_ids(wildcards.analysis)]

    return inputs


# external_spectra: OGIP sets of other tools (PHA, BKG, ARF, RMF each), read by the fit and
# the products next to the reduced observations; all their files are inputs, so editing one
# reruns what reads it.


def spectra_pha(wildcards):
    """Input function: the PHA file of every spectrum of the analysis, reduced observations first."""
    external = [e["pha"] for e in ANALYSES[wildcards.analysis]["external"]]
    return per_obs("pha.fits")(wildcards) + external


def external_files(wildcards):
    """Input function: every file of the analysis's external_spectra sets."""
    return [f for e in ANALYSES[wildcards.analysis]["external"] for f in e["files"]]


STACKED_PRODUCTS = (
    "stacked/counts.fits",
    "stacked/counts.png",
    "stacked/excess.fits",
    "stacked/significance.fits",
    "stacked/maps.png",
)
"""The images of an analysis with DL3 runs, under <results_dir>/<analysis>/."""

ANALYSIS_PRODUCTS = (
    "fit/result.yaml",
    "fit/spectrum.png",
    "fit/flux_points.ecsv",
    "fit/sed.png",
    "cumulative.ecsv",
    "cumulative.png",
)
"""The products of every analysis, under <results_dir>/<analysis>/."""


def per_analysis(name):
    """One file per analysis, in the config's order, e.g. per_analysis('fit/result.yaml')."""
    return [f"{RESULTS}/{a}/{name}" for a in ANALYSES]


def all_outputs(wildcards):
    if DL3_ANALYSES:
        datastore()
    out = [f"{RESULTS}/{a}/{p}" for a in DL3_ANALYSES for p in STACKED_PRODUCTS]
    out += [f"{RESULTS}/{a}/{p}" for a in ANALYSES for p in ANALYSIS_PRODUCTS]
    return out + [f"{RESULTS}/summary.ecsv", f"{RESULTS}/summary.html"]


def summary_after_failure():
    """onerror hook: write the summary anyway, naming the analyses that did not finish.

    With --keep-going the other analyses complete, but the summary rule cannot run (a failed
    analysis's products are its inputs); the same library function writes it here instead.
    The next successful run replaces it (its inputs are then newer).
    """
    import os

    if not os.path.isdir(RESULTS):
        return
    try:
        from extspec.workflow.pipeline import write_summary

        rows = write_summary(RESULTS, list(ANALYSES), f"{RESULTS}/summary.ecsv", f"{RESULTS}/summary.html")
    except Exception as exc:  # the run has failed already: report, never mask the failure
        print(f"extspec: could not write {RESULTS}/summary.ecsv: {exc}", file=sys.stderr)
        return
    failed = [r["analysis"] for r in rows if r["status"] != "ok"]
    print(f"extspec: {RESULTS}/summary.ecsv written; not finished: {', '.join(failed) or 'none'}",
          file=sys.stderr)


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
