"""Helpers of the fault cases: a twin served on loopback, custom experiments through the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from rich.console import Console

from hil.experiment import Experiment
from hil.sim.server import TwinServer, station_names, tcp_station
from hil.station import SimTwin, open_twin

ROOT = Path(__file__).resolve().parents[2]
TWIN = ROOT / "stations" / "twin.yaml"


@contextmanager
def serving(station: Path = TWIN, clock=None, **options) -> Iterator[tuple[TwinServer, SimTwin]]:
    """A station's twin served from a thread of this process, on free loopback ports."""
    twin = open_twin(station, clock=clock)
    options.setdefault("port_base", 0)
    with TwinServer(twin.library, names=station_names(twin.data), **options) as server:
        yield server, twin


def tcp_station_file(server: TwinServer, twin: SimTwin, folder: Path, **extra) -> Path:
    data = tcp_station(twin.data, server.table())
    data.update(extra)
    path = folder / "tcp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def twin_station_file(folder: Path, name: str = "twin.yaml", **changes) -> Path:
    """stations/twin.yaml with top-level keys replaced (``interlocks``, ``twin``...)."""
    data = yaml.safe_load(TWIN.read_text())
    data.update(changes)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def quiet() -> Console:
    return Console(file=io.StringIO())


def experiment(function: Callable) -> Experiment:
    return Experiment(function.__name__, function)


def hil_child(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``hil ARGS`` in a process of its own (signals, exit codes, locks across processes)."""
    code = "from hil.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200", **(env or {})})
