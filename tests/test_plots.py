"""Tests of extspec.plots: PNG products (valid, atomic), smoothing kernel, SED butterfly."""

import warnings

import numpy as np
import pytest
from astropy.wcs import WCS

from extspec import maps, models, plots, sky

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_side=200):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_side and img.shape[1] >= min_side
    assert 0.2 < img.shape[1] / img.shape[0] < 5
    # not a blank canvas
    assert np.ptp(img[..., :3]) > 0.1
    # no temporary file left next to the product
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.fixture
def drawn(monkeypatch):
    """The Figures the plot functions save, in order (kept for inspecting what was drawn)."""
    figs = []
    save = plots._save

    def keep(fig, out_png, tight=False):
        figs.append(fig)
        return save(fig, out_png, tight)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


def _region_patches(ax):
    from matplotlib.patches import Patch

    return [p for p in ax.patches if isinstance(p, Patch)]


def galactic_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [347.3, -0.5]
    w.wcs.crpix = [19.5, 19.5]
    w.wcs.cdelt = [-0.04, 0.04]
    return w


ON = "galactic;circle(347.3,-0.5,0.5)"
OFFS = [["galactic;circle(348.33,-0.667,0.5)", "galactic;circle(348.105,-1.637,0.5)"],
        ["galactic;circle(346.27,-0.333,0.5)"]]


# ---------------------------------------------------------------- smoothing
def test_gaussian_smooth_conserves_total():
    rng = np.random.default_rng(0)
    img = np.zeros((60, 70))
    img[20:40, 25:45] = rng.poisson(5.0, size=(20, 20))
    for sigma in (0.7, 1.0, 2.5):
        sm = maps.gaussian_smooth(img, sigma)
        assert sm.shape == img.shape
        assert abs(sm.sum() - img.sum()) < 1e-6
        assert np.all(sm >= 0)


def test_gaussian_smooth_centred_and_width():
    img = np.zeros((41, 41))
    img[20, 13] = 1.0
    sm = maps.gaussian_smooth(img, 2.0)
    yy, xx = np.mgrid[:41, :41]
    assert np.unravel_index(sm.argmax(), sm.shape) == (20, 13)
    assert (sm * xx).sum() == pytest.approx(13.0, abs=1e-12)
    assert (sm * yy).sum() == pytest.approx(20.0, abs=1e-12)
    var_x = (sm * (xx - 13.0) ** 2).sum()
    assert var_x == pytest.approx(4.0, rel=1e-3)  # sampled Gaussian, truncated at 4 sigma
    np.testing.assert_allclose(sm, sm[::-1, :], atol=1e-15)


def test_gaussian_smooth_edges_and_degenerate():
    flat = np.full((10, 12), 3.0)
    np.testing.assert_allclose(maps.gaussian_smooth(flat, 1.5, normalize_edges=True), 3.0, rtol=1e-12)
    assert maps.gaussian_smooth(flat, 1.5)[0, 0] < 3.0  # zero padding
    # kernel wider than the image
    small = np.ones((3, 2))
    assert maps.gaussian_smooth(small, 5.0).shape == (3, 2)
    np.testing.assert_array_equal(maps.gaussian_smooth(flat, 0), flat)
    with pytest.raises(ValueError):
        maps.gaussian_smooth(np.ones(5), 1.0)


# ---------------------------------------------------------------- butterfly
def test_sed_butterfly_power_law_analytic():
    def pl(e, amplitude, index, reference=1.0):
        return amplitude * (np.asarray(e) / reference) ** -index

    phi, g = 3.2e-11, 2.4
    s_phi, s_g, rho = 4e-12, 0.12, -0.6
    cov = np.array([[s_phi**2, rho * s_phi * s_g], [rho * s_phi * s_g, s_g**2]])
    e = np.geomspace(0.2, 80, 50)
    lo, hi = models.sed_butterfly(pl, {"amplitude": phi, "index": g, "reference": 1.0},
                                 ["amplitude", "index"], cov, e)
    dnde = pl(e, phi, g)
    ln = np.log(e)
    var = dnde**2 * ((s_phi / phi) ** 2 + ln**2 * s_g**2 - 2 * ln * cov[0, 1] / phi)
    sigma = np.sqrt(var)
    np.testing.assert_allclose((hi - lo) / 2, e**2 * sigma, rtol=1e-5)
    np.testing.assert_allclose((hi + lo) / 2, e**2 * dnde, rtol=1e-10)


