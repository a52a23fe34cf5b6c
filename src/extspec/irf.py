"""Instrument response functions: GADF table axes and their evaluation.

Implements ``reduction-spec.md`` §1.3-§1.4:

* an axis is a *node* axis when ``LO == HI`` element-wise (nodes are the values, edges the
  midpoints, extrapolated by half a spacing at both ends; in log space for energy), otherwise
  an *edge* axis with edges ``append(LO, HI[-1])``;
* grid nodes are log-centres for energy axes, midpoints for linear edge axes and the nodes
  of node axes;
* evaluation is multilinear in (ln E, theta[, mu]) on those nodes, extrapolating the edge
  cell linearly, and is 0 when any coordinate lies outside its axis edges; negative or
  non-finite results become 0.

All arrays are float64 (the FITS tables are float32 and are cast on load).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["IrfAxis", "Aeff2D", "EDisp2D", "Bkg3D", "Bkg2D", "PsfTable", "Psf3Gauss", "PsfKing",
           "RadMax2D", "make_axis", "interp_weights",
           "single_bin_as_nodes", "POINT_LIKE", "FULL_ENCLOSURE"]

POINT_LIKE = "point-like"
FULL_ENCLOSURE = "full-enclosure"
"""IRF classes (GADF ``HDUCLAS3``): point-like IRFs describe only the events within RAD_MAX of a
point source; full-enclosure IRFs all events."""


@dataclass(frozen=True)
class IrfAxis:
    """One axis of an IRF table.

    Attributes
    ----------
    name : str
        Column stem (``ENERG``, ``THETA``, ``MIGRA``, ``DETX`` ...).
    edges : ndarray
        Bin edges (TeV for energy, deg for offsets, dimensionless for migration).
    nodes : ndarray
        Interpolation nodes (log-centres, midpoints or the node values).
    log : bool
        True for energy axes (interpolate in ln E).
    single_bin : bool
        The file gave one bin only (e.g. one THETA bin of a point-like IRF): the IRF holds, as
        a constant, for every value inside that bin and nowhere else (see
        :func:`single_bin_as_nodes`).
    """

    name: str
    edges: np.ndarray
    nodes: np.ndarray
    log: bool
    single_bin: bool = False

    @property
    def scaled_nodes(self) -> np.ndarray:
        return np.log(self.nodes) if self.log else self.nodes

    def scale(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x) if self.log else np.asarray(x, dtype=float)

    def inside(self, x: np.ndarray) -> np.ndarray:
        """True where ``x`` lies within the axis edges (inclusive)."""
        return (x >= self.edges[0]) & (x <= self.edges[-1])

    @property
    def bin_widths(self) -> np.ndarray:
        return np.diff(self.edges)


def make_axis(name: str, lo: np.ndarray, hi: np.ndarray, log: bool) -> IrfAxis:
    """Build an :class:`IrfAxis` from the ``*_LO``/``*_HI`` columns (§1.3)."""
    lo = np.asarray(lo, dtype=np.float64).ravel()
    hi = np.asarray(hi, dtype=np.float64).ravel()
    if lo.shape != hi.shape or lo.size == 0:
        raise ValueError(f"axis {name}: LO and HI columns differ in length or are empty")
    if np.all(lo == hi):
        nodes = lo
        if nodes.size < 2:
            raise ValueError(f"axis {name}: a node axis needs at least two nodes")
        x = np.log(nodes) if log else nodes
        mid = 0.5 * (x[1:] + x[:-1])
        e = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
        edges = np.exp(e) if log else e
    else:
        edges = np.append(lo, hi[-1])
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"axis {name}: edges are not strictly increasing")
        nodes = np.sqrt(edges[:-1] * edges[1:]) if log else 0.5 * (edges[:-1] + edges[1:])
    return IrfAxis(name=name, edges=edges, nodes=nodes, log=log)


def single_bin_as_nodes(axis: IrfAxis, data: np.ndarray, dim: int) -> tuple[IrfAxis, np.ndarray]:
    """A one-bin axis as two nodes at its edges with the data repeated along ``dim``.

    Linear interpolation between two equal values is the constant of the bin; outside the
    bin edges the IRF is 0 as for any axis.  Axes with more bins are returned unchanged.
    """
    if axis.nodes.size != 1:
        return axis, data
    widened = IrfAxis(axis.name, axis.edges, axis.edges.copy(), axis.log, single_bin=True)
    return widened, np.repeat(data, 2, axis=dim)


def interp_weights(axis: IrfAxis, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights of linear interpolation along one axis.

    Returns ``(i0, w0, w1)`` such that ``f(x) = w0 * f[i0] + w1 * f[i0 + 1]``.  Outside the
    outermost nodes the edge cell is extrapolated linearly.  Points outside the axis edges
    get weights 0 (the IRF value is 0 there).
    """
    x = np.asarray(x, dtype=np.float64)
    s = axis.scale(x)
    n = axis.scaled_nodes
    i0 = np.clip(np.searchsorted(n, s, side="right") - 1, 0, n.size - 2)
    t = (s - n[i0]) / (n[i0 + 1] - n[i0])
    ok = axis.inside(x) & np.isfinite(s)
    t = np.where(ok, t, 0.0)
    w1 = np.where(ok, t, 0.0)
    w0 = np.where(ok, 1.0 - t, 0.0)
    return i0, w0, w1


