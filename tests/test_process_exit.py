"""extspec.workflow.process_exit: the workarounds for Snakemake's and CPython's exit behaviour.

These tests fail when the upstream behaviour they work around changes -- then revisit the
workaround (and its measured cost in docs/benchmarks.md, "Where the time goes") instead of patching the test.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types

import pytest

from extspec.workflow.process_exit import SCHEDULER_TIMER, cancel_scheduler_timers, scheduler_timers

job_scheduler = pytest.importorskip("snakemake.scheduling.job_scheduler")


def test_snakemake_scheduler_timer_is_found_and_cancelled_alone():
    """Snakemake's scheduler still arms a non-daemon Timer (which delays the exit), and only
    that timer is cancelled."""
    stub = types.SimpleNamespace(_open_jobs=threading.Semaphore(0))
    other = threading.Timer(30, lambda: None)
    other.start()
    try:
        job_scheduler.JobScheduler._schedule_reevalutation(stub, 30)
        timers = scheduler_timers()
        assert len(timers) == 1, "Snakemake no longer re-arms its scheduler through a threading.Timer"
        assert timers[0].function.__code__.co_qualname == SCHEDULER_TIMER
        assert not timers[0].daemon, "the timer became a daemon thread: the workaround is obsolete"
        assert cancel_scheduler_timers() == 1
        timers[0].join(5)
        assert not timers[0].is_alive() and other.is_alive()
        assert not stub._open_jobs.acquire(blocking=False)  # cancelled, never fired
    finally:
        other.cancel()


def test_rate_limit_timespan_cannot_go_below_one_second():
    """Why no option avoids the timer's wait: the default is one job-rate round per second, and a
    sub-second timespan does not parse as one (``ms`` is read as minutes)."""
    from snakemake.settings.types import MaxJobsPerTimespan

    assert MaxJobsPerTimespan.parse_choice("100/1s").timespan == 1
    assert MaxJobsPerTimespan.parse_choice("100/100ms").timespan == 6000


def test_cpython_collects_at_exit_and_freeze_empties_the_collections():
    """CPython runs full collections at interpreter exit (what skip_final_collections avoids);
    after gc.freeze they examine nothing of the frozen heap."""
    code = (
        "import atexit, gc, os, sys\n"
        "junk = [[i] for i in range(200000)]\n"
        "def watch():\n"
        "    def cb(phase, info):\n"
        "        if phase == 'start' and info['generation'] == 2:\n"
        "            os.write(1, b'c')\n"
        "    gc.callbacks.append(cb)\n"
        "atexit.register(watch)\n"
        "if sys.argv[1] == 'freeze':  # atexit handlers run last-registered first\n"
        "    atexit.register(lambda: os.write(1, b'%d ' % gc.get_freeze_count()))\n"
        "    from extspec.workflow.process_exit import skip_final_collections\n"
        "    skip_final_collections()\n"
    )
    plain = subprocess.run([sys.executable, "-c", code, "plain"], capture_output=True, text=True, check=True)
    assert plain.stdout.count("c") >= 1, "CPython no longer collects at exit: skip_final_collections is obsolete"
    frozen = subprocess.run([sys.executable, "-c", code, "freeze"], capture_output=True, text=True, check=True)
    assert int(frozen.stdout.split()[0]) > 200000  # the heap was frozen before the final collections
