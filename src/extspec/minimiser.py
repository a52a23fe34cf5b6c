"""iminuit's Minuit as every fit of extspec sets it up (spec §9).

Its own module, below :mod:`extspec.fit` and :mod:`extspec.norms`, which both minimise
with it (a joint fit; a flux point's norm).
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_minuit"]


def make_minuit(fcn, x0, names, limits=None):
    """iminuit Minuit as set up for every fit here (§9): WStat errordef 1, initial steps 1
    (parameters are scaled to order 1), tol 0.1, strategy 1, quiet.  ``limits``: optional
    (lo, hi) per parameter (+-inf for none)."""
    from iminuit import Minuit

    m = Minuit(fcn, np.asarray(x0, float), name=list(names))
    m.errordef = 1.0
    m.errors = np.ones(len(names))
    m.tol = 0.1
    m.strategy = 1
    m.print_level = 0
    for i, (lo, hi) in enumerate(limits or ()):
        if np.isfinite(lo) or np.isfinite(hi):
            m.limits[i] = (lo, hi)
    return m
