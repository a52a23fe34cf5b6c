"""No wrong answer reported "ok" (issue 19): each case refuses with one line or excludes what
is broken and says so.

Wobble OFF regions that overlap, runs without events, fits of nothing and failed fits, false
minima from start values, stale or mismatched inputs, duplicate YAML keys.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from extspec.errors import ConfigError, ExtspecError

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "config" / "config.yaml"
DR1 = REPO.parent / "shared" / "data" / "hess-dl3-dr1"
MAGIC = REPO.parent / "shared" / "data" / "magic-rad-max"
needs_dr1 = pytest.mark.skipif(not (DR1 / "hdu-index.fits.gz").is_file(), reason=f"no HESS DL3 DR1 at {DR1}")
needs_magic = pytest.mark.skipif(not (MAGIC / "hdu-index.fits.gz").is_file(), reason=f"no MAGIC data at {MAGIC}")


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


# ------------------------------------------------------------------ duplicate YAML keys --


@pytest.mark.parametrize(
    "text, key, line, first",
    [
        ("name: a\nobs_ids: [1]\non_region: x\nobs_ids: [2]\n", "obs_ids", 4, 2),
        ("analyses:\n  crab: {obs_ids: [1]}\n  pks: {obs_ids: [2]}\n  crab:\n    obs_ids: [3]\n", "crab", 4, 2),
        ("model:\n  type: power_law\n  parameters:\n    index: 2\n    index: 3\n", "index", 5, 4),
    ],
    ids=["obs_ids", "analyses-entry", "nested"],
)
def test_duplicate_yaml_key_refused_naming_key_and_line(tmp_path, text, key, line, first):
    from extspec.workflow.config import read_config_files

    p = tmp_path / "my.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        read_config_files([p])
    assert one_line(exc).startswith(f"config file {p} line {line}: key '{key}' given twice (first on line {first})")


def test_duplicate_yaml_key_refused_by_the_command_line(tmp_path):
    p = tmp_path / "my.yaml"
    p.write_text(SEED.read_text() + "obs_ids: [20326]\n")
    res = subprocess.run([sys.executable, "-m", "extspec", "check", str(p)], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip().endswith("key 'obs_ids' given twice (first on line 9); the second would silently "
                                       "replace the first"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_duplicate_yaml_key_refused_by_the_workflow(tmp_path):
    import test_workflow as sm

    p = tmp_path / "my.yaml"
    p.write_text("name: dup\nobs_ids: [20326]\nobs_ids: [20327]\n")
    res = sm.snakemake(tmp_path, p, "-n", check=False)
    assert res.returncode != 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip() and not ln.startswith("Using ")]
    assert lines == [f"extspec: invalid configuration: config file {p} line 3: key 'obs_ids' given twice "
                     "(first on line 2); the second would silently replace the first"], res.stdout