def test_sed_butterfly_fixed_parameter_and_shape_check():
    def pl(e, amplitude, index):
        return amplitude * np.asarray(e) ** -index

    e = np.array([0.5, 1.0, 4.0])
    lo, hi = models.sed_butterfly(pl, {"amplitude": 1e-11, "index": 2.0}, ["amplitude"], [[1e-24]], e)
    np.testing.assert_allclose((hi - lo) / 2, e**2 * pl(e, 1e-12, 2.0), rtol=1e-6)
    with pytest.raises(ValueError):
        models.sed_butterfly(pl, {"amplitude": 1e-11, "index": 2.0}, ["amplitude", "index"], [[1.0]], e)


# ---------------------------------------------------------------- counts image
def test_plot_counts_image(tmp_path, drawn):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:38, :38]
    img = rng.poisson(2 + 20 * np.exp(-0.5 * ((xx - 18.5) ** 2 + (yy - 18.5) ** 2) / 25))
    out = tmp_path / "counts.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = plots.plot_counts_image(img, galactic_wcs(), out, on_region=ON, off_regions=OFFS,
                                      exclusion_regions=["galactic;circle(347.9,0.1,0.3)",
                                                         "icrs;circle(258.5,-39.8,0.2)"],
                                      title="test", off_labels=[20136, "OFF 20137"])
    assert res == out
    check_png(out)
    (fig,) = drawn
    ax = fig.axes[0]
    # the image itself (smoothed: same total within the edges), its full extent, 1 ON + 3 OFF + 2
    # exclusion outlines, and the legend naming each kind
    (im,) = ax.images
    assert im.get_array().shape == (38, 38)
    assert ax.get_xlim() == (-0.5, 37.5) and ax.get_ylim() == (-0.5, 37.5)
    patches = _region_patches(ax)
    assert len(patches) == 1 + 3 + 2
    assert all(not p.get_fill() for p in patches)
    # the ON circle: centred on the map centre pixel (18.5, 18.5), radius 0.5 / 0.04 = 12.5 pixels
    on = [p for p in patches if hasattr(p, "center") and np.allclose(p.center, (18.5, 18.5), atol=0.05)]
    assert len(on) == 1 and on[0].radius == pytest.approx(12.5, rel=2e-3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0].startswith("ON") and any("20136" in t for t in labels) and any("20137" in t for t in labels)
    assert sum("xclusion" in t for t in labels) == 1
    assert ax.get_title() == "test"


def test_plot_counts_image_icrs_no_regions_and_odd_regions(tmp_path):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [83.63, 22.01]
    w.wcs.crpix = [25.5, 15.5]
    w.wcs.cdelt = [-0.02, 0.02]
    img = np.random.default_rng(2).poisson(1.0, size=(30, 50))
    out = tmp_path / "a.png"
    plots.plot_counts_image(img, w, out)
    check_png(out)
    out.unlink()
    # a region on the far side of the sky cannot be projected: skipped with a warning
    with pytest.warns(UserWarning, match="skipping region"):
        plots.plot_counts_image(img, w, out, on_region="icrs;circle(83.63,22.01,0.1)",
                                off_regions=["icrs;circle(83.9,22.01,0.1)"],
                                exclusion_regions=["icrs;circle(263.63,-22.01,1)",
                                                   "galactic;box(184.55,-5.78,0.5,0.3,30)"],
                                smooth_sigma_pix=0)
    check_png(out)


def _label_value(text):
    return float(text.replace("\u2212", "-"))


@pytest.mark.parametrize("proj,lon0,lat0", [("CAR", 347.3, -0.5), ("TAN", 83.63, 22.01), ("CAR", 0.1, 0.0),
                                            ("TAN", 30.0, 75.0)])
