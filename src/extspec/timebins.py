"""Time bins of a light curve and what each run contributes to them.

Times of the DL3 data are seconds since a reference MJD (``MJDREFI + MJDREFF``) in the
events' time system (``TIMESYS``, TT for H.E.S.S. DR1).  Light-curve bins are given and
reported in MJD UTC; the conversion TT/TAI <-> UTC uses ERFA's leap-second table (pyerfa,
installed with astropy: no network and no IERS tables).

The kinds of bins (config key ``light_curve.time_bins``):

* ``run``: one bin per run, from its first GTI start to its last GTI stop;
* ``night``: the runs whose first GTI start falls in the same night, a night running from
  ``night_boundary_utc`` hours UTC on one day to the same hour on the next (noon to noon by
  default); the bin spans its runs (first start to last stop);
* intervals ``[[start, stop], ...]`` (MJD UTC here; ISO UTC in the config) or a regular grid
  ``{start, stop, width_s}`` (:func:`regular_intervals`: whole bins counted in seconds, a
  sub-second remainder joins the last bin): a run contributes to each interval it
  overlaps with its events inside the interval and its livetime there (GTI overlap x DEADC).
  A run outside every interval is ignored; an interval no run overlaps gets no bin.

A bin is a :class:`TimeBin`: its edges and one :class:`Window` per contributing run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RunTimes", "Window", "TimeBin", "mjd_utc_from_met", "met_from_mjd_utc", "parse_utc",
           "regular_intervals", "MIN_REMAINDER_S", "runs_span", "iso_utc", "livetime_in", "run_bins", "night_bins",
           "interval_bins", "make_time_bins",
           "SECONDS_PER_DAY", "TIME_REF_KEYS", "TIME_KEYS", "run_times"]

SECONDS_PER_DAY = 86400.0

TIME_REF_KEYS = ("MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT", "TIMEREF")
"""Time-reference keywords of the EVENTS header kept in ``Observation.meta`` (when present):
they give the GTI's START/STOP (s since MJDREFI + MJDREFF) their meaning in the OGIP files."""

TIME_KEYS = ("MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT")
"""The time reference of a run for its time bins (:func:`run_times`), as a run's ON/OFF events
file stores it (:mod:`extspec.io.onoff_events`)."""


@dataclass(frozen=True)
class RunTimes:
    """What the binning needs of a run: its GTI (s MET), DEADC and time reference."""

    obs_id: int
    gti: np.ndarray
    deadc: float
    time_ref: dict


@dataclass(frozen=True)
class Window:
    """The part of run ``run`` (index into the runs) in a bin: MET ``[met_min, met_max)``
    (``-inf, inf`` for the whole run) and its livetime there (s)."""

    run: int
    met_min: float
    met_max: float
    livetime: float

    @property
    def whole_run(self) -> bool:
        return self.met_min == -np.inf and self.met_max == np.inf


@dataclass(frozen=True)
class TimeBin:
    """A light-curve time bin: edges in MJD UTC and the runs' windows in it."""

    time_min: float
    time_max: float
    windows: tuple


def _time_system(time_ref: dict) -> tuple[float, str, float]:
    """(reference MJD, astropy scale, seconds per time unit) of a DL3 time reference."""
    mjdref = float(time_ref.get("MJDREFI", 0)) + float(time_ref.get("MJDREFF", 0.0))
    scale = str(time_ref.get("TIMESYS", "TT")).strip().lower() or "tt"
    unit = str(time_ref.get("TIMEUNIT", "s")).strip().lower() or "s"
    per_unit = {"s": 1.0, "d": SECONDS_PER_DAY}.get(unit)
    if scale not in ("tt", "tai", "utc") or per_unit is None:
        from .errors import FormatError

        raise FormatError(f"time reference TIMESYS={time_ref.get('TIMESYS')!r} TIMEUNIT={time_ref.get('TIMEUNIT')!r}"
                          " is not supported (TT, TAI or UTC in s or d)")
    return mjdref, scale, per_unit


_MJD0 = 2400000.5
"""JD of MJD 0."""


