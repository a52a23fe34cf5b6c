"""Reductions in batches: which runs one reduction job reduces (config key ``reduce.batch_size``).

A batch is a fixed block of obs ids: runs with the same ``obs_id // batch_size`` are one
job.  Membership depends only on a run's own id, never on which other runs the analysis
selects, so adding a run reruns only its own batch (and the aggregates); every other
batch's inputs, params and outputs stay as they were.  A batch therefore holds at most
``batch_size`` runs, fewer where the ids are sparse (H.E.S.S. ids grow by about 20 a
night; set a larger ``batch_size`` there).

``batch_size: auto`` (the default) keeps one job per run below :data:`AUTO_MIN_RUNS` runs of
an analysis, where a job per run costs little and reruns the least, and uses
:data:`AUTO_BATCH_SIZE` from there on (docs/tutorials/cluster.md, "Archive scale").  Crossing the threshold
changes which rule writes the products, so it reruns the reductions once.

This module imports only the standard library (the Snakefile uses it at parse time).
"""

from __future__ import annotations

__all__ = ["AUTO_MIN_RUNS", "AUTO_BATCH_SIZE", "batch_size", "batch_key", "make_batches", "missing_run_files",
           "files_signature"]

AUTO_MIN_RUNS = 200
"""``batch_size: auto`` batches an analysis of at least this many runs (measured: docs/tutorials/cluster.md, "Archive scale")."""

AUTO_BATCH_SIZE = 50
"""The block of obs ids per job that ``batch_size: auto`` uses from :data:`AUTO_MIN_RUNS` runs on."""


def batch_size(setting, n_runs: int) -> int:
    """The block size for an analysis of ``n_runs`` runs and the value of ``reduce.batch_size``."""
    if setting in (None, "auto"):
        return AUTO_BATCH_SIZE if n_runs >= AUTO_MIN_RUNS else 1
    return int(setting)


def batch_key(obs_id: int, size: int) -> int:
    """The batch of one run: ``obs_id // size`` (its own id only, so it never moves)."""
    return int(obs_id) // int(size)


def make_batches(obs_ids, size: int) -> dict[int, list[int]]:
    """``{key: [obs ids ascending]}`` of the runs, keys ascending."""
    out: dict[int, list[int]] = {}
    for o in sorted(int(o) for o in obs_ids):
        out.setdefault(batch_key(o, size), []).append(o)
    return out


def missing_run_files(outroot, obs_ids, products) -> list[str]:
    """The product files (``outroot/<obs_id>/<name>`` for every name in ``products``) of these
    runs that are not there: one directory listing per run.

    A batch job declares to Snakemake only its manifest and arrays file (one job's bookkeeping
    then does not grow with its runs, docs/tutorials/cluster.md, "Archive scale"); the
    Snakefile asks for a removed per-run file through this, so that its batch reruns."""
    import os

    out = []
    for o in obs_ids:
        d = os.path.join(os.fspath(outroot), str(int(o)))
        try:
            have = set(os.listdir(d))
        except OSError:
            have = set()
        out += [os.path.join(d, name) for name in products if name not in have]
    return out


def files_signature(paths) -> str:
    """A digest of the size and modification time of every file in ``paths`` (a missing one
    as missing): the params of a batch job in place of its DL3 files as inputs.

    Snakemake sizes every input file of every job ready to run at each scheduling round (one
    round per finished job), which with a batch's tens of DL3 files made the scheduling
    quadratic in the number of batches; a changed, touched or removed DL3 file changes this
    digest, and the params trigger reruns its batch."""
    import hashlib
    import json
    from pathlib import Path

    from .statcache import file_stat

    h = hashlib.sha256()
    for p in paths:
        h.update(json.dumps(file_stat(Path(p))).encode() + b"\n")
    return h.hexdigest()[:16]