def test_sky_grid_ticks_at_their_sky_coordinates(proj, lon0, lat0):
    """Every tick sits where its line of constant lon (lat) crosses the bottom (left) edge."""
    from extspec.geometry import MapGeom

    frame = "galactic" if proj == "CAR" else "icrs"
    geom = MapGeom.create(lon0, lat0, (1.52, 1.2), 0.04, frame, proj)
    ny, nx = geom.shape
    grid = sky.sky_grid(sky.SkyPixels(geom, geom.shape))
    assert len(grid["xticks"]) >= 2 and len(grid["yticks"]) >= 2
    w = geom.wcs
    for x, text in grid["xticks"]:
        assert -0.5 <= x <= nx - 0.5
        lon, _ = w.wcs_pix2world([x], [-0.5], 0)
        dlon = (lon[0] - _label_value(text) + 180) % 360 - 180
        assert abs(dlon) < 1e-4, (x, text, lon)
    for y, text in grid["yticks"]:
        assert -0.5 <= y <= ny - 0.5
        _, lat = w.wcs_pix2world([-0.5], [y], 0)
        assert abs(lat[0] - _label_value(text)) < 1e-4, (y, text, lat)
    steps = np.diff(sorted(_label_value(t) for _, t in grid["yticks"]))
    assert np.allclose(steps, steps[0]) and steps[0] in (0.2, 0.5)
    if lon0 == 0.1:  # across lon = 0: labels wrap to [0, 360)
        labels = {t for _, t in grid["xticks"]}
        assert {"0.0", "359.5"} <= labels or {"0.0", "359.8"} <= labels, labels
    # grid lines in pixel space: a lon line's pixels map back to that longitude
    x, y = grid["lon_lines"][0]
    ok = np.isfinite(x)
    lon, _ = w.wcs_pix2world(x[ok], y[ok], 0)
    assert np.ptp((lon - lon[0] + 180) % 360) < 1e-6


def test_sky_axis_labels_from_geom_and_wcs():
    from extspec.geometry import MapGeom

    g = MapGeom.create(347.3, -0.5, 1.5, 0.04, "galactic", "CAR")
    i = MapGeom.create(83.63, 22.01, 1.5, 0.04, "icrs", "TAN")
    assert sky.SkyPixels(g, g.shape).axis_labels() == ("Galactic longitude [deg]", "Galactic latitude [deg]")
    assert sky.SkyPixels(i, i.shape).axis_labels() == ("Right ascension (ICRS) [deg]", "Declination (ICRS) [deg]")
    assert sky.SkyPixels(i.wcs, i.shape).axis_labels() == sky.SkyPixels(i, i.shape).axis_labels()
    # the WCS and the geometry give the same grid
    a = sky.sky_grid(sky.SkyPixels(g, g.shape))
    b = sky.sky_grid(sky.SkyPixels(g.wcs, g.shape))
    assert [t for _, t in a["xticks"]] == [t for _, t in b["xticks"]] == ["347.0", "347.5", "348.0"]
    assert [t for _, t in a["yticks"]] == ["\u22121.0", "\u22120.5", "0.0"]
    np.testing.assert_allclose([x for x, _ in a["xticks"]], [x for x, _ in b["xticks"]], atol=1e-9)


def test_plot_counts_image_with_geom_and_no_pyplot(tmp_path):
    """A MapGeom is accepted; the plot functions never import matplotlib.pyplot."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from extspec.geometry import MapGeom\n"
        "from extspec import plots\n"
        "g = MapGeom.create(347.3, -0.5, 1.5, 0.04)\n"
        "img = np.random.default_rng(1).poisson(3.0, g.shape)\n"
        "out = sys.argv[1]\n"
        "plots.plot_counts_image(img, g, out + '/c.png', title='t')\n"
        "plots.plot_spectrum_fit(np.geomspace(0.3, 40, 5), [5, 4, 3, 2], [9, 8, 7, 6], 0.2, [3, 2, 1, 1],\n"
        "                        [True] * 4, out + '/s.png')\n"
        "plots.plot_sed([], lambda e: 1e-11 * e**-2.0, (0.3, 40), out + '/e.png')\n"
        "plots.plot_cumulative([dict(livetime=1800.0, excess=10.0, sqrt_ts=2.0)], out + '/u.png')\n"
        "print('matplotlib.pyplot' in sys.modules, 'regions' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "e.png", "s.png", "u.png"]
    for p in tmp_path.iterdir():
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000, p


def test_log_tick_labels_are_unicode():
    """Log axes keep matplotlib's ticks and labelled minor ticks, as Unicode text (no mathtext)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert plots._unicode_power("$\\mathdefault{10^{-12}}$") == "10\u207b\u00b9\u00b2"
    assert plots._unicode_power("$\\mathdefault{2\\times10^{-11}}$") == "2\u00d710\u207b\u00b9\u00b9"
    assert plots._unicode_power("$\\mathdefault{10^{0}}$") == "10\u2070"
    assert plots._unicode_power("$x^2$") == "$x^2$" and plots._unicode_power("") == ""

    def labels(convert):
        fig = Figure()
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(0.2, 60)
        ax.set_ylim(2.5e-12, 3e-11)
        if convert:
            plots._unicode_log_ticks(ax.xaxis, ax.yaxis)
        fig.canvas.draw()
        return [[t.get_text() for t in a.get_ticklabels(minor=m)] for a in (ax.xaxis, ax.yaxis) for m in (False, True)]

    mathtext, unicode = labels(False), labels(True)
    assert [[plots._unicode_power(t) for t in group] for group in mathtext] == unicode
    assert unicode[0] == ["10\u207b\u00b9", "10\u2070", "10\u00b9", "10\u00b2"]
    assert "2\u00d710\u207b\u00b9\u00b9" in unicode[3] and not any("$" in t for g in unicode for t in g)


