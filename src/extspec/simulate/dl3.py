r"""The DL3 simulator: a small but complete GADF DL3 data store from analytic IRFs.

The simulator writes what :func:`extspec.io.datastore.open_datastore` reads (spec §1): a store
root with ``obs-index.fits.gz`` and ``hdu-index.fits.gz`` and one file ``data/obs_<id>.fits.gz``
per run holding the extensions EVENTS, GTI, AEFF (AEFF_2D), EDISP (EDISP_2D), BKG (BKG_3D) and,
with a PSF, PSF (PSF_3GAUSS), laid out like H.E.S.S. DL3 DR1 (whose PSF is a PSF_TABLE).

Instrument model (:class:`IrfModel`)
------------------------------------
* Effective area (m^2), tabulated on DR1's axes (96 log energy bins 0.01-100 TeV, offset node
  axis 0, 0.5, ..., 2.5 deg with ``THETA_LO == THETA_HI``):

  .. math:: A(E, \theta) = A_\mathrm{max}\,\bigl(1 - e^{-(E/E_\mathrm{thr})^{k}}\bigr)\,
            e^{-\theta^2 / (2\sigma_\theta^2)}

  The table holds this function at the reader's nodes (log-centres of the energy bins).
* Energy dispersion: log-normal in :math:`\mu = E_\mathrm{reco}/E_\mathrm{true}`,
  :math:`\ln\mu \sim N(\ln(1 + b), \sigma_E)`, independent of energy and offset.  The MATRIX
  column holds the **bin-averaged** density per unit :math:`\mu` on the 160 migration bins
  0.2-5.0 (step 0.03), i.e. ``(CDF(mu_hi) - CDF(mu_lo)) / (mu_hi - mu_lo)``, so that
  ``sum(M * dmu)`` is the probability of :math:`\mu \in [0.2, 5]` (1 to ~1e-15 for the
  default resolution 0.1).
* Background rate (s^-1 MeV^-1 sr^-1, reconstructed energy, field-of-view offset r):

  .. math:: B(E, r) = B_0\,(E / 1\,\mathrm{TeV})^{-\Gamma_b}\,e^{-r^2/(2\sigma_b^2)}
            \quad (r \le r_\mathrm{max},\ 0 \text{ beyond})

  tabulated as BKG_3D on a 50 x 50 DETX/DETY grid from -6 to 6 deg (``FOVALIGN = RADEC``,
  r taken as :math:`\sqrt{x^2 + y^2}` at the bin centres) and 20 log energy bins 0.1-100 TeV.
* PSF: a symmetric 2D gaussian of width ``psf_sigma`` (deg, per axis; 0 disables it) that
  smears the reconstructed positions of source events.  It is written to the store as a
  PSF_3GAUSS table (one Gaussian: ``SCALE = 1 / (2 sigma^2)`` deg^-2, ``AMPL_2 = AMPL_3 = 0``)
  on the effective area's axes, listed in the hdu index as ``psf``/``psf_3gauss``.

Event generation
----------------
Everything is vectorised numpy; each run has its own random stream, the child
``SeedSequence(seed, spawn_key=(i,))`` of the master seed for run index ``i``
(:func:`run_seed`), so adding runs never changes the earlier ones.  Within a run, source,
background and arrival times use three independent sub-streams, so e.g. changing
``bkg_scale`` leaves the source events unchanged (up to their order in time).

*Source.*  The expected count is

.. math:: N_\mathrm{src} = T_\mathrm{live}\cdot 10^4 \int \phi(E)\,\langle A\rangle(E)\,dE,
          \qquad \langle A\rangle(E) = \int f(\hat n)\,A(E, \theta(\hat n))\,d\Omega

with :math:`\phi` in cm^-2 s^-1 TeV^-1, A in m^2 (hence 1e4), f the normalised morphology and
A the effective area **as the reader interpolates the written table** (so simulated counts and
the exposure computed from the store agree exactly in law).  For a point source
:math:`\langle A\rangle = A(E, \theta_\mathrm{src})`; for a disk or a gaussian the
morphology average uses a Gauss-Legendre x uniform-azimuth quadrature (48 x 48 points) around
the source centre.  The true energies are drawn from :math:`\phi\langle A\rangle` by inverse
CDF on a 2000-point log grid over the table's energy range (0.01-100 TeV); each event's true
position is drawn from f and accepted with probability
:math:`A(E, \theta)/\max_\theta A(E, \theta)` (exact rejection sampling, so the position law
follows the offset dependence of the effective area event by event).  The reconstructed
energy is :math:`E\mu` with :math:`\mu` drawn from the same log-normal as the table, and the
reconstructed position is the true one smeared by the PSF.

Morphologies are symmetric, so they are sampled directly in ICRS around the centre
converted once from the source frame: a *disk* is uniform on the sphere within the radius,
a *gaussian* has radial offsets :math:`r = \sigma\sqrt{-2\ln u}` (2D gaussian with sigma per
axis, flat-sky).

*Background.*  :math:`N_\mathrm{bkg} = s\,T_\mathrm{live}\int\!\!\int B\,dE\,d\Omega` over
0.1-100 TeV and the cap :math:`r \le r_\mathrm{max}` (``bkg_scale`` s), with the analytic law
above; energies are drawn from the power law (analytic inverse CDF) and offsets from
:math:`e^{-r^2/2\sigma_b^2}\sin r` (inverse CDF on a fine grid), azimuths uniform, around the
pointing.  Arrival times are uniform in the single GTI; events are sorted by time.

Files
-----
Each file is written atomically (:func:`extspec.io.atomic.write_atomic`), and the two index files are written last, so an interrupted run never
leaves a store that looks complete.  Files are byte-for-byte reproducible for a given seed
(the gzip header carries no time stamp).  For speed the per-run file is assembled from raw
FITS bytes: the three IRF extensions are identical for every run, so they are serialised and
deflate-compressed once, and each run only compresses its primary, EVENTS and GTI blocks and
splices them in front (a standard single-member gzip file).

The EVENTS table has the columns EVENT_ID (int64), TIME (float64, s MET), RA, DEC (float32,
deg, ICRS), ENERGY (float32, TeV, reconstructed) and MC_ID (int16: 1 source, 0 background;
the gammapy convention, ignored by readers that do not know it).

Command line (:func:`main`)::

    python -m extspec.simulate OUTDIR --n-runs 100 --seed 0
"""

from __future__ import annotations

import argparse
import functools
import math
import struct
import sys
import time as _time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataStoreError, ExtspecError
from ..fit import M2_TO_CM2
from ..io.atomic import write_atomic
from ..io.fitswrite import bintable_bytes, header_bytes, primary_header_bytes
from ..irf import Aeff2D, EDisp2D, interp_weights, make_axis
from ..sky import FRAMES, transform, transform_point

__all__ = [
    "SourceModel",
    "IrfModel",
    "SimulatedObservation",
    "simulate_observation",
    "simulate_datastore",
    "wobble_pointings",
    "run_seed",
    "main",
]

#: MJD reference of the mission elapsed time (as in H.E.S.S. DL3 DR1), TT.
MJDREFI = 51910
MJDREFF = 0.000742870370370241
#: Default start (s, MET) of the first run and the pause between two runs (s).
DEFAULT_TSTART = 1.0e8
RUN_GAP = 300.0
#: Site of the (pretend) array: the H.E.S.S. site.
SITE_LON, SITE_LAT, SITE_ALT = 16.5002222222222, -23.2717777777778, 1835.0

