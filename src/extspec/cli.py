"""The ``extspec`` command line (also ``python -m extspec``).

::

    extspec info [STORE] [--cone LON LAT RADIUS] [--frame icrs|galactic]
    extspec check CONFIG [CONFIG ...] [--print-settings STEP]
    extspec reduce OBS_ID --outdir DIR [--datastore DIR]            (--config FILE | --settings JSON)
    extspec reduce-batch OBS_ID [...] --outroot DIR [--datastore DIR] (--config FILE | --settings JSON)
    extspec stack OBS_DIR [...] --fits FILE --png FILE                (--config FILE | --settings JSON)
    extspec fit SPECTRUM [...] --result FILE --png FILE               (--config FILE | --settings JSON)
    extspec flux-points SPECTRUM [...] --fit FILE --ecsv FILE --png FILE (--config ... | --settings ...)
    extspec cumulative SPECTRUM [...] --ecsv FILE --png FILE         (--config FILE | --settings JSON)
    extspec spatial-reduce OBS_ID --out FILE [--datastore DIR]       (--config FILE | --settings JSON)
    extspec spatial SPATIAL_H5 [...] --outdir DIR                    (--config FILE | --settings JSON)
    extspec summary RESULTS_DIR ANALYSIS [...] --ecsv FILE --html FILE
    extspec joint-fit --spectra ANALYSIS SPECTRUM [...] [--spectra ...] --outdir DIR
                                                     (--config FILE --joint NAME | --settings JSON)

The steps are the functions of ``extspec.workflow.pipeline`` and the steps of the registered
products (``extspec.workflow.products``: their subcommands are built from the registry), the
ones the Snakemake rules run (the rules call this command line).  ``OBS_DIR`` is the output directory of ``extspec
reduce`` (cube.h5 and pha/bkg/arf/rmf.fits); a file inside it stands for the directory.
``SPECTRUM`` is such a directory or the PHA file of an OGIP set (other tools' spectra).  A
step takes its settings from an analysis config (``--config``, validated completely; repeat
it to merge several files, later ones winning) or from JSON (``--settings``: the text, or a
file, as the workflow passes it and ``extspec check --print-settings STEP`` prints it).

Every step writes its outputs atomically, logs to ``--log FILE`` (start, what it did, time
and peak memory) and ends with one progress line on stderr (``--quiet``: none).

Exit status: 0 success; 1 bad input or a failed step (one line on stderr naming the file,
obs id or config key; nothing half-written); 2 wrong usage of the command line; 3 an
unexpected error (a bug: the traceback goes to the log, or to stderr without ``--log``);
130 interrupted.

This module imports only the standard library; each subcommand imports what it needs (a
reduction: numpy, h5py and extspec).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import threading
import time

__all__ = ["main", "run_step", "run_in_process", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_BUG", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

_EPILOG = ("exit status: 0 success, 1 bad input or failed step (one line on stderr), 2 wrong usage, "
           "3 unexpected error (traceback in the log), 130 interrupted")


# ------------------------------------------------------------------- running one step --


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; getrusage would report the larger
    peak of a forking parent such as Snakemake, which Linux carries across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _StderrFormatter(logging.Formatter):
    """``extspec CMD: [warning: ]message`` on one line; never a traceback."""

    def __init__(self, command: str):
        super().__init__()
        self.prefix = f"extspec {command}: "
        self.redundant = (f"{command}: ", f"{command.replace('-', ' ')}: ")

    def format(self, record):
        msg = record.getMessage().splitlines()[0] if record.getMessage() else ""
        for r in self.redundant:
            msg = msg[len(r):] if msg.startswith(r) else msg
        level = "warning: " if record.levelno == logging.WARNING else ""
        return f"{self.prefix}{level}{msg}"


_LOGGING = threading.Lock()
_STEPS_RUNNING = [0, logging.NOTSET]
"""Steps running in this process, and the root logger's level before the first of them."""


