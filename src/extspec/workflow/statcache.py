"""The on-disk caches of the config layer: file identities for cache keys, and writing a cache.

:func:`file_stat` (path, mtime, size), :func:`file_content` (path, SHA-256) and
:func:`write_cache` (JSON, atomically; a failed write only loses the cache).  Used by
:mod:`.cache` (the parse-time cache of :func:`~extspec.workflow.cache.prepare_workflow`) and
:mod:`.store_checks` (the IRF offset ranges); imports no other config module.

This module imports only the standard library at import time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["file_stat", "file_content", "write_cache"]


def file_stat(path: Path) -> list:
    """[path, mtime_ns, size] of a file ([path, None] when it cannot be stat-ed), for cache keys."""
    try:
        st = path.stat()
        return [str(path), st.st_mtime_ns, st.st_size]
    except OSError:
        return [str(path), None]


def file_content(path: Path) -> list:
    """[path, SHA-256] of a small file (None when absent), for the cache key."""
    try:
        return [str(path), hashlib.sha256(path.read_bytes()).hexdigest()]
    except OSError:
        return [str(path), None]


def write_cache(cache_file, out) -> None:
    """Write ``out`` as JSON to ``cache_file`` atomically (nothing for None; a failed write is
    only a missed cache)."""
    if cache_file is None:
        return
    try:
        from ..io.atomic import write_atomic

        write_atomic(cache_file, json.dumps(out))
    except OSError:
        pass
