"""The run writer (structure phases, SWMR streaming, finish) and the process' flusher thread.

See :mod:`hil.store` for the crash-safety rules this module follows.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import traceback as traceback_module
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from hil.results import Result
from hil.store.continuing import continue_step, load_prior, read_prior
from hil.store.flusher import _FLUSHER, _flush_period
from hil.store.integrity import STEP_GROUPS_ATTR
from hil.store.layout import (
    _append_events,
    _create_events,
    _create_step_group,
    _event_records,
    _open_swmr_write,
    _set_attrs,
    _write_results,
)
from hil.store.provenance import _writer_identity, software_versions
from hil.store.schema import (
    _LIBVER,
    _RESERVED_ROOT_NAMES,
    DEFAULT_BUFFER_BYTES,
    DEFAULT_BUFFER_POINTS,
    DEFAULT_FLUSH_INTERVAL,
    FINAL_STATUSES,
    LAB_TIME_ATTR,
    PLANNED,
    POINT,
    SCHEMA_ATTR,
    Axis,
    Column,
    PriorStep,
    _check_plan,
    _check_results,
    _now,
    _schema,
    _step_attrs,
    _to_json,
)
from hil.store.space import check_start, check_write, margin_bytes, reserve_bytes
from hil.store.steps import StepWriter


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
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL,
                 lab_clock: Callable[[], float] | None = None) -> None:
        self._setup(path, buffer_points, buffer_bytes, flush_interval, lab_clock)
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
            LAB_TIME_ATTR: 0.0,
        }
        if metadata:  # device, sample, cooldown, operator, notes (hil.station.METADATA_KEYS)
            root_attrs["metadata"] = _to_json(metadata)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_start(self.path, self._margin)
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
               flush_interval: float, lab_clock: Callable[[], float] | None) -> None:
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
        # Lab time (see the module docs): the lab's clock, this process' share of the run's lab
        # time starts at _lab_start; each step group closed takes the time since _lab_mark.
        self._lab_clock = lab_clock or time.monotonic
        self._lab_start = self._lab_mark = self._lab_clock()
        self._lab_before = 0.0  # lab time of the run before a resume
        self._lab_final: float | None = None  # frozen when the run finishes
        #: Lab time (seconds) each step group cost, by group name.
        self.lab_times: dict[str, float] = {}
        self._lab_dirty: set[str] = set()  # group lab times not yet written
        self._last_closed: str | None = None  # the group the current call closed last
        self._group_order: list[str] = []  # every step group created, in order
        self._margin = margin_bytes()  # free space to start; a quarter of it is kept free
        self._reserve = reserve_bytes(self._margin)

    # -- resume ------------------------------------------------------------------------------

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, reason: str = "",
               buffer_points: int = DEFAULT_BUFFER_POINTS,
               buffer_bytes: int = DEFAULT_BUFFER_BYTES,
               flush_interval: float = DEFAULT_FLUSH_INTERVAL,
               lab_clock: Callable[[], float] | None = None) -> RunWriter:
        """Continue an interrupted run's file (status ``running``, no live writer).

        Rebuilds the file in place (see the module docs), adds a ``resume`` event and returns a
        writer whose :attr:`prior` lists the steps found, with their points on disk and plans.
        """
        self = cls.__new__(cls)
        self._setup(path, buffer_points, buffer_bytes, flush_interval, lab_clock)
        load_prior(self, reason)
        return self

    def continue_step(self, name: str) -> StepWriter:
        """Reopen a step found by :meth:`resume`, appending after its points on disk."""
        return continue_step(self, name)

    def read_prior(self, name: str) -> dict[str, np.ndarray]:
        """The points on disk of a step found by :meth:`resume`, column by column."""
        return read_prior(self, name)

    # -- public API ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def lab_time_s(self) -> float:
        """Lab time the run has cost so far (before a resume included)."""
        if self._lab_final is not None:
            return self._lab_final
        return self._lab_before + self._lab_clock() - self._lab_start

    @property
    def calls_done(self) -> tuple[str, ...]:
        """Experiment steps recorded as done (by :meth:`mark_call_done`, kept across resumes)."""
        return tuple(self._calls_done)

    def begin_step(self, name: str, setpoints: Sequence[Column], measured: Sequence[Column],
                   attrs: Mapping[str, Any] | None = None, *,
                   plan: Mapping[str, Sequence[float] | np.ndarray] | None = None) -> StepWriter:
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
                self._add_group(f, name)
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
                self._add_group(f, name)
                self.lab_times[name] = 0.0  # copied: it cost this run no lab time
                _set_attrs(group, {LAB_TIME_ATTR: 0.0})

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
            if self._last_closed is not None:  # the call's time after its last group closed
                self._charge_lab_time(self._last_closed)
            self._last_closed = None
            self._lab_mark = self._lab_clock()
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
            ending_well = status == "completed"
            if problems:
                # Data may be missing: never leave such a file marked completed.
                status = "failed" if status == "completed" else status
                texts = [traceback] if traceback else []
                texts += ["".join(traceback_module.format_exception(err)) for err in problems]
                traceback = "\n".join(texts)
            self._lab_final = self.lab_time_s
            with self._structure(closing=True) as f:
                final = {"status": status, "ended": _now()}
                if traceback is not None:
                    final["traceback"] = traceback
                if end_json is not None:
                    final["snapshot_end"] = end_json
                _set_attrs(f, final)
            self._finished = True
        _FLUSHER.unregister(self)
        if problems and ending_well:
            # A run that fails already has its error; this one is in the stored traceback and
            # must not hide it (so only a run that would have completed raises).
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
    def _structure(self, closing: bool = False) -> Iterator[h5py.File]:
        """A structure phase: the file open in plain read-write mode for structure changes.

        Refused when the disk is nearly full, except when ``closing`` (the end of the run lives
        off the reserve; see :mod:`hil.store.space`).
        """
        if not closing:
            self._check_space(_STRUCTURE_BYTES)
        self._release()
        f = self._reopen()
        try:
            self._write_lab_times(f)
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

    def _add_group(self, f: h5py.File, name: str) -> None:
        """Record a new step group in the root's list (what a reader checks the file against)."""
        self._step_names.add(name)
        if name not in self._group_order:
            self._group_order.append(name)
        _set_attrs(f, {STEP_GROUPS_ATTR: _to_json(self._group_order)})

    def _check_space(self, nbytes: int) -> None:
        check_write(self.path, nbytes, self._reserve)

    def _charge_lab_time(self, name: str) -> None:
        """Add the lab time since the last mark to step group ``name`` (written later)."""
        now = self._lab_clock()
        self.lab_times[name] = self.lab_times.get(name, 0.0) + max(0.0, now - self._lab_mark)
        self._lab_mark = now
        self._lab_dirty.add(name)

    def _write_lab_times(self, f: h5py.File) -> None:
        """In a structure phase: the run's lab time so far, and the groups' that changed."""
        _set_attrs(f, {LAB_TIME_ATTR: self.lab_time_s})
        for name in self._lab_dirty:
            if name in f:
                _set_attrs(f[name], {LAB_TIME_ATTR: self.lab_times[name]})
        self._lab_dirty.clear()

    def _close_step(self, step: StepWriter) -> None:
        self._charge_lab_time(step.name)
        self._last_closed = step.name
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


#: Room a structure phase may need (object headers, attributes, a new step's metadata).
_STRUCTURE_BYTES = 64 * 1024

