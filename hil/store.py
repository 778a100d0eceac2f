"""The HDF5 run file: an append-only, crash-safe writer, an xarray reader, recovery and resume.

One file per run. Layout (the contract of DESIGN.md, "The run file"):

* root attributes ``status`` (one of :data:`STATUSES`), ``started`` and ``ended`` (ISO 8601 UTC),
  ``experiment``, ``station`` (YAML text), ``station_path``, ``params`` (the user's
  ``--set`` values as JSON), ``snapshot`` and ``software`` (JSON text), ``writer`` (JSON: host,
  pid and process start of the process writing the file, so a reader can tell an interrupted run
  from a live one), ``calls_done`` (JSON list of the experiment steps that returned), ``traceback``
  when one was given to :meth:`RunWriter.finish` and ``snapshot_end`` when the run recorded one;
* a dataset ``events`` at the root: the audit trail, one record per event (time, kind, message;
  a message longer than one record continues in the next, flagged by ``more``);
* one group per step, named by the step. Every column is a float64 dataset, chunked and
  resizable along its first dimension (the points), with ``units`` and ``long_name``
  attributes. A scalar column is 1-D; a trace column (a :class:`Column` with an :class:`Axis`)
  is 2-D, ``(points, len(axis))``, its second dimension scale the axis dataset. With exactly one
  setpoint column, that column is the dimension scale of the points; otherwise an index dataset
  ``point`` is, and the measured columns name the setpoints in their ``coordinates`` attribute.
  A planned sweep also stores what it meant to take: ``planned_<setpoint>`` per setpoint (each
  its own dimension scale; a grid is the nested, row-major product of them, the first setpoint
  outermost). The group attribute ``hil.schema`` (JSON) describes the columns, axes and plan,
  which is what a resume rebuilds the step from. Fitted results are group attributes
  ``result.<name>``, ``result.<name>.unit`` and, when known, ``result.<name>.stderr``.
  ``xarray.open_dataset(path, group=step, engine="h5netcdf")`` reads a step as it is on disk;
  :func:`open_run` also turns a grid into a 2-D (or 3-D, for traces) Dataset.

Crash safety. A plain-mode HDF5 file whose writer dies while changing it is left unreadable by a
normal open, while one written in SWMR mode keeps every flushed point; but in SWMR mode HDF5 can
neither create objects, nor attach dimension scales, nor show attribute changes to readers. So:

* points and events are only ever written in SWMR mode: while steps are open, through the
  streaming handle; an event while no step is open opens the file directly in SWMR-write mode;
* structure (groups, datasets, scales, attributes, results, ``status``) is written in short
  structure phases in plain mode, at run start, ``begin_step``, a step's close when it has
  results to write, :meth:`RunWriter.set_results`, :meth:`RunWriter.mark_call_done` and
  ``finish``. Each one flushes the open steps' data first (so a crash in it loses no point),
  validates and prepares everything before it opens the file, and closes it at once.
* points are buffered (a bounded buffer: ``buffer_points`` rows, fewer for wide traces so a
  step's buffer stays under ``buffer_bytes``) and written with one resize per column when the
  buffer is full; a flusher thread (one per process) writes what waits and flushes the file
  so that every point is on disk within ``flush_interval`` (1 s) of its append, whatever the
  appending thread does (a slow instrument, a hang); ``flush()``, an event and the step's end
  flush too. ``flush_interval=0`` flushes every point.

What a crash leaves: killed while streaming, the file is readable with ``swmr=True``; killed in
a structure phase, HDF5 refuses both plain and SWMR opens (its consistency flags say "open for
write"). The readers here then read it through :class:`_ClearedFlagsView`, a read-only view of the
file whose superblock has those flags cleared (what ``h5clear -s`` would write, but in memory):
the user's file is never modified, and everything whose metadata reached the disk is read.

Readers open the file read-only, without HDF5's file lock: plainly when the file is closed, with
``swmr=True`` while it is being streamed or when its writer died streaming, through the cleared
view when its writer died in a structure phase (at once when the writer the file records is
known to be dead, else after retrying for :data:`READ_RETRY_SECONDS`, which a live writer's
structure phase never lasts). Reading never modifies the file.

Resume (:meth:`RunWriter.resume`) rebuilds an interrupted run's file in place: it checks that no
live process writes it, reads it (as above), writes a fresh file beside it holding the same root
attributes, events, steps (structure, plan, results and every point up to the first point any
column lacks) and a ``resume`` event, replaces the old file with it atomically, and continues
writing there. If something in the old file could not be read, the old file is kept beside the
new one as ``<name>.interrupted-<n>.h5``. Steps continue with :meth:`RunWriter.continue_step`.

The writer is thread-safe: points, events and flushes may come from several threads (the
runner's interlock watcher writes events; the flusher thread flushes).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import platform
import socket
import struct
import subprocess
import threading
import time
import traceback as traceback_module
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from numbers import Real
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import h5py
import numpy as np

from hil.results import Result

if TYPE_CHECKING:
    import xarray

__all__ = ["STATUSES", "Axis", "Column", "PriorStep", "Result", "RunFileError", "RunRecord",
           "RunWriter", "StepWriter", "describe", "open_run", "run_state", "summary"]

STATUSES = ("running", "completed", "aborted", "failed", "interlocked")
FINAL_STATUSES = STATUSES[1:]

#: Name of the index dataset used as the dimension of steps without exactly one setpoint.
POINT = "point"
#: Prefix of the datasets holding a step's planned setpoints.
PLANNED = "planned_"
#: Group attribute holding a step's schema (JSON).
SCHEMA_ATTR = "hil.schema"
#: Points buffered per step before they are written to the datasets.
DEFAULT_BUFFER_POINTS = 4096
#: Upper bound of one step's buffer in bytes (traces buffer fewer points).
DEFAULT_BUFFER_BYTES = 8 * 2**20
#: A point is on disk at most this many seconds after it was appended.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Seconds a reader keeps retrying while the writer holds the file in a structure phase.
READ_RETRY_SECONDS = 2.0

# SWMR needs the 1.10 file format or newer; a 1.10 lower bound keeps the files readable by
# HDF5 >= 1.10, while "latest" as upper bound lets HDF5 use newer formats only where needed.
_LIBVER = ("v110", "latest")
_SCALAR_CHUNK_POINTS = 4096
_TRACE_CHUNK_BYTES = 512 * 1024
_EVENT_MESSAGE_BYTES = 1024
# Fixed-size records: variable-length strings live in HDF5's global heap, which SWMR does not
# cover, and events are appended in SWMR mode.
_EVENT_DTYPE = np.dtype([("time", h5py.string_dtype("ascii", 32)),
                         ("kind", h5py.string_dtype("utf-8", 64)),
                         ("message", h5py.string_dtype("utf-8", _EVENT_MESSAGE_BYTES)),
                         ("more", np.uint8)])
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Attributes HDF5 and netCDF use for dimension bookkeeping: not shown as user attributes.
_BOOKKEEPING_ATTRS = frozenset({"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST",
                                "_Netcdf4Dimid", "_Netcdf4Coordinates", "coordinates",
                                SCHEMA_ATTR})
_RESULT_PREFIX = "result."
_RESERVED_ROOT_NAMES = frozenset({"events"})
_NOT_RESUMED_ROOT_ATTRS = frozenset({"status", "ended", "traceback", "snapshot_end", "writer"})


class RunFileError(OSError):
    """A run file cannot be read, or is not a run file, or cannot be resumed."""


@dataclass(frozen=True, eq=False)
class Axis:
    """The second dimension of a trace column: e.g. the 1001 frequencies of a VNA trace."""

    name: str
    unit: str
    long_name: str
    values: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"axis name must be a valid identifier, got {self.name!r}")
        values = np.array(self.values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"axis {self.name!r}: values must be a non-empty 1-D sequence")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Axis) and (self.name, self.unit, self.long_name)
                == (other.name, other.unit, other.long_name)
                and np.array_equal(self.values, other.values))

    def __hash__(self) -> int:
        return hash((self.name, self.values.size))


@dataclass(frozen=True)
class Column:
    """One recorded quantity: its dataset name (an identifier), unit and descriptive name.

    With an ``axis`` the column holds a trace per point (``len(axis)`` values).
    """

    name: str
    unit: str
    long_name: str
    axis: Axis | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"column name must be a valid identifier, got {self.name!r}")
        if not isinstance(self.unit, str):
            raise ValueError(f"column {self.name!r}: unit must be a string, got {self.unit!r}")
        if not isinstance(self.long_name, str):
            raise ValueError(
                f"column {self.name!r}: long_name must be a string, got {self.long_name!r}")
        if self.axis is not None and not isinstance(self.axis, Axis):
            raise ValueError(f"column {self.name!r}: axis must be an Axis, got {self.axis!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one point's value: ``()`` for a scalar, ``(len(axis),)`` for a trace."""
        return () if self.axis is None else (self.axis.values.size,)


