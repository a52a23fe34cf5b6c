"""Cost of the stack recurrence that makes the cumulative table from per-batch partial sums and
the fit's spectrum-plot arrays identical to stacking the runs one by one (issue 30).

Simulated background-only ON/OFF spectra (``--runs`` runs, ``--bins`` reco bins, 2 true bins
per reco bin), no file I/O: prints the median over ``--repeat`` interleaved repetitions of

- the OFF-acceptance recurrence alone (``stacking._on_off_recurrence``, the loop over runs),
- the cumulative table from the increments in batches of ``--batch`` runs
  (``cumulative_rows_from_increments``) and from the runs (``cumulative_rows``),
- ``spectrum_plot_arrays`` and ``stack_spectra`` (the one-by-one stack it equals).

    python benchmarks/stack_recurrence.py --runs 2000 --bins 6
"""

import argparse
import time

import numpy as np


def _runs(n, nr, seed=1):
    from extspec.geometry import EnergyAxis
    from extspec.spectrum import SpectrumDataset

    rng = np.random.default_rng(seed)
    er, et = EnergyAxis(np.geomspace(0.5, 50, nr + 1)), EnergyAxis(np.geomspace(0.3, 100, 2 * nr + 1))
    out = []
    for o in range(n):
        off = rng.poisson(300, nr)
        acc_off = rng.uniform(5, 12, nr)
        exposure = rng.uniform(1e8, 1e9, 2 * nr)
        out.append(SpectrumDataset(
            obs_id=o + 1, energy_reco=er, energy_true=et, counts=rng.poisson(off / acc_off), counts_off=off,
            acceptance=np.ones(nr), acceptance_off=acc_off, exposure=exposure, edisp=rng.dirichlet(np.ones(nr), 2 * nr),
            edisp_weight=exposure.copy(), mask_safe=np.ones(nr, bool), livetime=1000.0, ontime=1000.0,
            gti=np.array([[2000.0 * o, 2000.0 * o + 1000.0]]), usable=True, on_region="circle", off_regions=[],
            pointing_radec=(0.0, 0.0)))
    return out


def main():
    from extspec.stacking import (_on_off_recurrence, cumulative_increments, cumulative_rows,
                                  cumulative_rows_from_increments, spectrum_plot_arrays, stack_spectra)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--bins", type=int, default=6)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    runs = _runs(a.runs, a.bins)
    incs = [cumulative_increments(runs[i:i + a.batch]) for i in range(0, len(runs), a.batch)]
    whole = cumulative_increments(runs)
    flux = np.full(2 * a.bins, 1e-12)
    z = np.zeros(a.bins)
    cases = {
        "recurrence (loop over runs)": lambda: _on_off_recurrence(whole["acceptance"], whole["counts_off"],
                                                                  whole["alpha_off"], z, z, z),
        "cumulative from increments": lambda: cumulative_rows_from_increments(incs),
        "cumulative from runs": lambda: cumulative_rows(runs, float32=False),
        "spectrum_plot_arrays": lambda: spectrum_plot_arrays(runs, flux),
        "stack_spectra": lambda: stack_spectra(runs, float32=False),
    }
    assert cases["cumulative from increments"]() == cases["cumulative from runs"]()
    times = {k: [] for k in cases}
    for _ in range(a.repeat):  # interleaved
        for k, f in cases.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    for k, v in times.items():
        print(f"{k} at {a.runs} runs x {a.bins} bins: {1e3 * np.median(v):.1f} ms")


if __name__ == "__main__":
    main()
