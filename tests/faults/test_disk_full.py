"""A full disk (issue 12, case 3) costs no finished data and never crashes the process.

Before: on a 1-14 MB filesystem the CLI said "data and traceback kept", then the process died
(exit 139) and the run file was unreadable, finished steps included. Now a run refuses to start
without room (exit 2), stops before HDF5 meets a full disk (exit 1, status ``failed``, safe
states applied, every finished step complete), and a write that fails anyway ends the run the
same way. The real case runs the chain through the CLI into a small tmpfs this test mounts (as
root; skipped with the reason otherwise); the in-process case makes the data writes raise ENOSPC.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console

from hil.calibration import CalibrationStore, plan
from hil.catalog import open_catalog
from hil.experiment import Experiment
from hil.results import Result
from hil.runner import execute, snapshot_value
from hil.store import RunWriter, open_run
from hil.store.space import MARGIN_ENV

ROOT = Path(__file__).resolve().parents[2]
TWIN = ROOT / "stations" / "twin.yaml"


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of the size asked for; unmounted at teardown."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("hil")  # the installed command, as a user runs it
    return subprocess.run([str(command), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env={**os.environ, **(env or {})})


def test_a_run_without_room_to_start_is_refused_before_anything_opens(small_disk):
    disk = small_disk("3m")
    out = disk / "chain.h5"
    done = hil("run", "chain", "--station", str(TWIN), "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr and "free" in done.stderr and MARGIN_ENV in done.stderr
    assert "Traceback" not in done.stderr
    assert "Connected to" not in done.stdout  # no instrument was opened
    assert not out.exists()


def test_the_chain_on_a_filling_disk_fails_cleanly_and_keeps_every_finished_step(small_disk,
                                                                                  tmp_path):
    # 1.1 MB holds part of the chain (its file and plots need ~1.4 MB); a run may start with
    # 0.9 MB free and keeps 225 kB free for closing its file. The run catalog lives on another
    # disk here, as a shared one would: only the run file and its plots fill this one.
    disk = small_disk("1100k")
    out = disk / "chain.h5"
    done = hil("run", "chain", "--station", str(TWIN), "--out", str(out),
               env={MARGIN_ENV: "900000", "HIL_CATALOG": f"sqlite:///{tmp_path / 'catalog.sqlite'}"})
    assert done.returncode == 1, (done.returncode, done.stderr)  # not 139: no crash
    assert "error: run failed: disk nearly full" in done.stderr
    assert "Traceback" not in done.stderr
    record = open_run(out)
    assert record.status == "failed"
    assert not record.problems and not record.unreadable
    assert "disk nearly full" in record.traceback
    assert any(kind == "safe_state" and message.startswith("applied")
               for _, kind, message in record.events)
    finished = [name for name in record.points if record.planned[name] is not None]
    assert len(finished) >= 3
    last = list(record.points)[-1]
    for name in finished:
        if name != last:  # every step before the one the fault stopped is complete
            assert record.points[name] == record.planned[name], name
    assert record.results["cryostat_check"]  # finished steps keep their results
    # Nothing of the lab is left on: the end snapshot holds the safe states.
    assert record.snapshot_end is not None
    shown = hil("show", str(out))
    assert shown.returncode == 0 and "status failed" in shown.stdout


def test_a_write_failing_with_enospc_ends_the_run_failed_and_the_file_readable(
        tmp_path, optical, monkeypatch):
    """A write that fails after the checks (another process filled the disk) ends the same."""
    grid = 1550.05e-9 + 0.1e-12 * np.arange(40)

    def two_sweeps(lab, run):
        lab.pump.enable_output()
        run.sweep("first", lab.pump.wavelength, grid, {"power": lab.meter.power})
        run.record_results("first", {"peak": Result(1.0, "W")})
        run.sweep("second", lab.pump.wavelength, grid, {"power": lab.meter.power})

    real_setitem = h5py.Dataset.__setitem__

    def disk_full_in_second(self, key, value):
        if self.name.startswith("/second/"):
            raise OSError(errno.ENOSPC, "No space left on device (test hook)")
        real_setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", disk_full_in_second)
    out = tmp_path / "enospc.h5"
    with pytest.raises(OSError, match="No space left"):
        execute(Experiment("two_sweeps", two_sweeps), optical, out, {},
                console=Console(file=io.StringIO()))
    monkeypatch.undo()
    record = open_run(out)
    assert record.status == "failed"
    assert "No space left on device" in record.traceback
    np.testing.assert_array_equal(record.steps["first"]["wavelength"].values, grid)
    assert record.points["first"] == 40 and record.results["first"]["peak"].value == 1.0
    assert record.points.get("second", 0) == 0  # nothing of it reached the disk
    assert any(kind == "safe_state" and message.startswith("applied")
               for _, kind, message in record.events)
    assert snapshot_value(record.snapshot_end, "laser", "output") is False


def test_a_calibration_whose_run_file_is_unreadable_is_stale(tmp_path):
    def optical_resonance(lab, run):
        """A step the chain would reuse while its calibration is fresh."""

    good = tmp_path / "good.h5"
    with RunWriter(good, experiment="optical_resonance", station_yaml="a: 1\n",
                   snapshot={}) as run:
        run.copy_results("optical_resonance", {"kappa": Result(1e9, "Hz", 1e7)})
    store = CalibrationStore(open_catalog(None, tmp_path), "twin")
    store.record("optical_resonance", {"kappa": Result(1e9, "Hz", 1e7)}, run=str(good),
                 valid_for_s=3600)
    [decision] = plan([optical_resonance], store)
    assert not decision.run and decision.reason.startswith("fresh")
    good.write_bytes(good.read_bytes()[:512])  # a disk that filled while it was written
    [decision] = plan([optical_resonance], store)
    assert decision.run and "unreadable" in decision.reason


def test_the_flusher_finding_the_disk_full_stops_the_next_append(tmp_path, monkeypatch):
    """During a run the flush thread checks too: the appending thread hears of it at once."""
    import time

    from hil.store import Column, space

    path = tmp_path / "flusher.h5"
    run = RunWriter(path, experiment="x", station_yaml="a: 1\n", snapshot={},
                    flush_interval=0.05)
    step = run.begin_step("sweep", [Column("x", "V", "bias")], [Column("y", "W", "power")])
    for i in range(10):
        step.append(float(i), 2.0 * i)
    deadline = time.monotonic() + 10
    while step.written < 10 and time.monotonic() < deadline:  # the flusher wrote them
        time.sleep(0.01)
    assert step.written == 10
    monkeypatch.setattr(space, "free_bytes", lambda folder: 1000)  # the disk fills up
    step.append(10.0, 20.0)
    deadline = time.monotonic() + 10
    with pytest.raises(RuntimeError, match="disk nearly full"):
        while time.monotonic() < deadline:
            step.append(11.0, 22.0)
            time.sleep(0.01)
    monkeypatch.undo()
    run.finish("failed", traceback="disk nearly full")
    record = open_run(path)
    assert record.status == "failed"
    # Points taken before the stop are kept (those buffered are written once there is room).
    assert record.points["sweep"] >= 11
    np.testing.assert_array_equal(record.steps["sweep"]["y"].values[:11], 2.0 * np.arange(11))
