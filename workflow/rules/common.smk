# Config validation, input functions and wildcard constraints.  No rules here.
#
# The config is validated once at parse time by extspec.workflow.cache.prepare_workflow (schema +
# regions + geometry + obs ids in the data store); the result -- the config with defaults,
# the selected obs ids and each observation's DL3 files -- is cached in
# .snakemake/extspec/, so a no-op run neither imports astropy nor reads the data store.
# An invalid config stops Snakemake here with one line and no job started.
# Several analyses (config key `analyses`) share the rules through the {analysis} wildcard:
# every output lives under <results_dir>/<analysis>/, and each job's params are that
# analysis's settings of its stage only (STAGE_KEYS in extspec.workflow.settings), so caching
# works per analysis.
import functools
import os
import re
import shlex
import sys
import types

from snakemake.exceptions import WorkflowError

from extspec.cli import run_in_process
from extspec.io.batch import REDUCTION_PRODUCTS, arrays_name, manifest_name
from extspec.io.download import HOWTO
from extspec.workflow.batches import batch_size, files_signature, make_batches, missing_run_files
from extspec.workflow.config import (apply_overlay, has_dl3, prepare_workflow, read_config_file, settings_json,
                                    stage_config)
from extspec.errors import ExtspecError
from extspec.workflow.joint_config import joint_settings
from extspec.workflow.joint_fit import joint_outputs
from extspec.workflow.process_exit import cancel_scheduler_timers, skip_final_collections
from extspec.workflow.products import products as registered_products

# Exit without idle time (extspec.workflow.process_exit: the final garbage collections
# here; Snakemake's job-rate timers in the Snakefile's onsuccess/onerror hooks).
skip_final_collections()

# an overlay (--configfile / --config) that sets model.type replaces the whole model block
RAW_CONFIG = apply_overlay(config, CONFIG_OVERLAY)
try:
    for _configfile in workflow.configfiles:  # Snakemake keeps the last of a key given twice: refused
        read_config_file(_configfile)
    PREPARED = prepare_workflow(RAW_CONFIG)
except ExtspecError as err:
    sys.exit(f"extspec: invalid configuration: {err}")

# Analyses of only external spectra (no obs_ids / obs_cone) need no data store; a missing
# one is reported (or fetched) by prepared() when the DAG needs it.
DL3_ANALYSES = [n for n, a in PREPARED["analyses"].items() if has_dl3(a["config"])]
CFG = PREPARED["config"]  # the keys shared by every analysis (results_dir, datastore, download)
ANALYSES = PREPARED["analyses"]  # {name: {"config", "obs_ids", "external", "provenance"}}
JOINT = PREPARED["joint"]  # {joint fit name: its block of config key `joint`, defaults filled}
RESULTS = CFG["results_dir"]
OUT = f"{RESULTS}/{{analysis}}"  # every per-analysis path starts with this pattern
LOGS = f"{OUT}/logs"
if len(ANALYSES) == 1:  # report captions of a single analysis may use config["name"] etc.
    config.update(next(iter(ANALYSES.values()))["config"])
# Code identity (version + source hash) and the SHA-256 of every region file of the
# analysis: in the params of every rule, so that a changed library or an edited .reg file
# reruns what it affects (opt out with --rerun-triggers mtime, which also leaves batch
# reductions alone: their DL3 files reach them as params, rules in reduce.smk).
CODE = PREPARED["code"]

# Reductions in batches (config key reduce.batch_size, extspec.workflow.batches):
# {analysis: {key: [obs ids]}} of every analysis reduced in batches of more than one run; the
# others keep one `reduce` job per run.  Known at parse time only with the data store there
# (a store still to be fetched is reduced run by run in that first invocation).
BATCHES = {}
for _name, _a in ANALYSES.items():
    _size = batch_size(_a["config"].get("reduce", {}).get("batch_size"), len(_a["obs_ids"]))
    # with a light curve the batches also write each run's onoff_events.h5 (reduce.smk)
    if _size > 1 and _a["obs_ids"]:
        BATCHES[_name] = make_batches(_a["obs_ids"], _size)


