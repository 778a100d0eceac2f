"""Writing the run file's structure: step groups and their datasets, attributes, events, results.

These run in a structure phase (plain mode) except the event append, which is SWMR-safe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hil.results import Result
from hil.store.schema import (
    _EVENT_DTYPE,
    _EVENT_MESSAGE_BYTES,
    _RESULT_PREFIX,
    _SCALAR_CHUNK_POINTS,
    _TRACE_CHUNK_BYTES,
    PLANNED,
    POINT,
    Column,
)


def _chunk_rows(shape: tuple[int, ...], planned: int | None = None) -> int:
    """Rows per chunk of a column whose points have ``shape``.

    A step with a plan knows how many points it will take: a chunk of that many rows (capped at
    the default) holds the whole column, so a one-row trace costs one row, not half a megabyte.
    A step without a plan gets the default (:data:`_SCALAR_CHUNK_POINTS` scalars, or
    :data:`_TRACE_CHUNK_BYTES` of traces), so long unplanned streams stay cheap to append to.
    """
    cap = (_SCALAR_CHUNK_POINTS if not shape
           else max(1, _TRACE_CHUNK_BYTES // (8 * int(np.prod(shape)))))
    if planned is None or planned <= 0:
        return cap
    return max(1, min(cap, int(planned)))


def _create_step_group(f: h5py.File, name: str, setpoints: Sequence[Column],
                       measured: Sequence[Column], attrs: Mapping[str, Any],
                       plan: Mapping[str, np.ndarray]) -> None:
    group = f.create_group(name, track_order=True)
    _set_attrs(group, attrs)
    planned = int(np.prod([v.size for v in plan.values()])) if plan else None

    def dataset(column: Column) -> h5py.Dataset:
        shape = column.shape
        ds = group.create_dataset(column.name, shape=(0, *shape), maxshape=(None, *shape),
                                  chunks=(_chunk_rows(shape, planned), *shape),
                                  dtype=np.float64, fillvalue=np.nan, fletcher32=True)
        _set_attrs(ds, {"units": column.unit, "long_name": column.long_name})
        return ds

    if len(setpoints) == 1:
        scale = dataset(setpoints[0])
        scale.make_scale(setpoints[0].name)
        others = [dataset(c) for c in measured]
    else:
        scale = group.create_dataset(POINT, shape=(0,), maxshape=(None,),
                                     chunks=(_chunk_rows((), planned),), dtype=np.int64,
                                     fletcher32=True)
        _set_attrs(scale, {"units": "1", "long_name": "point index"})
        scale.make_scale(POINT)
        others = [dataset(c) for c in (*setpoints, *measured)]
        if setpoints:
            coordinates = " ".join(c.name for c in setpoints)
            for ds in others[len(setpoints):]:
                _set_attrs(ds, {"coordinates": coordinates})
    axis_scales: dict[str, h5py.Dataset] = {}
    for column in measured:
        axis = column.axis
        if axis is not None and axis.name not in axis_scales:
            ds = group.create_dataset(axis.name, data=axis.values, fletcher32=True)
            _set_attrs(ds, {"units": axis.unit, "long_name": axis.long_name})
            ds.make_scale(axis.name)
            axis_scales[axis.name] = ds
    for key, values in plan.items():
        source = next(c for c in setpoints if c.name == key)
        ds = group.create_dataset(PLANNED + key, data=values, fletcher32=True)
        _set_attrs(ds, {"units": source.unit, "long_name": f"planned {source.long_name}"})
        ds.make_scale(PLANNED + key)
    by_name = {c.name: c for c in (*setpoints, *measured)}
    for ds in others:
        ds.dims[0].attach_scale(scale)
        column = by_name[ds.name.rsplit("/", 1)[-1]]
        if column.axis is not None:
            ds.dims[1].attach_scale(axis_scales[column.axis.name])


_VLEN_UTF8 = h5py.string_dtype("utf-8")


_SCALAR_SPACE: Any = None


def _set_attrs(obj: h5py.HLObject, values: Mapping[str, Any]) -> None:
    """Write attributes, replacing same-named ones.

    Strings, floats and ints go through HDF5's attribute API directly (a quarter of what
    ``obj.attrs[name] = value`` costs; a run writes a few dozen attributes per step); anything
    else through h5py's attribute manager. The result is what h5py would store.
    """
    global _SCALAR_SPACE
    if _SCALAR_SPACE is None:
        _SCALAR_SPACE = h5py.h5s.create(h5py.h5s.SCALAR)
    for key, value in values.items():
        if type(value) is str:
            dtype, data = _VLEN_UTF8, np.array(value, dtype=_VLEN_UTF8)
        elif type(value) is float or isinstance(value, np.floating):
            dtype, data = np.dtype(np.float64), np.array(value, dtype=np.float64)
        elif type(value) is int:
            dtype, data = np.dtype(np.int64), np.array(value, dtype=np.int64)
        else:
            obj.attrs[key] = value
            continue
        name = key.encode("utf-8")
        if h5py.h5a.exists(obj.id, name):
            h5py.h5a.delete(obj.id, name)
        attr = h5py.h5a.create(obj.id, name, h5py.h5t.py_create(dtype, logical=True),
                               _SCALAR_SPACE)
        attr.write(data)


def _create_events(f: h5py.File) -> h5py.Dataset:
    events = f.create_dataset("events", shape=(0,), maxshape=(None,), chunks=(16,),
                              fletcher32=True,
                              dtype=_EVENT_DTYPE)
    # A dimension of its own, so netCDF readers need no phony dimensions.
    events.make_scale("events")
    events.attrs["long_name"] = ("audit trail: (time ISO 8601 UTC, kind, message, more: the "
                                 "message continues in the next record)")
    return events


def _event_records(time_text: str, kind: str, message: str) -> list[tuple[bytes, bytes, bytes, int]]:
    """One event as fixed-size records: long messages split at UTF-8 character boundaries."""
    kind_bytes = kind.encode("utf-8")[:64]
    while True:  # never cut a character in two
        try:
            kind_bytes.decode("utf-8")
            break
        except UnicodeDecodeError:
            kind_bytes = kind_bytes[:-1]
    parts: list[bytes] = []
    data = message.encode("utf-8")
    while True:
        cut = min(len(data), _EVENT_MESSAGE_BYTES)
        while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(data[:cut])
        data = data[cut:]
        if not data:
            break
    return [(time_text.encode("ascii"), kind_bytes, part, int(i < len(parts) - 1))
            for i, part in enumerate(parts)]


def _append_events(f: h5py.File, records: Sequence[tuple[bytes, bytes, bytes, int]]) -> None:
    dataset = f["events"]
    start = dataset.shape[0]
    dataset.resize((start + len(records),))
    dataset[start:] = np.array(list(records), dtype=_EVENT_DTYPE)


def _write_results(group: h5py.Group, results: Mapping[str, Result]) -> None:
    for name, result in results.items():
        key = _RESULT_PREFIX + name
        values: dict[str, Any] = {key: result.value, key + ".unit": result.unit}
        # Optional companions: absent when unknown (stderr) or when the result passed (suspect).
        for companion, value in ((".stderr", result.stderr), (".suspect", result.suspect)):
            if value is not None:
                values[key + companion] = value
            elif key + companion in group.attrs:
                del group.attrs[key + companion]
        _set_attrs(group, values)


def _open_swmr_write(path: Path) -> h5py.File:
    """Open an existing run file directly in SWMR-write mode (no plain-mode window)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl)
    return h5py.File(fid)

