"""The ``hil`` command: run experiments, show run files, list what is available."""

from __future__ import annotations

import importlib.resources
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hil import experiment
from hil.results import Result
from hil.safety import RunInterlocked, UnsafeLab, exit_code
from hil.store.space import DiskFullError

#: The station files installed with the package (editable or not): see stations/__init__.py.
SHIPPED_STATIONS = Path(str(importlib.resources.files("stations")))
CATALOG_HELP = ("Catalog database, a SQLAlchemy URL, e.g. postgresql://host/lab (default: "
                "$HIL_CATALOG, else catalog.sqlite beside the runs).")
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)


def default_station() -> Path:
    """``stations/twin.yaml`` of the working folder, else the one shipped with the project."""
    local = Path("stations/twin.yaml")
    return local if local.is_file() else SHIPPED_STATIONS / "twin.yaml"


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


def _fail(message: str, code: int = 2) -> NoReturn:
    _error(message)
    sys.exit(code)


def _error(message: str) -> None:
    """One ``error:`` line; the message is printed as is (``[low, high]`` is not markup)."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False,
                               soft_wrap=True)


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
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Run metadata (device, sample, cooldown, operator, notes); wins over the "
                   "station's metadata:; repeatable.")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def run_command(experiment_name: str, station: Path | None, out: Path | None,
                assignments: tuple[str, ...], force: bool, realtime: bool,
                meta: tuple[str, ...], catalog: str | None) -> None:
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
                      realtime=realtime, catalog=catalog, meta=metadata)
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


@main.command("status")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: stations/twin.yaml).")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of the run files (default: runs).")
@click.option("--device", default=None, help="Device (default: the station's metadata: device).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def status_command(station: Path | None, runs: Path, device: str | None,
                   catalog: str | None) -> None:
    """Each calibration of a station: value, age, and whether a chain would re-run it."""
    from hil.calibration import CalibrationStore
    from hil.catalog import CatalogError, CatalogMissing, import_legacy, open_catalog
    from hil.runner import run_metadata

    station = station or default_station()
    console = Console()
    try:
        name, metadata = run_metadata(station, None)
        device = metadata.get("device", "") if device is None else device
        index = open_catalog(catalog, runs, create=False)
        note = import_legacy(index, runs)
        if note:
            console.print(note, highlight=False, soft_wrap=True)
        entries = CalibrationStore(index, name, device).all()
    except CatalogMissing:
        entries = {}
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    of = f"station {name}" + (f", device {device}" if device else "")
    if not entries:
        console.print(f"no calibrations of {of} ({station}); run 'hil run chain'", highlight=False)
        return
    table = Table(title=f"calibrations of {of}", show_edge=False)
    for column in ("step", "result", "value", "± stderr", "unit", "age", "state", "from run"):
        table.add_column(column)
    for step, cal in entries.items():
        age = f"{cal.age_s() / 60:.0f} min"
        state = "[green]fresh[/]" if cal.fresh() else "[red]stale[/]"
        for result, r in cal.results.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            table.add_row(step, result, format_value(r.value, r.stderr), stderr, r.unit, age,
                          state, cal.run)
    console.print(table)


@main.group("runs", invoke_without_command=True)
@click.option("--runs", "folder", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of the run files, where the default catalog lives (default: runs).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
@click.option("--device", default=None, help="Only runs on this device.")
@click.option("--experiment", default=None, help="Only runs of this experiment.")
@click.option("--status", default=None,
              type=click.Choice(["running", "interrupted", "unknown", "completed", "aborted",
                                 "failed", "interlocked"]), help="Only runs that ended so.")
@click.option("--since", default=None, metavar="DATE",
              help="Only runs started at or after DATE (2026-12-01, or an ISO 8601 time; UTC "
                   "unless it says otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs and results as JSON.")
@click.pass_context
def runs_group(ctx: click.Context, folder: Path, catalog: str | None, device: str | None,
               experiment: str | None, status: str | None, since: str | None,
               as_json: bool) -> None:
    """List the runs in the catalog, oldest first (`hil runs trend` plots one result)."""
    ctx.obj = {"folder": folder, "catalog": catalog}
    if ctx.invoked_subcommand is not None:
        return
    from hil.catalog import CatalogError, CatalogMissing, open_catalog, refresh_running

    try:
        since = _since(since)  # a bad date is refused even where there is no catalog yet
        index = open_catalog(catalog, folder, create=False)
        refresh_running(index)
        found = index.runs(device=device, experiment=experiment, status=status, since=since)
    except CatalogMissing:
        found = []
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(title=f"{len(found)} run(s)", show_edge=False)
    for column in ("run", "experiment", "station", "device", "cooldown", "operator", "status",
                   "started", "lab time", "results"):
        table.add_column(column)
    for r in found:
        count = sum(len(named) for named in r["results"].values())
        suspect = sum("suspect" in v for named in r["results"].values() for v in named.values())
        lab_time = "" if r["lab_time_s"] is None else f"{r['lab_time_s']:.0f} s"
        table.add_row(r["run_id"], r["experiment"], r["station"], r["device"], r["cooldown"],
                      r["operator"], r["status"], r["started"][:19], lab_time,
                      f"{count}" + (f" ({suspect} suspect)" if suspect else ""))
    Console().print(table)


def _since(text: str | None) -> str | None:
    """``--since`` as the catalog's time text (ISO 8601 UTC), so it compares as text."""
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text}: expected a date (2026-12-01) or an ISO 8601 "
                         f"time") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")


