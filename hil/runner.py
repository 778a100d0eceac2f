"""Runs an experiment against a lab and records it: sweeps, progress, safety, safe endings, resume.

Whatever way a run ends (completed, an exception, Ctrl-C, SIGTERM, an interlock) the
instruments are put in their safe state first, then the run file is flushed and marked with how
it ended (``completed``, ``failed`` with the traceback, ``aborted``, ``interlocked``).

Stopping. The first Ctrl-C (SIGINT) or SIGTERM asks the run to stop: the instrument call in
progress finishes, the experiment's next instrument call (or the sweep's next point, or the
next slice of a wall-clock wait: hil.clock.stop_check) raises :class:`RunAborted` before
anything is sent, the point in progress is not recorded (it is incomplete), safe states are
applied, read back and retried (hil.safety.make_safe) and the file is marked ``aborted``; the
CLI exits 130 (SIGINT) or 143 (SIGTERM). The run holds its station's lock (hil.lock) from
before its file exists to after its safe states. A second signal raises
at once, wherever the experiment is. Signals arriving while the run applies its safe states and
closes its file wait for that to finish (a third one raises).

Checkpoints and resume. Every point of a sweep is appended in order, so the points on disk are
the checkpoint: a sweep with N of M planned points on disk continues at point N. The run file
records what a resume needs: the experiment name, the station file's path and YAML text, the
user's ``--set`` values (``params``), each step's planned setpoints (``planned_<name>``), which
group belongs to which experiment step (group attribute ``call``), and which experiment steps
returned (``calls_done``). :func:`resume` opens the same station (refusing one whose YAML
changed, unless given explicitly), rebuilds the file in place (``RunWriter.resume``) and runs
the experiment again in replay mode:

* an experiment step in ``calls_done`` is skipped, its results taken from the file;
* any other step runs again from its start, so it sets its instruments up again. Its sweeps
  that are complete on disk return their data without touching an instrument (so what the step
  computes from them, e.g. the fine sweep's window, comes out as it did); the interrupted sweep
  continues at its first point not on disk, on its planned grid (the plan on disk wins if the
  step plans differently now: an event says so); sweeps not started yet run as usual.

Deterministic steps thus re-plan identically. What cannot be identical is noise: a twin-backed
run resumes with the twin's noise generator started afresh, so readings taken after the resume
differ from those an uninterrupted run would have taken (a noiseless twin reproduces them
exactly). Rows on disk are never written twice.

Interlocks (``interlocks:`` in the station, see :mod:`hil.safety`) are watched in threads of
their own while the experiment runs. A point during which one tripped is discarded and taken
again after the release, with a ``retake`` event naming it.
"""

from __future__ import annotations

import functools
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

from hil.calibration import CalibrationStore, Decision, plan
from hil.catalog import (
    Catalog,
    CatalogError,
    CatalogURLError,
    entry_from_file,
    import_legacy,
    open_catalog,
)
from hil.clock import RealClock, VirtualClock, clock_of, stop_check
from hil.experiment import (
    Experiment,
    ExperimentError,
    check_parameters,
    find,
    step_parameters,
)
from hil.lock import station_lock
from hil.run import Run, _catalog_warning
from hil.safety import (
    InstrumentGuard,
    RunAborted,
    RunInterlocked,
    SafeFailure,
    Supervisor,
    UnsafeLab,
    lab_instruments,
    safe_all,
)
from hil.station import Lab, check_metadata, load_lab, read_station_file, station_identity
from hil.store import RunFileError, RunWriter, describe, open_run
from hil.store.space import check_start

__all__ = ["Run", "RunAborted", "RunInterlocked", "default_run_path", "execute", "resume"]


