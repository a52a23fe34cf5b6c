"""The documentation is checked: it builds, its examples run, its quoted figures are the run's.

* ``test_docs_build``: ``python -m sphinx -W --keep-going -n -b html docs <tmp>``, the command
  docs/development.md documents (every warning, a broken reference included, fails it); skipped
  with a message when Sphinx or MyST is not installed (the ``docs`` extra; ``.ci/run`` installs it).
* ``test_config_readme_is_generated``: ``config/README.md`` is what ``docs/_ext/configref.py``
  writes from the schema, and every schema key has a description (the schema is the one source).
* The runnable blocks: in the pages, a code block preceded by the MyST comment ``% runnable``
  is executed (``bash``: as one ``bash -e`` script; ``python``: as a script), in a sandbox laid
  out as a clone (``repo/`` with the workflow and a copy of ``config/``, ``shared/data`` -> the
  data the tests find, :func:`conftest.find_data`), the pages of a group in order and sharing
  the sandbox. ``% runnable slow`` blocks run only with ``EXTSPEC_SLOW=1`` (minutes each).
  A block preceded by ``% output`` is compared line by line with what the runnable block before
  it printed, so the figures a page quotes are those the current code produces.
  ``--cores 8`` in a command becomes ``--cores 2`` (the test machine's cores).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, find_data
from test_workflow import subprocess_path

DOCS = REPO / "docs"
SLOW = bool(os.environ.get("EXTSPEC_SLOW"))


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    marker: str  # "runnable", "runnable slow" or "output"
    lang: str
    code: str


def page_blocks(page: Path) -> list[Block]:
    """The marked code blocks of a MyST page, in order."""
    lines = page.read_text().splitlines()
    out, marker, i = [], None, 0
    while i < len(lines):
        ln = lines[i]
        m = re.match(r"^% (runnable slow|runnable|output)\s*$", ln)
        if m:
            marker = m.group(1)
        elif ln.startswith("```") and marker:
            lang, start = ln[3:].strip(), i
            i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append(Block(page.relative_to(DOCS).as_posix() if page.is_relative_to(DOCS) else page.name, start + 1, marker, lang, "\n".join(body) + "\n"))
            marker = None
        elif ln.strip():
            marker = None
        i += 1
    return out


def pages_with_blocks() -> list[Path]:
    return [p for p in sorted(DOCS.rglob("*.md")) if "_build" not in p.parts and page_blocks(p)]


# ------------------------------------------------------------------------------- build --


def test_docs_build(tmp_path):
    for mod in ("sphinx", "myst_parser"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed: python -m pip install -e '.[docs]' builds the docs")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
                          str(DOCS), str(tmp_path / "html"), "-d", str(tmp_path / "doctrees")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, cwd=REPO)
    print(f"docs build: {time.perf_counter() - t0:.1f} s")
    assert res.returncode == 0, res.stdout[-6000:]
    html = tmp_path / "html"
    ref = (html / "config-reference.html").read_text()
    # the generated reference holds every key, and the API reference the documented functions
    for key in ("geom.binsz", "background.ring.inner", "joint.&lt;name&gt;.systematics.energy_scale",
                "light_curve.variability_min_counts"):
        assert key in ref, key
    assert "the reductions and every step after them" in ref
    assert "fit_joint" in (html / "api.html").read_text()
    for page in ("getting-started", "tutorials/seed", "methods", "troubleshooting", "benchmarks", "architecture"):
        assert (html / f"{page}.html").is_file(), page


def test_every_library_module_in_the_api_reference():
    """A new module of the library gets its section in docs/api.md (autodoc)."""
    api = (DOCS / "api.md").read_text()
    src = REPO / "src" / "extspec"
    mods = []
    for f in sorted(src.rglob("*.py")):
        rel = f.relative_to(src.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if "workflow" in rel.parts or f.name == "__main__.py" or name == "extspec":
            continue
        mods.append(name)
    missing = [m for m in mods if f".. automodule:: {m}\n" not in api]
    assert not missing, f"library modules missing from docs/api.md (add an automodule section): {missing}"


def test_every_page_in_a_toctree():
    """No orphan page: every page is reachable from the index (Sphinx warns too, this names it)."""
    text = "".join(p.read_text() for p in DOCS.rglob("*.md") if "_build" not in p.parts)
    for p in DOCS.rglob("*.md"):
        if "_build" in p.parts or p.name == "index.md" and p.parent == DOCS:
            continue
        entry = p.stem if p.parent.name == "tutorials" and p.name != "index.md" else str(
            p.relative_to(DOCS).with_suffix(""))
        assert re.search(rf"^{re.escape(entry)}$", text, re.M), f"{p.relative_to(REPO)} is in no toctree"


def test_no_placeholder_pages():
    for p in DOCS.rglob("*.md"):
        if "_build" in p.parts:
            continue
        text = p.read_text()
        assert not re.search(r"\bTODO\b|\bTBD\b|OUTPUT_PLACEHOLDER", text), p
        assert len(text.split()) > 80, f"{p.relative_to(REPO)}: a page without content"


# ------------------------------------------------------------- the generated reference --


def _configref():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import configref
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return configref


def test_config_readme_is_generated():
    configref = _configref()
    assert (REPO / "config" / "README.md").read_text() == configref.config_readme(), \
        "config/README.md is out of date: run `python docs/_ext/configref.py`"


def test_every_schema_key_has_a_description():
    configref = _configref()
    root = configref.load_schema()
    assert not configref.missing_descriptions(root)
    keys = [e["key"] for e in configref.entries(root)]
    assert len(keys) > 100 and "model.spatial.radius" in keys and "download.timeout" in keys


def test_reruns_follow_stage_keys():
    """The reference's "reruns" column is STAGE_KEYS: a changed STAGE_KEYS changes it."""
    configref = _configref()
    stages = {"reduce": ("geom", "model.spatial"), "stack": ("maps",), "fit": ("model", "fit"),
              "flux_points": ("fit", "flux_points"), "cumulative": ("cumulative",), "light_curve": ("fit",)}
    assert configref.reruns("geom.binsz", stages) == "the reductions and every step after them"
    assert configref.reruns("model.spatial.radius", stages) == "the reductions and every step after them"
    assert configref.reruns("model.type", stages).startswith("the fit")
    assert configref.reruns("flux_points.n_sigma_ul", stages).startswith("the flux points")
    moved = dict(stages, reduce=("geom", "model.spatial", "maps"))
    assert configref.reruns("maps.correlation_radius", moved) == "the reductions and every step after them"
    assert configref.reruns("maps.correlation_radius", stages).startswith("the counts image")