# ---------------------------------------------------------------- spectrum
def test_plot_spectrum_fit(tmp_path, drawn):
    rng = np.random.default_rng(3)
    edges = np.geomspace(0.1, 100, 21)
    ec = np.sqrt(edges[:-1] * edges[1:])
    npred = 300 * ec**-1.5
    off = rng.poisson(50 * ec**-1.0)
    alpha = np.full(20, 0.25)
    counts = rng.poisson(npred + alpha * off)
    mask = (ec > 0.3) & (ec < 40)
    out = tmp_path / "spectrum.png"
    plots.plot_spectrum_fit(edges, counts, off, alpha, npred, mask, out, title="t")
    check_png(out)
    (fig,) = drawn
    ax, axr = fig.axes[:2]
    # the predicted signal as steps over every bin, with its values
    (steps,) = [p for p in ax.patches if type(p).__name__ == "StepPatch"]
    np.testing.assert_allclose(steps.get_data().values, npred)
    np.testing.assert_allclose(steps.get_data().edges, edges)
    # excess points: the safe bins in black, the others in grey, at the bin centres
    excess = counts - alpha * off
    pts = {}
    for line in ax.lines:
        x, y = (np.asarray(v, float) for v in line.get_data())
        if line.get_linestyle() == "None" and len(x):
            pts[len(x)] = (x, y)
    n_safe = int(mask.sum())
    assert set(pts) == {n_safe, 20 - n_safe}
    np.testing.assert_allclose(pts[n_safe][0], ec[mask])
    np.testing.assert_allclose(pts[n_safe][1], excess[mask])
    np.testing.assert_allclose(pts[20 - n_safe][1], excess[~mask])
    assert ax.get_xscale() == "log" and ax.get_xlim() == pytest.approx((0.1, 100.0))


def test_plot_spectrum_fit_degenerate(tmp_path):
    out = tmp_path / "spectrum.png"
    plots.plot_spectrum_fit(np.array([1.0, 10.0]), np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1),
                            np.zeros(1, bool), out, title="no usable observation")
    check_png(out)


# ---------------------------------------------------------------- SED
def _pl(e, amplitude=2e-11, index=2.3):
    return amplitude * np.asarray(e, float) ** -index


