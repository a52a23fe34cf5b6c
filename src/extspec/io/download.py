"""Fetch the HESS DL3 DR1 release and install it as a data store, atomically.

The public release (Zenodo record 1421099) is one tarball holding a directory with
``obs-index.fits.gz``, ``hdu-index.fits.gz`` and ``data/``.  :func:`download_datastore`

1. streams the tarball from a URL (``http(s)://`` or ``file://``) into a temporary
   directory next to the destination, computing its SHA-256 on the way,
2. checks the digest against the expected one (when given),
3. extracts it there (path-traversal-safe ``data`` filter) and finds the store root in it,
4. renames that root to the destination in one step.

The destination is therefore either absent or a complete store, never half-written; the
temporary directory is removed on any failure.  Every problem raises
:class:`DownloadError` (a :class:`~extspec.errors.DataStoreError`) with one line saying
what happened and how to get the data otherwise.  Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataStoreError
from .datastore import is_datastore

__all__ = ["DR1_URL", "DownloadError", "download_datastore", "default_destination", "is_datastore"]

DR1_URL = "https://zenodo.org/records/1421099/files/hess_dl3_dr1.tar.gz"
"""The HESS DL3 DR1 release tarball (Zenodo record 1421099)."""

_HOWTO = (
    "get HESS DL3 DR1 by hand from its public release (Zenodo record 1421099, "
    "hess_dl3_dr1.tar.gz) or use a $GAMMAPY_DATA folder holding hess-dl3-dr1, "
    "then set the config key 'datastore'"
)


class DownloadError(DataStoreError):
    """The data store could not be downloaded or installed."""


def default_destination(datastore=None) -> Path:
    """Where the store is installed when ``download.dest`` is not set.

    The first place :func:`extspec.io.datastore.resolve_datastore_path` looks: the config key
    ``datastore`` if set, else ``$GAMMAPY_DATA/hess-dl3-dr1``, else
    ``../shared/data/hess-dl3-dr1`` -- so the workflow finds the store afterwards.
    """
    from .datastore import candidate_datastore_paths

    return candidate_datastore_paths(datastore)[0].absolute()


def _log(log, msg):
    if log is not None:
        log(msg)


def _fetch(url: str, target: Path, timeout: float, log) -> str:
    """Stream ``url`` into ``target``; return the SHA-256 hex digest."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done, next_report, t0 = 0, 0.1, time.monotonic()
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if total and done >= next_report * total:
                    _log(log, f"downloaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")
                    next_report += 0.1
            if total and done != total:
                raise DownloadError(f"cannot download {url}: transfer ended after {done} of {total} bytes")
            _log(log, f"downloaded {done / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {url}: HTTP error {exc.code} {exc.reason}; {_HOWTO}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason if not isinstance(exc.reason, OSError) else (exc.reason.strerror or exc.reason)
        raise DownloadError(
            f"cannot download {url}: {reason} (offline, or the server is unreachable); {_HOWTO}"
        ) from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"cannot download {url}: timed out after {timeout} s; {_HOWTO}") from None
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot download {url}: {exc}; {_HOWTO}") from None
    return h.hexdigest()


def _find_root(top: Path) -> Path:
    """The directory inside an extracted archive that holds the index files."""
    if is_datastore(top):
        return top
    for depth in range(1, 3):
        for p in sorted(top.glob("/".join(["*"] * depth))):
            if is_datastore(p):
                return p
    raise DownloadError("the archive holds no DL3 data store (no directory with obs-index.fits.gz and hdu-index.fits.gz)")


def download_datastore(url: str = DR1_URL, dest=None, sha256: str | None = None, timeout: float = 60,
                       force: bool = False, log=print) -> dict:
    """Download the release tarball at ``url`` and install it as the data store ``dest``.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL of a ``.tar.gz`` holding one data store.
    dest : path, optional
        Store directory to create (default: :func:`default_destination`).  Its parent is
        created if needed.  An existing complete store is left alone unless ``force``.
    sha256 : str, optional
        Expected SHA-256 of the tarball; a mismatch is an error and nothing is installed.
        Without it the digest is only logged.
    timeout : float
        Socket timeout in seconds.
    force : bool
        Replace an existing store (the old one is removed only after the new one is ready).
    log : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    dict
        ``{"status": "installed"|"present", "dest": str, "url": str, "sha256": str|None}``.
    """
    dest = Path(dest) if dest is not None else default_destination()
    dest = Path(os.path.abspath(os.path.expanduser(str(dest))))
    if is_datastore(dest) and not force:
        _log(log, f"data store already present at {dest}; nothing to download")
        return {"status": "present", "dest": str(dest), "url": url, "sha256": None}
    if dest.exists() and not is_datastore(dest) and (not dest.is_dir() or any(dest.iterdir())):
        raise DownloadError(f"download destination {dest} exists and is not a data store; move it away first")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"download destination {dest}: cannot create {dest.parent} ({exc.strerror})") from None
    tmp = dest.parent / f".{dest.name}.download-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        archive = tmp / "release.tar.gz"
        _log(log, f"downloading {url}")
        digest = _fetch(url, archive, timeout, log)
        _log(log, f"sha256 {digest}")
        if sha256:
            if digest.lower() != sha256.lower():
                raise DownloadError(
                    f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {digest}; "
                    "the file is corrupt or not the configured release (nothing was installed)"
                )
            _log(log, "checksum verified")
        else:
            _log(log, "no sha256 configured (download.sha256): checksum not verified")
        extract = tmp / "extract"
        extract.mkdir()
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(extract, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"cannot extract the archive from {url}: {exc}") from None
        root = _find_root(extract)
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.rename(dest, old)
        os.rename(root, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _log(log, f"installed the data store at {dest}")
        return {"status": "installed", "dest": str(dest), "url": url, "sha256": digest}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