@runs_group.command("trend")
@click.argument("result", metavar="RESULT")
@click.option("--device", default=None, help="Only runs on this device.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: RESULT_trend.png in the runs folder).")
@click.pass_context
def runs_trend_command(ctx: click.Context, result: str, device: str | None,
                       out: Path | None) -> None:
    """Plot RESULT (NAME or STEP.NAME) over time with error bars and cooldown boundaries."""
    from hil.catalog import CatalogError, open_catalog, trend

    folder, catalog = ctx.obj["folder"], ctx.obj["catalog"]
    out = out or folder / f"{result}_trend.png"
    try:
        points = trend(open_catalog(catalog, folder, create=False), result, out, device=device)
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    Console().print(f"{len(points)} run(s) -> {out}", highlight=False)


@main.group("catalog")
def catalog_group() -> None:
    """The run catalog: the index of run files and the calibration history."""


@catalog_group.command("rebuild")
@click.option("--runs", "folder", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of run files to index, subfolders included (default: runs).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def catalog_rebuild_command(folder: Path, catalog: str | None) -> None:
    """Re-index every run file of a folder (the files are the truth); a damaged SQLite
    catalog is moved aside and built afresh."""
    from hil.catalog import CatalogError, catalog_url, open_catalog, rebuild, sqlite_path

    console = Console()
    if not folder.is_dir():
        _fail(f"--runs {folder}: no such folder")
    try:
        index = open_catalog(catalog, folder)
    except CatalogError as exc:
        file = sqlite_path(catalog_url(catalog, folder))
        if file is None or not file.is_file():
            _fail(str(exc))
        aside = file.with_name(f"{file.name}.damaged-{int(file.stat().st_mtime)}")
        file.replace(aside)
        for extra in ("-wal", "-shm"):
            file.with_name(file.name + extra).unlink(missing_ok=True)
        console.print(f"[yellow]{exc}: moved aside to {aside}; building it afresh[/]",
                      highlight=False, soft_wrap=True)
        try:
            index = open_catalog(catalog, folder)
        except CatalogError as again:
            _fail(str(again))
    try:
        done = rebuild(index, folder)
    except CatalogError as exc:
        _fail(str(exc))
    for path, why in done.skipped.items():
        console.print(f"[yellow]skipped {path}: {why}[/]", highlight=False, soft_wrap=True)
    console.print(f"{len(done.indexed)} run(s) indexed, {len(done.skipped)} skipped, "
                  f"{len(done.forgotten)} gone from the folder forgotten, {done.calibrations} "
                  f"calibration(s) restored from run files, in {index.where}", highlight=False,
                  soft_wrap=True)


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


@main.group("profiles")
def profiles_group() -> None:
    """Check simulation profiles against their drivers."""


@profiles_group.command("check")
@click.argument("model_names", metavar="[MODEL]...", nargs=-1)
@click.option("--driver", "driver", default=None, metavar="PACKAGE.MODULE:CLASS",
              help="A lab's own QCoDeS driver to run on the simulation of its model.")
@click.option("--model", "model", default=None,
              help="With --driver: the simulated model (default: guessed from the class name).")
@click.option("--profiles", "profiles", type=click.Path(path_type=Path, file_okay=False),
              default=None, help="With --driver: a folder of edited profiles to use instead.")
def profiles_check_command(model_names: tuple[str, ...], driver: str | None, model: str | None,
                           profiles: Path | None) -> None:
    """Prove each profile answers every command its driver sends (all models if none given);
    with --driver, run a lab's own driver on the simulation and list what it did not take."""
    from hil.profiles import check, check_driver, models

    console = Console()
    known = models()
    unknown = [m for m in model_names if m not in known]
    if unknown:
        _fail(f"unknown model(s) {', '.join(unknown)}; models: {', '.join(known)}")
    if driver is None and (model or profiles):
        _fail("--model and --profiles go with --driver")
    if driver is not None:
        try:
            reports = [check_driver(driver, model, profiles)]
        except ValueError as exc:
            _fail(str(exc))
    else:
        reports = [r for m in model_names or known for r in check(m)]
    gaps = 0
    for report in reports:
        verdict = "[green]ok[/]" if report.ok else f"[red]{len(report.gaps)} gap(s)[/]"
        name = report.driver.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        console.print(f"{report.model:<16} {name:<16} {report.checked:>4} parameters  {verdict}",
                      highlight=False)
        for gap in report.gaps:
            console.print(f"    {gap}", markup=False, highlight=False)
        gaps += len(report.gaps)
    if gaps:
        sys.exit(1)


@main.group("twin")
def twin_group() -> None:
    """The simulated lab as a process of its own, on TCP sockets."""


@twin_group.command("serve")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="A simulated station: its sim: lab and twin: parameters "
                   "(default: stations/twin.yaml).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback only unless --allow-remote.")
