"""extspec: 1D ON/OFF spectral analysis of (extended) gamma-ray sources from IACT DL3 data.

Data flows one way through the modules, one per analysis stage::

    io.datastore -> irf -> geometry/sky -> cube -> skyregions/reflected -> spectrum
                 -> safe_mask -> models/stats -> fit -> fluxpoints/stacking/maps -> plots/summary

File formats live in :mod:`extspec.io`.  The package has no Snakemake imports; the workflow
in ``workflow/`` runs the command line (:mod:`extspec.cli`), which calls the step functions
of :mod:`extspec.workflow.pipeline`.
"""

__version__ = "0.1.0"


def code_identity() -> str:
    """``"extspec <version>+src.<hash>"``: the version and a SHA-256 (12 hex digits) of the
    package's files (every ``.py`` and data file under ``extspec/``, by relative path and
    content), so that results made by different code can be told apart even when the version
    number did not change.  Computed once per process (about a millisecond)."""
    global _CODE_IDENTITY
    if _CODE_IDENTITY is None:
        import hashlib
        import os

        root = os.path.dirname(os.path.abspath(__file__))
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            rel = os.path.relpath(d, root).replace(os.sep, "/")
            files += [(f"{rel}/{n}", os.path.join(d, n)) for n in names if n.endswith((".py", ".yaml", ".json"))]
        h = hashlib.sha256()
        for rel, path in sorted(files):
            with open(path, "rb") as f:
                h.update(rel.encode() + b"\0" + f.read() + b"\0")
        _CODE_IDENTITY = f"extspec {__version__}+src.{h.hexdigest()[:12]}"
    return _CODE_IDENTITY


_CODE_IDENTITY = None