def _setup_logging(command: str, log_path, verbose: bool) -> list:
    """Log handlers for one step (stderr, and the log file); returns them.

    Each handler takes only the records of the calling thread: steps run in-process by
    :func:`run_in_process` may run side by side in threads of one process (Snakemake's
    jobs), each with its own log file.  The root logger's level is set for the first step
    running and restored after the last one."""
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO if verbose else logging.WARNING)
    err.setFormatter(_StderrFormatter(command))
    handlers = [err]
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        fh = logging.FileHandler(log_path, mode="w")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(fh)
    thread = threading.get_ident()
    for h in handlers:
        h.addFilter(lambda record: record.thread == thread)
    root = logging.getLogger()
    with _LOGGING:
        if _STEPS_RUNNING[0] == 0:
            _STEPS_RUNNING[1] = root.level
            root.setLevel(logging.INFO)
            logging.captureWarnings(True)
        _STEPS_RUNNING[0] += 1
        for h in handlers:
            root.addHandler(h)
    return handlers


def _end_logging(handlers: list) -> None:
    """Close the step's handlers; after the last step running, restore the root logger (the
    step may run in-process)."""
    root = logging.getLogger()
    with _LOGGING:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        _STEPS_RUNNING[0] -= 1
        if _STEPS_RUNNING[0] == 0:
            root.setLevel(_STEPS_RUNNING[1])
            logging.captureWarnings(False)


def run_step(command: str, what: str, func, *, log_path=None, quiet: bool = False, verbose: bool = False,
             prepare=None) -> int:
    """Run ``func()`` as one step; return the exit status.

    Logs to ``log_path`` (when given) and stderr (warnings and errors; everything with
    ``verbose``).  An :class:`~extspec.errors.ExtspecError` becomes one line, prefixed by
    ``what`` unless the message already names it (exit 1); any other exception is a bug:
    one line on stderr, the traceback in the log (exit 3).  ``prepare()`` runs before the
    step's clock starts (the imports of the step), so that the log separates start-up from
    the step's own time.  On success, ``func``'s return value (a short summary) goes to
    the log and, unless ``quiet``, on one progress line to stderr.
    """
    handlers = _setup_logging(command, log_path, verbose)
    try:
        return _run_logged(command, what, func, log_path, quiet, prepare)
    finally:
        _end_logging(handlers)


def run_in_process(argv: list[str]) -> None:
    """Run ``extspec ARGV`` in this process (in any thread); raise StepFailed if it fails.

    What the ``run:`` blocks of the rules ``reduce``, ``stack``, ``fit``, ``flux_points``,
    ``cumulative`` and ``summary`` call (``extspec_in_process`` in workflow/rules/common.smk),
    in one of Snakemake's threads: the same step, log file, log lines and outputs as the
    command line in a process of its own, without the interpreter's start and the imports
    per job.  The step's one-line error goes to stderr and its log as from the command line;
    the exception, which fails the job, repeats it with the exit status.  Python's warnings
    registry is per process: a warning shown once per process is then logged by the first
    job that raises it only.
    """
    from .errors import StepFailed

    try:  # a SystemExit (argparse's usage error) must not end a thread of Snakemake's: it hangs
        args = shared_parser().parse_args(argv)
    except SystemExit as exc:
        raise StepFailed(f"extspec {' '.join(argv[:2])}: wrong usage of the command line (exit status {exc.code})") \
            from None
    status = args.func(args)
    if status != EXIT_OK:
        log = getattr(args, "log", None)
        raise StepFailed(f"extspec {' '.join(argv[:2])}: failed with exit status {status}"
                         + (f"; its log: {log}" if log else ""))


