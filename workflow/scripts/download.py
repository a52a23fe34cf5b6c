"""Checkpoint fetch_datastore: fetch, verify and install HESS DL3 DR1
(extspec.io.download.download_datastore).

The library writes the receipt (the rule's output) into the store it installs; an existing
store is left alone.  Progress goes to the log and, since a download is worth seeing, to
the terminal.
"""
import logging
import os
import sys

from _helpers import run


def main(snakemake):
    from extspec.io.download import download_datastore

    p = snakemake.params
    log = logging.getLogger("extspec.io.download")

    def say(msg):
        log.info(msg)
        print(f"extspec: {msg}", file=sys.stderr, flush=True)

    dest = os.path.dirname(snakemake.output[0])  # the receipt is written into the store
    download_datastore(p.url, dest, sha256=p.sha256, timeout=p.timeout, manifest=p.manifest, receipt=True,
                       log=say)


run(snakemake, "download", main, snakemake)  # noqa: F821
