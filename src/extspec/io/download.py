"""Fetch the HESS DL3 DR1 release and install it as a data store, atomically.

The public release (Zenodo record 1421099) is one tarball holding a directory with
``obs-index.fits.gz``, ``hdu-index.fits.gz`` and ``data/``.  :func:`download_datastore`

1. streams the tarball from a URL (``http(s)://`` or ``file://``) into a temporary
   directory next to the destination, computing its SHA-256 on the way,
2. checks the digest against the expected one (when given),
3. extracts it there (path-traversal-safe ``data`` filter) and finds the store root in it,
4. checks every file listed in a manifest of SHA-256 digests (``sha256sum`` format; by
   default :data:`DR1_MANIFEST`, the release's 108 files) against the extracted copy --
   a tarball digest alone would reject a recompressed but identical release, and accept
   nothing it was not told,
5. writes a receipt (:data:`RECEIPT_NAME`) into the store and renames the root to the
   destination in one step.

The destination is therefore either absent or a complete, verified store, never
half-written; the temporary directory is removed on any failure.  Every problem raises
:class:`DownloadError` (a :class:`~extspec.errors.DataStoreError`) with one line saying
what happened and how to get the data otherwise.  Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataStoreError
from .atomic import atomic_path, write_atomic
from .datastore import is_datastore

__all__ = [
    "DR1_URL",
    "DR1_MANIFEST",
    "RECEIPT_NAME",
    "DownloadError",
    "download_datastore",
    "default_destination",
    "is_datastore",
    "read_manifest",
    "verify_manifest",
    "HOWTO",
    "download_file",
]

DR1_URL = "https://zenodo.org/records/1421099/files/hess_dl3_dr1.tar.gz"
"""The HESS DL3 DR1 release tarball (Zenodo record 1421099)."""

DR1_MANIFEST = Path(__file__).resolve().parent.parent / "data" / "hess-dl3-dr1.sha256"
"""SHA-256 of every file of HESS DL3 DR1 (README.txt, the two index files, the 105 runs),
in ``sha256sum`` format, computed from a copy of the release."""

RECEIPT_NAME = "extspec-download.json"
"""The receipt :func:`download_datastore` writes into a store it installs (url, sha256,
manifest, destination): the store and its receipt appear and disappear together."""

HOWTO = (
    "get HESS DL3 DR1 by hand (https://zenodo.org/records/1421099, hess_dl3_dr1.tar.gz), "
    "unpack it anywhere and set the config key 'datastore' to the unpacked folder "
    "(or use a $GAMMAPY_DATA folder holding hess-dl3-dr1)"
)
"""How to get the data by hand: the end of every download error."""


class DownloadError(DataStoreError):
    """The data store could not be downloaded or installed."""


def default_destination(datastore=None) -> Path:
    """Where the store is installed when ``download.dest`` is not set.

    The config key ``datastore`` if set, else ``$GAMMAPY_DATA/hess-dl3-dr1``, else
    ``data/hess-dl3-dr1`` in the working directory: the first of the places
    :func:`extspec.io.datastore.resolve_datastore_path` looks that is the user's own (never
    ``../shared``), so the workflow finds the store afterwards.
    """
    from .datastore import LOCAL_STORE, candidate_datastore_paths

    cands = candidate_datastore_paths(datastore)
    if datastore or os.environ.get("GAMMAPY_DATA"):
        return cands[0].absolute()
    return (Path.cwd() / LOCAL_STORE).absolute()


def _log(log, msg):
    if log is not None:
        log(msg)


def _fetch(url: str, target: Path, timeout: float, log, howto: str = HOWTO) -> str:
    """Stream ``url`` into ``target``; return the SHA-256 hex digest.  Errors end with ``howto``."""
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
        raise DownloadError(f"cannot download {url}: HTTP error {exc.code} {exc.reason}; {howto}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason if not isinstance(exc.reason, OSError) else (exc.reason.strerror or exc.reason)
        raise DownloadError(
            f"cannot download {url}: {reason} (offline, or the server is unreachable); {howto}"
        ) from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"cannot download {url}: timed out after {timeout} s; {howto}") from None
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot download {url}: {exc}; {howto}") from None
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


_HEX = frozenset("0123456789abcdef")


def read_manifest(path=None) -> list[tuple[str, str]]:
    """``[(relative path, sha256 hex), ...]`` from a ``sha256sum``-format file (default:
    :data:`DR1_MANIFEST`), in file order.  Blank lines are skipped."""
    path = Path(path) if path is not None else DR1_MANIFEST
    try:
        text = path.read_text()
    except OSError as exc:
        raise DownloadError(f"manifest {path}: cannot read it ({exc.strerror})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        digest = digest.lower()
        if len(digest) != 64 or not set(digest) <= _HEX or not name or name.startswith("/") or ".." in Path(name).parts:
            raise DownloadError(f"manifest {path} line {n}: expected '<sha256>  <relative path>', got {line.strip()[:80]!r}")
        out.append((name, digest))
    if not out:
        raise DownloadError(f"manifest {path}: lists no files")
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_manifest(root, manifest=None) -> int:
    """Check every file listed in ``manifest`` under ``root``; return how many were checked.

    Raises :class:`DownloadError` naming the first file (in manifest order) that is missing
    or whose SHA-256 differs.  Files not in the manifest are not looked at.
    """
    root = Path(root)
    entries = read_manifest(manifest)
    where = manifest if manifest is not None else DR1_MANIFEST
    for name, digest in entries:
        f = root / name
        if not f.is_file():
            raise DownloadError(f"{name} is missing from the downloaded release (manifest {where})")
        got = _file_sha256(f)
        if got != digest:
            raise DownloadError(
                f"{name} differs from the release: sha256 {got}, expected {digest} (manifest {where})"
            )
    return len(entries)


def _write_receipt(root: Path, receipt: dict) -> None:
    write_atomic(root / RECEIPT_NAME, json.dumps(receipt, indent=2) + "\n")


def download_datastore(url: str = DR1_URL, dest=None, sha256: str | None = None, timeout: float = 60,
                       force: bool = False, log=print, manifest=None, receipt: bool = False) -> dict:
    """Download the release tarball at ``url`` and install it as the data store ``dest``.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL of a ``.tar.gz`` holding one data store.
    dest : path, optional
        Store directory to create (default: :func:`default_destination`).  Its parent is
        created if needed.  An existing complete store is left alone unless ``force``; an
        existing empty directory is filled (and removed again if the download fails).
    sha256 : str, optional
        Expected SHA-256 of the tarball; a mismatch is an error and nothing is installed.
        Without it the digest is only logged.
    timeout : float
        Socket timeout in seconds.
    force : bool
        Replace an existing store (the old one is removed only after the new one is ready).
    log : callable, optional
        Called with one-line progress messages.
    manifest : path, optional
        ``sha256sum``-format list of the release's files (default :data:`DR1_MANIFEST`):
        every listed file is checked after extraction and the first one missing or
        different refuses the release, installing nothing.
    receipt : bool
        Also write the returned dict as JSON to ``dest/`` :data:`RECEIPT_NAME` (inside the
        new store before it is renamed into place, so both appear at once; into an already
        present store as well).

    Returns
    -------
    dict
        ``{"status": "installed"|"present", "dest": str, "url": str, "sha256": str|None,
        "manifest": str|None, "files_verified": int}``.
    """
    dest = Path(dest) if dest is not None else default_destination()
    dest = Path(os.path.abspath(os.path.expanduser(str(dest))))
    manifest = Path(manifest) if manifest is not None else DR1_MANIFEST
    read_manifest(manifest)  # a bad manifest fails before anything is fetched
    if is_datastore(dest) and not force:
        _log(log, f"data store already present at {dest}; nothing to download")
        out = {"status": "present", "dest": str(dest), "url": url, "sha256": None, "manifest": None,
               "files_verified": 0}
        if receipt and not (dest / RECEIPT_NAME).is_file():
            try:
                _write_receipt(dest, out)
            except OSError as exc:
                raise DownloadError(f"data store {dest}: cannot write {RECEIPT_NAME} ({exc.strerror})") from None
        return out
    if dest.exists() and not is_datastore(dest) and (not dest.is_dir() or any(dest.iterdir())):
        raise DownloadError(f"download destination {dest} exists and is not a data store; move it away first")
    empty_dir = dest.is_dir() and not is_datastore(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"download destination {dest}: cannot create {dest.parent} ({exc.strerror})") from None
    tmp = dest.parent / f".{dest.name}.download-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    installed = False
    try:
        tmp.mkdir()
        archive = tmp / "release.tar.gz"
        _log(log, f"downloading {url} (to install the data store at {dest})")
        digest = _fetch(url, archive, timeout, log)
        _log(log, f"sha256 {digest}")
        if sha256:
            _check_sha256(url, digest, sha256, "the file is corrupt or not the configured release "
                                               "(nothing was installed)")
            _log(log, "checksum verified")
        else:
            _log(log, "no sha256 configured (download.sha256): tarball checksum not verified")
        extract = tmp / "extract"
        extract.mkdir()
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(extract, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"cannot extract the archive from {url}: {exc}") from None
        archive.unlink()
        root = _find_root(extract)
        try:
            n = verify_manifest(root, manifest)
        except DownloadError as exc:
            raise DownloadError(f"refused the release from {url}: {exc}; nothing was installed") from None
        _log(log, f"verified {n} files against {manifest}")
        out = {"status": "installed", "dest": str(dest), "url": url, "sha256": digest, "manifest": str(manifest),
               "files_verified": n}
        if receipt:
            _write_receipt(root, out)
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.rename(dest, old)
        os.rename(root, dest)
        installed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _log(log, f"installed the data store at {dest}")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not installed and empty_dir:
            try:  # the empty directory Snakemake made for the receipt: leave nothing behind
                dest.rmdir()
            except OSError:
                pass


def download_file(url: str, dest, sha256: str, timeout: float = 60, log=None, howto: str = HOWTO) -> Path:
    """Fetch one file from ``url`` to ``dest``, checked against ``sha256``, atomically.

    The file is streamed into a temporary name next to ``dest`` and renamed into place only
    when its SHA-256 matches; otherwise nothing is left behind.  Raises DownloadError (one
    line ending with ``howto``).
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest.parent} ({exc.strerror}); {howto}") from None
    _log(log, f"downloading {url} to {dest}")
    with atomic_path(dest) as tmp:  # renamed into place only when the checksum matches
        _check_sha256(url, _fetch(url, tmp, timeout, log, howto), sha256, f"nothing was installed; {howto}")
    return dest


def _check_sha256(url: str, digest: str, expected: str, tail: str) -> None:
    """DownloadError ``checksum mismatch for <url>: ...; <tail>`` unless ``digest`` is ``expected``."""
    if digest.lower() != expected.lower():
        raise DownloadError(f"checksum mismatch for {url}: expected sha256 {expected.lower()}, got {digest}; {tail}")