def analyses_regex(names):
    """A wildcard constraint matching exactly these analysis names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


BATCH_MANIFESTS = {n: [f"{RESULTS}/{n}/obs/{manifest_name(k, ids)}" for k, ids in b.items()] for n, b in BATCHES.items()}

# Every job runs the extspec command line (extspec.cli): `extspec STEP ...` in the rules'
# shell commands, so a job imports only what its step needs, never Snakemake.  `extspec` is a
# shell function put in front of every command (Snakemake's shell.prefix) that runs
# `python -m extspec` with the interpreter running Snakemake: the same environment, whether
# or not its bin directory is on PATH, and the interpreter's path stays out of the rules'
# commands (a moved environment does not rerun them through the code trigger).  Settings go
# in as JSON params (settings()), so that Snakemake's params trigger sees them.
_BASH = os.path.basename(shell.get_executable() or "") == "bash"
shell.prefix(
    ("set -euo pipefail; " if _BASH else "")
    + f'extspec() {{{{ {shlex.quote(sys.executable)} -m extspec "$@"; }}}}; '
)


wildcard_constraints:
    obs_id=r"\d+",
    analysis="|".join(re.escape(name) for name in ANALYSES),


def prepared():
    """The prepared workflow (data store, obs ids, DL3 files), for input functions.

    A missing data store is reported only here, i.e. only when the DAG needs the data (so
    `snakemake download` and other targets work without one).  With no store found, no
    explicit `datastore:` and `download.auto` on, the store is fetched first: the
    checkpoint fetch_datastore (download.smk) runs, then Snakemake calls this again and the
    observations are selected from the new store.
    """
    if PREPARED["datastore_error"] is None:
        return PREPARED
    missing = PREPARED["datastore_error"]
    if CFG["datastore"]:
        stop(f"extspec: {missing} (an explicit 'datastore' is never fetched into automatically)")
    if not CFG["download"]["auto"]:
        stop(f"extspec: {missing.split(';')[0]}; download.auto is false: {HOWTO}, "
             "or run `snakemake download --cores 1`")
    if not os.path.exists(rules.fetch_datastore.output[0]):
        announce_fetch(missing.split(";")[0])
    checkpoints.fetch_datastore.get()  # until it has run: Snakemake runs it, then asks again
    return fetched(DOWNLOAD_DEST)


def stop(message):
    """End Snakemake with one line (exit 1): an input function's exception would come wrapped
    in an InputFunctionException with a traceback."""
    sys.exit(message)


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
        stop(f"extspec: invalid configuration: {err}")


def datastore(analysis):
    """The data store directory of an analysis (see prepared())."""
    return prepared()["analyses"][analysis]["datastore"]


def obs_ids(analysis):
    """The observations an analysis selects (config keys obs_ids and obs_cone)."""
    if analysis not in DL3_ANALYSES:
        return []
    return prepared()["analyses"][analysis]["obs_ids"]


@functools.cache
def _obs_id_set(analysis, store):
    """The obs ids of an analysis as a set (membership per job in constant time)."""
    return frozenset(obs_ids(analysis))


def obs_files(wildcards):
    """The DL3 file(s) one observation is read from (from the data store's hdu index)."""
    if int(wildcards.obs_id) not in _obs_id_set(wildcards.analysis, datastore(wildcards.analysis)):
        raise WorkflowError(
            f"extspec: obs {wildcards.obs_id} is not among the observations of analysis "
            f"{wildcards.analysis} (config keys obs_ids and obs_cone)"
        )
    return prepared()["analyses"][wildcards.analysis]["obs_files"][str(int(wildcards.obs_id))]


def provenance(wildcards):
    """Params function: code identity and region-file digests of the job's analysis."""
    return ANALYSES[wildcards.analysis]["provenance"]


def settings(stage):
    """Params function: the analysis's settings of one stage (STAGE_KEYS) as JSON (the
    command line's --settings), e.g. settings('fit')."""
    per_analysis = {name: settings_json(stage_config(a["config"], stage)) for name, a in ANALYSES.items()}

    def params(wildcards):
        return per_analysis[wildcards.analysis]

    return params


def per_obs(name):
    """Input function: one file per observation of the analysis, e.g. per_obs('cube.h5');
    for an analysis reduced in batches, the batches' manifests instead (one file per batch:
    the aggregate steps read each as its runs, extspec.io.batch)."""

    def inputs(wildcards):
        if wildcards.analysis in BATCHES:
            return BATCH_MANIFESTS[wildcards.analysis]
        return [f"{RESULTS}/{wildcards.analysis}/obs/{o}/{name}" for o in obs_ids(wildcards.analysis)]

    return inputs


# external_spectra: OGIP sets of other tools (PHA, BKG, ARF, RMF each), read by the fit and
# the products next to the reduced observations; all their files are inputs, so editing one
# reruns what reads it.


def spectra_pha(wildcards):
    """Input function: the PHA file of every spectrum of the analysis, reduced observations first."""
    external = [e["pha"] for e in ANALYSES[wildcards.analysis]["external"]]
    return per_obs("pha.fits")(wildcards) + external


def spectra_order(wildcards):
    """Params function: the order of the analysis's spectra (obs ids, then external PHA files).
    The cumulative table follows it, and Snakemake does not rerun a job for reordered inputs:
    as a param, reordering obs_ids reruns the cumulative table."""
    external = [e["pha"] for e in ANALYSES[wildcards.analysis]["external"]]
    return " ".join([str(o) for o in obs_ids(wildcards.analysis)] + external)


def external_files(wildcards):
    """Input function: every file of the analysis's external_spectra sets."""
    return [f for e in ANALYSES[wildcards.analysis]["external"] for f in e["files"]]


def ebl_table(wildcards):
    """Input function: the EBL table of the analysis's model (model.ebl.table), if any: editing
    the table reruns the fit and the flux points."""
    return model_ebl_table(ANALYSES[wildcards.analysis]["config"]["model"])


def model_ebl_table(model):
    """The EBL table file of a model block (a list: empty without model.ebl)."""
    from extspec.io.ebl_table import resolve_table

    ebl = model.get("ebl")
    return [str(resolve_table(ebl["table"], fetch=False))] if ebl else []


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
)
"""The core products of every analysis, under <results_dir>/<analysis>/ (the registered ones:
PRODUCTS)."""


