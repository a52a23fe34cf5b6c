"""The small config helpers the config modules share (the bottom of the config layer).

:func:`has_dl3` (does a config reduce DL3 runs), :func:`external_spectra` (the files of
``external_spectra``), :func:`region_center_tuple`, :func:`check_increasing` and
:func:`check_model` (a ``model`` block), :func:`runs_have` (message wording).  Every other
config module may import this one; it imports none of them (``tests/test_architecture.py``).

This module imports only the standard library at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

__all__ = ["has_dl3", "external_spectra", "region_center_tuple", "check_increasing", "check_model", "runs_have", "runs_of_irf_class", "model_spatial"]


def has_dl3(cfg: dict) -> bool:
    """Whether the config selects DL3 observations to reduce (``obs_ids`` or ``obs_cone``).

    Without them the analysis consists only of ``external_spectra``: no data store, ON
    region or reduction is needed.
    """
    return bool(cfg.get("obs_ids") or cfg.get("obs_cone"))


def external_spectra(patterns, base: str | os.PathLike | None = None) -> list[str]:
    """The PHA files of ``external_spectra``: each entry a path or a glob pattern.

    Relative paths are taken from ``base`` (default: the working directory) and returned
    as given (relative); matches of a pattern are sorted, and a file matched twice is kept
    once, at its first place.  A pattern matching no file raises ConfigError naming it.
    """
    import glob

    base = Path(base) if base is not None else Path.cwd()
    out = []
    for i, pat in enumerate(patterns or []):
        pat = os.path.expandvars(os.path.expanduser(str(pat)))
        full = pat if os.path.isabs(pat) else str(base / pat)
        if glob.has_magic(pat):
            hits = sorted(glob.glob(full))
            names = [h if os.path.isabs(pat) else os.path.relpath(h, base) for h in hits]
        else:
            names = [pat] if os.path.isfile(full) else []
        names = [n for n in names if os.path.isfile(n if os.path.isabs(n) else base / n)]
        if not names:
            raise ConfigError(f"config key 'external_spectra[{i}]': no file matches {pat!r}")
        out.extend(n for n in names if n not in out)
    return out


def region_center_tuple(region) -> tuple[float, float, str]:
    """(lon, lat, frame) of a parsed region's centre, in the region's frame."""
    from ..skyregions import region_center

    c = region_center(region)
    return c.lon, c.lat, c.frame


def check_increasing(values, key):
    """ConfigError naming ``key`` unless ``values`` (a list or None) strictly increase."""
    if values is not None and any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"config key '{key}': values must increase, got {values}")


def check_model(block, key, allow_negative_amplitude):
    """A ``model`` block (or a model type name) at ``key``: known type and parameter names, bounds
    around the values, possible start values, and the ``ebl`` block (:func:`extspec.ebl.check_ebl_block`)."""
    from ..models import check_param_names, get_model
    from ..start_values import check_start_values

    if isinstance(block, str):
        block = {"type": block, "parameters": {}}
    if block.get("spatial") and key != "model":
        raise ConfigError(f"config key '{key}.spatial': a source morphology belongs in the analysis's own "
                          "model.spatial (it is part of each run's exposure), not here")
    try:
        m = get_model(block["type"])
    except ConfigError as exc:
        raise ConfigError(f"config key '{key}.type': {exc}") from None
    check_param_names(m, block.get("parameters", {}), f"{key}.parameters")
    ebl = block.get("ebl") or {}
    for where, params in ((f"{key}.parameters", block.get("parameters", {})),
                          (f"{key}.ebl", {k: ebl[k] for k in ("redshift", "alpha_norm") if k in ebl})):
        for name, p in params.items():
            if isinstance(p, dict):
                lo, hi, v = p.get("min"), p.get("max"), p["value"]
                if lo is not None and hi is not None and not lo < hi:
                    raise ConfigError(f"config key '{where}.{name}': min must be below max")
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    raise ConfigError(f"config key '{where}.{name}': value {v} outside [min, max]")
    check_start_values(block, key, allow_negative_amplitude)  # impossible start values (issue 19)
    if ebl:
        from ..ebl import check_ebl_block
        from ..errors import DataStoreError, FormatError
        from ..io.ebl_table import read_ebl_table

        try:
            table = read_ebl_table(ebl["table"])
        except (FormatError, DataStoreError) as exc:  # DataStoreError: a named table not fetched
            raise ConfigError(f"config key '{key}.ebl.table': {exc}") from None
        check_ebl_block({**ebl, "table": table}, f"{key}.ebl")


def runs_have(obs_ids) -> str:
    """``20326 has`` / ``1, 2 have`` / the first five and ``... have``, for messages naming runs."""
    few = ", ".join(map(str, obs_ids[:5])) + (" ..." if len(obs_ids) > 5 else "")
    return f"{few} {'has' if len(obs_ids) == 1 else 'have'}"


def runs_of_irf_class(store, obs_ids, irf_class: str) -> list[int]:
    """The obs ids of ``obs_ids`` whose IRFs in ``store`` are of ``irf_class`` (full-enclosure or
    point-like, :mod:`extspec.irf`); a run whose header cannot be read is left to its reduction
    job to report."""
    from ..errors import DataStoreError

    out = []
    for o in obs_ids:
        try:
            if store.irf_class(int(o)) == irf_class:
                out.append(int(o))
        except DataStoreError:
            continue
    return out


def model_spatial(cfg: dict) -> dict:
    """The config's ``model.spatial`` block (the source morphology), ``{}`` when absent."""
    model = cfg.get("model")
    return (model.get("spatial") or {}) if isinstance(model, dict) else {}
