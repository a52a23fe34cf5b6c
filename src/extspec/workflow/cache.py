"""What the Snakefile needs at parse time, validated once and cached on disk.

:func:`prepare_workflow` validates every analysis (:mod:`extspec.workflow.analyses`), runs the
data-store checks once (:func:`~extspec.workflow.store_checks.check_selection`), lists each
observation's DL3 files, and stores the result as JSON under ``.snakemake/extspec/``, keyed by
the config, the schema, the package's sources and the data-store index files, so that a
no-op ``snakemake`` run imports neither astropy nor regions.

This module imports only the standard library at import time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

from ..errors import ConfigError, DataStoreError
from .analyses import GLOBAL_KEYS, _in_analysis, _override, analysis_configs, validate_analyses
from .basics import external_spectra, has_dl3, model_spatial
from .coerce import coerce_values
from .schema import SCHEMA_PATH
from .statcache import file_content, file_stat, write_cache
from .store_checks import check_selection

__all__ = ["prepare_workflow", "check_output_dir", "setting_file_digests"]


_CACHE_VERSION = 4


def _cache_key(raw: dict, schema_path: Path | None) -> str:
    from ..io.datastore import _INDEX_NAMES, candidate_datastore_paths

    from .. import code_identity

    parts = {
        "v": _CACHE_VERSION,
        "config": raw,
        "cwd": os.getcwd(),
        "schema": file_stat(Path(schema_path) if schema_path else SCHEMA_PATH),
        # the package's sources by content (validation reaches into many modules)
        "code": code_identity(),
    }
    try:
        analyses = list(analysis_configs(raw).values())
    except ConfigError:
        analyses = [raw]
    cands = []
    for value in dict.fromkeys([raw.get("datastore")] + [a.get("datastore") for a in analyses]):
        try:
            cands += candidate_datastore_paths(value)
        except Exception:
            pass
    # the index files by content: an index rewritten with the same size and an old mtime (a copy
    # or an unpacked tarball keeps its mtime) must not bring back a run that has left it
    parts["store"] = [file_content(p / n) for p in cands for names in _INDEX_NAMES.values() for n in names]
    ext = []
    for a in analyses:
        try:
            ext += external_spectra(a.get("external_spectra") or [])
        except ConfigError:
            pass
    parts["external"] = [file_stat(Path(p)) for p in ext]  # their headers name the sibling files
    regions = {}
    for a in analyses:
        try:  # by content, not mtime: region files are small, and a copied file keeps its mtime
            regions.update(setting_file_digests(a))
        except ConfigError:
            regions.update({str(f): file_stat(f) for f in _setting_files(a)})
    parts["regions"] = regions
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _setting_files(cfg: dict) -> list[Path]:
    """The files that settings point to (``.reg`` ON/exclusion regions, the template of
    ``model.spatial``), in config order."""
    from ..skyregions import region_file

    entries = [cfg.get("on_region")] + list(cfg.get("exclusion_regions") or [])
    files = [f for f in (region_file(e) for e in entries if isinstance(e, str)) if f is not None]
    spatial = model_spatial(cfg)
    if isinstance(spatial, dict) and spatial.get("file"):
        files.append(Path(spatial["file"]))
    return files


def setting_file_digests(cfg: dict) -> dict:
    """``{path: sha256}`` of every file a setting points to (:func:`_setting_files`).

    The workflow puts them into the rules' ``params``, so editing a region file reruns the
    reductions that read it, exactly as editing the setting itself would.
    """
    out = {}
    for f in _setting_files(cfg):
        try:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError as exc:
            what = "model.spatial.file" if str(f) == str(Path(model_spatial(cfg).get("file") or "")) else "region file"
            raise ConfigError(f"{what} {f}: cannot read it ({exc.strerror})") from None
    return out


def check_output_dir(cfg: dict) -> None:
    """``<results_dir>/<name>`` can be written: its nearest existing folder takes a probe file.

    Raises ConfigError naming ``results_dir`` and the folder (read-only, not a folder, no
    permission) instead of letting every job fail with a traceback.  Creates nothing.
    """
    import tempfile

    target = Path(cfg["results_dir"]) / cfg["name"]
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"config key 'results_dir': {probe} is not a folder, cannot write {target} there")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".extspec-write-test"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"config key 'results_dir': cannot write into {probe} ({exc.strerror or exc}); "
            f"outputs go to {target}"
        ) from None


def prepare_workflow(raw: dict, schema=None, cache_dir: str | os.PathLike | None = ".snakemake/extspec") -> dict:
    """Everything the Snakefile needs at parse time, validated and cached.

    Returns a dict with

    ``config``
        the keys shared by every analysis (``GLOBAL_KEYS`` but ``analyses``), defaults
        filled in;
    ``analyses``
        ``{name: {"config": ..., "obs_ids": [...]}}``: each analysis's validated config with
        defaults filled in and its selected observations (list of int), in the config's
        order (one entry, named by ``name``, for a config without ``analyses``);
    ``datastore``
        the directory of the top-level data store (str), or None when it is missing or no
        analysis uses it;
    ``datastore_error``
        the one-line message saying where the top-level store was looked for and how to get
        it (None when found) -- the workflow reports it only when a job needs the data, so
        that ``snakemake download`` still works without a store;
    ``joint``
        ``{joint name: block with defaults}`` of the ``joint`` key
        (``extspec.workflow.joint_config.validate_joint``);
    ``code``
        ``extspec.code_identity()``, for the rules' ``params`` (a changed library reruns the
        jobs; ``--rerun-triggers mtime`` opts out).

    Each analysis entry also has ``datastore`` (its data store directory: the top-level one
    or the entry's own ``datastore``; None without DL3 runs), ``obs_files`` (``{str(obs_id):
    [file, ...]}``, the DL3 files each selected observation is read from; ``optional_files``:
    those of them a run can do without, its background IRF), ``external``: one ``{"pha", "files", "obs_id"}`` per set of
    its ``external_spectra`` (``files``: its PHA, BKG, ARF and RMF paths, the inputs of the
    rules that read it), and ``provenance``: ``{"code": ..., "files":
    setting_file_digests(config)}``, what its products depend on beyond the config values.
    Analyses of only external spectra (no ``obs_ids``/``obs_cone``) need no data store; a
    config of only such analyses does not look for one.

    The result is stored as JSON in ``cache_dir`` under a key made of the raw config,
    the working directory, the schema, this package's sources and the size and mtime of the
    data-store index files; a later call with the same key reads it back without importing
    jsonschema, astropy or regions.  The output folder (:func:`check_output_dir`) is checked
    on every call, cached or not.  Raises ConfigError (one line) for an invalid config.
    """
    from .dl3files import check_dl3_files

    out = _prepare_workflow(raw, schema, cache_dir)
    for a in out["analyses"].values():
        check_output_dir(a["config"])
    check_dl3_files(out)
    return out


def _prepare_workflow(raw: dict, schema=None, cache_dir: str | os.PathLike | None = ".snakemake/extspec") -> dict:
    """The cached part of :func:`prepare_workflow`."""
    raw = coerce_values(copy.deepcopy(dict(raw)))
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"config-{_cache_key(raw, schema)}.json"
        try:
            return json.loads(cache_file.read_text())
        except (OSError, ValueError):
            pass
    cfgs = validate_analyses(raw, check_datastore=False, schema=schema)
    from .. import code_identity

    code = code_identity()
    first = next(iter(cfgs.values()))
    shared = {k: first[k] for k in GLOBAL_KEYS if k in first}
    shared["datastore"] = raw.get("datastore")  # the top-level store (an analysis may name its own)
    from .joint_config import check_joint_data, validate_joint

    joint = validate_joint(raw, cfgs, schema)
    out = {"config": shared, "analyses": {}, "datastore": None, "datastore_error": None, "joint": joint,
           "code": code}
    for name, cfg in cfgs.items():
        try:
            external = _external_sets(cfg)
            from .preflight import check_external_binning

            check_external_binning(cfg, external)
            digests = setting_file_digests(cfg)
        except ConfigError as exc:
            raise _in_analysis(exc, name, _override(raw, name)) from None
        out["analyses"][name] = {"config": cfg, "obs_ids": [], "external": external, "datastore": None,
                                 "obs_files": {}, "optional_files": {}, "provenance": {"code": code, "files": digests}}
    if not any(has_dl3(c) for c in cfgs.values()):
        check_joint_data(joint, out["analyses"])
        write_cache(cache_file, out)
        return out
    from ..io.datastore import open_datastore, resolve_datastore_path

    stores = {}  # config value of `datastore` -> (directory, DataStore)
    for name, cfg in cfgs.items():
        if not has_dl3(cfg) or cfg["datastore"] in stores:
            continue
        try:
            try:
                root = resolve_datastore_path(cfg["datastore"])
            except DataStoreError as exc:
                if cfg["datastore"] == shared["datastore"]:  # reported when needed, or fetched
                    out["datastore_error"] = str(exc)
                    return out
                raise ConfigError(f"config key 'datastore': {exc}") from None
            try:
                stores[cfg["datastore"]] = (root, open_datastore(root))
            except DataStoreError as exc:
                raise ConfigError(f"config key 'datastore': {exc}") from None
        except ConfigError as exc:
            raise _in_analysis(exc, name, _override(raw, name)) from None
    if shared["datastore"] in stores:
        out["datastore"] = str(stores[shared["datastore"]][0])
    for name, cfg in cfgs.items():
        if not has_dl3(cfg):
            continue
        root, store = stores[cfg["datastore"]]
        files, optional = out["analyses"][name]["obs_files"], out["analyses"][name]["optional_files"]
        out["analyses"][name]["datastore"] = str(root)
        try:
            obs = check_selection(cfg, store, cache_dir=cache_dir)
            dup = set(obs) & {e["obs_id"] for e in out["analyses"][name]["external"]}
            if dup:
                e = next(e for e in out["analyses"][name]["external"] if e["obs_id"] in dup)
                raise ConfigError(f"config key 'external_spectra': {e['pha']} has obs id {e['obs_id']}, "
                                  "also selected by obs_ids/obs_cone")
        except ConfigError as exc:
            raise _in_analysis(exc, name, _override(raw, name)) from None
        out["analyses"][name]["obs_ids"] = obs
        for o in obs:
            try:
                fl = [str(p) for p in store.obs_files(o)]
                for extra in ("bkg", "rad_max"):
                    if store.has_hdu(o, extra):
                        b = str(store.hdu_location(o, extra)[0])
                        if b not in fl:
                            fl.append(b)
                            if extra == "bkg":  # a run can do without (extspec.workflow.dl3files)
                                optional.setdefault(str(o), []).append(b)
            except DataStoreError as exc:
                raise ConfigError(f"config key 'obs_ids': {exc}") from None
            files[str(o)] = fl
    check_joint_data(joint, out["analyses"])
    write_cache(cache_file, out)
    return out


def _external_sets(cfg: dict) -> list[dict]:
    """``[{"pha", "files", "obs_id"}]`` of each ``external_spectra`` set (files: PHA, BKG, ARF, RMF)."""
    from ..errors import FormatError
    from ..io.ogip import spectrum_files

    out, seen = [], {}
    for pha in external_spectra(cfg.get("external_spectra") or []):
        try:
            obs_id, files = spectrum_files(pha)
        except FormatError as exc:
            raise ConfigError(f"config key 'external_spectra': {exc}") from None
        if obs_id in seen:
            raise ConfigError(f"config key 'external_spectra': {pha} and {seen[obs_id]} have the same obs id "
                              f"{obs_id}")
        seen[obs_id] = pha
        out.append({"pha": str(pha), "files": [str(f) for f in files], "obs_id": int(obs_id)})
    return out