def _clean(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``values`` with non-finite entries set to 0 and negative ones clipped to 0 (into
    ``out``, which may be ``values`` itself, a float64 array)."""
    if out is None:
        values = np.where(np.isfinite(values), values, 0.0)
        return np.clip(values, 0.0, None)
    bad = ~np.isfinite(values)
    if bad.any():
        np.copyto(out, np.where(bad, 0.0, values))
    elif out is not values:
        np.copyto(out, values)
    return np.clip(out, 0.0, None, out=out)


@dataclass(frozen=True)
class Aeff2D:
    """Effective area ``A[e, theta]`` in m^2 (§1.3, AEFF_2D)."""

    energy: IrfAxis
    offset: IrfAxis
    data: np.ndarray  # (n_energy, n_offset) m^2
    lo_thres: float | None = None
    hi_thres: float | None = None

    def evaluate(self, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """A_eff at broadcastable arrays ``energy`` (TeV) and ``offset`` (deg), in m^2."""
        energy, offset = np.broadcast_arrays(np.asarray(energy, float), np.asarray(offset, float))
        ie, we0, we1 = interp_weights(self.energy, energy)
        it, wt0, wt1 = interp_weights(self.offset, offset)
        d = self.data
        val = (
            we0 * (wt0 * d[ie, it] + wt1 * d[ie, it + 1])
            + we1 * (wt0 * d[ie + 1, it] + wt1 * d[ie + 1, it + 1])
        )
        return _clean(val)

    def evaluate_grid(self, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """A_eff on the outer product of 1D ``energy`` and any-shape ``offset``.

        Returns an array of shape ``energy.shape + offset.shape``; faster than
        :meth:`evaluate` because the energy interpolation is done once per energy.
        """
        energy = np.asarray(energy, float).ravel()
        offset = np.asarray(offset, float)
        ie, we0, we1 = interp_weights(self.energy, energy)
        a_e = we0[:, None] * self.data[ie] + we1[:, None] * self.data[ie + 1]  # (nE, ntheta)
        it, wt0, wt1 = interp_weights(self.offset, offset.ravel())
        val = a_e[:, it] * wt0 + a_e[:, it + 1] * wt1
        return _clean(val).reshape(energy.shape + offset.shape)


@dataclass(frozen=True)
class RadMax2D:
    """Directional cut ``RAD_MAX[e_reco, theta]`` in deg of point-like IRFs (GADF RAD_MAX_2D).

    A fixed cut (the ``RAD_MAX`` header keyword) is a table with one value: :meth:`fixed`.
    """

    energy: IrfAxis
    offset: IrfAxis
    data: np.ndarray  # (n_energy, n_offset) deg
    is_fixed: bool = False

    @classmethod
    def fixed(cls, rad_max: float) -> "RadMax2D":
        """A RAD_MAX that does not depend on energy or offset (header keyword ``RAD_MAX``)."""
        e = IrfAxis("ENERG", np.array([1e-12, 1e12]), np.array([1e-12, 1e12]), True)
        t = IrfAxis("THETA", np.array([0.0, 180.0]), np.array([0.0, 180.0]), False)
        return cls(e, t, np.full((2, 2), float(rad_max)), is_fixed=True)

    def evaluate(self, energy: np.ndarray, offset: float) -> np.ndarray:
        """RAD_MAX (deg) at reco energies ``energy`` (TeV) and one ``offset`` (deg); bilinear
        in (ln E, theta) on the table nodes like the other IRFs, 0 outside the table."""
        energy = np.asarray(energy, float)
        ie, we0, we1 = interp_weights(self.energy, energy)
        it, wt0, wt1 = interp_weights(self.offset, np.full(energy.shape, float(offset)))
        d = self.data
        val = (we0 * (wt0 * d[ie, it] + wt1 * d[ie, it + 1])
               + we1 * (wt0 * d[ie + 1, it] + wt1 * d[ie + 1, it + 1]))
        return _clean(val)


@dataclass(frozen=True)
class EDisp2D:
    """Energy-dispersion density ``M[e_true, mu, theta]`` per unit migration (§1.3)."""

    energy: IrfAxis
    migra: IrfAxis
    offset: IrfAxis
    data: np.ndarray  # (n_energy, n_migra, n_offset)

    def density_at_nodes(self, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Density at the IRF's own migration nodes (§4.2).

        Parameters
        ----------
        energy : (nE,) true energies in TeV
        offset : (nT,) offsets in deg

        Returns
        -------
        ndarray of shape (nT, nE, n_migra)
        """
        energy = np.asarray(energy, float).ravel()
        offset = np.asarray(offset, float).ravel()
        it, wt0, wt1 = interp_weights(self.offset, offset)
        de = self._at_energies(energy, np.unique(np.concatenate([it, it + 1])).tolist())
        # de[i] * wt0 + de[i + 1] * wt1, then _clean: the same operations, offset by offset
        # into one array (no gathered copies of the table; 12 x 120 x 160 values a run)
        first = de[int(it[0])] if offset.size else np.zeros((energy.size, self.migra.nodes.size))
        dtype = np.result_type(first.dtype, wt0.dtype)
        val = np.empty((offset.size,) + first.shape, dtype)
        tmp = np.empty(first.shape, dtype)
        for p in range(offset.size):
            i = int(it[p])
            np.multiply(de[i], wt0[p], out=val[p])
            np.multiply(de[i + 1], wt1[p], out=tmp)
            np.add(val[p], tmp, out=val[p])
        return _clean(val, out=val)

    def _at_energies(self, energy: np.ndarray, nodes) -> dict:
        """The table interpolated in true energy on the offset nodes ``nodes`` (indices), as
        {node: (nE, n_migra)}; kept for the last few energy arrays (a run's ON regions all
        sample the same energies), each offset node made when first asked for."""
        cache = self.__dict__.get("_at_energies_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_at_energies_cache", cache)
        key = energy.tobytes()
        entry = cache.get(key)
        if entry is None:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)), None)
            entry = cache[key] = (interp_weights(self.energy, energy), {})
        (ie, we0, we1), rows = entry
        for i in nodes:
            if i not in rows:  # data[e, mu, theta] at one theta node: the rows ie and ie + 1
                d = self.data[:, :, i]
                rows[i] = d[ie] * we0[:, None] + d[ie + 1] * we1[:, None]
        return rows

    def evaluate(self, energy, migra, offset) -> np.ndarray:
        """Trilinear evaluation at broadcastable (E_true [TeV], mu, theta [deg])."""
        energy, migra, offset = np.broadcast_arrays(
            np.asarray(energy, float), np.asarray(migra, float), np.asarray(offset, float)
        )
        ie, we0, we1 = interp_weights(self.energy, energy)
        im, wm0, wm1 = interp_weights(self.migra, migra)
        it, wt0, wt1 = interp_weights(self.offset, offset)
        d = self.data
        val = np.zeros(energy.shape)
        for a, wa in ((0, we0), (1, we1)):
            for b, wb in ((0, wm0), (1, wm1)):
                for c, wc in ((0, wt0), (1, wt1)):
                    val = val + wa * wb * wc * d[ie + a, im + b, it + c]
        return _clean(val)


