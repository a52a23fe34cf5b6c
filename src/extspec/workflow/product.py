"""What a product declares to join the workflow: :class:`Product` and its :class:`Step` s.

A product (the spatially resolved spectra, the cumulative table, ...) registers itself with
one module in :mod:`extspec.workflow.products` that defines ``PRODUCT``.  From that
declaration

* the command line builds the product's subcommands (``extspec <Step.command>``: its own
  inputs and outputs, ``--settings``/``--config``, ``--log``, the step's imports before its
  clock starts);
* the Snakefile includes the product's rule file and ``common.smk`` derives its targets (which
  analyses have it, which files it writes);
* the config checks run the product's own check (:attr:`Product.check`);
* ``tests/test_architecture.py`` checks that it is complete (schema keys documented, every
  step's stage in :data:`extspec.workflow.settings.STAGE_KEYS`, the rule file running each
  step's subcommand, the subcommands in the parser, the step imports).

A step's config keys stay in :data:`~extspec.workflow.settings.STAGE_KEYS` (the one place of
stage keys, :attr:`Step.stage` names its entry), its typed settings are built by
:mod:`extspec.workflow.settings`, and its defaults live in the schema.

This module imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Step", "SummaryColumn", "Product"]


@dataclass(frozen=True)
class Step:
    """One job of a product: one ``extspec`` subcommand, one Snakemake rule.

    ``stage``: its key of ``STAGE_KEYS`` (the rule's ``settings("<stage>")`` params and the
    command's ``--settings``); ``command``: the subcommand; ``help``/``description``: its
    ``--help`` texts; ``arguments(parser)``: adds its inputs and outputs (``--settings``,
    ``--config``, ``--log`` ... come with every step); ``run(settings, args)``: does the step
    and returns the short summary of its progress line; ``what(args)``: what an error line
    names (e.g. ``obs 23523``); ``imports``: the modules it imports (before its clock starts,
    complete: ``test_step_imports_are_complete``); ``per_obs``: one job per observation (takes
    ``--datastore``, the config's ``datastore`` by default) rather than one per analysis.
    """

    stage: str
    command: str
    help: str
    description: str
    arguments: Callable
    run: Callable
    what: Callable
    imports: tuple
    per_obs: bool


@dataclass(frozen=True)
class SummaryColumn:
    """A column a product adds to ``summary.ecsv`` for the analyses that have it (NaN for the
    others): ``name``, ``unit``; ``file``: what it is read from, relative to the analysis
    folder (an input of the summary rule); ``read(path)``: the value in that file (NaN when it
    cannot be read); ``description``: what the number is, for the summary's metadata."""

    name: str
    unit: str
    file: str
    read: Callable
    description: str


@dataclass(frozen=True)
class Product:
    """A product of an analysis, written under ``<results_dir>/<analysis>/``.

    ``name``: its name (the registration module's); ``config_key``: the config block that
    switches it on (None: every analysis has it); ``schema_keys``: the top-level keys of the
    schema it owns (each documented there); ``needs_dl3``: only for analyses with DL3 runs;
    ``steps``: its jobs, per-observation ones first; ``rule_file``: its rules, relative to the
    repository (``workflow/rules/<name>.smk``); ``outputs(config)``: the files its last step
    writes, relative to the analysis folder; ``check(config)``: its config checks beyond the
    schema (one-line ConfigError), or None; ``summary``: the
    :class:`SummaryColumn` s it adds to ``summary.ecsv``.
    """

    name: str
    config_key: str | None
    schema_keys: tuple
    needs_dl3: bool
    steps: tuple
    rule_file: str
    outputs: Callable
    check: Callable | None = None
    summary: tuple = ()

    def enabled(self, config: dict) -> bool:
        """Whether an analysis config (validated, defaults filled) has this product."""
        from .basics import has_dl3

        if self.needs_dl3 and not has_dl3(config):
            return False
        return self.config_key is None or bool(config.get(self.config_key))
