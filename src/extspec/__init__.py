"""extspec: 1D ON/OFF spectral analysis of (extended) gamma-ray sources from IACT DL3 data.

Data flows one way through the modules, one per analysis stage::

    datastore -> irf -> geometry -> cube -> regions/reflected -> spectrum -> safe_mask
              -> models/stats -> fit -> fluxpoints/cumulative -> plots

The package has no Snakemake imports; the workflow in ``workflow/`` calls the functions
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
        from pathlib import Path

        root = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".yaml", ".json") and "__pycache__" not in p.parts:
                h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        _CODE_IDENTITY = f"extspec {__version__}+src.{h.hexdigest()[:12]}"
    return _CODE_IDENTITY


_CODE_IDENTITY = None