@click.option("--port-base", type=int, default=5025, show_default=True,
              help="Instrument i of the lab file listens on PORT_BASE + i; 0 picks free ports.")
@click.option("--control-port", type=int, default=None,
              help="Control port (clock, faults), on loopback only "
                   "[default: PORT_BASE - 1, or free with --port-base 0].")
@click.option("--ports-file", type=click.Path(path_type=Path), default=None,
              help="Write the served addresses as JSON once listening (removed on exit).")
@click.option("--write-station", type=click.Path(path_type=Path), default=None,
              help="Write the station YAML that reaches this server, for `hil run --station`.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that is not loopback (no authentication: trusted networks only).")
@click.option("--clock", "clock_kind", type=click.Choice(["virtual", "real"]), default="virtual",
              show_default=True,
              help="virtual: time moves when the client waits, as in-process; real: wall time.")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Speed of the real clock (2: twice as fast as the wall).")
@click.option("--idle-timeout", type=float, default=600.0, show_default=True,
              help="Drop a client silent this many seconds (0: never).")
@click.option("--max-clients", type=int, default=8, show_default=True,
              help="Clients per instrument; a new one beyond it replaces the longest idle.")
@click.option("--max-line", type=int, default=65536, show_default=True,
              help="Drop a client whose message is longer than this many bytes.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message.")
def twin_serve_command(station: Path | None, host: str, port_base: int, control_port: int | None,
                       ports_file: Path | None, write_station: Path | None, allow_remote: bool,
                       clock_kind: str, speed: float, idle_timeout: float, max_clients: int,
                       max_line: int, verbose: bool) -> None:
    """Serve every instrument of a simulated station on its own TCP port (raw SCPI sockets).

    Run `hil run chain --station stations/twin-tcp.yaml` in another terminal (default ports),
    or the station --write-station writes. Ctrl-C or SIGTERM stops the server.
    """
    import logging
    import signal
    import threading

    import yaml

    from hil.clock import RealClock
    from hil.sim.server import TwinServer, station_names, tcp_station, write_json_atomic
    from hil.station import open_twin

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    server_log = logging.getLogger("hil.sim.server")
    server_log.addHandler(handler)
    server_log.setLevel(logging.DEBUG if verbose else logging.INFO)
    station = station or default_station()
    try:
        clock = RealClock(speed) if clock_kind == "real" else None
        twin = open_twin(station, clock=clock)
        server = TwinServer(twin.library, names=station_names(twin.data), host=host,
                            port_base=port_base, control_port=control_port,
                            allow_remote=allow_remote, max_line=max_line,
                            idle_timeout=idle_timeout, max_clients=max_clients).start()
    except USER_ERRORS as exc:
        server_log.removeHandler(handler)
        _fail(str(exc.args[0] if exc.args else exc))
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        table = server.table()
        if write_station is not None:
            header = (f"# Reaches the twin `hil twin serve --station {station}` serves (written "
                      f"by it):\n# every instrument through pyvisa-py at its served address, "
                      f"waits on the served clock.\n")
            try:
                write_station.write_text(header + yaml.safe_dump(
                    tcp_station(twin.data, table), sort_keys=False), encoding="utf-8")
            except (OSError, ValueError) as exc:
                _fail(f"--write-station {write_station}: {exc}")
        console = Console()
        console.print(f"serving [bold]{station}[/] (clock {table['clock']}); Ctrl-C stops",
                      highlight=False)
        for row in table["instruments"]:
            terminations = f"{row['write_termination']!r}/{row['read_termination']!r}"
            console.print(f"  {row['name']:<12} {row['model']:<8} {row['address']:<34} "
                          f"{terminations}", highlight=False, soft_wrap=True)
        console.print(f"control (clock, faults): {table['control']['address']}", highlight=False)
        if write_station is not None:
            console.print(f"station: {write_station}", highlight=False)
        sys.stdout.flush()
        if ports_file is not None:
            try:
                write_json_atomic(ports_file, table)
            except OSError as exc:
                ports_file = None
                _fail(f"--ports-file: {exc}")
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
        if ports_file is not None:
            ports_file.unlink(missing_ok=True)
        server_log.removeHandler(handler)
    Console().print("stopped", highlight=False)


