"""Ending a process without idle time: the one place where extspec works around the exit
behaviour of Snakemake and CPython.  Measured costs: docs/benchmarks.md, "Where the time goes";
``tests/test_process_exit.py`` fails when the upstream behaviour changes.

1. **Snakemake's job-rate timer.**  After every scheduling round that starts jobs, Snakemake's
   scheduler arms a ``threading.Timer`` of ``--max-jobs-per-timespan``'s timespan (default
   100/1s) to look again (``JobScheduler._schedule_reevalutation``).  The timer is not a daemon
   thread, so the interpreter waits for the last one before it can exit: up to 1 s after the
   final job (1.0 s measured when the last job is short).  No option avoids it: the timespan
   cannot be set below 1 s (Snakemake 9 parses ``100/100ms`` as 100 *minutes*), and a 0 s
   timespan would make the scheduler spin while jobs wait for cores.
   :func:`cancel_scheduler_timers`, called from the Snakefile's ``onsuccess``/``onerror``
   hooks (the scheduler has returned by then), cancels exactly those timers and nothing else.

2. **The final garbage collections.**  At exit CPython runs full collections over every
   object still alive: about 1.3e5 in a Snakemake process (its modules, the DAG; pandas when
   the SLURM plugin is installed), 0.3 s on a quiet 2-core machine, 1 s under load; 0.15 s
   in an aggregate job (matplotlib).  :func:`skip_final_collections` freezes them
   (:func:`gc.freeze`, moving every object to the permanent generation those collections
   skip) in an ``atexit`` handler, i.e. only once all work is done; the operating system
   frees the memory.  Used by the Snakefile (every run: also no-op, dry and report runs) and
   by the command line.

Standard library only; nothing here imports Snakemake.
"""

from __future__ import annotations

import atexit
import gc
import threading

__all__ = ["SCHEDULER_TIMER", "scheduler_timers", "cancel_scheduler_timers", "skip_final_collections"]

SCHEDULER_TIMER = "JobScheduler._schedule_reevalutation.<locals>.<lambda>"
"""Qualified name of the function Snakemake's re-evaluation timer calls (its spelling)."""

_registered = False


def scheduler_timers() -> list:
    """The live ``threading.Timer`` threads armed by Snakemake's job scheduler (and no other)."""
    return [t for t in threading.enumerate()
            if isinstance(t, threading.Timer)
            and getattr(getattr(t.function, "__code__", None), "co_qualname", "") == SCHEDULER_TIMER]


def cancel_scheduler_timers(log=None) -> int:
    """Cancel Snakemake's pending re-evaluation timers (``onsuccess``/``onerror`` hook; the
    ``log`` argument Snakemake passes is ignored).  Returns how many were cancelled."""
    timers = scheduler_timers()
    for t in timers:
        t.cancel()
    return len(timers)


def skip_final_collections() -> None:
    """Freeze the heap at interpreter exit, so that CPython's final collections skip it.

    Registered once per process, as an ``atexit`` handler: it runs after the work is done
    (atexit handlers registered later run before it).
    """
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
