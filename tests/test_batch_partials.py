"""Per-batch partial sums (issue 30): each batch job stores in its arrays file its summed counts
cube, its sky-map sums and what each run adds to the cumulative table; the stack and cumulative
steps combine those partials instead of reading every run, with the same results (counts and
the cumulative table exactly, the map sums' floats within their stated tolerance), and fall back to the runs when a partial is not
the batch's (digest) or was summed over another normalisation region (key)."""

import json
import shutil

import numpy as np
import pytest
import yaml

from extspec.cli import main


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """Six simulated runs reduced as two batches (1-3, 4-6) with digest-named manifests."""
    from extspec.io.batch import manifest_name
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    base = tmp_path_factory.mktemp("partials")
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(base / "store", wobble_pointings(83.63, 22.01, 6, 0.5), src, livetime=600.0)
    cfg = {"name": "sim", "datastore": str(store), "obs_ids": [1, 2, 3, 4, 5, 6],
           "on_region": "icrs;circle(83.63,22.01,0.2)", "geom": {"width": [2.0, 2.0], "frame": "icrs"},
           "reduce": {"batch_size": 3}}
    cf = base / "sim.yaml"
    cf.write_text(yaml.safe_dump(cfg))
    obs = base / "obs"
    manifests = []
    for key, ids in ((0, [1, 2, 3]), (1, [4, 5, 6])):
        m = obs / manifest_name(key, ids)
        assert main(["reduce-batch", *map(str, ids), "--outroot", str(obs), "--manifest", str(m), "--config", str(cf),
                     "--quiet"]) == 0
        manifests.append(m)
    return {"base": base, "config": cf, "cfg": cfg, "obs": obs, "manifests": manifests,
            "runs": [obs / str(o) for o in range(1, 7)]}


def _stack(reduced, inputs, out, config=None):
    assert main(["stack", *map(str, inputs), "--fits", f"{out}/counts.fits", "--png", f"{out}/counts.png",
                 "--excess", f"{out}/excess.fits", "--significance", f"{out}/sig.fits", "--maps-png", f"{out}/maps.png",
                 "--config", str(config or reduced["config"]), "--quiet"]) == 0
    from astropy.io import fits

    return {n: fits.getdata(out / f"{n}.fits") for n in ("counts", "excess", "sig")}


def test_batch_arrays_hold_partials_keyed_by_the_manifest_digest(reduced):
    import h5py

    from extspec.io.batch_arrays import partial_sources

    for m in reduced["manifests"]:
        arrays = m.with_suffix(".h5")
        with h5py.File(arrays) as f:
            p = f["partials"]
            assert p.attrs["digest"] == m.name.split(".")[1] and len(p.attrs["digest"]) == 8
            assert list(p["obs_ids"][()]) == list(f["spectra"]["obs_id"][()])
            # the batch's summed counts cube: the runs' cubes added (integers)
            assert np.array_equal(p["stack"]["cube_counts"][()], f["cubes"]["counts"][()].astype(np.int64).sum(axis=0))
            assert p["stack"]["cube_counts"][()].sum() > 100
    assert partial_sources(reduced["manifests"], "stack") == [str(m.with_suffix(".h5")) for m in reduced["manifests"]]
    assert partial_sources(reduced["runs"], "stack") is None  # run folders: read as before


