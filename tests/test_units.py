"""extspec.io.units: the table of common spellings agrees with astropy.units, other units go
through astropy, and a unit that does not convert is a one-line ValueError."""

import pytest
from astropy import units as u

from extspec.io.units import _KNOWN, unit_factor


# the spellings astropy does not parse as written, and the unit they stand for
AS_WRITTEN = {"TEV": "TeV", "tev": "TeV", "GEV": "GeV", "gev": "GeV", "MEV": "MeV", "mev": "MeV", "KEV": "keV",
              "kev": "keV", "DEG": "deg", "degrees": "deg", "M2": "m2",
              "1/s/MeV/sr": "s-1 MeV-1 sr-1"}  # CTA 1DC; astropy reads it with format="ogip" only


@pytest.mark.parametrize("target", sorted(_KNOWN))
def test_known_spellings_equal_astropy(target):
    for spelling, factor in _KNOWN[target].items():
        expected = u.Unit(AS_WRITTEN.get(spelling, spelling)).to(target)
        assert factor == pytest.approx(expected, rel=1e-12), (target, spelling)
        assert unit_factor(spelling, target) == factor
        assert unit_factor(spelling.replace(" ", ""), target) == factor


def test_other_units_through_astropy():
    assert unit_factor("eV", "TeV") == pytest.approx(1e-12, rel=1e-12)
    assert unit_factor("km2", "m2") == pytest.approx(1e6, rel=1e-12)
    assert unit_factor("s-1 TeV-1 deg-2", "s-1 MeV-1 sr-1") == pytest.approx(
        (u.Unit("s-1 TeV-1 deg-2")).to("s-1 MeV-1 sr-1"), rel=1e-12)


def test_not_convertible_is_one_line():
    with pytest.raises(ValueError) as exc:
        unit_factor("s", "m2")
    assert "\n" not in str(exc.value) and "'s'" in str(exc.value)


def test_ogip_mode_takes_the_table_only_in_any_case():
    assert unit_factor("KeV", "TeV", astropy=False) == 1e-9
    assert unit_factor("CM2", "cm2", astropy=False) == 1.0 and unit_factor("m^2", "cm2", astropy=False) == 1e4
    with pytest.raises(ValueError, match=r"^'erg' is none of TeV, TEV"):
        unit_factor("erg", "TeV", astropy=False)
    with pytest.raises(ValueError, match=r"^'eV' is none of"):  # convertible, but not an OGIP spelling here
        unit_factor("eV", "TeV", astropy=False)
