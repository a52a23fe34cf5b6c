"""The typed specification of a spectral model: what the fit, the EBL absorption and the joint
fit are given (:class:`ModelSpec`), in place of a raw ``model`` mapping.

* :class:`ParameterSpec`: one parameter's start value, bounds, frozen flag and error as given
  (None: not given; the model's own start value, frozen default or no bound);
* :class:`EBLSpec`: the EBL absorption, holding its handed table (an
  :class:`~extspec.ebl.EBLAbsorption` read by :func:`extspec.io.ebl_table.read_ebl_table`) and
  the redshift and alpha_norm parameters;
* :class:`ModelSpec`: the spectral type, its parameters in the given order, the EBL block.

They hold no defaults of their own: the workflow builds them from the validated config
(:func:`extspec.workflow.settings.model_spec`), where the schema supplies defaults.
:func:`as_model_spec` is the one adapter from a ``model`` mapping (a fit result's model read
back, the simulator's truth, tests); the library's model functions apply it at their entry.

The source morphology (``model.spatial``) is not part of it: it enters the exposure at the
reduction (:class:`extspec.containment.SpatialModel` in
:class:`extspec.reduction.ReductionSettings`), never the fit.

This module imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParameterSpec", "EBLSpec", "ModelSpec", "as_model_spec", "parameter_spec"]


@dataclass(frozen=True)
class ParameterSpec:
    """One model parameter as given: ``value`` (start value), ``min``/``max`` (bounds),
    ``frozen``, ``error``; None where not given."""

    value: float | None
    min: float | None
    max: float | None
    frozen: bool | None
    error: float | None


@dataclass(frozen=True)
class EBLSpec:
    """EBL absorption exp(-alpha_norm tau(E, z)): ``table`` the handed absorption table,
    ``redshift`` and ``alpha_norm`` (None: not given) its parameters."""

    table: object
    redshift: ParameterSpec
    alpha_norm: ParameterSpec | None


@dataclass(frozen=True)
class ModelSpec:
    """A spectral model: ``type`` (a name of :mod:`extspec.models`), ``parameters`` (``(name,
    ParameterSpec)`` pairs in the given order) and ``ebl`` (None: no absorption)."""

    type: str
    parameters: tuple
    ebl: EBLSpec | None

    def given(self) -> dict:
        """``{name: ParameterSpec}`` of the given parameters."""
        return dict(self.parameters)


def parameter_spec(p) -> ParameterSpec:
    """A :class:`ParameterSpec` of a number (its start value) or a parameter mapping
    (``value``, ``min``, ``max``, ``frozen``, ``error``)."""
    if isinstance(p, ParameterSpec):
        return p
    if not isinstance(p, dict):
        return ParameterSpec(value=p, min=None, max=None, frozen=None, error=None)
    return ParameterSpec(value=p.get("value"), min=p.get("min"), max=p.get("max"), frozen=p.get("frozen"),
                         error=p.get("error"))


def as_model_spec(model) -> ModelSpec:
    """The adapter: a :class:`ModelSpec` as it is; a model type name; or a ``model`` mapping
    (``type``, ``parameters``, ``ebl`` with its table handed) -- a fit result's model read
    back, the simulator's truth or a test's block.  The workflow builds specs from the config
    with :func:`extspec.workflow.settings.model_spec` instead."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return ModelSpec(type=model, parameters=(), ebl=None)
    model = model or {}
    ebl = model.get("ebl")
    return ModelSpec(
        type=model.get("type", "power_law"),
        parameters=tuple((k, parameter_spec(v)) for k, v in (model.get("parameters") or {}).items()),
        ebl=None if not ebl else EBLSpec(
            table=ebl["table"], redshift=parameter_spec(ebl["redshift"]),
            alpha_norm=parameter_spec(ebl["alpha_norm"]) if "alpha_norm" in ebl else None))