@dataclass(frozen=True)
class Bkg3D:
    """Background rate ``B[e_reco, lat, lon]`` in s^-1 MeV^-1 sr^-1 in field-of-view coordinates."""

    energy: IrfAxis
    fov_lon: IrfAxis
    fov_lat: IrfAxis
    data: np.ndarray  # (n_energy, n_lat, n_lon)
    unit: str = "s-1 MeV-1 sr-1"
    fovalign: str = "RADEC"

    def evaluate(self, energy, fov_lon, fov_lat) -> np.ndarray:
        """Rate at ``energy`` (TeV, shape (n,)) and FoV positions (deg, any equal shapes).

        Multilinear in (ln E, lon, lat) between the table's nodes, 0 outside its edges.
        Returns shape ``(n, *fov_lon.shape)``, in :attr:`unit`.
        """
        lon = np.asarray(fov_lon, dtype=np.float64)
        shape = lon.shape
        ix, wx0, wx1 = interp_weights(self.fov_lon, lon.ravel())
        iy, wy0, wy1 = interp_weights(self.fov_lat, np.asarray(fov_lat, dtype=np.float64).ravel())
        d = self.data
        spatial = (d[:, iy, ix] * (wy0 * wx0) + d[:, iy, ix + 1] * (wy0 * wx1)
                   + d[:, iy + 1, ix] * (wy1 * wx0) + d[:, iy + 1, ix + 1] * (wy1 * wx1))
        return _along_energy(self.energy, spatial, energy, shape)

    def support(self, fov_lon, fov_lat) -> np.ndarray:
        """Whether the table predicts events at some energy at these FoV positions (bool, the
        shape of ``fov_lon``): the energy-summed table, interpolated like :meth:`evaluate`."""
        lon = np.asarray(fov_lon, dtype=np.float64)
        ix, wx0, wx1 = interp_weights(self.fov_lon, lon.ravel())
        iy, wy0, wy1 = interp_weights(self.fov_lat, np.asarray(fov_lat, dtype=np.float64).ravel())
        d = self._clean_data.sum(axis=0)
        v = (d[iy, ix] * (wy0 * wx0) + d[iy, ix + 1] * (wy0 * wx1)
             + d[iy + 1, ix] * (wy1 * wx0) + d[iy + 1, ix + 1] * (wy1 * wx1))
        return (v > 0).reshape(lon.shape)

    def evaluate_sum(self, energy, fov_lon, fov_lat, weights) -> np.ndarray:
        """``sum_i weights_i * evaluate(energy, fov_lon_i, fov_lat_i)``, shape (n,), without
        evaluating every position: the bilinear weights of the positions are gathered on the
        table's nodes first (the interpolation is linear in the table).  Equal to the sum of
        :meth:`evaluate` where no interpolated rate is negative (the table is cleaned first;
        only a linear extrapolation beyond the outermost nodes could go below 0 per position)."""
        lon = np.asarray(fov_lon, dtype=np.float64).ravel()
        w = np.asarray(weights, dtype=np.float64).ravel()
        ix, wx0, wx1 = interp_weights(self.fov_lon, lon)
        iy, wy0, wy1 = interp_weights(self.fov_lat, np.asarray(fov_lat, dtype=np.float64).ravel())
        ne, ny, nx = self.data.shape
        node_w = np.zeros(ny * nx)
        for dy, wy in ((0, wy0), (1, wy1)):
            for dx, wx in ((0, wx0), (1, wx1)):
                node_w += np.bincount((iy + dy) * nx + ix + dx, w * wy * wx, minlength=ny * nx)
        spatial = self._clean_data.reshape(ne, ny * nx) @ node_w
        return _along_energy(self.energy, spatial[:, None], energy, (1,))[:, 0]

    def per_tev(self) -> float:
        """Factor from :attr:`unit` to s^-1 TeV^-1 sr^-1 (the table's energy unit: MeV, GeV or TeV)."""
        return _per_tev(self.unit)

    @cached_property
    def _clean_data(self) -> np.ndarray:
        """The table with non-finite and negative entries set to 0 (computed once)."""
        return _clean(self.data)

    def rate_vs_energy(self) -> np.ndarray:
        """Rate integrated over the field of view, per reco-energy node (s^-1 MeV^-1)."""
        dlon = np.deg2rad(self.fov_lon.bin_widths)
        dlat = np.deg2rad(self.fov_lat.bin_widths)
        return np.einsum("eyx,y,x->e", self.data, dlat, dlon)


