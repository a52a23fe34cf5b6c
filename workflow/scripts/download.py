"""Rule download: fetch, verify and install HESS DL3 DR1 (extspec.io.download.download_datastore).

Writes a receipt (JSON: status, destination, url, sha256) as the rule's output; an existing
store is left alone.
"""
import json
import logging

from _helpers import run


def main(snakemake):
    from extspec.io.atomic import write_atomic
    from extspec.io.download import download_datastore

    p = snakemake.params
    log = logging.getLogger("extspec.io.download")
    receipt = download_datastore(p.url, p.dest, sha256=p.sha256, timeout=p.timeout, log=log.info)
    write_atomic(snakemake.output[0], json.dumps(receipt, indent=2))


run(snakemake, "download", main, snakemake)  # noqa: F821
