"""The one atomic writer: every output file of extspec is written through this module.

A file is written to a uniquely named temporary file in the same directory (so the final
:func:`os.replace` is a rename within one file system, atomic on POSIX) and renamed over the
target only when writing finished without an exception; on any exception the temporary file
is removed.  A reader therefore sees the target absent, the previous file, or the complete
new file -- never a half-written one.

* :func:`write_atomic` -- bytes or text.
* :func:`atomic_path` -- a context manager yielding the temporary path, for libraries that
  write to a path themselves (``h5py.File(tmp, "w")``, ``fig.savefig(tmp)``).
* :func:`atomic_paths` -- several files that appear together: all are written first, then
  renamed in the order given (e.g. the OGIP set with the PHA file last).
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["temp_path", "atomic_path", "atomic_paths", "write_atomic", "os_error_line"]

FILE_MODE = 0o644
"""Mode of the written files (products are shared files; not the 0600 of ``mkstemp``)."""


def temp_path(path) -> Path:
    """A fresh temporary name next to ``path`` (hidden, unique per process and call)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


_TEMP_NAME = re.compile(r"^\.(.+)\.\d+\.[0-9a-f]{12}\.tmp$")


def os_error_line(exc: OSError) -> str:
    """One line for a failed file operation, the system's reason first.

    ``No space left on device: cannot write results/x/obs/1/cube.h5``: the reason comes
    from the error number, also when a library buries it in a long message (h5py's ``Can't
    close file (file write failed: ..., errno = 28, ...)``); a temporary name of this module
    is given as the file it stands for.
    """
    import errno as errno_codes

    text = str(exc)
    code = exc.errno
    if code is None:
        m = re.search(r"errno = (\d+)", text)
        code = int(m.group(1)) if m else None
    filename = exc.filename
    if filename is None:
        m = re.search(r"filename = '([^']+)'", text)
        filename = m.group(1) if m else None
    if code in errno_codes.errorcode:
        reason = os.strerror(code)
    else:
        reason = exc.strerror or (text.splitlines() or [type(exc).__name__])[0]
    if filename is None:
        return reason
    path = Path(os.fsdecode(filename))
    m = _TEMP_NAME.match(path.name)
    writing = m is not None or code in (errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EROFS)
    if m:
        path = path.with_name(m.group(1))
    return f"{reason}: cannot {'write' if writing else 'access'} {path}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_paths(paths, fsync: bool = False):
    """Yield temporary paths for ``paths``; on success rename each over its target, in order.

    The parent directories are created.  If the block raises, or a temporary file was not
    written, nothing is renamed and every temporary file is removed.  With ``fsync=True``
    each file is flushed to disk before it is renamed.
    """
    paths = [Path(p) for p in paths]
    for parent in dict.fromkeys(p.parent for p in paths):  # each folder once; a stat when it exists
        if not parent.is_dir():
            parent.mkdir(parents=True, exist_ok=True)
    temps = [temp_path(p) for p in paths]
    renamed = 0
    try:
        yield temps
        for tmp in temps:
            if not tmp.is_file():
                raise FileNotFoundError(f"{tmp}: temporary file was not written")
            os.chmod(tmp, FILE_MODE)
            if fsync:
                _fsync(tmp)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
            renamed += 1
    finally:
        for tmp in temps[renamed:]:  # those not renamed (all, when the block raised)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


@contextmanager
def atomic_path(path, fsync: bool = False):
    """Yield a temporary path next to ``path``; renamed over ``path`` when the block succeeds.

    >>> with atomic_path("out/plot.png") as tmp:      # doctest: +SKIP
    ...     fig.savefig(tmp, format="png")
    """
    with atomic_paths([path], fsync=fsync) as (tmp,):
        yield tmp


def write_atomic(path, data: bytes | str, fsync: bool = False) -> Path:
    """Write ``data`` (bytes, or text encoded as UTF-8) to ``path`` atomically; returns the path."""
    if isinstance(data, str):
        data = data.encode()
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
    return Path(path)
