"""Stacking ON/OFF spectra and the cumulative excess/significance table (spec §10-§11).

Stacking B onto A (B's safe mask mB applied to all of B's quantities), per reco bin::

    acc     = acc_A + mB acc_B
    off     = off_A + mB off_B
    t       = alpha_A off_A + mB alpha_B off_B
    acc_off = acc off / t                              (off > 0)
            = acc / (sum t / sum off)                  (off = 0)

exposure and livetime add when B has a safe bin; kernels are averaged per true bin weighted
by ``edisp_weight``; GTIs are united.  ``float32=True`` reproduces the reference's float32
arithmetic in exactly these steps ([REF-QUIRK]); the default is float64.
"""

from __future__ import annotations

import numpy as np

from .spectrum import SpectrumDataset
from .stats import wstat, wstat_sqrt_ts

__all__ = ["stack_spectra", "stack_onto", "cumulative_rows", "gti_union_duration", "CUMULATIVE_COLUMNS",
           "spectrum_plot_arrays"]


def gti_union_duration(gti: np.ndarray) -> float:
    """Total duration (s) of the union of intervals.

    Vectorised (the cumulative table calls it once per run on all intervals so far): sorted by
    start, a new block begins where a start exceeds the running maximum of the ends; the
    blocks' lengths are added one after the other, the last as ``(total + end) - start``,
    the same float operations in the same order as a loop over the intervals.
    """
    if gti.size == 0:
        return 0.0
    g = gti[np.argsort(gti[:, 0])]
    ends = np.maximum.accumulate(g[:, 1])
    first = np.flatnonzero(np.concatenate([[True], g[1:, 0] > ends[:-1]]))
    block_s = g[first, 0]
    block_e = ends[np.append(first[1:] - 1, len(g) - 1)]
    total = np.add.accumulate(block_e[:-1] - block_s[:-1])[-1] if len(first) > 1 else 0.0
    return float(total + block_e[-1] - block_s[-1])


def _empty_like(d: SpectrumDataset, dtype) -> SpectrumDataset:
    nr, nt = d.energy_reco.nbin, d.energy_true.nbin
    return SpectrumDataset(
        obs_id=0, energy_reco=d.energy_reco, energy_true=d.energy_true,
        counts=np.zeros(nr, dtype), counts_off=np.zeros(nr, dtype), acceptance=np.zeros(nr, dtype),
        acceptance_off=np.zeros(nr, dtype), exposure=np.zeros(nt, dtype), edisp=np.zeros((nt, nr), dtype),
        edisp_weight=np.zeros(nt, dtype), mask_safe=np.zeros(nr, bool), livetime=0.0, ontime=0.0,
        gti=np.zeros((0, 2)), on_region=d.on_region, meta={"stacked_obs_ids": []},
    )


def stack_onto(a: SpectrumDataset, b: SpectrumDataset, float32: bool) -> SpectrumDataset:
    """Return the stack of ``b`` onto ``a`` (§10.1); ``a`` is not modified."""
    ft = np.float32 if float32 else np.float64
    mb = np.asarray(b.mask_safe, bool) & b.usable
    mbf = mb.astype(ft)
    any_b = bool(mb.any())
    acc = (a.acceptance.astype(ft) + mbf * b.acceptance.astype(ft)).astype(ft)
    off = (a.counts_off.astype(ft) + mbf * b.counts_off.astype(ft)).astype(ft)
    alpha_a = a.alpha.astype(ft)
    alpha_b = b.alpha.astype(ft)
    t = (alpha_a * a.counts_off.astype(ft) + mbf * alpha_b * b.counts_off.astype(ft)).astype(ft)
    with np.errstate(invalid="ignore", divide="ignore"):
        tot_ratio = ft(t.sum() / off.sum()) if off.sum() > 0 else ft(np.nan)
        acc_off = np.where(off > 0, acc * off / np.where(t > 0, t, 1), acc / tot_ratio).astype(ft)
    acc_off = np.where(np.isfinite(acc_off), acc_off, 0).astype(ft)
    on = (a.counts.astype(ft) + mbf * b.counts.astype(ft)).astype(ft)
    w_a = a.edisp_weight.astype(np.float64)
    w_b = b.edisp_weight.astype(np.float64) if any_b else np.zeros_like(w_a)
    den = w_a + w_b
    with np.errstate(invalid="ignore", divide="ignore"):
        kern = (w_a[:, None] * a.edisp + w_b[:, None] * (b.edisp * mb[None, :])) / den[:, None]
    kern = np.where(den[:, None] > 0, kern, 0.0)
    exposure = a.exposure + (b.exposure if any_b else 0.0)
    gti = np.concatenate([a.gti, b.gti]) if any_b else a.gti
    meta = dict(a.meta)
    meta["stacked_obs_ids"] = list(a.meta.get("stacked_obs_ids", [])) + ([int(b.obs_id)] if any_b else [])
    return SpectrumDataset(
        obs_id=0, energy_reco=a.energy_reco, energy_true=a.energy_true,
        counts=on, counts_off=off, acceptance=acc, acceptance_off=acc_off,
        exposure=exposure.astype(ft) if float32 else exposure, edisp=kern,
        edisp_weight=den, mask_safe=np.asarray(a.mask_safe, bool) | mb,
        livetime=a.livetime + (b.livetime if any_b else 0.0),
        ontime=gti_union_duration(gti), gti=gti, usable=True, on_region=a.on_region,
        off_regions=list(a.off_regions) + (list(b.off_regions) if any_b else []), meta=meta,
    )