# ---------------------------------------------------------------- the runnable blocks --


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A clone-like layout: repo/ (the workflow, a copy of config/) beside shared/data."""
    data = find_data("hess-dl3-dr1/hdu-index.fits.gz", "H.E.S.S. DL3 DR1").parent.parent
    root = tmp_path_factory.mktemp("docs")
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(data)
    repo = root / "repo"
    repo.mkdir()
    for name in ("Snakefile", "workflow", "profiles"):
        (repo / name).symlink_to(REPO / name)
    (repo / "config").mkdir()
    for f in (REPO / "config").glob("*.yaml"):
        (repo / "config" / f.name).write_text(f.read_text())
    return repo


def run_block(block: Block, cwd: Path) -> str:
    env = dict(os.environ)
    env.pop("GAMMAPY_DATA", None)  # the sandbox's shared/data is where the pages say the data is
    env["PATH"] = subprocess_path() or env.get("PATH", "")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    code = block.code.replace("--cores 8", "--cores 2")
    if block.lang == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    elif block.lang == "python":
        cmd = [sys.executable, "-c", code]
    else:
        raise AssertionError(f"{block.page}:{block.line}: runnable block of language {block.lang!r}")
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (f"{block.page}:{block.line} failed ({res.returncode}):\n{res.stdout[-3000:]}\n"
                                 f"{res.stderr[-3000:]}")
    return res.stdout  # what a page quotes is the output a user sees on stdout


def run_page(page: str, cwd: Path, slow: bool) -> int:
    """Run a page's runnable blocks in order; compare the quoted outputs; return how many ran."""
    blocks = page_blocks(DOCS / page)
    assert blocks, f"{page}: no runnable block"
    ran, last = 0, None
    for b in blocks:
        if b.marker == "output":
            if last is None:
                continue  # the block it quotes was not run (slow)
            got = [ln.rstrip() for ln in last.strip().splitlines()]
            want = [ln.rstrip() for ln in b.code.strip().splitlines()]
            assert got == want, f"{page}:{b.line}: the page quotes\n{b.code}\nthe run printed\n{last}"
            last = None
            continue
        if b.marker == "runnable slow" and not slow:
            last = None
            continue
        last = run_block(b, cwd)
        ran += 1
    return ran


def test_getting_started_and_seed_tutorial(sandbox):
    """The seed path: `snakemake --cores 8` on the six seed runs, the outputs read as the pages
    read them, and the figures the pages quote compared with the run's."""
    assert run_page("getting-started.md", sandbox, SLOW) >= 2
    assert (sandbox / "results" / "rxj1713" / "fit" / "result.yaml").is_file()
    assert run_page("tutorials/seed.md", sandbox, SLOW) >= 3


TUTORIALS = [p.relative_to(DOCS).as_posix() for p in sorted((DOCS / "tutorials").glob("*.md"))
             if p.name not in ("index.md", "seed.md") and page_blocks(p)]


@pytest.mark.parametrize("page", TUTORIALS)
def test_tutorial_config_checks(page, sandbox):
    """Each tutorial's fast blocks (its config's `extspec check`): the config is valid on the data."""
    assert run_page(page, sandbox, slow=False) >= 1


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="the tutorials' full runs (minutes each): set EXTSPEC_SLOW=1")
@pytest.mark.parametrize("page", TUTORIALS)
def test_tutorial_runs(page, sandbox):
    run_page(page, sandbox, slow=True)


def test_page_blocks_parser(tmp_path):
    """The convention itself: markers bind to the next code block only."""
    page = tmp_path / "page.md"
    page.write_text("% runnable\n```bash\necho 1\n```\n\ntext\n```bash\necho no\n```\n"
                    "% output\n```text\n1\n```\n% runnable slow\n```python\nprint(2)\n```\n")
    blocks = page_blocks(page)
    assert [(b.marker, b.lang, b.code) for b in blocks] == [
        ("runnable", "bash", "echo 1\n"), ("output", "text", "1\n"), ("runnable slow", "python", "print(2)\n")]
