"""Combining raw configs: ``--configfile`` overlays and the entries of ``analyses``.

* :func:`merge_configs`, :func:`read_config_files`, :func:`apply_overlay`: the config that
  Snakemake runs, from several files;
* :func:`analysis_configs`, :func:`validate_analyses`: one validated config per analysis,
  errors naming the analysis.

This module imports only the standard library at import time.
"""

from __future__ import annotations

import copy
import os
import re

from ..errors import ConfigError
from .checks import validate_config
from .coerce import coerce_values
from .schema import _fmt, load_config, read_config_file

__all__ = ["GLOBAL_KEYS", "RESERVED_NAMES", "merge_configs", "read_config_files", "apply_overlay",
           "analysis_configs", "validate_analyses"]


GLOBAL_KEYS = ("results_dir", "download", "analyses", "joint")
"""Keys shared by every analysis of a config: they may not be set inside ``analyses``.
(``datastore`` is set at the top level for every analysis, and an ``analyses`` entry may
set its own: e.g. one analysis per instrument.)"""

NOT_ANALYSIS_KEYS = ("analyses", "joint")
"""Top-level keys that are not part of any analysis's config."""


_REPLACED_BLOCKS = ("model",)
"""Blocks an ``analyses`` entry replaces as a whole (a model's parameters depend on its type)."""


def merge_configs(*raws: dict, replace: tuple = ()) -> dict:
    """Merge raw configs, later ones winning: nested mappings key by key, lists replaced.

    The same rule as Snakemake's ``--configfile`` over the Snakefile's ``configfile:``, so
    ``extspec check config/config.yaml my.yaml`` checks what ``snakemake --configfile
    my.yaml`` runs.  Mappings under a key in ``replace`` are replaced whole instead.
    """
    out: dict = {}
    for raw in raws:
        for key, value in raw.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in replace:
                out[key] = merge_configs(out[key], value, replace=replace)
            else:
                out[key] = copy.deepcopy(value)
    return out


def read_config_files(paths) -> dict:
    """The raw config of one or more YAML files, combined as the workflow combines
    ``config/config.yaml`` (the first) and ``--configfile`` files (the others):
    :func:`merge_configs`, then :func:`apply_overlay`."""
    raws = [read_config_file(p) for p in paths]
    return apply_overlay(merge_configs(*raws), merge_configs(*raws[1:]) if len(raws) > 1 else None)


def apply_overlay(merged: dict, overlay: dict | None) -> dict:
    """The config Snakemake merged, with the rule for switching models applied.

    Snakemake merges ``--configfile`` files and ``--config`` values (``overlay``) over
    ``config/config.yaml`` key by key, so the default power-law parameters would survive a
    switch to another model.  Rule: an overlay that sets ``model.type`` gives the whole
    ``model`` block -- parameters it does not list take the model's own defaults, none come
    from the base file.  An overlay setting only ``model.parameters`` still merges into the
    base model.
    """
    out = dict(merged)
    m = (overlay or {}).get("model")
    if isinstance(m, dict) and "type" in m:
        out["model"] = copy.deepcopy(m)
    return out


RESERVED_NAMES = ("download", "logs", "summary.ecsv", "summary.html")
"""Analysis names that would collide with other entries of ``results_dir``."""


def analysis_configs(raw: dict) -> dict:
    """The (unvalidated) config of each analysis, ``{name: config}``, in the config's order.

    Without ``analyses`` the config is one analysis, named by ``name``.  With it, each entry
    is the top-level keys (except ``name``) with the entry's keys merged over them: mappings
    key by key, lists and the ``model`` block replaced as a whole; the analysis is named by
    its key.  The keys shared by all analyses (``GLOBAL_KEYS``) may not be set in an entry.
    """
    analyses = raw.get("analyses")
    if not analyses:
        return {raw.get("name"): {k: v for k, v in raw.items() if k not in NOT_ANALYSIS_KEYS}}
    if not isinstance(analyses, dict):
        raise ConfigError(f"config key 'analyses': expected a mapping of analysis name to keys, got {_fmt(analyses)}")
    base = {k: v for k, v in raw.items() if k not in (*NOT_ANALYSIS_KEYS, "name")}
    out = {}
    for name, over in analyses.items():
        over = {} if over is None else over
        if not isinstance(over, dict):
            raise ConfigError(f"config key 'analyses.{name}': expected a mapping of config keys, got {_fmt(over)}")
        for k in over:
            if k in GLOBAL_KEYS:
                raise ConfigError(f"config key 'analyses.{name}.{k}': set it at the top level (shared by every analysis)")
            if k == "name":
                raise ConfigError(f"config key 'analyses.{name}.name': an analysis is named by its key under analyses")
        out[str(name)] = {**merge_configs(base, over, replace=_REPLACED_BLOCKS), "name": str(name)}
    return out


def _override(raw: dict, name: str) -> dict | None:
    """The ``analyses`` entry of ``name`` (None for a config without ``analyses``)."""
    if not raw.get("analyses"):
        return None
    return {str(k): v for k, v in raw["analyses"].items()}.get(name) or {}


def _in_analysis(exc: ConfigError, name: str, over: dict | None) -> ConfigError:
    """Re-word a ConfigError of one analysis so that it names the analysis."""
    msg = str(exc)
    if over is None:
        return exc
    m = re.search(r"config key '([^'.\[]+)", msg)
    if m and m.group(1) in over:
        return ConfigError(msg.replace("config key '", f"config key 'analyses.{name}.", 1))
    return ConfigError(f"analysis {name}: {msg}")


def validate_analyses(raw, check_datastore: bool = False, schema=None) -> dict:
    """Validate every analysis of a config; ``{name: config with defaults}`` in order.

    Each analysis of :func:`analysis_configs` is checked by :func:`validate_config`; errors
    name the analysis (``config key 'analyses.crab.geom.binsz': ...``).
    """
    if isinstance(raw, (str, os.PathLike)):
        raw = load_config(raw, schema)
    raw = coerce_values(copy.deepcopy(dict(raw)))
    if raw.get("analyses"):
        load_config(raw, schema)  # the top level alone: unknown keys, types
    out = {}
    for name, cfg in analysis_configs(raw).items():
        over = _override(raw, name)
        try:
            if name in RESERVED_NAMES:
                raise ConfigError(f"config key 'name': {name!r} is reserved (it names another entry of results_dir)")
            out[name] = validate_config(cfg, check_datastore=check_datastore, schema=schema)
        except ConfigError as exc:
            raise _in_analysis(exc, name, over) from None
    return out
