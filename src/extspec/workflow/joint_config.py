"""The ``joint`` block of a config: joint fits across analyses, checked and with defaults.

``joint: {crab_joint: {analyses: [crab_hess, crab_magic], model: {...}, systematics: {...}}}``
names fits of one model to the spectra of several analyses.  :func:`validate_joint` checks
the block against the schema (``joint`` in ``config.schema.yaml``) and what a schema cannot
say: the analyses exist, a joint fit's name is not an analysis's, the systematics name only
the joint's analyses, the model's parameters (and with ``model.ebl``: its table, redshift,
and that every analysis's true-energy axis lies inside the table).  :func:`check_joint_data` checks, once the
observations are selected, that no dataset enters a joint fit twice.  :func:`joint_settings`
is the JSON settings of the joint-fit step.  Errors are one-line ConfigErrors naming the key.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

__all__ = ["validate_joint", "check_joint_data", "joint_settings", "prior_widths"]


def _validate_schema(block: dict, schema=None) -> dict:
    """The ``joint`` block checked against the schema, defaults filled in."""
    from .schema import _error_message, _validator_with_defaults, read_schema

    root = read_schema(schema)
    sub = {k: v for k, v in root.items() if k not in ("properties", "required", "if", "then")}
    sub["properties"] = {"joint": root["properties"]["joint"]}
    inst = {"joint": block}
    errors = list(_validator_with_defaults(sub)(sub).iter_errors(inst))
    if errors:
        from jsonschema.exceptions import best_match

        raise ConfigError(_error_message(best_match(errors), sub))
    return inst["joint"]


def validate_joint(raw: dict, analyses: dict, schema=None) -> dict:
    """``{joint name: block with defaults}`` of ``raw['joint']`` (empty without one).

    ``analyses``: the config's validated analyses ``{name: config}``.
    """
    import copy

    from .analyses import RESERVED_NAMES
    from .basics import check_increasing, check_model
    from .coerce import coerce_values

    block = raw.get("joint")
    if not block:
        return {}
    joint = _validate_schema(coerce_values(copy.deepcopy(block)), schema)
    known = ", ".join(analyses)
    rules = {}
    for name, j in joint.items():
        key = f"joint.{name}"
        rule = re.sub(r"\W", "_", name)  # the workflow's rule joint_fit_<name>
        if rule in rules:
            raise ConfigError(f"config key '{key}': {name!r} and {rules[rule]!r} differ only in '.' or '-'; "
                              "rename one (each joint fit is a rule named after it)")
        rules[rule] = name
        if name in analyses:
            raise ConfigError(f"config key '{key}': {name!r} names an analysis; a joint fit needs a name of its own "
                              "(its outputs go to <results_dir>/<name>/)")
        if name in RESERVED_NAMES:
            raise ConfigError(f"config key '{key}': {name!r} is reserved (it names another entry of results_dir)")
        for a in j["analyses"]:
            if a not in analyses:
                raise ConfigError(f"config key '{key}.analyses': no analysis named {a!r} (the config has {known})")
        for kind, width in j["systematics"].items():
            if isinstance(width, dict):
                for a in width:
                    if a not in j["analyses"]:
                        raise ConfigError(f"config key '{key}.systematics.{kind}.{a}': {a!r} is not one of the joint "
                                          f"fit's analyses ({', '.join(j['analyses'])})")
        check_model(j["model"], f"{key}.model", j["fit"]["allow_negative_amplitude"])
        if j["model"].get("ebl"):
            _check_ebl_energies(j["model"]["ebl"], {a: analyses[a] for a in j["analyses"]}, f"{key}.model.ebl.table")
        check_increasing(j["flux_points"]["energy_edges"], f"{key}.flux_points.energy_edges")
    return joint


def _check_ebl_energies(ebl: dict, analyses: dict, key: str) -> None:
    """The true-energy axis of every analysis with DL3 lies inside the EBL table (external
    spectra bring their own axes: checked when the fit reads them)."""
    from ..io.ebl_table import read_ebl_table
    from .basics import has_dl3

    table = read_ebl_table(ebl["table"])
    for a, cfg in analyses.items():
        if has_dl3(cfg):
            t = cfg["energy_axis_true"]
            table.check_energies(t["min"], t["max"], f"true-energy axis of analysis {a}", key)


def prior_widths(systematics: dict, analysis: str) -> dict:
    """``{kind: width or None}`` of one analysis from a joint fit's ``systematics`` block."""
    out = {}
    for kind in ("energy_scale", "norm"):
        w = systematics.get(kind)
        out[kind] = w.get(analysis) if isinstance(w, dict) else w
    return out


def check_joint_data(joint: dict, analyses: dict) -> None:
    """No dataset enters a joint fit twice: two of its analyses may not select the same run of
    the same data store, nor the same external PHA file (the events would count twice).

    ``analyses``: the prepared analyses (``{name: {"obs_ids", "datastore", "external"}}``).
    """
    import os

    for name, j in joint.items():
        seen = {}
        for a in j["analyses"]:
            entry = analyses[a]
            keys = [((entry.get("datastore"), int(o)), f"obs {o}") for o in entry.get("obs_ids") or []]
            keys += [(("external", os.path.abspath(e["pha"])), e["pha"]) for e in entry.get("external") or []]
            for k, what in keys:
                if k in seen and seen[k] != a:
                    raise ConfigError(f"config key 'joint.{name}.analyses': {what} is in both {seen[k]} and {a} "
                                      "(its events would count twice in the joint fit)")
                seen[k] = a


def joint_settings(name: str, block: dict, analyses: dict | None = None) -> dict:
    """The settings of the joint-fit step (its Snakemake params): the joint block, its name and,
    from the prepared ``analyses`` (``{name: {"datastore": ...}}``), each analysis's data store
    (for the provenance in ``result.yaml``)."""
    out = {"name": name, **block}
    if analyses is not None:
        out["datastores"] = {a: analyses[a].get("datastore") for a in block["analyses"]}
    return out
