"""Shared fixtures: the six seed runs of reduction-spec.md reduced once per test session.

Real data (the H.E.S.S. DL3 DR1 store, the MAGIC runs, the joint-crab spectra, gammapy-data's
CTA files) is looked for where the workflow looks for the data store
(:func:`extspec.io.datastore.candidate_data_paths`): ``$GAMMAPY_DATA/<folder>``, then
``data/<folder>`` and ``../shared/data/<folder>`` next to the repository.  The tests needing it
are skipped when it is absent, with the places looked in.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def data_candidates(relpath: str) -> list[Path]:
    """Where ``relpath`` (``<data folder>/...``) is looked for, as the workflow looks for its data
    store, relative to the repository (:func:`extspec.io.datastore.candidate_data_paths`)."""
    from extspec.io.datastore import candidate_data_paths

    folder, _, rest = str(relpath).partition("/")
    return [(p / rest if rest else p) for p in candidate_data_paths(folder, base=REPO)]


def data_path(relpath: str) -> Path:
    """The first existing place of ``relpath`` (:func:`data_candidates`), else the first candidate."""
    cands = data_candidates(relpath)
    return next((p.resolve() for p in cands if p.exists()), cands[0])


def find_data(relpath: str, what: str) -> Path:
    """The path of ``relpath`` (:func:`data_path`); skips the test, saying where it looked, when absent."""
    p = data_path(relpath)
    if not p.exists():
        looked = ", ".join(str(c) for c in data_candidates(relpath))
        pytest.skip(f"{what} not found (looked in: {looked}; set $GAMMAPY_DATA to the folder holding "
                    f"{relpath.split('/')[0]})")
    return p


def skip_without(relpath: str, what: str):
    """A skipif marker for tests needing ``relpath``, naming where it was looked for."""
    looked = ", ".join(str(c) for c in data_candidates(relpath))
    return pytest.mark.skipif(not data_path(relpath).exists(), reason=f"{what} not found (looked in: {looked})")


DATA_STORE = data_path("hess-dl3-dr1/hdu-index.fits.gz").parent

SEED_IDS = (20326, 20327, 20349, 20350, 20396, 20397)
ON_REGION = "galactic;circle(347.3,-0.5,0.5)"
TARGET = (347.3, -0.5, "galactic")
SAFE_MASK_SETTINGS = {"methods": ["aeff-default", "aeff-max"], "aeff_percent": 10}
PL_START = {"type": "power_law", "parameters": {"index": {"value": 2}, "amplitude": {"value": 2e-11}}}


class SeedReduction(list):
    """List of SpectrumDataset (one per seed run, in SEED_IDS order) with the inputs attached.

    Attributes: ``obs_ids``, ``observations``, ``cubes``, ``reflected`` (ReflectedRegions),
    ``on_region`` and ``settings`` (ReductionSettings).
    """


def _require_store() -> Path:
    if not (DATA_STORE / "obs-index.fits.gz").is_file() or not (DATA_STORE / "hdu-index.fits.gz").is_file():
        looked = ", ".join(str(c) for c in data_candidates("hess-dl3-dr1"))
        pytest.skip(f"H.E.S.S. DL3 DR1 data store not found (looked in: {looked}; needs obs-index.fits.gz "
                    "and hdu-index.fits.gz; get it from Zenodo record 1421099)")
    return DATA_STORE


@pytest.fixture(scope="session")
def store_path() -> Path:
    """Resolved path of the real DR1 data store (skips when it is absent)."""
    return _require_store()


@pytest.fixture(scope="session")
def datastore(store_path):
    from extspec.io.datastore import open_datastore

    return open_datastore(store_path)


@pytest.fixture(scope="session")
def on_region():
    from extspec.skyregions import parse_region

    return parse_region(ON_REGION)


def _reduce(datastore, on_region, method: str, safe_mask: bool) -> SeedReduction:
    from extspec.reduction import reduce_observation
    from extspec.reflected import find_reflected_regions
    from extspec.workflow.settings import reduction_settings

    # no safe mask: no criterion, which leaves every bin of a usable run
    settings = reduction_settings({"on_region": ON_REGION, "spectrum": {"method": method},
                                   "safe_mask": SAFE_MASK_SETTINGS if safe_mask else {"methods": []}})
    out = SeedReduction()
    out.obs_ids, out.observations, out.cubes, out.reflected = list(SEED_IDS), [], [], []
    out.on_region, out.settings = on_region, settings
    for obs_id in SEED_IDS:
        obs = datastore.load(obs_id)
        cube, spec = reduce_observation(obs, settings, irf_cubes=True)
        out.append(spec)
        out.observations.append(obs)
        out.cubes.append(cube)
        out.reflected.append(find_reflected_regions(on_region, obs.pointing_radec, (), method))
    return out


@pytest.fixture(scope="session")
def seed_reference(datastore, on_region) -> SeedReduction:
    """The six seed runs reduced with the reference method, safe mask applied (§2-§7).

    A list of SpectrumDataset; ``.observations``, ``.cubes`` and ``.reflected`` hold the
    per-run Observation, CubeDataset and ReflectedRegions.  Treat everything as read-only.
    """
    return _reduce(datastore, on_region, "reference", safe_mask=True)


@pytest.fixture(scope="session")
def seed_exact(datastore, on_region) -> SeedReduction:
    """The six seed runs reduced with the exact method (no safe mask applied)."""
    return _reduce(datastore, on_region, "exact", safe_mask=False)


@pytest.fixture(scope="session")
def seed_fit(seed_reference):
    """Joint power-law fit of the six reference datasets with MIGRAD's covariance (§9)."""
    from extspec.fit import fit_joint
    from extspec.workflow.settings import fit_options

    return fit_joint(list(seed_reference), PL_START, fit_options({"fit": {"covariance": "migrad"}}))


def _printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit of a decimal string ('0.002040' -> 5e-7)."""
    return 0.5 * float(Decimal(1).scaleb(Decimal(text.strip()).as_tuple().exponent))


@pytest.fixture(scope="session")
def assert_printed():
    """``assert_printed(actual, texts)``: actual equals each printed value to all its digits.

    ``texts`` is a whitespace-separated string (or a list) of numbers as printed in the spec;
    each element must agree within half a unit of its last printed digit (plus 1e-12
    relative, for float rounding of the printed value itself).
    """

    def check(actual, texts, what=""):
        items = texts.split() if isinstance(texts, str) else list(texts)
        actual = np.atleast_1d(np.asarray(actual, dtype=float))
        assert actual.shape == (len(items),), f"{what}: {actual.shape} values vs {len(items)} printed"
        for k, (a, t) in enumerate(zip(actual, items)):
            exp = float(t)
            tol = _printed_tolerance(t) * (1 + 1e-9) + 1e-12 * abs(exp)
            assert abs(a - exp) <= tol, f"{what}[{k}]: got {a!r}, spec prints {t} (tolerance {tol:.3g})"

    return check


@pytest.fixture(scope="session")
def gammapy():
    """gammapy, for the tests marked ``interop`` only (skips them with a message without it).

    Install it with ``pip install -e ".[interop]"``.  The library never imports it, and no
    other test takes a check value from it.
    """
    return pytest.importorskip("gammapy", minversion="2.0",
                               reason="gammapy >= 2.0 not installed (pip install -e '.[interop]'): "
                                      "interop tests skipped")