@dataclass
class PriorStep:
    """A step found in a run file being resumed: what it holds and what it planned."""

    name: str
    setpoints: tuple[Column, ...]
    measured: tuple[Column, ...]
    points: int
    plan: dict[str, np.ndarray] | None
    attrs: dict[str, Any]
    results: dict[str, Result]

    @property
    def planned_points(self) -> int | None:
        if not self.plan:
            return None
        return int(np.prod([v.size for v in self.plan.values()]))

    @property
    def complete(self) -> bool:
        """Every planned point is on disk (a step without a plan never counts as complete)."""
        planned = self.planned_points
        return planned is not None and self.points >= planned


class StepWriter:
    """Appends the points of one step; obtained from :meth:`RunWriter.begin_step`.

    Points are buffered in memory and written in blocks; see the module docs for when. Use it as a
    context manager (or call :meth:`close`) to end the step; results may be set before that
    (:meth:`set_results`) or after (:meth:`RunWriter.set_results`).
    """

    def __init__(self, run: RunWriter, name: str, setpoints: Sequence[Column],
                 measured: Sequence[Column], *, buffer_points: int, buffer_bytes: int,
                 flush_interval: float, written: int = 0) -> None:
        self.name = name
        self._run = run
        self._lock = run._lock
        columns = (*setpoints, *measured)
        self._columns = columns
        self._names = tuple(c.name for c in columns)
        self._column_set = frozenset(self._names)
        self._indexed = len(setpoints) != 1
        row_bytes = sum(8 * int(np.prod(c.shape)) for c in columns) + 8
        self._capacity = max(1, min(int(buffer_points), int(buffer_bytes) // row_bytes))
        self._flush_each = flush_interval <= 0  # no flusher thread: every point is flushed
        if self._flush_each:
            self._capacity = 1
        self._count = len(columns)
        self._scalar_only = all(c.axis is None for c in columns)
        self._shapes = tuple(c.shape for c in columns)
        # The buffer: one tuple per point, turned into arrays when written (cheaper per point
        # than setting array items one by one).
        self._rows: list[tuple[Any, ...]] = []
        if self._scalar_only:
            self.append = self._fast_append()  # type: ignore[method-assign]
        self._written = written
        self._flush_interval = flush_interval
        self._unflushed = False  # points written to the datasets but not flushed to disk
        self._datasets: list[h5py.Dataset] | None = None
        self._point: h5py.Dataset | None = None
        self._results: dict[str, Result] = {}
        self._closed = False

    @property
    def points(self) -> int:
        """Points appended so far, by this writer and before a resume (written or buffered)."""
        return self._written + len(self._rows)

    @property
    def written(self) -> int:
        """Points written to the file (the rest are still buffered)."""
        return self._written

    @property
    def columns(self) -> tuple[str, ...]:
        return self._names

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, *values: Any, **named: Any) -> None:
        """Record one point: a value per column, positionally in column order or by name.

        Scalars must be real numbers; a trace column takes a 1-D sequence of its axis' length
        (copied). The point is on disk within the flush interval (see the module docs).
        """
        if named:
            if values:
                raise ValueError(f"step {self.name!r}: give the values either positionally or "
                                 f"by name, not both")
            if named.keys() != self._column_set:
                self._reject(named)
            values = tuple(named[n] for n in self._names)
        elif len(values) != self._count:
            raise ValueError(f"step {self.name!r}: expected {self._count} values "
                             f"({', '.join(self._names)}), got {len(values)}")
        if self._scalar_only:
            for value in values:
                # Strict: numpy would turn None into NaN, parse strings, drop imaginary parts.
                if type(value) is not float and not (isinstance(value, Real)
                                                     or _is_real_scalar(value)):
                    self._not_real(values)
        else:
            values = self._checked(values)
        # No lock per point: the list append is atomic, and whoever writes the buffer (this
        # thread when it is full, the flusher otherwise) takes the writer's lock to do so.
        if self._closed:
            raise RuntimeError(f"step {self.name!r} is closed; cannot append to it")
        rows = self._rows
        rows.append(values)
        if len(rows) >= self._capacity:
            self._write_full()

    def _fast_append(self) -> Callable[..., None]:
        """:meth:`append` for steps of scalars only, with its lookups bound once."""
        rows, count, capacity = self._rows, self._count, self._capacity
        general, write_full, not_real = StepWriter.append.__get__(self), self._write_full, \
            self._not_real

        def append(*values: Any, **named: Any) -> None:
            if named or len(values) != count or self._closed:
                general(*values, **named)  # says what is wrong, or takes the named values
                return
            for value in values:
                if type(value) is not float and not (isinstance(value, Real)
                                                     or _is_real_scalar(value)):
                    not_real(values)
            rows.append(values)
            if len(rows) >= capacity:
                write_full()

        append.__doc__ = StepWriter.append.__doc__
        return append

    def flush(self) -> None:
        """Write the buffered points and flush the file, so readers (and a crash) keep them."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def set_results(self, results: Mapping[str, Result]) -> None:
        """Attach fitted results (merged with earlier ones); written when the step closes."""
        checked = _check_results(self.name, results)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"step {self.name!r} is closed; set its results with "
                                   f"RunWriter.set_results")
            self._results.update(checked)

    def close(self) -> None:
        """Write everything; the step's data are final afterwards."""
        with self._lock:
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

    def _not_real(self, values: Sequence[Any]) -> None:
        for name, value, shape in zip(self._names, values, self._shapes, strict=True):
            if not shape and not (isinstance(value, Real) or _is_real_scalar(value)):
                raise ValueError(f"step {self.name!r}, column {name!r}: {value!r} is not a real "
                                 f"number")

    def _checked(self, values: Sequence[Any]) -> tuple[Any, ...]:
        out = []
        for name, value, shape in zip(self._names, values, self._shapes, strict=True):
            if not shape:
                if not (type(value) is float or isinstance(value, Real)
                        or _is_real_scalar(value)):
                    self._not_real(values)
                out.append(value)
                continue
            array = np.asarray(value)
            if array.dtype.kind not in "biuf" or array.shape != shape:
                raise ValueError(f"step {self.name!r}, column {name!r}: expected a real trace "
                                 f"of shape {shape}, got {array.dtype} of shape {array.shape}")
            out.append(np.array(array, dtype=np.float64))  # a copy: the caller may reuse it
        return tuple(out)

    def _reject(self, values: Mapping[str, Any]) -> None:
        expected = ", ".join(self._names)
        unknown = [k for k in values if k not in self._column_set]
        if unknown:
            raise ValueError(f"step {self.name!r}: unknown column {unknown[0]!r} "
                             f"(columns: {expected})")
        missing = [c for c in self._names if c not in values]
        raise ValueError(f"step {self.name!r}: missing value for column {missing[0]!r} "
                         f"(every point needs: {expected})")

    def _write_full(self) -> None:
        with self._lock:
            self._run._raise_background_error()
            if self._closed:
                raise RuntimeError(f"step {self.name!r} is closed; cannot append to it")
            self._write_buffer()  # flushed to disk by the flusher, within the interval
            if self._flush_each:
                self._run._flush_file()

    def _flush_locked(self) -> None:
        self._run._raise_background_error()
        self._write_buffer()
        self._run._flush_file()

    def _bind(self, group: h5py.Group) -> None:
        self._datasets = [group[name] for name in self._names]
        self._point = group[POINT] if self._indexed else None

    def _unbind(self) -> None:
        self._datasets = None
        self._point = None

    def _write_buffer(self) -> None:
        """Append the buffered points to the datasets: one resize per dataset (writer locked)."""
        rows = self._rows
        count = len(rows)
        if count == 0:
            return
        if self._datasets is None:
            self._run._ensure_streaming()
        assert self._datasets is not None
        block = rows[:count]  # points appended meanwhile stay for the next write
        if self._scalar_only:
            flat = np.fromiter(itertools.chain.from_iterable(block), dtype=np.float64,
                               count=count * self._count)
            columns: Sequence[np.ndarray] = flat.reshape(count, self._count).T
        else:
            columns = [np.array([row[i] for row in block], dtype=np.float64)
                       for i in range(self._count)]
        start, stop = self._written, self._written + count
        for column, dataset in zip(columns, self._datasets, strict=True):
            dataset.resize(stop, axis=0)
            dataset[start:stop] = column
        if self._point is not None:
            self._point.resize((stop,))
            self._point[start:stop] = np.arange(start, stop, dtype=np.int64)
        self._written = stop
        self._unflushed = True
        del rows[:count]


class RunWriter:
    """Writes one run file; see the module docs for the layout, SWMR use and resume.

    Use it as a context manager: leaving the block without an exception marks the run
    ``completed`` (unless :meth:`finish` was called), Ctrl-C (``KeyboardInterrupt``) marks it
    ``aborted`` and any other exception ``failed`` with the traceback. Open steps are closed first.
    """

    def __init__(self, path: str | os.PathLike[str], *, experiment: str, station_yaml: str,
                 snapshot: Mapping[str, Any], software: Mapping[str, Any] | None = None,
                 station_path: str | os.PathLike[str] | None = None,
                 params: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, Any] | None = None,
                 buffer_points: int = DEFAULT_BUFFER_POINTS,
                 buffer_bytes: int = DEFAULT_BUFFER_BYTES,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self._setup(path, buffer_points, buffer_bytes, flush_interval)
        if not isinstance(experiment, str):
            raise ValueError(f"experiment must be a string, got {experiment!r}")
        if not isinstance(station_yaml, str):
            raise ValueError("station_yaml must be the station's YAML text (a string)")
        if not isinstance(snapshot, Mapping):
            raise ValueError(f"snapshot must be a mapping, got {type(snapshot).__name__}")
        if software is not None and not isinstance(software, Mapping):
            raise ValueError(f"software must be a mapping, got {type(software).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"params must be a mapping, got {type(params).__name__}")
        if self.path.exists():
            raise FileExistsError(f"run file already exists, refusing to overwrite it: "
                                  f"{self.path}")
        software_info = {**software_versions(), **(software or {})}
        root_attrs = {
            "status": "running",
            "started": _now(),
            "experiment": experiment,
            "station": station_yaml,
            "station_path": "" if station_path is None else str(Path(station_path).absolute()),
            "params": _to_json(params or {}),
            "snapshot": _to_json(snapshot),
            "software": _to_json(software_info),
            "writer": _to_json(_writer_identity()),
            "calls_done": "[]",
        }
        if metadata:  # device, sample, cooldown, operator, notes (hil.station.METADATA_KEYS)
            root_attrs["metadata"] = _to_json(metadata)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = h5py.File(self.path, "x", libver=_LIBVER, track_order=True, locking=False)
        except FileExistsError:
            raise FileExistsError(f"run file already exists, refusing to overwrite it: "
                                  f"{self.path}") from None
        try:
            with f:
                _set_attrs(f, root_attrs)
                _create_events(f)
        except BaseException:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise

    def _setup(self, path: str | os.PathLike[str], buffer_points: int, buffer_bytes: int,
               flush_interval: float) -> None:
        self.path = Path(os.fspath(path)).absolute()
        if int(buffer_points) < 1:
            raise ValueError(f"buffer_points must be at least 1, got {buffer_points!r}")
        if int(buffer_bytes) < 1:
            raise ValueError(f"buffer_bytes must be at least 1, got {buffer_bytes!r}")
        if not flush_interval >= 0:
            raise ValueError(f"flush_interval must be >= 0 seconds, got {flush_interval!r}")
        self._buffer_points = int(buffer_points)
        self._buffer_bytes = int(buffer_bytes)
        self._flush_interval = float(flush_interval)
        self._lock = threading.RLock()
        self._file: h5py.File | None = None      # the SWMR handle while steps are open
        self._open_steps: dict[str, StepWriter] = {}
        self._step_names: set[str] = set()
        self._finished = False
        self._registered = False  # with the flusher thread
        self._background_error: BaseException | None = None
        self._next_due = math.inf  # set when it registers with the flusher thread
        self._calls_done: list[str] = []
        #: Steps found in the file when it was resumed (empty for a new run).
        self.prior: dict[str, PriorStep] = {}
        #: Root attributes found in the file when it was resumed (empty for a new run).
        self.prior_root: dict[str, Any] = {}

    # -- resume ------------------------------------------------------------------------------

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, reason: str = "",
               buffer_points: int = DEFAULT_BUFFER_POINTS,
               buffer_bytes: int = DEFAULT_BUFFER_BYTES,
               flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> RunWriter:
        """Continue an interrupted run's file (status ``running``, no live writer).

        Rebuilds the file in place (see the module docs), adds a ``resume`` event and returns a
        writer whose :attr:`prior` lists the steps found, with their points on disk and plans.
        """
        self = cls.__new__(cls)
        self._setup(path, buffer_points, buffer_bytes, flush_interval)
        self.prior, self.prior_root = _rebuild_for_resume(self.path, reason)
        self._step_names = set(self.prior)
        self._calls_done = list(_json_list(self.prior_root.get("calls_done")))
        return self

    def continue_step(self, name: str) -> StepWriter:
        """Reopen a step found by :meth:`resume`, appending after its points on disk."""
        with self._lock:
            self._check_usable()
            prior = self.prior.get(name)
            if prior is None:
                raise ValueError(f"step {name!r} is not in the resumed run file {self.path}")
            if name in self._open_steps:
                raise ValueError(f"step {name!r} is open already")
            step = StepWriter(self, name, prior.setpoints, prior.measured,
                              buffer_points=self._buffer_points, buffer_bytes=self._buffer_bytes,
                              flush_interval=self._flush_interval, written=prior.points)
            self._open_steps[name] = step
            try:
                self._ensure_streaming()
            except BaseException:
                del self._open_steps[name]
                raise
            return step

    def read_prior(self, name: str) -> dict[str, np.ndarray]:
        """The points on disk of a step found by :meth:`resume`, column by column."""
        with self._lock:
            prior = self.prior[name]
            names = [c.name for c in (*prior.setpoints, *prior.measured)]
            if self._file is not None:
                group = self._file[name]
                return {n: group[n][:prior.points] for n in names}
            with h5py.File(self.path, "r", locking=False) as f:
                return {n: f[name][n][:prior.points] for n in names}

    # -- public API ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def calls_done(self) -> tuple[str, ...]:
        """Experiment steps recorded as done (by :meth:`mark_call_done`, kept across resumes)."""
        return tuple(self._calls_done)

    def begin_step(self, name: str, setpoints: Sequence[Column], measured: Sequence[Column],
                   attrs: Mapping[str, Any] | None = None, *,
                   plan: Mapping[str, Sequence[float]] | None = None) -> StepWriter:
        """Create the step's group and datasets and start streaming its points.

        ``plan`` maps each setpoint to the values the step means to take; with several
        setpoints the points are their nested (row-major, first setpoint outermost) product.
        """
        setpoints, measured = tuple(setpoints), tuple(measured)
        columns = (*setpoints, *measured)
        for column in columns:
            if not isinstance(column, Column):
                raise ValueError(f"step {name!r}: columns must be Column objects, got {column!r}")
        if not columns:
            raise ValueError(f"step {name!r}: needs at least one column")
        seen: set[str] = set()
        axes: dict[str, Axis] = {}
        for column in columns:
            if column.name in seen:
                raise ValueError(f"step {name!r}: column {column.name!r} appears twice")
            seen.add(column.name)
        for column in columns:
            if column.axis is None:
                continue
            if column in setpoints:
                raise ValueError(f"step {name!r}: setpoint {column.name!r} cannot be a trace")
            axis = column.axis
            if axis.name in seen or axes.get(axis.name, axis) != axis:
                raise ValueError(f"step {name!r}: axis name {axis.name!r} is used twice")
            axes[axis.name] = axis
        if len(setpoints) != 1 and POINT in seen | set(axes):
            raise ValueError(f"step {name!r}: column name {POINT!r} is reserved for the point "
                             f"index of steps without exactly one setpoint")
        planned = _check_plan(name, setpoints, plan)
        for key in planned:
            if PLANNED + key in seen | set(axes):
                raise ValueError(f"step {name!r}: column name {PLANNED + key!r} is reserved "
                                 f"for the plan")
        group_attrs = _step_attrs(name, attrs)
        group_attrs[SCHEMA_ATTR] = _to_json(_schema(setpoints, measured, planned))

        with self._lock:
            self._check_usable()
            self._check_step_name(name)
            step = StepWriter(self, name, setpoints, measured, buffer_points=self._buffer_points,
                              buffer_bytes=self._buffer_bytes,
                              flush_interval=self._flush_interval)
            with self._structure() as f:
                try:
                    _create_step_group(f, name, setpoints, measured, group_attrs, planned)
                except BaseException:
                    with contextlib.suppress(Exception):
                        del f[name]
                    raise
                self._step_names.add(name)
                self._open_steps[name] = step
            return step

    def copy_results(self, name: str, results: Mapping[str, Result],
                     attrs: Mapping[str, Any] | None = None) -> None:
        """A step reused from an earlier run: a group holding only its results and provenance."""
        checked = _check_results(name, results)
        with self._lock:
            self._check_usable()
            self._check_step_name(name)
            with self._structure() as f:
                group = f.create_group(name)
                _set_attrs(group, _step_attrs(name, attrs))
                _write_results(group, checked)
                self._step_names.add(name)

    def event(self, kind: str, message: str) -> None:
        """Add a record to the audit trail; it is on disk when this returns (SWMR-safe).

        While steps stream, their buffered points are written with it, so the event's place in
        the data survives a crash.
        """
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
        if not isinstance(message, str):
            raise ValueError(f"event message must be a string, got {message!r}")
        records = _event_records(_now(), kind, message)
        with self._lock:
            self._check_usable()
            if self._file is not None:
                _append_events(self._file, records)
                self.flush()  # the points before the event are on disk with it
                return
            f = _open_swmr_write(self.path)
            try:
                _append_events(f, records)
            finally:
                f.close()

    def set_results(self, step: str, results: Mapping[str, Result]) -> None:
        """Write fitted results to a step, open or closed (merged with earlier ones)."""
        checked = _check_results(step, results)
        with self._lock:
            self._check_usable()
            if step in self._open_steps:
                self._open_steps[step].set_results(checked)
                return
            if step not in self._step_names:
                raise ValueError(f"run file {self.path} has no step {step!r}")
            with self._structure() as f:
                _write_results(f[step], checked)

    def mark_call_done(self, call: str) -> None:
        """Record that the experiment step ``call`` returned (a resume skips it)."""
        with self._lock:
            self._check_usable()
            if call not in self._calls_done:
                self._calls_done.append(call)
            with self._structure() as f:
                _set_attrs(f, {"calls_done": _to_json(self._calls_done)})

    def flush(self) -> None:
        """Write every open step's buffered points and flush the file."""
        with self._lock:
            for step in self._open_steps.values():
                step._write_buffer()
            self._flush_file()

    def finish(self, status: str, traceback: str | None = None,
               snapshot_end: Mapping[str, Any] | None = None) -> None:
        """Close open steps and mark the run ``status`` (final).

        ``snapshot_end`` (e.g. the station after its safe states) is stored as JSON.
        """
        if status not in FINAL_STATUSES:
            allowed = ", ".join(FINAL_STATUSES)
            raise ValueError(f"run file {self.path}: a run cannot finish with status "
                             f"{status!r}; allowed: {allowed}")
        if traceback is not None and not isinstance(traceback, str):
            raise ValueError("traceback must be text (a string) or None")
        end_json = None if snapshot_end is None else _to_json(snapshot_end)
        with self._lock:
            self._check_usable()
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
                final = {"status": status, "ended": _now()}
                if traceback is not None:
                    final["traceback"] = traceback
                if end_json is not None:
                    final["snapshot_end"] = end_json
                _set_attrs(f, final)
            self._finished = True
        _FLUSHER.unregister(self)
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
            for step in self._open_steps.values():
                step._unflushed = False

    def _raise_background_error(self) -> None:
        if self._background_error is not None:
            error, self._background_error = self._background_error, None
            raise RuntimeError(f"run file {self.path}: a background flush failed: "
                               f"{error}") from error

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
        self._bind_all(f)

    def _bind_all(self, f: h5py.File) -> None:
        self._file = f
        for step in self._open_steps.values():
            step._bind(f[step.name])
        if not self._registered and self._flush_interval > 0:
            _FLUSHER.register(self)
            self._registered = True

    def _ensure_streaming(self) -> None:
        if self._file is None and self._open_steps:
            f = _open_swmr_write(self.path)
            try:
                self._bind_all(f)
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
        except BaseException:
            f.close()
            with contextlib.suppress(Exception):
                self._ensure_streaming()
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
        if step._results:
            with self._structure() as f:
                _write_results(f[step.name], step._results)
                self._drop_step(step)
            return
        self._flush_file()
        self._drop_step(step)
        if not self._open_steps:
            self._release()

    def _drop_step(self, step: StepWriter) -> None:
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

    # -- the flusher thread -------------------------------------------------------------------

    def _flush_due(self, now: float) -> float:
        """Called by the flusher thread: flush what waits if due; returns the next due time.

        Flushes come every ``flush_interval - 0.1 s`` (half the interval if that is shorter), so
        a point waits at most that long plus the thread's wake-up, whatever the appending thread
        does.
        """
        with self._lock:
            if self._finished:
                return math.inf
            if now >= self._next_due:
                self._next_due = now + _flush_period(self._flush_interval)
                try:
                    waiting = [s for s in self._open_steps.values() if s._rows or s._unflushed]
                    for step in waiting:
                        step._write_buffer()
                    if waiting:
                        self._flush_file()
                except Exception as err:  # reported to the writing thread at its next write
                    self._background_error = err
            return self._next_due


def _flush_period(interval: float) -> float:
    return max(interval - _FlushThread.MARGIN, interval / 2)


class _FlushThread:
    """One daemon thread per process that flushes each registered writer when it is due.

    It sleeps until the earliest writer is due (about once per flush interval, so it costs the
    appending thread nothing in between). Writers are held by weak reference.
    """

    MARGIN = 0.1

    def __init__(self) -> None:
        self._writers: dict[int, weakref.ref[RunWriter]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, writer: RunWriter) -> None:
        with self._lock:
            writer._next_due = time.monotonic() + _flush_period(writer._flush_interval)
            self._writers[id(writer)] = weakref.ref(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hil.store flusher",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def unregister(self, writer: RunWriter) -> None:
        with self._lock:
            self._writers.pop(id(writer), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                refs = list(self._writers.items())
            next_wake = time.monotonic() + 1.0
            for key, ref in refs:
                writer = ref()
                if writer is None:
                    with self._lock:
                        self._writers.pop(key, None)
                    continue
                next_wake = min(next_wake, writer._flush_due(time.monotonic()))
                del writer
            self._wake.wait(max(0.005, next_wake - time.monotonic()))
            self._wake.clear()


_FLUSHER = _FlushThread()


def _check_plan(name: str, setpoints: Sequence[Column],
                plan: Mapping[str, Sequence[float]] | None) -> dict[str, np.ndarray]:
    if plan is None:
        return {}
    if not isinstance(plan, Mapping):
        raise ValueError(f"step {name!r}: plan must map setpoint names to their values")
    names = [c.name for c in setpoints]
    if list(plan) != names:
        raise ValueError(f"step {name!r}: the plan must give values for the setpoints "
                         f"{names} in that order, got {list(plan)}")
    out = {}
    for key, values in plan.items():
        array = np.array(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"step {name!r}: planned {key} must be 1-D")
        out[key] = array
    return out


def _schema(setpoints: Sequence[Column], measured: Sequence[Column],
            plan: Mapping[str, np.ndarray]) -> dict[str, Any]:
    def column(c: Column) -> dict[str, Any]:
        return {"name": c.name, "unit": c.unit, "long_name": c.long_name,
                "axis": None if c.axis is None else c.axis.name}

    axes = {c.axis.name: {"unit": c.axis.unit, "long_name": c.axis.long_name}
            for c in measured if c.axis is not None}
    kind = "points" if not plan else ("sweep" if len(plan) == 1 else "grid")
    return {"version": 1, "kind": kind, "setpoints": [column(c) for c in setpoints],
            "measured": [column(c) for c in measured], "axes": axes, "plan": list(plan)}


def _columns_from_schema(schema: Mapping[str, Any], group: h5py.Group
                         ) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    axes = {}
    for name, spec in (schema.get("axes") or {}).items():
        axes[name] = Axis(name, spec["unit"], spec["long_name"], group[name][:])

    def column(spec: Mapping[str, Any]) -> Column:
        axis = axes[spec["axis"]] if spec.get("axis") else None
        return Column(spec["name"], spec["unit"], spec["long_name"], axis)

    return (tuple(column(s) for s in schema["setpoints"]),
            tuple(column(s) for s in schema["measured"]))


def _chunk_rows(shape: tuple[int, ...]) -> int:
    if not shape:
        return _SCALAR_CHUNK_POINTS
    return max(1, _TRACE_CHUNK_BYTES // (8 * int(np.prod(shape))))


def _create_step_group(f: h5py.File, name: str, setpoints: Sequence[Column],
                       measured: Sequence[Column], attrs: Mapping[str, Any],
                       plan: Mapping[str, np.ndarray]) -> None:
    group = f.create_group(name, track_order=True)
    _set_attrs(group, attrs)

    def dataset(column: Column) -> h5py.Dataset:
        shape = column.shape
        ds = group.create_dataset(column.name, shape=(0, *shape), maxshape=(None, *shape),
                                  chunks=(_chunk_rows(shape), *shape), dtype=np.float64, fillvalue=np.nan)
        _set_attrs(ds, {"units": column.unit, "long_name": column.long_name})
        return ds

    if len(setpoints) == 1:
        scale = dataset(setpoints[0])
        scale.make_scale(setpoints[0].name)
        others = [dataset(c) for c in measured]
    else:
        scale = group.create_dataset(POINT, shape=(0,), maxshape=(None,),
                                     chunks=(_SCALAR_CHUNK_POINTS,), dtype=np.int64)
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
            ds = group.create_dataset(axis.name, data=axis.values)
            _set_attrs(ds, {"units": axis.unit, "long_name": axis.long_name})
            ds.make_scale(axis.name)
            axis_scales[axis.name] = ds
    for key, values in plan.items():
        source = next(c for c in setpoints if c.name == key)
        ds = group.create_dataset(PLANNED + key, data=values)
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
    events = f.create_dataset("events", shape=(0,), maxshape=(None,), chunks=(64,),
                              dtype=_EVENT_DTYPE)
    # A dimension of its own, so netCDF readers need no phony dimensions.
    events.make_scale("events")
    events.attrs["long_name"] = ("audit trail: (time ISO 8601 UTC, kind, message, more: the "
                                 "message continues in the next record)")
    return events


def _event_records(time_text: str, kind: str, message: str) -> list[tuple[bytes, ...]]:
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


def _append_events(f: h5py.File, records: Sequence[tuple[bytes, ...]]) -> None:
    dataset = f["events"]
    start = dataset.shape[0]
    dataset.resize((start + len(records),))
    dataset[start:] = np.array(list(records), dtype=_EVENT_DTYPE)


def _write_results(group: h5py.Group, results: Mapping[str, Result]) -> None:
    for name, result in results.items():
        key = _RESULT_PREFIX + name
        values: dict[str, Any] = {key: result.value, key + ".unit": result.unit}
        if result.stderr is not None:
            values[key + ".stderr"] = result.stderr
        elif key + ".stderr" in group.attrs:
            del group.attrs[key + ".stderr"]
        _set_attrs(group, values)


def _check_results(step: str, results: Mapping[str, Result]) -> dict[str, Result]:
    if not isinstance(results, Mapping):
        raise TypeError(f"step {step!r}: results must be a mapping of name to Result")
    checked: dict[str, Result] = {}
    for name, result in results.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"step {step!r}: result name must be a valid identifier, "
                             f"got {name!r}")
        if not isinstance(result, Result):
            raise TypeError(f"step {step!r}, result {name!r}: expected a Result, got "
                            f"{type(result).__name__}")
        checked[name] = result
    return checked


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


def _open_swmr_write(path: Path) -> h5py.File:
    """Open an existing run file directly in SWMR-write mode (no plain-mode window)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl)
    return h5py.File(fid)


# -- reading ---------------------------------------------------------------------------------


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

    @property
    def interrupted(self) -> bool:
        return self.state == "interrupted"


_T = TypeVar("_T")


def open_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read a run file: finished, being written by another process, or left by a dead writer."""
    return _read(path, _read_record)


def summary(path: str | os.PathLike[str]) -> dict:
    """Status and results of a run, JSON-serialisable (no step data is read).

    ``{"status": ..., "state": ..., "steps": {STEP: {"points": N, "planned": M or None,
    "results": {NAME: {"value", "unit", "stderr"}}}}}``; ``state`` is ``interrupted`` for a
    run left ``running`` by a dead writer (see :class:`RunRecord`); ``stderr`` is None when
    unknown, and a value that is not finite (a failed fit) is None too, so the result is strict
    JSON.
    """
    def read(f: h5py.File, where: Path, how: str) -> dict:
        status = _root_str(f, "status", where)
        steps = {}
        for name, group in _step_groups(f):
            results = {key: {"value": _finite_or_none(r.value), "unit": r.unit,
                             "stderr": _finite_or_none(r.stderr)}
                       for key, r in _read_results(group).items()}
            try:
                points, planned = _points_on_disk(group), _planned_points(group)
            except Exception:  # a damaged step: report what can be
                points, planned = 0, None
            steps[name] = {"points": points, "planned": planned, "results": results}
        return {"status": status, "state": _state(status, _json_attr(f, "writer", where)),
                "steps": steps}

    return _read(path, read)


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
            results = {key: {"value": r.value, "unit": r.unit, "stderr": r.stderr,
                             **({"suspect": str(attrs[f"result.{key}.suspect"])}
                                if f"result.{key}.suspect" in attrs else {})}
                       for key, r in _read_results(group).items()}
            steps[name] = {"attrs": {k: v for k, v in attrs.items()
                                     if not k.startswith(_RESULT_PREFIX)}, "results": results}
        return {**root, "state": _state(root["status"], root["writer"]), "steps": steps}

    return _read(path, read)


def run_state(path: str | os.PathLike[str]) -> str:
    """The run's status, or ``interrupted`` / ``unknown`` for a ``running`` file (see RunRecord)."""
    return _read(path, lambda f, where, how: _state(_root_str(f, "status", where),
                                                    _json_attr(f, "writer", where)))


def _read(path: str | os.PathLike[str], fn: Callable[[h5py.File, Path, str], _T]) -> _T:
    """Open ``path`` read-only and apply ``fn``; see the module docs for how it is opened."""
    where = Path(os.fspath(path))
    if not where.is_file():
        raise FileNotFoundError(f"run file not found: {where}")
    _check_signature(where)
    deadline = time.monotonic() + READ_RETRY_SECONDS
    while True:
        try:
            with _open_readable(where, allow_cleared=time.monotonic() >= deadline) as (f, how):
                return fn(f, where, how)
        except _NotYet:
            time.sleep(0.05)
        except RunFileError:
            raise
        except (OSError, KeyError, ValueError) as err:
            # The writer changed the structure while we read: read again.
            if time.monotonic() >= deadline:
                raise RunFileError(f"cannot read run file {where}: {err}") from err
            time.sleep(0.05)


class _NotYet(Exception):
    """The file cannot be opened normally yet; retry (a live writer's structure phase)."""


@contextlib.contextmanager
def _open_readable(where: Path, *, allow_cleared: bool) -> Iterator[tuple[h5py.File, str]]:
    try:
        f = h5py.File(where, "r", locking=False)
        how = "plain"
    except OSError as plain_error:
        try:
            f = h5py.File(where, "r", swmr=True, locking=False)
            how = "swmr"
        except OSError as swmr_error:
            try:
                view = _ClearedFlagsView(where)
            except ValueError as err:
                if not allow_cleared:
                    raise _NotYet() from None
                raise RunFileError(f"cannot read run file {where}: {plain_error}; "
                                   f"{swmr_error}; {err}") from None
            try:
                f = h5py.File(view, "r")
            except OSError as err:
                view.close()
                if not allow_cleared:
                    raise _NotYet() from None
                raise RunFileError(
                    f"cannot read run file {where}: its writer died while changing its "
                    f"structure and its superblock or root group is damaged ({err})") from None
            if not allow_cleared and _writer_dead(f) is not True:
                # Perhaps a live writer in a structure phase (milliseconds): wait for it.
                f.close()
                view.close()
                raise _NotYet() from None
            how = "recovered"
    try:
        yield f, how
    finally:
        f.close()
        if how == "recovered":
            view.close()


def _writer_dead(f: h5py.File) -> bool | None:
    """Whether the process recorded as the file's writer is known to have ended."""
    try:
        writer = json.loads(_optional_str(f.attrs.get("writer")) or "{}")
    except (OSError, KeyError, ValueError):
        return None
    alive = writer_alive(writer) if isinstance(writer, dict) else None
    return None if alive is None else not alive


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
        unreadable=unreadable,
    )


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


def _json_list(value: Any) -> list:
    text = _optional_str(value)
    if not text:
        return []
    try:
        out = json.loads(text)
    except json.JSONDecodeError:
        return []
    return out if isinstance(out, list) else []


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


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value) if isinstance(value, bytes) else str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- who writes the file ------------------------------------------------------------------


def _writer_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": _boot_id(),
            "start": _process_start(os.getpid())}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The process' start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def writer_alive(writer: Mapping[str, Any]) -> bool | None:
    """Whether the process recorded in a file's ``writer`` attribute still runs.

    None when it cannot be told: recorded on another host, or nothing recorded.
    """
    pid = writer.get("pid")
    if not isinstance(pid, int) or writer.get("host") != socket.gethostname():
        return None
    if writer.get("boot") and writer.get("boot") != _boot_id():
        return False  # the machine rebooted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    start = writer.get("start")
    if start is not None and _process_start(pid) not in (None, start):
        return False  # the pid now belongs to another process
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[:1] == ["Z"]


def _state(status: str, writer: Mapping[str, Any]) -> str:
    if status != "running":
        return status
    alive = writer_alive(writer)
    if alive is None:
        return "unknown" if writer else "running"
    return "running" if alive else "interrupted"


# -- reading a file left by a writer that died in a structure phase --------------------------


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (init value 0): HDF5's metadata checksum."""
    mask = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & mask

    length = len(data)
    a = b = c = (0xDEADBEEF + length) & mask
    i = 0
    while length - i > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & mask
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & mask
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & mask
        a = (a - c) & mask
        a ^= rot(c, 4)
        c = (c + b) & mask
        b = (b - a) & mask
        b ^= rot(a, 6)
        a = (a + c) & mask
        c = (c - b) & mask
        c ^= rot(b, 8)
        b = (b + a) & mask
        a = (a - c) & mask
        a ^= rot(c, 16)
        c = (c + b) & mask
        b = (b - a) & mask
        b ^= rot(a, 19)
        a = (a + c) & mask
        c = (c - b) & mask
        c ^= rot(b, 4)
        b = (b + a) & mask
        i += 12
    tail = data[i:]
    if not tail:
        return c
    tail = tail + bytes(12 - len(tail))
    a = (a + int.from_bytes(tail[0:4], "little")) & mask
    b = (b + int.from_bytes(tail[4:8], "little")) & mask
    c = (c + int.from_bytes(tail[8:12], "little")) & mask
    c ^= b
    c = (c - rot(b, 14)) & mask
    a ^= c
    a = (a - rot(c, 11)) & mask
    b ^= a
    b = (b - rot(a, 25)) & mask
    c ^= b
    c = (c - rot(b, 16)) & mask
    a ^= c
    a = (a - rot(c, 4)) & mask
    b ^= a
    b = (b - rot(a, 14)) & mask
    c ^= b
    c = (c - rot(b, 24)) & mask
    return c


class _ClearedFlagsView(io.RawIOBase):
    """The run file, read-only, as if ``h5clear -s`` had cleared its consistency flags.

    Only the superblock (version 2 or 3, the one our files have) is changed, in memory: its
    consistency flags are zeroed, its end-of-allocation address raised to cover the whole file
    (a crash can leave it short) and its checksum recomputed. Bytes past the end of the file up to
    the recorded end of allocation read as zeros. h5py opens this object through its file-object
    driver; the file on disk is never written.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._handle = path.open("rb")
        try:
            head = bytearray(self._handle.read(64))
            if head[:8] != _HDF5_SIGNATURE or len(head) < 12 or head[8] not in (2, 3):
                raise ValueError("only files with a version 2 or 3 superblock at offset 0 can "
                                 "be read this way")
            offsets = head[9]
            end = 12 + 4 * offsets
            stored = struct.unpack("<I", head[end:end + 4])[0]
            if stored != _lookup3(bytes(head[:end])):
                raise ValueError("the superblock checksum does not match")
            eoa_at = 12 + 2 * offsets
            eoa = int.from_bytes(head[eoa_at:eoa_at + offsets], "little")
            self._size = max(os.fstat(self._handle.fileno()).st_size, eoa)
            head[11] = 0
            head[eoa_at:eoa_at + offsets] = self._size.to_bytes(offsets, "little")
            head[end:end + 4] = struct.pack("<I", _lookup3(bytes(head[:end])))
            self._head = bytes(head[:end + 4])
        except BaseException:
            self._handle.close()
            raise
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._size - self._pos))
        self._handle.seek(self._pos)
        got = self._handle.readinto(view[:wanted]) or 0
        if got < wanted:
            view[got:wanted] = bytes(wanted - got)
        if self._pos < len(self._head):
            count = min(len(self._head) - self._pos, wanted)
            view[:count] = self._head[self._pos:self._pos + count]
        self._pos += wanted
        return wanted

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


# -- resume ----------------------------------------------------------------------------------


def _rebuild_for_resume(path: Path, reason: str) -> tuple[dict[str, PriorStep], dict[str, Any]]:
    """Replace an interrupted run file by a clean copy of what it holds; see the module docs."""
    if not path.is_file():
        raise FileNotFoundError(f"run file not found: {path}")
    _check_signature(path)
    with _exclusive(path):
        temp = path.with_name(f".{path.name}.resuming")
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # left by a resume that died: we hold the lock, it is garbage
        prior: dict[str, PriorStep] = {}
        dropped: dict[str, str] = {}
        try:
            with _open_readable(path, allow_cleared=True) as (src, how):
                root = {k: src.attrs[k] for k in src.attrs}
                status = _optional_str(root.get("status"))
                if status != "running":
                    raise RunFileError(f"{path}: the run ended ({status}); only a run left "
                                       f"'running' by a dead process can be resumed")
                writer = _json_attr(src, "writer", path)
                alive = writer_alive(writer)
                if alive is not False:
                    who = f"pid {writer.get('pid')} on {writer.get('host')}" if writer else "?"
                    raise RunFileError(
                        f"{path}: its writer ({who}) " + ("is still running" if alive else
                                                          "cannot be checked from this host")
                        + "; only an interrupted run can be resumed")
                for key in ("experiment", "station"):
                    if key not in root:
                        raise RunFileError(f"not a run file (no root attribute {key!r}): {path}")
                events = _read_events(src)
                with h5py.File(temp, "x", libver=_LIBVER, track_order=True,
                               locking=False) as dst:
                    for key, value in root.items():
                        if key not in _NOT_RESUMED_ROOT_ATTRS:
                            dst.attrs[key] = value
                    _set_attrs(dst, {"status": "running", "writer": _to_json(_writer_identity())})
                    _create_events(dst)
                    for when, kind, message in events:
                        _append_events(dst, _event_records(when, kind, message))
                    for name, group in _step_groups(src):
                        try:
                            prior[name] = _copy_step(group, dst, name)
                        except Exception as err:
                            dropped[name] = f"{type(err).__name__}: {err}"
                            with contextlib.suppress(Exception):
                                del dst[name]
                    lines = [f"{name}: {p.points}"
                             + (f" of {p.planned_points}" if p.planned_points is not None else "")
                             + " points" for name, p in prior.items()]
                    lines += [f"{name}: unreadable, dropped ({err})" for name, err in
                              dropped.items()]
                    message = (f"resumed by pid {os.getpid()} on {socket.gethostname()}"
                               + (f" ({reason})" if reason else "")
                               + (" from a file read with cleared consistency flags"
                                  if how == "recovered" else "")
                               + "; " + ("; ".join(lines) if lines else "no steps yet"))
                    _append_events(dst, _event_records(_now(), "resume", message))
                    root_out = {k: dst.attrs[k] for k in dst.attrs}
            _fsync(temp)
            if dropped:
                backup = _free_name(path)
                os.link(path, backup)
                warnings.warn(f"{path}: some steps could not be read and were dropped "
                              f"({', '.join(dropped)}); the interrupted file is kept as "
                              f"{backup}", RuntimeWarning, stacklevel=3)
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
    return prior, root_out


def _copy_step(group: h5py.Group, dst: h5py.File, name: str) -> PriorStep:
    schema = _group_schema(group)
    if schema is None:
        raise RunFileError(f"step {name!r} has no {SCHEMA_ATTR} attribute (written by an older "
                           f"qlink-hil?); it cannot be continued")
    setpoints, measured = _columns_from_schema(schema, group)
    plan = {k: group[PLANNED + k][:] for k in schema.get("plan") or []}
    attrs = {k: group.attrs[k] for k in group.attrs
             if k not in _BOOKKEEPING_ATTRS and not k.startswith(_RESULT_PREFIX)}
    results = _read_results(group)
    points = _points_on_disk(group)
    _create_step_group(dst, name, setpoints, measured,
                       {**attrs, SCHEMA_ATTR: group.attrs[SCHEMA_ATTR]}, plan)
    out = dst[name]
    _write_results(out, results)
    names = [c.name for c in (*setpoints, *measured)]
    if len(setpoints) != 1:
        names.append(POINT)
    for column in names:
        source, target = group[column], out[column]
        target.resize(points, axis=0)
        block = max(1, 2**25 // (8 * int(np.prod(source.shape[1:]))))  # 32 MiB at a time
        for start in range(0, points, block):
            stop = min(points, start + block)
            target[start:stop] = source[start:stop]
    return PriorStep(name=name, setpoints=setpoints, measured=measured, points=points,
                     plan=plan or None, attrs=_user_attrs(group.attrs), results=results)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run file: one resume at a time, none while it is open."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the writer check alone
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFileError(f"{path} is open in another process (a run still writing it, a "
                               f"resume, or a viewer holding it); close it and try again"
                               ) from None
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise RunFileError(f"{path} was replaced while we waited (resumed by another "
                               f"process?); nothing done")
        yield
    finally:
        os.close(fd)


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem}.interrupted-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- helpers -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _software_versions_cached() -> tuple[tuple[str, Any], ...]:
    commit, dirty = _git_state(Path(__file__).resolve().parent.parent)
    return tuple({
        "python": platform.python_version(),
        "qlink-hil": _dist_version("qlink-hil"),
        "qcodes": _dist_version("qcodes"),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "git_commit": commit,
        "git_dirty": dirty,
    }.items())


def software_versions() -> dict[str, Any]:
    """Versions of what wrote the file, and the git commit of the source tree if it is a checkout.

    ``git_dirty`` tells whether tracked files differ from that commit (None when unknown).
    Read once per process: the code a process runs is the code it loaded.
    """
    return dict(_software_versions_cached())


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