def _along_energy(axis: IrfAxis, table: np.ndarray, energy, shape) -> np.ndarray:
    """A background rate tabulated at ``axis`` nodes (rows of ``table``, one column per FoV
    position) at ``energy`` (TeV, (n,)): linear in ln E, cleaned, shape (n, *shape)."""
    ie, we0, we1 = interp_weights(axis, np.asarray(energy, dtype=np.float64).ravel())
    rate = we0[:, None] * table[ie] + we1[:, None] * table[ie + 1]
    return _clean(rate).reshape((-1,) + shape)


def _per_tev(unit: str) -> float:
    """Factor from a background-rate unit to s^-1 TeV^-1 sr^-1 (its energy unit: MeV, GeV or TeV)."""
    u = unit.replace(" ", "")
    for name, factor in (("MeV-1", 1e6), ("GeV-1", 1e3), ("TeV-1", 1.0), ("keV-1", 1e9)):
        if name in u:
            return factor
    return 1e6  # GADF's documented unit, s^-1 MeV^-1 sr^-1


@dataclass(frozen=True)
class Bkg2D:
    """Radially symmetric background rate ``B[e_reco, offset]`` in s^-1 MeV^-1 sr^-1 (GADF BKG_2D).

    The offset-only background the VERITAS and LST releases ship: the rate depends on the
    distance from the pointing alone, so it is the same in any field-of-view alignment
    (:attr:`fovalign` is ``RADEC`` for :func:`extspec.cube.make_background`).
    """

    energy: IrfAxis
    offset: IrfAxis
    data: np.ndarray  # (n_energy, n_offset)
    unit: str = "s-1 MeV-1 sr-1"
    fovalign = "RADEC"  # radially symmetric: any alignment gives the same rate

    def evaluate(self, energy, fov_lon, fov_lat) -> np.ndarray:
        """Rate at ``energy`` (TeV, shape (n,)) and FoV positions (deg, any equal shapes).

        Linear in offset = hypot(lon, lat) and in ln E between the table's nodes, 0 outside
        its edges.  Returns shape ``(n, *fov_lon.shape)``, in :attr:`unit`.
        """
        lon = np.asarray(fov_lon, dtype=np.float64)
        shape = lon.shape
        r = np.hypot(lon, np.asarray(fov_lat, dtype=np.float64)).ravel()
        it, wt0, wt1 = interp_weights(self.offset, r)
        radial = self.data[:, it] * wt0 + self.data[:, it + 1] * wt1  # (n_energy_nodes, n_pos)
        return _along_energy(self.energy, radial, energy, shape)

    def support(self, fov_lon, fov_lat) -> np.ndarray:
        """Whether the table predicts events at some energy at these FoV positions (bool)."""
        lon = np.asarray(fov_lon, dtype=np.float64)
        r = np.hypot(lon, np.asarray(fov_lat, dtype=np.float64)).ravel()
        it, wt0, wt1 = interp_weights(self.offset, r)
        d = self._clean_data.sum(axis=0)
        return (d[it] * wt0 + d[it + 1] * wt1 > 0).reshape(lon.shape)

    def evaluate_sum(self, energy, fov_lon, fov_lat, weights) -> np.ndarray:
        """``sum_i weights_i * evaluate(energy, fov_lon_i, fov_lat_i)``, shape (n,), the linear
        offset weights gathered on the table's nodes first (as :meth:`Bkg3D.evaluate_sum`)."""
        r = np.hypot(np.asarray(fov_lon, dtype=np.float64), np.asarray(fov_lat, dtype=np.float64)).ravel()
        w = np.asarray(weights, dtype=np.float64).ravel()
        it, wt0, wt1 = interp_weights(self.offset, r)
        n = self.data.shape[1]
        node_w = np.bincount(it, w * wt0, minlength=n) + np.bincount(it + 1, w * wt1, minlength=n)
        spatial = self._clean_data @ node_w
        return _along_energy(self.energy, spatial[:, None], energy, (1,))[:, 0]

    def per_tev(self) -> float:
        """Factor from :attr:`unit` to s^-1 TeV^-1 sr^-1."""
        return _per_tev(self.unit)

    @cached_property
    def _clean_data(self) -> np.ndarray:
        """The table with non-finite and negative entries set to 0 (computed once)."""
        return _clean(self.data)

    def rate_vs_energy(self) -> np.ndarray:
        """Rate integrated over the field of view (rings of the offset axis), per reco-energy
        node (s^-1 MeV^-1)."""
        edges = np.deg2rad(self.offset.edges)
        ring = np.pi * np.diff(edges**2)  # small-angle solid angle of each offset bin
        if self.offset.single_bin:  # two nodes at the edges of one bin
            ring = np.full(2, 0.5 * np.pi * (edges[-1] ** 2 - edges[0] ** 2))
        return self.data @ ring