_HDUDOC = "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats"
_DEG = np.pi / 180.0
_MORPHOLOGIES = ("point", "disk", "gaussian")
_N_EGRID = 2000  # fine true-energy grid for the inverse-CDF sampling
_N_QUAD = 48  # radial and azimuthal quadrature nodes of an extended morphology


# ------------------------------------------------------------------------------ models --


@dataclass(frozen=True)
class SourceModel:
    """A gamma-ray source: position, morphology and spectrum.

    Parameters
    ----------
    lon, lat : float
        Centre in deg, in ``frame``.
    frame : {"icrs", "galactic"}
        Frame of ``lon``, ``lat``.
    morphology : {"point", "disk", "gaussian"}
        Spatial model.
    size : float
        Disk radius or gaussian sigma in deg (ignored for a point source).
    spectrum : str
        A model name of :mod:`extspec.models` (``power_law``, ``exp_cutoff_power_law``,
        ``log_parabola``, ``broken_power_law``).
    params : dict
        That model's parameters (amplitude in cm^-2 s^-1 TeV^-1, energies in TeV);
        frozen-by-default ones (e.g. ``reference``) may be omitted.

    Examples
    --------
    >>> src = SourceModel(347.3, -0.5, frame="galactic", morphology="disk", size=0.5,
    ...                   spectrum="power_law", params={"index": 2.3, "amplitude": 2e-11})
    """

    lon: float
    lat: float
    frame: str = "icrs"
    morphology: str = "point"
    size: float = 0.0
    spectrum: str = "power_law"
    params: dict = field(default_factory=lambda: {"index": 2.5, "amplitude": 1e-11})

    def __post_init__(self):
        if self.frame not in FRAMES:
            raise ConfigError(f"source frame {self.frame!r} is not one of {', '.join(FRAMES)}")
        if self.morphology not in _MORPHOLOGIES:
            raise ConfigError(
                f"source morphology {self.morphology!r} is not one of {', '.join(_MORPHOLOGIES)}"
            )
        if self.morphology != "point" and not (0.0 < float(self.size) < 10.0):
            raise ConfigError(
                f"source size {self.size!r} deg: a {self.morphology} needs 0 < size < 10 deg"
            )
        if not (-90.0 <= float(self.lat) <= 90.0):
            raise ConfigError(f"source latitude {self.lat!r} deg is outside [-90, 90]")
        self.dnde(np.array([1.0]))  # validates the model name and its parameters

    def dnde(self, energy) -> np.ndarray:
        """Differential flux (cm^-2 s^-1 TeV^-1) at ``energy`` (TeV)."""
        from .. import models

        return np.asarray(models.dnde(self.spectrum, np.asarray(energy, float), self.params), float)

    def center_icrs(self) -> tuple[float, float]:
        """The centre as ICRS (RA, Dec) in deg."""
        if self.frame == "icrs":
            return float(self.lon) % 360.0, float(self.lat)
        return transform_point(float(self.lon), float(self.lat), self.frame, "icrs")


@dataclass(frozen=True)
class IrfModel:
    """Analytic instrument response written as AEFF_2D, EDISP_2D and BKG_3D tables.

    Parameters
    ----------
    aeff_max : float
        Plateau effective area on axis, m^2.
    e_threshold : float
        Threshold energy ``E_thr`` of ``1 - exp(-(E/E_thr)^k)``, TeV.
    threshold_index : float
        ``k`` of the threshold shape.
    offset_sigma : float
        Gaussian width of the effective-area fall-off with offset, deg.
    energy_resolution : float
        Sigma of ``ln(E_reco/E_true)``.
    energy_bias : float
        Median of ``E_reco/E_true`` minus 1.
    psf_sigma : float
        Gaussian PSF sigma per axis, deg (0: no smearing).  Not written to the store.
    bkg_norm : float
        Background rate at 1 TeV on axis, s^-1 MeV^-1 sr^-1.
    bkg_index : float
        Power-law index of the background rate in reconstructed energy.
    bkg_offset_sigma : float
        Gaussian width of the background fall-off with field-of-view offset, deg.
    bkg_max_offset : float
        Background events are simulated (and the BKG table is non-zero) within this offset, deg.
    lo_thres, hi_thres : float
        Safe-range keywords LO_THRES / HI_THRES of the AEFF header, TeV.
    energy_edges, theta_nodes, migra_edges : tuple of float
        AEFF / EDISP axes (default: DR1's 96 log bins 0.01-100 TeV, offset nodes 0-2.5 deg,
        160 migration bins 0.2-5.0).
    bkg_energy_edges, bkg_fov_edges : tuple of float
        BKG_3D axes (default: 20 log bins 0.1-100 TeV; 50 DETX/DETY bins -6 to 6 deg).

    Notes
    -----
    The default threshold (``k = 3``, ``E_thr = 0.3`` TeV) puts A_eff at 10 % of its maximum
    at 0.14 TeV and above 99 % from 0.5 TeV.
    """

    aeff_max: float = 3.0e5
    e_threshold: float = 0.3
    threshold_index: float = 3.0
    offset_sigma: float = 1.5
    energy_resolution: float = 0.1
    energy_bias: float = 0.0
    psf_sigma: float = 0.05
    bkg_norm: float = 1.0e-5
    bkg_index: float = 2.7
    bkg_offset_sigma: float = 1.5
    bkg_max_offset: float = 2.5
    lo_thres: float = 0.1
    hi_thres: float = 100.0

    # table axes (DR1 layout); stored as float32 like DR1
    energy_edges: tuple = field(default=tuple(np.geomspace(0.01, 100.0, 97).tolist()), repr=False)
    theta_nodes: tuple = field(default=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5), repr=False)
    migra_edges: tuple = field(default=tuple(np.linspace(0.2, 5.0, 161).tolist()), repr=False)
    bkg_energy_edges: tuple = field(default=tuple(np.geomspace(0.1, 100.0, 21).tolist()), repr=False)
    bkg_fov_edges: tuple = field(default=tuple(np.linspace(-6.0, 6.0, 51).tolist()), repr=False)

    def __post_init__(self):
        checks = {
            "aeff_max": self.aeff_max > 0,
            "e_threshold": self.e_threshold > 0,
            "threshold_index": self.threshold_index > 0,
            "offset_sigma": self.offset_sigma > 0,
            "energy_resolution": self.energy_resolution > 0,
            "energy_bias": self.energy_bias > -1,
            "psf_sigma": self.psf_sigma >= 0,
            "bkg_norm": self.bkg_norm >= 0,
            "bkg_offset_sigma": self.bkg_offset_sigma > 0,
            "bkg_max_offset": 0 < self.bkg_max_offset < 90,
            "hi_thres": self.hi_thres > self.lo_thres,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"IrfModel: invalid value for {', '.join(bad)}")

    # -- analytic functions ------------------------------------------------------------
    def effective_area(self, energy, offset) -> np.ndarray:
        """Analytic effective area (m^2) at true ``energy`` (TeV) and ``offset`` (deg)."""
        energy = np.asarray(energy, float)
        offset = np.asarray(offset, float)
        shape = -np.expm1(-((energy / self.e_threshold) ** self.threshold_index))
        return self.aeff_max * shape * np.exp(-0.5 * (offset / self.offset_sigma) ** 2)

    def _lognormal_cdf(self, migra) -> np.ndarray:
        m = np.asarray(migra, float)
        z = (np.log(np.where(m > 0, m, 1.0)) - math.log1p(self.energy_bias)) / self.energy_resolution
        erf = np.frompyfunc(math.erf, 1, 1)
        cdf = 0.5 * (1.0 + erf(z / math.sqrt(2.0)).astype(float))
        return np.where(m > 0, cdf, 0.0)

    def edisp_density(self, migra) -> np.ndarray:
        """Log-normal density per unit migration ``mu = E_reco / E_true`` (pointwise)."""
        m = np.asarray(migra, float)
        s = self.energy_resolution
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(m) - math.log1p(self.energy_bias)) / s
            d = np.exp(-0.5 * z * z) / (m * s * math.sqrt(2 * math.pi))
        return np.where(m > 0, d, 0.0)

    def edisp_bin_density(self, migra_lo, migra_hi) -> np.ndarray:
        """Bin-averaged density per unit migration (what the MATRIX column holds)."""
        lo = np.asarray(migra_lo, float)
        hi = np.asarray(migra_hi, float)
        return (self._lognormal_cdf(hi) - self._lognormal_cdf(lo)) / (hi - lo)

    def background_rate(self, energy, offset) -> np.ndarray:
        """Analytic background rate (s^-1 MeV^-1 sr^-1) at reco ``energy`` (TeV), ``offset`` (deg)."""
        energy = np.asarray(energy, float)
        offset = np.asarray(offset, float)
        rate = self.bkg_norm * energy ** (-self.bkg_index)
        rate = rate * np.exp(-0.5 * (offset / self.bkg_offset_sigma) ** 2)
        return np.where(offset <= self.bkg_max_offset, rate, 0.0)


