"""Safe energy range (reduction-spec §7)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from extspec.errors import ConfigError
from extspec.safe_mask import aeff_max_threshold, bins_inside, edisp_bias_threshold, make_safe_mask
from extspec.workflow.settings import safe_mask_settings

SEED_IDS = (20326, 20327, 20349, 20350, 20396, 20397)
SAFE = {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10}
TABLE_7 = {
    20326: ("0.2344229", "28149.060", "0.1522722"),
    20327: ("0.2041738", "27374.765", "0.1480552"),
    20349: ("0.2041738", "27390.669", "0.1479664"),
    20350: ("0.2344229", "28102.821", "0.1519565"),
    20396: ("0.2041738", "27303.452", "0.1484621"),
    20397: ("0.2344229", "28519.636", "0.1531339"),
}


def _mask(spec, block, bkg=None):
    """make_safe_mask with the settings of a ``safe_mask`` config block (schema defaults for the rest)."""
    return make_safe_mask(spec, safe_mask_settings({"safe_mask": block}), bkg)


@pytest.mark.parametrize("obs_id", SEED_IDS)
def test_aeff_max_table(seed_reference, assert_printed, obs_id):
    spec = seed_reference[SEED_IDS.index(obs_id)]
    lo_thres, a_thr, e_min = TABLE_7[obs_id]
    assert_printed(spec.meta["lo_thres"], lo_thres, "LO_THRES")
    assert spec.meta["hi_thres"] == 100.0
    got_e, got_thr = aeff_max_threshold(spec.exposure, spec.livetime, spec.energy_true, 10)
    assert_printed(got_thr, a_thr, "A_thr")
    assert_printed(got_e, e_min, "aeff-max E_min")
    np.testing.assert_allclose(got_thr, 0.1 * spec.exposure.max() / spec.livetime, rtol=1e-15)


def test_all_bins_safe(seed_reference):
    for spec in seed_reference:
        assert spec.mask_safe.dtype == bool and spec.mask_safe.shape == (10,)
        assert spec.mask_safe.all(), spec.obs_id


def _low_axis(spec):
    """The same spectrum with reco edges from 0.1 TeV (0.1, 0.182, 0.331, ...): the bins below
    the thresholds of the seed runs exist, so a mask that keeps everything would be caught."""
    from extspec.geometry import make_energy_axis

    return dataclasses.replace(spec, energy_reco=make_energy_axis(0.1, 40, 10))


@pytest.mark.parametrize("obs_id", SEED_IDS)
def test_aeff_thresholds_mask_low_bins(seed_reference, obs_id):
    """With bins below the thresholds, the mask is exactly the bins above max(LO_THRES, aeff-max
    E_min) of Table 7 (0.2344 or 0.2042 TeV): the first two bins (upper edge 0.182, 0.331) go."""
    spec = _low_axis(seed_reference[SEED_IDS.index(obs_id)])
    lo_thres, _, e_min = TABLE_7[obs_id]
    edges = spec.energy_reco.edges
    want = edges[:-1] >= max(float(lo_thres), float(e_min))
    np.testing.assert_array_equal(want, [False, False] + [True] * 8)
    np.testing.assert_array_equal(_mask(spec, SAFE), want)
    # aeff-max alone: E_min 0.148-0.152 TeV drops only the first bin (lower edge 0.1)
    np.testing.assert_array_equal(_mask(spec, {"methods": ["aeff-max"], "aeff_percent": 10}),
                                  [False] + [True] * 9)


def test_edisp_bias_masks_bin_0_of_20326(seed_reference):
    spec = seed_reference[0]
    mask = _mask(spec, {"methods": ["edisp-bias"]})
    np.testing.assert_array_equal(mask, [False] + [True] * 9)
    e_min = edisp_bias_threshold(spec.edisp, spec.energy_true, spec.energy_reco, 10)
    assert 0.3 < e_min <= spec.energy_reco.edges[1]


def test_offset_max(seed_reference):
    spec = seed_reference[0]  # ON centre 0.698 deg off-axis
    assert not _mask(spec, {"methods": ["offset-max"], "offset_max": 0.5}).any()
    assert _mask(spec, {"methods": ["offset-max"]}).all()  # default 3 deg
    assert _mask(spec, {"methods": ["offset-max"], "offset_max": 0.7}).all()


BKG_PEAK_TEV = 0.19952624
"""Lower edge of the BKG_3D energy bin with the largest field-of-view-integrated rate, the same
for the six seed runs: read independently with astropy.io.fits (sum of BKG x dDETX x dDETY
over the 50 x 50 grid of each of the 20 energy bins; bins start 0.1, 0.141, 0.1995, 0.282 TeV)."""


def test_bkg_peak_keeps_all(seed_reference):
    for spec, obs in zip(seed_reference, seed_reference.observations):
        assert _mask(spec, {"methods": ["bkg-peak"]}, obs.bkg).all()
        # the peak is at 0.1995 TeV, below the first reco edge (0.3): hence all bins kept
        rate = obs.bkg.rate_vs_energy()
        assert obs.bkg.energy.edges[int(np.argmax(rate))] == pytest.approx(BKG_PEAK_TEV, rel=1e-7)
        # on an axis from 0.1 TeV the bins starting below the peak go: edges 0.1, 0.182 (< 0.1995)
        low = _low_axis(spec)
        np.testing.assert_array_equal(_mask(low, {"methods": ["bkg-peak"]}, obs.bkg),
                                      [False, False] + [True] * 8)


def test_bkg_peak_without_table_uses_off_counts(seed_reference):
    """No BKG table: E_min is the lower edge of the reco bin with the largest alpha N_off / dE."""
    spec = seed_reference[0]
    edges = spec.energy_reco.edges
    off = np.full(10, 1.0) * np.diff(edges)  # flat per TeV ...
    off[3] *= 5.0  # ... but for a peak in bin 3
    fake = dataclasses.replace(spec, counts_off=off / spec.alpha)
    np.testing.assert_array_equal(_mask(fake, {"methods": ["bkg-peak"]}), [False] * 3 + [True] * 7)


def test_methods_combine_with_and(seed_reference):
    spec = seed_reference[0]
    both = _mask(spec, {"methods": ["aeff-default", "aeff-max", "edisp-bias"], "aeff_percent": 10})
    np.testing.assert_array_equal(both, [False] + [True] * 9)


def test_unknown_method(seed_reference):
    with pytest.raises(ConfigError, match="nonsense"):
        _mask(seed_reference[0], {"methods": ["nonsense"]})


def test_bins_inside_semantics():
    edges = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(bins_inside(edges), [True, True, True])
    np.testing.assert_array_equal(bins_inside(edges, 2.0), [False, True, True])  # edge inclusive
    np.testing.assert_array_equal(bins_inside(edges, 1.5), [False, True, True])  # partial bin dropped
    np.testing.assert_array_equal(bins_inside(edges, 0.5), [True, True, True])
    np.testing.assert_array_equal(bins_inside(edges, None, 4.0), [True, True, False])
    np.testing.assert_array_equal(bins_inside(edges, None, 5.0), [True, True, False])
    np.testing.assert_array_equal(bins_inside(edges, 1.5, 5.0), [False, True, False])
    np.testing.assert_array_equal(bins_inside(edges, 9.0), [False, False, False])


def test_aeff_default_cuts_reco_edges(seed_reference):
    spec = dataclasses.replace(seed_reference[0], meta=dict(seed_reference[0].meta, lo_thres=0.5, hi_thres=20.0))
    mask = _mask(spec, {"methods": ["aeff-default"]})
    edges = spec.energy_reco.edges
    np.testing.assert_array_equal(mask, (edges[:-1] >= 0.5) & (edges[1:] <= 20.0))
    np.testing.assert_array_equal(mask, [False, False] + [True] * 6 + [False, False])


def test_zero_exposure_all_false(seed_reference):
    spec = dataclasses.replace(seed_reference[0], exposure=np.zeros(30))
    assert aeff_max_threshold(spec.exposure, spec.livetime, spec.energy_true, 10) == (None, 0.0)
    mask = _mask(spec, {"methods": ["aeff-max"], "aeff_percent": 10})
    assert mask.dtype == bool and mask.shape == (10,) and not mask.any()
