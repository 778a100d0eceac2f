"""A pytest fixture that runs a lab's own step on the twin, as ``hil run`` would run it.

A lab's ``conftest.py`` takes it with ``pytest_plugins = ["hil.testing"]`` (or
``from hil.testing import hil_station, hil_twin``). A test then asks for ``hil_twin``::

    def test_my_scan(hil_twin):
        done = hil_twin.run(my_scan, span_m=0.2e-9)
        assert done.status == "completed"
        truth = hil_twin.lab.world.truth()  # what the twin was built with
        assert abs(done.results["my_scan"]["center_m"].value - truth["optical_wavelength_m"]) < 1e-12

The lab is the simulated station (override the ``hil_station`` fixture to return your own
station file, with ``sim:``), opened once per test with its lock and catalog in the test's
temporary folder, so tests never meet the user's runs or each other; every run file goes to
``hil_twin.runs``. On teardown the lab is put in its safe state and closed.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xarray

from hil.runview import LabRun
from hil.station import Lab

__all__ = ["TwinHarness", "hil_station", "hil_twin"]


class TwinHarness:
    """An open twin lab and the ways to run on it; files under :attr:`runs`."""

    def __init__(self, lab: Lab, runs: Path) -> None:
        self.lab = lab
        self.runs = runs
        self._count = 0

    def run(self, step: Callable[..., Any], **params: Any) -> LabRun:
        """:func:`hil.run_step` on the open lab, into a fresh file of :attr:`runs`."""
        from hil.notebook import run_step

        return run_step(step, lab=self.lab, out=self._next(getattr(step, "__name__", "run")),
                        **params)

    def measure(self, setpoint: Any, values: Any, *readings: Any) -> xarray.Dataset:
        """:func:`hil.measure` on the open lab, into a fresh file of :attr:`runs`."""
        from hil.notebook import measure

        return measure(setpoint, values, *readings, lab=self.lab, out=self._next("measure"))

    def _next(self, name: str) -> Path:
        self._count += 1
        return self.runs / f"{self._count:03d}_{name}.h5"


@pytest.fixture
def hil_station() -> Path:
    """The station ``hil_twin`` opens: the shipped simulated lab; override for your own."""
    return Path(str(importlib.resources.files("stations") / "twin.yaml"))


@pytest.fixture
def hil_twin(hil_station: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[TwinHarness]:
    """The twin lab of ``hil_station``, open for one test (see the module docs)."""
    from hil.notebook import open_lab

    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("HIL_CATALOG", raising=False)  # the catalog goes beside the runs
    runs = tmp_path / "runs"
    runs.mkdir()
    with open_lab(hil_station) as lab:
        if lab.world is None:
            pytest.fail(f"{hil_station}: hil_twin needs a simulated station (with sim:)")
        yield TwinHarness(lab, runs)
