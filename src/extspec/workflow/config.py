"""Analysis configuration: loading, defaults, validation and observation selection.

The configuration is a plain dict (``config/config.yaml``), described by the JSON schema
``extspec/data/config.schema.yaml`` that ships inside the package (the workflow and the
command line validate against this one file).

* :func:`load_config` reads a YAML file (or takes a dict) and fills in every default.
* :func:`validate_config` checks it against the schema (unknown keys, wrong types and ranges)
  and then what a schema cannot express: axes in order and the true axis covering the reco
  axis, regions parse and the ON region fits in the map geometry, the dispersion grid, a
  stacked range and flux-point edges that leave something to compute, model parameter
  names, and -- with ``check_datastore`` -- that the data store exists and holds every
  requested observation, each pointing close enough to see the ON region.
* :func:`selected_obs_ids` applies ``obs_ids`` and ``obs_cone`` to a data store.
* :func:`prepare_workflow` is what the Snakefile calls at parse time: everything above,
  cached on disk keyed by the config, the schema and the data-store index files, so that a
  no-op ``snakemake`` run imports neither astropy nor regions.

Every problem raises :class:`~extspec.errors.ConfigError` with a one-line message naming
the config key.  This module imports only the standard library at import time.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path

from ..errors import ConfigError, DataStoreError

__all__ = [
    "SCHEMA_PATH",
    "STAGE_KEYS",
    "load_config",
    "read_config_file",
    "merge_configs",
    "read_config_files",
    "validate_config",
    "selected_obs_ids",
    "has_dl3",
    "external_spectra",
    "stage_config",
    "settings_json",
    "read_settings",
    "analysis_configs",
    "validate_analyses",
    "prepare_workflow",
    "apply_overlay",
    "check_pointings",
    "check_output_dir",
    "setting_file_digests",
    "schema_defaults",
    "setting",
    "read_schema",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "config.schema.yaml"
"""The configuration schema shipped with the package."""

STAGE_KEYS = {
    "reduce": ("on_region", "exclusion_regions", "geom", "energy_axis", "energy_axis_true", "safe_mask", "spectrum",
               "background"),
    "stack": ("name", "on_region", "exclusion_regions", "geom", "energy_axis", "stacked", "maps"),
    "fit": ("name", "model", "fit"),
    "flux_points": ("name", "fit", "flux_points"),
    "cumulative": ("name", "cumulative"),
    "light_curve": ("name", "fit", "light_curve"),
}
"""Config keys each workflow stage depends on (its Snakemake ``params``); defined only here.

