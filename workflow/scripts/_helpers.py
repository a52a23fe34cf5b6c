"""Shared by the workflow scripts: logging to snakemake.log[0], offline astropy, clean errors.

Kept to the standard library so that a per-observation job imports only what its library
function needs.
"""

import logging
import os
import sys
import time


def offline_astropy():
    """Compute nodes are often offline: astropy must never try to download (IERS tables).

    extspec.workflow.config.offline_astropy sets the switches through an import hook, so a job whose
    library function never imports astropy does not pay for it.
    """
    from extspec.workflow.config import offline_astropy as _offline

    _offline()


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; getrusage would report the larger
    peak of the forking Snakemake process, which Linux carries across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(snakemake, what, func, *args, **kwargs):
    """Call ``func(*args, **kwargs)``, logging to the rule's log file.

    An :class:`extspec.errors.ExtspecError` is written to the log (and stderr) as its one-line
    message, prefixed by ``what`` unless the message already names it, and the job exits
    with status 1 without a traceback.  Any other exception is logged with its traceback.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    log = logging.getLogger(f"extspec.workflow.{snakemake.rule}")
    # only the log file gets the chatter; stderr gets warnings and errors
    handlers[0].setLevel(logging.WARNING)
    from extspec.errors import ExtspecError

    t0 = time.perf_counter()
    log.info("%s: start (rule %s, pid %d)", what, snakemake.rule, os.getpid())
    try:
        offline_astropy()
        result = func(*args, **kwargs)
    except ExtspecError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if what.split()[-1] not in msg:
            msg = f"{what}: {msg}"
        log.error("%s", msg)
        logging.shutdown()
        sys.exit(1)
    except OSError as exc:  # e.g. a read-only or full output folder: one line, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        log.error("%s: cannot access%s: %s", what, where, exc.strerror or exc)
        logging.shutdown()
        sys.exit(1)
    except Exception:
        log.exception("%s: unexpected error", what)
        logging.shutdown()
        sys.exit(1)
    peak_mb = peak_rss_mb()
    log.info("%s: done in %.2f s, peak RSS %.1f MB", what, time.perf_counter() - t0, peak_mb)
    logging.shutdown()
    skip_final_gc()
    return result


def skip_final_gc():
    """Let the interpreter exit without its final garbage collection.

    At exit CPython runs several full collections over every object still alive; with numpy
    and matplotlib loaded (~10^5 tracked objects, ~30 ms per collection) that measured
    ~0.1-0.15 s per aggregate job.  :func:`gc.freeze` moves them to the permanent
    generation, which those collections skip; the operating system frees the memory.  Only
    called once the job's outputs are written and closed (atexit handlers and module
    cleanup still run).
    """
    import gc

    gc.freeze()
