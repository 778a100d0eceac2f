"""The ``hil`` command: run experiments, show run files, list what is available."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hil import experiment
from hil.cli_catalog import catalog_group, runs_group, status_command
from hil.cli_common import (
    CATALOG_HELP,
    SHIPPED_STATIONS,
    USER_ERRORS,
    _error,
    _fail,
    default_station,
    format_duration,
    format_value,
    results_table,
)
from hil.cli_serve import dash_command, profiles_group, twin_group
from hil.results import Result
from hil.safety import RunInterlocked, UnsafeLab, exit_code
from hil.store.space import DiskFullError

# What other modules and tests import from here (the shared pieces live in hil.cli_common).
__all__ = ["CATALOG_HELP", "SHIPPED_STATIONS", "USER_ERRORS", "default_station", "format_duration",
           "format_value", "main", "parse_meta", "results_table", "suspects"]


def parse_meta(items: tuple[str, ...]) -> dict[str, str]:
    """``--meta KEY=VALUE`` values (keys are checked against the station's metadata keys)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--meta {item}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _instrument_errors() -> tuple[type[BaseException], ...]:
    """An instrument that refuses, times out or cannot be reached before a run starts: the
    lab's to fix, told in one line (imported here: qcodes is slow to import)."""
    from pyvisa.errors import VisaIOError

    from instruments._scpi import InstrumentError

    return (VisaIOError, InstrumentError, OSError)


def _report_unsafe(exc: BaseException) -> bool:
    """An ``error:`` line per instrument whose safe state did not hold; True if any."""
    failures = exc.failures if isinstance(exc, UnsafeLab) else getattr(exc, "unsafe", [])
    for failure in failures:
        _error(f"LAB MAY BE LIVE: {failure.message()}; check it, then run `hil safe`")
    return bool(failures)


def _run_error(exc: Exception, out: Path | None, run_failed: Callable[[], bool],
               user_errors: tuple[type[BaseException], ...]) -> None:
    """Exit for a run (or resume) that raised: 1 if the lab may be live or the run itself
    failed (``run_failed``: its file says so), 2 for a user error; else return (a bug: the
    caller re-raises it with its traceback)."""
    message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    if _report_unsafe(exc) and isinstance(exc, UnsafeLab):
        _fail(f"run ended with the lab possibly live; data and details kept in {out}", 1)
    if run_failed():
        _fail(f"run failed: {message}\n  data and traceback kept in {out} (status failed)", 1)
    if isinstance(exc, user_errors):
        _fail(message)


def _ended(exc: BaseException, out: Path | None) -> None:
    """Exit as the DESIGN contract says for a run that stopped, was interlocked or unsafe."""
    unsafe = _report_unsafe(exc)
    code = exit_code(exc)
    if isinstance(exc, KeyboardInterrupt):
        state = ("instruments NOT all safe (above)" if unsafe else
                 "instruments left in their safe state")
        _fail(f"aborted; {state}; data kept in {out}", code)
    if isinstance(exc, RunInterlocked):
        _fail(f"interlocked: {exc}; instruments left in their safe state; data kept in {out}",
              1 if unsafe else code)


def check_speed(value: float | None) -> float | None:
    """``--speed``: a positive, finite number of lab seconds per wall second."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value:g}: must be a positive finite number of lab seconds "
                                 f"per wall second (1: wall speed; 60: a lab minute a second)")
    return value


@click.group()
def main() -> None:
    """qlink-hil: control and characterization of microwave-to-optical transducers."""


@main.command("run")
@click.argument("experiment_name", metavar="EXPERIMENT")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: stations/twin.yaml, the simulated lab).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run file to write (default: runs/<UTC time>_<experiment>.h5).")
@click.option("--set", "assignments", multiple=True, metavar="STEP.PARAM=VALUE",
              help="Change a step parameter; repeatable.")
@click.option("--force", is_flag=True, help="Re-run every step of the chain, fresh or not.")
@click.option("--realtime", is_flag=True,
              help="On the twin: let the fridge and sweeps take wall-clock time (default: a "
                   "virtual clock, where waiting costs nothing).")
@click.option("--speed", type=float, default=None, callback=lambda _ctx, _param, value:
              check_speed(value), metavar="X",
              help="With --realtime (implied): X lab seconds pass per wall second, for demos "
                   "and live views of a long run (default 1: wall speed).")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Run metadata (device, sample, cooldown, operator, notes); wins over the "
                   "station's metadata:; repeatable.")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def run_command(experiment_name: str, station: Path | None, out: Path | None,
                assignments: tuple[str, ...], force: bool, realtime: bool,
                speed: float | None, meta: tuple[str, ...], catalog: str | None) -> None:
    """Run EXPERIMENT (``chain`` or one step) and record it to one HDF5 file."""
    from hil.runner import default_run_path, execute

    console = Console()
    started = False
    try:
        exp = experiment.find(experiment_name)
        params = experiment.parse_sets(exp, assignments)
        metadata = parse_meta(meta)
        station = station or default_station()
        out = out or default_run_path(experiment_name)
        if out.exists():
            raise FileExistsError(f"{out}: exists already; a run never overwrites another")
        console.print(f"[bold]{exp.name}[/] on {station} -> {out}", highlight=False)
        started = True
        run = execute(exp, station, out, params, console=console, force=force,
                      realtime=realtime or speed is not None, speed=speed or 1.0,
                      catalog=catalog, meta=metadata)
    except (KeyboardInterrupt, RunInterlocked) as exc:
        _ended(exc, out)
    except Exception as exc:
        # Once the run started, its file holds the data so far, status 'failed' and the traceback.
        _run_error(exc, out, lambda: started and out is not None and out.exists(),
                   USER_ERRORS + (DiskFullError,) + _instrument_errors())
        raise
    _report(console, run)


@main.command("show")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print status, steps and results as JSON.")
def show_command(path: Path, as_json: bool) -> None:
    """Print a run file's status, steps and results."""
    from hil.store import open_run, summary

    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such run file")
        if as_json:
            click.echo(json.dumps(summary(path, check=True), indent=2))
            return
        record = open_run(path)
    except USER_ERRORS + (OSError,) as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    console = Console()
    console.print(f"[bold]{record.path}[/]  experiment [bold]{record.experiment}[/]  "
                  f"status [bold]{record.status}[/]", highlight=False)
    if record.state != record.status:
        console.print(_STATE_NOTES[record.state].format(path=path, **record.writer),
                      highlight=False)
    for banner in _lab_warnings(record):
        console.print(f"[bold red]{escape(banner)}[/]", highlight=False, soft_wrap=True)
    if record.recovered:
        console.print("[yellow]read with its consistency flags cleared: its writer died while "
                      "changing the file's structure[/]", highlight=False)
    console.print(f"started {record.started}  ended {record.ended or '-'}  lab time "
                  f"{format_duration(record.lab_time_s)}", highlight=False)
    for name in record.points:
        planned = record.planned.get(name)
        of = f" of {planned}" if planned is not None else ""
        console.print(f"  step {name}: {record.points[name]}{of} points, lab time "
                      f"{format_duration(record.lab_times.get(name))}", highlight=False)
        _print_problems(console, record.problems.get(name, []))
    for name, error in record.unreadable.items():
        console.print(f"  [red]step {escape(name)}: unreadable ({escape(error)})[/]",
                      highlight=False)
        _print_problems(console, record.problems.get(name, []))
    if record.problems.get(""):
        console.print("[bold red]the file is damaged[/]; what can be read is shown",
                      highlight=False)
        _print_problems(console, record.problems[""])
    if record.traceback:
        console.print(f"[red]{record.traceback}[/]", highlight=False)
    console.print(results_table(record.results, record.lab_times, record.lab_time_s))
    doubts = suspects(record.results)
    if doubts:
        console.print(f"[bold yellow]{len(doubts)} suspect result(s)[/]: "
                      + escape("; ".join(doubts)), highlight=False)


def _print_problems(console: Console, problems: list[str]) -> None:
    for problem in problems:
        console.print(f"    [red]{escape(problem)}[/]", highlight=False, soft_wrap=True)


def _lab_warnings(record) -> list[str]:
    """What ``hil show`` must say first when the run may have left instruments live."""
    warnings = []
    if record.state == "interrupted":
        warnings.append("WARNING: the run was interrupted without ending (its process was "
                        "killed): its safe states were never applied and instruments may be "
                        "live (laser, microwaves, heaters). Run `hil safe --station "
                        f"{record.station_path or 'STATION'}` before anything else.")
    for _when, kind, message in record.events:
        if kind == "safe_state" and message.startswith("FAILED"):
            warnings.append(f"WARNING: the safe state did not hold at the end of this run: "
                            f"{message[len('FAILED: '):]}. Check the lab, then run `hil safe`.")
    return warnings


_STATE_NOTES = {
    "interrupted": "[bold yellow]interrupted[/]: no process writes it any more (killed or "
                   "crashed); `hil resume {path}` continues it",
    "running": "[bold]being written[/] by pid {pid} on {host}",
    "unknown": "written on {host} (pid {pid}); whether that process still runs cannot be told "
               "from here",
}


@main.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(["netcdf", "qcodes"]),
              help="netcdf: one file, a group per step; qcodes: a QCoDeS dataset per step.")
