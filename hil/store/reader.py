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
from hil.store.integrity import (
    RUN,
    Damage,
    check_steps,
    datasets,
    missing_columns,
    read_rows,
    reason,
    root_attr,
    verify_step,
)
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
    #: What is wrong with the file, by step ("" for the run as a whole): damaged chunks
    #: (checksum), missing columns or step groups, unreadable attributes, truncation.
    problems: dict[str, list[str]] = field(default_factory=dict)
    #: Lab time the run cost (s, on the lab's clock), None in files written before it was kept.
    lab_time_s: float | None = None
    #: Lab time each step group cost (groups without the attribute are left out).
    lab_times: dict[str, float] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.state == "interrupted"




TRUNCATED = ("the file is shorter than HDF5 recorded (truncated): what lay past its end is "
             "unreadable")


def open_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read a run file: finished, being written by another process, or left by a dead writer."""
    return _read(path, _read_record)


def summary(path: str | os.PathLike[str], *, check: bool = False) -> dict:
    """Status and results of a run, JSON-serialisable (no step data is read unless ``check``).

    ``{"status", "state", "lab_time_s", "steps": {STEP: {"points", "planned", "lab_time_s",
    "results": {NAME: {"value", "unit", "stderr", "suspect"?}}}}}``. ``state`` is
    ``interrupted`` for a run left ``running`` by a dead writer (see :class:`RunRecord`);
    ``planned`` and the lab times are None when not recorded; see :func:`result_json`. A file
    with problems (damaged, truncated, a step or column missing) adds ``"problems": [...]`` to
    each step concerned and to the top for the run as a whole; ``check`` reads every dataset
    so that checksum mismatches are found too.
    """
    def read(f: h5py.File, where: Path, how: str) -> dict:
        damage = Damage()
        if how == "truncated":
            damage.add(RUN, TRUNCATED)
        status = _status(f, where, damage)
        steps: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        for name, group in _step_groups(f, skipped):
            try:
                results = {key: result_json(r) for key, r in _read_results(group).items()}
            except Exception as err:
                results = {}
                damage.add(name, f"results unreadable ({reason(err)})")
            try:
                points, planned = _points_on_disk(group, name, damage), _planned_points(group)
                if check:
                    verify_step(group, name, damage)
            except Exception as err:  # a damaged step: report what can be
                points, planned = 0, None
                damage.add(name, f"unreadable ({reason(err)})")
            steps[name] = {"points": points, "planned": planned,
                           "lab_time_s": _lab_time(group), "results": results}
        for name, error in skipped.items():
            damage.add(name, f"step group unreadable ({error})")
            steps[name] = {"points": 0, "planned": None, "lab_time_s": None, "results": {}}
        for name in check_steps(f, set(steps), damage):
            steps[name] = {"points": 0, "planned": None, "lab_time_s": None, "results": {}}
        state = _state(status, _json_attr(f, "writer", where, damage))
        out: dict[str, Any] = {"status": status, "state": state, "lab_time_s": _lab_time(f),
                               "steps": steps}
        for step, problems in damage.by_step.items():
            (out if step == RUN else steps[step])["problems"] = problems
        return out

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


def describe(path: str | os.PathLike[str]) -> dict:
    """A run without its data, for indexing: root attributes (JSON ones decoded), ``state``, and
    per step its attributes and results (``suspect`` only where a result has one). Reads no
    dataset, so it costs milliseconds where :func:`open_run` reads every point."""
    def read(f: h5py.File, where: Path, how: str) -> dict:
        root = {k: v for k, v in _user_attrs(f.attrs).items() if k not in ("snapshot",
                                                                            "snapshot_end")}
        for key in ("metadata", "params", "writer"):
            root[key] = _json_attr(f, key, where)
        root["calls_done"] = list(_json_list(f.attrs.get("calls_done")))
        for key in ("status", "experiment", "started"):
            root[key] = _root_str(f, key, where)
        steps = {}
        for name, group in _step_groups(f):
            attrs = _user_attrs(group.attrs)
            results = {key: result_json(r) for key, r in _read_results(group).items()}
            steps[name] = {"attrs": {k: v for k, v in attrs.items()
                                     if not k.startswith(_RESULT_PREFIX)}, "results": results}
        return {**root, "state": _state(root["status"], root["writer"]), "steps": steps}

    return _read(path, read)


def run_state(path: str | os.PathLike[str]) -> str:
    """The run's status, or ``interrupted`` / ``unknown`` for a ``running`` file (see RunRecord)."""
    return _read(path, lambda f, where, how: _state(_status(f, where, Damage()),
                                                    _json_attr(f, "writer", where, Damage())))


