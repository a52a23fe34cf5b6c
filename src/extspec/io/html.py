"""A self-contained HTML page holding one table (the multi-analysis summary)."""

from __future__ import annotations

import html
import math

__all__ = ["table_html"]

_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right;vertical-align:top}"
          "th{background:#eee}td.text{text-align:left}tr.bad td{background:#fdd}")


def _cell(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "&ndash;"
        return html.escape(f"{v:.4g}")
    return html.escape(str(v))


def table_html(title: str, columns: dict, rows: list[dict], notes: list[str] = (), bad=None) -> str:
    """HTML text: ``title``, a table of ``rows`` with the columns (name -> unit) of ``columns``,
    then ``notes`` (paragraphs).  Rows for which ``bad(row)`` is true are highlighted."""
    head = "".join(f"<th>{html.escape(n)}" + (f"<br>[{html.escape(u)}]" if u else "") + "</th>"
                   for n, u in columns.items())
    body = []
    for r in rows:
        cls = ' class="bad"' if bad is not None and bad(r) else ""
        cells = "".join(
            f'<td class="text">{_cell(r[n])}</td>' if isinstance(r[n], str) else f"<td>{_cell(r[n])}</td>"
            for n in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    paras = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n<table><tr>{head}</tr>\n"
            + "\n".join(body) + f"\n</table>{paras}</body></html>\n")
