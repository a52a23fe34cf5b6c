"""ON/OFF spectrum of one observation (spec §5-§6): the in-memory dataset.

:class:`SpectrumDataset` is what the fit, the stacking and the OGIP files work with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import EnergyAxis

__all__ = ["SpectrumDataset"]


@dataclass
class SpectrumDataset:
    """ON/OFF spectrum of one observation (or a stack of several).

    Attributes
    ----------
    obs_id : int
        Observation id (0 for a stack).
    energy_reco, energy_true : EnergyAxis
        Edges in TeV.
    counts : (n_reco,) int64
        ON counts n_on.
    counts_off : (n_reco,) int64
        OFF counts n_off (in the union of the OFF regions).
    acceptance : (n_reco,) float64
        ON acceptance (1 per run).
    acceptance_off : (n_reco,) float64
        OFF acceptance (number of OFF regions per run); alpha = acceptance / acceptance_off.
    exposure : (n_true,) float64
        ON-region exposure X_on in m^2 s.
    edisp : (n_true, n_reco) float64
        Dispersion kernel K.
    edisp_weight : (n_true,) float64
        Exposure (m^2 s) weighting the kernel when stacking (§10.1).
    mask_safe : (n_reco,) bool
        Safe energy range (bins outside stay in the data but are flagged).
    livetime, ontime : float
        Seconds.
    gti : (n, 2) float64
        Good time intervals (MET s).
    usable : bool
        False when no OFF region was found (§6.4); then ``reason`` says why.
    reason : str
    on_region : str
        DS9 string of the ON region.
    off_regions : list of str
        DS9 strings of the OFF regions (sky coordinates), for plots.
    pointing_radec : (ra, dec) deg
    meta : dict
        Free-form provenance (method, lo_thres, hi_thres, source file, checksum ...).
    """

    obs_id: int
    energy_reco: EnergyAxis
    energy_true: EnergyAxis
    counts: np.ndarray
    counts_off: np.ndarray
    acceptance: np.ndarray
    acceptance_off: np.ndarray
    exposure: np.ndarray
    edisp: np.ndarray
    edisp_weight: np.ndarray
    mask_safe: np.ndarray
    livetime: float
    ontime: float
    gti: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    usable: bool = True
    reason: str = ""
    on_region: str = ""
    off_regions: list = field(default_factory=list)
    pointing_radec: tuple = (np.nan, np.nan)
    meta: dict = field(default_factory=dict)

    @property
    def alpha(self) -> np.ndarray:
        """acceptance / acceptance_off per bin (0 where there is no OFF acceptance)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.acceptance_off > 0, self.acceptance / self.acceptance_off, 0.0)

    @property
    def n_off_regions(self) -> int:
        return len(self.off_regions)

    @property
    def excess(self) -> np.ndarray:
        return self.counts - self.alpha * self.counts_off