@click.argument("out", type=click.Path(path_type=Path))
def export_command(path: Path, to: str, out: Path) -> None:
    """Export the finished run file PATH to OUT (a .nc file, or a QCoDeS .db); see hil.export."""
    from hil.export import export

    try:
        lines = export(path, to, out)
    except USER_ERRORS as exc:
        _fail(str(exc))
    for line in lines:
        click.echo(line)


@main.command("resume")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: the one the run recorded, if unchanged).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def resume_command(path: Path, station: Path | None, catalog: str | None) -> None:
    """Continue an interrupted run file from its first point not on disk."""
    from hil.runner import resume

    console = Console()
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such run file")
        console.print(f"resuming [bold]{path}[/]", highlight=False)
        run = resume(path, station=station, console=console, catalog=catalog)
    except (KeyboardInterrupt, RunInterlocked) as exc:
        _ended(exc, path)
    except Exception as exc:
        _run_error(exc, path, lambda: _final_status(path) == "failed", USER_ERRORS + (OSError,))
        raise
    _report(console, run)


def _report(console: Console, run) -> None:
    """The results table of a finished run; exit 3 when a result is suspect (DESIGN exit codes)."""
    writer = run.writer
    console.print(results_table(run.results, writer.lab_times, writer.lab_time_s))
    console.print(f"run file: {run.path}", highlight=False)
    doubts = suspects(run.results)
    if doubts:
        Console(stderr=True).print(f"[bold yellow]warning:[/] completed with {len(doubts)} "
                                   f"suspect result(s): " + escape("; ".join(doubts)),
                                   highlight=False, soft_wrap=True)
        sys.exit(3)


