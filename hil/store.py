"""The HDF5 run file: an append-only, crash-safe writer and an xarray reader.

One file per run. Layout (the contract of DESIGN.md, "The run file"):

* root attributes ``status`` (one of :data:`STATUSES`), ``started`` and ``ended`` (ISO 8601 UTC),
  ``experiment``, ``station`` (YAML text), ``snapshot`` and ``software`` (JSON text), and
  ``traceback`` when one was given to :meth:`RunWriter.finish`;
* a dataset ``events`` at the root: the audit trail, one record ``(time, kind, message)`` each;
* one group per step, named by the step, holding one 1-D float64 dataset per column (chunked,
  resizable, with ``units`` and ``long_name`` attributes). With exactly one setpoint column, that
  column is the dimension scale of every measured column; otherwise an index dataset ``point`` is
  the dimension scale of every column, and the measured columns name the setpoints in their
  ``coordinates`` attribute, so ``xarray.open_dataset(path, group=step, engine="h5netcdf")``
  returns the setpoints as coordinates. Fitted results are group attributes ``result.<name>``,
  ``result.<name>.unit`` and, when known, ``result.<name>.stderr``.

Crash safety and the two modes. A plain-mode HDF5 file whose writer dies while appending is left
unreadable, while one streamed in SWMR mode keeps every flushed point; but in SWMR mode HDF5 can
neither attach dimension scales nor show attribute changes to readers. So the writer keeps the file
in one of three states:

* closed, whenever no step is open: the file is then an ordinary, complete HDF5 file;
* streaming: while one or more steps are open, the file is open in SWMR mode and only their data
  are appended (from a bounded buffer, one resize per column per flush, flushed when the buffer is
  full, on the first point appended a second or more after the last flush, on ``flush()`` and at
  the step's end);
* structure, for a few milliseconds at each structure point (run start, ``begin_step``, a step's
  ``close``, ``event`` when no step is open, ``finish``): the writer flushes the open steps' data,
  closes its SWMR handle, reopens the file in plain read-write mode, writes groups, datasets,
  dimension scales, attributes, results, buffered events and status, and then either closes the
  file again or, if steps remain open, switches it back to SWMR mode and rebinds their datasets.

Events reported while a step is open are buffered and written at the next structure point (at the
latest by ``finish``). The writer reopens the file without HDF5's file lock, so a reader that keeps
the file open cannot stop a run at a step boundary; readers opening the file during a structure
phase are still refused by HDF5's consistency flags, and :func:`open_run` retries for a moment.

Readers open the file read-only: plainly when the file is closed, with ``swmr=True`` while it is
being streamed or when its writer died while streaming (a plain open of such a file fails until its
consistency flags are cleared). Reading never modifies the file.

The writer is meant to be used from a single thread.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import time
import traceback as traceback_module
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from numbers import Real
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import h5py
import numpy as np

if TYPE_CHECKING:
    import xarray

__all__ = ["STATUSES", "Column", "Result", "RunFileError", "RunRecord", "RunWriter", "StepWriter",
           "open_run", "summary"]

STATUSES = ("running", "completed", "aborted", "failed", "interlocked")
FINAL_STATUSES = STATUSES[1:]

#: Name of the index dataset used as the dimension of steps without exactly one setpoint.
POINT = "point"
#: Points buffered per step before a flush is forced.
DEFAULT_BUFFER_POINTS = 4096
#: Seconds after which the next appended point flushes the buffer.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Seconds a reader keeps retrying while the writer holds the file in a structure phase.
READ_RETRY_SECONDS = 2.0

# SWMR needs the 1.10 file format or newer; a 1.10 lower bound keeps the files readable by
# HDF5 >= 1.10, while "latest" as upper bound lets HDF5 use newer formats only where needed.
_LIBVER = ("v110", "latest")
_CHUNK_POINTS = 2048
_STR = h5py.string_dtype()
_EVENT_DTYPE = np.dtype([("time", _STR), ("kind", _STR), ("message", _STR)])
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Attributes HDF5 and netCDF use for dimension bookkeeping: not shown as user attributes.
_BOOKKEEPING_ATTRS = frozenset({"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST",
                                "_Netcdf4Dimid", "_Netcdf4Coordinates", "coordinates"})
_RESULT_PREFIX = "result."
_RESERVED_ROOT_NAMES = frozenset({"events"})


class RunFileError(OSError):
    """A run file cannot be read, or is not a run file."""


@dataclass(frozen=True)
class Result:
    """A fitted value with its uncertainty (standard error, same unit), if known."""

    value: float
    unit: str
    stderr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _as_float(self.value, "Result value"))
        if not isinstance(self.unit, str):
            raise ValueError(f"Result unit must be a string, got {self.unit!r}")
        if self.stderr is not None:
            stderr = _as_float(self.stderr, "Result stderr")
            if stderr < 0:
                raise ValueError(f"Result stderr must not be negative, got {stderr!r}")
            object.__setattr__(self, "stderr", stderr)


@dataclass(frozen=True)
class Column:
    """One recorded quantity: its dataset name (an identifier), unit and descriptive name."""

    name: str
    unit: str
    long_name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"column name must be a valid identifier, got {self.name!r}")
        if not isinstance(self.unit, str):
            raise ValueError(f"column {self.name!r}: unit must be a string, got {self.unit!r}")
        if not isinstance(self.long_name, str):
            raise ValueError(
                f"column {self.name!r}: long_name must be a string, got {self.long_name!r}")


class StepWriter:
    """Appends the points of one step; obtained from :meth:`RunWriter.begin_step`.

    Points are buffered in memory and written in blocks; see the module docs for when. Use it as a
    context manager (or call :meth:`close`) to end the step; results must be set before that.
    """

    def __init__(self, run: RunWriter, name: str, setpoints: Sequence[Column],
                 measured: Sequence[Column], *, buffer_points: int,
                 flush_interval: float) -> None:
        self.name = name
        self._run = run
        self._columns = tuple(c.name for c in (*setpoints, *measured))
        self._column_set = frozenset(self._columns)
        self._indexed = len(setpoints) != 1
        self._buffer = np.empty((len(self._columns), buffer_points), dtype=np.float64)
        self._buffered = 0
        self._written = 0
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()
        self._datasets: list[h5py.Dataset] | None = None
        self._point: h5py.Dataset | None = None
        self._results: dict[str, Result] = {}
        self._closed = False

    @property
    def points(self) -> int:
        """Points appended so far (written or still buffered)."""
        return self._written + self._buffered

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, **values: float) -> None:
        """Record one point: a value for every setpoint and measured column."""
        if self._closed:
            raise RuntimeError(f"step {self.name!r} is closed; cannot append to it")
        if values.keys() != self._column_set:
            self._reject(values)
        column = self._buffer[:, self._buffered]
        for i, name in enumerate(self._columns):
            value = values[name]
            # Strict: numpy would turn None into NaN, parse strings and drop imaginary parts.
            if not (type(value) is float or isinstance(value, Real) or _is_real_scalar(value)):
                raise ValueError(f"step {self.name!r}, column {name!r}: {value!r} is not a real "
                                 f"number")
            column[i] = value
        self._buffered += 1
        if (self._buffered == self._buffer.shape[1]
                or time.monotonic() - self._last_flush >= self._flush_interval):
            self.flush()

    def flush(self) -> None:
        """Write the buffered points and flush the file, so readers see them."""
        if self._closed:
            return
        self._write_buffer()
        self._run._flush_file()
        self._last_flush = time.monotonic()

    def set_results(self, results: Mapping[str, Result]) -> None:
        """Attach fitted results (merged with earlier ones); written when the step closes."""
        if self._closed:
            raise RuntimeError(f"step {self.name!r} is closed; set its results before close()")
        if not isinstance(results, Mapping):
            raise TypeError(f"step {self.name!r}: results must be a mapping of name to Result")
        checked: dict[str, Result] = {}
        for name, result in results.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"step {self.name!r}: result name must be a valid identifier, "
                                 f"got {name!r}")
            if not isinstance(result, Result):
                raise TypeError(f"step {self.name!r}, result {name!r}: expected a Result, got "
                                f"{type(result).__name__}")
            checked[name] = result
        self._results.update(checked)

    def close(self) -> None:
        """Write everything; the step's data, attributes and results are final afterwards."""
        if self._closed:
            return
        self._write_buffer()
        self._run._close_step(self)

    def __enter__(self) -> StepWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception as err:  # keep the original exception; say what was lost
            warnings.warn(f"step {self.name!r}: could not close it in {self._run.path}: {err}",
                          RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<StepWriter {self.name!r} {state}, {self.points} points>"

    # -- internals used by RunWriter ---------------------------------------------------------

    def _reject(self, values: Mapping[str, Any]) -> None:
        expected = ", ".join(self._columns)
        unknown = [k for k in values if k not in self._column_set]
        if unknown:
            raise ValueError(f"step {self.name!r}: unknown column {unknown[0]!r} "
                             f"(columns: {expected})")
        missing = [c for c in self._columns if c not in values]
        raise ValueError(f"step {self.name!r}: missing value for column {missing[0]!r} "
                         f"(every point needs: {expected})")

    def _bind(self, group: h5py.Group) -> None:
        self._datasets = [group[name] for name in self._columns]
        self._point = group[POINT] if self._indexed else None

    def _unbind(self) -> None:
        self._datasets = None
        self._point = None

    def _write_buffer(self) -> None:
        """Append the buffered points to the datasets: one resize per dataset."""
        count = self._buffered
        if count == 0:
            return
        if self._datasets is None:
            self._run._resume_streaming()
        assert self._datasets is not None
        start, stop = self._written, self._written + count
        for row, dataset in zip(self._buffer, self._datasets, strict=True):
            dataset.resize((stop,))
            dataset[start:stop] = row[:count]
        if self._point is not None:
            self._point.resize((stop,))
            self._point[start:stop] = np.arange(start, stop, dtype=np.int64)
        self._written = stop
        self._buffered = 0


class RunWriter:
    """Writes one run file; see the module docs for the layout and the SWMR mode switching.

    Use it as a context manager: leaving the block without an exception marks the run
    ``completed`` (unless :meth:`finish` was called), Ctrl-C (``KeyboardInterrupt``) marks it
    ``aborted`` and any other exception ``failed`` with the traceback. Open steps are closed first.
    """

    def __init__(self, path: str | os.PathLike[str], *, experiment: str, station_yaml: str,
                 snapshot: dict, software: dict | None = None,
                 buffer_points: int = DEFAULT_BUFFER_POINTS,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self.path = Path(os.fspath(path)).absolute()
        if not isinstance(experiment, str):
            raise ValueError(f"experiment must be a string, got {experiment!r}")
        if not isinstance(station_yaml, str):
            raise ValueError("station_yaml must be the station's YAML text (a string)")
        if not isinstance(snapshot, Mapping):
            raise ValueError(f"snapshot must be a mapping, got {type(snapshot).__name__}")
        if software is not None and not isinstance(software, Mapping):
            raise ValueError(f"software must be a mapping, got {type(software).__name__}")
        if int(buffer_points) < 1:
            raise ValueError(f"buffer_points must be at least 1, got {buffer_points!r}")
        if not flush_interval >= 0:
            raise ValueError(f"flush_interval must be >= 0 seconds, got {flush_interval!r}")
        self._buffer_points = int(buffer_points)
        self._flush_interval = float(flush_interval)
        self._file: h5py.File | None = None      # the SWMR handle while steps are open
        self._open_steps: dict[str, StepWriter] = {}
        self._step_names: set[str] = set()
        self._pending_events: list[tuple[str, str, str]] = []
        self._finished = False

        if self.path.exists():
            raise FileExistsError(f"run file already exists, refusing to overwrite it: "
                                  f"{self.path}")
        software_info = {**software_versions(), **(software or {})}
        root_attrs = {
            "status": "running",
            "started": _now(),
            "experiment": experiment,
            "station": station_yaml,
            "snapshot": _to_json(snapshot),
            "software": _to_json(software_info),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = h5py.File(self.path, "x", libver=_LIBVER, track_order=True)
        except FileExistsError:
            raise FileExistsError(f"run file already exists, refusing to overwrite it: "
                                  f"{self.path}") from None
        try:
            with f:
                f.attrs.update(root_attrs)
                events = f.create_dataset("events", shape=(0,), maxshape=(None,), chunks=(64,),
                                          dtype=_EVENT_DTYPE)
                # A dimension of its own, so netCDF readers need no phony dimensions.
                events.make_scale("events")
                events.attrs["long_name"] = "audit trail: (time ISO 8601 UTC, kind, message)"
        except BaseException:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise

    # -- public API ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    def begin_step(self, name: str, setpoints: Sequence[Column], measured: Sequence[Column],
                   attrs: Mapping[str, Any] | None = None) -> StepWriter:
        """Create the step's group and datasets and start streaming its points."""
        self._check_usable()
        setpoints, measured = tuple(setpoints), tuple(measured)
        self._check_step_name(name)
        columns = (*setpoints, *measured)
        for column in columns:
            if not isinstance(column, Column):
                raise ValueError(f"step {name!r}: columns must be Column objects, got {column!r}")
        if not columns:
            raise ValueError(f"step {name!r}: needs at least one column")
        seen: set[str] = set()
        for column in columns:
            if column.name in seen:
                raise ValueError(f"step {name!r}: column {column.name!r} appears twice")
            seen.add(column.name)
        if len(setpoints) != 1 and POINT in seen:
            raise ValueError(f"step {name!r}: column name {POINT!r} is reserved for the point "
                             f"index of steps without exactly one setpoint")
        group_attrs = _step_attrs(name, attrs)

        step = StepWriter(self, name, setpoints, measured, buffer_points=self._buffer_points,
                          flush_interval=self._flush_interval)
        with self._structure() as f:
            try:
                _create_step_group(f, name, setpoints, measured, group_attrs)
            except BaseException:
                with contextlib.suppress(Exception):
                    del f[name]
                raise
            self._step_names.add(name)
            self._open_steps[name] = step
        step._last_flush = time.monotonic()  # the flush interval counts from the stream's start
        return step

    def event(self, kind: str, message: str) -> None:
        """Add a record to the audit trail (written now, or at the next structure point)."""
        self._check_usable()
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
        if not isinstance(message, str):
            raise ValueError(f"event message must be a string, got {message!r}")
        self._pending_events.append((_now(), kind, message))
        if not self._open_steps:
            with self._structure():
                pass

    def finish(self, status: str, traceback: str | None = None) -> None:
        """Close open steps, write buffered events, and mark the run ``status`` (final)."""
        self._check_usable()
        if status not in FINAL_STATUSES:
            allowed = ", ".join(FINAL_STATUSES)
            raise ValueError(f"run file {self.path}: a run cannot finish with status "
                             f"{status!r}; allowed: {allowed}")
        if traceback is not None and not isinstance(traceback, str):
            raise ValueError("traceback must be text (a string) or None")
        problems: list[BaseException] = []
        for step in list(self._open_steps.values()):
            try:
                step.close()
            except Exception as err:
                problems.append(err)
                self._forget_step(step)
        if problems:
            # Data may be missing: never leave such a file marked completed.
            status = "failed" if status == "completed" else status
            texts = [traceback] if traceback else []
            texts += ["".join(traceback_module.format_exception(err)) for err in problems]
            traceback = "\n".join(texts)
        with self._structure() as f:
            f.attrs["status"] = status
            f.attrs["ended"] = _now()
            if traceback is not None:
                f.attrs["traceback"] = traceback
        self._finished = True
        if problems:
            raise RuntimeError(f"run file {self.path}: a step could not be closed; the run is "
                               f"marked {status!r}") from problems[0]

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._finished:
            return
        if exc_type is None:
            self.finish("completed")
            return
        if issubclass(exc_type, KeyboardInterrupt):
            status, text = "aborted", None
        else:
            status = "failed"
            text = "".join(traceback_module.format_exception(exc_type, exc, tb))
        try:
            self.finish(status, text)
        except Exception as err:  # keep the original exception; say what was lost
            warnings.warn(f"run file {self.path}: recording the end of the run ({status!r}) "
                          f"failed: {err}", RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        state = "finished" if self._finished else f"{len(self._open_steps)} open step(s)"
        return f"<RunWriter {str(self.path)!r} {state}>"

    # -- mode switching --------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._finished:
            raise RuntimeError(f"run file {self.path} is finished; it cannot be written to")

    def _check_step_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"step name must be a non-empty string without '/', got {name!r}")
        if name in _RESERVED_ROOT_NAMES:
            raise ValueError(f"step name {name!r} is reserved in the run file")
        if name in self._step_names:
            raise ValueError(f"step {name!r} already exists in run file {self.path}")

    def _reopen(self) -> h5py.File:
        # Without HDF5's file lock: a reader holding the file open must not stop the run. New
        # readers are still refused during the structure phase by the consistency flags.
        return h5py.File(self.path, "r+", libver=_LIBVER, locking=False)

    def _flush_file(self) -> None:
        if self._file is not None:
            self._file.flush()

    def _release(self) -> None:
        """Close the SWMR handle (after writing all buffered points)."""
        if self._file is None:
            return
        f, self._file = self._file, None
        try:
            for step in self._open_steps.values():
                if step._datasets is not None:
                    step._write_buffer()
        finally:
            for step in self._open_steps.values():
                step._unbind()
            f.close()

    def _stream(self, f: h5py.File) -> None:
        """Switch ``f`` (open in plain mode) to SWMR and bind the open steps to it."""
        f.flush()
        f.swmr_mode = True
        self._file = f
        for step in self._open_steps.values():
            step._bind(f[step.name])

    def _resume_streaming(self) -> None:
        if self._file is None and self._open_steps:
            f = self._reopen()
            try:
                self._stream(f)
            except BaseException:
                self._file = None
                f.close()
                raise

    @contextlib.contextmanager
    def _structure(self) -> Iterator[h5py.File]:
        """A structure phase: the file open in plain read-write mode for structure changes."""
        self._release()
        f = self._reopen()
        try:
            yield f
            if self._pending_events:
                _append_events(f, self._pending_events)
                self._pending_events.clear()
        except BaseException:
            f.close()
            with contextlib.suppress(Exception):
                self._resume_streaming()
            raise
        if self._open_steps:
            try:
                self._stream(f)
            except BaseException:
                self._file = None
                f.close()
                raise
        else:
            f.close()

    def _close_step(self, step: StepWriter) -> None:
        with self._structure() as f:
            group = f[step.name]
            for name, result in step._results.items():
                key = _RESULT_PREFIX + name
                group.attrs[key] = result.value
                group.attrs[key + ".unit"] = result.unit
                if result.stderr is not None:
                    group.attrs[key + ".stderr"] = result.stderr
            del self._open_steps[step.name]
            step._closed = True
            step._unbind()

    def _forget_step(self, step: StepWriter) -> None:
        """Drop a step that could not be closed (its unwritten points are lost)."""
        self._open_steps.pop(step.name, None)
        step._closed = True
        step._unbind()
        if not self._open_steps and self._file is not None:
            f, self._file = self._file, None
            with contextlib.suppress(Exception):
                f.close()


def _create_step_group(f: h5py.File, name: str, setpoints: Sequence[Column],
                       measured: Sequence[Column], attrs: Mapping[str, Any]) -> None:
    group = f.create_group(name, track_order=True)
    group.attrs.update(attrs)

    def dataset(column: Column) -> h5py.Dataset:
        ds = group.create_dataset(column.name, shape=(0,), maxshape=(None,),
                                  chunks=(_CHUNK_POINTS,), dtype=np.float64, fillvalue=np.nan)
        ds.attrs["units"] = column.unit
        ds.attrs["long_name"] = column.long_name
        return ds

    if len(setpoints) == 1:
        scale = dataset(setpoints[0])
        scale.make_scale(setpoints[0].name)
        others = [dataset(c) for c in measured]
    else:
        scale = group.create_dataset(POINT, shape=(0,), maxshape=(None,),
                                     chunks=(_CHUNK_POINTS,), dtype=np.int64)
        scale.attrs["units"] = "1"
        scale.attrs["long_name"] = "point index"
        scale.make_scale(POINT)
        others = [dataset(c) for c in (*setpoints, *measured)]
        if setpoints:
            coordinates = " ".join(c.name for c in setpoints)
            for ds in others[len(setpoints):]:
                ds.attrs["coordinates"] = coordinates
    for ds in others:
        ds.dims[0].attach_scale(scale)


def _append_events(f: h5py.File, events: Sequence[tuple[str, str, str]]) -> None:
    dataset = f["events"]
    start = dataset.shape[0]
    dataset.resize((start + len(events),))
    dataset[start:] = np.array(list(events), dtype=_EVENT_DTYPE)


def _step_attrs(step: str, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Step attributes as HDF5 can store them: numbers, strings, arrays; the rest as JSON text."""
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"step {step!r}: attribute names must be non-empty strings, "
                             f"got {key!r}")
        if key.startswith(_RESULT_PREFIX) or key in _BOOKKEEPING_ATTRS:
            raise ValueError(f"step {step!r}: attribute name {key!r} is reserved "
                             f"(results go through set_results)")
        if isinstance(value, str | bool | int | float | np.generic):
            out[key] = value
        elif (isinstance(value, list | tuple | np.ndarray)
              and np.asarray(value).dtype.kind in "biuf"):
            out[key] = np.asarray(value)
        else:
            out[key] = _to_json(value)
    return out


# -- reading ---------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """Everything in a run file, as read by :func:`open_run`."""

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


_T = TypeVar("_T")


def open_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read a run file: finished, being written by another process, or left by a dead writer."""
    return _read(path, _read_record)


def summary(path: str | os.PathLike[str]) -> dict:
    """Status and results of a run, JSON-serialisable (no step data is read).

    ``{"status": ..., "steps": {STEP: {"results": {NAME: {"value", "unit", "stderr"}}}}}``;
    ``stderr`` is None when unknown, and a value that is not finite (a failed fit) is None too,
    so the result is strict JSON.
    """
    def read(f: h5py.File, where: Path) -> dict:
        status = _root_str(f, "status", where)
        steps = {}
        for name, group in _step_groups(f):
            results = {key: {"value": _finite_or_none(r.value), "unit": r.unit,
                             "stderr": _finite_or_none(r.stderr)}
                       for key, r in _read_results(group).items()}
            steps[name] = {"results": results}
        return {"status": status, "steps": steps}

    return _read(path, read)


def _read(path: str | os.PathLike[str], fn: Callable[[h5py.File, Path], _T]) -> _T:
    """Open ``path`` read-only (plain, else SWMR) and apply ``fn``, retrying for a moment.

    Retries cover a writer in a structure phase, which refuses readers for milliseconds.
    """
    where = Path(os.fspath(path))
    if not where.is_file():
        raise FileNotFoundError(f"run file not found: {where}")
    _check_signature(where)
    deadline = time.monotonic() + READ_RETRY_SECONDS
    while True:
        try:
            f = h5py.File(where, "r")
        except OSError as err:
            plain_error = err
            try:
                f = h5py.File(where, "r", swmr=True)
            except OSError as swmr_error:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise RunFileError(
                    f"cannot read run file {where}: a read-only open failed ({plain_error}) and "
                    f"so did a read-only SWMR open ({swmr_error}). If a run is writing this file, "
                    f"try again. Otherwise its writer died outside SWMR streaming (while changing "
                    f"the file's structure) and HDF5 will not open it: `h5clear -s` (HDF5 tools) "
                    f"clears its consistency flags, best on a copy, but what the file holds after "
                    f"that may be incomplete or damaged") from None
        try:
            with f:
                return fn(f, where)
        except RunFileError:
            raise
        except (OSError, KeyError) as err:
            # The writer changed the structure while we read: read again.
            if time.monotonic() >= deadline:
                raise RunFileError(f"cannot read run file {where}: {err}") from err
            time.sleep(0.05)


def _check_signature(path: Path) -> None:
    """Refuse files that are not HDF5 (signature at 0, 512, 1024, ... bytes)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return
            offset = 512 if offset == 0 else offset * 2
    raise RunFileError(f"not an HDF5 file: {path}")


def _read_record(f: h5py.File, where: Path) -> RunRecord:
    steps: dict[str, xarray.Dataset] = {}
    results: dict[str, dict[str, Result]] = {}
    for name, group in _step_groups(f):
        steps[name] = _read_step(group)
        results[name] = _read_results(group)
    return RunRecord(
        path=where,
        status=_root_str(f, "status", where),
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
    )


def _root_str(f: h5py.File, key: str, where: Path) -> str:
    value = _optional_str(f.attrs.get(key))
    if value is None:
        raise RunFileError(f"not a run file (no root attribute {key!r}): {where}")
    return value


def _json_attr(f: h5py.File, key: str, where: Path) -> dict:
    text = _optional_str(f.attrs.get(key))
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFileError(f"run file {where}: root attribute {key!r} is not JSON: {err}") from None
    return value if isinstance(value, dict) else {"value": value}


def _step_groups(f: h5py.File) -> Iterator[tuple[str, h5py.Group]]:
    for name, obj in f.items():
        if isinstance(obj, h5py.Group):
            yield name, obj


def _read_step(group: h5py.Group) -> xarray.Dataset:
    import xarray

    datasets = {name: obj for name, obj in group.items()
                if isinstance(obj, h5py.Dataset) and obj.ndim == 1}
    # A writer that died mid-flush may leave columns of unequal length: keep the common part.
    length = min((ds.shape[0] for ds in datasets.values()), default=0)
    scales = [name for name, ds in datasets.items() if ds.is_scale]
    coordinate_names: set[str] = set()
    for ds in datasets.values():
        listed = _optional_str(ds.attrs.get("coordinates"))
        if listed:
            coordinate_names.update(listed.split())
    coords: dict[str, xarray.Variable] = {}
    data_vars: dict[str, xarray.Variable] = {}
    for name, ds in datasets.items():
        if ds.is_scale:
            dim = name
        else:
            attached = [scale.name.rsplit("/", 1)[-1] for scale in ds.dims[0].values()]
            dim = attached[0] if attached else (scales[0] if scales else POINT)
        values = ds[:length] if length else np.empty(0, dtype=ds.dtype)
        variable = xarray.Variable((dim,), values, attrs=_user_attrs(ds.attrs))
        target = coords if ds.is_scale or name in coordinate_names else data_vars
        target[name] = variable
    return xarray.Dataset(data_vars, coords=coords, attrs=_user_attrs(group.attrs))


def _read_results(group: h5py.Group) -> dict[str, Result]:
    attrs = group.attrs
    results: dict[str, Result] = {}
    for key in attrs:
        if not key.startswith(_RESULT_PREFIX):
            continue
        name = key[len(_RESULT_PREFIX):]
        if "." in name:
            continue  # a companion: .unit or .stderr
        stderr = attrs.get(key + ".stderr")
        results[name] = Result(
            value=float(attrs[key]),
            unit=_optional_str(attrs.get(key + ".unit")) or "",
            stderr=None if stderr is None else float(stderr),
        )
    return results


def _read_events(f: h5py.File) -> list[tuple[str, str, str]]:
    dataset = f.get("events")
    if not isinstance(dataset, h5py.Dataset) or dataset.shape[0] == 0:
        return []
    return [(_text(t), _text(k), _text(m)) for t, k, m in dataset[:].tolist()]


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


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value) if isinstance(value, bytes) else str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- helpers -----------------------------------------------------------------------------------


def software_versions() -> dict[str, Any]:
    """Versions of what wrote the file, and the git commit of the source tree if it is a checkout.

    ``git_dirty`` tells whether tracked files differ from that commit (None when unknown).
    """
    commit, dirty = _git_state(Path(__file__).resolve().parent.parent)
    return {
        "python": platform.python_version(),
        "qlink-hil": _dist_version("qlink-hil"),
        "qcodes": _dist_version("qcodes"),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state(root: Path) -> tuple[str | None, bool | None]:
    if not (root / ".git").exists():
        return None, None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                                  capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def _is_real_scalar(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.shape == ()
            and value.dtype.kind in "biuf")


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _as_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a real number, got {value!r}") from None
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # a snapshot must never stop a run: keep a readable form


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)
