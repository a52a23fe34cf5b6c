"""Reader of XSPEC table models (OGIP memo OGIP/92-009), as EBL absorption tables come.

A table model file holds three binary tables after the primary HDU:

``PARAMETERS``
    one row per interpolation parameter (NAME, NUMBVALS, VALUE = the grid of the parameter,
    METHOD 0 = linear interpolation); ``NINTPARM`` in the header.  EBL tables have exactly one,
    the redshift.
``ENERGIES``
    the energy bins, ENERG_LO / ENERG_HI (keV unless a TUNIT says otherwise, the XSPEC
    convention), contiguous and increasing.
``SPECTRA``
    one row per grid point: PARAMVAL (the parameter value) and INTPSPEC (the model value in
    each energy bin; for an EBL table the attenuation exp(-tau) of the bin).

:func:`read_xspec_table` reads such a file with one interpolation parameter into an
:class:`XspecTable` (energies in TeV, float64 values); every problem (a missing extension or
column, a grid that does not increase, a SPECTRA row count or length that disagrees with the
grids, values outside [0, 1] for an attenuation table) raises :class:`~extspec.errors.FormatError`
with one line naming the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .ogip import _col, _edges, _energy_col, _hdu, _kw, _read_tables

__all__ = ["XspecTable", "read_xspec_table"]

_EXTENSIONS = ("PARAMETERS", "ENERGIES", "SPECTRA")


@dataclass(frozen=True)
class XspecTable:
    """A one-parameter XSPEC table model.

    Attributes
    ----------
    path : str
        The file read.
    sha256 : str
        SHA-256 of the file's bytes (provenance).
    name : str
        ``MODLNAME`` of the primary header ('' if absent).
    param_name : str
        Name of the interpolation parameter (e.g. ``REDSHIFT``).
    param_values : numpy.ndarray
        The parameter grid (strictly increasing), shape (n_param,).
    energy_edges : numpy.ndarray
        Energy bin edges in TeV, shape (n_energy + 1,).
    values : numpy.ndarray
        Model value per grid point and energy bin, shape (n_param, n_energy), float64.
    """

    path: str
    sha256: str
    name: str
    param_name: str
    param_values: np.ndarray
    energy_edges: np.ndarray
    values: np.ndarray


def _strictly_increasing(a: np.ndarray) -> bool:
    return a.size >= 1 and bool(np.all(np.isfinite(a))) and bool(np.all(np.diff(a) > 0))


def read_xspec_table(path, attenuation: bool = True) -> XspecTable:
    """Read a one-parameter XSPEC table model.

    Parameters
    ----------
    path : str or Path
        The FITS file (gzipped or not).
    attenuation : bool
        The table is multiplicative (an attenuation such as exp(-tau)): its values must lie
        in [0, 1].

    Raises
    ------
    FormatError
        One line naming the file and what is wrong.
    """
    path = Path(path)
    tables = _read_tables(path, set(_EXTENSIONS))
    missing = [e for e in _EXTENSIONS if e not in tables]
    if missing:
        raise FormatError(f"{path}: not an XSPEC table model (OGIP/92-009): missing extension "
                          f"'{missing[0]}' (it needs {', '.join(_EXTENSIONS)})")
    par = _hdu(tables, "PARAMETERS", path)
    nint = int(_kw(par.header, "NINTPARM", path, "PARAMETERS", default=len(next(iter(par.columns.values()), []))))
    if nint != 1:
        raise FormatError(f"{path}: XSPEC table model with {nint} interpolation parameters; "
                          "an EBL table has exactly one (the redshift)")
    names = _col(par, "NAME", path, "PARAMETERS")
    if names.size < 1:
        raise FormatError(f"{path}: extension 'PARAMETERS' has no row")
    name = names.ravel()[0]
    name = (name.decode() if isinstance(name, bytes) else str(name)).strip()
    grid_col = _col(par, "VALUE", path, "PARAMETERS")
    try:
        grid = np.asarray(grid_col[0], dtype=np.float64).ravel()
    except (TypeError, ValueError, IndexError):
        raise FormatError(f"{path}: column 'VALUE' in extension 'PARAMETERS' is malformed") from None
    if not _strictly_increasing(grid):
        raise FormatError(f"{path}: the {name} grid (column 'VALUE' of 'PARAMETERS') does not increase strictly")

    ene = _hdu(tables, "ENERGIES", path)
    try:
        edges = _edges(_energy_col(ene, "ENERG_LO", path, "ENERGIES"),
                       _energy_col(ene, "ENERG_HI", path, "ENERGIES"), path, "ENERGIES")
    except FormatError as exc:
        raise FormatError(f"{exc} (ENERG_LO/ENERG_HI must increase)") from None
    if not (edges[0] > 0 and np.all(np.isfinite(edges))):
        raise FormatError(f"{path}: energies in 'ENERGIES' must be positive and finite")

    spec = _hdu(tables, "SPECTRA", path)
    pv = _col(spec, "PARAMVAL", path, "SPECTRA", np.float64).reshape(-1)
    raw = _col(spec, "INTPSPEC", path, "SPECTRA")
    try:
        values = np.array([np.asarray(r, dtype=np.float64).ravel() for r in raw]) if raw.dtype == object \
            else np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(f"{path}: column 'INTPSPEC' in extension 'SPECTRA' is malformed") from None
    n_e = edges.size - 1
    if values.ndim != 2 or values.shape != (grid.size, n_e) or pv.size != grid.size:
        raise FormatError(f"{path}: SPECTRA holds {pv.size} rows of {values.shape[-1] if values.ndim == 2 else '?'} "
                          f"values; the grids need {grid.size} rows ({name}) of {n_e} values (energy bins)")
    if not np.allclose(pv, grid, rtol=1e-6, atol=0):
        raise FormatError(f"{path}: PARAMVAL of 'SPECTRA' differs from the {name} grid of 'PARAMETERS'")
    if not np.all(np.isfinite(values)):
        raise FormatError(f"{path}: INTPSPEC of 'SPECTRA' holds non-finite values")
    if attenuation and (values.min() < 0 or values.max() > 1 + 1e-6):
        raise FormatError(f"{path}: INTPSPEC values must lie in [0, 1] for an attenuation table "
                          f"(found {values.min():.3g} .. {values.max():.3g})")
    primary = _primary_header(path)
    return XspecTable(path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                      name=str(primary.get("MODLNAME", "") or "").strip(), param_name=name,
                      param_values=grid, energy_edges=edges, values=np.clip(values, 0.0, 1.0) if attenuation
                      else values)


def _primary_header(path: Path) -> dict:
    """The primary header's cards (the table reader skips the primary HDU)."""
    import gzip

    from .fitsread import _parse_header

    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return _parse_header(memoryview(raw), 0)[0]
    except Exception:  # noqa: BLE001 -- the tables were read; a header oddity only loses the name
        return {}