def test_stack_from_partials_equals_the_runs(reduced, tmp_path):
    from extspec.maps import MAP_SUMS_RTOL, add_map_sums, map_sums, sums_of_partial
    from extspec.io.batch_arrays import iter_partials, partial_sources, read_cube_counts_all
    from extspec.workflow.pipeline import _norm_mask

    a = _stack(reduced, reduced["manifests"], tmp_path / "partials")
    b = _stack(reduced, reduced["runs"], tmp_path / "runs")
    assert a["counts"].dtype == b["counts"].dtype and np.array_equal(a["counts"], b["counts"]) and a["counts"].sum() > 500
    for n in ("excess", "sig"):  # float32 maps of float64 sums added in another order
        assert np.isfinite(a[n]).sum() > 100
        np.testing.assert_allclose(a[n], b[n], rtol=1e-6, atol=1e-6, equal_nan=True)
    assert np.nanmax(a["sig"]) > 3
    # the float64 sums themselves: counts exact, background within MAP_SUMS_RTOL
    cubes = [c for _, c in read_cube_counts_all([r / "cube.h5" for r in reduced["runs"]])]
    mask = _norm_mask(reduced["cfg"], cubes[0].geom)
    whole = map_sums([c.counts.sum(axis=0) for c in cubes], [c.background.sum(axis=0) for c in cubes],
                     [c.obs_id for c in cubes], mask)
    parts = add_map_sums(sums_of_partial(p) for p in iter_partials(partial_sources(reduced["manifests"], "stack"),
                                                                     "stack"))
    assert np.array_equal(parts.counts, whole.counts) and parts.n_norm == whole.n_norm > 10
    np.testing.assert_allclose(parts.background, whole.background, rtol=MAP_SUMS_RTOL, atol=0)
    assert parts.norms == pytest.approx(whole.norms, rel=1e-15) and list(parts.norms) == [1, 2, 3, 4, 5, 6]


def test_cumulative_from_partials_equals_the_runs(reduced, tmp_path):
    from extspec.io.batch_arrays import read_spectra
    from extspec.stacking import cumulative_increments, cumulative_rows, cumulative_rows_from_increments

    spectra = read_spectra(reduced["runs"])
    old = cumulative_rows(spectra, float32=False)
    # any grouping of the runs gives the same rows
    for groups in ([spectra], [spectra[:3], spectra[3:]], [spectra[:1], spectra[1:5], spectra[5:]]):
        new = cumulative_rows_from_increments(cumulative_increments(g) for g in groups)
        assert [r["obs_id"] for r in new] == [1, 2, 3, 4, 5, 6]
        assert new == old  # the same floats, bit for bit
    assert old[-1]["counts"] > old[0]["counts"] > 10 and old[-1]["sqrt_ts"] > old[0]["sqrt_ts"]
    # the step: from the manifests (partials) and from the run folders
    from astropy.table import Table

    texts = []
    for label, inputs in (("partials", reduced["manifests"]), ("runs", reduced["runs"])):
        out = tmp_path / label
        assert main(["cumulative", *map(str, inputs), "--ecsv", f"{out}/cum.ecsv", "--png", f"{out}/cum.png",
                     "--config", str(reduced["config"]), "--quiet"]) == 0
        texts.append((out / "cum.ecsv").read_bytes())
    assert texts[0] == texts[1]
    assert list(Table.read(tmp_path / "partials" / "cum.ecsv")["obs_id"]) == [1, 2, 3, 4, 5, 6]


def test_a_partial_not_of_its_batch_is_not_used(reduced, tmp_path):
    """An arrays file whose partials carry another digest than its name (another set of runs)
    or whose map sums were summed over another normalisation region is read run by run."""
    import h5py

    from extspec.io.batch_arrays import partial_sources
    from extspec.workflow.pipeline import _stacked_images_from_partials

    obs = tmp_path / "obs"
    shutil.copytree(reduced["obs"], obs)
    manifests = [obs / m.name for m in reduced["manifests"]]
    assert partial_sources(manifests, "cumulative") is not None
    with h5py.File(manifests[1].with_suffix(".h5"), "r+") as f:
        f["partials"].attrs["digest"] = "deadbeef"  # as if the batch's runs had changed
    assert partial_sources(manifests, "cumulative") is None and partial_sources(manifests[:1], "cumulative")
    a = _stack(reduced, manifests, tmp_path / "fallback")
    b = _stack(reduced, reduced["runs"], tmp_path / "runs")
    for n in a:
        assert np.array_equal(a[n], b[n], equal_nan=True), n  # read run by run: the same bytes
    # another normalisation region (an exclusion region): the map sums' key differs
    cfg = dict(reduced["cfg"], exclusion_regions=["icrs;circle(83.0,22.5,0.3)"])
    assert _stacked_images_from_partials(reduced["cfg"], reduced["manifests"]) is not None
    assert _stacked_images_from_partials(cfg, reduced["manifests"]) is None
    cf = tmp_path / "excl.yaml"
    cf.write_text(yaml.safe_dump(cfg))
    a = _stack(reduced, reduced["manifests"], tmp_path / "excl-partials", config=cf)
    b = _stack(reduced, reduced["runs"], tmp_path / "excl-runs", config=cf)
    for n in a:
        assert np.array_equal(a[n], b[n], equal_nan=True), n
    assert json.loads(manifests[0].read_text())["arrays"] == manifests[0].with_suffix(".h5").name


