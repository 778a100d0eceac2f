"""Shared fixtures: instrument registry cleanup and per-test copies of the sim profiles."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qcodes.instrument import Instrument

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
