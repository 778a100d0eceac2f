"""Reading a run file into xarray: steps, results, events, and the JSON summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from hil.results import Result

if TYPE_CHECKING:
    import xarray
from hil.store.provenance import _state
from hil.store.recovery import _read
from hil.store.schema import (
    _BOOKKEEPING_ATTRS,
    _RESULT_PREFIX,
    LAB_TIME_ATTR,
    PLANNED,
    POINT,
    SCHEMA_ATTR,
    RunFileError,
    _finite_or_none,
    _json_list,
    _optional_str,
    _text,
)


@dataclass
class RunRecord:
    """Everything in a run file, as read by :func:`open_run`.

    ``state`` is ``status``, except for a run whose status says ``running`` while no process
    writes it: then ``interrupted`` (``unknown`` when its writer ran on another host).
    ``recovered`` tells that the file had to be read through the cleared-flags view (its writer
    died while changing its structure). ``points`` counts each step's points on disk (the
    checkpoint a resume continues from), ``planned`` its planned points (None without a plan).
    """

    path: Path
    status: str
    started: str
    ended: str | None
    experiment: str
    station_yaml: str
    snapshot: dict
    software: dict
    traceback: str | None
    steps: dict[str, xarray.Dataset]
    results: dict[str, dict[str, Result]]
    events: list[tuple[str, str, str]]
    state: str = ""
    recovered: bool = False
    params: dict = field(default_factory=dict)
    station_path: str = ""
    writer: dict = field(default_factory=dict)
    calls_done: list[str] = field(default_factory=list)
    points: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int | None] = field(default_factory=dict)
    snapshot_end: dict | None = None
    unreadable: dict[str, str] = field(default_factory=dict)
    #: Lab time the run cost (s, on the lab's clock), None in files written before it was kept.
    lab_time_s: float | None = None
    #: Lab time each step group cost (groups without the attribute are left out).
    lab_times: dict[str, float] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.state == "interrupted"




def open_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read a run file: finished, being written by another process, or left by a dead writer."""
    return _read(path, _read_record)


def summary(path: str | os.PathLike[str]) -> dict:
    """Status and results of a run, JSON-serialisable (no step data is read).

    ``{"status", "state", "lab_time_s", "steps": {STEP: {"points", "planned", "lab_time_s",
    "results": {NAME: {"value", "unit", "stderr", "suspect"?}}}}}``. ``state`` is
    ``interrupted`` for a run left ``running`` by a dead writer (see :class:`RunRecord`);
    ``planned`` and the lab times are None when not recorded; see :func:`result_json`.
    """
    def read(f: h5py.File, where: Path, how: str) -> dict:
        status = _root_str(f, "status", where)
        steps = {}
        for name, group in _step_groups(f):
            results = {key: result_json(r) for key, r in _read_results(group).items()}
            try:
                points, planned = _points_on_disk(group), _planned_points(group)
            except Exception:  # a damaged step: report what can be
                points, planned = 0, None
            steps[name] = {"points": points, "planned": planned,
                           "lab_time_s": _lab_time(group), "results": results}
        return {"status": status, "state": _state(status, _json_attr(f, "writer", where)),
                "lab_time_s": _lab_time(f),
                "steps": steps}

    return _read(path, read)


def result_json(result: Result) -> dict[str, Any]:
    """A result as strict JSON: ``{"value", "unit", "stderr", "suspect"?}``.

    A value or stderr that is not finite (a failed fit) or unknown is None; ``suspect`` is there
    only when the result did not pass its checks.
    """
    out: dict[str, Any] = {"value": _finite_or_none(result.value), "unit": result.unit,
                           "stderr": _finite_or_none(result.stderr)}
    if result.suspect is not None:
        out["suspect"] = result.suspect
    return out


def run_state(path: str | os.PathLike[str]) -> str:
    """The run's status, or ``interrupted`` / ``unknown`` for a ``running`` file (see RunRecord)."""
    return _read(path, lambda f, where, how: _state(_root_str(f, "status", where),
                                                    _json_attr(f, "writer", where)))


