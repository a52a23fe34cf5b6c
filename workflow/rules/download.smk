# Fetch HESS DL3 DR1 (config block `download`), verify it file by file against the manifest
# of SHA-256 digests and install it atomically as the data store.
#
# * Automatically: with no data store found, no explicit `datastore:` key and
#   `download.auto: true`, the analysis' input functions (common.smk, `prepared()`) ask for
#   this checkpoint's output, so `snakemake --cores 8` fetches first and then builds the
#   rest of the DAG from the new store's index (the obs_cone selection needs it).
# * By hand: `snakemake download --cores 1` (the rule `download` below).
#
# The output is the receipt the download writes *inside* the store it installs (url,
# sha256, manifest), never the store directory: Snakemake deletes a job's outputs before
# rerunning it, and a data store must never be deleted.  Store and receipt appear in one
# rename and disappear together, so a deleted store is fetched again.  Runs on the submit
# host (localrules), since compute nodes are often offline.
import os

from extspec.io.download import RECEIPT_NAME, default_destination, is_datastore

DOWNLOAD_DEST = os.path.abspath(CFG["download"]["dest"] or default_destination(CFG["datastore"]))


checkpoint fetch_datastore:
    output:
        f"{DOWNLOAD_DEST}/{RECEIPT_NAME}",
    params:
        url=CFG["download"]["url"],
        sha256=CFG["download"]["sha256"],
        manifest=CFG["download"]["manifest"],
        timeout=CFG["download"]["timeout"],
    log:
        f"{CFG['results_dir']}/logs/download.log",
    script:
        "../scripts/download.py"


# `snakemake download`: fetch into download.dest (default: the first place the store is
# looked for) unless a store is there already (one not fetched by extspec has no receipt:
# the store itself is then the input, and there is nothing to do).
rule download:
    input:
        (
            DOWNLOAD_DEST
            if is_datastore(DOWNLOAD_DEST) and not os.path.exists(rules.fetch_datastore.output[0])
            else rules.fetch_datastore.output
        ),
