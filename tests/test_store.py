"""The run file contract (DESIGN.md, "The run file"): layout, status lifecycle, SWMR streaming."""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from hil.clock import VirtualClock
from hil.store import (
    STATUSES,
    Axis,
    Column,
    Result,
    RunFileError,
    RunWriter,
    open_run,
    summary,
)

REPO = Path(__file__).resolve().parent.parent
FREQ = Column("frequency", "Hz", "probe frequency")
S21 = Column("s21_mag", "", "|S21|")
POWER = Column("power", "W", "optical power")


def new_run(path: Path, **kwargs) -> RunWriter:
    kwargs.setdefault("experiment", "optical_resonance")
    kwargs.setdefault("station_yaml", "instruments:\n  laser: {}\n")
    kwargs.setdefault("snapshot", new_run_snapshot())
    return RunWriter(path, **kwargs)


def new_run_snapshot() -> dict:
    return {"station": {"instruments": {"laser": {"power": 1e-3}}}}


def attrs_of(path: Path, group: str = "/") -> dict:
    with h5py.File(path, "r") as f:
        return dict(f[group].attrs)


def parse_utc(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(0)
    return stamp


def python_child(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                        os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            pytest.fail(f"child process said nothing for {timeout} s: {proc.stderr.read()}")
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail(f"child process ended: {proc.stderr.read()}")
    return line.strip()


# -- root attributes and status ---------------------------------------------------------------


def test_root_attributes_and_running_status_while_open(tmp_path):
    path = tmp_path / "runs" / "day1" / "run.h5"  # parent folders are created
    with new_run(path, software={"extra": "1.2"}) as run:
        assert run.path == path
        root = attrs_of(path)  # closed between structure points: a plain open works
        assert root["status"] == "running"
        assert "ended" not in root and "traceback" not in root
        assert root["experiment"] == "optical_resonance"
        assert root["station"] == "instruments:\n  laser: {}\n"
        assert json.loads(root["snapshot"]) == new_run_snapshot()
        software = json.loads(root["software"])
        for key in ("python", "qlink-hil", "qcodes", "numpy", "h5py", "hdf5", "git_commit"):
            assert key in software
        assert software["h5py"] == h5py.__version__
        assert software["hdf5"] == h5py.version.hdf5_version
        assert software["extra"] == "1.2"
        started = parse_utc(root["started"])
    root = attrs_of(path)
    assert root["status"] == "completed"
    assert parse_utc(root["ended"]) >= started
    assert "traceback" not in root


def test_refuses_to_overwrite_an_existing_file(tmp_path):
    path = tmp_path / "run.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="run.h5"):
        new_run(path)
    assert path.read_bytes() == b"precious"


def test_exception_marks_failed_with_traceback_and_keeps_data(tmp_path):
    path = tmp_path / "run.h5"
    with (pytest.raises(ZeroDivisionError), new_run(path) as run,
          run.begin_step("sweep", [FREQ], [S21]) as step):
        step.append(frequency=1.0, s21_mag=0.5)
        1 / 0  # noqa: B018
    root = attrs_of(path)
    assert root["status"] == "failed"
    assert "ZeroDivisionError" in root["traceback"]
    assert "ended" in root
    with h5py.File(path, "r") as f:
        assert f["sweep/s21_mag"][:].tolist() == [0.5]


def test_keyboard_interrupt_marks_aborted(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(KeyboardInterrupt), new_run(path) as run:
        step = run.begin_step("sweep", [FREQ], [S21])  # left open: closed by the run
        step.append(frequency=1.0, s21_mag=0.5)
        raise KeyboardInterrupt
    record = open_run(path)
    assert record.status == "aborted"
    assert record.traceback is None
    assert record.steps["sweep"]["s21_mag"].values.tolist() == [0.5]


def test_finish_validates_status_and_is_final(tmp_path):
    path = tmp_path / "run.h5"
    with new_run(path) as run:
        for bad in ("running", "done"):
            with pytest.raises(ValueError, match="completed, aborted, failed, interlocked"):
                run.finish(bad)
        run.finish("interlocked", traceback="mixing chamber above 50 mK")
        with pytest.raises(RuntimeError, match="finished"):
            run.event("note", "too late")
        with pytest.raises(RuntimeError, match="finished"):
            run.finish("completed")
    root = attrs_of(path)  # __exit__ leaves an explicit finish alone
    assert root["status"] == "interlocked"
    assert root["traceback"] == "mixing chamber above 50 mK"
    assert set(STATUSES) == {"running", "completed", "aborted", "failed", "interlocked"}


# -- layout --------------------------------------------------------------------------------


def test_single_setpoint_is_the_dimension_scale(tmp_path):
    path = tmp_path / "run.h5"
    with new_run(path) as run, run.begin_step("sweep", [FREQ], [S21, POWER],
                                              attrs={"span": 2e6, "config": {"n": 3}}) as step:
        for i in range(5):
            step.append(frequency=5e9 + i, s21_mag=0.1 * i, power=1e-6 * i)
    with h5py.File(path, "r") as f:
        group = f["sweep"]
        assert list(group) == ["frequency", "s21_mag", "power"]
        assert group["frequency"].is_scale
        for name, column in (("s21_mag", S21), ("power", POWER)):
            assert group[name].dims[0][0].name == "/sweep/frequency"
            assert group[name].attrs["units"] == column.unit
            assert group[name].attrs["long_name"] == column.long_name
        assert group["frequency"].attrs["units"] == "Hz"
        assert group["frequency"].attrs["long_name"] == "probe frequency"
        for ds in group.values():
            assert ds.dtype == np.float64 and ds.maxshape == (None,) and ds.chunks is not None
        assert group.attrs["span"] == 2e6
        assert json.loads(group.attrs["config"]) == {"n": 3}


def test_several_setpoints_use_a_point_index(tmp_path):
    path = tmp_path / "run.h5"
    setpoints = [Column("pump_power", "W", "pump power"), Column("detuning", "Hz", "detuning")]
    with new_run(path) as run, run.begin_step("map", setpoints, [S21]) as step:
        for i in range(4):
            step.append(pump_power=1e-3 * i, detuning=-1e6 * i, s21_mag=0.25 * i)
    with h5py.File(path, "r") as f:
        group = f["map"]
        assert group["point"].is_scale
        assert group["point"][:].tolist() == [0, 1, 2, 3]
        for name in ("pump_power", "detuning", "s21_mag", "point"):
            assert {"units", "long_name"} <= set(group[name].attrs)
        for name in ("pump_power", "detuning", "s21_mag"):
            assert group[name].dims[0][0].name == "/map/point"
    with xr.open_dataset(path, group="map", engine="h5netcdf") as ds:
        assert ds["s21_mag"].dims == ("point",)
        assert {"point", "pump_power", "detuning"} <= set(ds.coords)
        assert ds["detuning"].values.tolist() == [0.0, -1e6, -2e6, -3e6]
    record = open_run(path)
    assert set(record.steps["map"].coords) == {"point", "pump_power", "detuning"}
    assert record.steps["map"]["s21_mag"].values.tolist() == [0.0, 0.25, 0.5, 0.75]


def test_xarray_reads_a_step_with_the_setpoint_as_coordinate(tmp_path):
    path = tmp_path / "run.h5"
    freqs = np.linspace(5e9, 5.01e9, 7)
    with new_run(path) as run:
        with run.begin_step("sweep", [FREQ], [S21]) as step:
            for f in freqs:
                step.append(frequency=f, s21_mag=f / 1e10)
        run.begin_step("empty", [FREQ], [S21]).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no phony dimensions needed anywhere in the file
        with xr.open_dataset(path, group="sweep", engine="h5netcdf") as ds:
            assert ds["s21_mag"].dims == ("frequency",)
            np.testing.assert_array_equal(ds["frequency"].values, freqs)
            np.testing.assert_array_equal(ds["s21_mag"].values, freqs / 1e10)
            assert ds["s21_mag"].attrs["units"] == ""
            assert ds["frequency"].attrs == {"units": "Hz", "long_name": "probe frequency"}
        with xr.open_dataset(path, group="empty", engine="h5netcdf") as ds:
            assert ds.sizes["frequency"] == 0
            assert ds["s21_mag"].dims == ("frequency",)
    step = open_run(path).steps["sweep"]
    np.testing.assert_array_equal(step["s21_mag"].values, freqs / 1e10)
    np.testing.assert_array_equal(step["frequency"].values, freqs)
    assert step["s21_mag"].attrs == {"units": "", "long_name": "|S21|"}


# -- results, events, several steps ------------------------------------------------------------


def test_results_round_trip_through_open_run_and_summary(tmp_path):
    path = tmp_path / "run.h5"
    clock = VirtualClock()
    with new_run(path, lab_clock=clock.now) as run:
        with run.begin_step("optical", [FREQ], [POWER]) as step:
            step.append(frequency=1.0, power=2.0)
            clock.advance(30.0)
            step.set_results({"center": Result(193.4e12, "Hz", 1.5e6)})
            step.set_results({"depth": Result(np.float64(0.8), "")})  # merged; no stderr
        with run.begin_step("noise", [FREQ], [POWER]) as step:
            step.append(frequency=1.0, power=2.0)
            step.set_results({"n_add": Result(0.5, "quanta", 0.1, suspect="fit did not converge")})
            clock.advance(5.0)
        clock.advance(2.0)  # after the last step: the run's time, no step's
    group = attrs_of(path, "optical")
    assert group["result.center"] == 193.4e12
    assert group["result.center.unit"] == "Hz"
    assert group["result.center.stderr"] == 1.5e6
    assert "result.depth.stderr" not in group
    assert "result.center.suspect" not in group  # absent when the result passed its checks
    assert attrs_of(path, "noise")["result.n_add.suspect"] == "fit did not converge"
    assert group["lab_time_s"] == 30.0
    assert attrs_of(path)["lab_time_s"] == 37.0
    record = open_run(path)
    assert record.results == {
        "optical": {"center": Result(193.4e12, "Hz", 1.5e6), "depth": Result(0.8, "", None)},
        "noise": {"n_add": Result(0.5, "quanta", 0.1, "fit did not converge")},
    }
    assert record.lab_time_s == 37.0
    assert record.lab_times == {"optical": 30.0, "noise": 5.0}
    expected = {
        "status": "completed",
        "state": "completed",
        "lab_time_s": 37.0,
        "steps": {
            "optical": {"points": 1, "planned": None, "lab_time_s": 30.0,
                        "results": {"center": {"value": 193.4e12, "unit": "Hz", "stderr": 1.5e6},
                                    "depth": {"value": 0.8, "unit": "", "stderr": None}}},
            "noise": {"points": 1, "planned": None, "lab_time_s": 5.0,
                      "results": {"n_add": {"value": 0.5, "unit": "quanta", "stderr": 0.1,
                                            "suspect": "fit did not converge"}}},
        },
    }
    assert summary(path) == expected
    assert json.loads(json.dumps(summary(path), allow_nan=False)) == expected


def test_events_are_recorded_in_order(tmp_path):
    path = tmp_path / "run.h5"
    with new_run(path) as run:
        run.event("safe_state", "applied")  # no step open: written at once
        assert [e[1:] for e in open_run(path).events] == [("safe_state", "applied")]
        with run.begin_step("sweep", [FREQ], [S21]) as step:
            run.event("interlock", "T_mxc 51 mK > 50 mK")  # buffered while streaming
            step.append(frequency=1.0, s21_mag=0.0)
        run.event("resume", "from point 0 ✓")
        step = run.begin_step("left_open", [FREQ], [S21])
        run.event("fault", "VNA timeout")  # written by finish()
    events = open_run(path).events
    assert [e[1:] for e in events] == [("safe_state", "applied"),
                                       ("interlock", "T_mxc 51 mK > 50 mK"),
                                       ("resume", "from point 0 ✓"), ("fault", "VNA timeout")]
    times = [parse_utc(e[0]) for e in events]
    assert times == sorted(times)


def test_several_steps_open_at_once(tmp_path):
    path = tmp_path / "run.h5"
    with new_run(path, buffer_points=3) as run:
        a = run.begin_step("a", [FREQ], [S21])
        a.append(frequency=0.0, s21_mag=0.0)
        b = run.begin_step("b", [FREQ], [S21])  # a structure point while "a" streams
        for i in range(1, 8):
            a.append(frequency=i, s21_mag=i)
            b.append(frequency=-i, s21_mag=-i)
        a.set_results({"x": Result(1.0, "Hz")})
        a.close()
        b.append(frequency=-8.0, s21_mag=-8.0)
        b.close()
    record = open_run(path)
    assert record.steps["a"]["s21_mag"].values.tolist() == list(range(8))
    assert record.steps["b"]["frequency"].values.tolist() == [-i for i in range(1, 9)]
    assert record.results["a"] == {"x": Result(1.0, "Hz")}


def test_errors_a_user_can_cause(tmp_path):
    with new_run(tmp_path / "run.h5") as run:
        step = run.begin_step("sweep", [FREQ], [S21])
        with pytest.raises(ValueError, match=r"step 'sweep': unknown column 'gain'"):
            step.append(frequency=1.0, s21_mag=0.1, gain=3.0)
        with pytest.raises(ValueError, match=r"step 'sweep': missing value for column 's21_mag'"):
            step.append(frequency=1.0)
        for bad in ("0.5", None, 1 + 2j, np.complex128(1j), [0.5]):
            with pytest.raises(ValueError, match=r"step 'sweep', column 's21_mag': .* not a real"):
                step.append(frequency=1.0, s21_mag=bad)
        step.append(frequency=np.float32(2.0), s21_mag=np.array(0.25))  # numpy scalars are fine
        with pytest.raises(TypeError, match="expected a Result"):
            step.set_results({"q": 3.0})
        with pytest.raises(ValueError, match="already exists"):
            run.begin_step("sweep", [FREQ], [S21])
        with pytest.raises(ValueError, match="'power' appears twice"):
            run.begin_step("other", [POWER], [POWER])
        step.close()
        with pytest.raises(RuntimeError, match=r"step 'sweep' is closed"):
            step.append(frequency=1.0, s21_mag=0.1)
        with pytest.raises(RuntimeError, match=r"step 'sweep' is closed"):
            step.set_results({"q": Result(1.0, "")})
    with pytest.raises(ValueError, match="valid identifier"):
        Column("s21 mag", "", "|S21|")
    with pytest.raises(ValueError, match="real number"):
        Result("n/a", "Hz")
    sweep = open_run(tmp_path / "run.h5").steps["sweep"]
    assert sweep["frequency"].values.tolist() == [2.0]
    assert sweep["s21_mag"].values.tolist() == [0.25]


def test_reader_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        open_run(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(RunFileError, match="not an HDF5 file"):
        summary(text)


# -- buffering, SWMR readers, crash safety ---------------------------------------------------

READER = """
import json, sys
from hil.store import open_run
print("ready", flush=True)
for line in sys.stdin:
    record = open_run(line.strip())
    step = record.steps.get("sweep")
    print(json.dumps({"status": record.status,
                      "x": None if step is None else step["x"].values.tolist()}), flush=True)
"""


def test_buffered_points_are_flushed_and_seen_by_a_concurrent_swmr_reader(tmp_path):
    path = tmp_path / "run.h5"
    x, y = Column("x", "s", "x"), Column("y", "V", "y")
    reader = python_child(READER)
    holder = python_child("import h5py, sys; sys.stdin.readline(); f = h5py.File(sys.argv[1], "
                          "'r'); print('open', flush=True); sys.stdin.read()", str(path))

    def read() -> dict:
        reader.stdin.write(f"{path}\n")
        reader.stdin.flush()
        return json.loads(read_line(reader))

    try:
        with new_run(path, buffer_points=4, flush_interval=30) as run:
            holder.stdin.write("\n")  # the holder opens the file only now that it exists
            holder.stdin.flush()
            assert read_line(reader) == "ready"
            assert read_line(holder) == "open"  # a reader keeping the file open ...
            step = run.begin_step("sweep", [x], [y])  # ... does not stop the writer
            for i in range(3):
                step.append(x=i, y=i)
            assert read() == {"status": "running", "x": []}  # buffered, not yet written
            step.append(x=3, y=3)  # the buffer is full: written (flushed by the flusher)
            assert (step.written, step.points) == (4, 4)
            step.append(x=4, y=4)
            step.append(x=5, y=5)
            step.append(x=6, y=6)
            assert (step.written, step.points) == (4, 7)
            step.flush()
            assert read()["x"] == list(range(7))
            step.append(x=7, y=7)
            step.close()  # the step's end writes the rest
            assert read() == {"status": "running", "x": list(range(8))}
        assert read() == {"status": "completed", "x": list(range(8))}
    finally:
        for proc in (reader, holder):
            proc.kill()
            proc.wait()
    with h5py.File(path, "r") as f:
        assert f["sweep/y"][:].tolist() == list(range(8))


WRITER = """
import sys
from hil.store import Column, RunWriter
run = RunWriter(sys.argv[1], experiment="kill", station_yaml="", snapshot={})
step = run.begin_step("sweep", [Column("x", "Hz", "x")], [Column("y", "V", "y")])
i = 0
while True:
    for _ in range(200):
        step.append(x=i, y=2.0 * i)
        i += 1
    step.flush()
    print(i, flush=True)
"""


def test_sigkill_while_streaming_keeps_every_flushed_point(tmp_path):
    path = tmp_path / "run.h5"
    writer = python_child(WRITER, str(path))
    try:
        flushed = max(int(read_line(writer)) for _ in range(5))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    record = open_run(path)
    assert record.status == "running"
    assert record.ended is None
    step = record.steps["sweep"]
    points = step.sizes["x"]
    assert points >= flushed
    np.testing.assert_array_equal(step["x"].values[:flushed], np.arange(flushed))
    np.testing.assert_array_equal(step["y"].values[:flushed], 2.0 * np.arange(flushed))
    brief = summary(path)
    assert brief.pop("lab_time_s") >= 0.0  # as of the last structure phase (the step's start)
    assert brief == {"status": "running", "state": "interrupted",
                     "steps": {"sweep": {"points": points, "planned": None,
                                         "lab_time_s": None, "results": {}}}}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # reading changed nothing


def test_the_flusher_writes_a_point_within_the_flush_interval_without_another_append(tmp_path):
    """The 1 s promise holds when the next point never comes (a slow instrument, a hang)."""
    path = tmp_path / "run.h5"
    x, y = Column("x", "s", "x"), Column("y", "V", "y")
    reader = python_child(READER)
    try:
        assert read_line(reader) == "ready"
        with new_run(path, flush_interval=0.3) as run:
            step = run.begin_step("sweep", [x], [y])
            reader.stdin.write(f"{path}\n")  # a first read: the reader's imports are done
            reader.stdin.flush()
            assert json.loads(read_line(reader))["x"] == []
            step.append(x=0.0, y=0.0)
            appended = time.monotonic()
            seen: list = []
            while time.monotonic() - appended < 3 and not seen:
                reader.stdin.write(f"{path}\n")
                reader.stdin.flush()
                seen = json.loads(read_line(reader))["x"]
            assert seen == [0.0]
            assert time.monotonic() - appended < 0.3 + 0.5  # interval, plus a reader's open
            step.close()
    finally:
        reader.kill()
        reader.wait()


# -- traces, grids, plans ----------------------------------------------------------------------


def test_trace_columns_are_two_dimensional_with_the_axis_as_second_dimension(tmp_path):
    path = tmp_path / "run.h5"
    freq = Axis("frequency", "Hz", "probe frequency", np.linspace(4e9, 6e9, 1001))
    trace = Column("s21", "", "|S21|", freq)
    power = Column("pump_power", "W", "pump power")
    traces = np.random.default_rng(0).random((7, 1001))
    with new_run(path) as run, run.begin_step("vna", [power], [trace]) as step:
        for i, row in enumerate(traces):
            step.append(1e-3 * i, row)
        with pytest.raises(ValueError, match=r"column 's21': expected a real trace of shape"):
            step.append(1.0, row[:10])
    with h5py.File(path, "r") as f:
        ds = f["vna/s21"]
        assert ds.shape == (7, 1001) and ds.maxshape == (None, 1001)
        assert ds.dims[0][0].name == "/vna/pump_power"
        assert ds.dims[1][0].name == "/vna/frequency"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_dataset(path, group="vna", engine="h5netcdf") as ds:
            assert ds["s21"].dims == ("pump_power", "frequency")
            np.testing.assert_array_equal(ds["s21"].values, traces)
            np.testing.assert_array_equal(ds["frequency"].values, freq.values)
            assert ds["frequency"].attrs["units"] == "Hz"
    step = open_run(path).steps["vna"]
    assert step["s21"].dims == ("pump_power", "frequency")
    np.testing.assert_array_equal(step["s21"].values, traces)


def test_a_wide_trace_buffers_fewer_points_so_the_buffer_stays_bounded(tmp_path):
    axis = Axis("f", "Hz", "f", np.arange(100_000.0))
    with new_run(tmp_path / "run.h5", buffer_bytes=2**20) as run:
        step = run.begin_step("wide", [Column("i", "", "i")], [Column("t", "", "t", axis)])
        for i in range(5):  # 800 kB a point: a 1 MiB buffer holds one, so each is written
            step.append(float(i), np.full(100_000, i))
            assert step.written == step.points == i + 1
        step.close()
    assert open_run(tmp_path / "run.h5").steps["wide"]["t"].values[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_a_nested_sweep_is_flat_on_disk_and_a_grid_in_open_run(tmp_path):
    path = tmp_path / "run.h5"
    outer, inner = Column("power", "W", "pump power"), Column("detuning", "Hz", "detuning")
    plan = {"power": [1e-3, 2e-3, 3e-3], "detuning": [-1e6, 0.0, 1e6, 2e6]}
    with new_run(path) as run, run.begin_step("map", [outer, inner], [S21], plan=plan) as step:
        for k in range(10):  # stopped before the end: points 10 and 11 never taken
            i, j = divmod(k, 4)
            step.append(plan["power"][i], plan["detuning"][j], float(k))
    with xr.open_dataset(path, group="map", engine="h5netcdf") as ds:
        assert ds["s21_mag"].dims == ("point",)
        assert ds.sizes["point"] == 10
        assert ds["planned_detuning"].values.tolist() == plan["detuning"]
    record = open_run(path)
    grid = record.steps["map"]
    assert grid["s21_mag"].dims == ("power", "detuning")
    assert grid["power"].values.tolist() == plan["power"]
    assert grid["detuning"].attrs["units"] == "Hz"
    expected = np.full(12, np.nan)
    expected[:10] = np.arange(10)
    np.testing.assert_array_equal(grid["s21_mag"].values, expected.reshape(3, 4))
    assert (record.points["map"], record.planned["map"]) == (10, 12)


def test_plans_are_checked(tmp_path):
    with new_run(tmp_path / "run.h5") as run:
        with pytest.raises(ValueError, match="must give values for the setpoints"):
            run.begin_step("a", [FREQ], [S21], plan={"power": [1.0]})
        with pytest.raises(ValueError, match="setpoint 'frequency' cannot be a trace"):
            axis = Axis("f", "Hz", "f", [1.0, 2.0])
            run.begin_step("b", [Column("frequency", "Hz", "f", axis)], [S21])


def test_results_can_be_set_after_a_step_closed(tmp_path):
    path = tmp_path / "run.h5"
    with new_run(path) as run:
        with run.begin_step("sweep", [FREQ], [S21]) as step:
            step.append(1.0, 0.5)
        run.set_results("sweep", {"q": Result(1e6, "", 2e3)})
        run.mark_call_done("optical_resonance")
        with pytest.raises(ValueError, match="no step 'nope'"):
            run.set_results("nope", {"q": Result(1.0, "")})
    record = open_run(path)
    assert record.results["sweep"] == {"q": Result(1e6, "", 2e3)}
    assert record.calls_done == ["optical_resonance"]


# -- events ------------------------------------------------------------------------------------


def test_long_and_unicode_event_messages_survive_whole(tmp_path):
    path = tmp_path / "run.h5"
    message = "µK ✓ " * 700  # several records' worth, multi-byte characters across the cuts
    with new_run(path) as run:
        run.event("note", message)
        run.event("kind-" + "ß" * 40, "")
    events = open_run(path).events
    assert events[0][1:] == ("note", message)
    assert events[1][2] == ""
    assert events[1][1].startswith("kind-ß")


EVENT_WRITER = """
import os, signal, sys
from hil.store import Column, RunWriter
run = RunWriter(sys.argv[1], experiment="kill", station_yaml="", snapshot={},
                flush_interval=60)
step = run.begin_step("sweep", [Column("x", "Hz", "x")], [Column("y", "V", "y")])
for i in range(10):
    step.append(float(i), 0.0)
run.event("interlock", "tripped mid-step")  # streamed: on disk at once (points too)
for i in range(10, 20):
    step.append(float(i), 0.0)  # buffered only: lost with the process
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_event_during_a_step_survives_sigkill(tmp_path):
    path = tmp_path / "run.h5"
    child = python_child(EVENT_WRITER, str(path))
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    record = open_run(path)
    assert [e[1:] for e in record.events] == [("interlock", "tripped mid-step")]
    assert record.state == "interrupted"
    assert record.points == {"sweep": 10}


# -- a writer killed while changing the file's structure --------------------------------------

STRUCTURE_KILLER = """
import os, signal, sys
from hil.store import Column, RunWriter
run = RunWriter(sys.argv[1], experiment="kill", station_yaml="", snapshot={})
step = run.begin_step("sweep", [Column("x", "Hz", "x")], [Column("y", "V", "y")])
for i in range(100):
    step.append(float(i), 2.0 * i)
run.event("note", "before the structure phase")
with run._structure() as f:  # a structure phase, killed half way
    f.create_group("half")
    f.attrs["status"] = "garbled?"
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_file_killed_in_a_structure_phase_is_read_without_touching_it(tmp_path):
    path = tmp_path / "run.h5"
    child = python_child(STRUCTURE_KILLER, str(path))
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    for kwargs in ({}, {"swmr": True}):  # what HDF5 alone makes of it
        with pytest.raises(OSError):
            h5py.File(path, "r", **kwargs)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    record = open_run(path)
    assert record.recovered
    assert record.state in ("interrupted", "garbled?")
    np.testing.assert_array_equal(record.steps["sweep"]["y"].values, 2.0 * np.arange(100))
    assert ("note", "before the structure phase") in [e[1:] for e in record.events]
    assert summary(path)["steps"]["sweep"]["points"] == 100
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_cleared_flags_view_checksum_matches_hdf5():
    from hil.store import _lookup3

    # Reference values of Bob Jenkins' lookup3 hashlittle (initval 0) from its self-test.
    assert _lookup3(b"") == 0xDEADBEEF
    assert _lookup3(b"Four score and seven years ago") == 0x17770551


# -- resume ------------------------------------------------------------------------------------

RESUMABLE_WRITER = """
import sys
from hil.store import Column, RunWriter
run = RunWriter(sys.argv[1], experiment="kill", station_yaml="x: 1", snapshot={},
                params={"step": {"n": 3}})
step = run.begin_step("sweep", [Column("x", "Hz", "x")], [Column("y", "V", "y")],
                      attrs={"call": "kill"}, plan={"x": [float(i) for i in range(100000)]})
i = 0
while True:
    step.append(float(i), 2.0 * i)
    i += 1
    if i % 500 == 0:
        step.flush()
        print(i, flush=True)
"""


def test_resume_rebuilds_the_file_in_place_and_continues_without_duplicates(tmp_path):
    path = tmp_path / "run.h5"
    writer = python_child(RESUMABLE_WRITER, str(path))
    try:
        flushed = max(int(read_line(writer)) for _ in range(3))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    on_disk = open_run(path).points["sweep"]
    assert on_disk >= flushed

    run = RunWriter.resume(path, reason="test")
    prior = run.prior["sweep"]
    assert (prior.points, prior.planned_points, prior.complete) == (on_disk, 100000, False)
    assert prior.attrs["call"] == "kill"
    np.testing.assert_array_equal(run.read_prior("sweep")["y"], 2.0 * np.arange(on_disk))
    assert json.loads(run.prior_root["params"]) == {"step": {"n": 3}}
    with h5py.File(path, "r") as f:  # a clean file again: a plain open works
        assert f.attrs["status"] == "running"
    step = run.continue_step("sweep")
    for i in range(on_disk, on_disk + 10):
        step.append(float(i), 2.0 * i)
    step.close()
    run.finish("completed")

    record = open_run(path)
    x = record.steps["sweep"]["x"].values
    np.testing.assert_array_equal(x, np.arange(on_disk + 10))
    assert record.status == "completed"
    assert [e[1] for e in record.events] == ["resume"]
    assert f"sweep: {on_disk} of 100000 points" in record.events[0][2]
    assert not list(tmp_path.glob(".*resuming"))


def test_resume_refuses_finished_and_live_runs(tmp_path):
    done = tmp_path / "done.h5"
    with new_run(done):
        pass
    with pytest.raises(RunFileError, match=r"the run ended \(completed\)"):
        RunWriter.resume(done)
    live = tmp_path / "live.h5"
    with new_run(live) as run:  # written by this very process: alive
        with pytest.raises(RunFileError, match="is still running"):
            RunWriter.resume(live)
        assert open_run(live).state == "running"
        run.finish("aborted")


# -- suspect results and lab time, through the runner and the hil command ----------------------


def _doubtful_step(settle_s: float, after_s: float):
    """A step that waits known virtual times around a short sweep and reports a suspect result."""
    from hil.clock import clock_of, wait

    seen: dict[str, float] = {}

    def doubtful(lab, run):
        clock = clock_of(lab)
        seen["clock"] = clock
        lab.pump.enable_output()
        wait(lab, settle_s)
        before = clock.now()
        run.sweep("scan", lab.pump.wavelength, 1550.05e-9 + 0.1e-12 * np.arange(5),
                  {"power": lab.meter.power})
        seen["sweep_s"] = clock.now() - before  # whatever the instruments charge the clock
        run.record_results("scan", {
            "center": Result(1550.0e-9, "m", 1e-12),
            "kappa": Result(1.0e9, "Hz", 5e7, suspect="dip depth 2 % < 10 %: fit unreliable")})
        wait(lab, after_s)

    return doubtful, seen


def test_a_suspect_result_and_the_lab_time_reach_the_file_show_and_the_exit_code(
        tmp_path, optical, monkeypatch):
    from click.testing import CliRunner

    from hil import cli
    from hil.experiment import Experiment

    step, seen = _doubtful_step(settle_s=90.0, after_s=30.0)
    monkeypatch.setattr(cli.experiment, "find", lambda name: Experiment(name, step))
    out = tmp_path / "doubt.h5"
    ran = CliRunner().invoke(cli.main, ["run", "doubtful", "--station", str(optical),
                                        "--out", str(out)])
    assert ran.exit_code == 3, ran.output  # completed, but with a suspect result
    assert "suspect" in ran.output and "dip depth 2 % < 10 %" in ran.output
    assert "lab time" in ran.output

    expected_step = 90.0 + seen["sweep_s"] + 30.0
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "completed"
        group = f["scan"].attrs
        assert group["result.kappa.suspect"] == "dip depth 2 % < 10 %: fit unreliable"
        assert "result.center.suspect" not in group
        assert group["lab_time_s"] == pytest.approx(expected_step, abs=1e-9)
        total = f.attrs["lab_time_s"]
    assert expected_step <= total <= seen["clock"].now()

    shown = CliRunner().invoke(cli.main, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "suspect result(s): scan.kappa: dip depth 2 % < 10 %: fit unreliable" in shown.output
    assert f"lab time {cli.format_duration(expected_step)}" in shown.output
    as_json = json.loads(CliRunner().invoke(cli.main, ["show", str(out), "--json"]).output)
    assert as_json["lab_time_s"] == pytest.approx(total)
    scan = as_json["steps"]["scan"]
    assert scan["lab_time_s"] == pytest.approx(expected_step, abs=1e-9)
    assert scan["results"]["kappa"] == {"value": 1.0e9, "unit": "Hz", "stderr": 5e7,
                                        "suspect": "dip depth 2 % < 10 %: fit unreliable"}
    assert scan["results"]["center"] == {"value": 1550.0e-9, "unit": "m", "stderr": 1e-12}


def test_a_copied_calibration_keeps_its_suspect_flag(tmp_path):
    from hil.calibration import CalibrationStore
    from hil.catalog import open_catalog

    doubt = "only 3 points in the linewidth"
    store = CalibrationStore(open_catalog(None, tmp_path), "twin")
    store.record("optical", {"kappa": Result(1e9, "Hz", 1e7, suspect=doubt),
                             "center": Result(1.55e-6, "m")}, run="runs/a.h5", valid_for_s=3600)
    kept = CalibrationStore(open_catalog(None, tmp_path), "twin").latest("optical").results
    assert kept["kappa"].suspect == doubt and kept["center"].suspect is None
    path = tmp_path / "run.h5"
    with new_run(path) as run:
        run.copy_results("optical", kept, {"copied_from": "runs/a.h5"})
    group = attrs_of(path, "optical")
    assert group["result.kappa.suspect"] == doubt
    assert "result.center.suspect" not in group
    assert group["copied_from"] == "runs/a.h5"
    assert open_run(path).results["optical"]["kappa"].suspect == doubt
