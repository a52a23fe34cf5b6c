r"""Absorption by the extragalactic background light (EBL) and absorbed spectral models.

The observed spectrum of a source at redshift :math:`z` is the intrinsic one times the
attenuation

.. math:: \phi_\mathrm{obs}(E) = \phi_\mathrm{int}(E)\, \exp(-\alpha_\mathrm{norm}\,\tau(E, z)),

with :math:`\tau` from an EBL table in the XSPEC table-model format (exp(-tau) per redshift
and energy bin), and
:math:`\alpha_\mathrm{norm}` (default 1) scaling the optical depth.

How the table is read (:meth:`EBLAbsorption.tau`)
-------------------------------------------------
* **Redshift**: the optical depth :math:`\tau = -\ln` (table value) at each energy node is
  interpolated in :math:`z` by the monotone piecewise-cubic Hermite interpolant through the
  grid redshifts (PCHIP: Fritsch & Carlson 1980, slopes as Fritsch & Butland 1984;
  :func:`_pchip_slopes`).  It is continuous with a continuous first derivative in :math:`z`,
  and monotone where the table is (tau grows with z), so a fit with a free redshift sees a
  smooth likelihood.  (Linear interpolation of exp(-tau), XSPEC's METHOD 0, puts a kink at
  every grid redshift, each a false local minimum for MIGRAD: a free redshift stopped at
  the table's nodes.)  A redshift outside the grid is refused (no extrapolation).  At a grid
  redshift and :math:`\alpha_\mathrm{norm} = 1` the attenuation at a bin centre is the
  table value.
* **Energy**: the value of an energy bin is taken at its logarithmic centre
  :math:`\sqrt{E_\mathrm{lo} E_\mathrm{hi}}`; between centres :math:`\tau` is linear in
  :math:`\ln E` (so exp(-tau) is a power law in :math:`E` between centres).  Between the
  outermost centre and the table edge :math:`\tau` is held constant; energies outside the
  table's ENERG_LO..ENERG_HI are refused.
* exp(-tau) = 0 in the table (float32 underflow) is read as :math:`\tau` = 87.3, the optical
  depth of float32's smallest normal number: the attenuation stays below 1e-37 for
  :math:`\alpha_\mathrm{norm} \ge 1` and no 0 * inf appears for :math:`\alpha_\mathrm{norm} = 0`.

The table is handed in
----------------------
This module reads no file.  A model's ``ebl.table`` (:class:`~extspec.model_spec.EBLSpec`, built
by :func:`extspec.workflow.settings.model_spec`; and a fit result's) is the
:class:`EBLAbsorption` its caller read (:func:`extspec.io.ebl_table.read_ebl_table`,
:func:`extspec.io.ebl_table.with_ebl_table`; the workflow's fit steps and
:func:`extspec.io.fitresult.read_fit_result` do so); where it is written to a file it is
written as the config named it (:func:`ebl_record`).

Forward folding (:func:`absorbed_integral`)
-------------------------------------------
The bin integral of the absorbed model is computed in :math:`u = \ln E` by Gauss-Legendre
quadrature (the 16-node rule of :mod:`extspec.models`) on pieces split at every table energy
node inside the bin (and at a broken power law's break): inside a piece :math:`\tau` is linear
in :math:`u`, so the integrand is smooth and the piece is at most one table bin wide (0.01
decade for Dominguez 2011), finer than the table.  Measured against a 64-times finer rule the
relative error is below 1e-13 for every true bin of the default axis (``tests/test_ebl.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .errors import ConfigError, ExtspecError
from .model_spec import as_model_spec
from .model_formulas import _GL_W01, _GL_X01, _subintervals
from .models import SpectralModelType, get_model

__all__ = ["EBL_PARAMS", "EBLAbsorption", "load_absorption", "absorbed_model", "absorbed_integral",
           "spectral_model", "ebl_parameters", "result_model", "intrinsic_values", "ebl_provenance",
           "result_absorption", "check_ebl_block", "DEABSORBED_UNITS", "ebl_record", "deabsorbed_columns"]

EBL_PARAMS = ("redshift", "alpha_norm")
"""The parameters an EBL block adds to a model (after the intrinsic ones), both dimensionless."""

TAU_MAX = -math.log(float(np.finfo(np.float32).tiny))
"""Optical depth read for a table value of 0 (float32 underflow): 87.34."""


_Z_TOL = 1e-6
"""Relative tolerance at the ends of the redshift grid (tables store it as float32)."""


@dataclass(frozen=True, eq=False)
class EBLAbsorption:
    """An EBL attenuation table ready for interpolation.

    Attributes
    ----------
    path, sha256, name : str
        The table file, its SHA-256 and its MODLNAME.
    source : str
        The table as the config names it (a path, or a name such as ``dominguez11``): what
        ``result.yaml`` records.
    redshift : numpy.ndarray
        Redshift grid (strictly increasing).
    log_energy : numpy.ndarray
        ln of the energy-bin centres :math:`\\sqrt{E_lo E_hi}` (TeV).
    values : numpy.ndarray
        exp(-tau), shape (n_redshift, n_energy).
    energy_range : (float, float)
        The table's lowest and highest energy edge (TeV).
    """

    path: str
    sha256: str
    name: str
    redshift: np.ndarray
    log_energy: np.ndarray
    values: np.ndarray
    energy_range: tuple
    source: str

    @classmethod
    def from_table(cls, table, source=None) -> "EBLAbsorption":
        """From an :class:`~extspec.io.xspec_table.XspecTable` (energies in TeV); ``source``: the
        table as the config names it (default: the file)."""
        e = table.energy_edges
        return cls(path=table.path, sha256=table.sha256, name=table.name, redshift=table.param_values,
                   log_energy=0.5 * (np.log(e[:-1]) + np.log(e[1:])), values=table.values,
                   energy_range=(float(e[0]), float(e[-1])), source=str(table.path if source is None else source))

    def check_redshift(self, z: float, key: str = "model.ebl.redshift") -> None:
        """ConfigError naming ``key`` and the table if ``z`` lies outside the redshift grid."""
        lo, hi = float(self.redshift[0]), float(self.redshift[-1])
        if not (lo * (1 - _Z_TOL) <= z <= hi * (1 + _Z_TOL)):
            raise ConfigError(f"config key '{key}': redshift {z:g} outside the EBL table {self.path} "
                              f"(its grid covers z = {lo:g} .. {hi:g})")

    def check_energies(self, e_min, e_max, what: str = "energy", key: str | None = None) -> None:
        """ExtspecError (ConfigError naming ``key`` if given) naming the table if an energy lies
        outside the table's energy range."""
        lo, hi = self.energy_range
        e1, e2 = float(np.min(e_min)), float(np.max(e_max))
        if e1 < lo * (1 - 1e-9) or e2 > hi * (1 + 1e-9):
            msg = (f"EBL table {self.path} covers {lo:.4g} .. {hi:.4g} TeV; the {what} "
                   f"{e1:.4g} .. {e2:.4g} TeV reaches outside it")
            raise ConfigError(f"config key '{key}': {msg}") if key else ExtspecError(msg)

    @cached_property
    def _tau_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """tau at the grid (n_redshift, n_energy) and its PCHIP slopes d tau / dz there."""
        with np.errstate(divide="ignore"):
            tau = np.minimum(-np.log(self.values), TAU_MAX)
        return tau, _pchip_slopes(np.asarray(self.redshift, float), tau)

    def node_tau(self, z: float) -> np.ndarray:
        """tau at the energy-bin centres for redshift ``z``: a monotone cubic (PCHIP) in z through
        the table's tau at the grid redshifts (smooth in z, see the module docstring)."""
        g = self.redshift
        if not (g[0] * (1 - _Z_TOL) <= z <= g[-1] * (1 + _Z_TOL)):
            raise ExtspecError(f"EBL table {self.path}: redshift {z:g} outside its grid {g[0]:g} .. {g[-1]:g}")
        tau, slope = self._tau_grid
        if g.size == 1:
            return tau[0]
        z = min(max(z, g[0]), g[-1])  # the grid's ends as written in decimal (float32 grids)
        i = int(min(max(np.searchsorted(g, z, side="right") - 1, 0), g.size - 2))
        h = float(g[i + 1] - g[i])
        t = (z - g[i]) / h
        h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2  # cubic Hermite basis
        h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
        return h00 * tau[i] + h10 * h * slope[i] + h01 * tau[i + 1] + h11 * h * slope[i + 1]

    def tau(self, energy, z: float) -> np.ndarray:
        """Optical depth at ``energy`` (TeV, any shape) for redshift ``z``."""
        energy = np.asarray(energy, dtype=float)
        return np.interp(np.log(energy), self.log_energy, self.node_tau(z))

    def absorption(self, energy, z: float, alpha_norm: float = 1.0) -> np.ndarray:
        """exp(-alpha_norm * tau(E, z)) at ``energy`` (TeV)."""
        return np.exp(-alpha_norm * self.tau(energy, z))


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slopes dy/dx at the nodes ``x`` (n,) of the monotone piecewise-cubic Hermite interpolant
    of ``y`` (n, ...) (Fritsch & Carlson 1980; Fritsch & Butland 1984): 0 where the data turn,
    else the weighted harmonic mean of the neighbouring secants; one-sided three-point slopes
    at the ends, limited to keep the shape.  The interpolant is C1 and has no overshoot."""
    n = x.size
    if n < 2:
        return np.zeros_like(y)
    h = np.diff(x).reshape((-1,) + (1,) * (y.ndim - 1))
    delta = np.diff(y, axis=0) / h
    d = np.zeros_like(y)
    if n == 2:
        d[:] = delta[0]
        return d
    h0, h1 = h[:-1], h[1:]
    w1, w2 = 2 * h1 + h0, h1 + 2 * h0
    same = (delta[:-1] * delta[1:]) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d[1:-1] = np.where(same, (w1 + w2) / (w1 / np.where(same, delta[:-1], 1.0)
                                               + w2 / np.where(same, delta[1:], 1.0)), 0.0)

    def end(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        e = np.where(np.sign(e) != np.sign(m0), 0.0, e)
        return np.where((np.sign(m0) != np.sign(m1)) & (np.abs(e) > 3 * np.abs(m0)), 3 * m0, e)

    d[0] = end(h[0], h[1], delta[0], delta[1])
    d[-1] = end(h[-1], h[-2], delta[-1], delta[-2])
    return d


def load_absorption(table) -> EBLAbsorption:
    """The table handed in a model block's or fit result's ``ebl.table``: an
    :class:`EBLAbsorption` its caller read (:func:`extspec.io.ebl_table.read_ebl_table`).

    Raises ExtspecError naming the table if it was not read (a path here: this module reads
    no file).
    """
    if isinstance(table, EBLAbsorption):
        return table
    raise ExtspecError(f"EBL table {table}: not read (missing or unreadable, or not handed in: the EBL model "
                       "takes the table extspec.io.ebl_table.read_ebl_table reads)")


def absorbed_integral(base: SpectralModelType, absorption: EBLAbsorption, e_min, e_max, params: dict):
    r"""Bin integrals (cm^-2 s^-1) of ``base`` times exp(-alpha_norm tau(E, z)).

    ``params`` holds the intrinsic parameters plus ``redshift`` and ``alpha_norm``.  The
    integral of each bin is split at the table's energy nodes (and a break energy), and each
    piece is integrated in :math:`\ln E` with the 16-node Gauss-Legendre rule (more
    sub-intervals where the integrand varies fast): see the module docstring.
    """
    p = dict(params)
    z = float(p.pop("redshift"))
    alpha_norm = float(p.pop("alpha_norm"))
    amplitude = float(p.pop("amplitude"))
    e1, e2 = np.broadcast_arrays(np.asarray(e_min, dtype=float), np.asarray(e_max, dtype=float))
    shape = e1.shape
    lo, hi = np.minimum(e1, e2).ravel(), np.maximum(e1, e2).ravel()
    sign = np.where(e2 < e1, -1.0, 1.0).ravel()
    absorption.check_energies(lo, hi, "model integral over")
    tau_nodes = alpha_norm * absorption.node_tau(z)
    nodes = absorption.log_energy
    if "ebreak" in p:  # the broken power law's kink is a piece boundary too
        nodes = np.union1d(nodes, [math.log(float(p["ebreak"]))])
    u_lo, u_hi = np.log(lo), np.log(hi)
    k0 = np.searchsorted(nodes, u_lo, side="right")
    n_in = np.maximum(np.searchsorted(nodes, u_hi, side="left") - k0, 0)
    pieces = n_in + 1
    idx = np.repeat(np.arange(lo.size), pieces)
    j = np.arange(idx.size) - (np.cumsum(pieces) - pieces)[idx]
    last = nodes.size - 1
    a = np.where(j == 0, u_lo[idx], nodes[np.clip(k0[idx] + j - 1, 0, last)])
    b = np.where(j == n_in[idx], u_hi[idx], nodes[np.clip(k0[idx] + j, 0, last)])

    def log_f(u):  # ln(E * phi(E) / amplitude * exp(-alpha tau))
        with np.errstate(divide="ignore", under="ignore"):
            return u + np.log(base.dnde(np.exp(u), amplitude=1.0, **p)) \
                - np.interp(u, absorption.log_energy, tau_nodes)

    with np.errstate(over="ignore", invalid="ignore"):
        width = b - a
        slope = np.abs(log_f(b) - log_f(a)) / np.where(width > 0, width, 1.0)
        m = _subintervals(width, np.where(np.isfinite(slope), slope, 0.0))
        piece = _quad_pieces(log_f, a, b, m)
    total = np.bincount(idx, weights=piece, minlength=lo.size)
    return (amplitude * sign * total).reshape(shape)


def _quad_pieces(log_f, a, b, m):
    """Sum over ``m`` equal sub-intervals of the 16-node rule of exp(log_f) on each [a, b]."""
    sub = np.repeat(np.arange(a.size), m)
    k = np.arange(sub.size) - (np.cumsum(m) - m)[sub]
    h = ((b - a) / m)[sub]
    nodes = (a[sub] + k * h)[:, None] + h[:, None] * _GL_X01
    with np.errstate(under="ignore"):
        vals = np.exp(log_f(nodes)) @ _GL_W01
    return np.bincount(sub, weights=h * vals, minlength=a.size)


def absorbed_model(base, absorption: EBLAbsorption, redshift: float, alpha_norm: float) -> SpectralModelType:
    """``base`` (a model name or type) times the EBL attenuation, as a model type.

    Its parameters are the intrinsic ones followed by ``redshift`` and ``alpha_norm`` (frozen
    by default at the given values); ``dnde`` and ``integral`` include the attenuation.  The
    name stays the intrinsic model's.
    """
    base = get_model(base)

    def dnde(energy, **params):
        z, a = params.pop("redshift"), params.pop("alpha_norm")
        energy = np.asarray(energy, dtype=float)
        absorption.check_energies(energy, energy, "model evaluated at")
        return base.dnde(energy, **params) * absorption.absorption(energy, z, a)

    def integral(e_min, e_max, **params):
        return absorbed_integral(base, absorption, e_min, e_max, params)

    return SpectralModelType(
        name=base.name, param_names=(*base.param_names, *EBL_PARAMS),
        units={**base.units, "redshift": "", "alpha_norm": ""},
        defaults={**base.defaults, "redshift": float(redshift), "alpha_norm": float(alpha_norm)},
        frozen_default=base.frozen_default | set(EBL_PARAMS), dnde=dnde, integral=integral)


def check_ebl_block(ebl: dict, key: str = "model.ebl") -> None:
    """A ``model.ebl`` block with its table handed in: the redshift (value and bounds) lies on the
    table's grid, ``alpha_norm`` is >= 0.

    Raises ConfigError naming the key (and the table).
    """
    absorption = load_absorption(ebl["table"])
    z = ebl["redshift"]
    for v in ([z["value"], z.get("min"), z.get("max")] if isinstance(z, dict) else [z]):
        if v is not None:
            absorption.check_redshift(float(v), f"{key}.redshift")
    a = ebl.get("alpha_norm", 1.0)
    for v in ([a["value"], a.get("min"), a.get("max")] if isinstance(a, dict) else [a]):
        if v is not None and not float(v) >= 0:  # a negative optical depth would amplify
            raise ConfigError(f"config key '{key}.alpha_norm': must be >= 0 (a scale of the optical depth), got {v}")


def ebl_parameters(model) -> dict:
    """``{"redshift": ParameterSpec, "alpha_norm": ParameterSpec}`` of a model's EBL block
    (:class:`~extspec.model_spec.ModelSpec`; empty without one, alpha_norm only when given);
    a free redshift without bounds gets the table's redshift range as bounds, a free
    alpha_norm without a lower bound gets 0."""
    ebl = as_model_spec(model).ebl
    if ebl is None:
        return {}
    out = {"redshift": ebl.redshift}
    if ebl.alpha_norm is not None:
        out["alpha_norm"] = ebl.alpha_norm
    z = out["redshift"]
    if z.frozen is False:  # a free redshift stays on the table's grid
        grid = load_absorption(ebl.table).redshift
        out["redshift"] = replace(z, min=float(grid[0]) if z.min is None else z.min,
                                  max=float(grid[-1]) if z.max is None else z.max)
    a = out.get("alpha_norm")
    if a is not None and a.frozen is False and a.min is None:  # optical depth stays >= 0
        out["alpha_norm"] = replace(a, min=0.0)
    return out


def spectral_model(model) -> SpectralModelType:
    """The model type of a :class:`~extspec.model_spec.ModelSpec`: the intrinsic model, times
    the EBL attenuation of its ``ebl`` when that is given."""
    spec = as_model_spec(model)
    base = get_model(spec.type)
    if spec.ebl is None:
        return base
    absorption = load_absorption(spec.ebl.table)
    given = ebl_parameters(spec)
    alpha = given.get("alpha_norm")
    return absorbed_model(base, absorption, float(given["redshift"].value),
                          1.0 if alpha is None else float(alpha.value))


def ebl_provenance(model) -> dict | None:
    """``{table, sha256, name}`` of a model's EBL table (None without one); ``table`` is the
    handed :class:`EBLAbsorption` (written to files by :func:`ebl_record`)."""
    ebl = as_model_spec(model).ebl
    if ebl is None:
        return None
    a = load_absorption(ebl.table)
    return {"table": a, "sha256": a.sha256, "name": a.name}


def ebl_record(ebl: dict | None) -> dict | None:
    """A fit result's ``ebl`` (:func:`ebl_provenance`) as written to files: ``table`` as the
    config named it."""
    if not ebl:
        return ebl
    t = ebl.get("table")
    return {**ebl, "table": t.source if isinstance(t, EBLAbsorption) else t}


def result_model(result) -> SpectralModelType:
    """The (absorbed, if the fit had an EBL table) model of a :class:`~extspec.fit.FitResult`."""
    if not getattr(result, "ebl", None):
        return get_model(result.model_type)
    v = result.values
    return absorbed_model(result.model_type, load_absorption(result.ebl["table"]), v["redshift"], v["alpha_norm"])


def intrinsic_values(values: dict) -> dict:
    """``values`` without the EBL parameters (the intrinsic model's)."""
    return {k: v for k, v in values.items() if k not in EBL_PARAMS}


def result_absorption(result):
    """``E -> exp(-alpha_norm tau(E, z))`` at the best fit of an absorbed fit result."""
    v = result.values
    table = load_absorption(result.ebl["table"])
    return lambda energy: table.absorption(energy, v["redshift"], v["alpha_norm"])


DEABSORBED_UNITS = {
    "absorption": "", "dnde_intrinsic": "cm-2 s-1 TeV-1", "dnde_intrinsic_err": "cm-2 s-1 TeV-1",
    "dnde_intrinsic_ul": "cm-2 s-1 TeV-1", "e2dnde_intrinsic": "TeV cm-2 s-1",
    "e2dnde_intrinsic_err": "TeV cm-2 s-1", "e2dnde_intrinsic_ul": "TeV cm-2 s-1",
}
"""Flux-point columns of an EBL-absorbed fit: ``absorption`` = exp(-alpha_norm tau) at e_ref
for the best-fit redshift and alpha_norm, and the de-absorbed (intrinsic) points = the observed
ones divided by it."""


def deabsorbed_columns(row: dict, result) -> dict:
    """The :data:`DEABSORBED_UNITS` columns of one flux-point row of an absorbed fit.

    Each point is divided by the attenuation at its e_ref, so the de-absorbed value, error and
    upper limit keep the ratios (and the correlations) of the observed ones.
    """
    a = float(result_absorption(result)(np.array([row["e_ref"]]))[0])
    out = {"absorption": a}
    for k in ("dnde", "dnde_err", "dnde_ul", "e2dnde", "e2dnde_err", "e2dnde_ul"):
        base, _, tail = k.partition("_")
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{base}_intrinsic" + (f"_{tail}" if tail else "")] = float(np.divide(row[k], a))
    return out
