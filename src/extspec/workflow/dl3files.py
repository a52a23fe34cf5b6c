"""The DL3 files of the selected runs, checked on every workflow start (cached or not).

:func:`extspec.workflow.cache.prepare_workflow` lists each selected observation's files from
the data store's hdu index (the inputs of its reduction job) and caches that list; a file
deleted or moved since then would otherwise surface as Snakemake's MissingInputException.
:func:`check_dl3_files` stats them (no FITS reading): a missing file that the reduction needs
is one line naming the run and the file; a missing *background* IRF is dropped from the job's
inputs (a reflected-regions spectrum does not need it; the reduction says what it left out).
Standard library only.
"""

from __future__ import annotations

import os

from ..errors import DataStoreError

__all__ = ["check_dl3_files"]


def check_dl3_files(prepared: dict) -> None:
    """Check (and trim) each analysis's ``obs_files`` of ``prepared`` in place; see the module
    docstring.

    An analysis's ``optional_files`` (``{obs: [file, ...]}``) names the files a run can do
    without.  Raises DataStoreError for the first missing required file.
    """
    for analysis in prepared.get("analyses", {}).values():
        optional = analysis.get("optional_files") or {}
        for obs, files in (analysis.get("obs_files") or {}).items():
            kept = []
            for f in files:
                if os.path.exists(f):
                    kept.append(f)
                elif f not in optional.get(obs, ()):
                    raise DataStoreError(
                        f"obs {obs}: DL3 file {f} does not exist (listed in the hdu index of "
                        f"{analysis['datastore']}); restore it, or drop obs {obs} from the selection"
                    )
            files[:] = kept
