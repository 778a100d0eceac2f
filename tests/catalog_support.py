"""A real PostgreSQL server for catalog tests, started in a temporary folder, and run files.

The server runs from the machine's PostgreSQL binaries (``initdb`` on PATH or under
``/usr/lib/postgresql/*/bin``; .ci/run installs them). initdb refuses root, so as root the
server runs as the ``postgres`` user. Where it cannot start, :func:`postgres_server` raises
:class:`Unavailable` with the reason, and the tests skip with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import h5py

from hil.results import Result
from hil.store import RunWriter

#: Where Debian's postgresql packages put each major version's binaries.
SERVER_ROOT = Path("/usr/lib/postgresql")


class Unavailable(RuntimeError):
    """Why no PostgreSQL server could be started here."""


def bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(SERVER_ROOT.glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                        else 0)
    if not candidates:
        raise Unavailable("no PostgreSQL server binaries (initdb) on PATH or under "
                          "/usr/lib/postgresql/*/bin; `apt-get install postgresql` provides them")
    return candidates[-1].parent


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no 'postgres' user to run the server "
                          "as (initdb refuses root)") from None
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"]
    raise Unavailable("running as root without runuser to start the server as 'postgres'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway server; yields the SQLAlchemy URL of its ``postgres`` database."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg (v3) is not installed: pip install '.[postgres]'") from None
    bindir = bin_dir()
    prefix = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="hil-pg-"))
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "server.log"
    port = _free_port()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    try:
        done = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "hil",
                   "-E", "UTF8", "--no-sync")
        if done.returncode:
            raise Unavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-300:]}")
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=40")
        done = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
                   "-w", "-t", "60", "start")
        if done.returncode:
            tail = log.read_text(errors="replace")[-300:] if log.exists() else done.stderr
            raise Unavailable(f"the server did not start: {tail.strip()}")
        try:
            yield f"postgresql+psycopg://hil@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def write_run(path: Path, *, experiment: str = "chain", station: str = "name: bench\n",
              metadata: Mapping[str, str] | None = None,
              results: Mapping[str, Mapping[str, Result]] | None = None,
              suspect: Mapping[tuple[str, str], str] | None = None,
              lab_time_s: float | None = None, status: str = "completed",
              started: str | None = None) -> Path:
    """A run file as the runner leaves it: metadata, step results, and the root and result
    attributes of the run-file contract (``lab_time_s``, ``result.<name>.suspect``)."""
    writer = RunWriter(path, experiment=experiment, station_yaml=station, snapshot={},
                       station_path=path.with_suffix(".yaml"), metadata=metadata)
    for step, named in (results or {}).items():
        writer.copy_results(step, named, {"call": step})
        writer.mark_call_done(step)
    writer.finish(status)
    with h5py.File(path, "r+") as f:
        if lab_time_s is not None:
            f.attrs["lab_time_s"] = lab_time_s
        if started is not None:
            f.attrs["started"] = started
        for (step, name), why in (suspect or {}).items():
            f[step].attrs[f"result.{name}.suspect"] = why
    return path
