"""hil export: a run on the twin (a scalar step and a trace step, with metadata) exported to
netCDF and to a QCoDeS database, each opened with the other tool's own reader and compared
with the run file; bad input is refused with exit 2 and leaves no output."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray
from click.testing import CliRunner
from exp_support import STATION_A
from rich.console import Console

import hil
from experiments.calibration.cryostat_check import cryostat_check
from experiments.calibration.microwave_resonance import microwave_resonance
from hil.cli import main
from hil.store import RunWriter, open_run

META = {"device": "T1", "sample": "S7", "cooldown": "CD12"}


def pair(lab, run) -> None:
    """The cryostat check (one scalar per point), then the microwave resonance (traces)."""
    for step in pair.steps:
        run.call(step)


pair.steps = [cryostat_check, microwave_resonance]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HIL_LOCK_DIR", str(folder / "locks"))
        env.delenv("HIL_CATALOG", raising=False)
        with hil.open_lab(STATION_A) as lab:
            done = hil.run_step(pair, lab=lab, out=folder / "runs" / "pair.h5", meta=META,
                                cryostat_check={"duration_s": 10.0, "interval_s": 2.0},
                                console=Console(file=io.StringIO()))
    assert done.status == "completed"
    return done.path


def export(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["export", *args])
    return result.exit_code, result.output


def test_netcdf_holds_every_step_as_a_group_with_units_and_metadata(run_file, tmp_path):
    out = tmp_path / "pair.nc"
    code, output = export(str(run_file), "--to", "netcdf", str(out))
    assert code == 0, output
    record = open_run(run_file)
    assert set(record.steps) == {"cryostat_check", "microwave_resonance_search",
                                 "microwave_resonance"}
    for step, original in record.steps.items():
        with xarray.open_dataset(out, group=step) as exported:  # the default engine
            assert set(exported.data_vars) == set(original.data_vars)
            for name, variable in original.variables.items():
                np.testing.assert_array_equal(exported[name].values, variable.values)
                assert exported[name].attrs.get("units") == variable.attrs.get("units"), name
            for name, result in record.results.get(step, {}).items():
                assert exported.attrs[f"result.{name}"] == result.value
                assert exported.attrs[f"result.{name}.unit"] == result.unit
    assert record.steps["cryostat_check"]["mxc_temperature"].attrs["units"] == "K"
    with xarray.open_dataset(out) as root:
        assert root.attrs["experiment"] == "pair" and root.attrs["status"] == "completed"
        assert root.attrs["metadata.device"] == "T1" and root.attrs["metadata.cooldown"] == "CD12"
        assert root.attrs["run_file"] == str(run_file.resolve())


def test_qcodes_datasets_open_by_guid_with_units_and_metadata(run_file, tmp_path):
    from qcodes.dataset import load_by_guid
    from qcodes.dataset.sqlite.database import connect

    db = tmp_path / "lab.db"
    code, output = export(str(run_file), "--to", "qcodes", str(db))
    assert code == 0, output
    guids = dict(line.split(": ") for line in output.splitlines() if ": " in line)
    record = open_run(run_file)
    assert set(guids) == set(record.steps)
    conn = connect(str(db))
    try:
        for step, guid in guids.items():
            dataset = load_by_guid(guid, conn=conn)
            assert dataset.name == step and dataset.exp_name == "pair"
            assert dataset.sample_name == "S7"
            assert dataset.metadata["hil_meta_device"] == "T1"
            assert dataset.metadata["hil_status"] == "completed"
            original = record.steps[step]
            exported = dataset.to_xarray_dataset()
            for name, variable in original.data_vars.items():
                assert dataset.paramspecs[name].unit == variable.attrs["units"]
                # QCoDeS reads 'numeric' values back through SQLite's text form, which keeps
                # 15 significant digits (its _convert_numeric gets bytes): equal to that.
                np.testing.assert_allclose(exported[name].transpose(*variable.dims).values,
                                           variable.values, rtol=1e-14, atol=0)
            for dim in original["s11_real"].dims if "s11_real" in original else ():
                assert dataset.paramspecs[dim].unit == original[dim].attrs.get("units", "")
            stored = json.loads(dataset.metadata.get("hil_results", "{}"))
            for name, result in record.results.get(step, {}).items():
                assert stored[name]["value"] == result.value and stored[name]["unit"] == result.unit
        trace = load_by_guid(guids["microwave_resonance"], conn=conn)
        assert trace.paramspecs["frequency_axis"].unit == "Hz"
        assert trace.paramspecs["s11_real"].depends_on == "sweep, frequency_axis"
    finally:
        conn.close()


def damaged(run_file: Path, folder: Path) -> Path:
    copy = folder / "damaged.h5"
    shutil.copyfile(run_file, copy)
    with h5py.File(copy, "a") as f:
        del f["microwave_resonance/s11_imag"]
    return copy


@pytest.mark.parametrize("case", ["missing", "running", "damaged", "format", "exists"])
def test_bad_input_is_refused_with_exit_2_and_no_output(case, run_file, tmp_path):
    out = tmp_path / "out.nc"
    source, fmt, expected = str(run_file), "netcdf", ""
    writer = None
    if case == "missing":
        source, expected = str(tmp_path / "nope.h5"), "nope.h5: no such run file"
    elif case == "running":
        source = str(tmp_path / "live.h5")
        writer = RunWriter(source, experiment="x", station_yaml="instruments: {}\n", snapshot={})
        expected = "live.h5: not exported: a run is still writing it"
    elif case == "damaged":
        source = str(damaged(run_file, tmp_path))
        expected = "damaged.h5: damaged, not exported: microwave_resonance: column 's11_imag'"
    elif case == "format":
        fmt, expected = "csv", "Invalid value for '--to'"
    else:
        out.write_bytes(b"mine")
        expected = "out.nc: exists already"
    try:
        code, output = export(source, "--to", fmt, str(out))
    finally:
        if writer is not None:
            writer.finish("completed")
    assert code == 2, output
    assert expected in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))) == (
        ["out.nc"] if case == "exists" else [])
    if case == "exists":
        assert out.read_bytes() == b"mine"
