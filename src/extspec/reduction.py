"""The per-observation reduction chain in memory: cube, ON/OFF spectrum, safe mask (spec §2-§7).

:func:`reduce_observation` is the one implementation of the chain: the workflow's reduce
step (``extspec.workflow.pipeline.reduce_observation``, which adds reading the run and
writing the files), the tests and the benchmarks all call it.  Its settings
(:class:`ReductionSettings`) gather the typed settings of each stage; the workflow layer
builds them from the validated config (:func:`extspec.workflow.settings.reduction_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .containment import SpatialModel
from .cube import CubeSettings
from .reflected import BackgroundSettings
from .safe_mask import SafeMaskSettings

__all__ = ["ReductionSettings", "reduce_observation", "reduce_regions"]


@dataclass(frozen=True)
class ReductionSettings:
    """Everything one observation's reduction needs (no defaults here: the schema holds them).

    Attributes
    ----------
    cube : CubeSettings
        Map geometry, energy axes, method and oversampling.
    on_region : SkyRegion
        The ON region (a point for point-like IRFs).
    exclusion_regions : tuple of SkyRegion
        Kept free of OFF regions.
    background : BackgroundSettings
        Reflected or wobble OFF regions.
    safe_mask : SafeMaskSettings
        The safe energy range criteria.
    spatial : SpatialModel or None
        The source morphology (``model.spatial``): the exposure then holds the PSF containment
        in the ON region (:func:`extspec.containment.apply_spatial`); None: the flux inside
        the ON region.
    """

    cube: CubeSettings
    on_region: object
    exclusion_regions: tuple
    background: BackgroundSettings
    safe_mask: SafeMaskSettings
    spatial: SpatialModel | None


def reduce_observation(obs, settings: ReductionSettings, irf_cubes: bool = False, onoff_events: bool = False):
    """Reduce one loaded observation: ``(CubeDataset, SpectrumDataset)`` with its safe mask set
    (with ``onoff_events`` a third item, the spectrum's ON and OFF events with their times,
    :class:`~extspec.spectrum.OnOffEvents`, for light curves).

    Event coordinates and reco-energy bins are computed once for the cube and the spectrum.
    The cube's exposure and dispersion cubes are computed only when the ``reference``
    extraction reads them, or with ``irf_cubes`` (otherwise they are None).
    """
    from .cube import energy_bin_index, event_coords, make_cube
    from .safe_mask import make_safe_mask
    from .skyregions import region_frame
    from .spectrum import make_spectrum

    cs = settings.cube
    map_frame = cs.geom.frame
    reg_frame = region_frame(settings.on_region)
    ev_map = event_coords(obs, map_frame, cs.method)
    ev_reg = ev_map if reg_frame == map_frame else event_coords(obs, reg_frame, cs.method)
    kbin = energy_bin_index(obs.energy, cs.energy_reco.edges)  # once, for cube and spectrum
    cube = make_cube(obs, cs, ev_map, energy_bins=kbin, irf_cubes=irf_cubes or cs.method == "reference")
    spec, off = make_spectrum(obs, cube, settings, event_lonlat=ev_reg, energy_bins=kbin)
    spec.mask_safe = make_safe_mask(spec, settings.safe_mask, obs.bkg)
    from .containment import apply_spatial

    apply_spatial(obs, spec, settings.on_region, off, settings.spatial)
    if onoff_events:
        from .spectrum import onoff_events as events_of

        return cube, spec, events_of(obs, cube, settings, off, ev_reg, kbin)
    return cube, spec


def reduce_regions(obs, settings: ReductionSettings, regions) -> list:
    """One run's ON/OFF spectra of several ON regions (``regions``: SkyRegions), each exactly
    as :func:`reduce_observation` with that region as ``settings.on_region`` makes it (the same
    cube, background method, exclusions and safe mask), from one pass over the run: the events'
    coordinates, energy bins and the cube are computed once (spatially resolved spectra,
    :mod:`extspec.resolved`), and so is the rest of the run's work that does not depend on the
    ON region (:class:`extspec.spectrum.RunShare`: the events projected on the finder and OFF
    grids, the ``fov`` OFF-area template from which each region only cuts itself out, the
    dispersion kernels per offset node).  No cube is written: its IRF and background cubes are
    made only for the ``reference`` extraction, which reads them."""
    from dataclasses import replace

    from .cube import energy_bin_index, event_coords, make_cube
    from .safe_mask import make_safe_mask
    from .skyregions import region_frame
    from .spectrum import RunShare, make_spectrum

    cs = settings.cube
    ev = {cs.geom.frame: event_coords(obs, cs.geom.frame, cs.method)}
    kbin = energy_bin_index(obs.energy, cs.energy_reco.edges)
    reference = cs.method == "reference"  # its extraction reads the IRF and background cubes; exact does not
    cube = make_cube(obs, cs, ev[cs.geom.frame], energy_bins=kbin, irf_cubes=reference, background_cube=reference)
    out, share = [], RunShare()
    for region in regions:
        frame = region_frame(region)
        if frame not in ev:
            ev[frame] = event_coords(obs, frame, cs.method)
        one = replace(settings, on_region=region)
        spec, _ = make_spectrum(obs, cube, one, event_lonlat=ev[frame], energy_bins=kbin, share=share)
        spec.mask_safe = make_safe_mask(spec, one.safe_mask, obs.bkg)
        out.append(spec)
    return out
