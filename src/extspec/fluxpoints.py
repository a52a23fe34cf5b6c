"""Flux points: per-group normalisation fits of the best-fit model (spec §12.1).

For each reco-energy group the model shape is frozen at the joint-fit values and only a
norm (start 1, no bounds) is fitted with the minimiser of §9 on the group's bins of every
dataset.  Outputs follow the GADF SED format (e_ref, e_min, e_max, dnde, dnde_err, dnde_ul,
ts, sqrt_ts, norm, norm_err, norm_ul, is_ul, counts, npred ...).

The norm fits are :func:`extspec.norms.fit_norm` (errors from MIGRAD's covariance, as the
reference) and :func:`extspec.norms.norm_upper_limit` (upper limits from the profile of W in
the norm): the norm above the best fit where W rises by ``n_sigma_ul^2`` (4 for the
default 2 sigma, the gammapy convention quoted as "95 %"); an upper limit is flagged where
sqrt_ts < ``sqrt_ts_threshold_ul`` (2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fit import JointData
from .ebl import result_model
from .models import integrator
from .norms import fit_norm, norm_upper_limit

__all__ = ["FluxPointSettings", "snap_edges", "compute_flux_points", "flux_point_rows", "SED_UNITS",
           "SQRT_TS_THRESHOLD_UL", "sed_meta", "add_deabsorbed", "sed_columns", "sed_models", "flux_point_edges"]

SQRT_TS_THRESHOLD_UL = 2.0
"""A flux point is flagged as an upper limit where its sqrt(TS) is below this."""


@dataclass(frozen=True)
class FluxPointSettings:
    """The ``flux_points`` config block, typed (no defaults here: the schema holds them).

    Attributes
    ----------
    energy_edges : sequence of TeV or None
        Requested group edges, snapped to reco edges; None: each bin of the safe range.
    n_sigma_ul : float
        Upper limits where W rises by ``n_sigma_ul**2`` above its minimum.
    """

    energy_edges: tuple | None
    n_sigma_ul: float

SED_UNITS = {
    "e_ref": "TeV", "e_min": "TeV", "e_max": "TeV", "dnde": "cm-2 s-1 TeV-1", "dnde_err": "cm-2 s-1 TeV-1",
    "dnde_ul": "cm-2 s-1 TeV-1", "e2dnde": "TeV cm-2 s-1", "e2dnde_err": "TeV cm-2 s-1",
    "e2dnde_ul": "TeV cm-2 s-1", "norm": "", "norm_err": "", "norm_ul": "", "ts": "", "sqrt_ts": "",
    "is_ul": "", "counts": "", "npred": "", "flux": "cm-2 s-1", "flux_err": "cm-2 s-1",
    "ref_dnde": "cm-2 s-1 TeV-1", "ref_flux": "cm-2 s-1", "ref_eflux": "TeV cm-2 s-1",
}
"""Columns of the flux-point table and their units.  ``counts`` and ``npred`` hold one value
per dataset of the fit (in its order), ``ref_*`` the best-fit model (dnde at e_ref, integral
and energy flux over the bin): with these the table is a GADF SED table of type
``likelihood`` (``norm`` relative to the reference), as ``gammapy`` reads it.  For an
EBL-absorbed model these are the observed (absorbed) values, and the columns of
:data:`extspec.ebl.DEABSORBED_UNITS` follow."""


def snap_edges(requested, reco_edges) -> np.ndarray:
    """Snap requested energies to reco-bin edges (§12.1 step 1); duplicates removed."""
    ln = np.log(reco_edges)
    n = reco_edges.size - 1
    step = (ln[-1] - ln[0]) / n
    u = (np.log(np.asarray(requested, float)) - ln[0]) / step - 0.5
    u = np.clip(u, -0.5, n - 0.5)
    idx = np.round(u + 0.5).astype(int)  # numpy rounds halves to even
    idx = np.unique(np.clip(idx, 0, n))
    return reco_edges[idx]


def _energy_flux(model, e_lo: float, e_hi: float, params: dict, nodes: int = 32) -> float:
    """Energy flux of the model over [e_lo, e_hi] (TeV cm^-2 s^-1): the integral of E^2 dN/dE
    over ln E by Gauss-Legendre quadrature (``nodes`` points; smooth integrand)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = np.log(e_lo), np.log(e_hi)
    energy = np.exp(0.5 * (b - a) * x + 0.5 * (b + a))
    return float(0.5 * (b - a) * np.sum(w * energy**2 * model.dnde(energy, **params)))