class _RateColumn(ProgressColumn):
    """Points per second, so a slow instrument shows up while the sweep runs."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} pts/s" if speed else "")


def default_run_path(experiment: str, root: Path | None = None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (root or Path("runs")) / f"{stamp}_{experiment}.h5"


class _Signals:
    """SIGINT and SIGTERM while a run goes: ask to stop, then stop at once; see the module docs."""

    def __init__(self, guard: InstrumentGuard, console: Console) -> None:
        self._guard = guard
        self._console = console
        self._ending = False
        self._count = 0
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self._count += 1
        if self._ending:
            if self._count >= 3:
                raise RunAborted(f"{name} while ending")
            self._console.print(f"[yellow]{name}: applying safe states and closing the run file; "
                                f"send it again to give up on that[/]", highlight=False)
            return
        if self._count == 1:
            self._guard.request_stop(name)
            self._console.print(f"[yellow]{name}: stopping after the current instrument call "
                                f"(again to stop at once)[/]", highlight=False)
            return
        raise RunAborted(name)

    def ending(self) -> None:
        self._ending = True
        self._count = 0

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals are the main thread's; leave them alone
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self)
        try:
            yield self
        finally:
            for number, previous in self._previous.items():
                signal.signal(number, previous)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    _RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False, refresh_per_second=4)


def _open_catalog(url: str | None, runs: Path, console: Console) -> Catalog | None:
    """The catalog, with the legacy calibrations.json brought in once; None if unusable."""
    try:
        catalog = open_catalog(url, runs)
        note = import_legacy(catalog, runs)
    except CatalogURLError:
        raise  # the user's input: refused before the run starts
    except CatalogError as exc:
        _catalog_warning(console, exc)
        return None
    if note:
        console.print(f"[dim]{note}[/]", highlight=False, soft_wrap=True)
    return catalog


def _index(catalog: Catalog | None, path: Path, console: Console) -> None:
    """Index the run file as it is now; a failure is a warning, never the run's end."""
    if catalog is None:
        return
    try:
        catalog.index(entry_from_file(path))
    except Exception as exc:  # the run matters more than its index
        _catalog_warning(console, exc)


def run_metadata(station: Path, meta: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The station's name, and its ``metadata:`` overridden by ``--meta`` values."""
    path, _, data = read_station_file(station)
    name, metadata = station_identity(path, data)
    return name, {**metadata, **check_metadata(dict(meta or {}), "--meta")}


def _holding_the_station(execute: Callable[..., Run]) -> Callable[..., Run]:
    """A run checks its file can be written, then holds its station (hil.lock) from before
    any instrument is opened until its safe states are applied: nothing else may drive it."""
    @functools.wraps(execute)
    def held(experiment: Experiment, station: Path, out: Path, *args: Any, **kwargs: Any
             ) -> Run:
        check_writable(out)
        if kwargs.get("lab") is not None:  # an open lab: its owner holds the lock already
            return execute(experiment, station, out, *args, **kwargs)
        with station_lock(station, purpose="run", run=out):
            return execute(experiment, station, out, *args, **kwargs)
    return held


@_holding_the_station
def execute(experiment: Experiment, station: Path, out: Path,
            params: Mapping[str, Mapping[str, Any]], console: Console | None = None,
            *, force: bool = False, realtime: bool = False, speed: float = 1.0,
            catalog: str | None = None, meta: Mapping[str, str] | None = None,
            lab: Lab | None = None) -> Run:
    """Open the station, run the experiment, and leave the lab safe and the file truthful.

    A multi-step experiment (the chain) re-runs only the steps that went stale (all of them
    with ``force``); fresh steps' results are copied in from the run that produced them.
    ``realtime``: the twin's clock runs at ``speed`` lab seconds per wall second instead of
    the virtual clock. The run is indexed in the catalog (``catalog``: a SQLAlchemy URL, default
    :func:`hil.catalog.catalog_url`) when it starts and when it ends.

    ``lab``: an already open lab of ``station`` to run on instead of opening it (hil.notebook);
    the run ends as any run does, ``lab.close()`` included, so its owner passes one whose
    ``close`` leaves it open.
    """
    console = console or Console()
    params = check_parameters(experiment, station, params)  # before any file or instrument
    check_start(Path(out))  # enough free disk, before any instrument is opened
    name, metadata = run_metadata(station, meta)
    index = _open_catalog(catalog, Path(out).parent, console)
    store = (CalibrationStore(index, name, metadata.get("device", ""))
             if index is not None else None)
    decisions = _plan(experiment, store, force, console)
    if lab is None:
        lab = load_lab(station, clock=RealClock(speed) if realtime else None)
    try:
        writer = RunWriter(out, experiment=experiment.name, station_yaml=lab.yaml_text,
                           station_path=station, params=params, snapshot=lab.snapshot(),
                           lab_clock=clock_of(lab).now, metadata=metadata)
    except BaseException:
        lab.close()
        raise
    _index(index, writer.path, console)
    return _drive(experiment, lab, writer, params, console, store, decisions, index)


def check_writable(out: Path) -> None:
    """Refuse a run file that cannot be written before any instrument is opened."""
    folder = Path(out).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".hil-write-check-"):
            pass
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write in {folder}: "
                          f"{exc.strerror or exc}") from None


