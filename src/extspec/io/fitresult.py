"""The fit result file, ``fit/result.yaml``: the one writer and reader of its format.

:func:`fit_result_dict` turns a :class:`~extspec.fit.FitResult` into the plain dict written
to the file, :func:`fit_result_from_dict` rebuilds the result from it;
:func:`write_fit_result` / :func:`read_fit_result` do the YAML (atomically, one-line
:class:`~extspec.errors.FormatError` for a bad file).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy as np

from ..fit import FitResult, Parameter
from ..quality import Verdict

__all__ = ["fit_result_dict", "fit_result_from_dict", "write_fit_result", "read_fit_result", "read_result_yaml", "fit_result_from_yaml",
           "software_versions"]


def fit_result_dict(result: FitResult) -> dict:
    """Plain-dict form of ``result`` for ``result.yaml``.

    A failed fit is reported as failed: free parameters get ``value``/``error`` null and
    the covariance is null, so nobody mistakes the last MIGRAD position for a result.
    ``status`` and ``quality`` are the quality gate's verdict (:mod:`extspec.quality`);
    ``upper_limit`` the flux upper limit of a ``not_detected`` fit.
    """
    names = [p.name for p in result.parameters]
    params = {p.name: p.as_dict() for p in result.parameters}
    if not result.success:
        for p in result.parameters:
            if not p.frozen:
                params[p.name].update({"value": None, "error": None})
    model = {"type": result.model_type, "parameters": params}
    if result.ebl:  # the intrinsic parameters, then the EBL block with its own two
        from ..ebl import EBL_PARAMS, ebl_record

        model["ebl"] = {**ebl_record(result.ebl), **{k: params.pop(k) for k in EBL_PARAMS}}
    return {
        "model": model,
        "success": bool(result.success),
        "message": result.message,
        "total_stat": float(result.total_stat),
        "stat_type": "wstat",
        "n_datasets": len(result.obs_ids),
        "obs_ids": [int(o) for o in result.obs_ids],
        "excluded": [{"obs_id": int(k), "reason": v} for k, v in result.excluded.items()],
        "edm": float(result.edm),
        "nfcn": int(result.nfcn),
        "covariance_method": result.covariance_method,
        "covariance": {"names": names, "matrix": [[float(v) for v in row] for row in result.covariance]
                       if result.success else None},
        "energy_range": {"min": float(result.energy_range[0]), "max": float(result.energy_range[1]), "unit": "TeV"},
        "stat_per_dataset": {int(k): float(v) for k, v in result.stat_per_dataset.items()},
        "comparisons": result.comparisons,
        "goodness_of_fit": result.goodness_of_fit,
        "status": result.status,
        "quality": result.quality.as_dict() if result.quality is not None else None,
        **({"upper_limit": result.upper_limit} if result.upper_limit else {}),
        "versions": software_versions(),
    }


def fit_result_from_dict(d: dict) -> FitResult:
    """The result of a :func:`fit_result_dict` dict (null values of a failed fit become NaN)."""
    nan = float("nan")
    params = []
    ebl = d["model"].get("ebl")
    from ..ebl import EBL_PARAMS

    entries = {**d["model"]["parameters"], **{k: ebl[k] for k in EBL_PARAMS}} if ebl else d["model"]["parameters"]
    for k, v in entries.items():
        p = Parameter(name=k, value=nan if v.get("value") is None else float(v["value"]),
                      unit=v.get("unit", ""), frozen=bool(v.get("frozen", False)),
                      min=v.get("min"), max=v.get("max"),
                      error=nan if v.get("error") is None else float(v["error"]))
        if "errn" in v and "errp" in v:
            p.minos = (float(v["errn"]), float(v["errp"]))
        params.append(p)
    cov = (d.get("covariance") or {}).get("matrix")
    er = d.get("energy_range") or {}
    return FitResult(
        model_type=d["model"]["type"],
        success=bool(d["success"]),
        message=d.get("message", ""),
        total_stat=float(d["total_stat"]),
        parameters=params,
        covariance=np.full((len(params),) * 2, nan) if cov is None else np.array(cov, float),
        edm=float(d.get("edm", 0.0)),
        nfcn=int(d.get("nfcn", 0)),
        obs_ids=[int(o) for o in d.get("obs_ids", [])],
        excluded={int(e["obs_id"]): e["reason"] for e in d.get("excluded", [])},
        energy_range=(float(er.get("min", nan)), float(er.get("max", nan))),
        stat_per_dataset={int(k): float(v) for k, v in (d.get("stat_per_dataset") or {}).items()},
        covariance_method=d.get("covariance_method", "hesse"),
        comparisons=list(d.get("comparisons") or []),
        ebl=_with_table({k: v for k, v in ebl.items() if k not in EBL_PARAMS}) if ebl else None,
        goodness_of_fit=dict(d.get("goodness_of_fit") or {}),
        quality=Verdict.from_dict(d.get("quality")),
        upper_limit=d.get("upper_limit"),
    )


def write_fit_result(result: FitResult, path, **extra) -> None:
    """Write ``result.yaml`` atomically: :func:`fit_result_dict` plus ``extra`` keys."""
    import yaml

    from .atomic import write_atomic

    doc = {**fit_result_dict(result), **extra}
    # libyaml's emitter (5x faster: a result of 2,000 runs lists each run three times) writes
    # the same text as yaml.safe_dump for printable-ASCII strings; it folds the escaped
    # double-quoted ones (non-ASCII, control characters) elsewhere, so those take PyYAML's
    dumper = yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") and _printable_ascii(doc) else yaml.SafeDumper
    write_atomic(path, yaml.dump(doc, Dumper=dumper, sort_keys=False))


def _printable_ascii(obj) -> bool:
    """Every string (key or value) in ``obj`` is printable ASCII (0x20-0x7e)."""
    if isinstance(obj, str):
        return obj.isascii() and obj.isprintable()
    if isinstance(obj, dict):
        return all(_printable_ascii(k) and _printable_ascii(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return all(_printable_ascii(v) for v in obj)
    return True


def _with_table(ebl: dict) -> dict:
    """A result's ``ebl`` with its table read (:func:`extspec.io.ebl_table.read_ebl_table`), the
    table the absorbed model is handed; a table that is not there (or not readable) stays a
    name, and whoever needs it is told so (:func:`extspec.ebl.load_absorption`).  Never fetches."""
    from ..errors import ExtspecError
    from .ebl_table import read_ebl_table, resolve_table

    try:
        if resolve_table(ebl["table"], fetch=False).is_file():
            return {**ebl, "table": read_ebl_table(ebl["table"])}
    except (ExtspecError, TypeError, KeyError):
        pass
    return ebl


def read_result_yaml(path) -> dict:
    """The mapping of a ``result.yaml`` (raises FormatError naming the file when it cannot be
    read or is not YAML)."""
    import yaml

    from ..errors import FormatError

    try:
        # libyaml's parser when present (the safe loader's constructors, 7x faster: a result of
        # 2,000 runs lists each run three times); not its emitter, which folds long lines otherwise
        return load_result_text(Path(path).read_text())
    except OSError as exc:
        raise FormatError(f"fit result {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError:
        raise FormatError(f"fit result {path}: not valid YAML") from None


_RUN_LINE = re.compile(r"( *)(?:- |(-?[1-9][0-9]*|0): )(.*)")
_INT = re.compile(r"-?(?:[1-9][0-9]*|0)")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]*(?:e[-+][0-9]+)?")
_WORD = re.compile(r"[a-z][a-z_]*")
_NOT_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})  # YAML 1.1 booleans, null
MIN_RUN_LINES = 32
"""Runs of at least this many lines of one scalar each are read by :func:`load_result_text` itself."""
_MARK = "__extspec_run_{}__"


def _scalar(token: str):
    """The value PyYAML's safe loader gives a plain scalar of one of the forms the writer emits
    for per-run values (decimal int, float with a dot, lower-case word); KeyError otherwise."""
    if _INT.fullmatch(token):
        return int(token)
    if _FLOAT.fullmatch(token):
        return float(token)
    if _WORD.fullmatch(token) and token not in _NOT_WORDS:
        return token
    raise KeyError(token)


def load_result_text(text: str):
    """The object of a ``result.yaml``'s text, as ``yaml.load`` with the safe loader gives it.

    A result of 2,000 runs lists each run three or four times (``obs_ids``,
    ``stat_per_dataset``, ``background.runs``, ...), one line each; PyYAML's resolver, in
    Python, spends ~0.05 s on them (more under the GIL of Snakemake's threads).  Runs of at
    least :data:`MIN_RUN_LINES` lines at one indentation, each ``- <scalar>`` or
    ``<int>: <scalar>`` where the scalar is a decimal int, a float with a dot or a lower-case
    word, are read here (each line is what the safe loader makes of it); the rest, with one
    placeholder line per run, by libyaml's parser.  Text of any other form goes to the parser
    whole (``tests/test_stats_fit.py`` checks both against ``yaml.safe_load``).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    lines = text.split("\n")
    kept, runs, i = [], [], 0
    while i < len(lines):
        m = _RUN_LINE.fullmatch(lines[i])
        j = i + 1
        if m:
            indent, is_map = m.group(1), m.group(2) is not None
            while j < len(lines):
                n = _RUN_LINE.fullmatch(lines[j])
                if not n or n.group(1) != indent or (n.group(2) is not None) != is_map:
                    break
                j += 1
        if m and j - i >= MIN_RUN_LINES:
            try:
                values = []
                for line in lines[i:j]:
                    n = _RUN_LINE.fullmatch(line)
                    values.append((int(n.group(2)), _scalar(n.group(3))) if is_map else _scalar(n.group(3)))
            except KeyError:
                kept += lines[i:j]
            else:
                mark = _MARK.format(len(runs))
                kept.append(f"{indent}{mark}: 0" if is_map else f"{indent}- {mark}")
                runs.append(dict(values) if is_map else values)
        else:
            kept += lines[i:j]
        i = j
    if not runs:
        return yaml.load(text, Loader=loader)  # noqa: S506 (the safe loader)
    marks = {_MARK.format(k): run for k, run in enumerate(runs)}
    return _splice(yaml.load("\n".join(kept), Loader=loader), marks)  # noqa: S506 (the safe loader)


def _splice(obj, marks: dict):
    """``obj`` with each placeholder of :func:`load_result_text` replaced by its run's values
    (in a mapping its entries, in a list its items, in place)."""
    if isinstance(obj, dict):
        if any(isinstance(k, str) and k in marks for k in obj):
            out = {}
            for k, v in obj.items():
                if isinstance(k, str) and k in marks:
                    out.update(marks[k])
                else:
                    out[k] = _splice(v, marks)
            return out
        return {k: _splice(v, marks) for k, v in obj.items()}
    if isinstance(obj, list):
        out = []
        for v in obj:
            if isinstance(v, str) and v in marks:
                out += marks[v]
            else:
                out.append(_splice(v, marks))
        return out
    return obj


def fit_result_from_yaml(d, path) -> FitResult:
    """:func:`fit_result_from_dict` of the mapping read from ``path`` (raises FormatError naming
    the file when it is not a result.yaml of the fit)."""
    from ..errors import FormatError

    try:
        return fit_result_from_dict(d)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise FormatError(f"fit result {path}: not a result.yaml of the fit ({type(exc).__name__}: {exc})") from None


def read_fit_result(path) -> FitResult:
    """A :class:`~extspec.fit.FitResult` from a ``result.yaml`` written by :func:`write_fit_result`."""
    return fit_result_from_yaml(read_result_yaml(path), path)


def _package_version(name: str) -> str:
    """Version of an installed package without importing it when it is not loaded yet
    (``import astropy`` alone costs ~0.2 s in a job that otherwise never needs it)."""
    import sys

    mod = sys.modules.get(name)
    if getattr(mod, "__version__", None):
        return str(mod.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def software_versions() -> dict:
    from .. import code_identity

    return {"extspec": code_identity(), "python": platform.python_version(), "numpy": np.__version__,
            "astropy": _package_version("astropy"), "iminuit": _package_version("iminuit")}