def _read_record(f: h5py.File, where: Path, how: str) -> RunRecord:
    steps: dict[str, xarray.Dataset] = {}
    results: dict[str, dict[str, Result]] = {}
    points: dict[str, int] = {}
    planned: dict[str, int | None] = {}
    unreadable: dict[str, str] = {}
    for name, group in _step_groups(f):
        try:
            results[name] = _read_results(group)
            steps[name] = _read_step(group)
            points[name] = _points_on_disk(group)
            planned[name] = _planned_points(group)
        except Exception as err:
            if how != "recovered":
                raise
            unreadable[name] = str(err)
            steps.pop(name, None)
    status = _root_str(f, "status", where)
    writer = _json_attr(f, "writer", where)
    snapshot_end = _json_attr(f, "snapshot_end", where) if "snapshot_end" in f.attrs else None
    return RunRecord(
        path=where,
        status=status,
        started=_root_str(f, "started", where),
        ended=_optional_str(f.attrs.get("ended")),
        experiment=_root_str(f, "experiment", where),
        station_yaml=_optional_str(f.attrs.get("station")) or "",
        snapshot=_json_attr(f, "snapshot", where),
        software=_json_attr(f, "software", where),
        traceback=_optional_str(f.attrs.get("traceback")),
        steps=steps,
        results=results,
        events=_read_events(f),
        state=_state(status, writer),
        recovered=how == "recovered",
        params=_json_attr(f, "params", where),
        station_path=_optional_str(f.attrs.get("station_path")) or "",
        writer=writer,
        calls_done=list(_json_list(f.attrs.get("calls_done"))),
        points=points,
        planned=planned,
        snapshot_end=snapshot_end,
        lab_time_s=_lab_time(f),
        lab_times={name: t for name, group in _step_groups(f)
                   if (t := _lab_time(group)) is not None},
        unreadable=unreadable,
    )


def _lab_time(obj: h5py.File | h5py.Group) -> float | None:
    value = obj.attrs.get(LAB_TIME_ATTR)
    try:
        return None if value is None else _finite_or_none(float(value))
    except (TypeError, ValueError):
        return None


def _root_str(f: h5py.File, key: str, where: Path) -> str:
    value = _optional_str(f.attrs.get(key))
    if value is None:
        raise RunFileError(f"not a run file (no root attribute {key!r}): {where}")
    return value


def _json_attr(f: h5py.File | h5py.Group, key: str, where: Path) -> dict:
    text = _optional_str(f.attrs.get(key))
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFileError(f"run file {where}: attribute {key!r} is not JSON: {err}") from None
    return value if isinstance(value, dict) else {"value": value}


def _step_groups(f: h5py.File) -> Iterator[tuple[str, h5py.Group]]:
    for name in f:
        try:
            obj = f[name]
        except (KeyError, OSError, ValueError):
            continue  # a link to an object a crash did not finish writing
        if isinstance(obj, h5py.Group):
            yield name, obj


def _group_schema(group: h5py.Group) -> dict[str, Any] | None:
    text = _optional_str(group.attrs.get(SCHEMA_ATTR))
    if not text:
        return None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


def _row_datasets(group: h5py.Group) -> dict[str, h5py.Dataset]:
    """The datasets with one row per point (setpoints, measured, point index)."""
    schema = _group_schema(group)
    if schema is not None:
        names = [c["name"] for c in (*schema["setpoints"], *schema["measured"])]
        if len(schema["setpoints"]) != 1:
            names.append(POINT)
        return {n: group[n] for n in names if n in group}
    # Written before schemas existed: every 1-D dataset is a column.
    return {name: obj for name, obj in group.items()
            if isinstance(obj, h5py.Dataset) and obj.ndim == 1 and not name.startswith(PLANNED)}


def _points_on_disk(group: h5py.Group) -> int:
    """Points every row dataset holds: the checkpoint a resume continues from."""
    return min((ds.shape[0] for ds in _row_datasets(group).values()), default=0)


def _planned_points(group: h5py.Group) -> int | None:
    schema = _group_schema(group)
    if not schema or not schema.get("plan"):
        return None
    return int(np.prod([group[PLANNED + k].shape[0] for k in schema["plan"]]))


def _attached_scale(ds: h5py.Dataset, axis: int) -> str | None:
    try:
        scales = list(ds.dims[axis].values())
    except Exception:
        return None
    return scales[0].name.rsplit("/", 1)[-1] if scales else None