def suspects(results: dict[str, dict[str, Result]]) -> list[str]:
    """``step.result: reason`` for every result that did not pass its checks."""
    return [f"{step}.{name}: {r.suspect}" for step, named in results.items()
            for name, r in named.items() if r.suspect]


def _final_status(path: Path) -> str | None:
    from hil.store import run_state

    try:
        return run_state(path)
    except (OSError, ValueError):
        return None


@main.command("safe")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: stations/twin.yaml).")
def safe_command(station: Path | None) -> None:
    """Put every instrument of a station in its safe state and read back that it holds.

    For after a crash or a kill: laser output off, microwave output off, heaters off. Refused
    (exit 2) while a run holds the station; exit 1 if any safe state does not hold.
    """
    from hil.lock import station_lock
    from hil.safety import safe_all
    from hil.station import load_lab

    station = station or default_station()
    console = Console()
    try:
        with station_lock(station, purpose="safe"):
            lab = load_lab(station)
            try:
                failures = safe_all(lab.station.components)
                names = [n for n, c in lab.station.components.items() if hasattr(c, "safe_state")]
            finally:
                lab.close()
    except USER_ERRORS + (OSError,) as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    for failure in failures:
        _error(f"LAB MAY BE LIVE: {failure.message()}")
    held = [n for n in names if not any(f.instrument.split(" ")[0] == n for f in failures)]
    if held:
        console.print(f"safe state applied and read back: {', '.join(held)}", highlight=False)
    if failures:
        sys.exit(1)


@main.command("list")
@click.argument("step_name", metavar="[STEP]", required=False)
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station whose limits and instruments give the ranges (default: the twin).")
def list_command(step_name: str | None, station: Path | None) -> None:
    """List experiments and stations; with STEP, that step's parameters."""
    console = Console()
    if step_name:
        try:
            _list_parameters(console, step_name, station or default_station())
        except USER_ERRORS as exc:
            _fail(str(exc.args[0]) if len(exc.args) == 1 else str(exc))
        return
    table = Table(title="experiments", show_edge=False)
    table.add_column("name")
    table.add_column("steps")
    table.add_column("what it does")
    for exp in experiment.available().values():
        table.add_row(exp.name, ", ".join(s.__name__ for s in exp.steps), exp.summary)
    console.print(table)
    console.print("stations:")
    seen = set()
    for folder in (Path("stations"), SHIPPED_STATIONS):
        for path in sorted(folder.glob("*.yaml")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                console.print(f"  {path}", highlight=False)


def _list_parameters(console: Console, step_name: str, station: Path) -> None:
    """A step's declared parameters: type, unit, range (on ``station``), default, help."""
    from hil.parameters import Capabilities, declared
    from hil.station import read_station_file

    steps = {s.__name__: s for exp in experiment.available().values() for s in exp.steps}
    if step_name not in steps:
        raise experiment.ExperimentError(f"unknown step {step_name!r}; steps: "
                                          f"{', '.join(sorted(steps))}")
    _, _, data = read_station_file(station)
    capabilities = Capabilities(data)
    table = Table(title=f"{step_name} (ranges on {station})", show_edge=False)
    for column in ("parameter", "type", "unit", "range", "default", "help"):
        table.add_column(column, overflow="fold")
    for name, decl in declared(steps[step_name]).items():
        default = f"{decl.default:g}" if isinstance(decl.default, float) else str(decl.default)
        table.add_row(name, decl.kind.__name__, decl.param.unit,
                      decl.describe_range(capabilities), default, decl.param.help)
    console.print(table, highlight=False)


# The commands kept in modules of their own (hil.cli_catalog, hil.cli_serve).
for _command in (status_command, runs_group, catalog_group, profiles_group, twin_group, dash_command):
    main.add_command(_command)