def _ring_areas(edges_deg: np.ndarray) -> np.ndarray:
    """Small-angle solid angle (deg^2) of the rings between consecutive radii."""
    return np.pi * np.diff(np.asarray(edges_deg, float) ** 2)


class _RadialPsf:
    """What every PSF format gives the containment code (:mod:`extspec.containment`).

    :meth:`density` is the radial PSF ``dP/dOmega`` in deg^-2 at true energies (TeV, (nE,)),
    one offset (deg) and radii (deg, (nr,)), shape (nE, nr), normalised to 1 over the plane
    (small angles: ``sum density * 2 pi r dr = 1``); 0 where the IRF does not cover the
    energy or offset.  :meth:`containment_radius` the radius holding ``fraction`` of it.
    """

    def density(self, energy, offset: float, rad) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def containment_radius(self, energy, offset: float, fraction: float, r_max: float = 3.0) -> np.ndarray:
        """Radius (deg) holding ``fraction`` of the PSF (of its total within ``r_max``) at each of
        ``energy`` (nE,), one offset; 0 where the PSF does not cover the energy or offset
        (integration on a 0.001 deg grid)."""
        return self.containment_radii(energy, offset, (fraction,), r_max)[0]

    def containment_radii(self, energy, offset: float, fractions, r_max: float = 3.0) -> list:
        """:meth:`containment_radius` for each of ``fractions`` (one integration of the PSF)."""
        edges = np.linspace(0.0, r_max, int(round(r_max / 0.001)) + 1)
        mid = 0.5 * (edges[1:] + edges[:-1])
        cum = np.cumsum(self.density(energy, offset, mid) * _ring_areas(edges), axis=1)  # (nE, nr)
        total = cum[:, -1:]
        out = []
        for fraction in fractions:
            level = fraction * np.minimum(total, 1.0)  # of the PSF's own total (a table sums to ~1)
            idx = np.argmax(cum >= level, axis=1)
            out.append(np.where(total[:, 0] > 0, edges[idx + 1], 0.0))
        return out