def flux_point_edges(reco, energy_edges, energy_range) -> np.ndarray:
    """The group edges of flux points on reco edges ``reco``: the requested ``energy_edges``
    snapped to them (:func:`snap_edges`), or with none requested every reco edge inside the
    fitted ``energy_range`` ([lo, hi] TeV)."""
    if energy_edges is not None:
        return snap_edges(energy_edges, reco)
    lo, hi = energy_range
    return reco[(reco >= lo * (1 - 1e-9)) & (reco <= hi * (1 + 1e-9))]


def compute_flux_points(datasets, fit_result, settings: FluxPointSettings, integration: str,
                        sqrt_ts_threshold_ul: float = SQRT_TS_THRESHOLD_UL) -> list[dict]:
    """Flux points for the best-fit model of ``fit_result`` (§12.1).

    Parameters
    ----------
    datasets : list of SpectrumDataset

    fit_result : FitResult

    settings : FluxPointSettings
        Groups without a safe bin in any dataset give no row.
    integration : {"exact", "reference"}
        Model integral over true bins (the fit's ``fit.integration``).
    """
    energy_edges, n_sigma_ul = settings.energy_edges, settings.n_sigma_ul
    data = JointData(datasets)
    if len(data) == 0:
        return []
    model = result_model(fit_result)  # the absorbed model when the fit had an EBL table
    best = fit_result.values
    edges = flux_point_edges(data.datasets[0].energy_reco.edges, energy_edges, fit_result.energy_range)
    flux_true = integrator(model, integration, "fit.integration")(data.e_min, data.e_max, best)
    rows = flux_point_rows([(data, data.npred_sig(flux_true))], model, best, edges, n_sigma_ul,
                           sqrt_ts_threshold_ul)
    return add_deabsorbed(rows, fit_result)


def sed_meta(result, n_sigma_ul, extra: dict) -> dict:
    """The metadata of a flux-point table (GADF SED format) of fit ``result``, then ``extra``."""
    return {"SED_TYPE": "likelihood", "UL_CONF": 0.95, "n_sigma_ul": n_sigma_ul, "model": result.model_type,
            "fit_success": bool(result.success), "fit_status": result.status, **extra}


def add_deabsorbed(rows: list, fit_result) -> list:
    """``rows`` with the de-absorbed columns (:func:`extspec.ebl.deabsorbed_columns`) added in
    place when ``fit_result`` has an EBL table."""
    if fit_result.ebl:
        from .ebl import deabsorbed_columns

        for row in rows:
            row.update(deabsorbed_columns(row, fit_result))
    return rows


def sed_columns(fit_result) -> tuple[dict, dict]:
    """(columns with units, extra metadata) of the flux-point table of ``fit_result``: the
    :data:`SED_UNITS`, plus the de-absorbed columns and ``ebl`` (the table) for an absorbed fit."""
    if not fit_result.ebl:
        return dict(SED_UNITS), {}
    from .ebl import DEABSORBED_UNITS, ebl_record

    return {**SED_UNITS, **DEABSORBED_UNITS}, {"ebl": ebl_record(fit_result.ebl)}


