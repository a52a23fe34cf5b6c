"""Unit conversion of the values in DL3 and OGIP files: the one place both readers use.

The spellings met in published files are converted from a table, without importing
astropy (a per-observation job stays light); any other unit of a DL3 file goes through
:mod:`astropy.units`, which raises for a unit that is not convertible.  The OGIP reader
takes the table only (the energy and area units of the OGIP memos, in any letter case).
"""

from __future__ import annotations

__all__ = ["unit_factor"]

_KNOWN = {
    "TeV": {"TeV": 1.0, "TEV": 1.0, "tev": 1.0, "GeV": 1e-3, "GEV": 1e-3, "gev": 1e-3, "MeV": 1e-6, "MEV": 1e-6,
            "mev": 1e-6, "keV": 1e-9, "KEV": 1e-9, "kev": 1e-9},
    "deg": {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "DEG": 1.0},
    "m2": {"m2": 1.0, "m**2": 1.0, "m^2": 1.0, "M2": 1.0, "cm2": 1e-4, "cm**2": 1e-4, "cm^2": 1e-4},
    "cm2": {"cm2": 1.0, "cm**2": 1.0, "cm^2": 1.0, "m2": 1e4, "m**2": 1e4, "m^2": 1e4, "M2": 1e4},
    "s-1 MeV-1 sr-1": {"s-1 MeV-1 sr-1": 1.0, "1 / (MeV s sr)": 1.0, "1/(s MeV sr)": 1.0, "MeV-1 s-1 sr-1": 1.0,
                       "1/s/MeV/sr": 1.0, "s^-1 MeV^-1 sr^-1": 1.0},
}
"""Factor to the target unit (outer key) of the spellings met in files, which need no astropy."""

_LOOKUP = {target: {k.replace(" ", ""): v for k, v in table.items()} for target, table in _KNOWN.items()}
""":data:`_KNOWN` keyed without spaces (``1/(MeV s sr)`` and ``1 / (MeV s sr)`` alike)."""

_LOOKUP_ANY_CASE = {target: {k.lower(): v for k, v in table.items()} for target, table in _LOOKUP.items()}
""":data:`_LOOKUP` keyed in lower case (``unit_factor(..., astropy=False)``)."""


def unit_factor(unit: str, target: str, astropy: bool = True) -> float:
    """The factor taking values in ``unit`` (as written in a file) to ``target``.

    ``astropy=False`` (the OGIP reader): only the spellings of :data:`_KNOWN`, in any letter
    case, are accepted.  Raises ValueError (one line) when ``unit`` is not a unit convertible
    to ``target``.
    """
    key = unit.replace(" ", "")
    known = _LOOKUP.get(target, {}).get(key)
    if known is not None:
        return known
    if not astropy:
        known = _LOOKUP_ANY_CASE.get(target, {}).get(key.lower())
        if known is None:
            raise ValueError(f"'{unit}' is none of {', '.join(_KNOWN.get(target, {}))}")
        return known
    from astropy import units as u

    try:
        return float(u.Unit(unit).to(target))
    except (ValueError, TypeError, u.UnitsError) as exc:
        try:  # the OGIP grammar takes chains of divisions (1/s/MeV/sr), the generic one does not
            return float(u.Unit(unit, format="ogip").to(target))
        except (ValueError, TypeError, u.UnitsError):
            raise ValueError(str(exc).splitlines()[0]) from None
