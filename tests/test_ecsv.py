"""The ECSV writer: files astropy reads back with the same values, units, types and meta."""

import math

import numpy as np
from astropy.table import Table

from extspec.io.ecsv import ecsv_text


def test_roundtrip_with_astropy(tmp_path):
    rows = [
        {"obs_id": 20326, "livetime": 1500.0090973600734, "excess": 106.5, "is_ul": False, "note": "a b"},
        {"obs_id": 20327, "livetime": 2997.083039179447, "excess": float("nan"), "is_ul": True, "note": 'q"x'},
    ]
    units = {"obs_id": "", "livetime": "s", "excess": "", "is_ul": "", "note": ""}
    f = tmp_path / "t.ecsv"
    f.write_text(ecsv_text(rows, units, {"stacking": "float64", "excluded": {20349: "no OFF region"}}))
    t = Table.read(f, format="ascii.ecsv")
    assert t.colnames == list(units)
    assert t["obs_id"].dtype.kind == "i" and list(t["obs_id"]) == [20326, 20327]
    assert t["livetime"].unit == "s"
    assert t["livetime"][0] == 1500.0090973600734  # repr keeps every digit
    assert math.isnan(t["excess"][1]) and t["excess"][0] == 106.5
    assert t["is_ul"].dtype == bool and list(t["is_ul"]) == [False, True]
    assert list(t["note"]) == ["a b", 'q"x']
    assert t.meta["stacking"] == "float64" and t.meta["excluded"] == {20349: "no OFF region"}


def test_empty_table(tmp_path):
    f = tmp_path / "e.ecsv"
    f.write_text(ecsv_text([], {"e_ref": "TeV", "dnde": "cm-2 s-1 TeV-1"}))
    t = Table.read(f, format="ascii.ecsv")
    assert len(t) == 0 and t.colnames == ["e_ref", "dnde"] and t["e_ref"].unit == "TeV"
    assert np.dtype(t["dnde"].dtype) == np.float64
