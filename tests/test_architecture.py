"""The house rules that code can check: settings stop at the workflow layer.

* no algorithm module (anything of ``extspec`` but ``extspec.workflow`` and ``extspec.cli``)
  imports ``extspec.workflow``: no import circle, and only the workflow layer reads config keys;
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


SETTINGS_CLASSES = {
    "extspec.cube": "CubeSettings",
    "extspec.reflected": "BackgroundSettings",
    "extspec.safe_mask": "SafeMaskSettings",
    "extspec.reduction": "ReductionSettings",
    "extspec.fit": "FitOptions",
    "extspec.fluxpoints": "FluxPointSettings",
}


def _settings_classes():
    """Every dataclass named ``*Settings`` or ``*Options`` in the library modules."""
    found = {}
    for name in _library_modules():
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        for cname, obj in vars(mod).items():
            if (inspect.isclass(obj) and obj.__module__ == name and dataclasses.is_dataclass(obj)
                    and cname.endswith(("Settings", "Options"))):
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
                 "background", "safe_mask", "correlation_radius", "edisp_binsz"}
"""Parameter names whose values come from config keys: never a default in a signature."""


@pytest.mark.parametrize("module", ["extspec.cube", "extspec.spectrum", "extspec.reflected", "extspec.safe_mask",
                                    "extspec.reduction", "extspec.fit", "extspec.fluxpoints", "extspec.joint", "extspec.stacking",
                                    "extspec.models", "extspec.maps", "extspec.containment"])
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
    fp = flux_point_settings({})
    assert (fp.energy_edges, fp.n_sigma_ul) == (d["flux_points"]["energy_edges"], d["flux_points"]["n_sigma_ul"])