def _run_logged(command, what, func, log_path, quiet, prepare) -> int:
    log = logging.getLogger(f"extspec.{command}")
    from .errors import ExtspecError

    t_start = time.perf_counter()
    log.info("%s: start (pid %d)", what, os.getpid())
    try:
        if prepare is not None:
            prepare()
        t0 = time.perf_counter()
        summary = func()
    except ExtspecError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("%s", msg if what in msg else f"{what}: {msg}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("%s: interrupted", what)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `extspec info | head`: the reader has all it wants; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
    except OSError as exc:  # e.g. a read-only or full output folder: one line, no traceback
        from .io.atomic import os_error_line

        log.error("%s: %s", what, os_error_line(exc))
        return EXIT_FAILED
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        where = f"; traceback in {log_path}" if log_path else ""
        log.error("%s: unexpected error (%s: %s)%s", what, type(exc).__name__, first, where)
        if log_path:  # the traceback into the log file only
            with open(log_path, "a") as f:
                f.write(logging.Formatter().formatException(sys.exc_info()) + "\n")
        else:
            import traceback

            traceback.print_exc()
        return EXIT_BUG
    t1 = time.perf_counter()
    log.info("%s: %s", what, summary or "done")
    log.info("%s: done in %.4f s (imports %.4f s), peak RSS %.1f MB", what, t1 - t0, t0 - t_start, peak_rss_mb())
    if not quiet:
        head = f"extspec {command}: " + ("" if what in (command, command.replace("-", " ")) else f"{what}: ")
        print(f"{head}{summary or 'done'} ({t1 - t_start:.2f} s)", file=sys.stderr, flush=True)
    return EXIT_OK


# ------------------------------------------------------------------------- subcommands --


def _obs_dirs(paths) -> list[str]:
    """Observation directories from directories or files inside them (e.g. their pha.fits);
    batch manifests are kept as they are (the steps read them, extspec.io.batch)."""
    from .io.batch import is_manifest

    return [(os.path.dirname(p) or ".") if os.path.isfile(p) and not is_manifest(p) else p for p in paths]


def _step_settings(args, stage: str) -> dict:
    """The settings of ``stage`` from --settings (JSON) or --config (validated config files)."""
    from .workflow.settings import read_settings

    if args.settings is not None:
        return read_settings(args.settings)
    from .workflow.settings import stage_config

    cfg = _validated_config(args.config, args.analysis)
    if hasattr(args, "datastore") and args.datastore is None:  # a per-observation step
        args.datastore = cfg.get("datastore")
    return stage_config(cfg, stage)


def _pick_analysis(analyses: dict, name):
    """The config of analysis ``name`` (the only one when ``name`` is None)."""
    from .errors import ConfigError

    if name is None:
        if len(analyses) > 1:
            raise ConfigError(f"the config has {len(analyses)} analyses ({', '.join(analyses)}): "
                              "choose one with --analysis")
        return next(iter(analyses.values()))
    if name not in analyses:
        raise ConfigError(f"--analysis {name}: no such analysis (the config has {', '.join(analyses)})")
    return analyses[name]


def _validated_config(paths, analysis=None) -> dict:
    from .errors import ConfigError
    from .workflow.analyses import read_config_files, validate_analyses

    try:
        analyses = validate_analyses(read_config_files(paths), check_datastore=False)
    except ConfigError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    return _pick_analysis(analyses, analysis)


def _import_step(stage: str):
    def prepare():
        from .workflow.products import import_step

        import_step(stage)

    return prepare


def _cmd_registered(step, args) -> int:
    """Run a registered product's step (:class:`extspec.workflow.product.Step`)."""
    def run():
        return step.run(_step_settings(args, step.stage), args)

    return run_step(step.command, step.what(args), run, log_path=args.log, quiet=args.quiet, verbose=args.verbose,
                    prepare=_import_step(step.stage))


def _cmd_info(args) -> int:
    def step():
        from .io.datastore import open_datastore, resolve_datastore_path

        store = open_datastore(resolve_datastore_path(args.store))
        ids, offsets = None, None
        if args.cone:
            lon, lat, radius = args.cone
            ids = store.select(cone={"lon": lon, "lat": lat, "radius": radius, "frame": args.frame})
            offsets = dict(zip(store.obs_ids.tolist(), store.pointing_offsets(lon, lat, args.frame).tolist()))
        rows = store.summary(ids)
        cols = ["obs_id", "ra_pnt", "dec_pnt"] + (["offset_deg"] if args.cone else []) + \
               ["livetime_s", "zenith_deg", "irf", "bkg"]
        out = [cols]
        for r in rows:
            line = [str(r["obs_id"]), f"{r['ra_pnt']:.3f}", f"{r['dec_pnt']:.3f}"]
            if args.cone:
                line.append(f"{offsets[r['obs_id']]:.3f}")
            line += [f"{r['livetime']:.1f}", f"{r['zenith']:.1f}", r["irf_class"], "yes" if r["bkg"] else "no"]
            out.append(line)
        widths = [max(len(row[i]) for row in out) for i in range(len(cols))]
        for row in out:
            print("  ".join(v.rjust(w) if i < len(cols) - 2 else v.ljust(w)
                            for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        sys.stdout.flush()
        for r in rows:
            if r["error"]:
                logging.getLogger("extspec.info").warning("%s", r["error"])
        sel = f", {len(rows)} within {args.cone[2]} deg of ({args.cone[0]}, {args.cone[1]}) {args.frame}" \
            if args.cone else ""
        return f"{len(store.obs_ids)} observations in {store.path}{sel}"

    return run_step("info", "info", step, quiet=True, verbose=args.verbose)


def _cmd_check(args) -> int:
    def step():
        import json

        from .errors import ConfigError, DataStoreError
        from .workflow.analyses import read_config_files
        from .workflow.cache import prepare_workflow
        from .workflow.basics import has_dl3
        from .workflow.settings import stage_config

        try:
            analysis = prepare_workflow(read_config_files(args.configs), cache_dir=None)
        except ConfigError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from None
        analyses = analysis["analyses"]
        if analysis["datastore_error"] and any(has_dl3(a["config"]) for a in analyses.values()):
            raise DataStoreError(analysis["datastore_error"])
        if args.print_settings:
            cfg = _pick_analysis(analyses, args.analysis)["config"]
            settings = stage_config(cfg, args.print_settings.replace("-", "_"))
            print(json.dumps(settings, indent=2, sort_keys=True))
            return "settings printed"
        for name, a in analyses.items():
            if args.analysis not in (None, name):
                continue
            ids, ext = a["obs_ids"], a.get("external") or []
            dl3 = f"{len(ids)} observations ({', '.join(map(str, ids))}) in {a['datastore']}" if ids else ""
            what = f"{' + '.join(args.configs)}" + (f" [{name}]" if len(analyses) > 1 else "")
            print(f"{what}: valid; " + "; ".join(x for x in (dl3, f"{len(ext)} external spectra" if ext else "") if x))
        for name, j in analysis.get("joint", {}).items():
            if args.analysis in (None, name):
                print(f"{' + '.join(args.configs)} [{name}]: valid; joint fit of {', '.join(j['analyses'])}")
        return f"{len(analyses)} analyses"

    return run_step("check", "check", step, quiet=True, verbose=args.verbose)


def _cmd_reduce(args) -> int:
    what = f"obs {args.obs_id}"

    def step():
        settings = _step_settings(args, "reduce")
        from .workflow.pipeline import reduce_observation

        reduce_observation(settings, args.datastore, args.obs_id, args.outdir, onoff_events=args.onoff_events)
        return f"reduced into {args.outdir}"

    return run_step("reduce", what, step, log_path=args.log, quiet=args.quiet, verbose=args.verbose,
                    prepare=_import_step("reduce"))


def _cmd_reduce_batch(args) -> int:
    what = f"batch of {len(args.obs_ids)} runs"

    def step():
        settings = _step_settings(args, "reduce")
        from .workflow.pipeline import reduce_batch

        failed = reduce_batch(settings, args.datastore, args.obs_ids, args.outroot, manifest=args.manifest,
                              onoff_events=args.onoff_events)
        done = len(args.obs_ids) - len(failed)
        return f"{done} runs reduced into {args.outroot}/<obs_id>" + (
            f"; failed (marked, see the errors above): obs {' '.join(map(str, failed))}" if failed else "")

    return run_step("reduce", what, step, log_path=args.log, quiet=args.quiet, verbose=args.verbose,
                    prepare=_import_step("reduce"))


def _aggregate(args, stage: str, command: str, what: str, call, expand: bool = False) -> int:
    """Run an aggregate step on ``args.obs``; batch manifests are handed on as they are (the
    steps read their arrays files, extspec.io.batch_arrays), or with ``expand`` replaced by
    their runs' folders."""
    def step():
        from .io.batch import expand_manifests

        settings = _step_settings(args, stage)
        runs = expand_manifests(args.obs)
        n = len(runs)
        call(settings, runs if expand else args.obs)
        return f"{n} spectra" if stage != "stack" else f"{n} observations"

    return run_step(command, what, step, log_path=args.log, quiet=args.quiet, verbose=args.verbose,
                    prepare=_import_step(stage))


def _cmd_stack(args) -> int:
    def call(settings, dirs):
        from .errors import ConfigError
        from .workflow.pipeline import read_stack_inputs, stack_counts, write_maps

        from .io.batch import is_manifest

        dirs = _obs_dirs(dirs)
        maps = (args.excess, args.significance, args.maps_png)
        if any(maps) and not all(maps):
            raise ConfigError("--excess, --significance and --maps-png go together")
        cubes = [d if is_manifest(d) else os.path.join(d, "cube.h5") for d in dirs]
        inputs = read_stack_inputs(settings, cubes, dirs)  # read once for both steps
        stack_counts(settings, cubes, dirs, args.fits, args.png, inputs=inputs)
        if all(maps):
            write_maps(settings, cubes, dirs, *maps, inputs=inputs)

    return _aggregate(args, "stack", "stack", "stack", call)


def _cmd_fit(args) -> int:
    def call(settings, dirs):
        from .workflow.pipeline import run_fit

        run_fit(settings, dirs, args.result, args.png)

    return _aggregate(args, "fit", "fit", "fit", call)


def _cmd_flux_points(args) -> int:
    def call(settings, dirs):
        from .workflow.pipeline import run_flux_points

        run_flux_points(settings, dirs, args.fit, args.ecsv, args.png)

    return _aggregate(args, "flux_points", "flux-points", "flux points", call)


def _cmd_light_curve(args) -> int:
    def call(settings, dirs):
        from .errors import ConfigError
        from .workflow.pipeline import run_light_curve

        if bool(args.spectra_ecsv) != bool(args.spectra_png):
            raise ConfigError("--spectra-ecsv and --spectra-png go together")
        if "light_curve" not in settings:
            raise ConfigError("light curve: the config has no 'light_curve' block")
        run_light_curve(settings, _obs_dirs(dirs), args.fit, args.ecsv, args.png, args.spectra_ecsv, args.spectra_png)

    # expanded: the light curve reads each run's onoff_events.h5 (a batch writes them too, beside
    # its arrays file, which does not hold them)
    return _aggregate(args, "light_curve", "light-curve", "light curve", call, expand=True)


_OPTIONAL_FILES = ("--excess", "--significance", "--maps-png", "--spectra-ecsv", "--spectra-png")


def _cmd_joint_fit(args) -> int:
    def step():
        from .errors import ConfigError
        from .workflow.joint_fit import run_joint_fit

        if args.settings is not None:
            from .workflow.settings import read_settings

            settings = read_settings(args.settings)
        else:
            from .workflow.analyses import read_config_files, validate_analyses
            from .workflow.joint_config import joint_settings, validate_joint

            try:
                raw = read_config_files(args.config)
                joint = validate_joint(raw, validate_analyses(raw, check_datastore=False))
            except ConfigError as exc:
                raise ConfigError(f"invalid configuration: {exc}") from None
            if args.joint not in joint:
                raise ConfigError(f"--joint {args.joint}: no such joint fit (the config has "
                                  f"{', '.join(joint) or 'none'})")
            settings = joint_settings(args.joint, joint[args.joint])
        spectra = {}
        for name, *paths in args.spectra:
            if not paths:
                raise ConfigError(f"--spectra {name}: give the analysis name, then its spectra")
            spectra.setdefault(name, []).extend(paths)
        run_joint_fit(settings, spectra, args.outdir)
        return f"{sum(map(len, spectra.values()))} spectra of {len(spectra)} analyses"

    return run_step("joint-fit", "joint fit", step, log_path=args.log, quiet=args.quiet, verbose=args.verbose,
                    prepare=_import_step("joint_fit"))


def _cmd_summary(args) -> int:
    def step():
        from .workflow.summary_step import no_result, write_summary

        products = [tuple(x.split(":", 1)) for x in args.product or ()]
        rows = write_summary(args.results_dir, args.analyses, args.ecsv, args.html, args.light_curve or (), products)
        failed = [r["analysis"] for r in rows if no_result(r["status"])]
        flagged = [f"{r['analysis']} ({r['status']})" for r in rows if r["status"] != "ok" and not no_result(r["status"])]
        return (f"{len(rows)} analyses" + (f", not finished: {', '.join(failed)}" if failed else "")
                + (f"; finished but not ok: {', '.join(flagged)}" if flagged else ""))

    return run_step("summary", "summary", step, log_path=args.log, quiet=args.quiet, verbose=args.verbose)


# ------------------------------------------------------------------------------ parser --


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line (plus the usage) and exit status 2, as argparse does, but without the
        multi-line usage block: ``extspec CMD: error: ...``."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser, step: bool = True) -> None:
    g = p.add_argument_group("output")
    if step:
        g.add_argument("--log", metavar="FILE", help="write the step's log to FILE (replaced)")
        g.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    g.add_argument("-v", "--verbose", action="store_true", help="log everything to stderr too")


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--analysis", metavar="NAME",
                   help="with --config: the analysis of a config with `analyses:` (needed when it has several)")
    g = p.add_argument_group("settings (one of)").add_mutually_exclusive_group(required=True)
    g.add_argument("--config", metavar="FILE", action="append",
                   help="analysis config (YAML), validated completely; repeat to merge several, later "
                        "ones winning (as snakemake --configfile over config/config.yaml)")
    g.add_argument("--settings", metavar="JSON",
                   help="the step's settings as JSON text or a JSON file, as the workflow passes them "
                        "(`extspec check CONFIG --print-settings STEP` prints them); not validated again")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="extspec", description="1D ON/OFF spectral analysis of IACT DL3 data: the steps "
                 "of the Snakemake workflow, one command each.", epilog=_EPILOG)
    from . import __version__
    from .workflow.settings import STAGE_KEYS

    ap.add_argument("--version", action="version", version=f"extspec {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    p = sub.add_parser("info", help="list the runs of a data store", epilog=_EPILOG,
                       description="List the observations of a GADF DL3 data store: pointing (ICRS), "
                       "livetime, zenith angle, IRF class (full-enclosure or point-like, from the "
                       "effective area's HDUCLAS3) and whether a background IRF exists.")
    p.add_argument("store", nargs="?", metavar="STORE",
                   help="data store directory (default: $GAMMAPY_DATA/hess-dl3-dr1, then "
                        "../shared/data/hess-dl3-dr1)")
    p.add_argument("--cone", nargs=3, type=float, metavar=("LON", "LAT", "RADIUS"),
                   help="only the runs pointing within RADIUS deg of (LON, LAT); adds their offset")
    p.add_argument("--frame", choices=("icrs", "galactic"), default="icrs", help="frame of --cone (icrs)")
    _common(p, step=False)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("check", help="validate an analysis config", epilog=_EPILOG,
                       description="Validate an analysis config as the workflow does before any job "
                       "(schema, regions, geometry, model, the data store and every selected obs id). "
                       "Exit 0 and one line on stdout when valid; exit 1 and one line on stderr naming "
                       "the key when not.")
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="YAML config file(s); several are merged, later ones winning")
    p.add_argument("--print-settings", metavar="STEP",
                   choices=[stage.replace("_", "-") for stage in STAGE_KEYS],
                   help="print the validated settings of STEP as JSON (for --settings)")
    p.add_argument("--analysis", metavar="NAME", help="only this analysis of a config with `analyses:`")
    _common(p, step=False)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("reduce", help="reduce one observation (cube.h5 + OGIP spectrum)", epilog=_EPILOG,
                       description="Reduce one observation: counts/exposure/dispersion cube (cube.h5) and "
                       "the ON/OFF spectrum (pha/bkg/arf/rmf.fits) in OUTDIR.")
    p.add_argument("obs_id", type=int, metavar="OBS_ID")
    p.add_argument("--outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--datastore", metavar="DIR",
                   help="data store (default: the config's `datastore`, else the usual search order)")
    onoff_help = "also write onoff_events.h5: the ON and OFF events with their times (for light curves)"
    p.add_argument("--onoff-events", action="store_true", help=onoff_help)
    _settings_args(p)
    _common(p)
    p.set_defaults(func=_cmd_reduce)

    p = sub.add_parser("reduce-batch", help="reduce several observations in one process", epilog=_EPILOG,
                       description="Reduce several observations, each into OUTROOT/<obs_id>/ with the files of "
                       "`extspec reduce`. A run that fails with bad input is logged as an error naming its obs id "
                       "and gets a one-line failure marker under its product names (the aggregate steps stop on "
                       "it); the others are reduced all the same, and the exit status is 0.")
    p.add_argument("obs_ids", type=int, nargs="+", metavar="OBS_ID")
    p.add_argument("--outroot", required=True, metavar="DIR", help="output root: one folder per obs id inside")
    p.add_argument("--manifest", metavar="FILE",
                   help="write the batch's manifest here last (obs ids and failed runs; the aggregate steps take "
                        "it in place of the runs' folders)")
    p.add_argument("--datastore", metavar="DIR",
                   help="data store (default: the config's `datastore`, else the usual search order)")
    p.add_argument("--onoff-events", action="store_true", help=onoff_help + "; a failed run's is a marker too")
    _settings_args(p)
    _common(p)
    p.set_defaults(func=_cmd_reduce_batch)

    obs_help = ("observation directories written by `extspec reduce` (or a file in each, e.g. its pha.fits), or "
                "batch manifests of `extspec reduce-batch` (their runs in ascending obs id)")
    spec_help = ("spectra: observation directories written by `extspec reduce`, batch manifests of `extspec "
                 "reduce-batch`, or PHA files of OGIP sets (e.g. other tools' spectra, whose header names their "
                 "BKG/ARF/RMF)")
    aggregates = [
        ("stack", _cmd_stack, "stacked counts image (FITS + PNG)",
         "Stack the observations' counts into an image with WCS and draw it with the ON, OFF and exclusion "
         "regions.", ("OBS_DIR", obs_help),
         [("--fits", "counts image (FITS)"), ("--png", "its picture"),
          ("--excess", "excess map (FITS; optional, with --significance and --maps-png)"),
          ("--significance", "significance map (FITS)"), ("--maps-png", "picture of both maps")]),
        ("fit", _cmd_fit, "joint WStat fit of the spectral model",
         "Fit the config's model jointly to the observations' spectra (forward-folded WStat); write "
         "result.yaml and the spectrum plot.", ("SPECTRUM", spec_help),
         [("--result", "fit result (YAML)"), ("--png", "counts vs prediction plot")]),
        ("flux-points", _cmd_flux_points, "flux points (GADF SED) from a fit",
         "Flux points from the best fit (result.yaml of `extspec fit`) and the SED plot with the model "
         "butterfly.", ("SPECTRUM", spec_help),
         [("--fit", "result.yaml of `extspec fit`"), ("--ecsv", "flux points (ECSV)"), ("--png", "SED plot")]),
        ("light-curve", _cmd_light_curve, "light curve (and spectra) per time bin",
         "Light curve per time bin and energy bin from the reduced observations: the joint fit's shape "
         "(result.yaml of `extspec fit`) frozen, its norm fitted per bin; the config's light_curve block "
         "sets the bins (time bins that cut runs read each directory's onoff_events.h5).", ("OBS_DIR", obs_help),
         [("--fit", "result.yaml of `extspec fit`"), ("--ecsv", "light curve (ECSV)"), ("--png", "its plot"),
          ("--spectra-ecsv", "fits per time bin (ECSV; optional, with --spectra-png)"),
          ("--spectra-png", "plot of the first shape parameter against time")]),
    ]
    for name, func, short, description, (metavar, inputs), files in aggregates:
        p = sub.add_parser(name, help=short, description=description, epilog=_EPILOG)
        p.add_argument("obs", nargs="+", metavar=metavar, help=inputs)
        for flag, what in files:
            p.add_argument(flag, required=flag not in _OPTIONAL_FILES, metavar="FILE",
                           help=what)
        _settings_args(p)
        _common(p)
        p.set_defaults(func=func)

    from .workflow.products import steps

    for step in steps():  # the registered products' steps (extspec.workflow.products)
        p = sub.add_parser(step.command, help=step.help, description=step.description, epilog=_EPILOG)
        step.arguments(p)
        if step.per_obs:
            p.add_argument("--datastore", metavar="DIR",
                           help="data store (default: the config's `datastore`, else the usual search order)")
        _settings_args(p)
        _common(p)
        p.set_defaults(func=functools.partial(_cmd_registered, step))

    p = sub.add_parser("joint-fit", help="one model fitted to the spectra of several analyses", epilog=_EPILOG,
                       description="Fit one model jointly to the spectra of several analyses (instruments), each "
                       "on its own binning, with optional per-analysis energy-scale and normalisation nuisance "
                       "parameters (config key `joint`); write result.yaml, combined and per-analysis flux points, "
                       "the SED coloured by analysis and each analysis's residuals into OUTDIR.")
    p.add_argument("--spectra", nargs="+", action="append", required=True, metavar="ITEM",
                   help="ANALYSIS SPECTRUM [SPECTRUM ...]: an analysis name, then its spectra (" + spec_help.split(": ")[1]
                   + "); repeat for each analysis")
    p.add_argument("--outdir", required=True, metavar="DIR", help="output folder (<results_dir>/<joint>/fit)")
    g = p.add_argument_group("settings (one of)").add_mutually_exclusive_group(required=True)
    g.add_argument("--config", metavar="FILE", action="append", help="config (YAML) with a `joint` block; repeat to "
                   "merge several (needs --joint)")
    g.add_argument("--settings", metavar="JSON", help="the joint fit's settings as JSON text or file, as the "
                   "workflow passes them")
    p.add_argument("--joint", metavar="NAME", help="with --config: the joint fit to run")
    _common(p)
    p.set_defaults(func=_cmd_joint_fit)

    p = sub.add_parser("summary", help="one row per analysis (ECSV + HTML)", epilog=_EPILOG,
                       description="Summarise analyses from their results: RESULTS_DIR/ANALYSIS/fit/result.yaml "
                       "and cumulative.ecsv give livetime, runs used and excluded, excess, significance, model, "
                       "best-fit parameters, flux above 1 TeV and status; an analysis without a fit result is "
                       "listed with the first error of its logs.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the results directory (config key results_dir)")
    p.add_argument("analyses", nargs="+", metavar="ANALYSIS", help="analysis names (subdirectories of RESULTS_DIR)")
    p.add_argument("--ecsv", required=True, metavar="FILE", help="summary table (ECSV)")
    p.add_argument("--html", required=True, metavar="FILE", help="summary page (HTML)")
    p.add_argument("--light-curve", action="append", metavar="ANALYSIS",
                   help="an analysis with a light curve: adds the column variability_p_value (repeat for several)")
    p.add_argument("--product", action="append", metavar="PRODUCT:ANALYSIS",
                   help="a registered product an analysis has: adds the product's summary columns (repeat)")
    _common(p)
    p.set_defaults(func=_cmd_summary)
    return ap


_SHARED_PARSER = None
_SHARED_PARSER_LOCK = threading.Lock()


def shared_parser() -> argparse.ArgumentParser:
    """The parser of ``build_parser``, built once per process (about 8 ms: argparse and gettext)
    for the jobs ``run_in_process`` runs one after the other or in Snakemake's threads at once.
    Read-only once built (``parse_args`` makes a new namespace per call; no argument has a
    mutable default), so the threads share it."""
    global _SHARED_PARSER
    parser = _SHARED_PARSER
    if parser is None:
        with _SHARED_PARSER_LOCK:
            if _SHARED_PARSER is None:
                _SHARED_PARSER = build_parser()
            parser = _SHARED_PARSER
    return parser


def main(argv=None) -> int:
    """Entry point of the ``extspec`` console script; returns the exit status."""
    from .workflow.process_exit import skip_final_collections

    skip_final_collections()  # a job's process ends without CPython's final collections
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