class OutputError(ValueError):
    """The run file's folder cannot be written (read-only filesystem, permissions)."""


def _plan(experiment: Experiment, store: CalibrationStore | None, force: bool,
          console: Console) -> dict[str, Decision]:
    if experiment.steps == (experiment.function,):
        return {}
    try:
        decisions = {d.name: d for d in plan(experiment.steps, store, force=force)}
    except CatalogError as exc:
        _catalog_warning(console, exc)
        decisions = {d.name: d for d in plan(experiment.steps, None, force=force)}
    for d in decisions.values():
        verdict = "[bold]run[/]  " if d.run else "[dim]reuse[/]"
        console.print(f"  {verdict} {d.name:<24} {d.reason}", highlight=False)
    return decisions


def resume(path: Path, *, station: Path | None = None, console: Console | None = None,
           catalog: str | None = None) -> Run:
    """Continue an interrupted run (see the module docs); the file is rebuilt in place."""
    console = console or Console()
    path = Path(path)
    record = open_run(path)
    if record.state != "interrupted":
        why = {"running": "a process is still writing it",
               "unknown": f"it is written on another host ({record.writer.get('host')}); run "
                          f"the resume there"}.get(record.state, f"it ended ({record.state})")
        raise RunFileError(f"{path}: cannot resume: {why}")
    experiment = find(record.experiment)
    params = _params_from_file(experiment, record.params, path)
    if station is None:
        if not record.station_path:
            raise RunFileError(f"{path}: the file does not record its station file; give "
                               f"--station")
        station = Path(record.station_path)
        if not station.is_file():
            raise FileNotFoundError(f"{path}: its station file {station} is gone; give "
                                    f"--station")
        if station.read_text(encoding="utf-8") != record.station_yaml:
            raise RunFileError(f"{path}: its station file {station} changed since the run "
                               f"started; give --station to resume on it anyway, or restore it")
    name, _ = run_metadata(station, None)
    with station_lock(station, purpose="resume", run=path):
        lab = load_lab(station)
        try:
            note = f"station {station}" + (
                "" if lab.yaml_text == record.station_yaml else
                " (its YAML differs from the run's)")
            writer = RunWriter.resume(path, reason=note, lab_clock=clock_of(lab).now)
        except BaseException:
            lab.close()
            raise
        index = _open_catalog(catalog, path.parent, console)
        device = str(describe(path)["metadata"].get("device", ""))  # the run keeps its metadata
        store = (CalibrationStore(index, name, device)
                 if index is not None else None)
        _index(index, path, console)
        return _drive(experiment, lab, writer, params, console, store, catalog=index)


def _params_from_file(experiment: Experiment, stored: Mapping[str, Any], path: Path
                      ) -> dict[str, dict[str, Any]]:
    steps = {s.__name__: s for s in experiment.steps}
    params: dict[str, dict[str, Any]] = {name: {} for name in steps}
    for step, values in stored.items():
        if step not in steps or not isinstance(values, Mapping):
            raise ExperimentError(f"{path}: params: {experiment.name} has no step {step!r}")
        known = step_parameters(steps[step])
        for key, value in values.items():
            if key not in known:
                raise ExperimentError(f"{path}: params: step {step} has no parameter {key!r}")
            params[step][key] = value
    return params


