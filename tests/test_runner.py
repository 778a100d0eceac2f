"""The runner: sweeps (1-D, nested 2-D, traces), progress, and how runs end (DESIGN.md, Safety)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qcodes.instrument import Instrument
from qcodes.parameters import Parameter, ParameterWithSetpoints
from qcodes.validators import Arrays
from rich.console import Console

from hil.experiment import Experiment
from hil.runner import execute, snapshot_value
from hil.store import open_run

ROOT = Path(__file__).resolve().parent.parent



def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def run_experiment(fn, out: Path, station: Path, params=None, console=None):
    return execute(Experiment(fn.__name__, fn), station, out, params or {},
                   console=console or quiet())


# -- sweeps ------------------------------------------------------------------------------------


def test_a_1d_sweep_records_every_point_with_its_plan_and_shows_a_rate(tmp_path, optical):
    grid = 1550.05e-9 + 0.1e-12 * np.arange(300)
    returned = {}

    def scan(lab, run):
        lab.pump.enable_output()
        returned.update(run.sweep("scan", lab.pump.wavelength, grid, {"power": lab.meter.power}))

    console = Console(file=io.StringIO(), width=120)
    run = run_experiment(scan, tmp_path / "r.h5", optical, console=console)
    assert "pts/s" in console.file.getvalue()
    record = open_run(run.path)
    assert record.status == "completed"
    step = record.steps["scan"]
    np.testing.assert_array_equal(step["wavelength"].values, grid)
    np.testing.assert_array_equal(step["planned_wavelength"].values, grid)
    np.testing.assert_array_equal(step["power"].values, returned["power"])
    assert step["power"].attrs == {"units": "W", "long_name": "Optical power"}
    assert step.attrs["call"] == "scan"
    assert (record.points["scan"], record.planned["scan"]) == (300, 300)
    assert np.all(returned["power"] > 0)
    assert record.calls_done == ["scan"]


def test_a_nested_sweep_is_a_grid(tmp_path, optical):
    powers = [1e-4, 2e-4, 4e-4]
    wavelengths = 1550.07e-9 + 1e-12 * np.arange(-5, 6)
    returned = {}

    def scan2d(lab, run):
        lab.pump.enable_output()
        returned.update(run.sweep2d("map", lab.pump.power, powers, lab.pump.wavelength,
                                    wavelengths, {"transmitted": lab.meter.power}))

    run = run_experiment(scan2d, tmp_path / "r.h5", optical)
    grid = open_run(run.path).steps["map"]
    assert grid["transmitted"].dims == ("power", "wavelength")
    assert grid["transmitted"].shape == (3, 11)
    np.testing.assert_allclose(grid["power"].values, powers)
    np.testing.assert_array_equal(grid["transmitted"].values, returned["transmitted"])
    # Transmission does not depend on power: each row scales with its pump power.
    ratio = returned["transmitted"] / np.asarray(powers)[:, None]
    np.testing.assert_allclose(ratio / ratio[0], 1.0, rtol=0.02)
    assert returned["transmitted"].shape == (3, 11)


class Tracer(Instrument):
    """A small instrument with a trace: 51 points whose level follows a knob."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.knob = self.add_parameter("knob", unit="V", set_cmd=None, initial_value=0.0)
        self.freq = self.add_parameter("freq", unit="Hz", label="Frequency",
                                       get_cmd=lambda: np.linspace(1e9, 2e9, 51),
                                       vals=Arrays(shape=(51,)))
        self.spectrum = self.add_parameter(
            "spectrum", unit="W", label="Spectrum", parameter_class=ParameterWithSetpoints,
            setpoints=(self.freq,), vals=Arrays(shape=(51,)),
            get_cmd=lambda: self.knob.get() * np.arange(51.0))


def test_a_sweep_records_traces_with_their_axis(tmp_path, optical):
    def traces(lab, run):
        tracer = Tracer("tracer")
        run.sweep("spectra", tracer.knob, [1.0, 2.0, 3.0], {"spectrum": tracer.spectrum})

    run = run_experiment(traces, tmp_path / "r.h5", optical)
    step = open_run(run.path).steps["spectra"]
    assert step["spectrum"].dims == ("knob", "freq")
    np.testing.assert_array_equal(step["spectrum"].values,
                                  np.outer([1.0, 2.0, 3.0], np.arange(51.0)))
    np.testing.assert_array_equal(step["freq"].values, np.linspace(1e9, 2e9, 51))


# -- endings -----------------------------------------------------------------------------------