def _bilinear(energy_axis: IrfAxis, offset_axis: IrfAxis, table: np.ndarray, energy, offset: float) -> np.ndarray:
    """``table[e, theta, ...]`` at energies (nE,) and one offset: bilinear in (ln E, theta) on the
    table nodes, 0 outside the axes (the IRF rule of :func:`interp_weights`)."""
    energy = np.asarray(energy, float).ravel()
    ie, we0, we1 = interp_weights(energy_axis, energy)
    it, wt0, wt1 = interp_weights(offset_axis, np.full(energy.shape, float(offset)))
    extra = (slice(None),) + (None,) * (table.ndim - 2)
    return (we0[extra] * (wt0[extra] * table[ie, it] + wt1[extra] * table[ie, it + 1])
            + we1[extra] * (wt0[extra] * table[ie + 1, it] + wt1[extra] * table[ie + 1, it + 1]))


@dataclass(frozen=True)
class PsfTable(_RadialPsf):
    """Radial PSF table ``P[e_true, theta, rad]`` in sr^-1 (GADF PSF_TABLE).

    :meth:`density` interpolates the table bilinearly in (ln E, theta) on its nodes and takes
    each rad bin's value as the density throughout the bin (the table's own meaning: its
    cumulative sum is the containment; 0 beyond the last rad edge), normalised to 1 over the
    table's rad range (the files' sums are within a few per mille of 1).
    """

    energy: IrfAxis
    offset: IrfAxis
    rad: IrfAxis
    data: np.ndarray  # (n_energy, n_offset, n_rad) sr^-1
    unit: str = "sr-1"

    def containment(self, energy_index: int, offset_index: int) -> np.ndarray:
        """Cumulative containment fraction at the rad edges for one (energy, offset) node."""
        r_lo = np.deg2rad(self.rad.edges[:-1])
        r_hi = np.deg2rad(self.rad.edges[1:])
        ring = np.pi * (r_hi**2 - r_lo**2)  # small-angle solid angle of each ring
        return np.concatenate([[0.0], np.cumsum(self.data[energy_index, offset_index] * ring)])

    def density(self, energy, offset: float, rad) -> np.ndarray:
        rad = np.asarray(rad, float).ravel()
        prof = self._profile(np.asarray(energy, float).ravel(), float(offset))
        edges = self.rad.edges
        ir = np.clip(np.searchsorted(edges, rad, side="right") - 1, 0, edges.size - 2)
        return np.where((rad >= edges[0]) & (rad < edges[-1]), prof[:, ir], 0.0)

    def _profile(self, energy: np.ndarray, offset: float) -> np.ndarray:
        """The normalised radial profile (nE, n_rad) in deg^-2 at ``energy`` and ``offset``, kept
        for the last few (the containment code asks for the same one several times)."""
        cache = self.__dict__.get("_profile_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_profile_cache", cache)
        key = (energy.tobytes(), offset)
        prof = cache.get(key)
        if prof is None:
            prof = _clean(_bilinear(self.energy, self.offset, self.data, energy, offset))  # (nE, n_rad) sr^-1
            norm = prof @ _ring_areas(self.rad.edges)  # deg^2 sr^-1
            with np.errstate(divide="ignore", invalid="ignore"):
                prof = np.where(norm[:, None] > 0, prof / norm[:, None], 0.0)  # deg^-2, sums to 1
            prof.setflags(write=False)
            if len(cache) >= 4:
                cache.pop(next(iter(cache)), None)
            cache[key] = prof
        return prof


