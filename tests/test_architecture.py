"""The house rules that code can check: settings stop at the workflow layer, imports run one way.

* no algorithm module (anything of ``extspec`` but ``extspec.workflow`` and ``extspec.cli``)
  imports ``extspec.workflow``: only the workflow layer reads config keys;
* no circle of imports anywhere in ``extspec`` (module-level and function-level imports alike,
  from the ast of every file), so each module has a place in one order from the bottom up;
* the numerical core (every top-level module of ``extspec`` but the command line, the package
  itself and ``plots``, which writes PNGs) imports nothing of ``extspec.io``: the core is
  handed what files hold (e.g. the EBL table), and file formats stay in ``io``;
* no module outside the simulator is longer than :data:`MAX_MODULE_LINES` lines;
* the workflow's steps (``workflow/pipeline.py``, ``workflow/joint_fit.py``) hold no numerical
  code: no numpy (or math) import at module level, and in their functions numpy only for the
  dtypes of what they write (:data:`IO_NUMPY`); the science is in library entry points;
* every registered product (:mod:`extspec.workflow.products`) is complete: its schema keys
  documented, its steps' stages in ``STAGE_KEYS``, its rule file included and running each
  step's subcommand with its stage's settings, the subcommands in the parser, its imports
  importable (``tests/test_cli.py::test_step_imports_are_complete`` runs them);
* the typed settings of the stages hold no defaults, and no algorithm function repeats a
  default of the schema in its signature (the schema is the only place for them).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import extspec

PACKAGE = Path(extspec.__file__).resolve().parent


def _library_modules() -> dict[str, Path]:
    """``{dotted name: path}`` of every module below the workflow layer and the command line."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "workflow" or rel.name == "cli.py":
            continue
        parts = ["extspec", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _all_modules() -> dict[str, Path]:
    """``{dotted name: path}`` of every module of the package (workflow and command line included)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["extspec", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported_modules(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any level (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def test_the_import_graph_sees_workflow_imports(tmp_path):
    """The checker itself: relative imports are resolved, lazy ones inside functions included."""
    f = tmp_path / "x.py"
    f.write_text("import numpy\n\ndef g():\n    from ..workflow.config import setting\n    from . import sky\n")
    got = _imported_modules("extspec.io.x", f)
    assert {"numpy", "extspec.workflow.config", "extspec.workflow.config.setting", "extspec.io.sky"} <= got


def test_no_algorithm_module_imports_the_workflow():
    modules = _library_modules()
    assert {"extspec.cube", "extspec.reflected", "extspec.safe_mask", "extspec.reduction", "extspec.fit",
            "extspec.io.ogip", "extspec.simulate.dl3"} <= set(modules)
    offenders = {name: sorted(m for m in _imported_modules(name, path)
                              if m == "extspec.workflow" or m.startswith("extspec.workflow."))
                 for name, path in modules.items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def _import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, at any level (lazy imports included)."""
    modules = _all_modules()
    return {name: {m for m in _imported_modules(name, path) if m in modules and m != name}
            for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_circles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert sorted(_circles(g)) == [["a", "b", "c"], ["e", "f"]]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_circle_anywhere():
    graph = _import_graph()
    assert {"extspec.workflow.cache", "extspec.workflow.checks", "extspec.workflow.store_checks", "extspec.cli",
            "extspec.ebl", "extspec.io.ebl_table", "extspec.rootfind"} <= set(graph)
    # the config layer: the shared helpers at the bottom, the parse-time orchestrator on top
    config_layer = ("analyses", "basics", "checks", "coerce", "dl3files", "joint_config", "preflight", "schema",
                    "settings", "statcache", "store_checks", "wobble_check")
    for m in config_layer:
        assert "extspec.workflow.cache" not in graph[f"extspec.workflow.{m}"], m
    for low in ("extspec.workflow.basics", "extspec.workflow.statcache"):
        assert not {m for m in graph[low] if m.startswith("extspec.workflow.")}, low
    assert _circles(graph) == []


OUTSIDE_CORE = {"extspec", "extspec.cli", "extspec.__main__", "extspec.plots", "extspec.plots_spatial", "extspec.figures"}
"""Top-level modules that are not the numerical core: the package, the command line, and the
plots and their figures (drawing; each PNG is written through ``io.atomic``)."""


def _numerical_core() -> list[str]:
    return sorted(m for m in _all_modules() if m.count(".") == 1 and m not in OUTSIDE_CORE)


def test_the_numerical_core_imports_no_io():
    core = _numerical_core()
    assert {"extspec.spectrum", "extspec.ebl", "extspec.fit", "extspec.safe_mask", "extspec.rootfind",
            "extspec.models", "extspec.model_formulas", "extspec.timebins"} <= set(core)
    graph = _import_graph()
    offenders = {m: sorted(d for d in graph[m] if d == "extspec.io" or d.startswith("extspec.io.")) for m in core}
    assert {k: v for k, v in offenders.items() if v} == {}


MAX_MODULE_LINES = 800
"""No module outside the simulator (``extspec.simulate``) is longer than this."""


def test_module_size():
    long = {name: n for name, path in _all_modules().items()
            if not name.startswith("extspec.simulate") and (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


SETTINGS_CLASSES = {
    "extspec.cube": "CubeSettings",
    "extspec.reflected": "BackgroundSettings",
    "extspec.safe_mask": "SafeMaskSettings",
    "extspec.reduction": "ReductionSettings",
    "extspec.fit": "FitOptions",
    "extspec.fluxpoints": "FluxPointSettings",
    "extspec.resolved": "SpatialBinSettings",
    "extspec.model_spec": "ModelSpec",
}


def _settings_classes():
    """Every dataclass named ``*Settings``, ``*Options`` or ``*Spec`` in the library modules."""
    found = {}
    for name in _library_modules():
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        for cname, obj in vars(mod).items():
            if (inspect.isclass(obj) and obj.__module__ == name and dataclasses.is_dataclass(obj)
                    and cname.endswith(("Settings", "Options", "Spec"))):
                found[f"{name}.{cname}"] = obj
    return found


def test_settings_classes_are_frozen_and_hold_no_defaults():
    found = _settings_classes()
    assert {f"{m}.{c}" for m, c in SETTINGS_CLASSES.items()} <= set(found)
    for qual, cls in found.items():
        assert cls.__dataclass_params__.frozen, f"{qual} is not frozen"
        with_default = [f.name for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert with_default == [], f"{qual} has defaults for {with_default}"


CONFIG_BACKED = {"method", "oversample", "n_off_regions", "integration", "covariance", "minos", "float32",
                 "percent", "n_sigma_ul", "aeff_percent", "bias_percent", "offset_max", "energy_edges",
                 "background", "safe_mask", "correlation_radius", "edisp_binsz", "detection_ts_min",
                 "variability_min_counts"}
"""Parameter names whose values come from config keys: never a default in a signature."""


@pytest.mark.parametrize("module", ["extspec.cube", "extspec.spectrum", "extspec.reflected", "extspec.background",
                                    "extspec.safe_mask",
                                    "extspec.reduction", "extspec.fit", "extspec.fluxpoints", "extspec.joint", "extspec.stacking",
                                    "extspec.models", "extspec.maps", "extspec.quality", "extspec.norms",
                                    "extspec.lightcurve", "extspec.containment", "extspec.resolved"])
def test_algorithms_repeat_no_schema_default(module):
    mod = importlib.import_module(module)
    bad = []
    for fname, func in vars(mod).items():
        if not inspect.isfunction(func) or func.__module__ != module:
            continue
        for p in inspect.signature(func).parameters.values():
            if p.name in CONFIG_BACKED and p.default is not inspect.Parameter.empty:
                bad.append(f"{fname}({p.name}={p.default!r})")
    assert bad == []


def test_settings_built_from_the_schema_defaults():
    """The workflow's builders fill a partial config from the schema, nothing else."""
    from extspec.skyregions import parse_region
    from extspec.workflow.config import schema_defaults
    from extspec.workflow.settings import fit_options, flux_point_settings, reduction_settings

    d = schema_defaults()
    red = reduction_settings({"on_region": "galactic;circle(347.3,-0.5,0.5)", "background": {"method": "wobble"}})
    assert red.on_region.to_ds9() == parse_region("galactic;circle(347.3,-0.5,0.5)").to_ds9()
    assert red.exclusion_regions == ()
    assert (red.cube.method, red.cube.oversample, red.cube.edisp_binsz) == (
        d["spectrum"]["method"], d["spectrum"]["oversample"], d["geom"]["edisp_binsz"])
    assert (red.background.method, red.background.n_off_regions) == ("wobble", d["background"]["n_off_regions"])
    assert red.safe_mask.methods == tuple(d["safe_mask"]["methods"])
    assert red.safe_mask.offset_max == d["safe_mask"]["offset_max"]
    opts = fit_options({"fit": {"minos": True}})
    assert (opts.integration, opts.covariance, opts.minos) == (d["fit"]["integration"], d["fit"]["covariance"], True)
    assert opts.allow_negative_amplitude is d["fit"]["allow_negative_amplitude"] is False
    assert fit_options({"fit": {"allow_negative_amplitude": True}}).allow_negative_amplitude is True
    assert opts.detection_ts_min == d["fit"]["detection_ts_min"] == 9.0
    fp = flux_point_settings({})
    assert (fp.energy_edges, fp.n_sigma_ul) == (d["flux_points"]["energy_edges"], d["flux_points"]["n_sigma_ul"])


WORKFLOW_STEPS = {"extspec.workflow.pipeline": "pipeline.py", "extspec.workflow.joint_fit": "joint_fit.py",
                  "extspec.workflow.summary_step": "summary_step.py",
                  **{f"extspec.workflow.products.{p.name}": f"products/{p.name}.py"
                     for p in __import__("extspec.workflow.products", fromlist=["products"]).products()}}
"""The modules of the workflow's steps (the core ones and every registered product's):
reading, writing, logging and plotting only."""

IO_NUMPY = {"int32", "int64", "float32", "float64", "bool_"}
"""What a step may use of numpy in a function: the dtypes of the arrays it writes."""

NUMPY_EXEMPT = {
    "_check_same_grid": {"allclose"},
}
"""Closed list of step functions allowed more (with the reason): ``_check_same_grid`` compares
two runs' reco axes before the stack step adds their counts images (an input check that
refuses, no number of a product)."""


def _numerical_code(path: Path) -> list[str]:
    """Where ``path`` holds numerical code: numpy or math imported at module level, ``math``
    or ``from numpy import`` anywhere, and numpy attributes beyond :data:`IO_NUMPY` (and
    :data:`NUMPY_EXEMPT`) used in a function."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in tree.body:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("numpy", "math") for a in node.names):
            out.append(f"module level: import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("numpy", "math"):
            out.append(f"module level: from {node.module} import")
    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        aliases = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "numpy":
                        aliases.add(a.asname or "numpy")
                    elif a.name.split(".")[0] == "math":
                        out.append(f"{func.name}: import math")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("numpy", "math"):
                out.append(f"{func.name}: from {node.module} import")
        allowed = IO_NUMPY | NUMPY_EXEMPT.get(func.name, set())
        for node in ast.walk(func):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr not in allowed):
                out.append(f"{func.name}: np.{node.attr}")
    return sorted(set(out))


def test_the_numerical_code_finder(tmp_path):
    f = tmp_path / "step.py"
    f.write_text("import numpy as np\nimport math\n\ndef write(a):\n    import numpy as np\n    return a.astype(np.int32)\n\n"
                 "def edges(lo, hi):\n    import numpy\n    from numpy import geomspace\n    return numpy.geomspace(lo, hi, 3)\n")
    assert _numerical_code(f) == ["edges: from numpy import", "edges: np.geomspace", "module level: import math",
                                  "module level: import numpy"]


def test_workflow_steps_hold_no_numerical_code():
    """The steps call library entry points (reduction.reduce_observation, fit.fit_with_comparisons,
    lightcurve.light_curve, joint.fit_joint_analyses ...) and only read, write, log and plot."""
    modules = _all_modules()
    found = {name: _numerical_code(modules[name]) for name in WORKFLOW_STEPS}
    assert found == {name: [] for name in WORKFLOW_STEPS}
    # the exemptions are still needed (a closed list does not outlive its reason)
    source = modules["extspec.workflow.pipeline"].read_text()
    assert all(f"def {f}(" in source for f in NUMPY_EXEMPT)


# ------------------------------------------------------------------ registered products --

REPO = PACKAGE.parents[1]


def _undocumented(node: dict, key: str, defs: dict) -> list[str]:
    """Every property below ``node`` (a schema fragment named ``key``; ``$ref`` resolved in
    ``defs``) without a description."""
    while "$ref" in node and not node.get("description"):
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    out = [] if node.get("description") else [key]
    for name, sub in (node.get("properties") or {}).items():
        out += _undocumented(sub, f"{key}.{name}", defs)
    for sub in node.get("oneOf") or node.get("anyOf") or []:
        out += [k for k in _undocumented(sub, key, defs) if k != key]
    if isinstance(node.get("items"), dict):
        out += [k for k in _undocumented(node["items"], key, defs) if k != key]
    return out


def test_the_products_registry():
    from extspec.workflow.products import products

    names = [p.name for p in products()]
    assert {"spatial", "cumulative"} <= set(names) and len(names) == len(set(names))


def _product_problems(p) -> list[str]:
    """What a registered product lacks (empty: complete)."""
    import argparse

    from extspec.cli import build_parser
    from extspec.workflow.pipeline import STEP_IMPORTS
    from extspec.workflow.products import steps
    from extspec.workflow.schema import read_schema
    from extspec.workflow.settings import STAGE_KEYS

    out = []
    schema, defs = read_schema()["properties"], read_schema().get("$defs", {})
    # schema: its keys exist and every one of their properties says what it is
    out += [f"schema: no key {k}" for k in p.schema_keys if k not in schema] + ([] if p.schema_keys else ["schema keys"])
    if p.config_key is not None and p.config_key not in p.schema_keys:
        out.append(f"config key {p.config_key} not among its schema keys")
    out += [f"schema: {k} has no description" for key in p.schema_keys if key in schema
            for k in _undocumented(schema[key], key, defs)]
    # STAGE_KEYS, the one place of stage keys: every step's stage there, with the product's keys
    stages = [s.stage for s in p.steps]
    out += [f"STAGE_KEYS: no stage {st}" for st in stages if st not in STAGE_KEYS]
    keys = {k.split(".")[0] for st in stages for k in STAGE_KEYS.get(st, ())}
    out += [f"STAGE_KEYS: no step depends on {k}" for k in p.schema_keys if k not in keys]
    # one place for a step's imports: the registration, not pipeline.STEP_IMPORTS too
    out += [f"STEP_IMPORTS: {st} there too" for st in stages if st in STEP_IMPORTS]
    for s in p.steps:
        for module in s.imports:
            try:
                importlib.import_module(module)
            except ImportError:
                out.append(f"imports: no module {module}")
    # the rule file: included by the Snakefile through the registry, running each step's subcommand
    rule_file = REPO / p.rule_file
    rules = rule_file.read_text() if rule_file.is_file() else ""
    if not rules:
        out.append(f"no rule file {p.rule_file}")
    snakefile = (REPO / "Snakefile").read_text()
    if "include: _product.rule_file" not in snakefile or p.rule_file in snakefile:
        out.append("the Snakefile does not include the registered rule files")
    for s in p.steps:
        if f'"extspec {s.command} ' not in rules:
            out.append(f"rule: no shell running extspec {s.command}")
        if f'"{s.stage}")' not in rules:  # settings("<stage>") or stage_config(..., "<stage>")
            out.append(f"rule: no params of stage {s.stage}")
    # the command line: a subcommand per step, with --settings (and --datastore per observation)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for s in p.steps:
        if s.command not in sub.choices:
            out.append(f"cli: no subcommand {s.command}")
            continue
        options = {o for a in sub.choices[s.command]._actions for o in a.option_strings}
        if not {"--settings", "--config", "--log"} <= options or ("--datastore" in options) is not s.per_obs:
            out.append(f"cli: {s.command} options {sorted(options)}")
    # every stage belongs to exactly one step: a core one (pipeline) or a registered one
    out += [f"STAGE_KEYS: {st} is no step's" for st in STAGE_KEYS if st not in set(STEP_IMPORTS) | {
        s.stage for s in steps()}]
    return out


@pytest.mark.parametrize("name", [p.name for p in __import__("extspec.workflow.products",
                                                                fromlist=["products"]).products()])
def test_every_registered_product_is_complete(name):
    """A product registered in extspec.workflow.products has everything the workflow needs."""
    from extspec.workflow.products import product

    assert _product_problems(product(name)) == []


def test_an_incomplete_product_is_found(monkeypatch):
    """The completeness check itself, on a product missing every piece (and a schema key
    whose description is taken away)."""
    import copy
    import dataclasses

    import extspec.workflow.schema as schema_module
    from extspec.workflow.products import product

    schema = copy.deepcopy(schema_module.read_schema())
    del schema["properties"]["obs_cone"]["description"]
    monkeypatch.setattr(schema_module, "read_schema", lambda: schema)

    good = product("spatial")
    step = dataclasses.replace(good.steps[1], stage="nope", command="nope", imports=("extspec.nope",), per_obs=True)
    bad = dataclasses.replace(good, schema_keys=("spatial_bins", "obs_cone", "nope"), rule_file="workflow/rules/no.smk",
                              steps=(step,))
    problems = _product_problems(bad)
    for what in ("schema: no key nope", "schema: obs_cone has no description", "STAGE_KEYS: no stage nope",
                 "imports: no module extspec.nope", "no rule file workflow/rules/no.smk",
                 "rule: no shell running extspec nope", "rule: no params of stage nope", "cli: no subcommand nope"):
        assert what in problems, (what, problems)