def test_an_exception_leaves_the_lab_safe_and_the_file_failed_with_its_traceback(tmp_path, optical):
    calls = {"n": 0}

    def flaky(lab, run):
        lab.pump.enable_output()

        def read():
            calls["n"] += 1
            if calls["n"] == 40:
                raise RuntimeError("power meter fell off the table")
            return lab.meter.power.get()

        reading = Parameter("reading", unit="W", get_cmd=read)
        run.sweep("scan", lab.pump.wavelength, 1550.07e-9 + 1e-13 * np.arange(100),
                  {"reading": reading})

    out = tmp_path / "r.h5"
    with pytest.raises(RuntimeError, match="fell off the table"):
        run_experiment(flaky, out, optical)
    record = open_run(out)
    assert record.status == "failed"
    assert "power meter fell off the table" in record.traceback
    assert "in read" in record.traceback  # the frames down to where it was raised
    assert record.points["scan"] == 39  # the failed point is not recorded
    assert [e[1] for e in record.events][-1] == "safe_state"
    end = record.snapshot_end
    assert snapshot_value(end, "laser", "output") is False
    assert snapshot_value(end, "laser", "shutter_closed") is True


def hil_child(*args: str) -> subprocess.Popen[str]:
    code = "from hil.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "120"})


def wait_for_points(path: Path, step: str, at_least: int, proc: subprocess.Popen,
                    timeout: float = 60.0) -> list[np.ndarray]:
    """Poll the file as a live reader would; return each read's power column."""
    reads = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read()}")
        if path.exists():
            try:
                record = open_run(path)
            except OSError:
                record = None  # created but not yet a run file
            if record is not None and step in record.steps:
                reads.append(record.steps[step]["power"].values)
                assert record.state == "running"
                if reads[-1].size >= at_least:
                    return reads
        time.sleep(0.05)
    pytest.fail(f"fewer than {at_least} points in {path} after {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_applies_safe_states_and_marks_the_file_aborted(tmp_path, optical,
                                                                      signum):
    out = tmp_path / "r.h5"
    child = hil_child("run", "optical_resonance", "--station", str(optical), "--out", str(out),
                      "--set", "optical_resonance.search_span_m=4e-9")
    try:
        reads = wait_for_points(out, "optical_resonance_search", 4096, child)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == (143 if signum == signal.SIGTERM else 130), stderr
    assert "aborted; instruments left in their safe state" in stderr
    record = open_run(out)
    assert record.status == "aborted"
    assert record.traceback is None
    step = record.steps["optical_resonance_search"]
    # The reader saw a growing prefix of what the file finally holds; no half-written point.
    for earlier in reads:
        np.testing.assert_array_equal(step["power"].values[:earlier.size], earlier)
    assert record.points["optical_resonance_search"] < 40001
    assert not np.isnan(step["power"].values).any()
    kinds = [e[1] for e in record.events]
    assert kinds[-1] == "safe_state" and "applied to laser, powermeter" in record.events[-1][2]
    assert snapshot_value(record.snapshot_end, "laser", "output") is False
    assert snapshot_value(record.snapshot_end, "laser", "shutter_closed") is True
    assert snapshot_value(record.snapshot_end, "powermeter", "auto_range") is True
    # Before the stop, the run was taking points as fast as ever: it stopped within a second.
    assert json.loads(json.dumps(record.params)) == {
        "optical_resonance": {"search_span_m": 4e-9}}


def test_a_stop_between_points_is_honoured_at_the_next_instrument_call(tmp_path, optical):
    """In-process: the stop request raises before the next command is sent."""
    sent_after_stop = []

    def scan(lab, run):
        lab.pump.enable_output()
        calls = {"n": 0}

        def read():
            calls["n"] += 1
            if calls["n"] == 10:
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, during a point
                time.sleep(0.05)  # the handler only asks to stop: this call finishes
            return 1.0

        reading = Parameter("reading", unit="W", get_cmd=read)
        original = lab.pump.visa_handle.write

        def spy(message, *args, **kwargs):
            if calls["n"] >= 10:
                sent_after_stop.append(message)
            return original(message, *args, **kwargs)

        lab.pump.visa_handle.write = spy
        run.sweep("scan", lab.pump.wavelength, 1550.07e-9 + 1e-13 * np.arange(50),
                  {"reading": reading})

    out = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(scan, out, optical)
    record = open_run(out)
    assert record.status == "aborted"
    # Point 10 had finished its instrument calls when the stop came: it is kept, the next is
    # not begun.
    assert record.points["scan"] == 10
    # Nothing reached the laser after the stop but its safe state.
    assert all(m.startswith((":POW:STAT", ":POW:SHUT", ":SYST:ERR?")) for m in sent_after_stop)