@main.command("dash")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Folder of the run files (and calibrations.json) to show.")
@click.option("--catalog", metavar="URL", default=None,
              help="Read runs from a run catalog instead of --runs (SQLAlchemy URL).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback only unless --allow-remote.")
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True,
              help="TCP port of the web page.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that is not loopback (no authentication: trusted networks only).")
@click.option("--nice", type=click.IntRange(0, 19), default=10, show_default=True,
              help="Lower the server's CPU priority by this much, so a run on the same machine "
                   "wins every contention for a core.")
def dash_command(runs: Path, catalog: str | None, host: str, port: int, allow_remote: bool,
                 nice: int) -> None:
    """A read-only live view of runs, plots, calibrations and interlocks in the browser."""
    from hil.dash.server import check_host, serve
    from hil.dash.source import open_source

    try:
        check_host(host, allow_remote)
        source = open_source(runs, catalog)
    except USER_ERRORS as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    Console().print(f"dashboard of {catalog or runs} on http://{host}:{port}/ (read-only); "
                    f"Ctrl-C stops", highlight=False)
    sys.stdout.flush()
    serve(source, host=host, port=port, allow_remote=allow_remote, catalog=catalog, nice=nice)


def results_table(results: dict[str, dict[str, Result]],
                  lab_times: dict[str, float] | None = None,
                  lab_time_s: float | None = None) -> Table:
    """Results by step, each step's lab time, and a suspect result marked with its reason."""
    lab_times = lab_times or {}
    caption = None if lab_time_s is None else f"lab time of the run: {format_duration(lab_time_s)}"
    table = Table(title="results", show_edge=False, caption=caption)
    flagged = any(r.suspect for named in results.values() for r in named.values())
    columns = ["step", "result", "value", "± stderr", "unit", "lab time"]
    if flagged:
        columns.append("check")
    for column in columns:
        table.add_column(column, justify="right" if column in ("value", "± stderr", "lab time")
                         else "left")
    for step in [*results, *(s for s in lab_times if s not in results)]:
        named = results.get(step) or {}
        time_text = format_duration(lab_times.get(step)) if step in lab_times else ""
        if not named:
            table.add_row(step, "", "", "", "", time_text, *([""] if flagged else []))
        for name, r in named.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            value = format_value(r.value, r.stderr)
            check = []
            if flagged:
                check = [f"[bold yellow]suspect: {escape(r.suspect)}[/]" if r.suspect else "ok"]
            if r.suspect:
                value = f"[bold yellow]{value} ![/]"
            table.add_row(escape(step), escape(name), value, stderr, escape(r.unit), time_text,
                          *check)
            time_text = ""
    return table


def format_duration(seconds: float | None) -> str:
    """Lab time as a person reads it: ``12.3 s``, ``4.5 min``, ``2 h 05 min``; ``-`` if unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min"


def format_value(value: float, stderr: float | None) -> str:
    """Enough significant digits to show the value to the second digit of its uncertainty."""
    if stderr is None or not math.isfinite(stderr) or stderr <= 0 or value == 0:
        return f"{value:.6g}"
    digits = math.floor(math.log10(abs(value))) - math.floor(math.log10(stderr)) + 2
    return f"{value:#.{min(max(digits, 2), 15)}g}"
