"""Text-to-value coercion of raw configs (YAML 1.1 and ``snakemake --config`` give text).

This module imports only the standard library.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["coerce_values", "normalise"]


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


_INT_RE = re.compile(r"^[-+]?\d+$")


_DECIMAL_RE = re.compile(r"^[-+]?(\d+\.\d*|\.\d+)$")


_WORDS = {"true": True, "false": False, "null": None, "~": None}


_STRING_KEYS = {"name", "results_dir", "datastore", "on_region", "exclusion_regions", "external_spectra"}


_TEXT_IN_BLOCK = {"download": {"url", "sha256", "dest", "manifest"}}
"""Keys of a block whose values are text; the block's other keys (download.auto, .timeout) are
coerced like any other key."""


def coerce_values(obj, top_key=None):
    """Numbers and booleans that arrive as text become numbers and booleans.

    YAML 1.1 reads ``1e-12`` (no dot) as a string, and Snakemake's ``--config key=[...]``
    reads list and mapping values as text (``obs_ids=[20326,20327]`` gives
    ``['20326', '20327']``).  Outside the keys whose values are text (name, paths, regions,
    the download block's url, sha256, dest and manifest), strings that are integers, decimals,
    ``true``/``false`` or ``null`` become those values.
    """
    if isinstance(obj, dict):
        text = _TEXT_IN_BLOCK.get(top_key, ())
        return {
            k: (v if (top_key is None and k in _STRING_KEYS) or k in text else coerce_values(v, top_key or k))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [coerce_values(v, top_key) for v in obj]
    if isinstance(obj, datetime.date):  # YAML reads an unquoted ISO time as a datetime (light_curve.time_bins)
        if isinstance(obj, datetime.datetime) and obj.tzinfo is not None:
            obj = obj.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return obj.isoformat()
    if isinstance(obj, str):
        t = obj.strip()
        if _INT_RE.match(t):
            return int(t)
        if _FLOAT_RE.match(t) or _DECIMAL_RE.match(t):
            return float(t)
        if t.lower() in _WORDS:
            return _WORDS[t.lower()]
    return obj


def normalise(cfg: dict) -> dict:
    g = cfg.get("geom")
    if isinstance(g, dict) and isinstance(g.get("width"), (int, float)) and not isinstance(g.get("width"), bool):
        g["width"] = [float(g["width"]), float(g["width"])]
    return cfg