def test_vectorised_fit_statistic_is_the_sum_over_runs(reduced):
    """The joint fit's WStat is one fold over (runs, true bins, reco bins): the sum of each run's own."""
    from extspec.fit import JointData
    from extspec.io.batch_arrays import read_spectra
    from extspec.models import get_model

    spectra = read_spectra(reduced["manifests"])
    data = JointData(spectra)
    flux = get_model("power_law").integral(data.e_min, data.e_max, index=2.5, amplitude=3e-11, reference=1)
    per_run = [JointData([s]).stat(flux) for s in spectra]
    assert len(data) == 6 and min(per_run) > 0
    assert data.stat(flux) == pytest.approx(sum(per_run), rel=1e-12)
    assert data.stat_per_dataset(flux) == pytest.approx(per_run, rel=1e-12)


def test_ontime_of_the_growing_union_is_gti_union_duration():
    """The cumulative table's ontime from partials (blocks appended in time order, recomputed
    otherwise) is exactly gti_union_duration of all intervals so far, overlaps and disorder included."""
    from extspec.stacking import _add_to_union, _UnionSum, gti_union_duration

    rng = np.random.default_rng(1)
    recomputed = 0
    for trial in range(60):
        gtis = [np.sort(rng.uniform(0, 1e4, size=(rng.integers(1, 3), 2)), axis=1) for _ in range(25)]
        if trial % 2:
            gtis.sort(key=lambda g: g[0, 0])
        union, done, every = np.zeros((0, 2)), _UnionSum(), np.zeros((0, 2))
        for g in gtis:
            n_before = len(union)
            union, done = _add_to_union(union, g, done)
            every = np.concatenate([every, g])
            recomputed += len(union) <= n_before
            assert done.duration() == gti_union_duration(every) > 0
    assert recomputed > 100  # the slow path was taken too
    union, done = np.zeros((0, 2)), _UnionSum()
    for k in range(5):  # runs one after the other: appended
        union, done = _add_to_union(union, np.array([[1000.0 * k, 1000.0 * k + 300.0]]), done)
    assert done.duration() == 1500.0 and done.n == 5


def test_spectrum_plot_arrays_are_the_stack_of_the_runs(reduced):
    """The spectrum plot's stacked arrays against stack_spectra's one-by-one stack: identical."""
    from extspec.fit import fold, response_matrix
    from extspec.io.batch_arrays import read_spectra
    from extspec.stacking import spectrum_plot_arrays, stack_spectra

    spectra = read_spectra(reduced["manifests"])
    flux = np.geomspace(1e-11, 1e-14, spectra[0].energy_true.nbin)
    st = stack_spectra(spectra, float32=False)
    edges, counts, off, alpha, npred, mask = spectrum_plot_arrays(spectra, flux)
    assert np.array_equal(edges, st.energy_reco.edges) and np.array_equal(mask, st.mask_safe)
    assert np.array_equal(counts, st.counts) and np.array_equal(off, st.counts_off) and counts.sum() > 500
    assert np.array_equal(alpha, st.alpha)
    assert np.array_equal(npred, fold(flux, response_matrix(st.exposure, st.edisp)))
    assert npred.sum() > 1