``reduce`` is the per-observation job: a change to those keys reruns the reductions and
therefore every aggregate through its inputs.  Keeping the aggregates' params this small
means that changing only ``model`` reruns only the fit and the flux points.
"""

GLOBAL_KEYS = ("results_dir", "datastore", "download", "analyses")
"""Keys shared by every analysis of a config: they may not be set inside ``analyses``."""

_REPLACED_BLOCKS = ("model",)
"""Blocks an ``analyses`` entry replaces as a whole (a model's parameters depend on its type)."""

_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_INT_RE = re.compile(r"^[-+]?\d+$")
_DECIMAL_RE = re.compile(r"^[-+]?(\d+\.\d*|\.\d+)$")
_WORDS = {"true": True, "false": False, "null": None, "~": None}
_STRING_KEYS = {"name", "results_dir", "datastore", "on_region", "exclusion_regions", "download",
                "external_spectra"}
_CACHE_VERSION = 2


# ------------------------------------------------------------------------------ schema --


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

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if prop in instance:
                    continue
                if "default" in sub:
                    instance[prop] = copy.deepcopy(sub["default"])
                elif "$ref" in sub:
                    ref = _resolve_ref(validator.schema, sub["$ref"])
                    if "default" in ref:
                        instance[prop] = copy.deepcopy(ref["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(base, {"properties": set_defaults})


_DEFAULTS = None


def schema_defaults() -> dict:
    """Every default of the schema, as a config dict (the schema is their only source).

    Computed once per process with the same default-filling validator as
    :func:`load_config` (imports jsonschema, ~0.2 s): library functions call it through
    :func:`setting` only when a config they were given lacks a key, which a validated
    config never does, so workflow jobs never pay for it.
    """
    global _DEFAULTS
    if _DEFAULTS is None:
        root = read_schema()
        filled: dict = {}
        for _ in _validator_with_defaults(root)(root).iter_errors(filled):
            pass  # only the filled-in defaults matter here ('name', 'on_region' have none)
        _DEFAULTS = filled
    return copy.deepcopy(_DEFAULTS)


def setting(cfg: dict, block: str, key: str | None = None):
    """``cfg[block][key]`` (or ``cfg[block]``), the schema default where it is missing.

    For library functions that also take partial configs (``{"spectrum": {"method":
    "exact"}}``): the schema is read only for a missing key, never for a validated config.
    """
    b = cfg.get(block)
    if key is None:
        return b if block in cfg else schema_defaults()[block]
    if isinstance(b, dict) and key in b:
        return b[key]
    return schema_defaults()[block][key]


def _coerce_floats(obj, top_key=None):
    """Numbers and booleans that arrive as text become numbers and booleans.

    YAML 1.1 reads ``1e-12`` (no dot) as a string, and Snakemake's ``--config key=[...]``
    reads list and mapping values as text (``obs_ids=[20326,20327]`` gives
    ``['20326', '20327']``).  Outside the keys whose values are text (name, paths, regions,
    download), strings that are integers, decimals, ``true``/``false`` or ``null`` become
    those values.
    """
    if isinstance(obj, dict):
        return {
            k: (v if (top_key is None and k in _STRING_KEYS) else _coerce_floats(v, top_key or k))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_coerce_floats(v, top_key) for v in obj]
    if isinstance(obj, _dt.date):  # YAML reads an unquoted ISO time as a datetime (light_curve.time_bins)
        if isinstance(obj, _dt.datetime) and obj.tzinfo is not None:
            obj = obj.astimezone(_dt.timezone.utc).replace(tzinfo=None)
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


def _normalise(cfg: dict) -> dict:
    g = cfg.get("geom")
    if isinstance(g, dict) and isinstance(g.get("width"), (int, float)) and not isinstance(g.get("width"), bool):
        g["width"] = [float(g["width"]), float(g["width"])]
    return cfg


# ------------------------------------------------------------------------------ public --


def read_config_file(path) -> dict:
    """The raw mapping of one YAML config file (an empty file is an empty mapping)."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"config file {p}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else ""
        raise ConfigError(f"config file {p}{where}: not valid YAML") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p}: expected a mapping of keys at the top level")
    return raw


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


def load_config(path_or_dict, schema=None) -> dict:
    """Read a config (YAML path or dict), check it against the schema, fill every default.

    Returns a new dict; the argument is not modified.  Only the schema is checked here
    (see :func:`validate_config` for the rest).

    Raises
    ------
    ConfigError
        Unreadable file, unknown key, wrong type or value (one line naming the key).
    """
    raw = read_config_file(path_or_dict) if isinstance(path_or_dict, (str, os.PathLike)) else path_or_dict
    if not isinstance(raw, dict):
        raise ConfigError("config: expected a mapping of keys at the top level")
    cfg = _coerce_floats(copy.deepcopy(dict(raw)))
    root = read_schema(schema)
    cls = _validator_with_defaults(root)
    validator = cls(root)
    errors = list(validator.iter_errors(cfg))
    if errors:
        from jsonschema.exceptions import best_match

        raise ConfigError(_error_message(best_match(errors), root))
    return _normalise(cfg)


def _check_axis(cfg, key):
    ax = cfg[key]
    if not ax["min"] < ax["max"]:
        raise ConfigError(f"config key '{key}': min ({ax['min']}) must be below max ({ax['max']})")


def _check_increasing(values, key):
    if values is not None and any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"config key '{key}': values must increase, got {values}")


def _check_model(block, key):
    from ..models import check_param_names, get_model

    if isinstance(block, str):
        block = {"type": block, "parameters": {}}
    try:
        m = get_model(block["type"])
    except ConfigError as exc:
        raise ConfigError(f"config key '{key}.type': {exc}") from None
    check_param_names(m, block.get("parameters", {}), f"{key}.parameters")
    for name, p in block.get("parameters", {}).items():
        if isinstance(p, dict):
            lo, hi, v = p.get("min"), p.get("max"), p["value"]
            if lo is not None and hi is not None and not lo < hi:
                raise ConfigError(f"config key '{key}.parameters.{name}': min must be below max")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"config key '{key}.parameters.{name}': value {v} outside [min, max]")


TRUE_AXIS_MARGIN = 1.5
"""The true-energy axis must reach from ``energy_axis.min / 1.5`` to ``energy_axis.max * 1.5``
(about 0.18 decade beyond the reconstructed axis on each side): events reconstructed in the
outer reco bins come from true energies up to a few energy resolutions (10-30 %) away, and a
true axis cut at the reco edges drops them from the prediction and biases the fit."""


def _check_true_axis(cfg) -> None:
    """The true-energy axis covers the reco axis with :data:`TRUE_AXIS_MARGIN`."""
    r, t = cfg["energy_axis"], cfg["energy_axis_true"]
    lo, hi = r["min"] / TRUE_AXIS_MARGIN, r["max"] * TRUE_AXIS_MARGIN
    if t["min"] > lo * (1 + 1e-9) or t["max"] < hi * (1 - 1e-9):
        raise ConfigError(
            f"config key 'energy_axis_true': [{t['min']:g}, {t['max']:g}] TeV does not cover the reco axis "
            f"[{r['min']:g}, {r['max']:g}] TeV with the margin of {TRUE_AXIS_MARGIN:g}x; it must span at least "
            f"[{lo:.4g}, {hi:.4g}] TeV (events migrate from true energies outside the reco range)"
        )


def _reco_edges(cfg):
    from ..geometry import make_energy_axis

    ax = cfg["energy_axis"]
    return make_energy_axis(ax["min"], ax["max"], ax["nbins"]).edges


def _check_stacked_range(cfg) -> None:
    """``stacked.energy_range`` holds at least one whole reco-energy bin."""
    from ..safe_mask import bins_inside

    er = cfg["stacked"]["energy_range"]
    if er is None:
        return
    if not er[0] < er[1]:
        raise ConfigError(f"config key 'stacked.energy_range': min must be below max, got {er}")
    edges = _reco_edges(cfg)
    if not bins_inside(edges, *er).any():
        raise ConfigError(
            f"config key 'stacked.energy_range': [{er[0]:g}, {er[1]:g}] TeV holds no whole bin of the reco "
            f"energy axis (edges {', '.join(f'{e:.3g}' for e in edges)} TeV)"
        )


def _check_flux_point_edges(cfg, block: str = "flux_points", what: str = "flux point") -> None:
    """``<block>.energy_edges`` increase and, snapped to reco edges, make at least one group."""
    from ..fluxpoints import snap_edges

    fe = cfg[block]["energy_edges"]  # increasing: checked by validate_config
    if fe is None:
        return
    edges = _reco_edges(cfg)
    if len(snap_edges(fe, edges)) < 2:
        raise ConfigError(
            f"config key '{block}.energy_edges': {fe} TeV lie outside the reco energy axis "
            f"[{edges[0]:.3g}, {edges[-1]:.3g}] TeV or within one of its bins: no {what} would remain"
        )


MAX_TIME_BINS = 100_000
"""More light-curve time bins than this are refused (a typo in width_s)."""


def _check_light_curve(cfg) -> None:
    """``light_curve``: runs to bin, energy edges, and time bins that parse and are ordered."""
    lc = cfg.get("light_curve")
    if lc is None:
        return
    if not has_dl3(cfg):
        raise ConfigError("config key 'light_curve': needs observations reduced from DL3 (obs_ids or obs_cone); "
                          "external spectra carry no event times")
    _check_increasing(lc["energy_edges"], "light_curve.energy_edges")
    _check_flux_point_edges(cfg, "light_curve", "light-curve energy bin")
    tb = lc["time_bins"]
    if isinstance(tb, str):
        return
    from ..timebins import SECONDS_PER_DAY, parse_utc

    def mjd(text, key):
        try:
            return parse_utc(text)
        except ValueError:
            raise ConfigError(f"config key 'light_curve.time_bins{key}': {text!r} is not an ISO 8601 UTC time "
                              "(e.g. 2006-07-29T20:00:00)") from None

    if isinstance(tb, dict):
        start, stop = mjd(tb["start"], ".start"), mjd(tb["stop"], ".stop")
        if not start < stop:
            raise ConfigError(f"config key 'light_curve.time_bins': start {tb['start']} is not before stop {tb['stop']}")
        n = (stop - start) * SECONDS_PER_DAY / tb["width_s"]
        if n > MAX_TIME_BINS:
            raise ConfigError(f"config key 'light_curve.time_bins.width_s': {tb['width_s']:g} s makes {n:.0f} bins "
                              f"(more than {MAX_TIME_BINS})")
        return
    previous = None
    for i, (a, b) in enumerate(tb):
        lo, hi = mjd(a, f"[{i}][0]"), mjd(b, f"[{i}][1]")
        if not lo < hi:
            raise ConfigError(f"config key 'light_curve.time_bins[{i}]': start {a} is not before stop {b}")
        if previous is not None and lo < previous:
            raise ConfigError(f"config key 'light_curve.time_bins[{i}]': starts at {a}, before the end of the "
                              "previous bin (bins must be in time order and must not overlap)")
        previous = hi


def _region_center_tuple(region) -> tuple[float, float, str]:
    from ..skyregions import region_center

    c = region_center(region)
    return c.lon, c.lat, c.frame


def check_regions(cfg: dict) -> None:
    """Parse ``on_region`` and ``exclusion_regions``; the ON region must fit in the geometry."""
    from ..cube import CubeSettings
    from ..skyregions import check_region_in_geom, parse_region, parse_regions

    on = parse_region(cfg["on_region"], "on_region")
    parse_regions(list(cfg.get("exclusion_regions") or []), "exclusion_regions")
    try:
        settings = CubeSettings.from_config(cfg, _region_center_tuple(on))
    except ValueError as exc:
        raise ConfigError(f"config key 'geom': {str(exc).splitlines()[0]}") from None
    _check_edisp_grid(cfg, settings)
    try:
        check_region_in_geom(on, settings.geom, "on_region")
    except ConfigError as exc:
        g, want = settings.geom, cfg["geom"]["width"]
        if all(abs(a - b) <= 1e-9 * b for a, b in zip(g.width, want)):
            raise
        if _fits(on, _geom_with_width(settings.geom, want)):
            raise ConfigError(
                f"config key 'geom.binsz': {g.binsz:g} deg does not divide geom.width {want}: the map has "
                f"{g.npix[0]} x {g.npix[1]} pixels, {g.width[0]:.4g} x {g.width[1]:.4g} deg (whole pixels), and "
                f"on_region does not fit in that; choose a binsz that divides the width"
            ) from None
        raise exc from None


def _geom_with_width(geom, width):
    """``geom`` with enough pixels to cover ``width`` (deg per axis) at its pixel size."""
    from dataclasses import replace

    import numpy as np

    return replace(geom, npix=tuple(int(np.ceil(w / geom.binsz - 1e-9)) for w in width))


def _fits(region, geom) -> bool:
    from ..skyregions import check_region_in_geom

    try:
        check_region_in_geom(region, geom, "on_region")
    except ConfigError:
        return False
    return True


def _check_edisp_grid(cfg, settings) -> None:
    """The energy-dispersion grid (``geom.edisp_binsz``) has at least one pixel per axis."""
    g = settings.edisp_geom
    if min(g.npix) < 1:
        w = settings.geom.width
        raise ConfigError(
            f"config key 'geom.edisp_binsz': {settings.edisp_binsz:g} deg is too large for the map "
            f"({w[0]:.4g} x {w[1]:.4g} deg): the dispersion grid (round(width / edisp_binsz) pixels) would "
            f"be empty; use at most {min(w):.4g}"
        )


def validate_config(cfg, check_datastore: bool = True, schema=None) -> dict:
    """Validate a config completely and return it with defaults filled in.

    Parameters
    ----------
    cfg : dict or path
        The configuration (a dict as read from YAML, or a path to the YAML file).
    check_datastore : bool
        Also resolve the data store (:func:`extspec.io.datastore.resolve_datastore_path`)
        and check that it holds every selected observation.
    schema : path or dict, optional
        The JSON schema (default: the packaged copy).

    Raises
    ------
    ConfigError
        With one line naming the offending key.
    """
    cfg = load_config(cfg, schema)
    _check_axis(cfg, "energy_axis")
    _check_axis(cfg, "energy_axis_true")
    dl3 = has_dl3(cfg)
    if not dl3 and not cfg["external_spectra"]:
        raise ConfigError("config key 'obs_ids': no observations selected (give obs_ids, obs_cone "
                          "and/or external_spectra)")
    if dl3 and not cfg.get("on_region"):
        raise ConfigError("config key 'on_region' is missing (it is required when obs_ids or obs_cone "
                          "select observations)")
    _check_increasing(cfg["flux_points"]["energy_edges"], "flux_points.energy_edges")
    if dl3:  # the axes of the reductions (external spectra bring their own)
        _check_true_axis(cfg)
        _check_stacked_range(cfg)
        _check_flux_point_edges(cfg)
    _check_light_curve(cfg)
    _check_model(cfg["model"], "model")
    for i, alt in enumerate(cfg["fit"]["compare"]):
        _check_model(alt, f"fit.compare[{i}]")
    if not dl3:  # only external spectra: no data store, regions or reduction
        return cfg
    check_regions(cfg)
    if check_datastore:
        from ..io.datastore import open_datastore, resolve_datastore_path

        try:
            store = open_datastore(resolve_datastore_path(cfg["datastore"]))
        except DataStoreError as exc:
            raise ConfigError(f"config key 'datastore': {exc}") from None
        obs = selected_obs_ids(cfg, store)
        check_irf_needs(cfg, store, obs)
        check_pointings(cfg, store, obs)
    return cfg


def has_dl3(cfg: dict) -> bool:
    """Whether the config selects DL3 observations to reduce (``obs_ids`` or ``obs_cone``).

    Without them the analysis consists only of ``external_spectra``: no data store, ON
    region or reduction is needed.
    """
    return bool(cfg.get("obs_ids") or cfg.get("obs_cone"))


def external_spectra(patterns, base: str | os.PathLike | None = None) -> list[str]:
    """The PHA files of ``external_spectra``: each entry a path or a glob pattern.

    Relative paths are taken from ``base`` (default: the working directory) and returned
    as given (relative); matches of a pattern are sorted, and a file matched twice is kept
    once, at its first place.  A pattern matching no file raises ConfigError naming it.
    """
    import glob

    base = Path(base) if base is not None else Path.cwd()
    out = []
    for i, pat in enumerate(patterns or []):
        pat = os.path.expandvars(os.path.expanduser(str(pat)))
        full = pat if os.path.isabs(pat) else str(base / pat)
        if glob.has_magic(pat):
            hits = sorted(glob.glob(full))
            names = [h if os.path.isabs(pat) else os.path.relpath(h, base) for h in hits]
        else:
            names = [pat] if os.path.isfile(full) else []
        names = [n for n in names if os.path.isfile(n if os.path.isabs(n) else base / n)]
        if not names:
            raise ConfigError(f"config key 'external_spectra[{i}]': no file matches {pat!r}")
        out.extend(n for n in names if n not in out)
    return out


def selected_obs_ids(cfg: dict, store) -> list[int]:
    """The observations the config selects in ``store``: ``obs_ids`` then the ``obs_cone`` ones.

    The cone centre defaults to the ON region centre (in its frame).  Raises ConfigError
    for ids not in the store and for an empty selection.
    """
    cone = cfg.get("obs_cone")
    cone_arg = None
    if cone:
        if cone.get("center") is not None:
            lon, lat = cone["center"]
            frame = cone["frame"]
        else:
            from ..skyregions import parse_region

            lon, lat, frame = _region_center_tuple(parse_region(cfg["on_region"], "on_region"))
        cone_arg = {"lon": float(lon), "lat": float(lat), "radius": float(cone["radius"]), "frame": frame}
    try:
        obs = store.select(obs_ids=list(cfg.get("obs_ids") or []), cone=cone_arg)
    except DataStoreError as exc:
        raise ConfigError(f"config key 'obs_ids': {exc}") from None
    if not obs:
        if cone_arg:
            raise ConfigError(
                f"config key 'obs_cone': no observation of {store.path} points within "
                f"{cone_arg['radius']} deg of ({cone_arg['lon']:.3f}, {cone_arg['lat']:.3f}) {cone_arg['frame']}"
            )
        raise ConfigError("config key 'obs_ids': no observations selected")
    return obs


def check_pointings(cfg: dict, store, obs_ids) -> None:
    """Every selected run must see the ON region: its centre within the run's IRF offset range.

    Raises ConfigError naming every run that does not (e.g. a typo in ``on_region`` that puts
    the region far from all pointings), with its offset and the IRF's largest offset.
    """
    import numpy as np

    from ..sky import separation, transform_point
    from ..skyregions import parse_region

    lon, lat, frame = _region_center_tuple(parse_region(cfg["on_region"], "on_region"))
    ra0, dec0 = transform_point(float(lon), float(lat), frame, "icrs")
    ra, dec = store.pointings()
    row = {int(o): i for i, o in enumerate(store.obs_ids)}
    bad = []
    for o in obs_ids:
        if int(o) not in row:
            continue
        i = row[int(o)]
        off = float(separation(np.array([ra[i]]), np.array([dec[i]]), ra0, dec0)[0])
        try:
            limit = store.irf_offset_max(o)
        except DataStoreError:
            continue  # unreadable: its reduction job says so (and --keep-going finishes the others)
        if not off <= limit:
            bad.append(f"{o} ({off:.2f} > {limit:.2f} deg)")
    if bad:
        raise ConfigError(
            f"config key 'on_region': centre ({lon:.3f}, {lat:.3f}) {frame} lies outside the IRF offset range of "
            f"{len(bad)} of {len(obs_ids)} selected run(s): {', '.join(bad)}; check the region or drop those runs"
        )


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


def check_irf_needs(cfg: dict, store, obs_ids) -> None:
    """Settings that need an IRF some observation lacks: ``bkg-peak`` needs a background IRF."""
    methods = (cfg.get("safe_mask") or {}).get("methods") or []
    if "bkg-peak" in methods:
        missing = [int(o) for o in obs_ids if not store.has_hdu(int(o), "bkg")]
        if missing:
            few = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise ConfigError(
                f"config key 'safe_mask.methods': bkg-peak needs a background IRF, but obs {few} "
                f"{'has' if len(missing) == 1 else 'have'} none in {store.path}; drop bkg-peak "
                "(e.g. use aeff-default, aeff-max)"
            )


def stage_config(cfg: dict, stage: str) -> dict:
    """The part of ``cfg`` a workflow stage needs (see :data:`STAGE_KEYS`)."""
    return {k: cfg[k] for k in STAGE_KEYS[stage] if k in cfg}


def settings_json(settings: dict) -> str:
    """A step's settings as one line of JSON (keys sorted): the rules' params and the
    ``--settings`` argument of the command line (:func:`read_settings` reads it back)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


RESERVED_NAMES = ("download", "logs", "summary.ecsv", "summary.html")
"""Analysis names that would collide with other entries of ``results_dir``."""


def analysis_configs(raw: dict) -> dict:
    """The (unvalidated) config of each analysis, ``{name: config}``, in the config's order.

    Without ``analyses`` the config is one analysis, named by ``name``.  With it, each entry
    is the top-level keys (except ``name``) with the entry's keys merged over them: mappings
    key by key, lists and the ``model`` block replaced as a whole; the analysis is named by
    its key.  The keys shared by all analyses (:data:`GLOBAL_KEYS`) may not be set in an entry.
    """
    analyses = raw.get("analyses")
    if not analyses:
        return {raw.get("name"): {k: v for k, v in raw.items() if k != "analyses"}}
    if not isinstance(analyses, dict):
        raise ConfigError(f"config key 'analyses': expected a mapping of analysis name to keys, got {_fmt(analyses)}")
    base = {k: v for k, v in raw.items() if k not in ("analyses", "name")}
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
    raw = _coerce_floats(copy.deepcopy(dict(raw)))
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


def read_settings(text_or_path: str) -> dict:
    """A step's settings from JSON text (starting with ``{``) or from a JSON file."""
    text = str(text_or_path)
    what = "--settings"
    if not text.lstrip().startswith("{"):
        what = f"settings file {text}"
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read it ({exc.strerror})") from None
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{what}: expected a JSON object of config keys")
    return settings


# ------------------------------------------------------------------- workflow (cached) --


def _stat(path: Path):
    try:
        st = path.stat()
        return [str(path), st.st_mtime_ns, st.st_size]
    except OSError:
        return [str(path), None]


def _cache_key(raw: dict, schema_path: Path | None) -> str:
    from ..io.datastore import _INDEX_NAMES, candidate_datastore_paths

    from .. import code_identity

    parts = {
        "v": _CACHE_VERSION,
        "config": raw,
        "cwd": os.getcwd(),
        "schema": _stat(Path(schema_path) if schema_path else SCHEMA_PATH),
        # the package's sources by content (validation reaches into many modules)
        "code": code_identity(),
    }
    try:
        cands = candidate_datastore_paths(raw.get("datastore"))
    except Exception:
        cands = []
    parts["store"] = [_stat(p / n) for p in cands for names in _INDEX_NAMES.values() for n in names]
    try:
        analyses = list(analysis_configs(raw).values())
    except ConfigError:
        analyses = [raw]
    ext = []
    for a in analyses:
        try:
            ext += external_spectra(a.get("external_spectra") or [])
        except ConfigError:
            pass
    parts["external"] = [_stat(Path(p)) for p in ext]  # their headers name the sibling files
    regions = {}
    for a in analyses:
        try:  # by content, not mtime: region files are small, and a copied file keeps its mtime
            regions.update(setting_file_digests(a))
        except ConfigError:
            regions.update({str(f): _stat(f) for f in _setting_files(a)})
    parts["regions"] = regions
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _setting_files(cfg: dict) -> list[Path]:
    """The files that settings point to (``.reg`` ON/exclusion regions), in config order."""
    from ..skyregions import region_file

    entries = [cfg.get("on_region")] + list(cfg.get("exclusion_regions") or [])
    return [f for f in (region_file(e) for e in entries if isinstance(e, str)) if f is not None]


def setting_file_digests(cfg: dict) -> dict:
    """``{path: sha256}`` of every file a setting points to (:func:`_setting_files`).

    The workflow puts them into the rules' ``params``, so editing a region file reruns the
    reductions that read it, exactly as editing the setting itself would.
    """
    out = {}
    for f in _setting_files(cfg):
        try:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(f"region file {f}: cannot read it ({exc.strerror})") from None
    return out


def check_output_dir(cfg: dict) -> None:
    """``<results_dir>/<name>`` can be written: its nearest existing folder takes a probe file.

    Raises ConfigError naming ``results_dir`` and the folder (read-only, not a folder, no
    permission) instead of letting every job fail with a traceback.  Creates nothing.
    """
    import tempfile

    target = Path(cfg["results_dir"]) / cfg["name"]
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"config key 'results_dir': {probe} is not a folder, cannot write {target} there")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".extspec-write-test"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"config key 'results_dir': cannot write into {probe} ({exc.strerror or exc}); "
            f"outputs go to {target}"
        ) from None


def prepare_workflow(raw: dict, schema=None, cache_dir: str | os.PathLike | None = ".snakemake/extspec") -> dict:
    """Everything the Snakefile needs at parse time, validated and cached.

    Returns a dict with

    ``config``
        the keys shared by every analysis (:data:`GLOBAL_KEYS` but ``analyses``), defaults
        filled in;
    ``analyses``
        ``{name: {"config": ..., "obs_ids": [...]}}``: each analysis's validated config with
        defaults filled in and its selected observations (list of int), in the config's
        order (one entry, named by ``name``, for a config without ``analyses``);
    ``datastore``
        the data store directory (str), or None when it is missing;
    ``datastore_error``
        the one-line message saying where the store was looked for and how to get it
        (None when found) -- the workflow reports it only when a job needs the data, so
        that ``snakemake download`` still works without a store;
    ``obs_files``
        ``{str(obs_id): [file, ...]}``, the DL3 files each selected observation is read from;
    ``code``
        ``extspec.code_identity()``, for the rules' ``params`` (a changed library reruns the
        jobs; ``--rerun-triggers mtime`` opts out).

    Each analysis entry also has ``external``: one ``{"pha", "files", "obs_id"}`` per set of
    its ``external_spectra`` (``files``: its PHA, BKG, ARF and RMF paths, the inputs of the
    rules that read it), and ``provenance``: ``{"code": ..., "files":
    setting_file_digests(config)}``, what its products depend on beyond the config values.
    Analyses of only external spectra (no ``obs_ids``/``obs_cone``) need no data store; a
    config of only such analyses does not look for one.

    The result is stored as JSON in ``cache_dir`` under a key made of the raw config,
    the working directory, the schema, this package's sources and the size and mtime of the
    data-store index files; a later call with the same key reads it back without importing
    jsonschema, astropy or regions.  The output folder (:func:`check_output_dir`) is checked
    on every call, cached or not.  Raises ConfigError (one line) for an invalid config.
    """
    out = _prepare_workflow(raw, schema, cache_dir)
    for a in out["analyses"].values():
        check_output_dir(a["config"])
    return out


def _prepare_workflow(raw: dict, schema=None, cache_dir: str | os.PathLike | None = ".snakemake/extspec") -> dict:
    """The cached part of :func:`prepare_workflow`."""
    raw = _coerce_floats(copy.deepcopy(dict(raw)))
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"config-{_cache_key(raw, schema)}.json"
        try:
            return json.loads(cache_file.read_text())
        except (OSError, ValueError):
            pass
    cfgs = validate_analyses(raw, check_datastore=False, schema=schema)
    from .. import code_identity

    code = code_identity()
    first = next(iter(cfgs.values()))
    shared = {k: first[k] for k in GLOBAL_KEYS if k in first}
    out = {"config": shared, "analyses": {}, "datastore": None, "datastore_error": None, "obs_files": {},
           "code": code}
    for name, cfg in cfgs.items():
        try:
            external = _external_sets(cfg)
            digests = setting_file_digests(cfg)
        except ConfigError as exc:
            raise _in_analysis(exc, name, _override(raw, name)) from None
        out["analyses"][name] = {"config": cfg, "obs_ids": [], "external": external,
                                 "provenance": {"code": code, "files": digests}}
    if not any(has_dl3(c) for c in cfgs.values()):
        _write_cache(cache_file, out)
        return out
    from ..io.datastore import open_datastore, resolve_datastore_path

    try:
        root = resolve_datastore_path(shared["datastore"])
    except DataStoreError as exc:
        out["datastore_error"] = str(exc)
        return out
    try:
        store = open_datastore(root)
    except DataStoreError as exc:
        raise ConfigError(f"config key 'datastore': {exc}") from None
    files = {}
    for name, cfg in cfgs.items():
        try:
            obs = selected_obs_ids(cfg, store) if has_dl3(cfg) else []
            check_irf_needs(cfg, store, obs)
            check_pointings(cfg, store, obs)
            dup = set(obs) & {e["obs_id"] for e in out["analyses"][name]["external"]}
            if dup:
                e = next(e for e in out["analyses"][name]["external"] if e["obs_id"] in dup)
                raise ConfigError(f"config key 'external_spectra': {e['pha']} has obs id {e['obs_id']}, "
                                  "also selected by obs_ids/obs_cone")
        except ConfigError as exc:
            raise _in_analysis(exc, name, _override(raw, name)) from None
        out["analyses"][name]["obs_ids"] = obs
        for o in obs:
            if str(o) in files:
                continue
            try:
                fl = [str(p) for p in store.obs_files(o)]
                for optional in ("bkg", "rad_max"):
                    if store.has_hdu(o, optional):
                        b = str(store.hdu_location(o, optional)[0])
                        if b not in fl:
                            fl.append(b)
            except DataStoreError as exc:
                raise ConfigError(f"config key 'obs_ids': {exc}") from None
            files[str(o)] = fl
    out.update(datastore=str(root), obs_files=files)
    _write_cache(cache_file, out)
    return out


def _write_cache(cache_file, out: dict) -> None:
    if cache_file is None:
        return
    try:
        from ..io.atomic import write_atomic

        write_atomic(cache_file, json.dumps(out))
    except OSError:
        pass


def _external_sets(cfg: dict) -> list[dict]:
    """``[{"pha", "files", "obs_id"}]`` of each ``external_spectra`` set (files: PHA, BKG, ARF, RMF)."""
    from ..errors import FormatError
    from ..io.ogip import spectrum_files

    out, seen = [], {}
    for pha in external_spectra(cfg.get("external_spectra") or []):
        try:
            obs_id, files = spectrum_files(pha)
        except FormatError as exc:
            raise ConfigError(f"config key 'external_spectra': {exc}") from None
        if obs_id in seen:
            raise ConfigError(f"config key 'external_spectra': {pha} and {seen[obs_id]} have the same obs id "
                              f"{obs_id}")
        seen[obs_id] = pha
        out.append({"pha": str(pha), "files": [str(f) for f in files], "obs_id": int(obs_id)})
    return out
