"""Sphinx configuration of the extspec documentation.

Build (offline, warnings and broken references are errors)::

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

The configuration reference (``config-reference.md``) is generated at every build from
``src/extspec/data/config.schema.yaml`` by ``docs/_ext/configref.py``, the same generator that
writes ``config/README.md``.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "extspec"
author = "the extspec developers"
copyright = "the extspec developers"

try:
    from extspec import __version__ as release
except ImportError:  # pragma: no cover - the docs need the package installed
    release = "unknown"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "configref",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
templates_path = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_title = f"extspec {release}"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# the API reference: autodoc of the library's public modules; types in the signatures are
# not cross-referenced (numpy, astropy and h5py have no inventories offline)
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autosummary_generate = False

# -n (nitpicky): every unresolved reference is an error, except names of third-party
# packages (no intersphinx: the build is offline) and Python builtins
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|astropy|h5py|regions|iminuit|matplotlib|yaml|jsonschema|snakemake|pathlib|os|typing|collections|dataclasses|datetime|enum)(\..*)?"),
    (r"py:.*", r"(Path|ndarray|Quantity|Table|SkyCoord|Time|Any|Callable|Iterable|Iterator|Sequence|Mapping|Figure|Axes)"),
    (r"py:.*", r"(.*\.)?_\w+"),  # private helpers named in docstrings
    (r"py:.*", r"(int|float|str|bool|dict|list|tuple|set|bytes|None|object|Exception|ValueError|OSError|type)"),
]
