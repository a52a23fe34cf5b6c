"""What every step's product files share: ECSV tables written atomically with the code's
identity, and the hash of the config that made them (the steps of :mod:`extspec.workflow.pipeline`
and :mod:`extspec.workflow.joint_fit`)."""

from __future__ import annotations

from ..io.atomic import write_atomic

__all__ = ["write_ecsv", "config_hash"]


def write_ecsv(rows: list, units: dict, meta: dict, out) -> None:
    """Write dict rows as an ECSV table with units and metadata, atomically."""
    from .. import code_identity
    from ..io.ecsv import ecsv_text

    write_atomic(out, ecsv_text(rows, units, {**meta, "creator": code_identity()}))


def config_hash(config: dict) -> str:
    """The first 16 hex digits of the SHA-256 of ``config`` as sorted JSON."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