def test_result_yaml_text_is_pyyaml_text():
    """write_fit_result takes libyaml's emitter only for printable-ASCII documents, for which it
    writes PyYAML's text (a seeded sample of such documents, long folded strings included)."""
    import random
    import string

    from extspec.io.fitresult import _printable_ascii

    if not hasattr(yaml, "CSafeDumper"):
        pytest.skip("PyYAML without libyaml: write_fit_result uses PyYAML's emitter")
    rng = random.Random(3)

    def text():
        return "".join(rng.choice(string.printable[:95]) for _ in range(rng.choice([0, 3, 40, 120])))

    def value(depth=0):
        r = rng.random()
        if depth < 2 and r < 0.2:
            return {text()[:12] or "k": value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 2 and r < 0.4:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return rng.choice([text(), rng.uniform(-1e3, 1e3) * 10 ** rng.randint(-30, 30), rng.randint(-10**9, 10**9),
                           None, True, float("nan")])

    for i in range(300):
        doc = {f"k{i}": value(), "obs_ids": list(range(i)), "s": text()}
        assert _printable_ascii(doc)
        assert yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False) == yaml.safe_dump(doc, sort_keys=False)
    assert not _printable_ascii({"a": ["\u03c3"]}) and not _printable_ascii({"a\nb": 1})


def _onoff(obs_id, on, off, acc, acc_off, t0, mask=None, rng=None):
    """A small ON/OFF spectrum (2 true bins per reco bin, flat kernel) for the stacking tests."""
    from extspec.geometry import EnergyAxis
    from extspec.spectrum import SpectrumDataset

    nr = len(on)
    er, et = EnergyAxis(np.geomspace(0.5, 50, nr + 1)), EnergyAxis(np.geomspace(0.3, 100, 2 * nr + 1))
    exposure = rng.uniform(1e8, 1e9, 2 * nr) if rng is not None else np.full(2 * nr, 1e9)
    edisp = rng.dirichlet(np.ones(nr), 2 * nr) if rng is not None else np.full((2 * nr, nr), 1.0 / nr)
    return SpectrumDataset(
        obs_id=obs_id, energy_reco=er, energy_true=et, counts=np.asarray(on), counts_off=np.asarray(off),
        acceptance=np.asarray(acc, float), acceptance_off=np.asarray(acc_off, float), exposure=exposure,
        edisp=edisp, edisp_weight=exposure.copy(), mask_safe=np.ones(nr, bool) if mask is None else np.asarray(mask),
        livetime=1000.0, ontime=1000.0, gti=np.array([[t0, t0 + 1000.0]]), usable=True, on_region="circle",
        off_regions=[], pointing_radec=(0.0, 0.0))


