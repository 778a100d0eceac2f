"""The ``hil`` command: run experiments, show run files, list what is available."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hil import experiment as experiments
from hil.results import Result
from hil.safety import RunInterlocked

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)


def default_station() -> Path:
    """``stations/twin.yaml`` of the working folder, else the one shipped with the project."""
    local = Path("stations/twin.yaml")
    return local if local.is_file() else PROJECT_ROOT / "stations" / "twin.yaml"


def _instrument_errors() -> tuple[type[BaseException], ...]:
    """An instrument that refuses, times out or cannot be reached before a run starts: the
    lab's to fix, told in one line (imported here: qcodes is slow to import)."""
    from pyvisa.errors import VisaIOError

    from instruments._scpi import InstrumentError

    return (VisaIOError, InstrumentError, OSError)


def _fail(message: str, code: int = 2) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


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
def run_command(experiment_name: str, station: Path | None, out: Path | None,
                assignments: tuple[str, ...], force: bool, realtime: bool) -> None:
    """Run EXPERIMENT (``chain`` or one step) and record it to one HDF5 file."""
    from hil.runner import default_run_path, execute

    console = Console()
    started = False
    try:
        exp = experiments.find(experiment_name)
        params = experiments.parse_sets(exp, assignments)
        station = station or default_station()
        out = out or default_run_path(experiment_name)
        if out.exists():
            raise FileExistsError(f"{out}: exists already; a run never overwrites another")
        console.print(f"[bold]{exp.name}[/] on {station} -> {out}", highlight=False)
        started = True
        run = execute(exp, station, out, params, console=console, force=force,
                      realtime=realtime)
    except KeyboardInterrupt:
        _fail(f"aborted; instruments left in their safe state; data kept in {out}", 130)
    except RunInterlocked as exc:
        _fail(f"interlocked: {exc}; instruments left in their safe state; data kept in {out}", 3)
    except Exception as exc:
        message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
        if started and out.exists():
            # The run started: its file holds the data so far, status 'failed' and the traceback.
            _fail(f"run failed: {message}\n  data and traceback kept in {out} (status failed)", 1)
        if isinstance(exc, USER_ERRORS + _instrument_errors()):
            _fail(message)
        raise
    console.print(results_table(run.results))
    console.print(f"run file: {run.path}", highlight=False)


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
            click.echo(json.dumps(summary(path), indent=2))
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
    if record.recovered:
        console.print("[yellow]read with its consistency flags cleared: its writer died while "
                      "changing the file's structure[/]", highlight=False)
    console.print(f"started {record.started}  ended {record.ended or '-'}", highlight=False)
    for name in record.points:
        planned = record.planned.get(name)
        of = f" of {planned}" if planned is not None else ""
        console.print(f"  step {name}: {record.points[name]}{of} points", highlight=False)
    for name, error in record.unreadable.items():
        console.print(f"  [red]step {name}: unreadable ({error})[/]", highlight=False)
    if record.traceback:
        console.print(f"[red]{record.traceback}[/]", highlight=False)
    console.print(results_table(record.results))


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
def resume_command(path: Path, station: Path | None) -> None:
    """Continue an interrupted run file from its first point not on disk."""
    from hil.runner import resume

    console = Console()
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such run file")
        console.print(f"resuming [bold]{path}[/]", highlight=False)
        run = resume(path, station=station, console=console)
    except KeyboardInterrupt:
        _fail(f"aborted; instruments left in their safe state; data kept in {path}", 130)
    except RunInterlocked as exc:
        _fail(f"interlocked: {exc}; instruments left in their safe state; data kept in {path}", 3)
    except Exception as exc:
        message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
        if _final_status(path) == "failed":  # the resumed run itself failed
            _fail(f"run failed: {message}\n  data and traceback kept in {path} (status failed)",
                  1)
        if isinstance(exc, USER_ERRORS + (OSError,)):
            _fail(message)
        raise
    console.print(results_table(run.results))
    console.print(f"run file: {run.path}", highlight=False)


def _final_status(path: Path) -> str | None:
    from hil.store import run_state

    try:
        return run_state(path)
    except (OSError, ValueError):
        return None


@main.command("status")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: stations/twin.yaml).")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of the run files and their calibrations.json (default: runs).")
def status_command(station: Path | None, runs: Path) -> None:
    """Each calibration of a station: value, age, and whether a chain would re-run it."""
    from hil.calibration import CalibrationStore

    station = station or default_station()
    try:
        entries = CalibrationStore(runs, str(station.resolve())).all()
    except ValueError as exc:
        _fail(str(exc))
    console = Console()
    if not entries:
        console.print(f"no calibrations of {station} in {runs}; run 'hil run chain'", highlight=False)
        return
    table = Table(title=f"calibrations of {station}", show_edge=False)
    for column in ("step", "result", "value", "± stderr", "unit", "age", "state", "from run"):
        table.add_column(column)
    for step, cal in entries.items():
        age = f"{cal.age_s() / 60:.0f} min"
        state = "[green]fresh[/]" if cal.fresh() else "[red]stale[/]"
        for name, r in cal.results.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            table.add_row(step, name, format_value(r.value, r.stderr), stderr, r.unit, age, state,
                          cal.run)
    console.print(table)


@main.command("list")
def list_command() -> None:
    """List experiments and stations."""
    console = Console()
    table = Table(title="experiments", show_edge=False)
    table.add_column("name")
    table.add_column("steps")
    table.add_column("what it does")
    for exp in experiments.available().values():
        table.add_row(exp.name, ", ".join(s.__name__ for s in exp.steps), exp.summary)
    console.print(table)
    console.print("stations:")
    seen = set()
    for folder in (Path("stations"), PROJECT_ROOT / "stations"):
        for path in sorted(folder.glob("*.yaml")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                console.print(f"  {path}", highlight=False)


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
@click.option("--idle-timeout", type=float, default=3600.0, show_default=True,
              help="Drop a client silent this many seconds (0: never).")
@click.option("--max-line", type=int, default=65536, show_default=True,
              help="Drop a client whose message is longer than this many bytes.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message.")
def twin_serve_command(station: Path | None, host: str, port_base: int, control_port: int | None,
                       ports_file: Path | None, write_station: Path | None, allow_remote: bool,
                       clock_kind: str, speed: float, idle_timeout: float, max_line: int,
                       verbose: bool) -> None:
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
                            idle_timeout=idle_timeout).start()
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


def results_table(results: dict[str, dict[str, Result]]) -> Table:
    table = Table(title="results", show_edge=False)
    for column in ("step", "result", "value", "± stderr", "unit"):
        table.add_column(column, justify="right" if column in ("value", "± stderr") else "left")
    for step, named in results.items():
        for name, r in named.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            table.add_row(step, name, format_value(r.value, r.stderr), stderr, r.unit)
    return table


def format_value(value: float, stderr: float | None) -> str:
    """Enough significant digits to show the value to the second digit of its uncertainty."""
    if stderr is None or not math.isfinite(stderr) or stderr <= 0 or value == 0:
        return f"{value:.6g}"
    digits = math.floor(math.log10(abs(value))) - math.floor(math.log10(stderr)) + 2
    return f"{value:#.{min(max(digits, 2), 15)}g}"
