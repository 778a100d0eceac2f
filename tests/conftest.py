"""Shared fixtures: instrument registry cleanup and per-test copies of the sim profiles; how the
suite is spread over worker processes (see docs/testing.md)."""

from __future__ import annotations

import os
import re

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

#: hil_twin and hil_station, taken as a lab's own conftest takes them.
pytest_plugins = ["hil.testing"]

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


#: Fixtures of these scopes are shared by the tests of a module (or class, or package).
_WIDER_SCOPE = re.compile(r"""scope\s*=\s*["'](class|module|package)["']""")


def _shares_fixtures(module: Path) -> bool:
    """True if ``module``, or a conftest.py of its folder, defines a fixture wider than a test."""
    sources = [module, module.parent / "conftest.py"]
    return any(path.is_file() and _WIDER_SCOPE.search(path.read_text(encoding="utf-8"))
               for path in sources)


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (pyproject's addopts), with the module as the unit only where it must be.

    A module whose tests share a module-scoped fixture (a chain run, a served twin, a built
    wheel) goes to one worker whole, so that fixture is made once; every other test is handed out
    on its own, which balances the two workers far better than whole modules. Largest units go
    first (xdist orders them by their number of tests).
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath
    cache: dict[str, bool] = {}

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in cache:
                cache[module] = _shares_fixtures(root / module)
            return module if cache[module] else nodeid

    return SharedFixtureScheduling(config, log)