@dataclass(frozen=True)
class Psf3Gauss(_RadialPsf):
    """Triple-Gaussian PSF (GADF PSF_3GAUSS): ``dP/dOmega = S/pi [exp(-r^2/2 s1^2)
    + A2 exp(-r^2/2 s2^2) + A3 exp(-r^2/2 s3^2)]``.

    ``params`` holds (SCALE, SIGMA_1, AMPL_2, SIGMA_2, AMPL_3, SIGMA_3) on the last axis,
    sigmas in deg.  The parameters are interpolated bilinearly in (ln E, theta); the density
    is normalised by its analytic integral ``2 S (s1^2 + A2 s2^2 + A3 s3^2)`` (so a SCALE
    that does not make it 1 changes nothing); a Gaussian of zero width or amplitude drops out.
    """

    energy: IrfAxis
    offset: IrfAxis
    params: np.ndarray  # (n_energy, n_offset, 6)

    def density(self, energy, offset: float, rad) -> np.ndarray:
        rad = np.asarray(rad, float).ravel()
        p = _bilinear(self.energy, self.offset, self.params, energy, offset)  # (nE, 6)
        amps = np.stack([np.ones(p.shape[0]), p[:, 2], p[:, 4]], axis=1)
        sig = np.stack([p[:, 1], p[:, 3], p[:, 5]], axis=1)
        amps = np.where((sig > 0) & np.isfinite(sig) & np.isfinite(amps), amps, 0.0)
        sig = np.where(amps != 0, sig, 1.0)
        norm = 2.0 * np.pi * np.sum(amps * sig**2, axis=1)  # integral of sum A_i exp(-r^2/2s_i^2)
        shape = np.einsum("ek,ekr->er", amps, np.exp(-0.5 * (rad[None, None, :] / sig[:, :, None]) ** 2))
        covered = np.abs(p[:, 0]) > 0  # SCALE 0 (or outside the axes): no PSF there
        with np.errstate(divide="ignore", invalid="ignore"):
            return _clean(np.where((covered & (norm > 0))[:, None], shape / norm[:, None], 0.0))


@dataclass(frozen=True)
class PsfKing(_RadialPsf):
    """King-function PSF (GADF PSF_KING): ``dP/dOmega = 1/(2 pi s^2) (1 - 1/g) (1 + r^2/(2 g s^2))^-g``.

    ``params`` holds (GAMMA, SIGMA) on the last axis (SIGMA in deg), interpolated bilinearly in
    (ln E, theta); the profile integrates to 1 on the plane for g > 1 (0 elsewhere).
    """

    energy: IrfAxis
    offset: IrfAxis
    params: np.ndarray  # (n_energy, n_offset, 2)

    def density(self, energy, offset: float, rad) -> np.ndarray:
        rad = np.asarray(rad, float).ravel()
        p = _bilinear(self.energy, self.offset, self.params, energy, offset)
        g, s = p[:, 0:1], p[:, 1:2]
        ok = (g > 1) & (s > 0)
        g, s = np.where(ok, g, 2.0), np.where(ok, s, 1.0)
        val = (1.0 - 1.0 / g) / (2 * np.pi * s**2) * (1.0 + rad[None, :] ** 2 / (2 * g * s**2)) ** (-g)
        return _clean(np.where(ok, val, 0.0))
