"""The registered products: every module of this package that defines ``PRODUCT``
(a :class:`~extspec.workflow.product.Product`).

Adding a product is adding a module here (its steps: reading, writing, plotting, calling its
library entry point), beside its library module, its rule file and its plot; the command
line, the Snakefile, ``common.smk`` and the config checks find it through :func:`products`.
See README "Architecture".

This package imports only the standard library at import time (and :func:`products` only the
registration modules, which do the same).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

__all__ = ["products", "product", "steps", "step", "import_step", "check_products"]


@functools.cache
def products() -> tuple:
    """Every registered :class:`~extspec.workflow.product.Product`, by module name."""
    out = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "PRODUCT", None) is not None:
            out.append(module.PRODUCT)
    return tuple(out)


def product(name: str):
    """The registered product ``name``."""
    for p in products():
        if p.name == name:
            return p
    raise KeyError(f"no registered product {name!r}")


def steps() -> tuple:
    """Every step of every registered product."""
    return tuple(s for p in products() for s in p.steps)


def step(stage: str):
    """The registered step of ``stage`` (None: a step of the core workflow, pipeline.py)."""
    for s in steps():
        if s.stage == stage:
            return s
    return None


def import_step(stage: str) -> None:
    """Import the modules of a step: a registered one's :attr:`Step.imports`, else
    :data:`extspec.workflow.pipeline.STEP_IMPORTS` (the core steps)."""
    s = step(stage)
    if s is not None:
        names = s.imports
    else:
        from ..pipeline import STEP_IMPORTS

        names = STEP_IMPORTS[stage]
    for name in names:
        importlib.import_module(name)


def check_products(cfg: dict) -> None:
    """Run the config check of every product the (validated) config has."""
    for p in products():
        if p.check is not None and p.enabled(cfg):
            p.check(cfg)
