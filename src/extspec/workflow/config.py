"""Analysis configuration: the public names of the config modules, in one place.

The work is split by job (each module imports only the standard library at import time):

* :mod:`.schema` -- the packaged JSON schema (the only place defaults are written), reading
  a config against it (:func:`load_config`) and its one-line error wording;
* ``.coerce`` -- numbers and booleans that arrive as text;
* ``.basics`` -- the helpers every config module shares (:func:`has_dl3`, ...), and
  ``.statcache`` -- the on-disk caches' file identities and writer (the bottom of the layer);
* ``.checks`` -- the science checks a schema cannot express (:func:`validate_config`);
* ``.store_checks`` -- the data-store checks (:func:`check_selection`);
* ``.analyses`` -- ``--configfile`` overlays and the entries of ``analyses``;
* :mod:`.settings` -- what each workflow step reads of the config (:data:`~extspec.workflow.settings.STAGE_KEYS`) and the
  builders of the library's typed settings (the only code below the command line that
  reads config keys);
* ``.cache`` -- :func:`prepare_workflow`, what the Snakefile calls at parse time, cached
  (the one orchestrator on top: it calls the others, none of them calls it).

Every problem raises :class:`~extspec.errors.ConfigError` with a one-line message naming
the config key.
"""

from __future__ import annotations

from .analyses import (GLOBAL_KEYS, RESERVED_NAMES, analysis_configs, apply_overlay, merge_configs,
                       read_config_files, validate_analyses)
from .basics import external_spectra, has_dl3
from .cache import check_output_dir, prepare_workflow, setting_file_digests
from .checks import check_regions, validate_config
from .schema import SCHEMA_PATH, load_config, read_config_file, read_schema, schema_defaults
from .settings import STAGE_KEYS, read_settings, setting, settings_json, stage_config
from .store_checks import check_irf_needs, check_pointings, check_selection, selected_obs_ids

__all__ = [
    "SCHEMA_PATH",
    "STAGE_KEYS",
    "GLOBAL_KEYS",
    "RESERVED_NAMES",
    "load_config",
    "read_config_file",
    "merge_configs",
    "read_config_files",
    "validate_config",
    "check_regions",
    "selected_obs_ids",
    "check_selection",
    "check_irf_needs",
    "has_dl3",
    "external_spectra",
    "stage_config",
    "settings_json",
    "read_settings",
    "analysis_configs",
    "validate_analyses",
    "prepare_workflow",
    "apply_overlay",
    "check_pointings",
    "check_output_dir",
    "setting_file_digests",
    "schema_defaults",
    "setting",
    "read_schema",
]
