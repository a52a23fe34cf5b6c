# extspec: ON/OFF spectral analysis of IACT DL3 data (HESS DL3 DR1).
#
#   snakemake --cores 8                        # the analysis in config/config.yaml
#   snakemake --cores 8 --configfile my.yaml   # another one
#   snakemake --cores 8 --configfile config/hess-dr1.yaml   # the four DR1 targets (key `analyses`)
#   snakemake --profile profiles/slurm         # on a SLURM cluster
#   snakemake download --cores 1               # only fetch HESS DL3 DR1 (done anyway if missing)
#   snakemake --report report.html             # HTML report with every plot
#
# Outputs go to <results_dir>/<analysis>/ (results/rxj1713/ for the seed config), one directory per
# analysis (config key `analyses`) and per joint fit (key `joint`), and <results_dir>/summary.{ecsv,html}.
import copy
import os
import sys

from snakemake.utils import min_version

from extspec.errors import ConfigError
from extspec.workflow.config import read_config_file

min_version("8.0")

# Before the configfile directive, `config` holds only what --configfile / --config gave;
# common.smk needs it to let an overlay's `model` (with a type) replace the default one.
CONFIG_OVERLAY = copy.deepcopy(config)


# Snakemake's own message for a YAML error names neither file nor line: check the default
# file first (`extspec check config/config.yaml my.yaml` does the same for --configfile files)
if os.path.isfile("config/config.yaml"):
    try:
        read_config_file("config/config.yaml")
    except ConfigError as err:
        sys.exit(f"extspec: invalid configuration: {err}")


configfile: "config/config.yaml"


# The config is validated against the package's schema, src/extspec/data/config.schema.yaml
# (and for what a schema cannot say: regions, geometry, obs ids in the data store) by
# extspec.workflow.config, in workflow/rules/common.smk.


include: "workflow/rules/common.smk"
include: "workflow/rules/reduce.smk"
include: "workflow/rules/stack.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/products.smk"
include: "workflow/rules/lightcurve.smk"
include: "workflow/rules/joint.smk"
include: "workflow/rules/download.smk"


# the rules of every registered product (extspec.workflow.products; PRODUCTS in common.smk)
for _product in PRODUCTS.values():

    include: _product.rule_file


# end the process as soon as the last job is done (extspec.workflow.process_exit)
onsuccess:
    cancel_scheduler_timers(log)


onerror:
    summary_after_failure()
    cancel_scheduler_timers(log)


# run where Snakemake runs, never submitted to a cluster: the targets, the download (compute
# nodes may be offline) and the summary (one small table per run, read from the results)
localrules:
    all,
    download,
    fetch_datastore,
    summary,


rule all:
    input:
        all_outputs,
    default_target: True
