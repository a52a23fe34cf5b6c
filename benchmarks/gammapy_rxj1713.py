"""The 15-run RX J1713 analysis done with gammapy 2.1, as the yardstick of ``benchmarks/everyday.py``.

Not part of extspec (gammapy is no dependency of the library): a plain user script doing what
the workflow's default products hold, with gammapy's own makers, on the same runs and settings
as ``config/config.yaml`` with the 15 runs of the benchmark:

* per run: a 1D ON/OFF spectrum (``SpectrumDatasetMaker`` counts/exposure/edisp,
  ``ReflectedRegionsBackgroundMaker``, ``SafeMaskMaker`` aeff-default + aeff-max 10 %);
* a counts image of every run's events (1.5 x 1.5 deg, 0.04 deg, galactic CAR) drawn with the
  ON region, as the ``stack`` rule's picture;
* the joint power-law WStat fit (reference 1 TeV), its spectrum drawn;
* flux points, one per reconstructed-energy bin, drawn;
* the cumulative table (``Datasets.info_table(cumulative=True)``), its excess / significance
  drawn;
* every product written (OGIP sets, FITS image, YAML fit, ECSV flux points and table, PNGs).

Usage: python benchmarks/gammapy_rxj1713.py OUTDIR [--datastore PATH] [--obs-ids ...]
Prints ``gammapy 15-run analysis (in-process): <s> s`` (the script's own work, imports excluded)
and the fitted index.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

RXJ_RUNS = [20326, 20327, 20349, 20350, 20396, 20397, 20421, 20422, 20517, 20518, 20519, 20521,
            20898, 20899, 20900]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--datastore", default=os.environ.get("EXTSPEC_DATASTORE", "../shared/data/hess-dl3-dr1"))
    ap.add_argument("--obs-ids", type=int, nargs="*", default=RXJ_RUNS)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import astropy.units as u
    import matplotlib.pyplot as plt
    from astropy.coordinates import Angle, SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import Datasets, SpectrumDataset
    from gammapy.estimators import FluxPointsEstimator
    from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
    from gammapy.maps import MapAxis, RegionGeom, WcsGeom, WcsNDMap
    from gammapy.modeling import Fit
    from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
    from regions import CircleSkyRegion

    t0 = time.perf_counter()
    out = args.outdir
    (out / "obs").mkdir(parents=True, exist_ok=True)
    store = DataStore.from_dir(args.datastore)
    observations = store.get_observations(args.obs_ids, required_irf=["aeff", "edisp"])

    center = SkyCoord(347.3, -0.5, unit="deg", frame="galactic")
    on = CircleSkyRegion(center=center, radius=Angle(0.5, "deg"))
    e_reco = MapAxis.from_energy_bounds(0.3, 40, 10, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.05, 100, 30, unit="TeV", name="energy_true")
    geom = RegionGeom.create(region=on, axes=[e_reco])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=e_true)
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])
    bkg_maker = ReflectedRegionsBackgroundMaker()
    safe = SafeMaskMaker(methods=["aeff-default", "aeff-max"], aeff_percent=10)

    image = WcsNDMap.create(skydir=center, width=1.5, binsz=0.04, frame="galactic", proj="CAR")
    datasets = Datasets()
    for obs in observations:
        ds = maker.run(empty.copy(name=str(obs.obs_id)), obs)
        ds = bkg_maker.run(ds, obs)
        ds = safe.run(ds, obs)
        ds.write(out / "obs" / f"pha_obs{obs.obs_id}.fits", overwrite=True)
        datasets.append(ds)
        image.fill_events(obs.events)

    image.write(out / "counts.fits", overwrite=True)
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection=image.geom.wcs)
    image.plot(ax=ax, add_cbar=True)
    on.to_pixel(image.geom.wcs).plot(ax=ax, edgecolor="white")
    fig.savefig(out / "counts.png")
    plt.close(fig)

    model = SkyModel(spectral_model=PowerLawSpectralModel(index=2, amplitude="1e-12 cm-2 s-1 TeV-1",
                                                          reference="1 TeV"), name="rxj")
    datasets.models = [model]
    result = Fit().run(datasets=datasets)
    model.spectral_model.parameters.to_table().write(out / "fit.ecsv", overwrite=True)
    (out / "fit.yaml").write_text(f"success: {result.success}\n{datasets.models.to_dict()}\n")
    fig, ax = plt.subplots()
    model.spectral_model.plot(energy_bounds=[0.3, 40] * u.TeV, ax=ax, sed_type="e2dnde")
    fig.savefig(out / "spectrum.png")
    plt.close(fig)

    fpe = FluxPointsEstimator(energy_edges=e_reco.edges, source="rxj", selection_optional=[])
    fp = fpe.run(datasets=datasets)
    fp.write(out / "flux_points.ecsv", overwrite=True, sed_type="e2dnde")
    fig, ax = plt.subplots()
    fp.plot(ax=ax, sed_type="e2dnde")
    fig.savefig(out / "flux_points.png")
    plt.close(fig)

    table = datasets.info_table(cumulative=True)
    table.write(out / "cumulative.ecsv", overwrite=True)
    fig, ax = plt.subplots()
    ax.plot(table["livetime"].quantity.to_value("h"), table["excess"], "o-")
    ax.plot(table["livetime"].quantity.to_value("h"), table["sqrt_ts"], "s-")
    fig.savefig(out / "cumulative.png")
    plt.close(fig)

    print(f"gammapy {len(observations)}-run analysis (in-process): {time.perf_counter() - t0:.2f} s", flush=True)
    idx = model.spectral_model.index
    print(f"gammapy fitted index: {idx.value:.4f} +- {idx.error:.4f}", flush=True)


if __name__ == "__main__":
    main()