def test_plot_sed(tmp_path, drawn):
    edges = np.geomspace(0.3, 40, 8)
    rows = []
    for a, b in zip(edges[:-1], edges[1:]):
        er = np.sqrt(a * b)
        v = er**2 * _pl(er)
        rows.append(dict(e_ref=er, e_min=a, e_max=b, e2dnde=v, e2dnde_err=0.2 * v,
                         e2dnde_ul=2 * v, is_ul=bool(er > 15)))
    rows[0]["e2dnde_err"] = 2 * rows[0]["e2dnde"]  # error bar reaching below zero
    e = np.geomspace(0.3, 40, 50)
    lo, hi = models.sed_butterfly(_pl, {"amplitude": 2e-11, "index": 2.3}, ["amplitude", "index"],
                                 np.diag([(2e-12) ** 2, 0.1**2]), e)
    out = tmp_path / "sed.png"
    plots.plot_sed(rows, _pl, (0.3, 40), out, butterfly=(e, lo, hi), title="sed")
    check_png(out)
    (fig,) = drawn
    ax = fig.axes[0]
    # the model line is E^2 dN/dE of the model over the energy range
    (model,) = [ln for ln in ax.lines if ln.get_label() == "best-fit model"]
    xm, ym = (np.asarray(v, float) for v in model.get_data())
    assert xm.min() == pytest.approx(0.3) and xm.max() == pytest.approx(40)
    np.testing.assert_allclose(ym, xm**2 * _pl(xm), rtol=1e-12)
    # 6 flux points (e_ref < 15 TeV) and 1 upper limit, each at its e_ref
    markers = [ln for ln in ax.lines if ln.get_linestyle() == "None" and len(ln.get_xdata())]
    x_pts = sorted(float(x) for ln in markers for x in ln.get_xdata())
    e_ref = [r["e_ref"] for r in rows]
    n_pts = sum(not r["is_ul"] for r in rows)
    assert n_pts == 6
    for r in rows:
        assert any(abs(x - r["e_ref"]) < 1e-9 * r["e_ref"] for x in x_pts), r["e_ref"]
    ul_x = [float(x) for ln in markers for x in ln.get_xdata() if len(ln.get_xdata()) == 1]
    assert ul_x == pytest.approx([rows[-1]["e_ref"]] * len(ul_x)) and ul_x
    points = [ln for ln in markers if len(ln.get_xdata()) == n_pts]
    assert len(points) == 1
    np.testing.assert_allclose(np.asarray(points[0].get_ydata(), float),
                               [r["e2dnde"] for r in rows if not r["is_ul"]])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    x0, x1 = ax.get_xlim()
    assert x0 < min(e_ref) and x1 > max(e_ref)
    assert len(ax.collections) >= 1  # the butterfly band


def test_plot_sed_absorbed_and_intrinsic(tmp_path, drawn):
    """EBL view: absorbed model and observed points, intrinsic model and de-absorbed points."""
    edges = np.geomspace(0.3, 10, 5)
    att = np.array([0.9, 0.6, 0.3, 0.1])
    rows = []
    for a, b, f in zip(edges[:-1], edges[1:], att):
        er = np.sqrt(a * b)
        v = er**2 * _pl(er) * f
        rows.append(dict(e_ref=er, e_min=a, e_max=b, e2dnde=v, e2dnde_err=0.1 * v, e2dnde_ul=2 * v, is_ul=False,
                         e2dnde_intrinsic=v / f, e2dnde_intrinsic_err=0.1 * v / f, e2dnde_intrinsic_ul=2 * v / f))

    def absorbed(e):
        return _pl(e) * np.exp(-np.asarray(e) / 3)

    plots.plot_sed(rows, absorbed, (0.3, 10), tmp_path / "sed.png", intrinsic=(_pl, None))
    ax = drawn[0].axes[0]
    labels = {ln.get_label(): ln for ln in ax.lines}
    xm, ym = (np.asarray(v, float) for v in labels["absorbed model"].get_data())
    np.testing.assert_allclose(ym, xm**2 * absorbed(xm), rtol=1e-12)
    xi, yi = (np.asarray(v, float) for v in labels["intrinsic model"].get_data())
    np.testing.assert_allclose(yi, xi**2 * _pl(xi), rtol=1e-12)
    pts = [ln for ln in ax.lines if ln.get_linestyle() == "None" and len(ln.get_xdata()) == 4]
    ys = sorted(tuple(np.asarray(ln.get_ydata(), float)) for ln in pts)
    np.testing.assert_allclose(ys[0], [r["e2dnde"] for r in rows])
    np.testing.assert_allclose(ys[1], [r["e2dnde_intrinsic"] for r in rows])


def test_plot_sed_no_points_no_model(tmp_path):
    out = tmp_path / "sed.png"
    plots.plot_sed([], lambda e: np.full_like(e, np.nan), (np.nan, np.nan), out)
    check_png(out)