def _convert_mjd(mjd, from_scale: str, to_scale: str) -> np.ndarray:
    """MJD in one of the scales utc, tai, tt converted to another, with ERFA's leap-second
    table (pyerfa, installed with astropy; no network, no astropy.time import)."""
    import erfa

    mjd = np.asarray(mjd, float)
    if from_scale == to_scale:
        return mjd
    with warnings.catch_warnings():  # "dubious year": dates beyond ERFA's leap-second table
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        a, b = np.full(mjd.shape, _MJD0), mjd
        if from_scale == "utc":
            a, b = erfa.utctai(a, b)
        elif from_scale == "tt":
            a, b = erfa.tttai(a, b)
        if to_scale == "utc":
            a, b = erfa.taiutc(a, b)
        elif to_scale == "tt":
            a, b = erfa.taitt(a, b)
    return np.asarray((a - _MJD0) + b, float)


def mjd_utc_from_met(met, time_ref: dict) -> np.ndarray:
    """MJD UTC of times in s (or the TIMEUNIT) since the reference of ``time_ref``."""
    mjdref, scale, per_unit = _time_system(time_ref)
    return _convert_mjd(mjdref + np.asarray(met, float) * per_unit / SECONDS_PER_DAY, scale, "utc")


def met_from_mjd_utc(mjd_utc, time_ref: dict) -> np.ndarray:
    """Inverse of :func:`mjd_utc_from_met`."""
    mjdref, scale, per_unit = _time_system(time_ref)
    return (_convert_mjd(mjd_utc, "utc", scale) - mjdref) * SECONDS_PER_DAY / per_unit


def parse_utc(text: str) -> float:
    """MJD UTC of an ISO 8601 UTC time (``2006-07-29T20:00:00``, optionally with fractional
    seconds or a trailing ``Z``); ValueError if not one."""
    import datetime

    import erfa

    t = datetime.datetime.fromisoformat(str(text).strip().removesuffix("Z"))
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    try:
        a, b = erfa.dtf2d("UTC", t.year, t.month, t.day, t.hour, t.minute, t.second + t.microsecond * 1e-6)
    except erfa.ErfaError as exc:
        raise ValueError(str(exc)) from None
    return float((a - _MJD0) + b)


MIN_REMAINDER_S = 1.0
"""A regular grid's remainder shorter than this (s) joins the last bin instead of making its own."""


def regular_intervals(start: float, stop: float, width_s: float) -> list[tuple[float, float]]:
    """Consecutive intervals of ``width_s`` seconds from ``start`` to ``stop`` (MJD).

    The number of whole bins is counted in seconds (an integer, so a width dividing the span
    gives exactly span / width bins whatever the float rounding of MJD); a remainder of at
    least :data:`MIN_REMAINDER_S` makes a last, shorter bin, a shorter one (float rounding or
    a sub-second rest) joins the last bin, which ends at ``stop``.
    """
    span_s = (stop - start) * SECONDS_PER_DAY
    n_full = int(np.floor(span_s / width_s + 1e-6))
    remainder = span_s - n_full * width_s
    n = max(1, n_full + (1 if remainder >= MIN_REMAINDER_S else 0))
    edges = start + (width_s / SECONDS_PER_DAY) * np.arange(n + 1)
    edges[-1] = stop
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def livetime_in(gti: np.ndarray, deadc: float, met_min: float, met_max: float) -> float:
    """Livetime (s) of a run in MET ``[met_min, met_max)``: GTI overlap x DEADC."""
    gti = np.asarray(gti, float).reshape(-1, 2)
    overlap = np.clip(np.minimum(gti[:, 1], met_max) - np.maximum(gti[:, 0], met_min), 0.0, None)
    return float(overlap.sum() * deadc)


def _run_span(run: RunTimes) -> tuple[float, float]:
    """First GTI start and last GTI stop of a run, MJD UTC."""
    g = np.asarray(run.gti, float).reshape(-1, 2)
    lo, hi = mjd_utc_from_met([g[:, 0].min(), g[:, 1].max()], run.time_ref)
    return float(lo), float(hi)


def runs_span(runs) -> tuple[float, float]:
    """First GTI start and last GTI stop (MJD UTC) over all ``runs`` with a GTI (NaN for none)."""
    spans = [_run_span(r) for r in runs if np.size(r.gti)]
    if not spans:
        return float("nan"), float("nan")
    return min(s[0] for s in spans), max(s[1] for s in spans)


