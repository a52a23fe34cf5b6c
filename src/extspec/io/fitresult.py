"""The fit result file, ``fit/result.yaml``: the one writer and reader of its format.

:func:`fit_result_dict` turns a :class:`~extspec.fit.FitResult` into the plain dict written
to the file, :func:`fit_result_from_dict` rebuilds the result from it;
:func:`write_fit_result` / :func:`read_fit_result` do the YAML (atomically, one-line
:class:`~extspec.errors.FormatError` for a bad file).
"""

from __future__ import annotations

import platform
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
        return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except OSError as exc:
        raise FormatError(f"fit result {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError:
        raise FormatError(f"fit result {path}: not valid YAML") from None


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