def _read_record(f: h5py.File, where: Path, how: str) -> RunRecord:
    steps: dict[str, xarray.Dataset] = {}
    results: dict[str, dict[str, Result]] = {}
    points: dict[str, int] = {}
    planned: dict[str, int | None] = {}
    unreadable: dict[str, str] = {}
    damage = Damage()
    if how == "truncated":
        damage.add(RUN, TRUNCATED)
    status = _status(f, where, damage)
    lab_times: dict[str, float] = {}
    for name, group in _step_groups(f, unreadable):
        try:
            results[name] = _read_results(group)
        except Exception as err:
            damage.add(name, f"results unreadable ({reason(err)})")
        try:
            steps[name] = _read_step(group, name, damage)
            points[name] = _points_on_disk(group, name, Damage())
            planned[name] = _planned_points(group)
            if (seconds := _lab_time(group)) is not None:
                lab_times[name] = seconds
        except Exception as err:
            unreadable[name] = reason(err)
            steps.pop(name, None)
    for name in check_steps(f, set(steps) | set(unreadable), damage):
        unreadable[name] = "missing"
    if (damage or unreadable) and how in ("plain", "swmr") and status == "running":
        # Perhaps a live writer changing the structure while we read: read again (see _read).
        raise OSError(f"unreadable parts: {damage.by_step or unreadable}")
    writer = _json_attr(f, "writer", where, damage)
    snapshot_end = (_json_attr(f, "snapshot_end", where, damage)
                    if "snapshot_end" in f.attrs else None)
    return RunRecord(
        path=where,
        status=status,
        started=_optional_str(root_attr(f, "started", damage)) or "",
        ended=_optional_str(root_attr(f, "ended", damage)),
        experiment=_root_str(f, "experiment", where, damage),
        station_yaml=_optional_str(root_attr(f, "station", damage)) or "",
        snapshot=_json_attr(f, "snapshot", where, damage),
        software=_json_attr(f, "software", where, damage),
        traceback=_optional_str(root_attr(f, "traceback", damage)),
        steps=steps,
        results=results,
        events=_read_events(f),
        state=_state(status, writer),
        recovered=how == "recovered",
        params=_json_attr(f, "params", where, damage),
        station_path=_optional_str(root_attr(f, "station_path", damage)) or "",
        writer=writer,
        calls_done=list(_json_list(root_attr(f, "calls_done", damage))),
        points=points,
        planned=planned,
        snapshot_end=snapshot_end,
        lab_time_s=_lab_time(f),
        lab_times=lab_times,
        unreadable=unreadable,
        problems=damage.by_step,
    )


def _lab_time(obj: h5py.File | h5py.Group) -> float | None:
    try:
        value = obj.attrs.get(LAB_TIME_ATTR)
        return None if value is None else _finite_or_none(float(value))
    except (TypeError, ValueError, OSError):
        return None


def _status(f: h5py.File, where: Path, damage: Damage) -> str:
    """The root ``status``, ``unknown`` when its bytes are damaged."""
    return _root_str(f, "status", where, damage) or "unknown"


def _root_str(f: h5py.File, key: str, where: Path, damage: Damage | None = None) -> str:
    """A root attribute that every run file has (absent: not a run file; damaged: "")."""
    try:
        value = _optional_str(f.attrs.get(key))
    except (OSError, RuntimeError, ValueError) as err:
        if damage is None:
            raise
        damage.add(RUN, f"root attribute {key!r} unreadable ({reason(err)})")
        return ""
    if value is None:
        raise RunFileError(f"not a run file (no root attribute {key!r}): {where}")
    return value


def _json_attr(f: h5py.File | h5py.Group, key: str, where: Path,
               damage: Damage | None = None) -> dict:
    text = _optional_str(f.attrs.get(key) if damage is None else root_attr(f, key, damage))
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if damage is None:
            raise RunFileError(f"run file {where}: attribute {key!r} is not JSON: {err}") from None
        damage.add(RUN, f"root attribute {key!r} damaged: not JSON ({err})")
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _step_groups(f: h5py.File, skipped: dict[str, str] | None = None
                 ) -> Iterator[tuple[str, h5py.Group]]:
    """The step groups; those that cannot be opened go to ``skipped`` (name: why)."""
    for name in f:
        try:
            obj = f[name]
        except (KeyError, OSError, ValueError) as err:
            # A link to an object a crash did not finish writing, or damaged since.
            if skipped is not None:
                skipped[name] = reason(err)
            continue
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


def _row_datasets(group: h5py.Group, step: str = "", damage: Damage | None = None
                  ) -> dict[str, h5py.Dataset]:
    """The datasets with one row per point (setpoints, measured, point index)."""
    schema = _group_schema(group)
    if schema is not None:
        names = [c["name"] for c in (*schema["setpoints"], *schema["measured"])]
        if len(schema["setpoints"]) != 1:
            names.append(POINT)
        if damage is not None:
            missing_columns(group, names, step, damage)
        return {n: group[n] for n in names if n in group}
    # Written before schemas existed: every 1-D dataset is a column.
    return {name: obj for name, obj in group.items()
            if isinstance(obj, h5py.Dataset) and obj.ndim == 1 and not name.startswith(PLANNED)}


def _points_on_disk(group: h5py.Group, step: str = "", damage: Damage | None = None) -> int:
    """Points every row dataset holds: the checkpoint a resume continues from."""
    return min((ds.shape[0] for ds in _row_datasets(group, step, damage).values()), default=0)


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


def _read_step(group: h5py.Group, step: str, damage: Damage) -> xarray.Dataset:
    """A step as xarray; damaged chunks read as NaN and missing columns are left out (both
    recorded in ``damage``)."""
    import xarray

    schema = _group_schema(group)
    rows = _row_datasets(group, step, damage)
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
    for name, ds in datasets(group, step, damage):
        attrs = _user_attrs(ds.attrs)
        if name in rows:
            dims = [name if ds.is_scale else row_dim]
            for axis in range(1, ds.ndim):
                dims.append(_attached_scale(ds, axis) or f"{name}_dim{axis}")
            values = (read_rows(ds, length, step, damage) if length
                      else np.empty((0, *ds.shape[1:]), dtype=ds.dtype))
            variable = xarray.Variable(tuple(dims), values, attrs=attrs)
            target = coords if ds.is_scale or name in coordinate_names else data_vars
        else:  # a trace axis or a plan: its own dimension
            try:
                values = ds[:]
            except (OSError, RuntimeError) as err:
                damage.add(step, f"dataset {name!r} unreadable ({reason(err)})")
                continue
            variable = xarray.Variable((name,), values, attrs=attrs)
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
        if name not in names and name != POINT and not str(name).startswith(PLANNED):
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
    pending: tuple[str, str, list[bytes]] | None = None
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

