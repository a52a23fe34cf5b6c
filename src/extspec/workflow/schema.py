"""The config schema and its error wording: reading a config against the schema.

The configuration is a plain dict (``config/config.yaml``), described by the JSON schema
``extspec/data/config.schema.yaml`` that ships inside the package (the workflow and the
command line validate against this one file, the only place defaults are written).

* :func:`read_config_file` reads one YAML file; :func:`load_config` checks a config against
  the schema (unknown keys, wrong types and ranges) and fills in every default.
* :func:`schema_defaults`: every default of the schema, as a config dict.
* ``_error_message``: a jsonschema error as one line naming the config key.

This module imports only the standard library at import time.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

from ..errors import ConfigError
from .coerce import coerce_values, normalise

__all__ = ["SCHEMA_PATH", "read_schema", "schema_defaults", "read_config_file", "load_config"]


SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "config.schema.yaml"
"""The configuration schema shipped with the package."""


def read_schema(schema=None) -> dict:
    """Load a schema (path or dict; default: the packaged one)."""
    if isinstance(schema, dict):
        return schema
    import yaml

    path = Path(schema) if schema is not None else SCHEMA_PATH
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config schema {path}: cannot read it ({exc.strerror})") from None


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _fmt(value) -> str:
    s = json.dumps(value) if not isinstance(value, str) else repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _describe(schema: dict, root: dict) -> str:
    """Short words for what a (sub)schema accepts, for 'expected ...' messages."""
    if "$ref" in schema:
        schema = _resolve_ref(root, schema["$ref"])
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "oneOf" in schema:
        return " or ".join(_describe(s, root) for s in schema["oneOf"])
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join("null" if x == "null" else f"a {x}" for x in t)
    if t == "array":
        n = schema.get("minItems")
        if n is not None and n == schema.get("maxItems"):
            return f"a list of {n} {schema.get('items', {}).get('type', 'value')}s"
        return "a list"
    if t == "object":
        req = schema.get("required")
        return "a mapping" + (f" with {', '.join(req)}" if req else "")
    if t == "null":
        return "null"
    return f"a {t}" if t else "a valid value"


def _resolve_ref(root: dict, ref: str) -> dict:
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _error_message(err, root: dict) -> str:
    """One line naming the key, from a jsonschema ValidationError."""
    path = list(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        where = _key(path) if path else "the top level"
        return f"unknown config key '{_key(path + [extra[0]])}' (allowed in {where}: {', '.join(allowed)})"
    if v == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return f"config key '{_key(path + [missing[0]])}' is missing (it is required)"
    if v in ("oneOf", "anyOf"):
        # prefer the branch whose type matched, if any, for a precise message
        ctx = [e for e in err.context if e.validator != "type" and e.relative_schema_path]
        deeper = [e for e in ctx if len(e.absolute_path) > len(err.absolute_path)]
        if deeper:
            return _error_message(max(deeper, key=lambda e: len(e.absolute_path)), root)
        return f"config key '{_key(path)}': expected {_describe(err.schema, root)}, got {_fmt(err.instance)}"
    if v == "type":
        return f"config key '{_key(path)}': expected {_describe(err.schema, root)}, got {_fmt(err.instance)}"
    if v == "enum":
        return f"config key '{_key(path)}': {_fmt(err.instance)} is not one of {', '.join(map(str, err.validator_value))}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        rel = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return f"config key '{_key(path)}': must be {rel} {err.validator_value}, got {_fmt(err.instance)}"
    if v == "minItems" and err.schema.get("minItems") != err.schema.get("maxItems"):
        n = err.validator_value
        return (f"config key '{_key(path)}': needs at least {n} entr{'y' if n == 1 else 'ies'}, got "
                f"{len(err.instance)}: {_fmt(err.instance)}")
    if v in ("minItems", "maxItems"):
        return f"config key '{_key(path)}': expected {_describe(err.schema, root)}, got {_fmt(err.instance)}"
    if v == "uniqueItems":
        return f"config key '{_key(path)}': has duplicate entries"
    if v == "pattern":
        return f"config key '{_key(path)}': {_fmt(err.instance)} does not match {err.validator_value}"
    msg = str(err.message).splitlines()[0]
    return f"config key '{_key(path)}': {msg}"


def _validator_with_defaults(schema: dict):
    """A jsonschema validator class that also fills ``default`` values into the instance."""
    from jsonschema import validators

    base = validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]
    schema_root = schema

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if prop in instance:
                    continue
                if "default" in sub:
                    instance[prop] = copy.deepcopy(sub["default"])
                elif "$ref" in sub:
                    ref = _resolve_ref(schema_root, sub["$ref"])  # not validator.schema: a sub-schema under a $ref
                    if "default" in ref:
                        instance[prop] = copy.deepcopy(ref["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(base, {"properties": set_defaults})


_DEFAULTS = None


def schema_defaults() -> dict:
    """Every default of the schema, as a config dict (the schema is their only source).

    Computed once per process with the same default-filling validator as
    :func:`load_config` (imports jsonschema, ~0.2 s): the settings builders call it through
    :func:`extspec.workflow.settings.setting` only when a config lacks a key, which a validated
    config never does, so workflow jobs never pay for it.
    """
    return copy.deepcopy(_shared_defaults())


def schema_default(block: str, key: str | None = None):
    """The schema default of ``block`` (or of ``block.key``): :func:`schema_defaults`, copying
    only the value asked for."""
    value = _shared_defaults()[block]
    return copy.deepcopy(value if key is None else value[key])


def _shared_defaults() -> dict:
    """The defaults, computed once per process; never handed out (callers may change theirs)."""
    global _DEFAULTS
    if _DEFAULTS is None:
        root = read_schema()
        filled: dict = {}
        for _ in _validator_with_defaults(root)(root).iter_errors(filled):
            pass  # only the filled-in defaults matter here ('name', 'on_region' have none)
        _DEFAULTS = filled
    return _DEFAULTS


def read_config_file(path) -> dict:
    """The raw mapping of one YAML config file (an empty file is an empty mapping)."""
    from ..io.yamlfile import load_yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot read it ({exc.strerror})") from None
    raw = load_yaml(text, f"config file {p}")  # a key given twice is refused (issue 19)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p}: expected a mapping of keys at the top level")
    return raw


def _first_nan(value, path: list):
    """The key path of the first NaN in a config (mappings and lists walked), or None.  Model
    ``parameters`` are left to :func:`extspec.start_values.check_start_values`, which refuses
    every non-finite start value and bound in its own words."""
    if isinstance(value, float) and math.isnan(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        if k == "parameters" and isinstance(v, dict):
            continue
        found = _first_nan(v, path + [k])
        if found is not None:
            return found
    return None


def load_config(path_or_dict, schema=None) -> dict:
    """Read a config (YAML path or dict), check it against the schema, fill every default.

    Returns a new dict; the argument is not modified.  Only the schema is checked here
    (see :func:`~extspec.workflow.config.validate_config` for the rest).

    Raises
    ------
    ConfigError
        Unreadable file, unknown key, wrong type or value (one line naming the key).
    """
    raw = read_config_file(path_or_dict) if isinstance(path_or_dict, (str, os.PathLike)) else path_or_dict
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping of keys at the top level")
    cfg = coerce_values(copy.deepcopy(dict(raw)))
    nan = _first_nan(cfg, [])
    if nan is not None:  # NaN passes every bound of the schema (each comparison with it is false)
        raise ConfigError(f"config key '{_key(nan)}': must be a number, got nan")
    root = read_schema(schema)
    cls = _validator_with_defaults(root)
    validator = cls(root)
    errors = list(validator.iter_errors(cfg))
    if errors:
        from jsonschema.exceptions import best_match

        raise ConfigError(_error_message(best_match(errors), root))
    return normalise(cfg)
