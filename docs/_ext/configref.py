"""The configuration reference, generated from the schema (the one source of every key's meaning).

``src/extspec/data/config.schema.yaml`` gives every key its type, default and ``description``;
``STAGE_KEYS`` in :mod:`extspec.workflow.settings` says which workflow step's params hold it, i.e.
what changing it reruns.  This module turns both into Markdown:

* as a Sphinx extension (``docs/conf.py``), it writes ``docs/config-reference.md`` before every
  build (generated, not committed);
* as a script, ``python docs/_ext/configref.py`` writes ``config/README.md`` (committed, so that
  the workflow-catalogue convention holds); ``--check`` exits 1 when it is out of date
  (``tests/test_docs.py`` checks it).

Only the standard library, PyYAML and :mod:`extspec.workflow.settings` are imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "src" / "extspec" / "data" / "config.schema.yaml"
CONFIG_README = REPO / "config" / "README.md"
DOCS_PAGE = REPO / "docs" / "config-reference.md"

# What changing a key that no step's params hold reruns: these keys act through the steps'
# inputs (the runs, the data store, the files) or select what runs at all.
INPUT_KEYS = {
    "name": "everything of the analysis (its outputs move to another directory)",
    "results_dir": "everything (the outputs move to another directory)",
    "datastore": "the reductions (their DL3 files are inputs) and everything after them",
    "obs_ids": "adding a run: its reduction, the aggregates; removing one: the aggregates",
    "obs_cone": "as `obs_ids`, for the runs it adds or removes",
    "external_spectra": "the fit, flux points, cumulative table (and light curve) of the analyses listing them",
    "reduce": "the reductions once (other jobs write the same files); no product changes",
    "model.ebl": "the fit and what reads it (flux points, light curve)",
    "analyses": "each analysis as the keys it changes; a new analysis runs only its own jobs",
    "joint": "that joint fit only (and the summary)",
    "download": "nothing but the fetch of the data store (when one is fetched)",
}

# The steps in the order the workflow runs them, and what each one rewrites.
STEP_ORDER = ("reduce", "stack", "fit", "flux_points", "cumulative", "light_curve")


def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text())


def _resolve(node: dict, root: dict) -> dict:
    """``node`` with its ``$ref`` merged in (the local keys win, e.g. a local default)."""
    if isinstance(node, dict) and "$ref" in node:
        target = _resolve(root["$defs"][node["$ref"].split("/")[-1]], root)
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _branches(node: dict, root: dict) -> list[dict]:
    return [_resolve(b, root) for b in node.get("oneOf", [])]


def _type(node: dict, root: dict) -> str:
    node = _resolve(node, root)
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(dict.fromkeys(_type(b, root) for b in node["oneOf"]))
    t = node.get("type")
    if isinstance(t, list):
        return " or ".join("null" if x == "null" else x for x in t)
    if t == "array":
        items = node.get("items")
        return f"list of {_type(items, root)}" if items else "list"
    if t == "object" and "properties" not in node and isinstance(node.get("additionalProperties"), dict):
        return "mapping"
    return {"object": "mapping", None: "any"}.get(t, t)


def _default(node: dict, required: bool) -> str:
    if "default" in node:
        return "`" + json.dumps(node["default"]).replace('"', "") + "`"
    return "required" if required else "absent"


def entries(root: dict) -> list[dict]:
    """Every documented key, depth first in schema order: ``key`` (dotted; ``<name>`` for a
    mapping's free keys), ``yaml_path`` (the keys leading to it in the schema file), ``node``
    (resolved), ``required``, ``type``, ``default``, ``description``."""
    out: list[dict] = []

    def walk(node, key, ypath, required, parent_default=None):
        raw = node
        node = _resolve(node, root)
        if key:
            desc = raw.get("description") or node.get("description")
            shown = node
            leaf = key.rsplit(".", 1)[-1]
            if "default" not in node and isinstance(parent_default, dict) and leaf in parent_default:
                shown = {**node, "default": parent_default[leaf]}
            out.append({"key": key, "yaml_path": ypath, "node": node, "required": required,
                        "type": _type(node, root), "default": _default(shown, required),
                        "description": " ".join(str(desc).split()) if desc else None})
            # a joint fit's model is the top-level `model` block; a parameter's own keys are
            # listed once, under model.parameters.<name>
            if key.startswith("joint.<name>.model") or (
                    key.count(".") >= 2 and key.startswith("model.ebl.")):
                return
        objects = [node] + [b for b in _branches(node, root) if b.get("type") == "object"]
        for obj in objects:
            req = set(obj.get("required", []))
            # properties of a oneOf branch live under the branch in the file: follow the
            # path of the first object branch
            base = ypath if obj is node else ypath + ["oneOf", node["oneOf"].index(
                next(b for b in node["oneOf"] if _resolve(b, root) is obj or _resolve(b, root) == obj))]
            for k, sub in obj.get("properties", {}).items():
                walk(sub, f"{key}.{k}" if key else k, base + ["properties", k], k in req, node.get("default"))
            extra = obj.get("additionalProperties")
            if isinstance(extra, dict) and key in ("joint", "model.parameters"):
                walk(extra, f"{key}.<name>", base + ["additionalProperties"], False)
    walk(root, "", [], False)
    return out


def stage_keys() -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from extspec.workflow.settings import STAGE_KEYS

    return STAGE_KEYS


def steps_holding(key: str, stages: dict) -> list[str]:
    """The steps whose params hold ``key``: the most specific stage key that is ``key`` or a
    block above it wins (``model.spatial`` is the reductions', the rest of ``model`` the fit's)."""
    match = {}
    for s in STEP_ORDER:
        lengths = [k.count(".") + 1 for k in stages.get(s, ()) if key == k or key.startswith(k + ".")]
        if lengths:
            match[s] = max(lengths)
    best = max(match.values(), default=0)
    return [s for s in STEP_ORDER if match.get(s) == best and best]


STEP_NAMES = {"stack": "the counts image and maps", "fit": "the fit, flux points and light curve",
              "flux_points": "the flux points", "cumulative": "the cumulative table",
              "light_curve": "the light curve"}


def reruns(key: str, stages: dict | None = None) -> str:
    """What changing ``key`` reruns: the steps whose params hold it (``STAGE_KEYS``); the
    reductions' settings rerun every step after the reductions too (their inputs change)."""
    stages = stage_keys() if stages is None else stages
    for k in ("name", "joint", "analyses", "model.ebl"):
        if key == k or key.startswith(k + "."):
            return INPUT_KEYS[k]
    held = steps_holding(key, stages)
    if "reduce" in held:
        return "the reductions and every step after them"
    if not held:
        return INPUT_KEYS.get(key.split(".")[0], "nothing")
    if "fit" in held:  # the flux points and the light curve read the fit's result
        held = [s for s in held if s not in ("flux_points", "light_curve")]
    return ", ".join(STEP_NAMES[s] for s in held) + " (and the summary)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


BLOCK_TITLES = {
    "name": "Top level", "geom": "`geom`: the map of each observation", "energy_axis": "Energy axes",
    "safe_mask": "`safe_mask`: the safe energy range", "spectrum": "`spectrum`: ON/OFF extraction",
    "background": "`background`: OFF regions or an OFF area", "reduce": "`reduce`: how the reductions run",
    "model": "`model`: the spectral (and spatial) model", "fit": "`fit`", "flux_points": "`flux_points`",
    "cumulative": "`cumulative`", "stacked": "`stacked`: the counts image", "maps": "`maps`: excess and significance maps",
    "light_curve": "`light_curve`: light curves and spectra per time bin", "analyses": "`analyses`: several analyses in one config",
    "joint": "`joint`: one model fitted to several analyses", "download": "`download`: getting H.E.S.S. DL3 DR1",
    "obs_cone": "`obs_cone`: runs chosen by pointing",
}
TOP_LEVEL = ("name", "results_dir", "datastore", "obs_ids", "on_region", "external_spectra", "exclusion_regions")


def render(root: dict, heading: str = "##", stages: dict | None = None) -> str:
    """The reference tables: one section per block, one row per key."""
    stages = stage_keys() if stages is None else stages
    sections: dict[str, list[dict]] = {}
    for e in entries(root):
        top = e["key"].split(".")[0]
        block = "name" if top in TOP_LEVEL else ("energy_axis" if top.startswith("energy_axis") else top)
        sections.setdefault(block, []).append(e)
    lines = []
    for block, rows in sections.items():
        lines += [f"{heading} {BLOCK_TITLES.get(block, f'`{block}`')}", "",
                  "| key | type | default | reruns | meaning |", "| --- | --- | --- | --- | --- |"]
        for e in rows:
            lines.append(f"| `{e['key']}` | {_cell(e['type'])} | {_cell(e['default'])} | "
                         f"{_cell(reruns(e['key'], stages))} | {_cell(e['description'] or '')} |")
        lines.append("")
    return "\n".join(lines)


def missing_descriptions(root: dict) -> list[str]:
    return [e["key"] for e in entries(root) if not e["description"]]


CONFIG_README_HEAD = """\
# Analysis configuration

<!-- GENERATED by `python docs/_ext/configref.py` from src/extspec/data/config.schema.yaml
     (every key's description) and STAGE_KEYS in src/extspec/workflow/settings.py (what a
     change reruns).  Edit those, not this file: tests/test_docs.py checks it is up to date. -->

`config/config.yaml` is the seed analysis (RX J1713.7-3946, six H.E.S.S. DL3 DR1 runs); the other
files here are the tutorials' configs (see the documentation, `docs/tutorials/`). Run one with
`snakemake --cores 8 --configfile config/<file>.yaml`: Snakemake reads `config/config.yaml` first
and merges the file over it. How configs merge, what is checked before any job, and which change
reruns what: the documentation's "Configuration" page (`docs/configuration.md`).

Energies are in TeV, angles and sky coordinates in degrees. The config is checked against
`src/extspec/data/config.schema.yaml` before anything runs; `extspec check config/config.yaml my.yaml`
runs the same check. "reruns": what changing the key reruns (`STAGE_KEYS`).

"""


DOCS_PAGE_HEAD = """\
# Configuration reference

% GENERATED at every docs build by docs/_ext/configref.py from src/extspec/data/config.schema.yaml
% and STAGE_KEYS (src/extspec/workflow/settings.py); not committed.

Every key of an analysis config: its type, its default (the schema's, the only ones), what
changing it reruns (the workflow step whose params hold it: `STAGE_KEYS` in
{py:mod}`extspec.workflow.settings`) and its meaning, all read from
`src/extspec/data/config.schema.yaml`. How configs are merged and checked: {doc}`configuration`.
Energies are in TeV, angles and sky coordinates in degrees.

"""


def config_readme(root: dict | None = None) -> str:
    return CONFIG_README_HEAD + render(load_schema() if root is None else root)


def docs_page(root: dict | None = None) -> str:
    return DOCS_PAGE_HEAD + render(load_schema() if root is None else root)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _builder_inited(app):
    _write_if_changed(DOCS_PAGE, docs_page())


def setup(app):
    app.connect("builder-inited", _builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = config_readme()
    if "--check" in argv:
        if CONFIG_README.read_text() != text:
            print("config/README.md is out of date: run `python docs/_ext/configref.py`", file=sys.stderr)
            return 1
        return 0
    _write_if_changed(CONFIG_README, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
