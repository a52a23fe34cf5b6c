"""A minimal ECSV 1.0 writer for flat tables of numbers, booleans and strings.

Writing the products' tables does not need ``astropy.table`` (whose import costs ~0.4 s in
every aggregate job); the files are standard ECSV and read back with
``astropy.table.Table.read(path, format="ascii.ecsv")``.
"""

from __future__ import annotations

import math

import yaml

__all__ = ["ecsv_text", "read_ecsv_rows"]


def _dtype(values) -> str:
    if values and all(isinstance(v, (list, tuple)) for v in values):
        return "string"  # a multidimensional column (see _subtype)
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float64"
    return "string"


def _subtype(values) -> str | None:
    """ECSV subtype of a column of equal-length lists (e.g. ``int64[3]``), else None."""
    if not values or not all(isinstance(v, (list, tuple)) for v in values):
        return None
    n = {len(v) for v in values}
    if len(n) != 1:
        raise ValueError("a list-valued ECSV column needs lists of one length")
    return f"{_dtype([x for v in values for x in v]) if n != {0} else 'float64'}[{n.pop()}]"


def _fmt(v, dtype: str) -> str:
    if isinstance(v, (list, tuple)):  # multidimensional column: JSON text of the values
        import json

        text = json.dumps([x if not (isinstance(x, float) and math.isnan(x)) else None for x in v],
                          separators=(",", ":"))
        return '"' + text.replace('"', '""') + '"' if " " in text or '"' in text else text
    if dtype == "bool":
        return "True" if v else "False"
    if dtype == "float64":
        v = float(v)
        return "nan" if math.isnan(v) else repr(v)
    if dtype == "int64":
        return str(int(v))
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if (" " in s or '"' in s or not s) else s


def ecsv_text(rows: list[dict], units: dict[str, str], meta: dict | None = None,
              dtypes: dict[str, str] | None = None) -> str:
    """ECSV text of ``rows`` with the columns (and their order) of ``units``.

    Parameters
    ----------
    rows : list of dict
        One dict per row, keyed by column name.
    units : dict
        Column name -> unit string ("" for none); defines the columns.
    meta : dict, optional
        Table metadata (YAML-serialisable plain types).
    dtypes : dict, optional
        Column name -> ECSV datatype for empty tables (default float64).
    """
    names = list(units)
    cols = []
    for n in names:
        vals = [r[n] for r in rows]
        dt = _dtype(vals) if vals else (dtypes or {}).get(n, "float64")
        col = {"name": n, "datatype": dt}
        sub = _subtype(vals)
        if sub:
            col["subtype"] = sub
        if units[n]:
            col["unit"] = units[n]
        cols.append(col)
    header = {"datatype": cols, "meta": meta or {}, "schema": "astropy-2.0"}
    lines = ["# %ECSV 1.0", "# ---"]
    lines += ["# " + ln for ln in yaml.safe_dump(header, sort_keys=False, default_flow_style=None).splitlines()]
    lines.append(" ".join(names))
    for r in rows:
        lines.append(" ".join(_fmt(r[n], c["datatype"]) for n, c in zip(names, cols)))
    return "\n".join(lines) + "\n"


def read_ecsv_rows(path) -> tuple[list[dict], dict]:
    """Rows (dicts of int, float, bool or str) and metadata of an ECSV file written by
    :func:`ecsv_text` (space-delimited, one header line of column names)."""
    import csv
    from pathlib import Path

    lines = Path(path).read_text().splitlines()
    head = [ln[2:] for ln in lines if ln.startswith("# ")][1:]
    header = yaml.safe_load("\n".join(head)) or {}
    types = {c["name"]: c.get("datatype", "string") for c in header.get("datatype", [])}
    body = [ln for ln in lines if not ln.startswith("#")]
    conv = {"int64": int, "float64": float, "bool": lambda v: v == "True", "string": str}
    reader = csv.reader(body, delimiter=" ", quotechar='"')
    names = next(reader, [])
    rows = [{n: conv.get(types.get(n, "string"), str)(v) for n, v in zip(names, r)} for r in reader]
    return rows, header.get("meta", {})
