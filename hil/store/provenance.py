"""Who wrote a run file and with what: the writer process' identity (to tell a live run from
an interrupted one) and the software versions and git commit.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def _writer_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": _boot_id(),
            "start": _process_start(os.getpid())}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The process' start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def writer_alive(writer: Mapping[str, Any]) -> bool | None:
    """Whether the process recorded in a file's ``writer`` attribute still runs.

    None when it cannot be told: recorded on another host, or nothing recorded.
    """
    pid = writer.get("pid")
    if not isinstance(pid, int) or writer.get("host") != socket.gethostname():
        return None
    if writer.get("boot") and writer.get("boot") != _boot_id():
        return False  # the machine rebooted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    start = writer.get("start")
    if start is not None and _process_start(pid) not in (None, start):
        return False  # the pid now belongs to another process
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[:1] == ["Z"]


def _state(status: str, writer: Mapping[str, Any]) -> str:
    if status != "running":
        return status
    alive = writer_alive(writer)
    if alive is None:
        return "unknown" if writer else "running"
    return "running" if alive else "interrupted"


@lru_cache(maxsize=1)
def _software_versions_cached() -> tuple[tuple[str, Any], ...]:
    commit, dirty = _git_state(Path(__file__).resolve().parents[2])
    return tuple({
        "python": platform.python_version(),
        "qlink-hil": _dist_version("qlink-hil"),
        "qcodes": _dist_version("qcodes"),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "git_commit": commit,
        "git_dirty": dirty,
    }.items())


def software_versions() -> dict[str, Any]:
    """Versions of what wrote the file, and the git commit of the source tree if it is a checkout.

    ``git_dirty`` tells whether tracked files differ from that commit (None when unknown).
    Read once per process: the code a process runs is the code it loaded.
    """
    return dict(_software_versions_cached())


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state(root: Path) -> tuple[str | None, bool | None]:
    if not (root / ".git").exists():
        return None, None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args],
                                  capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)