def sed_models(fit_result, n_energies: int = 100) -> dict:
    """The model curves of the SED plot of ``fit_result`` as keyword arguments of
    :func:`extspec.plots.plot_sed`: ``model_dnde`` (the observed, i.e. absorbed, model),
    ``butterfly`` (its 1-sigma band over the fit range, None for a failed fit or no range) and,
    for an EBL-absorbed fit, ``intrinsic`` (the intrinsic model and its band); and
    ``title_suffix`` naming the EBL table and redshift (empty without one)."""
    from .ebl import intrinsic_values
    from .models import get_model, sed_butterfly

    model = result_model(fit_result)
    intrinsic = get_model(fit_result.model_type)
    values = fit_result.values

    def dnde(e, **p):
        return model.dnde(np.asarray(e, float), **p)

    def dnde_intrinsic(e, **p):
        return intrinsic.dnde(np.asarray(e, float), **intrinsic_values(p))

    emin, emax = fit_result.energy_range
    band = band_int = None
    if fit_result.success and np.all(np.isfinite([emin, emax])):
        energies = np.geomspace(emin, emax, n_energies)
        band = (energies, *sed_butterfly(dnde, values, *fit_result.free_covariance(), energies))
        if fit_result.ebl:
            band_int = (energies, *sed_butterfly(dnde_intrinsic, values, *fit_result.free_covariance(), energies))
    return {"model_dnde": lambda e: dnde(e, **values), "butterfly": band,
            "intrinsic": (lambda e: dnde_intrinsic(e, **values), band_int) if fit_result.ebl else None,
            "title_suffix": (f", EBL {fit_result.ebl['name'] or 'table'} z = {values['redshift']:.4g}"
                             if fit_result.ebl else "")}


def flux_point_rows(parts, model, best: dict, edges, n_sigma_ul: float,
                    sqrt_ts_threshold_ul: float = SQRT_TS_THRESHOLD_UL) -> list[dict]:
    """One flux point per group ``[edges[k], edges[k+1])`` from datasets of one or several binnings.

    ``parts``: ``(JointData, mu_best)`` pairs, ``mu_best`` the predicted signal counts
    (n_datasets, n_reco) of the best fit at norm 1.  A group holds the reco bins of every
    part whose log-centre lies inside it (for edges on a part's reco edges: exactly the bins
    between them); one norm is fitted to the sum of their WStat.  ``counts`` and ``npred``
    list one value per dataset, parts in order.
    """
    rows = []
    for e_lo, e_hi in zip(edges[:-1], edges[1:]):
        group = []
        for data, mu_best in parts:
            centre = data.datasets[0].energy_reco.centers
            sel = (centre >= e_lo) & (centre < e_hi)
            group.append((data.counts_masked[:, sel], data.counts_off_masked[:, sel], data.alpha_masked[:, sel],
                          data.mask[:, sel], mu_best[:, sel]))
        if not any(mask.any() for *_, mask, _ in group):
            continue  # no safe bin of any run in this group: no measurement, no row
        nf = fit_norm(group)  # the norm profile (extspec.norms)
        norm, norm_err, norm_ul = nf.norm, nf.norm_err, norm_upper_limit(nf, n_sigma_ul**2)
        ts, sqrt_ts = nf.ts, nf.sqrt_ts
        e_ref = float(np.sqrt(e_lo * e_hi))
        ref = float(model.dnde(np.array([e_ref]), **best)[0])
        flux = float(model.integral(np.array([e_lo]), np.array([e_hi]), **best)[0])
        rows.append({
            "e_ref": e_ref, "e_min": float(e_lo), "e_max": float(e_hi),
            "norm": norm, "norm_err": norm_err, "norm_ul": float(norm_ul),
            "dnde": norm * ref, "dnde_err": norm_err * ref, "dnde_ul": float(norm_ul) * ref,
            "e2dnde": norm * ref * e_ref**2, "e2dnde_err": norm_err * ref * e_ref**2,
            "e2dnde_ul": float(norm_ul) * ref * e_ref**2,
            "flux": norm * flux, "flux_err": norm_err * flux,
            "ts": float(ts), "sqrt_ts": sqrt_ts, "is_ul": bool(sqrt_ts < sqrt_ts_threshold_ul),
            "counts": [int(c) for n, _, _, mask, _ in group for c in np.sum(np.where(mask, n, 0), axis=1)],
            "npred": [float(v) for _, _, _, mask, mu in group for v in np.sum(np.where(mask, norm * mu, 0.0), axis=1)],
            "ref_dnde": ref, "ref_flux": flux, "ref_eflux": _energy_flux(model, float(e_lo), float(e_hi), best),
            "success": nf.success,
        })
    return rows
