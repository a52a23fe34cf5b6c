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
           "spectrum_plot_arrays", "cumulative_increments", "cumulative_rows_from_increments",
           "CUMULATIVE_INCREMENT_NAMES"]


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


# ------------------------------------------------- the cumulative table from per-batch partials --

CUMULATIVE_INCREMENT_NAMES = ("obs_id", "use", "counts", "counts_off", "acceptance", "alpha_off", "mask",
                              "exposure", "livetime", "gti", "gti_count")
"""The arrays of :func:`cumulative_increments` (what a batch's ``/partials/cumulative`` must hold)."""

_INCREMENT_2D = ("counts", "counts_off", "acceptance", "alpha_off", "mask", "exposure")


def _on_off_recurrence(acc_inc, off_inc, t_inc, acc, off, acc_off, out=None):
    """The OFF-acceptance recurrence of :func:`stack_onto` (float64) over consecutive datasets
    given by their masked increments per reco bin (rows of ``acc_inc`` = mB acc_B, ``off_inc``
    = mB off_B, ``t_inc`` = mB alpha_B off_B), starting from the stack's ``acc``, ``off`` and
    ``acc_off``: at each step ``t`` is recomputed from the stack's own alpha
    (``acc / acc_off``), the same float operations in the same order as stacking the datasets
    one by one (a loop over datasets on arrays of bins; what does not depend on the previous
    step, the running sums of acceptance and OFF counts, computed for all steps at once).
    Returns the last ``(acc, off, acc_off)``; with ``out`` ((datasets, bins)) each step's
    ``acc_off`` is stored in it."""
    n = len(acc_inc)
    if n == 0:
        return acc, off, acc_off
    accs = np.cumsum(np.concatenate([acc[None], acc_inc]), axis=0)  # the same sums, one after the other
    offs = np.cumsum(np.concatenate([off[None], off_inc]), axis=0)
    off_sums = np.ascontiguousarray(offs).sum(axis=1)  # row by row, as off.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_x_off = accs[1:] * offs[1:]
        off_pos = offs[1:] > 0
    nan = np.float64(np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(n):
            alpha_a = np.where(acc_off > 0, accs[i] / acc_off, 0.0)
            t = alpha_a * offs[i] + t_inc[i]
            tot_ratio = t.sum() / off_sums[i + 1] if off_sums[i + 1] > 0 else nan
            acc_off = np.where(off_pos[i], acc_x_off[i] / np.where(t > 0, t, 1), accs[i + 1] / tot_ratio)
            acc_off = np.where(np.isfinite(acc_off), acc_off, 0.0)
            if out is not None:
                out[i] = acc_off
    return accs[-1], offs[-1], acc_off


def cumulative_increments(datasets) -> dict:
    """What each dataset adds to the stack of the cumulative table (float64, §10.1), one row per
    dataset in order: ``use`` (usable with a safe bin: the rows of the table), ``obs_id``, and of
    the used ones, masked by their safe bins, ``counts``, ``counts_off``, ``acceptance``,
    ``alpha_off`` (alpha x OFF counts) per reco bin, ``mask`` (the safe bins), ``exposure`` per
    true bin, ``livetime``, and the GTIs (``gti`` (m, 2), ``gti_count`` per dataset).  The
    arrays a batch reduction stores as its partial (:mod:`extspec.io.batch_arrays`) and
    :func:`cumulative_rows_from_increments` sums."""
    datasets = list(datasets)
    n = len(datasets)
    nr = datasets[0].energy_reco.nbin if n else 0
    nt = datasets[0].energy_true.nbin if n else 0
    out = {"obs_id": np.array([int(d.obs_id) for d in datasets], np.int64), "use": np.zeros(n, bool),
           "counts": np.zeros((n, nr)), "counts_off": np.zeros((n, nr)), "acceptance": np.zeros((n, nr)),
           "alpha_off": np.zeros((n, nr)), "mask": np.zeros((n, nr), bool), "exposure": np.zeros((n, nt)),
           "livetime": np.zeros(n)}
    gtis = []
    for i, d in enumerate(datasets):
        mb = np.asarray(d.mask_safe, bool) & bool(d.usable)
        if not mb.any():
            gtis.append(np.zeros((0, 2)))
            continue
        mbf = mb.astype(np.float64)
        out["use"][i] = True
        out["counts"][i] = mbf * d.counts.astype(np.float64)
        out["counts_off"][i] = mbf * d.counts_off.astype(np.float64)
        out["acceptance"][i] = mbf * d.acceptance.astype(np.float64)
        out["alpha_off"][i] = mbf * d.alpha.astype(np.float64) * d.counts_off.astype(np.float64)
        out["mask"][i] = mb
        out["exposure"][i] = d.exposure
        out["livetime"][i] = d.livetime
        gtis.append(np.asarray(d.gti, np.float64).reshape(-1, 2))
    out["gti"] = np.concatenate(gtis) if gtis else np.zeros((0, 2))
    out["gti_count"] = np.array([len(g) for g in gtis], np.int64)
    return out


def _union_blocks(gti: np.ndarray) -> np.ndarray:
    """The union of intervals as its sorted disjoint blocks (k, 2), the blocks
    :func:`gti_union_duration` adds (the duration of the blocks is the duration of the union)."""
    if gti.size == 0:
        return np.zeros((0, 2))
    g = gti[np.argsort(gti[:, 0], kind="stable")]
    ends = np.maximum.accumulate(g[:, 1])
    first = np.flatnonzero(np.concatenate([[True], g[1:, 0] > ends[:-1]]))
    return np.stack([g[first, 0], ends[np.append(first[1:] - 1, len(g) - 1)]], axis=1)


class _UnionSum:
    """The duration of a union of disjoint sorted blocks, kept as it grows by blocks appended
    after its end: the same float operations as :func:`gti_union_duration` on all the blocks
    (the lengths of all blocks but the last added one after the other, then the last's end
    added and its start subtracted)."""

    def __init__(self, blocks=None):
        self.head = 0.0  # sum of the lengths of all blocks but the last, in order
        self.n = 0
        self.last = None
        if blocks is not None and len(blocks):
            lengths = blocks[:-1, 1] - blocks[:-1, 0]
            self.head = float(np.add.accumulate(lengths)[-1]) if len(lengths) else 0.0
            self.n = len(blocks)
            self.last = (float(blocks[-1, 0]), float(blocks[-1, 1]))

    def append(self, start: float, end: float) -> None:
        if self.last is not None:
            self.head = self.head + (self.last[1] - self.last[0]) if self.n > 1 else self.last[1] - self.last[0]
        self.n += 1
        self.last = (start, end)

    def duration(self) -> float:
        if self.last is None:
            return 0.0
        return float(np.float64(self.head) + self.last[1] - self.last[0]) if self.n > 1 else float(
            np.float64(0.0) + self.last[1] - self.last[0])


def _add_to_union(union: np.ndarray, gti: np.ndarray, done: _UnionSum) -> tuple:
    """``union`` (sorted disjoint blocks) with the intervals ``gti`` added, and its
    :class:`_UnionSum`: appended when ``gti`` starts after the union's end (runs in time order),
    recomputed otherwise."""
    own = gti if len(gti) == 1 else _union_blocks(gti)  # one interval: its own union (the same array)
    if len(own) and (not len(union) or own[0, 0] > union[-1, 1]):
        for a, b in own:
            done.append(float(a), float(b))
        return np.concatenate([union, own]), done
    union = _union_blocks(np.concatenate([union, gti]))
    return union, _UnionSum(union)


def cumulative_rows_from_increments(batches) -> list[dict]:
    """The rows of :func:`cumulative_rows` (float64) from :func:`cumulative_increments` of
    consecutive groups of the datasets (e.g. one per batch reduction), in order, identical to
    them (the same float operations in the same order, tested for equality): running sums
    carried from group to group, the stack's OFF acceptance by :func:`stack_onto`'s recurrence
    (:func:`_on_off_recurrence`, one step per dataset, vectorised over bins), each group's rows
    vectorised (one array per quantity, (rows, bins)).  Only the carried sums and the union of
    the GTIs so far are kept between groups."""
    rows: list[dict] = []
    carry = None
    union, done = np.zeros((0, 2)), _UnionSum()
    for inc in batches:
        use = np.asarray(inc["use"], bool)
        if not use.any():
            continue
        stops = np.cumsum(inc["gti_count"])
        gtis = np.split(np.asarray(inc["gti"], np.float64).reshape(-1, 2), stops[:-1])
        sel = {k: np.asarray(inc[k])[use] for k in (*_INCREMENT_2D, "livetime")}
        if carry is None:
            carry = {k: np.zeros_like(v[0], dtype=bool if k == "mask" else np.float64) for k, v in sel.items()}
            carry["acc_off"] = np.zeros_like(carry["acceptance"])
        cum = {}
        for k, v in sel.items():
            if k == "mask":
                cum[k] = np.logical_or.accumulate(np.concatenate([carry[k][None], v]), axis=0)[1:]
            else:
                cum[k] = np.cumsum(np.concatenate([carry[k][None], v.astype(np.float64)]), axis=0)[1:]
        cum["acc_off"] = np.empty_like(cum["acceptance"])
        _on_off_recurrence(*(sel[k].astype(np.float64) for k in ("acceptance", "counts_off", "alpha_off")),
                           carry["acceptance"], carry["counts_off"], carry["acc_off"], out=cum["acc_off"])
        for k, v in cum.items():
            carry[k] = v[-1]
        ontime = []
        for g in (g for g, u in zip(gtis, use) if u):
            union, done = _add_to_union(union, g, done)
            ontime.append(done.duration())
        obs_ids = np.asarray(inc["obs_id"])[use]
        rows += _rows_of_stacks(cum, np.array(ontime), obs_ids)
    return rows


def _rows_of_stacks(c: dict, ontime: np.ndarray, obs_ids) -> list[dict]:
    """:func:`stack_statistics` (float64) of stacks given per row (counts, OFF counts, acceptance,
    OFF acceptance, safe mask, exposure, livetime), with its float operations: the rows with
    the same safe mask (the mask only grows: a few groups) at once, their safe bins taken out
    as :func:`stack_statistics` takes them (sums over the same elements, row by row)."""
    m = c["mask"]
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha_all = np.where(c["acc_off"] > 0, c["acceptance"] / c["acc_off"], 0.0)
    n = len(m)
    cols = {k: np.zeros(n) for k in ("counts", "off_sum", "alpha_eff", "acceptance", "stat_sum", "sqrt_ts")}
    n_safe = m.sum(axis=1)
    masks, group = np.unique(m, axis=0, return_inverse=True)
    for j, mj in enumerate(masks):
        r = np.flatnonzero(group.ravel() == j)
        # C order: a sum along the rows of a C array adds each row's elements as np.sum does
        n_on, n_off, alpha = (np.ascontiguousarray(v[r][:, mj]) for v in (c["counts"], c["counts_off"], alpha_all))
        off_sum = np.sum(n_off, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha_eff = np.where(off_sum > 0, np.sum(alpha * n_off, axis=1) / n_off.sum(axis=1),
                                 np.mean(alpha, axis=1) if mj.any() else 0.0)
        cols["off_sum"][r] = off_sum
        cols["alpha_eff"][r] = alpha_eff
        cols["counts"][r] = np.sum(n_on, axis=1)
        cols["acceptance"][r] = np.sum(np.ascontiguousarray(c["acceptance"][r][:, mj]), axis=1)
        cols["stat_sum"][r] = np.sum(wstat(n_on, n_off, alpha, 0.0), axis=1)
    off_sum, alpha_eff, counts = cols["off_sum"], cols["alpha_eff"], cols["counts"]
    background = alpha_eff * off_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        acceptance_off = np.where(alpha_eff > 0, cols["acceptance"] / np.where(alpha_eff > 0, alpha_eff, 1), 0.0)
    excess = counts - background
    sqrt_ts = np.where(alpha_eff > 0, wstat_sqrt_ts(counts, off_sum, alpha_eff), 0.0)
    ex = c["exposure"]
    pos = ex > 0
    ex_min = np.where(pos.any(axis=1), np.where(pos, ex, np.inf).min(axis=1), 0.0)
    ex_max = np.where(pos.any(axis=1), np.where(pos, ex, -np.inf).max(axis=1), 0.0)
    lt = c["livetime"]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = [np.where(lt > 0, v / np.where(lt > 0, lt, 1), 0.0) for v in (counts, background, excess)]
    rows = []
    for i, o in enumerate(obs_ids):
        rows.append({
            "obs_id": int(o), "livetime": float(lt[i]), "ontime": float(ontime[i]), "counts": int(round(counts[i])),
            "counts_off": int(round(off_sum[i])), "alpha": float(alpha_eff[i]), "acceptance": float(cols["acceptance"][i]),
            "acceptance_off": float(acceptance_off[i]), "background": float(background[i]),
            "excess": float(excess[i]), "sqrt_ts": float(sqrt_ts[i]), "stat_sum": float(cols["stat_sum"][i]),
            "n_fit_bins": int(n_safe[i]), "exposure_min": float(ex_min[i]), "exposure_max": float(ex_max[i]),
            "counts_rate": float(rates[0][i]), "background_rate": float(rates[1][i]), "excess_rate": float(rates[2][i]),
        })
    return rows


def spectrum_plot_arrays(datasets, flux_int) -> tuple:
    """What the spectrum plot of a fit draws (the positional arguments of
    :func:`extspec.plots.plot_spectrum_fit` before the file name): reco edges, ON and OFF
    counts, alpha, predicted signal counts and safe mask of the datasets stacked in float64,
    identical to :func:`stack_spectra` (the same float operations in the same order: sums over
    the datasets one after the other, the OFF acceptance by :func:`_on_off_recurrence`, the
    kernel's running weighted mean of :func:`stack_onto`; a loop over datasets on arrays of
    bins, without building a stack per dataset), the prediction the model's integral per true
    bin ``flux_int`` folded with the stacked exposure and kernel (:func:`extspec.fit.fold`).
    With no dataset one empty bin (1-10 TeV), for a plot that says so."""
    if not datasets:
        return np.array([1.0, 10.0]), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, bool)
    from .fit import fold, response_matrix

    mb = np.array([np.asarray(d.mask_safe, bool) & bool(d.usable) for d in datasets])
    mbf = mb.astype(np.float64)
    any_b = mb.any(axis=1)
    nr, nt = datasets[0].energy_reco.nbin, datasets[0].energy_true.nbin
    counts_inc = mbf * np.array([d.counts for d in datasets], np.float64)
    counts = np.cumsum(np.concatenate([np.zeros((1, nr)), counts_inc]), axis=0)[-1]  # one after the other
    off_inc = mbf * np.array([d.counts_off for d in datasets], np.float64)
    t_inc = mbf * np.array([d.alpha for d in datasets], np.float64) * np.array([d.counts_off for d in datasets], np.float64)
    acc_inc = mbf * np.array([d.acceptance for d in datasets], np.float64)
    acc, off, acc_off = _on_off_recurrence(acc_inc, off_inc, t_inc, np.zeros(nr), np.zeros(nr), np.zeros(nr))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(acc_off > 0, acc / acc_off, 0.0)
    kern, w_a, exposure = np.zeros((nt, nr)), np.zeros(nt), np.zeros(nt)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, d in enumerate(datasets):
            w_b = d.edisp_weight.astype(np.float64) if any_b[i] else np.zeros_like(w_a)
            den = w_a + w_b
            kern = (w_a[:, None] * kern + w_b[:, None] * (d.edisp * mb[i][None, :])) / den[:, None]
            kern = np.where(den[:, None] > 0, kern, 0.0)
            w_a = den
            exposure = exposure + (d.exposure if any_b[i] else 0.0)
    npred = fold(flux_int, response_matrix(exposure, kern))
    return datasets[0].energy_reco.edges, counts, off, alpha, npred, mb.any(axis=0)
