"""Damaged and incomplete run files (issue 12, case 9): each is reported per step, no traceback.

A finished run file is hurt the ways files get hurt (cut short by 8 bytes and by 1 MB, a step
group or a column deleted, one bit flipped in a data chunk); ``open_run``, ``summary`` and
``hil show`` must read what is readable, say per step what is not, and never raise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hil.cli import main
from hil.results import Result
from hil.store import Axis, Column, RunWriter, open_run, summary

AXIS = Axis("frequency", "Hz", "probe frequency", np.linspace(4.0e9, 4.1e9, 201))
STEPS = ("optical", "microwave", "noise")
POINTS = 300


def trace(i: int) -> np.ndarray:
    return np.full(AXIS.values.size, float(i))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A completed run: three planned steps of 300 points, each with a trace per point."""
    path = tmp_path_factory.mktemp("damaged") / "finished.h5"
    with RunWriter(path, experiment="chain", station_yaml="instruments: {}\n",
                   snapshot={}) as run:
        for k, name in enumerate(STEPS):
            with run.begin_step(name, [Column("x", "V", "bias")],
                                [Column("y", "W", "power"), Column("s21", "", "|S21|", AXIS)],
                                plan={"x": np.arange(POINTS, dtype=float)}) as step:
                for i in range(POINTS):
                    step.append(float(i), 2.0 * i + k, trace(i))
                step.set_results({"r": Result(1.0 + k, "V", 0.1)})
            run.mark_call_done(name)
    assert path.stat().st_size > 2**20  # so that cutting 1 MB leaves a file
    return path


def damaged_copy(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.h5"
    shutil.copyfile(finished, copy)
    return copy


def shown(path: Path) -> str:
    """``hil show`` and ``hil show --json`` both succeed; returns the text output."""
    text = CliRunner().invoke(main, ["show", str(path)], terminal_width=200)
    assert text.exit_code == 0, text.output
    assert "Traceback" not in text.output
    as_json = CliRunner().invoke(main, ["show", str(path), "--json"])
    assert as_json.exit_code == 0, as_json.output
    json.loads(as_json.output)
    return text.output


def test_a_file_cut_by_8_bytes_is_read_whole_and_said_to_be_truncated(finished, tmp_path):
    path = damaged_copy(finished, tmp_path)
    os.truncate(path, path.stat().st_size - 8)
    record = open_run(path)
    assert record.status == "completed"
    assert set(record.steps) == set(STEPS) and not record.unreadable
    for k, name in enumerate(STEPS):
        np.testing.assert_array_equal(record.steps[name]["y"].values,
                                      2.0 * np.arange(POINTS) + k)
    assert any("truncated" in p for p in record.problems[""])
    assert "truncated" in shown(path)


def test_a_file_cut_by_1_mb_reports_each_step_readable_or_not(finished, tmp_path):
    path = damaged_copy(finished, tmp_path)
    os.truncate(path, path.stat().st_size - 2**20)
    record = open_run(path)
    assert any("truncated" in p for p in record.problems[""])
    # Every step is accounted for: read, or listed as unreadable with the reason.
    assert set(record.steps) | set(record.unreadable) == set(STEPS)
    for name, why in record.unreadable.items():
        assert "past the end of the file" in why, (name, why)
    brief = summary(path, check=True)
    assert set(brief["steps"]) == set(STEPS)
    output = shown(path)
    for name in STEPS:
        assert f"step {name}" in output


def test_a_deleted_step_group_is_flagged_against_the_recorded_steps(finished, tmp_path):
    path = damaged_copy(finished, tmp_path)
    with h5py.File(path, "a") as f:
        del f["microwave"]
    record = open_run(path)
    assert set(record.steps) == {"optical", "noise"}
    assert record.unreadable == {"microwave": "missing"}
    assert "step group missing" in record.problems["microwave"][0]
    brief = summary(path)
    assert "step group missing" in brief["steps"]["microwave"]["problems"][0]
    assert "step group missing" in shown(path)


def test_a_deleted_column_is_flagged_and_the_rest_of_the_step_is_read(finished, tmp_path):
    path = damaged_copy(finished, tmp_path)
    with h5py.File(path, "a") as f:
        del f["noise/y"]
    record = open_run(path)
    assert record.problems["noise"] == ["column 'y' missing: the step's schema lists it"]
    step = record.steps["noise"]
    assert "y" not in step
    np.testing.assert_array_equal(step["s21"].values[7], trace(7))
    assert "noise" not in record.unreadable and "optical" not in record.problems
    assert "column 'y' missing" in shown(path)


def test_a_flipped_bit_in_a_data_chunk_is_caught_by_its_checksum(finished, tmp_path):
    path = damaged_copy(finished, tmp_path)
    with h5py.File(path, "r") as f:
        ds = f["optical/s21"]
        assert ds.fletcher32
        chunk = ds.id.get_chunk_info(0)
    with path.open("r+b") as handle:  # one bit, in the middle of the chunk's bytes
        handle.seek(chunk.byte_offset + chunk.size // 2)
        byte = handle.read(1)[0]
        handle.seek(chunk.byte_offset + chunk.size // 2)
        handle.write(bytes([byte ^ 0x08]))
    record = open_run(path)
    [problem] = record.problems["optical"]
    assert problem.startswith("column 's21': points 0-") and "Fletcher-32" in problem
    step = record.steps["optical"]
    assert np.isnan(step["s21"].values[0]).all()  # never the flipped value
    np.testing.assert_array_equal(step["y"].values, 2.0 * np.arange(POINTS))
    assert not record.problems.get("microwave")
    brief = summary(path, check=True)
    assert "Fletcher-32" in brief["steps"]["optical"]["problems"][0]
    assert "Fletcher-32" in shown(path)


def test_a_file_being_written_reads_with_xarray_as_the_readme_says(tmp_path):
    path = tmp_path / "live.h5"
    run = RunWriter(path, experiment="x", station_yaml="a: 1\n", snapshot={})
    step = run.begin_step("sweep", [Column("x", "V", "bias")], [Column("y", "W", "power")])
    for i in range(10):
        step.append(float(i), 2.0 * i)
    step.flush()
    try:
        code = ("import xarray as xr, sys\n"
                "ds = xr.open_dataset(sys.argv[1], group='sweep', engine='h5netcdf',\n"
                "                     driver_kwds={'swmr': True, 'locking': False})\n"
                "print(ds['y'].values.tolist())\n")
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [2.0 * i for i in range(10)]
    finally:
        step.close()
        run.finish("completed")