def iso_utc(mjd: float) -> str:
    """ISO 8601 text (to the second) of an MJD UTC, for messages."""
    import erfa

    if not np.isfinite(mjd):
        return "?"
    y, m, d, hmsf = erfa.d2dtf("UTC", 0, _MJD0, float(mjd))
    h, mi, sec = (int(hmsf[k]) for k in ("h", "m", "s"))
    return f"{int(y):04d}-{int(m):02d}-{int(d):02d}T{h:02d}:{mi:02d}:{sec:02d}"


def _whole(i: int, run: RunTimes) -> Window:
    return Window(i, -np.inf, np.inf, livetime_in(run.gti, run.deadc, -np.inf, np.inf))


def run_bins(runs) -> list[TimeBin]:
    """One bin per run (with a GTI), in time order."""
    bins = [TimeBin(*_run_span(r), (_whole(i, r),)) for i, r in enumerate(runs) if np.size(r.gti)]
    return sorted(bins, key=lambda b: b.time_min)


def night_bins(runs, boundary_hours: float) -> list[TimeBin]:
    """Runs grouped by the night of their first GTI start (nights change at ``boundary_hours``
    UTC); each bin spans its runs."""
    groups: dict[int, list] = {}
    for i, r in enumerate(runs):
        if not np.size(r.gti):
            continue
        lo, hi = _run_span(r)
        night = int(np.floor(lo - boundary_hours / 24.0))
        groups.setdefault(night, []).append((lo, hi, _whole(i, r)))
    return [TimeBin(min(g[0] for g in grp), max(g[1] for g in grp), tuple(g[2] for g in grp))
            for _, grp in sorted(groups.items())]


def interval_bins(runs, intervals) -> list[TimeBin]:
    """One bin per interval ``(start, stop)`` (MJD UTC) that some run overlaps with livetime."""
    iv = np.asarray(intervals, float).reshape(-1, 2)
    per_bin: list[list] = [[] for _ in range(len(iv))]
    for i, r in enumerate(runs):
        if not np.size(r.gti):
            continue
        met = met_from_mjd_utc(iv, r.time_ref)  # every interval in this run's time system, at once
        g = np.asarray(r.gti, float).reshape(-1, 2)
        for b in np.flatnonzero((met[:, 0] < g[:, 1].max()) & (met[:, 1] > g[:, 0].min())):
            lt = livetime_in(g, r.deadc, met[b, 0], met[b, 1])
            if lt > 0:
                per_bin[b].append(Window(i, float(met[b, 0]), float(met[b, 1]), lt))
    return [TimeBin(float(a), float(b), tuple(w)) for (a, b), w in zip(iv, per_bin) if w]


def make_time_bins(time_bins, runs, night_boundary_utc: float) -> list[TimeBin]:
    """The bins of a ``light_curve.time_bins`` setting (``run``, ``night``, ``{start, stop,
    width_s}`` or ``[[start, stop], ...]`` with ISO UTC times) for ``runs`` (:class:`RunTimes`)."""
    if time_bins == "run":
        return run_bins(runs)
    if time_bins == "night":
        return night_bins(runs, night_boundary_utc)
    if isinstance(time_bins, dict):
        intervals = regular_intervals(parse_utc(time_bins["start"]), parse_utc(time_bins["stop"]),
                                      float(time_bins["width_s"]))
    else:
        intervals = [(parse_utc(a), parse_utc(b)) for a, b in time_bins]
    return interval_bins(runs, intervals)


def run_times(spectra, events) -> list[RunTimes]:
    """What the binning needs of each run (:class:`RunTimes`): from its ON/OFF events where
    ``events[i]`` is given (:class:`extspec.spectrum.OnOffEvents`: GTI, DEADC, time reference),
    else from its spectrum ``spectra[i]`` (GTI, DEADC = livetime / ontime, the
    :data:`TIME_KEYS` of its metadata)."""
    return [RunTimes(int(s.obs_id), s.gti if e is None else e.gti,
                     (s.livetime / s.ontime if s.ontime > 0 else 1.0) if e is None else e.deadc,
                     {k: s.meta[k] for k in TIME_KEYS if k in s.meta} if e is None else e.time_ref)
            for s, e in zip(spectra, events)]