def _drive(experiment: Experiment, lab: Lab, writer: RunWriter,
           params: Mapping[str, Mapping[str, Any]], console: Console,
           store: CalibrationStore | None = None,
           decisions: Mapping[str, Decision] | None = None,
           catalog: Catalog | None = None) -> Run:
    guard = InstrumentGuard(lab_instruments(lab.station.components))
    clock = clock_of(lab)
    if isinstance(clock, VirtualClock):
        guard.idle = clock.advance  # waiting out a trip lets the twin's fridge cool
    try:
        supervisor = Supervisor(lab.interlocks, lab.station.components, lab.roles, guard,
                                writer.event, lab_time=clock.now, clock=clock)
    except BaseException:
        writer.finish("failed", traceback=traceback.format_exc())
        lab.close()
        raise
    progress = _progress(console)
    run = Run(lab, writer, params, progress, supervisor, store)
    run.decisions = dict(decisions or {})
    signals = _Signals(guard, console)
    status, tb = "completed", None
    failure: BaseException | None = None
    with signals.installed():
        try:
            with guard.installed(), supervisor.running(), progress, stop_check(guard.check_stop):
                if experiment.steps == (experiment.function,):
                    run.call(experiment.function)
                else:
                    experiment.function(lab, run)
                if guard.ended_by is not None:
                    raise RunInterlocked(*guard.ended_by)
        except RunInterlocked as exc:
            status, failure = "interlocked", exc
            raise
        except KeyboardInterrupt as exc:
            status, failure = "aborted", exc
            raise
        except BaseException as exc:
            status, tb, failure = "failed", traceback.format_exc(), exc
            raise
        finally:
            signals.ending()
            try:
                unsafe = _end(lab, writer, run, status, tb, guard)
            finally:
                _index(catalog, writer.path, console)
                if catalog is not None:
                    catalog.close()  # its pooled connections; it reconnects if used again
            if unsafe:
                _report_unsafe(unsafe, failure)
    return run


def _report_unsafe(unsafe: Sequence[SafeFailure], failure: BaseException | None) -> None:
    """A safe state that did not hold is never silent: it rides on the run's own exception
    (``unsafe``, for the CLI), or becomes the exception of a run that otherwise completed."""
    if failure is None:
        raise UnsafeLab(unsafe)
    failure.unsafe = list(unsafe)  # type: ignore[attr-defined]
    failure.add_note(str(UnsafeLab(unsafe)))


def _end(lab: Lab, writer: RunWriter, run: Run, status: str, tb: str | None,
         guard: InstrumentGuard) -> list[SafeFailure]:
    """Safe states, then the data, then the status: in that order, whatever fails.

    Every instrument's safe state is applied, read back and retried (hil.safety.make_safe);
    what did not hold is an event, is added to the stored traceback, and is returned. An
    error while ending never replaces the run's first one: it is chained below it in the
    stored traceback.
    """
    unsafe: list[SafeFailure] = []
    problems: list[str] = []
    try:
        unsafe = safe_all(lab.station.components)
        detail = ", ".join(name for name, c in lab.station.components.items()
                           if hasattr(c, "safe_state"))
        try:
            writer.event("safe_state", f"applied to {detail}" if not unsafe else
                         "FAILED: " + "; ".join(f.message() for f in unsafe))
        finally:
            try:
                run.close_steps()
            except Exception:  # keep the data written so far and say why the rest is not
                problems.append(traceback.format_exc())
                raise
            finally:
                end = None
                try:
                    end = lab.snapshot()
                except Exception as exc:  # the snapshot must not cost the file its status
                    writer.event("fault", f"end snapshot failed: {exc}")
                if guard.stop_requested and status == "completed":
                    writer.event("stop", f"{guard.stop_requested} arrived as the run finished")
                if unsafe:
                    problems.append(str(UnsafeLab(unsafe)))
                if problems:
                    status = "failed" if status == "completed" else status
                    tb = "\n".join([tb or "", "While ending the run:", *problems]).lstrip()
                writer.finish(status, traceback=tb, snapshot_end=end)
    finally:
        lab.close()
    return unsafe


def snapshot_value(snapshot: Mapping[str, Any], instrument: str, parameter: str) -> Any:
    """A parameter's value in a station snapshot (as stored in ``snapshot``/``snapshot_end``)."""
    return snapshot["instruments"][instrument]["parameters"][parameter]["value"]