def _read_step(group: h5py.Group) -> xarray.Dataset:
    import xarray

    schema = _group_schema(group)
    rows = _row_datasets(group)
    # A writer that died mid-flush may leave columns of unequal length: keep the common part.
    length = min((ds.shape[0] for ds in rows.values()), default=0)
    coordinate_names: set[str] = set()
    for ds in rows.values():
        listed = _optional_str(ds.attrs.get("coordinates"))
        if listed:
            coordinate_names.update(listed.split())
    if schema is not None and len(schema["setpoints"]) == 1:
        row_dim = schema["setpoints"][0]["name"]
    else:
        scales = [n for n, ds in rows.items() if ds.is_scale]
        row_dim = scales[0] if scales else POINT
    coords: dict[str, xarray.Variable] = {}
    data_vars: dict[str, xarray.Variable] = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset):
            continue
        attrs = _user_attrs(ds.attrs)
        if name in rows:
            dims = [name if ds.is_scale else row_dim]
            for axis in range(1, ds.ndim):
                dims.append(_attached_scale(ds, axis) or f"{name}_dim{axis}")
            values = ds[:length] if length else np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
            variable = xarray.Variable(tuple(dims), values, attrs=attrs)
            target = coords if ds.is_scale or name in coordinate_names else data_vars
        else:  # a trace axis or a plan: its own dimension
            variable = xarray.Variable((name,), ds[:], attrs=attrs)
            target = coords
        target[name] = variable
    dataset = xarray.Dataset(data_vars, coords=coords, attrs=_user_attrs(group.attrs))
    if schema is not None and schema.get("kind") == "grid":
        dataset = _as_grid(dataset, schema, length)
    return dataset


def _as_grid(flat: xarray.Dataset, schema: Mapping[str, Any], length: int) -> xarray.Dataset:
    """A nested sweep's points (row-major) on its planned grid; points not taken are NaN."""
    import xarray

    names = [c["name"] for c in schema["setpoints"]]
    axes = [flat[PLANNED + n].values for n in names]
    shape = tuple(a.size for a in axes)
    total = int(np.prod(shape))
    coords = {n: xarray.Variable((n,), a, attrs=dict(flat[n].attrs))
              for n, a in zip(names, axes, strict=True)}
    for name, variable in flat.coords.items():
        if name not in names and name != POINT and not name.startswith(PLANNED):
            coords[name] = variable.variable
    data_vars = {}
    for name, variable in flat.data_vars.items():
        rest = variable.shape[1:]
        grid = np.full((total, *rest), np.nan)
        count = min(length, total)
        grid[:count] = variable.values[:count]
        dims = (*names, *variable.dims[1:])
        data_vars[name] = xarray.Variable(dims, grid.reshape(*shape, *rest),
                                          attrs=dict(variable.attrs))
    return xarray.Dataset(data_vars, coords=coords, attrs=dict(flat.attrs))


def _read_results(group: h5py.Group) -> dict[str, Result]:
    attrs = group.attrs
    results: dict[str, Result] = {}
    for key in attrs:
        if not key.startswith(_RESULT_PREFIX):
            continue
        name = key[len(_RESULT_PREFIX):]
        if "." in name:
            continue  # a companion: .unit, .stderr or .suspect
        stderr = attrs.get(key + ".stderr")
        results[name] = Result(
            value=float(attrs[key]),
            unit=_optional_str(attrs.get(key + ".unit")) or "",
            stderr=None if stderr is None else float(stderr),
            suspect=_optional_str(attrs.get(key + ".suspect")) or None,
        )
    return results


def _read_events(f: h5py.File) -> list[tuple[str, str, str]]:
    dataset = f.get("events")
    if not isinstance(dataset, h5py.Dataset) or dataset.shape[0] == 0:
        return []
    records = dataset[:]
    has_more = records.dtype.names is not None and "more" in records.dtype.names
    events: list[tuple[str, str, str]] = []
    pending: tuple[str, str, list[str]] | None = None
    for record in records:
        when, kind, message = _text(record["time"]), _text(record["kind"]), record["message"]
        if pending is None:
            pending = (when, kind, [])
        pending[2].append(message if isinstance(message, bytes) else _text(message).encode())
        if not (has_more and record["more"]):
            events.append((pending[0], pending[1],
                           b"".join(pending[2]).decode("utf-8", "replace")))
            pending = None
    if pending is not None:  # a message cut short by a crash
        events.append((pending[0], pending[1], b"".join(pending[2]).decode("utf-8", "replace")))
    return events


def _user_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in attrs:
        if key in _BOOKKEEPING_ATTRS:
            continue
        value = attrs[key]
        if isinstance(value, bytes):
            value = _text(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out