# ------------------------------------------- sampler vectors (rad; frames: extspec.sky) --


def _unit(lon, lat):
    """Unit vectors (..., 3) of positions in rad (the sampler's own layout)."""
    cl = np.cos(lat)
    return np.stack([cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)], axis=-1)


def _angle(v, p):
    """Great-circle angle (deg) between unit vectors ``v`` (..., 3) and ``p`` (3,)."""
    dot = v @ p
    cross = np.linalg.norm(np.cross(v, p), axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def wobble_pointings(ra: float, dec: float, n_runs: int, offset: float = 0.7) -> np.ndarray:
    """Wobble pointings around a target, cycling through 4 positions.

    Parameters
    ----------
    ra, dec : float
        Target, deg (ICRS).
    n_runs : int
        Number of pointings.
    offset : float
        Wobble offset, deg.

    Returns
    -------
    ndarray, shape (n_runs, 2)
        (RA, Dec) in deg, at position angles 0, 90, 180, 270 deg (N, E, S, W) in turn.
    """
    pa = np.radians([0.0, 90.0, 180.0, 270.0])[np.arange(int(n_runs)) % 4]
    lon, lat = _offset_by_many(math.radians(ra), math.radians(dec), math.radians(offset), pa)
    return np.stack([np.degrees(lon), np.degrees(lat)], axis=1)


def _gti_duration(tstart: float, ontime: float) -> float:
    """``ontime`` rounded so that ``(tstart + ontime) - tstart == ontime`` holds exactly.

    The reader takes the ontime from the GTI (STOP - START in MET seconds, ~1e8); with this
    rounding (at the 1e-8 s level) ONTIME, the GTI and ``livetime = ONTIME * DEADC`` agree
    to the last bit.
    """
    return (float(tstart) + ontime) - float(tstart)


def run_seed(seed, index: int) -> np.random.SeedSequence:
    """The random stream of run ``index`` (0-based) of a store simulated with ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(int(index),))


# ------------------------------------------------------------------------ IRF tables --


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


class _IrfTables:
    """The written tables of one :class:`IrfModel`, their reader-side objects and raw bytes."""

    def __init__(self, irf: IrfModel):
        self.irf = irf
        e_edges = _f32(irf.energy_edges)
        e_lo, e_hi = e_edges[:-1], e_edges[1:]
        theta = _f32(irf.theta_nodes)
        m_edges = _f32(irf.migra_edges)
        m_lo, m_hi = m_edges[:-1], m_edges[1:]

        # reader-side axes, built from the float32 columns exactly as datastore.py does
        ax_e = make_axis("ENERG", e_lo.astype(float), e_hi.astype(float), True)
        ax_t = make_axis("THETA", theta.astype(float), theta.astype(float), False)
        ax_m = make_axis("MIGRA", m_lo.astype(float), m_hi.astype(float), False)

        area = _f32(irf.effective_area(ax_e.nodes[:, None], ax_t.nodes[None, :]))  # (E, theta)
        dens_mu = irf.edisp_bin_density(ax_m.edges[:-1], ax_m.edges[1:])  # (mu,)
        matrix = _f32(np.broadcast_to(dens_mu[None, :, None], (ax_e.nodes.size, dens_mu.size, theta.size)))

        self.aeff = Aeff2D(ax_e, ax_t, area.astype(float), irf.lo_thres, irf.hi_thres)
        self.edisp = EDisp2D(ax_e, ax_m, ax_t, matrix.astype(float))
        # does the reader's linear extrapolation ever clip a negative value to 0?
        probe_e = np.concatenate([ax_e.edges[[0, -1]], ax_e.nodes])
        probe_t = np.concatenate([ax_t.nodes, ax_t.edges[[-1]]])
        e_g, t_g = np.meshgrid(probe_e, probe_t, indexing="ij")
        ie, we0, we1 = interp_weights(ax_e, e_g)
        it, wt0, wt1 = interp_weights(ax_t, t_g)
        d = self.aeff.data
        raw = we0 * (wt0 * d[ie, it] + wt1 * d[ie, it + 1]) + we1 * (wt0 * d[ie + 1, it] + wt1 * d[ie + 1, it + 1])
        self.aeff_clips = bool(np.any(raw < 0))
        self.theta_probe = probe_t  # breakpoints of A(E, .): its maximum is at one of them

        # background table, (E, DETY, DETX) in numpy order = TDIM (DETX, DETY, ENERG)
        be = _f32(irf.bkg_energy_edges)
        bx = _f32(irf.bkg_fov_edges)
        ax_be = make_axis("ENERG", be[:-1].astype(float), be[1:].astype(float), True)
        ax_bx = make_axis("DETX", bx[:-1].astype(float), bx[1:].astype(float), False)
        r = np.hypot(ax_bx.nodes[None, :], ax_bx.nodes[:, None])  # (y, x)
        bkg = _f32(irf.background_rate(ax_be.nodes[:, None, None], r[None, :, :]))

        ne, nt, nm = e_lo.size, theta.size, m_lo.size
        common = [
            ("HDUCLASS", "GADF"),
            ("HDUDOC", _HDUDOC),
            ("HDUVERS", "0.2"),
            ("HDUCLAS1", "RESPONSE"),
        ]
        instr = [("ORIGIN", "extspec.simulate"), ("TELESCOP", "SIM"), ("INSTRUME", "analytic IRF")]

        def col(name, arr, unit=""):  # one row holding the whole (flattened) array
            a = np.asarray(arr, np.float32).reshape(1, -1)
            return (name, f"{a.shape[1]}E", unit, a)

        aeff = bintable_bytes("AEFF", [
            col("ENERG_LO", e_lo, "TeV"), col("ENERG_HI", e_hi, "TeV"),
            col("THETA_LO", theta, "deg"), col("THETA_HI", theta, "deg"),
            col("EFFAREA", area.T, "m2"),
        ], [("TDIM5", f"({ne},{nt})"), *common, ("HDUCLAS2", "EFF_AREA"), ("HDUCLAS3", "FULL-ENCLOSURE"),
            ("HDUCLAS4", "AEFF_2D"), *instr, ("LO_THRES", float(irf.lo_thres), "[TeV]"),
            ("HI_THRES", float(irf.hi_thres), "[TeV]")])
        edisp = bintable_bytes("EDISP", [
            col("ENERG_LO", e_lo, "TeV"), col("ENERG_HI", e_hi, "TeV"),
            col("MIGRA_LO", m_lo), col("MIGRA_HI", m_hi),
            col("THETA_LO", theta, "deg"), col("THETA_HI", theta, "deg"),
            col("MATRIX", matrix.T),
        ], [("TDIM7", f"({ne},{nm},{nt})"), *common, ("HDUCLAS2", "EDISP"), ("HDUCLAS3", "FULL-ENCLOSURE"),
            ("HDUCLAS4", "EDISP_2D"), *instr])
        nbe, nbx = be.size - 1, bx.size - 1
        bkg_b = bintable_bytes("BKG", [
            col("DETX_LO", bx[:-1], "deg"), col("DETX_HI", bx[1:], "deg"),
            col("DETY_LO", bx[:-1], "deg"), col("DETY_HI", bx[1:], "deg"),
            col("ENERG_LO", be[:-1], "TeV"), col("ENERG_HI", be[1:], "TeV"),
            col("BKG", bkg, "MeV-1 s-1 sr-1"),
        ], [("TDIM7", f"({nbx},{nbx},{nbe})"), ("FOVALIGN", "RADEC"), *common, ("HDUCLAS2", "BKG"),
            ("HDUCLAS3", "FULL-ENCLOSURE"), ("HDUCLAS4", "BKG_3D"), *instr])

        self.irf_hdu_sizes = {"aeff": len(aeff), "edisp": len(edisp), "bkg": len(bkg_b)}
        parts = [aeff, edisp, bkg_b]
        if irf.psf_sigma > 0:  # the smearing law, PSF_3GAUSS with one Gaussian
            sig = np.full((ne, nt), float(irf.psf_sigma))
            zero = np.zeros((ne, nt))
            psf = bintable_bytes("PSF", [
                col("ENERG_LO", e_lo, "TeV"), col("ENERG_HI", e_hi, "TeV"),
                col("THETA_LO", theta, "deg"), col("THETA_HI", theta, "deg"),
                col("SCALE", (0.5 / sig**2).T), col("SIGMA_1", sig.T, "deg"), col("AMPL_2", zero.T),
                col("SIGMA_2", sig.T, "deg"), col("AMPL_3", zero.T), col("SIGMA_3", sig.T, "deg"),
            ], [*((f"TDIM{i}", f"({ne},{nt})") for i in range(5, 11)), *common, ("HDUCLAS2", "PSF"),
                ("HDUCLAS3", "FULL-ENCLOSURE"), ("HDUCLAS4", "PSF_3GAUSS"), *instr])
            self.irf_hdu_sizes["psf"] = len(psf)
            parts.append(psf)
        self.tail = b"".join(parts)
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.tail_deflated = comp.compress(self.tail) + comp.flush(zlib.Z_FINISH)

        # background sampling law
        self.bkg_e_min, self.bkg_e_max = float(ax_be.edges[0]), float(ax_be.edges[-1])
        r_grid = np.linspace(0.0, irf.bkg_max_offset, 4001)  # deg
        prof = np.exp(-0.5 * (r_grid / irf.bkg_offset_sigma) ** 2) * np.sin(r_grid * _DEG)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (prof[1:] + prof[:-1]) * np.diff(r_grid * _DEG))])
        self.bkg_r_grid = r_grid
        self.bkg_r_cdf = cdf / cdf[-1]
        self.bkg_solid_angle = 2 * np.pi * cdf[-1]  # sr, weighted by the offset profile
        g = irf.bkg_index
        lo, hi = self.bkg_e_min, self.bkg_e_max
        e_int = math.log(hi / lo) if g == 1 else (hi ** (1 - g) - lo ** (1 - g)) / (1 - g)
        # rate per MeV -> per TeV: 1e6
        self.bkg_rate_total = irf.bkg_norm * 1e6 * e_int * self.bkg_solid_angle  # s^-1


@functools.lru_cache(maxsize=8)
def _tables(irf: IrfModel) -> _IrfTables:
    return _IrfTables(irf)


# -------------------------------------------------------------------- source sampling --


class _SourceSampler:
    """Per-source precomputation: ICRS centre, morphology quadrature, spectrum on a grid."""

    def __init__(self, source: SourceModel, tables: _IrfTables):
        self.source = source
        ra, dec = source.center_icrs()
        self.ra, self.dec = ra, dec
        self.lon0, self.lat0 = math.radians(ra), math.radians(dec)
        self.center_vec = _unit(self.lon0, self.lat0)
        ax = tables.aeff.energy
        self.e_grid = np.geomspace(ax.edges[0], ax.edges[-1], _N_EGRID)
        self.ln_grid = np.log(self.e_grid)
        self.dnde = source.dnde(self.e_grid)
        self.size = math.radians(float(source.size))
        if source.morphology == "point":
            self.quad_vec = None
        else:
            x, wx = np.polynomial.legendre.leggauss(_N_QUAD)
            u = 0.5 * (x + 1.0)
            r = self._radius(u)
            pa = 2 * np.pi * (np.arange(_N_QUAD) + 0.5) / _N_QUAD
            rr, pp = np.meshgrid(r, pa, indexing="ij")
            lon, lat = _offset_by_many(self.lon0, self.lat0, rr.ravel(), pp.ravel())
            self.quad_vec = _unit(lon, lat)
            self.quad_w = np.repeat(0.5 * wx / _N_QUAD, _N_QUAD)

    def _radius(self, u):
        """Offset (rad) from the centre for a uniform variate ``u`` in [0, 1)."""
        if self.source.morphology == "disk":
            return np.arccos(1.0 - u * (1.0 - math.cos(self.size)))
        return self.size * np.sqrt(-2.0 * np.log1p(-u))

    def draw(self, rng, n):
        """``n`` true positions (lon, lat in rad) from the morphology."""
        if self.source.morphology == "point":
            return np.full(n, self.lon0), np.full(n, self.lat0)
        r = self._radius(rng.random(n))
        pa = rng.uniform(0.0, 2 * np.pi, n)
        return _offset_by_many(self.lon0, self.lat0, r, pa)

    def mean_aeff(self, tables: _IrfTables, pnt_vec) -> np.ndarray:
        """Morphology-averaged effective area (m^2) on the energy grid, as the reader evaluates it."""
        aeff = tables.aeff
        if self.quad_vec is None:
            return aeff.evaluate(self.e_grid, _angle(self.center_vec, pnt_vec))
        theta = _angle(self.quad_vec, pnt_vec)
        if tables.aeff_clips:  # exact, slower path
            return aeff.evaluate_grid(self.e_grid, theta) @ self.quad_w
        # bilinear interpolation of a non-negative table never clips: average the offset
        # interpolation weights first, then interpolate in energy once
        it, wt0, wt1 = interp_weights(aeff.offset, theta)
        n = aeff.offset.nodes.size
        c = np.bincount(it, wt0 * self.quad_w, n) + np.bincount(it + 1, wt1 * self.quad_w, n)
        a_e = aeff.data @ c
        ie, we0, we1 = interp_weights(aeff.energy, self.e_grid)
        return np.clip(we0 * a_e[ie] + we1 * a_e[ie + 1], 0.0, None)


def _sample_source(rng, sampler: _SourceSampler, tables: _IrfTables, pnt_vec, livetime):
    """Draw source events; returns (lon, lat [rad, reco], e_true, e_reco, npred)."""
    irf = tables.irf
    a_mean = sampler.mean_aeff(tables, pnt_vec)
    q = sampler.dnde * a_mean * sampler.e_grid  # per unit ln E, cm^-2 s^-1 m^2
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (q[1:] + q[:-1]) * np.diff(sampler.ln_grid))])
    total = cdf[-1]
    npred = float(livetime * M2_TO_CM2 * total)
    n = int(rng.poisson(npred)) if npred > 0 else 0
    if n == 0:
        e = np.empty(0)
        return e, e, e, e, npred
    e_true = np.exp(np.interp(rng.random(n) * total, cdf, sampler.ln_grid))
    # true positions by rejection on A(E, theta) / max_theta A(E, theta)
    lon = np.empty(n)
    lat = np.empty(n)
    if sampler.quad_vec is None:
        lon[:], lat[:] = sampler.lon0, sampler.lat0
    else:
        amax = tables.aeff.evaluate(e_true[:, None], tables.theta_probe[None, :]).max(axis=1)
        todo = np.arange(n)
        for _ in range(10000):
            lo, la = sampler.draw(rng, todo.size)
            theta = _angle(_unit(lo, la), pnt_vec)
            a = tables.aeff.evaluate(e_true[todo], theta)
            ok = rng.random(todo.size) * amax[todo] < a
            lon[todo[ok]], lat[todo[ok]] = lo[ok], la[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
        else:  # pragma: no cover - needs an acceptance below ~1e-3
            raise ExtspecError("source position sampling did not converge (source outside the FoV?)")
    # energy dispersion: the same log-normal as the EDISP table
    mu = np.exp(math.log1p(irf.energy_bias) + irf.energy_resolution * rng.standard_normal(n))
    e_reco = e_true * mu
    if irf.psf_sigma > 0:
        r = math.radians(irf.psf_sigma) * np.sqrt(-2.0 * np.log1p(-rng.random(n)))
        lon, lat = _offset_by_many(lon, lat, r, rng.uniform(0.0, 2 * np.pi, n))
    return lon, lat, e_true, e_reco, npred


def _offset_by_many(lon0, lat0, r, pa):
    """Points at angular distance ``r`` and position angle ``pa`` (rad) from (lon0, lat0) (rad);
    every argument may be an array (per-point centres) or a scalar."""
    sin_lat0, cos_lat0 = np.sin(lat0), np.cos(lat0)
    sr, cr = np.sin(r), np.cos(r)
    sin_lat = np.clip(sin_lat0 * cr + cos_lat0 * sr * np.cos(pa), -1.0, 1.0)
    lat = np.arcsin(sin_lat)
    dlon = np.arctan2(np.sin(pa) * sr * cos_lat0, cr - sin_lat0 * sin_lat)
    return np.mod(lon0 + dlon, 2 * np.pi), lat


def _sample_background(rng, tables: _IrfTables, pnt, livetime, bkg_scale):
    """Draw background events; returns (lon, lat [rad], e_reco, npred)."""
    irf = tables.irf
    npred = float(livetime * bkg_scale * tables.bkg_rate_total)
    n = int(rng.poisson(npred)) if npred > 0 else 0
    if n == 0:
        e = np.empty(0)
        return e, e, e, npred
    g = irf.bkg_index
    lo, hi = tables.bkg_e_min, tables.bkg_e_max
    u = rng.random(n)
    if g == 1:
        energy = lo * (hi / lo) ** u
    else:
        a, b = lo ** (1 - g), hi ** (1 - g)
        energy = (a + u * (b - a)) ** (1.0 / (1 - g))
    r = np.interp(rng.random(n), tables.bkg_r_cdf, tables.bkg_r_grid)
    pa = rng.uniform(0.0, 2 * np.pi, n)
    lon, lat = _offset_by_many(math.radians(pnt[0]), math.radians(pnt[1]), np.radians(r), pa)
    return lon, lat, energy, npred


# ---------------------------------------------------------------------- observations --


@dataclass
class SimulatedObservation:
    """The events and bookkeeping of one simulated run (what goes into one data file).

    Attributes
    ----------
    obs_id : int

    pointing : (ra, dec) in deg, ICRS

    tstart, tstop : float
        Run start and stop, s MET (the single GTI).
    ontime, livetime, deadc : float
        ``livetime = ontime * deadc`` (s).
    time : float64 array
        Arrival times, s MET, sorted.
    ra, dec : float32 arrays
        Reconstructed positions, deg ICRS (as written).
    energy : float32 array
        Reconstructed energy, TeV (as written).
    energy_true : float64 array
        True energy, TeV (NaN for background events; not written).
    mc_id : int16 array
        1 for source events, 0 for background.
    npred_source, npred_background : float
        Expected numbers of source and background events.
    """

    obs_id: int
    pointing: tuple
    tstart: float
    tstop: float
    ontime: float
    livetime: float
    deadc: float
    time: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    energy: np.ndarray
    energy_true: np.ndarray
    mc_id: np.ndarray
    npred_source: float
    npred_background: float

    @property
    def n_events(self) -> int:
        return int(self.time.size)


def _source_list(source) -> list:
    """``source`` as a list: none, one SourceModel, or several (their events are added)."""
    if source is None:
        return []
    return list(source) if isinstance(source, (list, tuple)) else [source]


def simulate_observation(
    pointing,
    source: SourceModel | None = None,
    *,
    livetime: float = 1800.0,
    deadc: float = 0.9,
    tstart: float = DEFAULT_TSTART,
    irf: IrfModel = IrfModel(),
    bkg_scale: float = 1.0,
    seed=0,
    obs_id: int = 1,
    _sampler: _SourceSampler | None = None,
) -> SimulatedObservation:
    """Simulate the event list of one run.

    Parameters
    ----------
    pointing : (float, float)
        Pointing (RA, Dec), deg ICRS (fixed during the run).
    source : SourceModel, list of SourceModel, or None
        The gamma-ray source; several sources add their events (e.g. two disks of different
        index: a source whose spectrum changes across it; MC_ID 1, 2, ... per source);
        None for background only.
    livetime : float
        Live time, s; the run lasts ``ontime = livetime / deadc`` (rounded at the 1e-8 s
        level so that the GTI holds it exactly; the livetime is then ``ontime * deadc``).
    deadc : float
        Dead-time correction factor, in (0, 1].
    tstart : float
        Run start, s MET (reference MJD ``MJDREFI + MJDREFF``, TT).
    irf : IrfModel
        Instrument response.
    bkg_scale : float
        Multiplies the expected background (0: no background).
    seed : int, SeedSequence or Generator
        Random stream.  Run ``i`` of :func:`simulate_datastore` uses ``run_seed(seed, i)``.
        An int or SeedSequence is split into independent source, background and time
        streams; a Generator is used as is for all draws.
    obs_id : int
        Observation id (bookkeeping only).

    Returns
    -------
    SimulatedObservation
    """
    if not (0.0 < deadc <= 1.0):
        raise ConfigError(f"deadc = {deadc!r} is not in (0, 1]")
    if not livetime > 0:
        raise ConfigError(f"livetime = {livetime!r} s is not positive")
    if bkg_scale < 0:
        raise ConfigError(f"bkg_scale = {bkg_scale!r} is negative")
    tables = _tables(irf)
    ss = seed if isinstance(seed, (np.random.SeedSequence, np.random.Generator)) else np.random.SeedSequence(seed)
    if isinstance(ss, np.random.Generator):
        rng_src = rng_bkg = rng_time = ss
    else:
        rng_src, rng_bkg, rng_time = (np.random.default_rng(s) for s in ss.spawn(3))
    ra_p, dec_p = float(pointing[0]) % 360.0, float(pointing[1])
    pnt_vec = _unit(math.radians(ra_p), math.radians(dec_p))
    ontime = _gti_duration(tstart, float(livetime) / float(deadc))
    t_live = ontime * float(deadc)  # what the reader computes from the GTI and DEADC

    sources = _source_list(source)
    samplers = _sampler if isinstance(_sampler, list) else [_sampler] * len(sources)
    parts = [_sample_source(rng_src, smp if smp is not None else _SourceSampler(src, tables), tables, pnt_vec, t_live)
             for src, smp in zip(sources, samplers)]  # several sources: drawn one after the other
    s_lon, s_lat, s_et, s_er = (np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(4))
    np_src = float(sum(p[4] for p in parts))
    src_id = np.concatenate([np.full(p[3].size, k + 1, np.int16) for k, p in enumerate(parts)]) if parts else \
        np.empty(0, np.int16)
    b_lon, b_lat, b_er, np_bkg = _sample_background(rng_bkg, tables, (ra_p, dec_p), t_live, bkg_scale)

    lon = np.concatenate([s_lon, b_lon])
    lat = np.concatenate([s_lat, b_lat])
    e_reco = np.concatenate([s_er, b_er])
    e_true = np.concatenate([s_et, np.full(b_er.size, np.nan)])
    mc_id = np.concatenate([src_id, np.zeros(b_er.size, np.int16)])
    t = tstart + ontime * rng_time.random(lon.size)
    order = np.argsort(t, kind="stable")
    return SimulatedObservation(
        obs_id=int(obs_id),
        pointing=(ra_p, dec_p),
        tstart=float(tstart),
        tstop=float(tstart) + ontime,  # exact: see _gti_duration
        ontime=ontime,
        livetime=t_live,
        deadc=float(deadc),
        time=t[order],
        ra=np.degrees(lon[order]).astype(np.float32),
        dec=np.degrees(lat[order]).astype(np.float32),
        energy=e_reco[order].astype(np.float32),
        energy_true=e_true[order],
        mc_id=mc_id[order],
        npred_source=np_src,
        npred_background=np_bkg,
    )


# ---------------------------------------------------------------------------- writing --


def _cards(items) -> list:
    """``(key, value)`` / ``(key, (value, comment))`` pairs as :mod:`extspec.io.fitswrite` cards."""
    return [(k, *v) if isinstance(v, tuple) else (k, v) for k, v in items]


_PRIMARY_CARDS = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, ""), ("NAXIS", 0, ""),
                  ("EXTEND", True, ""), ("CREATOR", "extspec.simulate", "simulated DL3 data")]

_EVENT_CARDS = _cards([
    ("HDUCLASS", ("GADF", "Signal conformance with GADF")),
    ("HDUDOC", _HDUDOC),
    ("HDUVERS", ("0.2", "DL3 specification version")),
    ("HDUCLAS1", ("EVENTS", "Primary extension class")),
    ("ORIGIN", "extspec.simulate"),
    ("TELESCOP", "SIM"),
    ("INSTRUME", "analytic IRF"),
    ("CREATOR", "extspec.simulate"),
    ("OBS_ID", (0, "observation number")),
    ("TSTART", (0.0, "MET of observation start time")),
    ("TSTOP", (0.0, "MET of observation stop time")),
    ("MJDREFI", (MJDREFI, "int part of reference MJD for times")),
    ("MJDREFF", (MJDREFF, "fractional part of MJDREF")),
    ("TIMEUNIT", ("s", "time unit is seconds since MET start")),
    ("TIMESYS", ("TT", "Time system")),
    ("TIMEREF", ("local", "local time reference")),
    ("ONTIME", (0.0, "total good time (including deadtime)")),
    ("LIVETIME", (0.0, "total live time = ONTIME * DEADC")),
    ("DEADC", (1.0, "average deadtime correction")),
    ("OBJECT", ("", "observed object")),
    ("RA_OBJ", (0.0, "RA of target object (deg)")),
    ("DEC_OBJ", (0.0, "Dec of target object (deg)")),
    ("RA_PNT", (0.0, "nominal pointing position RA (deg)")),
    ("DEC_PNT", (0.0, "nominal pointing position Dec (deg)")),
    ("GLON_PNT", (0.0, "nominal pointing galactic longitude (deg)")),
    ("GLAT_PNT", (0.0, "nominal pointing galactic latitude (deg)")),
    ("ALT_PNT", (0.0, "altitude at culmination (deg)")),
    ("AZ_PNT", (0.0, "azimuth at culmination (deg)")),
    ("RADESYS", ("ICRS", "equatorial system type")),
    ("EQUINOX", (2000.0, "base equinox")),
    ("OBS_MODE", ("WOBBLE", "observation mode")),
    ("N_TELS", (4, "number of telescopes")),
    ("GEOLON", (SITE_LON, "longitude of observatory (deg)")),
    ("GEOLAT", (SITE_LAT, "latitude of observatory (deg)")),
    ("ALTITUDE", (SITE_ALT, "altitude of observatory (m)")),
    ("EUNIT", ("TeV", "energy unit")),
    ("SIMSEED", (0, "master seed of extspec.simulate")),
    ("SIMRUN", (0, "run index (child seed spawn key)")),
])
"""The EVENTS header of a run: these values are the template, each run sets its own."""

_GTI_CARDS = _cards([
    ("HDUCLASS", "GADF"),
    ("HDUDOC", _HDUDOC),
    ("HDUVERS", "0.2"),
    ("HDUCLAS1", "GTI"),
    ("TSTART", 0.0),
    ("TSTOP", 0.0),
    ("MJDREFI", MJDREFI),
    ("MJDREFF", MJDREFF),
    ("TIMEUNIT", "s"),
    ("TIMESYS", "TT"),
    ("TIMEREF", "local"),
])


def _updated(cards: list, updates: dict) -> list:
    """``cards`` with the values of ``updates`` (comments kept); every key must be there."""
    out = [(c[0], updates.pop(c[0]), *c[2:]) if c[0] in updates else c for c in cards]
    if updates:
        raise KeyError(f"no such header keyword: {', '.join(updates)}")
    return out


def _gzip_spliced(head: bytes, tables: _IrfTables) -> bytes:
    """One gzip member holding ``head + tables.tail``; the tail is compressed only once."""
    comp = zlib.compressobj(1, zlib.DEFLATED, -15)  # event data barely compresses: be fast
    body = comp.compress(head) + comp.flush(zlib.Z_SYNC_FLUSH)
    crc = zlib.crc32(tables.tail, zlib.crc32(head))
    size = (len(head) + len(tables.tail)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown
    return header + body + tables.tail_deflated + struct.pack("<II", crc, size)


def _culmination(dec):
    """Zenith, altitude, azimuth (deg) at upper culmination at the site latitude."""
    dec = np.asarray(dec, float)
    zen = np.abs(dec - SITE_LAT)
    az = np.where(dec < SITE_LAT, 180.0, 0.0)
    return zen, 90.0 - zen, az


def _file_name(obs_id: int) -> str:
    return f"obs_{obs_id:06d}.fits.gz"


def _write_run(path: Path, sim: SimulatedObservation, extra: dict, tables: _IrfTables) -> dict:
    n = sim.n_events
    times = {"TSTART": sim.tstart, "TSTOP": sim.tstop}
    ev = bintable_bytes("EVENTS", [
        ("EVENT_ID", "K", "", np.arange(1, n + 1)),
        ("TIME", "D", "s", sim.time),
        ("RA", "E", "deg", sim.ra),
        ("DEC", "E", "deg", sim.dec),
        ("ENERGY", "E", "TeV", sim.energy),
        ("MC_ID", "I", "", sim.mc_id),
    ], _updated(_EVENT_CARDS, {
        "OBS_ID": sim.obs_id,
        **times,
        "ONTIME": sim.ontime,
        "LIVETIME": sim.livetime,
        "DEADC": sim.deadc,
        "RA_PNT": sim.pointing[0],
        "DEC_PNT": sim.pointing[1],
        **extra,
    }))
    gti = bintable_bytes("GTI", [("START", "D", "s", [sim.tstart]), ("STOP", "D", "s", [sim.tstop])],
                         _updated(_GTI_CARDS, dict(times)))
    write_atomic(path, _gzip_spliced(header_bytes(_PRIMARY_CARDS) + ev + gti, tables))
    return {"events": len(ev), "gti": len(gti), **tables.irf_hdu_sizes}


def _index_bytes(extname: str, columns: list, cards: list) -> bytes:
    import gzip

    return gzip.compress(primary_header_bytes() + bintable_bytes(extname, columns, cards), compresslevel=6, mtime=0)


def _str_col(name, values):
    values = [str(v) for v in values]
    width = max(1, max((len(v) for v in values), default=1))
    return (name, f"{width}A", "", values)


def _write_indexes(root: Path, summary: list[dict], hdu_rows: list[tuple]) -> None:
    s = {k: np.array([row[k] for row in summary]) for k in summary[0]}

    def col(name, tform, unit=""):
        return (name, tform, unit, s[name])

    obs_cols = [
        col("OBS_ID", "K"),
        *(col(k, "D", "deg") for k in ("RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT", "ZEN_PNT", "ALT_PNT", "AZ_PNT")),
        _str_col("OBJECT", s["OBJECT"]),
        col("RA_OBJ", "D", "deg"),
        col("DEC_OBJ", "D", "deg"),
        col("ONTIME", "D", "s"),
        col("LIVETIME", "D", "s"),
        col("DEADC", "D"),
        col("TSTART", "D", "s"),
        col("TSTOP", "D", "s"),
        col("N_TELS", "K"),
        col("EVENT_COUNT", "K"),
        col("SAFE_ENERGY_LO", "D", "TeV"),
        col("SAFE_ENERGY_HI", "D", "TeV"),
    ]
    obs_cards = [
        ("HDUCLASS", "GADF"), ("HDUDOC", _HDUDOC), ("HDUVERS", "0.2"), ("HDUCLAS1", "INDEX"),
        ("HDUCLAS2", "OBS"), ("MJDREFI", MJDREFI), ("MJDREFF", MJDREFF), ("TIMEUNIT", "s"),
        ("TIMESYS", "TT"), ("TIMEREF", "local"), ("GEOLON", SITE_LON), ("GEOLAT", SITE_LAT),
        ("ALTITUDE", SITE_ALT), ("CREATOR", "extspec.simulate"),
    ]
    cols = list(zip(*hdu_rows))
    hdu_cols = [
        ("OBS_ID", "K", "", np.array(cols[0], np.int64)),
        _str_col("HDU_TYPE", cols[1]),
        _str_col("HDU_CLASS", cols[2]),
        _str_col("FILE_DIR", cols[3]),
        _str_col("FILE_NAME", cols[4]),
        _str_col("HDU_NAME", cols[5]),
        ("SIZE", "K", "", np.array(cols[6], np.int64)),
    ]
    hdu_cards = [("HDUCLASS", "GADF"), ("HDUDOC", _HDUDOC), ("HDUVERS", "0.2"), ("HDUCLAS1", "INDEX"),
                 ("HDUCLAS2", "HDU")]
    # the hdu index first, the obs index last: a store is complete once both exist
    write_atomic(root / "hdu-index.fits.gz", _index_bytes("HDU_INDEX", hdu_cols, hdu_cards))
    write_atomic(root / "obs-index.fits.gz", _index_bytes("OBS_INDEX", obs_cols, obs_cards))


_HDU_LAYOUT = (
    ("events", "events", "EVENTS"),
    ("gti", "gti", "GTI"),
    ("aeff", "aeff_2d", "AEFF"),
    ("edisp", "edisp_2d", "EDISP"),
    ("bkg", "bkg_3d", "BKG"),
)
_PSF_ROW = (("psf", "psf_3gauss", "PSF"),)


def simulate_datastore(
    path,
    pointings,
    source: SourceModel | None,
    livetime: float = 1800.0,
    deadc: float = 0.9,
    irf: IrfModel = IrfModel(),
    bkg_scale: float = 1.0,
    seed: int = 0,
    obs_id_start: int = 1,
    tstart=DEFAULT_TSTART,
    overwrite: bool = False,
    object_name: str = "SIMULATED",
) -> Path:
    """Simulate one run per pointing and write a GADF DL3 data store.

    Parameters
    ----------
    path : str or Path
        Store root (created if needed).
    pointings : sequence of (ra, dec) or (N, 2) array
        Pointings in deg, ICRS; one run each (see :func:`wobble_pointings`).
    source : SourceModel, list of SourceModel, or None
        The gamma-ray source (several: their events added, the first gives OBJECT's
        position; None: background only).
    livetime : float
        Live time per run, s (``ONTIME = livetime / deadc``).
    deadc : float
        Dead-time correction factor.
    irf : IrfModel
        Instrument response (identical for every run).
    bkg_scale : float
        Multiplies the expected background.
    seed : int
        Master seed; run ``i`` uses :func:`run_seed` ``(seed, i)``.
    obs_id_start : int
        OBS_ID of the first run; run ``i`` gets ``obs_id_start + i``.
    tstart : float or sequence of float
        Start of the first run (s MET); later runs follow every ``ONTIME + 300`` s.  A
        sequence gives each run's start explicitly.
    overwrite : bool
        Replace an existing store at ``path`` (its old index files are removed first and
        its stale ``data/obs_*.fits.gz`` files deleted).  Otherwise an existing store is an
        error.
    object_name : str
        OBJECT keyword / column.

    Returns
    -------
    Path
        The store root.

    Raises
    ------
    DataStoreError
        If a store exists at ``path`` and ``overwrite`` is False.
    ConfigError
        For invalid arguments.
    """
    root = Path(path)
    pnts = np.atleast_2d(np.asarray(pointings, dtype=float))
    if pnts.ndim != 2 or pnts.shape[1] != 2 or pnts.shape[0] == 0:
        raise ConfigError(f"pointings: expected a non-empty list of (ra, dec), got shape {pnts.shape}")
    n_runs = pnts.shape[0]
    ontime = float(livetime) / float(deadc)
    if np.ndim(tstart) == 0:
        starts = float(tstart) + np.arange(n_runs) * (ontime + RUN_GAP)
    else:
        starts = np.asarray(tstart, float)
        if starts.shape != (n_runs,):
            raise ConfigError(f"tstart: expected a scalar or {n_runs} values, got {starts.shape}")

    data_dir = root / "data"
    old_index = [root / n for n in ("obs-index.fits.gz", "hdu-index.fits.gz", "obs-index.fits", "hdu-index.fits")]
    old_data = sorted(data_dir.glob("obs_*.fits.gz")) if data_dir.is_dir() else []
    existing = [p for p in old_index if p.exists()] + old_data
    if existing and not overwrite:
        raise DataStoreError(
            f"{root}: a data store already exists there ({existing[0].name}); pass overwrite=True"
        )
    for p in old_index:  # a crash from here on leaves no store that looks complete
        if p.exists():
            p.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)

    tables = _tables(irf)
    samplers = [_SourceSampler(src, tables) for src in _source_list(source)]
    sampler = samplers if isinstance(source, (list, tuple)) else (samplers[0] if samplers else None)
    obj_ra, obj_dec = (samplers[0].ra, samplers[0].dec) if samplers else (float("nan"), float("nan"))
    glon, glat = transform(pnts[:, 0] % 360.0, pnts[:, 1], "icrs", "galactic")
    zen, alt, az = _culmination(pnts[:, 1])

    summary, hdu_rows, written = [], [], set()
    for i in range(n_runs):
        obs_id = int(obs_id_start) + i
        sim = simulate_observation(
            pnts[i], source, livetime=livetime, deadc=deadc, tstart=starts[i], irf=irf,
            bkg_scale=bkg_scale, seed=run_seed(seed, i), obs_id=obs_id, _sampler=sampler,
        )
        extra = {
            "OBJECT": object_name,
            "RA_OBJ": obj_ra if np.isfinite(obj_ra) else 0.0,
            "DEC_OBJ": obj_dec if np.isfinite(obj_dec) else 0.0,
            "GLON_PNT": float(glon[i]),
            "GLAT_PNT": float(glat[i]),
            "ALT_PNT": float(alt[i]),
            "AZ_PNT": float(az[i]),
            "SIMSEED": int(seed),
            "SIMRUN": i,
        }
        fname = _file_name(obs_id)
        sizes = _write_run(data_dir / fname, sim, extra, tables)
        written.add(fname)
        for htype, hclass, hname in _HDU_LAYOUT + (_PSF_ROW if "psf" in sizes else ()):
            hdu_rows.append((obs_id, htype, hclass, "data", fname, hname, sizes[htype]))
        summary.append(
            {
                "OBS_ID": obs_id,
                "RA_PNT": sim.pointing[0],
                "DEC_PNT": sim.pointing[1],
                "GLON_PNT": float(glon[i]),
                "GLAT_PNT": float(glat[i]),
                "ZEN_PNT": float(zen[i]),
                "ALT_PNT": float(alt[i]),
                "AZ_PNT": float(az[i]),
                "OBJECT": object_name,
                "RA_OBJ": obj_ra,
                "DEC_OBJ": obj_dec,
                "ONTIME": sim.ontime,
                "LIVETIME": sim.livetime,
                "DEADC": sim.deadc,
                "TSTART": sim.tstart,
                "TSTOP": sim.tstop,
                "N_TELS": 4,
                "EVENT_COUNT": sim.n_events,
                "SAFE_ENERGY_LO": irf.lo_thres,
                "SAFE_ENERGY_HI": irf.hi_thres,
            }
        )
    for p in old_data:  # stale runs of an overwritten store
        if p.name not in written:
            p.unlink()
    _write_indexes(root, summary, hdu_rows)
    return root


# ------------------------------------------------------------------------------- CLI --


def main(argv=None) -> int:
    """Command-line entry point: ``python -m extspec.simulate OUTDIR --n-runs N --seed S``."""
    p = argparse.ArgumentParser(
        prog="python -m extspec.simulate",
        description="Simulate a GADF DL3 data store (wobble runs on an analytic-IRF source "
        "plus background) for tests and benchmarks.",
    )
    p.add_argument("outdir", help="store root to create")
    p.add_argument("--n-runs", type=int, default=4, help="number of runs (default 4)")
    p.add_argument("--seed", type=int, default=0, help="master random seed (default 0)")
    p.add_argument("--target", type=float, nargs=2, default=(347.3, -0.5), metavar=("LON", "LAT"),
                   help="source centre, deg (default 347.3 -0.5)")
    p.add_argument("--frame", choices=FRAMES, default="galactic", help="frame of --target")
    p.add_argument("--morphology", choices=_MORPHOLOGIES, default="disk")
    p.add_argument("--size", type=float, default=0.4, help="disk radius / gaussian sigma, deg")
    p.add_argument("--index", type=float, default=2.3, help="power-law index")
    p.add_argument("--amplitude", type=float, default=2e-11,
                   help="power-law amplitude at 1 TeV, cm-2 s-1 TeV-1")
    p.add_argument("--livetime", type=float, default=1800.0, help="live time per run, s")
    p.add_argument("--deadc", type=float, default=0.9)
    p.add_argument("--wobble-offset", type=float, default=0.7, help="deg")
    p.add_argument("--bkg-scale", type=float, default=1.0)
    p.add_argument("--psf-sigma", type=float, default=0.05, help="deg")
    p.add_argument("--obs-id-start", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    args = p.parse_args(argv)
    try:
        if args.n_runs < 1:
            raise ConfigError("--n-runs must be at least 1")
        source = SourceModel(
            args.target[0], args.target[1], frame=args.frame, morphology=args.morphology,
            size=args.size, spectrum="power_law",
            params={"index": args.index, "amplitude": args.amplitude},
        )
        ra, dec = source.center_icrs()
        pnts = wobble_pointings(ra, dec, args.n_runs, args.wobble_offset)
        t0 = _time.perf_counter()
        root = simulate_datastore(
            args.outdir, pnts, source, livetime=args.livetime, deadc=args.deadc,
            irf=IrfModel(psf_sigma=args.psf_sigma), bkg_scale=args.bkg_scale, seed=args.seed,
            obs_id_start=args.obs_id_start, overwrite=args.overwrite,
        )
        dt = _time.perf_counter() - t0
    except ExtspecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from ..io.fitsread import read_tables

    n_ev = int(np.sum(read_tables(root / "obs-index.fits.gz", {"OBS_INDEX"})["OBS_INDEX"].columns["EVENT_COUNT"]))
    print(f"wrote {args.n_runs} runs ({n_ev} events) to {root} in {dt:.2f} s "
          f"({1e3 * dt / args.n_runs:.1f} ms/run)")
    return 0