def _background_only_runs(n, nr=20, seed=3):
    """``n`` runs without a source (ON counts drawn from the OFF counts' background), varying
    OFF acceptance, some with a partial safe mask: the cumulative table's differences of large
    numbers (excess, sqrt_ts) magnify any last-bit difference of alpha."""
    rng = np.random.default_rng(seed)
    runs = []
    for o in range(n):
        off = rng.poisson(300, nr)
        acc_off = rng.uniform(5, 12, nr)
        mask = np.ones(nr, bool)
        if o < 3 or o % 7 == 3:
            mask[: rng.integers(1, nr // 2)] = False
        runs.append(_onoff(o + 1, rng.poisson(off / acc_off), off, np.ones(nr), acc_off, 2000.0 * o, mask, rng))
    return runs


def test_cumulative_from_partials_is_identical_without_a_source():
    """Background-only runs (60, in groups of 10 and of uneven sizes): the cumulative table from
    the increments has the same floats as the per-run stack, bit for bit, excess and sqrt_ts
    included (a running sum of alpha x OFF instead of stack_onto's recurrence differs there)."""
    from extspec.stacking import cumulative_increments, cumulative_rows, cumulative_rows_from_increments

    runs = _background_only_runs(60)
    old = cumulative_rows(runs, float32=False)
    for cuts in ((10, 20, 30, 40, 50), (1, 17, 18, 59)):
        groups = np.split(np.array(runs, dtype=object), cuts)
        new = cumulative_rows_from_increments(cumulative_increments(list(g)) for g in groups)
        assert new == old
    assert len(old) == 60 and abs(old[-1]["sqrt_ts"]) < 3 and old[-1]["counts"] > 10_000
    assert len({r["n_fit_bins"] for r in old}) > 2  # partial masks were stacked


def _alpha_zero_runs():
    """Reco bin 1: run 1 has OFF counts but no ON acceptance (alpha 0), run 2 ON acceptance but
    no OFF counts (e.g. OGIP spectra with a zero ON BACKSCAL): the stack's alpha in that bin is
    its acceptance over its recomputed OFF acceptance, not a running sum's 0."""
    return [_onoff(1, [5, 3], [20, 4], [1.0, 0.0], [5.0, 2.0], 0.0),
            _onoff(2, [6, 2], [22, 0], [1.0, 1.0], [5.0, 2.0], 2000.0),
            _onoff(3, [4, 3], [18, 5], [1.0, 1.0], [5.0, 2.0], 4000.0)]


def test_cumulative_and_plot_arrays_with_a_zero_alpha_bin():
    from extspec.fit import fold, response_matrix
    from extspec.stacking import (cumulative_increments, cumulative_rows, cumulative_rows_from_increments,
                                  spectrum_plot_arrays, stack_spectra)

    runs = _alpha_zero_runs()
    old = cumulative_rows(runs, float32=False)
    assert cumulative_rows_from_increments([cumulative_increments(runs)]) == old
    assert cumulative_rows_from_increments([cumulative_increments(runs[:1]), cumulative_increments(runs[1:])]) == old
    st = stack_spectra(runs, float32=False)
    # bin 1: after run 2 acc_off = 1 x 4 / 1 (t = 0), alpha 1/4; after run 3 t = 4/4 + 5/2, alpha = 2 / (2 x 9 / 3.5)
    assert st.alpha[1] == pytest.approx(7 / 18, rel=1e-15)
    flux = np.full(4, 1e-12)
    edges, counts, off, alpha, npred, mask = spectrum_plot_arrays(runs, flux)
    assert np.array_equal(alpha, st.alpha) and np.array_equal(counts, st.counts) and np.array_equal(off, st.counts_off)
    assert np.array_equal(npred, fold(flux, response_matrix(st.exposure, st.edisp)))


def test_plot_arrays_identical_to_the_stack_without_a_source():
    from extspec.fit import fold, response_matrix
    from extspec.stacking import spectrum_plot_arrays, stack_spectra

    runs = _background_only_runs(40, nr=12, seed=5)
    st = stack_spectra(runs, float32=False)
    flux = np.geomspace(1e-11, 1e-14, runs[0].energy_true.nbin)
    edges, counts, off, alpha, npred, mask = spectrum_plot_arrays(runs, flux)
    assert np.array_equal(alpha, st.alpha) and np.array_equal(mask, st.mask_safe)
    assert np.array_equal(npred, fold(flux, response_matrix(st.exposure, st.edisp))) and npred.sum() > 0


@pytest.mark.parametrize("edit", ["cumulative dataset", "stack dataset", "stack attribute", "obs_ids", "spectra obs_id",
                                  "truncated"])
def test_malformed_partials_give_one_line_naming_the_arrays_file(reduced, tmp_path, capsys, edit):
    """A hand-edited or truncated arrays file: the cumulative and stack steps stop with one line
    naming the file (no traceback, no product)."""
    import h5py

    obs = tmp_path / "obs"
    shutil.copytree(reduced["obs"], obs)
    manifests = [obs / m.name for m in reduced["manifests"]]
    h5 = manifests[1].with_suffix(".h5")
    if edit == "truncated":
        data = h5.read_bytes()
        h5.write_bytes(data[: len(data) // 2])
    else:
        with h5py.File(h5, "r+") as f:
            if edit == "cumulative dataset":
                del f["partials/cumulative/alpha_off"]
            elif edit == "stack dataset":
                del f["partials/stack/map_counts"]
            elif edit == "stack attribute":
                del f["partials/stack"].attrs["key"]
            elif edit == "obs_ids":
                del f["partials/obs_ids"]
            else:
                del f["spectra/obs_id"]
    capsys.readouterr()
    steps = {"cumulative": ["--ecsv", f"{tmp_path}/c.ecsv", "--png", f"{tmp_path}/c.png"],
             "stack": ["--fits", f"{tmp_path}/counts.fits", "--png", f"{tmp_path}/counts.png", "--excess",
                       f"{tmp_path}/ex.fits", "--significance", f"{tmp_path}/sig.fits", "--maps-png", f"{tmp_path}/m.png"]}
    if edit.startswith("cumulative"):
        del steps["stack"]
    elif edit.startswith("stack"):
        del steps["cumulative"]
    for step, outs in steps.items():
        assert main([step, *map(str, manifests), *outs, "--config", str(reduced["config"]), "--quiet"]) != 0, step
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and str(h5) in err[0] and "Traceback" not in err[0], (step, err)
        assert not list(tmp_path.glob("*.ecsv")) and not list(tmp_path.glob("*.fits")), step


def test_low_level_dataset_reads_are_h5py_reads(reduced, tmp_path):
    """_datasets (h5py's low-level reads) gives every dataset of the arrays files as
    ``g[name][()]`` does (types, dtypes, values; scalars as numpy scalars, strings and empty
    arrays too), and a missing one raises KeyError, which the readers turn into FormatError."""
    import h5py

    from extspec.io.batch import read_manifest
    from extspec.io.batch_arrays import _datasets

    arrays = [reduced["obs"] / read_manifest(m)["arrays"] for m in reduced["manifests"]]
    extra = tmp_path / "x.h5"
    with h5py.File(extra, "w") as f:
        g = f.create_group("g")
        g["scalar"], g["text"], g["empty"] = 2.5, "a string", np.zeros((0, 3))
        g["flags"] = np.array([True, False])
    checked = 0
    for path, groups in [*((a, ("spectra", "cubes", "partials/stack", "partials/cumulative")) for a in arrays),
                         (extra, ("g",))]:
        with h5py.File(path, "r") as f:
            for group in groups:
                g = f[group]
                ref, got = {n: g[n][()] for n in g}, _datasets(g)
                assert list(ref) == list(got)
                for name, value in ref.items():
                    assert type(got[name]) is type(value), (group, name)
                    assert np.asarray(got[name]).dtype == np.asarray(value).dtype, (group, name)
                    assert np.array_equal(got[name], value), (group, name)
                    checked += 1
            if path == extra:
                with pytest.raises(KeyError):
                    _datasets(f["g"], ("missing",))
    assert checked > 60


def test_spectra_of_a_batch_share_their_energy_axes(reduced):
    """The runs of an arrays file share one EnergyAxis per distinct edges (memory per run), and
    every spectrum equals the one read from the run's own files."""
    from extspec.io.batch_arrays import read_spectra
    from extspec.io.ogip import read_spectrum

    spectra = read_spectra(list(map(str, reduced["manifests"])))
    assert [int(s.obs_id) for s in spectra] == [1, 2, 3, 4, 5, 6]
    first, second = spectra[:3], spectra[3:]
    assert all(s.energy_reco is first[0].energy_reco and s.energy_true is first[0].energy_true for s in first)
    assert all(s.energy_reco is second[0].energy_reco for s in second)
    for s in spectra:
        ref = read_spectrum(str(reduced["obs"] / str(s.obs_id)))
        assert s.energy_reco == ref.energy_reco and s.energy_true == ref.energy_true
        for name in ("counts", "counts_off", "acceptance", "acceptance_off", "exposure", "edisp", "mask_safe"):
            assert np.array_equal(getattr(s, name), getattr(ref, name)), name
        assert s.counts.base is None or s.counts.base is not spectra[0].counts.base  # own arrays, not views
    assert sum(int(s.counts.sum()) for s in spectra) > 500
