"""One run per station at a time: an OS-level lock on the instruments a station reaches.

Two runs driving the same laser end badly (one run's safe state switches off the other's pump).
A run, a resume and ``hil safe`` therefore hold an exclusive ``fcntl.flock`` on a lock file
named after the station's instrument set: the sorted instrument addresses (and the served
twin's control address), so two station files that reach the same rack share one lock. The
kernel drops the lock when the process ends in any way, SIGKILL included, so a crashed run
never leaves the station locked. A run on the in-process twin (``sim:``) drives a lab that lives
in its own process; its key is that process.

The holder writes its pid, run file and start time into the lock file, so a refused second run
can name the run in its way. Readers (``hil show``, ``hil status``) never take the lock.

Lock files live in ``$HIL_LOCK_DIR`` if set, else ``$XDG_RUNTIME_DIR/qlink-hil``, else
``<tmp>/qlink-hil-<uid>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["StationBusy", "lock_dir", "lock_path", "station_key", "station_lock"]


class StationBusy(ValueError):
    """Another process holds the station: a user error (exit 2) naming the holder."""


def lock_dir() -> Path:
    explicit = os.environ.get("HIL_LOCK_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "qlink-hil"
    return Path(tempfile.gettempdir()) / f"qlink-hil-{os.getuid()}"


def station_key(data: Mapping[str, Any]) -> str:
    """What identifies the lab a station file reaches (see the module docs)."""
    if "sim" in data:
        return f"in-process twin of pid {os.getpid()}"
    instruments = data.get("instruments") or {}
    addresses = sorted(str(spec.get("address", name)) for name, spec in instruments.items()
                       if isinstance(spec, Mapping))
    server = data.get("twin_server") or {}
    control = server.get("control") if isinstance(server, Mapping) else None
    return "|".join(addresses + ([f"control={control}"] if control else []))


def lock_path(data: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(station_key(data).encode()).hexdigest()[:16]
    return lock_dir() / f"station-{digest}.lock"


@contextlib.contextmanager
def station_lock(station: str | os.PathLike[str], *, purpose: str,
                 run: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Hold the station's lock for the ``with`` body; :class:`StationBusy` if someone has it.

    ``purpose`` (``run``, ``resume``, ``safe``) and ``run`` (the run file) are recorded for
    whoever is refused.
    """
    from hil.station import read_station_file

    path_, _, data = read_station_file(station)
    path = lock_path(data)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StationBusy(f"{path_}: station busy: {_holder(fd)}; wait for it to end, or "
                              f"stop it (Ctrl-C or kill -TERM <pid>)") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                "run": str(Path(run).resolve()) if run is not None else None,
                "station": str(Path(station).resolve()),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the holder's note goes with the lock
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process holds its lock"
    what = info.get("purpose", "run")
    run = f" writing {info['run']}" if info.get("run") else ""
    return (f"a {what} (pid {info.get('pid')} on {info.get('host')}, since "
            f"{info.get('since')}){run} holds it")
