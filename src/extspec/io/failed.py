"""The failure marker of a run that a batch reduction job could not reduce.

A batch job (``extspec reduce-batch``, config key ``reduce.batch_size``) must leave every
output Snakemake expects of it, or Snakemake deletes all of them, the good runs' products
included.  So for a run whose reduction fails with bad input, the job writes, under each of
the run's product names (:data:`REDUCTION_PRODUCTS`), a one-line text file

    EXTSPEC-FAILED obs 2: cannot read ...: corrupt or truncated file

that no FITS or HDF5 reader mistakes for data (FITS files start with ``SIMPLE``, HDF5 with
``\\x89HDF``).  The aggregate steps call :func:`check_reduced` on every input and stop with
that line, exactly as they cannot run when a per-run reduction job fails; the next run
redoes the batch when the run's DL3 file changes, and removing the run from the analysis
lets the aggregates run.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExtspecError
from .atomic import write_atomic

__all__ = ["MARKER", "REDUCTION_PRODUCTS", "CUBE_FILE", "write_failed", "failed_reason", "check_reduced"]

MARKER = b"EXTSPEC-FAILED "
"""First bytes of a failure marker."""

CUBE_FILE = "cube.h5"
REDUCTION_PRODUCTS = (CUBE_FILE, "pha.fits", "bkg.fits", "arf.fits", "rmf.fits")
"""The files a reduction writes into a run's folder (the OGIP names of :mod:`extspec.io.ogip`)."""


def write_failed(outdir, reason: str) -> None:
    """Write the failure marker (with ``reason``, one line) under every product name in ``outdir``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    text = MARKER + " ".join(str(reason).split()).encode("utf-8", "replace") + b"\n"
    for name in REDUCTION_PRODUCTS:
        write_atomic(outdir / name, text)


def failed_reason(path) -> str | None:
    """The reason of a failure marker at ``path`` (a product file, or a run's folder), else None."""
    path = Path(path)
    if path.is_dir():
        path = path / REDUCTION_PRODUCTS[1]
    try:
        with open(path, "rb") as f:
            head = f.read(len(MARKER))
            if head != MARKER:
                return None
            return f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None


def check_reduced(path) -> None:
    """Raise ExtspecError naming the run and its reason if ``path`` is a failure marker."""
    reason = failed_reason(path)
    if reason is not None:
        where = os.fspath(path)
        raise ExtspecError(f"{reason} (its batch reduction failed, {where} marks it: fix the data or remove "
                           "the run from obs_ids)")
