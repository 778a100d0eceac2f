"""The writer of one step's points: a bounded buffer written in blocks, one resize per column.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from types import TracebackType
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from hil.results import Result

if TYPE_CHECKING:
    from hil.store.writer import RunWriter
from hil.store.schema import POINT, Column, _check_results, _is_real_scalar


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
        self._row_bytes = row_bytes
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
        if self._run._background_error is not None:
            self._write_full()  # raises it: the flusher could not write (e.g. disk full)
        rows = self._rows
        rows.append(values)
        if len(rows) >= self._capacity:
            self._write_full()

    def _fast_append(self) -> Callable[..., None]:
        """:meth:`append` for steps of scalars only, with its lookups bound once."""
        rows, count, capacity, run = self._rows, self._count, self._capacity, self._run
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
            if run._background_error is not None:
                write_full()  # raises it: the flusher could not write (e.g. disk full)
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
        self._run._check_space(count * self._row_bytes)
        if self._datasets is None:
            self._run._ensure_streaming()
        assert self._datasets is not None
        block = rows[:count]  # points appended meanwhile stay for the next write
        if self._scalar_only:
            flat = np.fromiter(itertools.chain.from_iterable(block), dtype=np.float64,
                               count=count * self._count)
            columns: np.ndarray | list[np.ndarray] = flat.reshape(count, self._count).T
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

