"""The HDF5 run file: an append-only, crash-safe writer, an xarray reader, recovery and resume.

The package, one job per module: :mod:`~hil.store.schema` (names, columns, plans),
:mod:`~hil.store.layout` (creating groups, datasets, attributes, events),
:mod:`~hil.store.steps` and :mod:`~hil.store.writer` (writing points and structure),
:mod:`~hil.store.flusher` (the flush thread), :mod:`~hil.store.space` (free disk space),
:mod:`~hil.store.reader` (xarray, summary), :mod:`~hil.store.integrity` (damaged files),
:mod:`~hil.store.recovery` (opening a file in any state), :mod:`~hil.store.resume` (rebuilding
an interrupted file), :mod:`~hil.store.continuing` (the writer's side of a resume),
:mod:`~hil.store.provenance`. The whole contract, with every attribute: docs/run-file.md.

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
  ``result.<name>``, ``result.<name>.unit`` and, when known, ``result.<name>.stderr``; a result
  that did not pass its checks has ``result.<name>.suspect`` (the reason). The root and each group
  have ``lab_time_s`` (lab time on the lab's clock); the root lists its groups in
  ``step_groups``. Every dataset has Fletcher-32 checksums and chunks sized from its plan.
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

import importlib
from typing import Any

from hil.results import Result
from hil.store.provenance import software_versions, writer_alive
from hil.store.reader import RunRecord, describe, open_run, run_state, summary
from hil.store.schema import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_BUFFER_POINTS,
    DEFAULT_FLUSH_INTERVAL,
    FINAL_STATUSES,
    PLANNED,
    POINT,
    READ_RETRY_SECONDS,
    SCHEMA_ATTR,
    STATUSES,
    Axis,
    Column,
    PriorStep,
    RunFileError,
)
from hil.store.steps import StepWriter
from hil.store.writer import RunWriter

__all__ = ["DEFAULT_BUFFER_BYTES", "DEFAULT_BUFFER_POINTS", "DEFAULT_FLUSH_INTERVAL", "FINAL_STATUSES",
           "PLANNED", "POINT", "READ_RETRY_SECONDS", "SCHEMA_ATTR", "STATUSES", "Axis", "Column",
           "PriorStep", "Result", "RunFileError", "RunRecord", "RunWriter", "StepWriter", "describe",
           "open_run", "run_state", "software_versions", "summary", "writer_alive"]

_MODULES = ("schema", "layout", "steps", "writer", "flusher", "space", "reader", "integrity",
            "recovery", "provenance", "resume")


def __getattr__(name: str) -> Any:
    """Names that ``hil.store`` held before it became a package (helpers included)."""
    for module in _MODULES:
        found = importlib.import_module(f"hil.store.{module}")
        if name in vars(found):
            return vars(found)[name]
    raise AttributeError(f"module 'hil.store' has no attribute {name!r}")

