"""HDF5 file of the ON and OFF events of one reduced observation, for light curves.

A light curve with time bins that cut runs needs the ON and OFF counts of each run in any
time interval.  The reduction job of an analysis with ``light_curve`` writes, next to the
OGIP set, the arrival time and reco-energy bin of every event it counted as ON or OFF (the
events behind ``pha.fits`` and ``bkg.fits``, a few thousand per run), with the run's GTI,
dead-time correction and time reference.  The light-curve job bins them into any time bins
without touching the DL3 data; exposure, dispersion and alpha come from the OGIP set (the
IRFs are constant over a run, so a time bin's exposure is the run's times its share of the
livetime).  Time bins need not be known when the run is reduced: changing them reruns only
the light curve.

Layout (format ``extspec-onoff-events``, version 1); every name is a constant below::

    /                       root attributes
        format              "extspec-onoff-events"                (FORMAT_NAME)
        format_version      int, currently 1                      (FORMAT_VERSION)
        obs_id              int
        deadc               float (livetime = GTI sum x deadc)
        created_by          "extspec <version>+src.<hash>"
        MJDREFI, MJDREFF,
        TIMESYS, TIMEUNIT   the DL3 events' time reference (those present)
    /energy_reco_edges      float64 (n_reco + 1,), TeV
    /gti                    float64 (n, 2), s (MET)
    /on/time, /off/time     float64 (n_events,), s (MET), sorted
    /on/energy_bin,
    /off/energy_bin         int16 (n_events,), reco-energy bin (0 .. n_reco - 1)

Written atomically; the reader raises FormatError with one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spectrum import OnOffEvents
from ..timebins import TIME_KEYS

__all__ = ["OnOffEvents", "write_onoff_events", "read_onoff_events", "FORMAT_NAME", "FORMAT_VERSION",
           "FILE_NAME"]

FORMAT_NAME = "extspec-onoff-events"
FORMAT_VERSION = 1
FILE_NAME = "onoff_events.h5"
"""Name of the file in a reduction's output directory."""

ATTR_FORMAT = "format"
ATTR_FORMAT_VERSION = "format_version"
ATTR_OBS_ID = "obs_id"
ATTR_DEADC = "deadc"
ATTR_CREATED_BY = "created_by"
DSET_EDGES = "energy_reco_edges"
DSET_GTI = "gti"
GROUP_ON = "on"
GROUP_OFF = "off"
DSET_TIME = "time"
DSET_EBIN = "energy_bin"


def write_onoff_events(events: OnOffEvents, path) -> Path:
    """Write ``events`` (:class:`extspec.spectrum.OnOffEvents`) to ``path`` (HDF5, atomically)."""
    import h5py

    from .. import code_identity
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs[ATTR_FORMAT] = FORMAT_NAME
            f.attrs[ATTR_FORMAT_VERSION] = FORMAT_VERSION
            f.attrs[ATTR_OBS_ID] = int(events.obs_id)
            f.attrs[ATTR_DEADC] = float(events.deadc)
            f.attrs[ATTR_CREATED_BY] = code_identity()
            for key in TIME_KEYS:
                if key in events.time_ref:
                    f.attrs[key] = events.time_ref[key]
            f.create_dataset(DSET_EDGES, data=np.asarray(events.energy_reco_edges, np.float64))
            f.create_dataset(DSET_GTI, data=np.asarray(events.gti, np.float64).reshape(-1, 2))
            for name, t, k in ((GROUP_ON, events.time_on, events.energy_bin_on),
                               (GROUP_OFF, events.time_off, events.energy_bin_off)):
                g = f.create_group(name)
                order = np.argsort(t, kind="stable")
                g.create_dataset(DSET_TIME, data=np.asarray(t, np.float64)[order])
                g.create_dataset(DSET_EBIN, data=np.asarray(k, np.int16)[order])
    return Path(path)


def read_onoff_events(path) -> OnOffEvents:
    """Read a file written by :func:`write_onoff_events` (FormatError with one line otherwise)."""
    from .cube_io import _read_with

    def read(r):
        fmt = r.str_attr(r.f, ATTR_FORMAT) if ATTR_FORMAT in r.f.attrs else ""
        if fmt != FORMAT_NAME:
            raise r.fail(f"not an {FORMAT_NAME} file")
        version = r.int_attr(r.f, ATTR_FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise r.fail(f"{FORMAT_NAME} format version {version} is newer than the supported {FORMAT_VERSION}"
                         " (upgrade extspec)")
        edges = r.dataset(DSET_EDGES, np.float64)
        nreco = edges.size - 1
        out = {}
        for name in (GROUP_ON, GROUP_OFF):
            g = r.group(name)
            t = r.dataset(DSET_TIME, np.float64, parent=g)
            k = r.dataset(DSET_EBIN, np.int64, shape=t.shape, parent=g)
            if k.size and (k.min() < 0 or k.max() >= nreco):
                raise r.fail(f"dataset '{name}/{DSET_EBIN}' holds bins outside 0..{nreco - 1}")
            out[name] = (t, k)
        time_ref = {}
        for key in TIME_KEYS:
            if key in r.f.attrs:
                v = r.f.attrs[key]
                time_ref[key] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
        return OnOffEvents(obs_id=r.int_attr(r.f, ATTR_OBS_ID), energy_reco_edges=edges,
                           gti=r.dataset(DSET_GTI, np.float64).reshape(-1, 2), deadc=r.float_attr(r.f, ATTR_DEADC),
                           time_on=out[GROUP_ON][0], energy_bin_on=out[GROUP_ON][1],
                           time_off=out[GROUP_OFF][0], energy_bin_off=out[GROUP_OFF][1], time_ref=time_ref)

    return _read_with(path, read, FORMAT_NAME)
