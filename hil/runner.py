"""Runs an experiment against a lab and records it: sweeps, progress, results, safe endings.

Whatever way a run ends (completed, an exception, Ctrl-C, SIGTERM) the instruments are put in
their safe state first, then the run file is flushed and marked with how it ended.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from qcodes.parameters import Parameter
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from hil.experiment import Experiment, defaults
from hil.station import Lab, load_lab
from hil.store import Column, Result, RunWriter, StepWriter


class RunAborted(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM); handled like Ctrl-C."""


class Run:
    """What an experiment step sees: the lab, its parameters, and the ways to record data."""

    def __init__(self, lab: Lab, writer: RunWriter, params: Mapping[str, Mapping[str, Any]],
                 progress: Progress) -> None:
        self.lab = lab
        self.writer = writer
        self.params = params
        self.progress = progress
        self.results: dict[str, dict[str, Result]] = {}
        self._open_steps: dict[str, StepWriter] = {}

    @property
    def path(self) -> Path:
        return Path(self.writer.path)

    def call(self, step: Callable[..., Any]) -> Any:
        """Run one step with its defaults and the user's --set values."""
        values = defaults(step, self.params.get(step.__name__, {}))
        self.writer.event("step", f"{step.__name__} started with {values}")
        return step(self.lab, self, **values)

    def sweep(self, step: str, setpoint: Parameter, values: Iterable[float],
              measured: Mapping[str, Parameter], *, description: str | None = None
              ) -> dict[str, np.ndarray]:
        """Set ``setpoint`` to each value, read every measured parameter, record each point.

        Returns the recorded columns as arrays. The step stays open for its results.
        """
        values = np.asarray(list(values), dtype=float)
        writer = self._begin(step, [_column(setpoint.name, setpoint)],
                             [_column(name, p) for name, p in measured.items()])
        data = {setpoint.name: values, **{name: np.full(values.size, np.nan) for name in measured}}
        task = self.progress.add_task(description or step, total=values.size)
        for i, value in enumerate(values):
            setpoint.set(value)
            row = {name: float(p.get()) for name, p in measured.items()}
            writer.append(**{setpoint.name: float(value)}, **row)
            for name, reading in row.items():
                data[name][i] = reading
            self.progress.advance(task)
        writer.flush()
        return data

    def record_results(self, step: str, results: Mapping[str, Result]) -> None:
        """Attach fitted results to a step and close it."""
        writer = self._open_steps.pop(step, None)
        if writer is None:
            raise RuntimeError(f"step {step!r} has no open data to attach results to")
        writer.set_results(results)
        writer.close()
        self.results[step] = dict(results)

    def plot_path(self, step: str) -> Path:
        """Where a step's figure goes: beside the run file."""
        return self.path.with_name(f"{self.path.stem}_{step}.png")

    def close_steps(self) -> None:
        for writer in self._open_steps.values():
            writer.close()
        self._open_steps.clear()

    def _begin(self, step: str, setpoints: list[Column], measured: list[Column]) -> StepWriter:
        if step in self._open_steps or step in self.results:
            raise RuntimeError(f"step {step!r} was already recorded in this run")
        writer = self.writer.begin_step(step, setpoints, measured)
        self._open_steps[step] = writer
        return writer


class _RateColumn(ProgressColumn):
    """Points per second, so a slow instrument shows up while the sweep runs."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} pts/s" if task.speed else "")


def _column(name: str, parameter: Parameter) -> Column:
    return Column(name=name, unit=parameter.unit or "", long_name=parameter.label or name)


def default_run_path(experiment: str, root: Path | None = None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (root or Path("runs")) / f"{stamp}_{experiment}.h5"


@contextmanager
def _sigterm_as_abort() -> Iterator[None]:
    def handler(signum, frame):
        raise RunAborted("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(experiment: Experiment, station: Path, out: Path,
            params: Mapping[str, Mapping[str, Any]], console: Console | None = None) -> Run:
    """Open the station, run the experiment, and leave the lab safe and the file truthful."""
    console = console or Console()
    lab = load_lab(station)
    try:
        writer = RunWriter(out, experiment=experiment.name, station_yaml=lab.yaml_text,
                           snapshot=lab.snapshot())
    except BaseException:
        lab.close()
        raise
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        _RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, transient=False)
    run = Run(lab, writer, params, progress)
    status, tb = "completed", None
    try:
        with _sigterm_as_abort(), progress:
            if experiment.steps == (experiment.function,):
                run.call(experiment.function)
            else:
                experiment.function(lab, run)
    except KeyboardInterrupt:
        status = "aborted"
        raise
    except BaseException:
        status, tb = "failed", traceback.format_exc()
        raise
    finally:
        failures = lab.safe_state()
        writer.event("safe_state", "applied" if not failures else "failed: " + "; ".join(failures))
        try:
            run.close_steps()
        finally:
            writer.finish(status, traceback=tb)
            lab.close()
    return run
