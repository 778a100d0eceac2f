"""Export a finished run file for other tools: one netCDF file, or datasets in a QCoDeS database.

``hil export RUN.h5 --to netcdf OUT.nc`` writes every step group as a netCDF-4 group of one file
(``xarray.open_dataset(OUT, group=STEP)``), the run's root attributes at its root.
``--to qcodes DB.db`` writes each step as a QCoDeS dataset (the run's experiment and sample,
the step's columns with their units, the run's metadata and the step's results as dataset
metadata), which ``qcodes.dataset.load_by_guid`` and plottr open.

Only a run that ended is exported, and only when it reads back whole: a file still being
written, interrupted (``hil resume`` it first) or damaged is refused, as is an output that
exists. The output is written beside its final name and renamed into place once complete, so
a failure leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray

from hil.store import RunRecord, describe, open_run, result_json
from hil.store.schema import RunFileError

FORMATS = ("netcdf", "qcodes")
ENDED = ("completed", "failed", "aborted", "interlocked")
#: Root attributes copied to the export (both formats): how, when and where the run went.
ROOT_KEYS = ("experiment", "status", "started", "ended", "lab_time_s", "station_path", "station",
             "params", "software")

__all__ = ["ENDED", "FORMATS", "ExportError", "export", "to_netcdf", "to_qcodes"]


class ExportError(ValueError):
    """The run cannot be exported as asked (state, damage, an existing output)."""


def export(run: str | Path, to: str, out: str | Path) -> list[str]:
    """Export ``run`` to ``out`` in format ``to`` (``netcdf`` or ``qcodes``); returns what to
    tell the user, one line per step (its group, or for qcodes its dataset's GUID)."""
    if to not in FORMATS:
        raise ExportError(f"--to {to}: unknown format; formats: {', '.join(FORMATS)}")
    record, root = read_ended(Path(run))
    writer: Callable[[RunRecord, Mapping[str, Any], Path], list[str]] = (
        to_netcdf if to == "netcdf" else to_qcodes)
    return _into_place(Path(out), lambda tmp: writer(record, root, tmp))


def read_ended(path: Path) -> tuple[RunRecord, dict[str, Any]]:
    """The run and its root attributes, if it ended and reads back whole; else ExportError."""
    if not path.is_file():
        raise ExportError(f"{path}: no such run file")
    try:
        record = open_run(path)
        described = describe(path)
    except (OSError, RunFileError) as exc:
        raise ExportError(f"{path}: not a readable run file ({exc})") from None
    if record.state not in ENDED:
        why = {"running": "a run is still writing it; export it when it ends",
               "interrupted": "its run was interrupted; `hil resume` it first",
               }.get(record.state, f"its state is {record.state!r}")
        raise ExportError(f"{path}: not exported: {why}")
    problems = [f"{step or 'run'}: {p}" for step, ps in record.problems.items() for p in ps]
    if problems or record.unreadable:
        problems += [f"{step}: {why}" for step, why in record.unreadable.items()]
        raise ExportError(f"{path}: damaged, not exported: {'; '.join(problems)}")
    root = {key: described[key] for key in ROOT_KEYS if described.get(key) is not None}
    root["metadata"] = dict(described.get("metadata") or {})
    root["run_file"] = str(path.resolve())
    return record, root


def to_netcdf(record: RunRecord, root: Mapping[str, Any], out: Path) -> list[str]:
    """Every step as a group of one netCDF-4 file; root attributes at its root."""
    attrs = {k: v for k, v in root.items() if k != "metadata"}
    attrs.update({f"metadata.{k}": v for k, v in root["metadata"].items()})
    xarray.Dataset(attrs=_netcdf_attrs(attrs)).to_netcdf(out, mode="w", engine="h5netcdf")
    for step, data in record.steps.items():
        clean = data.copy()
        clean.attrs = _netcdf_attrs(data.attrs)
        for name in clean.variables:
            clean[name].attrs = _netcdf_attrs(clean[name].attrs)
        clean.to_netcdf(out, mode="a", group=step, engine="h5netcdf")
    return [f"{step}: group {step}" for step in record.steps]


def to_qcodes(record: RunRecord, root: Mapping[str, Any], out: Path) -> list[str]:
    """Each step as a QCoDeS dataset in the SQLite database ``out``; one line per GUID."""
    from qcodes.dataset import load_or_create_experiment
    from qcodes.dataset.sqlite.database import connect

    meta = root["metadata"]
    conn = connect(str(out))
    lines = []
    try:
        experiment = load_or_create_experiment(
            str(root.get("experiment") or "hil"),
            sample_name=str(meta.get("sample") or meta.get("device") or "unknown"), conn=conn)
        for step, data in record.steps.items():
            guid = _qcodes_dataset(experiment, step, data, root, record.results.get(step, {}))
            lines.append(f"{step}: {guid}")
    finally:
        conn.close()
    return lines


def _qcodes_dataset(experiment: Any, step: str, data: xarray.Dataset,
                    root: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """One step: its dimensions as setpoints, each data variable depending on its own."""
    from qcodes.dataset import Measurement

    measurement = Measurement(exp=experiment, name=step)
    axes: dict[str, np.ndarray] = {}
    for name, variable in data.data_vars.items():
        for dim in map(str, variable.dims):
            if dim not in axes:
                axes[dim] = (np.asarray(data[dim].values, dtype=float) if dim in data.coords
                             else np.arange(data.sizes[dim], dtype=float))
                measurement.register_custom_parameter(dim, **_described(data, dim))
        measurement.register_custom_parameter(str(name), setpoints=[str(d) for d in variable.dims],
                                              paramtype=_paramtype(variable),
                                              **_described(data, str(name)))
    with contextlib.redirect_stdout(io.StringIO()), measurement.run() as saver:
        # (QCoDeS prints "Starting experimental run ..." for each: the GUIDs are what we tell)
        for name, variable in data.data_vars.items():
            dims = [str(d) for d in variable.dims]
            grids = np.meshgrid(*[axes[d] for d in dims], indexing="ij")
            saver.add_result(*((d, g.ravel()) for d, g in zip(dims, grids, strict=True)),
                             (str(name), np.asarray(variable.values).ravel()))
        dataset = saver.dataset
        for key, value in root.items():
            if key != "metadata":
                dataset.add_metadata(f"hil_{key}", value if isinstance(value, str | int | float)
                                     else json.dumps(value))
        for key, value in root["metadata"].items():
            dataset.add_metadata(f"hil_meta_{key}", value)
        dataset.add_metadata("hil_step", step)
        if results:
            dataset.add_metadata("hil_results", json.dumps(
                {k: result_json(r) for k, r in results.items()}))
        return dataset.guid


def _described(data: xarray.Dataset, name: str) -> dict[str, str]:
    attrs = data[name].attrs if name in data.variables else {}
    return {"unit": str(attrs.get("units", "")), "label": str(attrs.get("long_name", name))}


def _paramtype(variable: xarray.DataArray) -> str:
    return "complex" if np.iscomplexobj(variable.values) else "numeric"


def _netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can hold: text, numbers and arrays of numbers; the rest as JSON."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid"):
            continue  # HDF5 dimension-scale bookkeeping; netCDF writes its own
        if isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif isinstance(value, str | int | float | np.integer | np.floating):
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = str(value)
            else:
                out[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
            out[key] = value
        elif value is not None:
            out[key] = json.dumps(value, default=str)
    return out


def _into_place(out: Path, write: Callable[[Path], list[str]]) -> list[str]:
    """Write beside ``out``, rename into place when complete; refuse an existing ``out``."""
    if out.exists():
        raise ExportError(f"{out}: exists already; an export never overwrites a file")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: no folder {out.parent}")
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        lines = write(tmp)
        os.link(tmp, out)  # fails if ``out`` appeared meanwhile: never overwritten
    finally:
        tmp.unlink(missing_ok=True)
    return lines
