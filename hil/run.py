"""The :class:`Run` a step is handed: its sweeps (recorded point by point, continued after a
resume), its results and calibrations, events and checkpoints. :mod:`hil.runner` starts, drives
and ends the run around it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qcodes.parameters import Parameter, ParameterWithSetpoints
from rich.console import Console
from rich.progress import Progress

from hil.calibration import CalibrationStore, Decision, valid_for_of
from hil.catalog import CatalogError
from hil.experiment import defaults
from hil.results import Result
from hil.safety import Supervisor
from hil.station import Lab
from hil.store import Axis, Column, RunFileError, RunWriter, StepWriter

#: Seconds between progress bar updates (each costs a few microseconds).
PROGRESS_PERIOD = 0.05


class Run:
    """What a step sees besides the lab: its parameters, and the ways to record data (groups
    of the run file, results, events, figures)."""

    def __init__(self, lab: Lab, writer: RunWriter, params: Mapping[str, Mapping[str, Any]],
                 progress: Progress, supervisor: Supervisor | None = None,
                 calibrations: CalibrationStore | None = None) -> None:
        self.lab = lab
        self.writer = writer
        self.params = params
        self.progress = progress
        self.calibrations = calibrations
        self.decisions: dict[str, Decision] = {}  # the chain's plan: which steps re-run
        self.results: dict[str, dict[str, Result]] = {}
        self._produced: dict[str, list[str]] = {}  # experiment step -> groups with results
        self._supervisor = supervisor
        self._open_steps: dict[str, StepWriter] = {}
        self._recorded: set[str] = set()
        self._call: str | None = None
        self._done_before = frozenset(writer.calls_done)  # steps a resume skips

    @property
    def path(self) -> Path:
        return Path(self.writer.path)

    @property
    def resumed(self) -> bool:
        return bool(self.writer.prior_root)

    def call(self, step: Callable[..., Any]) -> Any:
        """Run one step with its defaults and the user's --set values.

        On a resume, a step that returned before the interruption is skipped: its results are
        taken from the file (and returned, when the step recorded results under its own name).
        """
        name = step.__name__
        decision = self.decisions.get(name)
        if decision is not None and not decision.run and name not in self._done_before:
            self.reuse_calibration(name, reason=decision.reason)
            self.writer.mark_call_done(name)
            return self.results.get(name)
        if name in self._done_before:
            for group, prior in self.writer.prior.items():
                if prior.attrs.get("call") == name:
                    if prior.results:
                        self.results[group] = dict(prior.results)
                    self._recorded.add(group)
            self.writer.event("step", f"{name} skipped: it finished before the resume")
            return self.results.get(name)
        values = defaults(step, self.params.get(name, {}))
        self.checkpoint()
        self.writer.event("step", f"{name} started with {values}")
        self._call = name
        try:
            out = step(self.lab, self, **values)
        finally:
            self._call = None
        self.writer.mark_call_done(name)
        self._store_calibrations(step)
        return out

    def reuse_calibration(self, call: str, reason: str = "") -> None:
        """Bring a fresh stored calibration of ``call`` into this run (results + provenance)."""
        if self.calibrations is None:
            return
        try:
            entries = self.calibrations.produced_by(call)
        except CatalogError as exc:
            self.catalog_failed(exc)
            return
        if not entries or not all(e.fresh(current_run=self.path) for e in entries):
            return
        for entry in entries:
            if entry.step in self.results:
                continue
            self.writer.copy_results(entry.step, entry.results, {
                "call": call, "copied_from": entry.run, "calibrated_at": entry.finished})
            self.results[entry.step] = dict(entry.results)
            self._recorded.add(entry.step)
        why = f": {reason}" if reason else ""
        self.writer.event("reuse", f"{call}: results of {entries[0].run} "
                                   f"({entries[0].age_s() / 60:.0f} min old){why}")

    def _store_calibrations(self, step: Callable[..., Any]) -> None:
        if self.calibrations is None:
            return
        for group in self._produced.pop(step.__name__, []):
            try:
                self.calibrations.record(group, self.results[group], run=str(self.path),
                                         valid_for_s=valid_for_of(step), call=step.__name__)
            except CatalogError as exc:
                self.catalog_failed(exc)

    def catalog_failed(self, exc: CatalogError) -> None:
        """A catalog that fails costs the run nothing: say so, in the file and on the terminal."""
        self.writer.event("catalog", f"{exc}; `hil catalog rebuild` re-indexes the run")
        _catalog_warning(self.progress.console, exc)

    def checkpoint(self) -> None:
        """Stop here if the run is stopping; wait here while an interlock is latched.

        Sweeps call it before every point; experiment code with loops of its own may too.
        """
        if self._supervisor is not None:
            self._supervisor.point_start()

    def event(self, kind: str, message: str) -> None:
        """Add a record to the run's audit trail."""
        self.writer.event(kind, message)

    def sweep(self, group: str, setpoint: Parameter, values: Iterable[float],
              measured: Mapping[str, Parameter], *, description: str | None = None
              ) -> dict[str, np.ndarray]:
        """Set ``setpoint`` to each value, read every measured parameter, record each point in
        the run file's ``group`` (a step may write several groups).

        A measured ``ParameterWithSetpoints`` records a trace per point (its setpoint values,
        read once at the start, are the trace axis). Returns the recorded columns as arrays
        (traces as ``(points, trace length)``). The group is closed at the end; attach results
        with :meth:`record_results`.
        """
        return self._nested(group, [(setpoint, values)], measured, description)

    def sweep2d(self, group: str, outer: Parameter, outer_values: Iterable[float],
                inner: Parameter, inner_values: Iterable[float],
                measured: Mapping[str, Parameter], *, description: str | None = None
                ) -> dict[str, np.ndarray]:
        """A nested sweep: for each outer value, the whole inner sweep.

        The file holds the points in order (``point`` index, both setpoints as coordinates) and
        the planned axes; :func:`hil.store.open_run` returns it as a grid. Returns the planned
        axes and each measured column on the grid, ``(outer, inner[, trace])``.
        """
        return self._nested(group, [(outer, outer_values), (inner, inner_values)], measured,
                            description)

    def record_results(self, group: str, results: Mapping[str, Result]) -> None:
        """Attach fitted results to a group of the run file (open or closed)."""
        step = group
        open_writer = self._open_steps.pop(step, None)
        if open_writer is not None:
            open_writer.set_results(results)
            open_writer.close()
        elif step in self._recorded:
            self.writer.set_results(step, results)
        else:
            raise RuntimeError(f"step {step!r} has no data to attach results to")
        self.results[step] = dict(results)
        if self._call is not None:
            self._produced.setdefault(self._call, []).append(step)

    def plot_path(self, group: str) -> Path:
        """Where a group's figure goes: beside the run file."""
        return self.path.with_name(f"{self.path.stem}_{group}.png")

    def close_steps(self) -> None:
        for writer in self._open_steps.values():
            writer.close()
        self._open_steps.clear()

    # -- sweeps ----------------------------------------------------------------------------

    def _nested(self, step: str, axes_in: Sequence[tuple[Parameter, Iterable[float]]],
                measured: Mapping[str, Parameter], description: str | None
                ) -> dict[str, np.ndarray]:
        if step in self._open_steps or step in self._recorded:
            raise RuntimeError(f"step {step!r} was already recorded in this run")
        axes = [(p, np.asarray(list(v), dtype=float)) for p, v in axes_in]
        names = [p.name for p, _ in axes]
        if len(set(names)) != len(names) or set(names) & set(measured):
            raise ValueError(f"step {step!r}: setpoint and measured names must all differ, got "
                             f"{names} and {list(measured)}")
        plan = {p.name: v for p, v in axes}
        prior = self.writer.prior.get(step)
        if prior is not None:
            plan, start, data = self._continue(step, axes, measured, plan)
        else:
            setpoint_columns = [_column(p.name, p) for p, _ in axes]
            measured_columns = [self._measured_column(step, n, p) for n, p in measured.items()]
            attrs = {"call": self._call} if self._call else None
            self._open_steps[step] = self.writer.begin_step(step, setpoint_columns,
                                                            measured_columns, attrs, plan=plan)
            start = 0
            data = None
        shape = tuple(v.size for v in plan.values())
        total = int(np.prod(shape))
        writer = self._open_steps.get(step)
        flat = {n: np.full((total, *self._shape_of(step, n)), np.nan) for n in measured}
        if data is not None:
            for n in measured:
                flat[n][:start] = data[n][:start]
        if writer is not None:
            self._take(step, writer, [(p, plan[p.name]) for p, _ in axes], measured, start,
                       total, flat, description)
            del self._open_steps[step]
            writer.close()
        self._recorded.add(step)
        if len(axes) == 1:
            return {names[0]: plan[names[0]], **flat}
        out: dict[str, np.ndarray] = dict(plan)
        for n, values in flat.items():
            out[n] = values.reshape(*shape, *values.shape[1:])
        return out

    def _continue(self, step: str, axes: Sequence[tuple[Parameter, np.ndarray]],
                  measured: Mapping[str, Parameter], plan: dict[str, np.ndarray]
                  ) -> tuple[dict[str, np.ndarray], int, dict[str, np.ndarray]]:
        prior = self.writer.prior[step]
        wanted = [p.name for p, _ in axes] + list(measured)
        found = [c.name for c in (*prior.setpoints, *prior.measured)]
        if wanted != found:
            raise RunFileError(f"cannot resume step {step!r}: the file has columns {found}, "
                               f"the experiment now records {wanted}")
        if prior.plan is not None:
            if list(prior.plan) != list(plan) or not all(
                    np.array_equal(prior.plan[k], plan[k]) for k in plan):
                self.writer.event("plan", f"{step}: the experiment planned a different grid "
                                          f"than the one on disk; continuing the one on disk")
            plan = prior.plan
        total = int(np.prod([v.size for v in plan.values()]))
        data = self.writer.read_prior(step)
        if prior.points >= total:
            self.writer.event("resume", f"{step}: complete on disk ({prior.points} points); "
                                        f"not taken again")
        else:
            self._open_steps[step] = self.writer.continue_step(step)
            self.writer.event("resume", f"{step}: continuing at point {prior.points} of {total}")
        return plan, prior.points, data

    def _take(self, step: str, writer: StepWriter, axes: Sequence[tuple[Parameter, np.ndarray]],
              measured: Mapping[str, Parameter], start: int, total: int,
              flat: dict[str, np.ndarray], description: str | None) -> None:
        """Take points ``start`` to ``total`` of a (nested) sweep, in row-major order."""
        shape = tuple(v.size for _, v in axes)
        setters = [p.set for p, _ in axes]
        plans = [v.tolist() for _, v in axes]
        readers = [(p.get, flat[n].ndim > 1) for n, p in measured.items()]
        scalar_readers = [get for get, is_trace in readers if not is_trace]
        all_scalar = len(scalar_readers) == len(readers)
        columns = list(flat.values())
        task = self.progress.add_task(description or step, total=total, completed=start)
        supervisor = self._supervisor
        point_start = supervisor.point_start if supervisor is not None else _no_token
        point_ok = supervisor.point_ok if supervisor is not None else _always_ok
        append = writer.append
        update = self.progress.update
        inner = len(axes) - 1
        last: list[int] | None = None
        shown = -PROGRESS_PERIOD  # the first point updates the bar: the rate needs two samples
        i = start
        while i < total:
            index = [i] if not inner else [int(k) for k in np.unravel_index(i, shape)]
            token = point_start()
            setvalues = []
            for level, setter in enumerate(setters):
                value = plans[level][index[level]]
                if last is None or level == inner or index[level] != last[level]:
                    setter(value)
                setvalues.append(value)
            row: list[float] | list[np.ndarray | float]
            if all_scalar:
                row = [float(get()) for get in scalar_readers]
            else:
                row = [np.asarray(get(), dtype=float) if is_trace else float(get())
                       for get, is_trace in readers]
            if not point_ok(token):
                self.writer.event("retake", f"{step}: point {i} is taken again (an interlock "
                                            f"tripped while it was measured)")
                last = None  # set every setpoint again
                continue
            append(*setvalues, *row)
            for column, reading in zip(columns, row):  # noqa: B905 (same length)
                column[i] = reading
            last = index
            i += 1
            now = time.monotonic()
            if now - shown >= PROGRESS_PERIOD:
                update(task, completed=i)
                shown = now
        update(task, completed=total)

    def _measured_column(self, step: str, name: str, parameter: Parameter) -> Column:
        if isinstance(parameter, ParameterWithSetpoints):
            if len(parameter.setpoints) != 1:
                raise ValueError(f"step {step!r}: {name} has {len(parameter.setpoints)} "
                                 f"setpoint axes; traces with one axis are supported")
            axis_parameter = parameter.setpoints[0]
            if not isinstance(axis_parameter, Parameter):
                raise TypeError(f"step {step!r}: {name}'s setpoint axis is not a Parameter")
            values = np.asarray(axis_parameter.get(), dtype=float)
            axis = Axis(axis_parameter.name, axis_parameter.unit or "",
                        axis_parameter.label or axis_parameter.name, values)
            return Column(name, parameter.unit or "", parameter.label or name, axis)
        return _column(name, parameter)

    def _shape_of(self, step: str, name: str) -> tuple[int, ...]:
        writer = self._open_steps.get(step)
        columns = (writer._columns if writer is not None else
                   (*self.writer.prior[step].setpoints, *self.writer.prior[step].measured))
        for column in columns:
            if column.name == name:
                return column.shape
        return ()


def _no_token() -> int:
    return 0


def _always_ok(token: int) -> bool:
    return True


def _column(name: str, parameter: Parameter) -> Column:
    return Column(name=name, unit=parameter.unit or "", long_name=parameter.label or name)


def _catalog_warning(console: Console, exc: Exception) -> None:
    console.print(f"[yellow]warning: {exc}; the run goes on; `hil catalog rebuild` re-indexes "
                  f"it[/]", highlight=False, soft_wrap=True)
