"""GADF variants of a simulated data store: the layouts other instruments publish.

:func:`write_gadf_variant` rewrites a store written by :func:`extspec.simulate.simulate_datastore`
(same events, same instrument) in one or several of the GADF variants found in real releases,
so that the reader and the whole chain can be tested on each:

``etrue``
    EDISP_2D names its true-energy columns ``ETRUE_LO/ETRUE_HI`` (CTA data challenges).
``single_offset``
    AEFF_2D and EDISP_2D hold one THETA bin ``offset_bin`` with the table's values at the
    offset node inside it (the IRF holds inside that bin only).
``units``
    Units other than extspec's: AEFF energies in GeV and areas in cm2, background in
    ``s-1 TeV-1 deg-2`` (values converted, so the physics is unchanged).
``cta_units``
    Background unit written ``1/(s MeV sr)`` as the CTA files spell it.
``caldb``
    IRFs in one uncompressed file shared by all runs in a caldb-like tree outside the index
    folder (``FILE_DIR`` relative with ``..``); events uncompressed under ``data/``; the index
    files in ``index/all/`` (the CTA first-data-challenge layout).  The store root to open is
    then ``dest/index/all``.
``renamed_index``
    The hdu-index table named ``OBS_INDEX`` (as the MAGIC release ships it) and an obs index
    with only OBS_ID (pointing and dead time then come from the EVENTS header).
``bgd``
    The background-rate column named ``BGD`` (the CTA first data challenge's IRF files).
``bkg_2d``
    The background as BKG_2D: rate against energy and offset only (radially symmetric, as the
    VERITAS and LST releases ship it), the simulated table's radial profile on 0.1-deg offset
    bins 0-6 deg (``HDUCLAS4 = BKG_2D``, HDU ``BACKGROUND``).
``bkg_absent``, ``bkg_unreadable``
    The hdu index lists a background IRF in a file of its own (``bkg_<obs>.fits.gz``) that
    does not exist, or that holds bytes which are not FITS.
``point_like`` (with ``rad_max``)
    Point-like IRFs: ``HDUCLAS3 = POINT-LIKE``; the effective area is multiplied by the PSF
    containment within RAD_MAX (the simulator's gaussian PSF: ``1 - exp(-R^2 / 2 sigma^2)``),
    and RAD_MAX is a ``RAD_MAX`` header keyword (a number) or a ``RAD_MAX_2D`` HDU (a callable
    of energy in TeV, tabulated on 20 log bins 0.01-100 TeV and one offset bin 0-2.5 deg).

Test and example tooling: imports astropy.io.fits.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import ConfigError

__all__ = ["VARIANTS", "write_gadf_variant"]

VARIANTS = ("etrue", "single_offset", "units", "cta_units", "caldb", "renamed_index", "point_like", "bgd", "bkg_2d",
            "bkg_absent", "bkg_unreadable")
_OWN_BKG_FILE = {"bkg_absent": None, "bkg_unreadable": b"this is not a FITS file\n"}
"""Variants with the background IRF in a file of its own: what that file holds (None: absent)."""

_CALDB_DIR = Path("caldb") / "data" / "cta" / "sim" / "bcf" / "irf"
_IRF_FILE = "irf_file.fits"
_RAD_MAX_EDGES = np.geomspace(0.01, 100.0, 21)


def _containment(radius, psf_sigma: float):
    """Fraction of a 2D gaussian PSF (sigma per axis, deg) within ``radius`` deg (flat sky)."""
    if psf_sigma <= 0:
        return np.ones_like(np.asarray(radius, float))
    return -np.expm1(-0.5 * (np.asarray(radius, float) / psf_sigma) ** 2)


def _replace_columns(hdu, changes: dict, header_updates: dict | None = None):
    """A copy of BinTableHDU ``hdu`` with some columns replaced: ``name -> (new_name, array, unit)``."""
    from astropy.io import fits

    cols = []
    for c in hdu.columns:
        if c.name in changes:
            name, arr, unit = changes[c.name]
            arr = np.asarray(arr, np.float32)[None, ...]
            fmt = f"{int(np.prod(arr.shape[1:]))}E"
            dim = "(" + ",".join(str(n) for n in arr.shape[1:][::-1]) + ")" if arr.ndim > 2 else None
            cols.append(fits.Column(name=name, format=fmt, unit=unit, dim=dim, array=arr))
        else:
            cols.append(fits.Column(name=c.name, format=c.format, unit=c.unit, dim=c.dim, array=hdu.data[c.name]))
    out = fits.BinTableHDU.from_columns(cols, name=hdu.name)
    for k, v in hdu.header.items():
        if k not in out.header and not k.startswith(("TTYPE", "TFORM", "TUNIT", "TDIM", "NAXIS")):
            out.header[k] = v
    for k, v in (header_updates or {}).items():
        out.header[k] = v
    return out


def _irf_hdus(hdul, variants, offset_bin, rad_max, psf_sigma):
    """The rewritten AEFF, EDISP and BKG HDUs (and RAD_MAX if energy-dependent)."""
    from astropy import units as u
    from astropy.io import fits

    aeff, edisp, bkg = hdul["AEFF"], hdul["EDISP"], hdul["BKG"]
    a = {n: np.asarray(aeff.data[n][0], float) for n in aeff.columns.names}
    e = {n: np.asarray(edisp.data[n][0], float) for n in edisp.columns.names}
    area = a["EFFAREA"]  # (theta, energy) as stored
    matrix = e["MATRIX"]  # (theta, migra, energy)
    th_lo, th_hi = a["THETA_LO"], a["THETA_HI"]
    eth_lo, eth_hi = e["THETA_LO"], e["THETA_HI"]
    if "single_offset" in variants:
        lo, hi = offset_bin
        nodes = 0.5 * (th_lo + th_hi)
        i = int(np.argmin(np.abs(nodes - 0.5 * (lo + hi))))
        if not lo <= nodes[i] <= hi:
            raise ConfigError(f"single_offset: no offset node of the table inside {offset_bin}")
        area = area[i:i + 1]
        matrix = matrix[i:i + 1]
        th_lo = eth_lo = np.array([lo])
        th_hi = eth_hi = np.array([hi])
    a_hdr, e_hdr = {}, {}
    extra = []
    if "point_like" in variants:
        if rad_max is None:
            raise ConfigError("point_like variant needs rad_max (a number or a callable of energy in TeV)")
        e_nodes = np.sqrt(a["ENERG_LO"] * a["ENERG_HI"])
        r = np.full(e_nodes.shape, float(rad_max)) if np.isscalar(rad_max) else np.asarray(rad_max(e_nodes), float)
        area = area * _containment(r, psf_sigma)[None, :]
        a_hdr = e_hdr = {"HDUCLAS3": "POINT-LIKE"}
        if np.isscalar(rad_max):
            a_hdr = {"HDUCLAS3": "POINT-LIKE", "RAD_MAX": float(rad_max)}
        else:
            lo, hi = _RAD_MAX_EDGES[:-1], _RAD_MAX_EDGES[1:]
            values = np.asarray(rad_max(np.sqrt(lo * hi)), float)[None, :]
            cols = [
                fits.Column("ENERG_LO", f"{lo.size}E", unit="TeV", array=lo[None, :].astype(np.float32)),
                fits.Column("ENERG_HI", f"{hi.size}E", unit="TeV", array=hi[None, :].astype(np.float32)),
                fits.Column("THETA_LO", "1E", unit="deg", array=np.array([0.0], np.float32)),
                fits.Column("THETA_HI", "1E", unit="deg", array=np.array([2.5], np.float32)),
                fits.Column("RAD_MAX", f"{lo.size}E", unit="deg", dim=f"({lo.size},1)",
                            array=values[None, ...].astype(np.float32)),
            ]
            rm = fits.BinTableHDU.from_columns(cols, name="RAD_MAX")
            for k, v in [("HDUCLASS", "GADF"), ("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "RAD_MAX"),
                         ("HDUCLAS3", "POINT-LIKE"), ("HDUCLAS4", "RAD_MAX_2D")]:
                rm.header[k] = v
            extra.append(("rad_max", "rad_max_2d", rm))
    e_unit, a_unit = "TeV", "m2"
    e_lo, e_hi = a["ENERG_LO"], a["ENERG_HI"]
    if "units" in variants:
        e_lo, e_hi, e_unit = e_lo * 1e3, e_hi * 1e3, "GeV"
        area, a_unit = area * 1e4, "cm2"
    new_aeff = _replace_columns(aeff, {
        "ENERG_LO": ("ENERG_LO", e_lo, e_unit), "ENERG_HI": ("ENERG_HI", e_hi, e_unit),
        "THETA_LO": ("THETA_LO", th_lo, "deg"), "THETA_HI": ("THETA_HI", th_hi, "deg"),
        "EFFAREA": ("EFFAREA", area, a_unit)}, a_hdr)
    stem = "ETRUE" if "etrue" in variants else "ENERG"
    new_edisp = _replace_columns(edisp, {
        "ENERG_LO": (f"{stem}_LO", e["ENERG_LO"], "TeV"), "ENERG_HI": (f"{stem}_HI", e["ENERG_HI"], "TeV"),
        "THETA_LO": ("THETA_LO", eth_lo, "deg"), "THETA_HI": ("THETA_HI", eth_hi, "deg"),
        "MATRIX": ("MATRIX", matrix, "")}, e_hdr)
    b = np.asarray(bkg.data["BKG"][0], float)
    b_unit = bkg.columns["BKG"].unit
    if "units" in variants:
        b, b_unit = b * u.Unit(b_unit).to("s-1 TeV-1 deg-2"), "s-1 TeV-1 deg-2"
    elif "cta_units" in variants:
        b_unit = "1/(s MeV sr)"
    column = "BGD" if "bgd" in variants else "BKG"
    if "bkg_2d" in variants:
        return [("aeff", "aeff_2d", new_aeff), ("edisp", "edisp_2d", new_edisp),
                ("bkg", "bkg_2d", _bkg_2d(bkg, column, b_unit, b))] + extra
    new_bkg = _replace_columns(bkg, {"BKG": (column, b, b_unit)})
    return [("aeff", "aeff_2d", new_aeff), ("edisp", "edisp_2d", new_edisp), ("bkg", "bkg_3d", new_bkg)] + extra


def _bkg_2d(bkg, column, unit, rate_tdim):
    """A BKG_2D HDU with the radial profile of the BKG_3D table ``bkg`` (rate along +DETX at
    each offset node, bilinear between the table's nodes: the simulated background is
    radially symmetric)."""
    from astropy.io import fits

    from ..irf import Bkg3D, make_axis

    d = {n: np.asarray(bkg.data[n][0], float) for n in ("ENERG_LO", "ENERG_HI", "DETX_LO", "DETX_HI")}
    energy = make_axis("ENERG", d["ENERG_LO"], d["ENERG_HI"], True)
    fov = make_axis("DETX", d["DETX_LO"], d["DETX_HI"], False)
    table = Bkg3D(energy, fov, fov, np.asarray(rate_tdim, float))  # (E, DETY, DETX) as astropy reads it
    edges = np.round(np.arange(0.0, 6.0 + 1e-9, 0.1), 6)
    nodes = 0.5 * (edges[:-1] + edges[1:])
    rate = table.evaluate(energy.nodes, nodes, np.zeros_like(nodes))  # (n_energy, n_offset)
    ne, nt = energy.nodes.size, nodes.size
    cols = [
        fits.Column("ENERG_LO", f"{ne}E", unit="TeV", array=d["ENERG_LO"][None].astype(np.float32)),
        fits.Column("ENERG_HI", f"{ne}E", unit="TeV", array=d["ENERG_HI"][None].astype(np.float32)),
        fits.Column("THETA_LO", f"{nt}E", unit="deg", array=edges[None, :-1].astype(np.float32)),
        fits.Column("THETA_HI", f"{nt}E", unit="deg", array=edges[None, 1:].astype(np.float32)),
        fits.Column(column, f"{ne * nt}E", unit=unit, dim=f"({ne},{nt})", array=rate.T[None].astype(np.float32)),
    ]
    out = fits.BinTableHDU.from_columns(cols, name="BACKGROUND")
    for k in ("HDUCLASS", "HDUDOC", "HDUVERS", "HDUCLAS1", "HDUCLAS2", "HDUCLAS3"):
        if k in bkg.header:
            out.header[k] = bkg.header[k]
    out.header["HDUCLAS4"] = "BKG_2D"
    return out


def _index_tables(obs_rows, hdu_rows, variants):
    from astropy.io import fits

    def strcol(name, values):
        w = max(1, max(len(v) for v in values))
        return fits.Column(name, f"{w}A", array=np.array(values, dtype=f"S{w}"))

    if "renamed_index" in variants:
        obs_cols = [fits.Column("OBS_ID", "K", array=np.array([r["OBS_ID"] for r in obs_rows], np.int64))]
    else:
        obs_cols = [fits.Column("OBS_ID", "K", array=np.array([r["OBS_ID"] for r in obs_rows], np.int64)),
                    fits.Column("RA_PNT", "D", unit="deg", array=np.array([r["RA_PNT"] for r in obs_rows])),
                    fits.Column("DEC_PNT", "D", unit="deg", array=np.array([r["DEC_PNT"] for r in obs_rows]))]
    obs = fits.BinTableHDU.from_columns(obs_cols, name="OBS_INDEX")
    cols = list(zip(*hdu_rows))
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("OBS_ID", "K", array=np.array(cols[0], np.int64))]
        + [strcol(n, list(c)) for n, c in zip(("HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"), cols[1:])],
        name="OBS_INDEX" if "renamed_index" in variants else "HDU_INDEX",
    )
    return obs, hdu


def _write(path: Path, hdus, compress: bool) -> None:
    import io

    from astropy.io import fits

    from ..io.atomic import write_atomic

    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    write_atomic(path, gzip.compress(buf.getvalue(), mtime=0) if compress else buf.getvalue())


def write_gadf_variant(source_store, dest, variants, rad_max=None, psf_sigma: float = 0.05,
                       offset_bin=(0.25, 0.75)) -> Path:
    """Rewrite the simulated store ``source_store`` into ``dest`` in the given GADF ``variants``.

    Parameters
    ----------
    source_store : path of a store written by :func:`extspec.simulate.simulate_datastore`

    dest : path (created)

    variants : iterable of names from ``VARIANTS``

    rad_max : float or callable, optional
        RAD_MAX of the ``point_like`` variant: deg (fixed, header keyword) or a function of
        energy (TeV) giving deg (a RAD_MAX_2D HDU).
    psf_sigma : float
        The simulator's PSF sigma (deg), for the point-like containment.
    offset_bin : (lo, hi)
        The THETA bin of the ``single_offset`` variant, deg.

    Returns
    -------
    Path of the store root to open (``dest/index/all`` with ``caldb``, else ``dest``).
    """
    from astropy.io import fits

    from ..io.datastore import open_datastore

    variants = set(variants)
    unknown = variants - set(VARIANTS)
    if unknown:
        raise ConfigError(f"unknown GADF variant(s) {', '.join(sorted(unknown))} (use {', '.join(VARIANTS)})")
    src = open_datastore(source_store)
    dest = Path(dest)
    caldb = "caldb" in variants
    root = dest / "index" / "all" if caldb else dest
    data_dir = dest / "data" / "baseline" if caldb else dest / "data"
    ext = ".fits" if caldb else ".fits.gz"
    obs_rows, hdu_rows = [], []
    shared_written = False
    for obs_id in src.obs_ids:
        path, _ = src.hdu_location(int(obs_id), "events")
        with fits.open(path, memmap=False) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        irfs = _irf_hdus(hdul, variants, offset_bin, rad_max, psf_sigma)
        ev, gti = hdul["EVENTS"], hdul["GTI"]
        obs_rows.append({"OBS_ID": int(obs_id), "RA_PNT": float(ev.header["RA_PNT"]),
                         "DEC_PNT": float(ev.header["DEC_PNT"])})
        name = f"obs_{int(obs_id):06d}{ext}"
        run_dir = "../../data/baseline" if caldb else "data"
        if caldb:
            _write(data_dir / name, [fits.PrimaryHDU(), ev, gti], compress=False)
            for htype, _, h in irfs:  # the CTA extension names
                h.name = {"aeff": "EFFECTIVE AREA", "edisp": "ENERGY DISPERSION", "bkg": "BACKGROUND"}.get(htype, h.name)
            if not shared_written:  # identical IRFs for every run: one shared file
                _write(dest / _CALDB_DIR / _IRF_FILE, [fits.PrimaryHDU()] + [h for _, _, h in irfs], compress=False)
                shared_written = True
            irf_dir, irf_name = str(Path("..") / ".." / _CALDB_DIR), _IRF_FILE
        else:
            own = [h for t, _, h in irfs if t == "bkg" and variants & set(_OWN_BKG_FILE)]
            _write(data_dir / name, [fits.PrimaryHDU(), ev, gti] + [h for _, _, h in irfs if h not in own],
                   compress=True)
            irf_dir, irf_name = run_dir, name
        hdu_rows.append((int(obs_id), "events", "events", run_dir, name, "EVENTS"))
        hdu_rows.append((int(obs_id), "gti", "gti", run_dir, name, "GTI"))
        for htype, hclass, h in irfs:
            where = irf_name
            if htype == "bkg" and not caldb and variants & set(_OWN_BKG_FILE):
                where = f"bkg_{int(obs_id):06d}.fits.gz"
                content = next(_OWN_BKG_FILE[v] for v in variants if v in _OWN_BKG_FILE)
                if content is not None:
                    from ..io.atomic import write_atomic

                    write_atomic(data_dir / where, content)
            hdu_rows.append((int(obs_id), htype, hclass, irf_dir, where, h.name))
    obs, hdu = _index_tables(obs_rows, hdu_rows, variants)
    _write(root / "hdu-index.fits.gz", [fits.PrimaryHDU(), hdu], compress=True)
    _write(root / "obs-index.fits.gz", [fits.PrimaryHDU(), obs], compress=True)
    return root
