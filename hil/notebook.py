"""The lab from a notebook: open a station once, run steps and quick sweeps on it, see the results.

``hil run`` opens its station for one run and closes it; a notebook keeps the lab open between
cells, and opening the station again clashes with QCoDeS' instrument names (``Another instrument
has the name: laser``). Here :func:`open_lab` opens it once and holds its lock (no other run may
drive it meanwhile), and :func:`run_step` and :func:`measure` run on it through the very runner
``hil run`` uses: the same parameter checks (before the file exists and before any instrument
byte), interlocks, safe states at the end of each run, run file, catalog entry and results.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray
from qcodes.parameters import Parameter
from rich.console import Console

from hil.clock import RealClock
from hil.experiment import Experiment, find
from hil.lock import station_lock
from hil.runner import default_run_path, execute
from hil.runview import LabRun
from hil.safety import UnsafeLab, safe_all
from hil.station import Lab, load_lab

__all__ = ["LabSession", "measure", "open_lab", "run_step"]

#: Open labs, most recent last: :func:`measure` finds the lab a parameter belongs to here.
_OPEN: list[LabSession] = []


class _Borrowed(Lab):
    """The session's lab as a run sees it: a run ends with ``lab.close()``, which must leave
    the session's instruments open for the next cell."""

    def close(self) -> None:
        """Nothing: the session closes the lab."""


class LabSession:
    """An open station (:func:`open_lab`): ``with`` gives the :class:`hil.station.Lab`.

    Outside a ``with`` (a notebook keeping the lab across cells) use ``session.lab`` and call
    :meth:`close` at the end; an interpreter that exits closes it too.
    """

    def __init__(self, station: str | Path | None = None, *, realtime: bool = False) -> None:
        from hil.cli import default_station

        path = Path(station) if station is not None else default_station()
        self._lock = station_lock(path, purpose="notebook")
        self._lock.__enter__()  # StationBusy if a run holds it: nothing opened then
        try:
            self.lab = load_lab(path, clock=RealClock() if realtime else None)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self.closed = False
        _OPEN.append(self)
        atexit.register(self.close)

    def __enter__(self) -> Lab:
        return self.lab

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Every instrument to its safe state (read back), then closed; the station released.

        Raises :class:`hil.safety.UnsafeLab` (after closing) when a safe state did not hold.
        """
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        _OPEN.remove(self)
        try:
            unsafe = safe_all(self.lab.station.components)
        finally:
            try:
                self.lab.close()
            finally:
                self._lock.__exit__(None, None, None)
        if unsafe:
            raise UnsafeLab(unsafe)


def open_lab(station: str | Path | None = None, *, realtime: bool = False) -> LabSession:
    """Open ``station`` (default: the simulated lab, ``stations/twin.yaml``) once.

    ``with hil.open_lab("my_lab.yaml") as lab:`` opens every instrument and role, holds the
    station's lock (``hil run`` on it is refused meanwhile) and, on leaving, puts every
    instrument in its safe state and closes it. ``realtime``: on the twin, wall-clock time.
    """
    return LabSession(station, realtime=realtime)


def run_step(step_or_experiment: Callable[..., Any] | Experiment | str, *, lab: Lab,
             out: str | Path | None = None, console: Console | None = None, force: bool = False,
             catalog: str | None = None, meta: Mapping[str, str] | None = None,
             **params: Any) -> LabRun:
    """Run a step (a ``@step`` function, yours or the project's), an experiment or a registered
    name on the open ``lab``, as ``hil run`` would; returns the run read back from its file.

    ``params``: the step's parameters (``center_m=1550.07e-9``); for an experiment of several
    steps, one mapping per step (``optical_resonance={"center_m": ...}``). ``out``: the run
    file (default ``runs/<UTC time>_<name>.h5``). ``force``, ``catalog``, ``meta``: as
    ``hil run``'s ``--force``, ``--catalog``, ``--meta``. Bad parameters raise ``ValueError``
    before the file exists and before any instrument is touched; a step that fails raises
    after its file is marked ``failed``.
    """
    experiment = _experiment(step_or_experiment)
    return _run(experiment, lab, out, _step_params(experiment, params), console,
                force=force, catalog=catalog, meta=meta)


def measure(setpoint: Parameter | str, values: Iterable[float], *readings: Parameter | str,
            lab: Lab | None = None, out: str | Path | None = None, group: str = "measure",
            console: Console | None = None, catalog: str | None = None,
            meta: Mapping[str, str] | None = None) -> xarray.Dataset:
    """Set ``setpoint`` to each of ``values``, read every reading at each, into a run file.

    ``setpoint`` and ``readings`` are QCoDeS parameters of an open lab's instruments
    (``lab.pump.wavelength``) or ``"role.parameter"`` text. Every value is checked against the
    setpoint's validator (driver range narrowed by the station's limits) before the file
    exists. The run ends as any run: instruments in their safe state. Returns the recorded
    group as an ``xarray.Dataset`` read back from the file (``attrs["run_file"]``).
    """
    lab = lab if lab is not None else _lab_of([setpoint, *readings])
    swept = _parameter(lab, setpoint, "setpoint")
    if not readings:
        raise ValueError("measure: give at least one reading")
    read = [_parameter(lab, r, "reading") for r in readings]
    points = _checked_values(swept, values)
    names = [swept.name] + [p.name for p in read]  # a name used twice: full names instead
    measured = {(p.name if names.count(p.name) == 1 else p.full_name): p for p in read}

    def quick_sweep(lab: Lab, run: Any) -> None:
        run.sweep(group, swept, points, measured)

    quick_sweep.__name__ = quick_sweep.__qualname__ = "measure"
    quick_sweep.__doc__ = f"{swept.full_name} swept, {', '.join(measured)} read."
    done = _run(Experiment("measure", quick_sweep), lab, out, {}, console, catalog=catalog,
                meta=meta)
    data = done.data(group)
    data.attrs["run_file"] = str(done.path)
    return data


def _run(experiment: Experiment, lab: Lab, out: str | Path | None,
         params: Mapping[str, Mapping[str, Any]], console: Console | None, **options: Any
         ) -> LabRun:
    if getattr(lab, "_closed", False):
        raise ValueError(f"{lab.path}: the lab is closed; open it again with hil.open_lab")
    path = (Path(out) if out is not None else _fresh_path(experiment.name)).absolute()
    if path.exists():
        raise FileExistsError(f"{path}: exists already; a run never overwrites another")
    borrowed = _Borrowed(**{f.name: getattr(lab, f.name) for f in dataclasses.fields(lab)})
    held = any(session.lab is lab for session in _OPEN)  # else a lab from hil.station.load_lab
    try:
        with contextlib.nullcontext() if held else station_lock(lab.path, purpose="run", run=path):
            execute(experiment, lab.path, path, params, console=console, lab=borrowed, **options)
    except BaseException as exc:
        if path.exists():  # the run started: its file says how it ended, with the traceback
            exc.add_note(f"run file: {path}")
        raise
    return LabRun.read(path)


def _experiment(target: Callable[..., Any] | Experiment | str) -> Experiment:
    if isinstance(target, Experiment):
        return target
    if isinstance(target, str):
        return find(target)
    if callable(target) and hasattr(target, "__name__"):
        return Experiment(target.__name__, target)
    raise TypeError(f"run_step: expected a step function, an Experiment or a name, got "
                    f"{target!r}")


def _step_params(experiment: Experiment, params: Mapping[str, Any]
                 ) -> dict[str, dict[str, Any]]:
    """Keyword arguments as the runner's ``{step: {param: value}}``."""
    steps = {s.__name__: s for s in experiment.steps}
    if len(steps) == 1:
        return {experiment.steps[0].__name__: dict(params)}
    out: dict[str, dict[str, Any]] = {name: {} for name in steps}
    for name, values in params.items():
        if name not in steps or not isinstance(values, Mapping):
            raise ValueError(f"{experiment.name}: {name}=...: give each step's parameters as "
                             f"STEP={{PARAM: VALUE}}; steps: {', '.join(steps)}")
        out[name] = dict(values)
    return out


