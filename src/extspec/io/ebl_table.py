"""EBL tables for the absorbed models: finding, fetching and reading the file.

The library's EBL model (:mod:`extspec.ebl`) reads no file: it is handed its table, an
:class:`~extspec.ebl.EBLAbsorption`.  Its callers read it here:

* :func:`read_ebl_table`: the table of ``model.ebl.table`` (a path, or a name of
  :data:`NAMED_TABLES`: :func:`resolve_table`), read once per process and file version;
* :func:`with_ebl_table`: a ``model`` block whose ``ebl.table`` is that table, ready for
  :func:`extspec.fit.fit_joint` and :func:`extspec.joint.fit_instruments` (the workflow's fit
  steps and :func:`extspec.io.fitresult.read_fit_result` hand tables this way).

Where ``ebl.table`` is written to a file (``result.yaml``, flux-point metadata) it is written
as the config gave it (:func:`extspec.ebl.ebl_record`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..ebl import EBLAbsorption
from ..errors import FormatError

__all__ = ["NAMED_TABLES", "NAMED_TABLE_DIR", "resolve_table", "read_ebl_table", "with_ebl_table"]


NAMED_TABLES = {
    "dominguez11": ("https://github.com/gammapy/gammapy-data/raw/HEAD/ebl/ebl_dominguez11.fits.gz",
                    "840a6d23cb03feeacd5d95ab18c70fd73a4240d5f8518e859d9ab6b9f0b2c7b1"),
}
"""EBL tables that ``model.ebl.table`` may name instead of a path: URL and pinned SHA-256."""

NAMED_TABLE_DIR = Path("data") / "ebl"
"""Where a named table is fetched to (relative to the working directory)."""


def resolve_table(table, fetch: bool = True) -> Path:
    """The file of ``model.ebl.table``: a path as given, or for a name of :data:`NAMED_TABLES`
    that is not a file: ``$GAMMAPY_DATA/ebl/ebl_<name>.fits.gz`` if present, else
    ``data/ebl/ebl_<name>.fits.gz``, fetched there (SHA-256 checked) when absent and ``fetch``."""
    p = Path(table)
    if str(table) not in NAMED_TABLES or p.exists():
        return p
    fname = f"ebl_{table}.fits.gz"
    if os.environ.get("GAMMAPY_DATA") and (Path(os.environ["GAMMAPY_DATA"]) / "ebl" / fname).is_file():
        return Path(os.environ["GAMMAPY_DATA"]) / "ebl" / fname
    dest = NAMED_TABLE_DIR / fname
    if fetch and not dest.is_file():
        from .download import download_file

        url, sha256 = NAMED_TABLES[str(table)]
        download_file(url, dest, sha256, howto=f"download {url} by hand and set model.ebl.table to its path")
    return dest


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int, source: str) -> EBLAbsorption:
    from .xspec_table import read_xspec_table

    return EBLAbsorption.from_table(read_xspec_table(path), source=source)


def read_ebl_table(table) -> EBLAbsorption:
    """The EBL table of ``model.ebl.table`` (a path, or a name of :data:`NAMED_TABLES`:
    :func:`resolve_table`), read once per process and file version; an
    :class:`~extspec.ebl.EBLAbsorption` is returned as it is.

    Raises FormatError (one line naming the file) for a missing or malformed table,
    DownloadError for a named table that cannot be fetched.
    """
    if isinstance(table, EBLAbsorption):
        return table
    p = resolve_table(table)
    known = ", ".join(sorted(NAMED_TABLES))
    if p.is_dir():
        raise FormatError(f"EBL table {p}: is a directory, not a table file (give the file, or one of the tables "
                          f"known by name: {known})")
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FormatError(f"EBL table {p}: no such file, and not one of the tables known by name ({known})") from None
    except OSError as exc:
        raise FormatError(f"EBL table {p}: cannot read it ({exc.strerror})") from None
    return _read(str(p), st.st_mtime_ns, st.st_size, str(table))


def with_ebl_table(model_cfg):
    """``model_cfg`` (a ``model`` block) with its ``ebl.table`` read (:func:`read_ebl_table`),
    as a new mapping; a block without ``ebl`` (or a model type name) is returned as it is."""
    if not isinstance(model_cfg, dict) or not model_cfg.get("ebl"):
        return model_cfg
    ebl = model_cfg["ebl"]
    return {**model_cfg, "ebl": {**ebl, "table": read_ebl_table(ebl["table"])}}