# ---------------------------------------------------------------- cumulative
def test_plot_cumulative(tmp_path, drawn):
    t = np.cumsum(np.full(8, 1680.0))
    rows = [dict(obs_id=100 + i, livetime=ti, excess=0.05 * ti, sqrt_ts=1.4 * np.sqrt(ti / 1000))
            for i, ti in enumerate(t)][::-1]  # order does not matter
    out = tmp_path / "cum.png"
    plots.plot_cumulative(rows, out, title="cumulative")
    check_png(out)
    (fig,) = drawn
    axl, axr = fig.axes[:2]
    hours = t / 3600.0
    (exc,) = [ln for ln in axl.lines if ln.get_label() == "excess"]
    np.testing.assert_allclose(exc.get_xdata(), hours)  # sorted by livetime
    np.testing.assert_allclose(exc.get_ydata(), 0.05 * t)
    (sig,) = [ln for ln in axr.lines if ln.get_label() == "\u221aTS"]
    np.testing.assert_allclose(sig.get_ydata(), 1.4 * np.sqrt(t / 1000))
    (ref,) = [ln for ln in axr.lines if ln.get_linestyle() == "--"]
    xr, yr = (np.asarray(v, float) for v in ref.get_data())
    np.testing.assert_allclose(yr, 1.4 * np.sqrt(t[-1] / 1000) * np.sqrt(xr / hours[-1]))
    assert axr.get_ylim()[1] >= 6.0 and axl.get_xlim()[0] == 0


def test_plot_cumulative_empty(tmp_path):
    out = tmp_path / "cum.png"
    plots.plot_cumulative([], out)
    check_png(out)


# ---------------------------------------------------------------- atomic write
def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    orig = matplotlib.image.imsave  # the PNG writer of plots._save (one draw, then the pixels)

    def broken(fname, *a, **k):
        orig(fname, *a, **k)  # the temp file exists ...
        raise OSError("disk full")  # ... and then the write fails

    monkeypatch.setattr(matplotlib.image, "imsave", broken)
    out = tmp_path / "cum.png"
    with pytest.raises(OSError, match="disk full"):
        plots.plot_cumulative([dict(livetime=1800.0, excess=10.0, sqrt_ts=2.0, obs_id=1)], out)
    assert list(tmp_path.iterdir()) == []


def test_replaces_existing_file(tmp_path):
    out = tmp_path / "cum.png"
    out.write_bytes(b"old")
    plots.plot_cumulative([dict(livetime=1800.0, excess=10.0, sqrt_ts=2.0, obs_id=1)], out)
    check_png(out)


def test_tight_save_is_one_draw_cropped_like_matplotlib(tmp_path):
    """plots._save(tight=True) draws once and crops to the drawn box plus the pad: the same
    picture size (within a pixel of rounding) as matplotlib's bbox_inches='tight', which draws twice."""
    import matplotlib.image

    from astropy.wcs import WCS  # a celestial WCS, as plot_counts_image accepts

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---CAR", "DEC--CAR"]
    w.wcs.crval = [83.6, 22.0]
    w.wcs.crpix = [10.5, 10.5]
    w.wcs.cdelt = [-0.05, 0.05]
    img = np.arange(400.0).reshape(20, 20)
    fig = plots._figure(figsize=(7.6, 6.4))
    ax = fig.add_axes([0.15, 0.10, 0.66, 0.80])
    ax.imshow(img, origin="lower")
    ax.set_title("a title")
    draws = []
    orig_draw = fig.canvas.draw
    fig.canvas.draw = lambda: (draws.append(1), orig_draw())[1]
    ours = plots._save(fig, tmp_path / "ours.png", tight=True)
    assert len(draws) == 1
    fig.savefig(tmp_path / "mpl.png", dpi=plots._DPI, bbox_inches="tight", pad_inches=plots._TIGHT_PAD_INCHES)
    a, b = matplotlib.image.imread(ours), matplotlib.image.imread(tmp_path / "mpl.png")
    assert abs(a.shape[0] - b.shape[0]) <= 1 and abs(a.shape[1] - b.shape[1]) <= 1
    assert a.shape[1] < 7.6 * plots._DPI - 20  # cropped: the white margins are gone
    plots.plot_counts_image(img, w, tmp_path / "counts.png", title="t")
    assert (tmp_path / "counts.png").stat().st_size > 1000