def _fresh_path(name: str) -> Path:
    """``runs/<UTC time>_<name>.h5``, with a counter when a run of this second has it."""
    path = default_run_path(name)
    n = 2
    while path.exists():
        path = path.with_name(f"{default_run_path(name).stem}_{n}.h5")
        n += 1
    return path


def _lab_of(targets: list[Parameter | str]) -> Lab:
    """The open lab whose instruments the parameters belong to (text needs exactly one)."""
    for target in targets:
        if isinstance(target, Parameter):
            root = target.root_instrument
            for session in reversed(_OPEN):
                if any(c is root for c in session.lab.station.components.values()):
                    return session.lab
            raise ValueError(f"measure: {target.full_name} belongs to no lab opened with "
                             f"hil.open_lab; pass lab=")
    if len(_OPEN) != 1:
        raise ValueError(f"measure: {len(_OPEN)} labs are open; pass lab=")
    return _OPEN[0].lab


def _parameter(lab: Lab, target: Parameter | str, what: str) -> Parameter:
    if isinstance(target, str):
        role, dot, name = target.partition(".")
        if not dot or role not in lab.roles:
            raise ValueError(f"measure: {what} {target!r}: expected ROLE.PARAMETER; roles of "
                             f"{lab.path}: {', '.join(lab.roles)}")
        found = getattr(lab.roles[role], name, None)
        if not isinstance(found, Parameter):
            raise ValueError(f"measure: {what} {role}.{name}: {role} has no parameter {name!r}")
        target = found
    if not isinstance(target, Parameter):
        raise TypeError(f"measure: {what} must be a QCoDeS Parameter or 'role.parameter', got "
                        f"{target!r}")
    if what == "setpoint" and not target.settable:
        raise ValueError(f"measure: {target.full_name} cannot be set")
    if what == "reading" and not target.gettable:
        raise ValueError(f"measure: {target.full_name} cannot be read")
    return target


def _checked_values(setpoint: Parameter, values: Iterable[float]) -> np.ndarray:
    """The setpoints, each validated (driver range, station limits) before anything runs."""
    points = np.asarray(list(values), dtype=float)
    if points.ndim != 1 or points.size == 0:
        raise ValueError(f"measure: values for {setpoint.full_name} must be a non-empty 1-D "
                         f"sequence of numbers")
    for value in points.tolist():
        if not math.isfinite(value):
            raise ValueError(f"measure: {setpoint.full_name}: {value} is not a finite number")
        try:
            setpoint.validate(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"measure: {setpoint.full_name} = {value:g} {setpoint.unit} is "
                             f"refused: {_first_line(exc).split('; Parameter')[0]}") from None
    return points


def _first_line(exc: BaseException) -> str:
    return str(exc.args[0] if exc.args else exc).splitlines()[0]