PRODUCTS = {p.name: p for p in registered_products()}
"""The registered products (extspec.workflow.products: cumulative, spatial, ...): the Snakefile
includes each one's rule file, and their outputs are targets of `all` (all_outputs)."""

PRODUCT_ANALYSES = {name: [a for a in ANALYSES if p.enabled(ANALYSES[a]["config"])] for name, p in PRODUCTS.items()}
SUMMARY_PRODUCTS = [(name, a) for name, p in PRODUCTS.items() if p.summary for a in PRODUCT_ANALYSES[name]]
"""(product, analysis) pairs whose products add columns to the summary (`Product.summary`)."""
"""{product: the analyses that have it} (its config block, and DL3 runs when it needs them)."""


def product_outputs(name, analysis):
    """The files product `name` writes for an analysis (its last step's outputs)."""
    return [f"{RESULTS}/{analysis}/{f}" for f in PRODUCTS[name].outputs(ANALYSES[analysis]["config"])]


def run_files(analysis, name):
    """Input function: the file `name` of every run of an analysis, e.g. the spatial.h5 of a
    product's per-observation step (obs/<obs_id>/<name>)."""

    def inputs(wildcards):
        return [f"{RESULTS}/{analysis}/obs/{o}/{name}" for o in obs_ids(analysis)]

    return inputs


LIGHT_CURVE_ANALYSES = [n for n, a in ANALYSES.items() if a["config"].get("light_curve") is not None]
"""Analyses with a `light_curve` block: their reductions also write onoff_events.h5 (rule
reduce_lc in lightcurve.smk, or their batch rules in reduce.smk) and they get
results/<analysis>/lightcurve/."""


LIGHT_CURVE_SPECTRA = [a for a in LIGHT_CURVE_ANALYSES if ANALYSES[a]["config"]["light_curve"]["spectra"]]
"""Analyses with light_curve.spectra: their light-curve job also fits the model per time bin
(rule light_curve_spectra in lightcurve.smk)."""


def light_curve_products(analysis):
    """The light-curve files of an analysis (spectra per time bin with light_curve.spectra)."""
    names = ["lightcurve.ecsv", "lightcurve_gadf.ecsv", "lightcurve.png"]
    if analysis in LIGHT_CURVE_SPECTRA:
        names += ["spectra.ecsv", "spectra.png"]
    return [f"{RESULTS}/{analysis}/lightcurve/{n}" for n in names]


