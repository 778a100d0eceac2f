"""Shared fixtures: instrument registry cleanup and per-test copies of the sim profiles; how the
suite is spread over processes (see docs/testing.md)."""

from __future__ import annotations

import os

# One BLAS thread per test process: the suite runs one process per core (pytest-xdist), and the
# fits' tall, thin least-squares problems gain nothing from more threads; OpenBLAS threads spinning
# beside another process cost several times the CPU. Set before numpy is first imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import shutil  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from qcodes.instrument import Instrument  # noqa: E402

PROFILES = Path(__file__).resolve().parent.parent / "sim_profiles"


@pytest.fixture(autouse=True)
def _close_all_instruments() -> Iterator[None]:
    """Close every QCoDeS instrument after each test, so names and VISA sessions do not leak."""
    yield
    Instrument.close_all()


@pytest.fixture
def profile_copy(tmp_path: Path) -> Callable[[str], str]:
    """Return a function giving the ``visalib`` string of a fresh copy of a profile.

    pyvisa caches one simulated library per YAML path, shared by every resource manager in the
    process; a copy per test keeps the simulated state of one test out of the next.
    """

    def make(name: str) -> str:
        target = tmp_path / name
        shutil.copyfile(PROFILES / name, target)
        return f"{target}@sim"

    return make


@pytest.fixture
def optical(tmp_path: Path) -> Path:
    """The laser-and-power-meter corner of the twin lab, as a station file."""
    from station_support import OPTICAL_STATION

    station = tmp_path / "optical.yaml"
    station.write_text(OPTICAL_STATION)
    return station


#: Fixture scopes a test shares with the other tests of its class, module or package. A session
#: fixture (pytest's tmp_path_factory) is made once per worker anyway: it groups nothing.
_SHARED_SCOPES = {"class", "module", "package"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep tests that share a fixture wider than one test in one xdist worker.

    With ``--dist loadgroup`` (pyproject's addopts) tests are spread one by one, except those
    carrying the same ``xdist_group``: a module-scoped chain run is made once, in one worker,
    for the tests that read it. The group is the module plus the shared fixtures' parameters, so
    the stations of a parametrised module fixture still spread over workers.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(name for name, defs in info.name2fixturedefs.items()
                        if defs and defs[-1].scope in _SHARED_SCOPES)
        if not shared:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = ",".join(f"{name}={params[name]}" if name in params else name for name in shared)
        item.add_marker(pytest.mark.xdist_group(f"{item.nodeid.split('::')[0]}[{key}]"))