def stack_spectra(datasets, float32: bool) -> SpectrumDataset:
    """Stack all datasets in order, starting from an empty stack (§11 stack_reduce)."""
    datasets = list(datasets)
    stack = _empty_like(datasets[0], np.float32 if float32 else np.float64)
    for d in datasets:
        stack = stack_onto(stack, d, float32)
    return stack


CUMULATIVE_COLUMNS = {
    "obs_id": "", "livetime": "s", "ontime": "s", "counts": "", "counts_off": "", "alpha": "",
    "acceptance": "", "acceptance_off": "", "background": "", "excess": "", "sqrt_ts": "",
    "stat_sum": "", "n_fit_bins": "", "exposure_min": "m2 s", "exposure_max": "m2 s",
    "counts_rate": "s-1", "background_rate": "s-1", "excess_rate": "s-1",
}


def stack_statistics(stack: SpectrumDataset, float32: bool) -> dict:
    """Counts, background, excess and significance of one stacked spectrum (§10.2), summed over
    its safe mask: the statistics of one row of the cumulative table."""
    m = np.asarray(stack.mask_safe, bool)
    n_on = stack.counts[m]
    n_off = stack.counts_off[m]
    alpha = stack.alpha[m]
    if float32:
        alpha = (stack.acceptance[m].astype(np.float32) / stack.acceptance_off[m].astype(np.float32))
    off_sum = float(np.sum(n_off))
    if off_sum > 0:
        alpha_eff = float(np.sum(alpha * n_off) / n_off.sum()) if not float32 else float(
            np.float32(np.sum((alpha * n_off).astype(np.float32), dtype=np.float32) / np.float32(n_off.sum())))
    else:
        alpha_eff = float(np.mean(alpha)) if alpha.size else 0.0
    counts = float(np.sum(n_on))
    background = alpha_eff * off_sum
    acceptance = float(np.sum(stack.acceptance[m]))
    acceptance_off = acceptance / alpha_eff if alpha_eff > 0 else 0.0
    if float32:
        background = float(np.float32(alpha_eff) * np.float32(off_sum))
        acceptance_off = float(np.float32(acceptance) / np.float32(alpha_eff)) if alpha_eff > 0 else 0.0
    excess = counts - background
    ex = stack.exposure[stack.exposure > 0]
    lt = stack.livetime
    return {
        "livetime": float(lt),
        "ontime": float(stack.ontime),
        "counts": int(round(counts)),
        "counts_off": int(round(off_sum)),
        "alpha": alpha_eff,
        "acceptance": acceptance,
        "acceptance_off": acceptance_off,
        "background": background,
        "excess": excess,
        "sqrt_ts": float(wstat_sqrt_ts(counts, off_sum, alpha_eff)) if alpha_eff > 0 else 0.0,
        "stat_sum": float(np.sum(wstat(n_on, n_off, alpha, 0.0))),
        "n_fit_bins": int(m.sum()),
        "exposure_min": float(ex.min()) if ex.size else 0.0,
        "exposure_max": float(ex.max()) if ex.size else 0.0,
        "counts_rate": counts / lt if lt > 0 else 0.0,
        "background_rate": background / lt if lt > 0 else 0.0,
        "excess_rate": excess / lt if lt > 0 else 0.0,
    }


def cumulative_rows(datasets, float32: bool) -> list[dict]:
    """One row per usable dataset in input order, each the stack of it and all before it (§10)."""
    usable = [d for d in datasets if d.usable and np.any(d.mask_safe)]
    if not usable:
        return []
    rows = []
    stack = _empty_like(usable[0], np.float32 if float32 else np.float64)
    for d in usable:
        stack = stack_onto(stack, d, float32)
        row = {"obs_id": int(d.obs_id)}
        row.update(stack_statistics(stack, float32))
        rows.append(row)
    return rows


def spectrum_plot_arrays(datasets, flux_int) -> tuple:
    """What the spectrum plot of a fit draws (the positional arguments of
    :func:`extspec.plots.plot_spectrum_fit` before the file name): reco edges, ON and OFF
    counts, alpha, predicted signal counts and safe mask of the datasets stacked in float64
    (:func:`stack_spectra`), the prediction the model's integral per true bin ``flux_int``
    folded with the stacked exposure and kernel (:func:`extspec.fit.fold`).  With no dataset
    one empty bin (1-10 TeV), for a plot that says so."""
    if not datasets:
        return np.array([1.0, 10.0]), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, bool)
    from .fit import fold, response_matrix

    stack = stack_spectra(datasets, float32=False)
    npred = fold(flux_int, response_matrix(stack.exposure, stack.edisp))
    return stack.energy_reco.edges, stack.counts, stack.counts_off, stack.alpha, npred, stack.mask_safe