def light_curve_spectra_args(wildcards, output):
    """Params function: the --spectra-ecsv/--spectra-png options of rule light_curve_spectra."""
    if "spectra_ecsv" not in output.keys():
        return ""
    return f" --spectra-ecsv {shlex.quote(output.spectra_ecsv)} --spectra-png {shlex.quote(output.spectra_png)}"


SUMMARY_ROWS = list(ANALYSES) + list(JOINT)
"""The rows of the summary: every analysis, then every joint fit (config key `joint`)."""


def per_analysis(name):
    """One file per analysis, in the config's order, e.g. per_analysis('fit/result.yaml')."""
    return [f"{RESULTS}/{a}/{name}" for a in ANALYSES]


def all_outputs(wildcards):
    if DL3_ANALYSES:
        prepared()
    out = [f"{RESULTS}/{a}/{p}" for a in DL3_ANALYSES for p in STACKED_PRODUCTS]
    out += [f"{RESULTS}/{a}/{p}" for a in ANALYSES for p in ANALYSIS_PRODUCTS]
    out += [p for a in LIGHT_CURVE_ANALYSES for p in light_curve_products(a)]
    out += [p for j in JOINT for p in joint_products(j)]  # joint.smk
    out += [f for name in PRODUCTS for a in PRODUCT_ANALYSES[name] for f in product_outputs(name, a)]
    out += MISSING_RUN_FILES  # reduce.smk: per-run files of finished batches that are gone
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
        from extspec.workflow.summary_step import write_summary

        rows = write_summary(RESULTS, SUMMARY_ROWS, f"{RESULTS}/summary.ecsv", f"{RESULTS}/summary.html",
                             LIGHT_CURVE_ANALYSES, SUMMARY_PRODUCTS)
    except Exception as exc:  # the run has failed already: report, never mask the failure
        print(f"extspec: could not write {RESULTS}/summary.ecsv: {exc}", file=sys.stderr)
        return
    failed = [r["analysis"] for r in rows if r["status"] != "ok"]
    print(f"extspec: {RESULTS}/summary.ecsv written; not finished: {', '.join(failed) or 'none'}",
          file=sys.stderr)


# Joint fits (config key `joint`, rules in joint.smk)


def joint_rule_name(name):
    """The name of a joint fit's job: joint_fit_<name>, every non-word character as '_'."""
    word = re.sub(r"\W", "_", name)
    return f"joint_fit_{word}"


def joint_files(name):
    """Input function: every spectrum file (PHA, BKG, ARF, RMF, external sets) of the joint's
    analyses, and the EBL table of its model (editing the table reruns the joint fit)."""

    def inputs(wildcards):
        out = model_ebl_table(JOINT[name]["model"])
        for a in JOINT[name]["analyses"]:
            w = types.SimpleNamespace(analysis=a)
            out += spectra_pha(w) + external_files(w)
            out += per_obs("bkg.fits")(w) + per_obs("arf.fits")(w) + per_obs("rmf.fits")(w)
        return out

    return inputs


def joint_spectra_args(name):
    """Params function: `--spectra ANALYSIS PHA ...` for each analysis of the joint fit."""

    def args(wildcards):
        return " ".join(
            f"--spectra {shlex.join([a, *spectra_pha(types.SimpleNamespace(analysis=a))])}"
            for a in JOINT[name]["analyses"]
        )

    return args


def joint_products(name):
    """The files one joint fit writes, under <results_dir>/<name>/fit/."""
    return [f"{RESULTS}/{name}/fit/{f}" for f in joint_outputs(JOINT[name]["analyses"])]


def extspec_in_process(command):
    """Run ``command`` (``"extspec STEP ..."``, formatted from the calling run: block's job as
    shell: formats it) in this process: in one of Snakemake's threads, with the workflow
    profile's force-use-threads (extspec.cli.run_in_process: the step, log and files of the
    command line, without an interpreter's start and imports per job)."""
    from snakemake.utils import format as snakemake_format

    run_in_process(shlex.split(snakemake_format(command, stepout=2))[1:])
