"""Simulated data for tests and benchmarks.

* :mod:`extspec.simulate.dl3` -- a GADF DL3 data store (events drawn through analytic IRFs,
  wobble runs), also from the command line: ``python -m extspec.simulate OUTDIR``.
* :mod:`extspec.simulate.onoff` -- Poisson ON/OFF spectra forward-folded through the IRFs of a
  template spectrum (:func:`simulate_onoff`).
"""

from . import dl3, onoff
from .dl3 import (
    IrfModel,
    SimulatedObservation,
    SourceModel,
    main,
    run_seed,
    simulate_datastore,
    simulate_observation,
    wobble_pointings,
)
from .onoff import simulate_onoff

__all__ = [*dl3.__all__, *onoff.__all__]
