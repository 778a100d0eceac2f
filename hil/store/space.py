"""Free disk space: refuse a run that has no room to start, stop one before the disk fills.

HDF5 does not survive a write that fails for lack of space: the file it leaves can be unreadable
as a whole, finished steps included, and the process may crash while closing it. So the writer
never lets it come to that: a run starts only with :func:`margin_bytes` free, and every write of
points and every structure change first checks that more than :func:`reserve_bytes` (a quarter of
the margin) would stay free; otherwise it raises :class:`DiskFullError` *before* HDF5 writes, and
the run ends ``failed`` the usual way (safe states, then the file closed and marked), the closing
writes living off the reserve.

The margin is ``HIL_MIN_FREE_BYTES`` from the environment (an integer, bytes), else
:data:`DEFAULT_MARGIN_BYTES`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hil.store.schema import RunFileError

#: Free space a run needs to start, unless ``HIL_MIN_FREE_BYTES`` says otherwise.
DEFAULT_MARGIN_BYTES = 64 * 2**20
MARGIN_ENV = "HIL_MIN_FREE_BYTES"


class DiskFullError(RunFileError):
    """Too little free space to write the run file safely (raised before anything is written)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.args[1])


def margin_bytes() -> int:
    """Free space a run needs to start (see the module docs)."""
    text = os.environ.get(MARGIN_ENV, "").strip()
    if not text:
        return DEFAULT_MARGIN_BYTES
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{MARGIN_ENV}={text!r}: must be a whole number of bytes >= 0") from None
    if value < 0:
        raise ValueError(f"{MARGIN_ENV}={text!r}: must be a whole number of bytes >= 0")
    return value


def reserve_bytes(margin: int) -> int:
    """Space kept free while a run writes, for closing the file and marking how it ended."""
    return margin // 4


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write in ``folder``'s filesystem."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def check_start(path: Path, margin: int | None = None) -> None:
    """Refuse to create a run file where less than ``margin`` bytes are free.

    The folder need not exist yet: its nearest existing parent is asked.
    """
    margin = margin_bytes() if margin is None else margin
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = free_bytes(folder)
    if free < margin:
        raise DiskFullError(
            f"{path.parent}: {_size(free)} free, a run needs at least {_size(margin)} to start "
            f"(set {MARGIN_ENV} to change that); free some space or choose another --out")


def check_write(path: Path, nbytes: int, reserve: int) -> None:
    """Raise before a write of about ``nbytes`` would leave less than ``reserve`` bytes free."""
    free = free_bytes(path.parent)
    if free - nbytes < reserve:
        raise DiskFullError(
            f"disk nearly full: {_size(free)} free on {path.parent}, writing {_size(nbytes)} more "
            f"would leave less than the {_size(reserve)} kept to close the run file; the run "
            f"stops here, every point already on disk is kept")


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"
