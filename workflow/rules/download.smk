# Fetch HESS DL3 DR1 (config block `download`), verify its SHA-256 and install it
# atomically as the data store: `snakemake download --cores 1`.  Runs on the submit host
# (localrules), since compute nodes are often offline.  The analysis rules never depend on
# this rule.
#
# The output is a receipt (url, sha256, destination) under <results_dir>/download/, not the
# store directory itself: Snakemake deletes the outputs of a job before rerunning it, and a
# data store must never be deleted because, say, the script changed.  A receipt whose store
# has disappeared is removed here, so that `snakemake download` fetches it again.
import os

from extspec.io.download import default_destination, is_datastore

DOWNLOAD_DEST = str(CFG["download"]["dest"] or default_destination(CFG["datastore"]))
DOWNLOAD_RECEIPT = f"{CFG['results_dir']}/download/{os.path.basename(DOWNLOAD_DEST.rstrip('/'))}.json"
if os.path.exists(DOWNLOAD_RECEIPT) and not is_datastore(DOWNLOAD_DEST):
    os.remove(DOWNLOAD_RECEIPT)


rule download:
    output:
        DOWNLOAD_RECEIPT,
    params:
        url=CFG["download"]["url"],
        sha256=CFG["download"]["sha256"],
        dest=DOWNLOAD_DEST,
        timeout=CFG["download"]["timeout"],
    log:
        f"{CFG['results_dir']}/logs/download.log",
    script:
        "../scripts/download.py"
