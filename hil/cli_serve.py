"""The ``hil`` commands that serve or check the lab's tooling rather than run it: ``hil profiles
check``, ``hil twin serve`` and ``hil dash``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from hil.cli_common import (
    USER_ERRORS,
    _fail,
    default_station,
)


@click.group("profiles")
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


@click.group("twin")
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


@click.command("dash")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Folder of the run files to show.")
@click.option("--catalog", metavar="URL", default=None,
              help="Run catalog the calibrations come from (SQLAlchemy URL; default: the "
                   "folder's catalog.sqlite).")
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
