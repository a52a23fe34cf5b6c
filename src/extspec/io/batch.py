"""The files of a batch reduction job (config key ``reduce.batch_size``): its manifest, and the
failure marker of a run it could not reduce.

**Manifest.** ``<results_dir>/<analysis>/obs/batch-<key>.<digest>.json``, written last by the job:
the obs ids it reduced (ascending), those that failed, with the reason, and the name of the
batch's arrays file beside it (``arrays``: ``batch-<key>.<digest>.h5``, what the aggregates
read of its runs, :mod:`extspec.io.batch_arrays`).  The runs' folders
are its siblings (``obs/<obs_id>/``).  The aggregate steps take manifests in place of the
runs' folders (:func:`expand_manifests`), so that Snakemake's DAG holds one input file per
batch instead of four or five per run.

**Failure marker.** A batch job must leave every output Snakemake expects of it, or
Snakemake deletes all of them, the good runs' products included.  So for a run whose
reduction fails with bad input, the job writes, under each of the run's product names
(:data:`REDUCTION_PRODUCTS`, and ``onoff_events.h5`` for a light curve), a one-line text file

    EXTSPEC-FAILED obs 2: cannot read ...: corrupt or truncated file

that no FITS or HDF5 reader mistakes for data (FITS files start with ``SIMPLE``, HDF5 with
``\\x89HDF``).  The aggregate steps call :func:`check_reduced` on every input and stop with
that line, exactly as they cannot run when a per-run reduction job fails; the next run
redoes the batch when the run's DL3 file changes, and removing the run from the analysis
lets the aggregates run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ExtspecError, FormatError
from .atomic import write_atomic

__all__ = ["MARKER", "REDUCTION_PRODUCTS", "MANIFEST_FORMAT", "write_failed", "failed_reason", "check_reduced",
           "manifest_name", "arrays_name", "write_manifest", "read_manifest", "is_manifest", "expand_manifests",
           "manifest_run_dirs"]

MARKER = b"EXTSPEC-FAILED "
"""First bytes of a failure marker."""

REDUCTION_PRODUCTS = ("cube.h5", "pha.fits", "bkg.fits", "arf.fits", "rmf.fits")
"""The files a reduction writes into a run's folder (the OGIP names of :mod:`extspec.io.ogip`)."""

MANIFEST_FORMAT = "extspec-reduce-batch"
_MANIFEST_PREFIX, _MANIFEST_SUFFIX = "batch-", ".json"


def manifest_name(key: int, obs_ids) -> str:
    """File name of the manifest of batch ``key`` holding ``obs_ids`` (in the ``obs/`` folder):
    ``batch-<key>.<digest>.json``, the digest of its obs ids, so that adding a run to the batch
    or removing one asks for a new manifest (Snakemake checks only the outputs of a job that
    are asked for, here the manifest; whatever the rerun triggers, the batch then reruns)."""
    import hashlib

    digest = hashlib.sha256(" ".join(str(int(o)) for o in sorted(obs_ids)).encode()).hexdigest()[:8]
    return f"{_MANIFEST_PREFIX}{int(key)}.{digest}{_MANIFEST_SUFFIX}"


def arrays_name(manifest: str) -> str:
    """File name of a batch's arrays file (:mod:`extspec.io.batch_arrays`): its manifest's
    name with ``.h5`` for ``.json``."""
    return manifest[: -len(_MANIFEST_SUFFIX)] + ".h5" if manifest.endswith(_MANIFEST_SUFFIX) else manifest + ".h5"


def write_failed(outdir, reason: str, extra=()) -> None:
    """Write the failure marker (with ``reason``, one line) under every product name in
    ``outdir``, and under the names in ``extra`` (e.g. ``onoff_events.h5`` of a light curve)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    text = MARKER + " ".join(str(reason).split()).encode("utf-8", "replace") + b"\n"
    for name in (*REDUCTION_PRODUCTS, *extra):
        write_atomic(outdir / name, text)


def failed_reason(path) -> str | None:
    """The reason of a failure marker at ``path`` (a product file, or a run's folder), else None."""
    path = Path(path)
    if path.is_dir():
        path = path / REDUCTION_PRODUCTS[1]
    try:
        with open(path, "rb") as f:
            if f.read(len(MARKER)) != MARKER:
                return None
            return f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None


def check_reduced(path) -> None:
    """Raise ExtspecError naming the run and its reason if ``path`` is a failure marker."""
    reason = failed_reason(path)
    if reason is not None:
        raise ExtspecError(f"{reason} (its batch reduction failed, {os.fspath(path)} marks it: fix the data or "
                           "remove the run from obs_ids)")


def write_manifest(path, obs_ids, failed: dict, arrays: str | None = None) -> None:
    """The manifest of a batch job (see the module docstring), atomically; ``arrays``: the
    name of the batch's arrays file beside it (:mod:`extspec.io.batch_arrays`).  The
    manifests (and arrays files) of the same batch key with other members (a run added or
    removed since) are deleted, so that ``obs/batch-*.json`` names every run once."""
    doc = {"format": MANIFEST_FORMAT, "obs_ids": [int(o) for o in obs_ids],
           "failed": {str(k): v for k, v in failed.items()}}
    if arrays is not None:
        doc["arrays"] = str(arrays)
    path = Path(path)
    write_atomic(path, json.dumps(doc, indent=1) + "\n")
    key = path.name.split(".")[0]  # batch-<key>
    keep = {path.name, str(arrays)}
    for stale in [*path.parent.glob(f"{key}.*{_MANIFEST_SUFFIX}"), *path.parent.glob(f"{key}.*.h5")]:
        if stale.name not in keep:
            stale.unlink(missing_ok=True)


def is_manifest(path) -> bool:
    name = Path(path).name
    return name.startswith(_MANIFEST_PREFIX) and name.endswith(_MANIFEST_SUFFIX)


def read_manifest(path) -> dict:
    """The content of a batch manifest; FormatError (one line) when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read the batch manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise FormatError(f"{path}: not a batch manifest of extspec (format {MANIFEST_FORMAT})")
    return doc


def expand_manifests(paths) -> list[str]:
    """``paths`` with every batch manifest replaced by its runs' folders (ascending obs id)."""
    out = []
    for p in paths:
        if not is_manifest(p):
            out.append(p)
            continue
        out += manifest_run_dirs(p)
    return out


def manifest_run_dirs(path, doc: dict | None = None) -> list[str]:
    """The run folders a batch manifest names (``obs/<obs_id>/`` beside it), in its order;
    ``doc``: the manifest's content when already read (:func:`read_manifest`)."""
    doc = read_manifest(path) if doc is None else doc
    root = Path(path).parent
    return [os.fspath(root / str(o)) for o in doc["obs_ids"]]
