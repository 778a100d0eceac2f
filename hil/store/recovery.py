"""Opening a run file whatever state it is in: closed, streamed, or left by a dead writer.

A file whose writer died in a structure phase is read through :class:`_ClearedFlagsView`, a
read-only view with its superblock's consistency flags cleared in memory (what ``h5clear -s``
would write); the file on disk is never modified.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import h5py

from hil.store.provenance import writer_alive
from hil.store.schema import _HDF5_SIGNATURE, READ_RETRY_SECONDS, RunFileError, _optional_str

_T = TypeVar("_T")


def _read(path: str | os.PathLike[str], fn: Callable[[h5py.File, Path, str], _T]) -> _T:
    """Open ``path`` read-only and apply ``fn``; see the module docs for how it is opened."""
    where = Path(os.fspath(path))
    if not where.is_file():
        raise FileNotFoundError(f"run file not found: {where}")
    _check_signature(where)
    deadline = time.monotonic() + READ_RETRY_SECONDS
    while True:
        try:
            with _open_readable(where, allow_cleared=time.monotonic() >= deadline) as (f, how):
                return fn(f, where, how)
        except _NotYet:
            time.sleep(0.05)
        except RunFileError:
            raise
        except (OSError, KeyError, ValueError) as err:
            # The writer changed the structure while we read: read again.
            if time.monotonic() >= deadline:
                raise RunFileError(f"cannot read run file {where}: {err}") from err
            time.sleep(0.05)


class _NotYet(Exception):
    """The file cannot be opened normally yet; retry (a live writer's structure phase)."""


@contextlib.contextmanager
def _open_readable(where: Path, *, allow_cleared: bool) -> Iterator[tuple[h5py.File, str]]:
    truncated = _truncated_view(where)
    if truncated is not None:
        # HDF5 would read zeros past the end, and can loop on them: read through the view,
        # which fails those reads, so each object they held is reported unreadable.
        try:
            f = h5py.File(truncated, "r")
        except OSError as err:
            truncated.close()
            raise RunFileError(f"cannot read run file {where}: it is truncated "
                               f"({truncated.missing} bytes missing) and its root is "
                               f"unreadable ({err})") from None
        try:
            yield f, "truncated"
        finally:
            f.close()
            truncated.close()
        return
    try:
        f = h5py.File(where, "r", locking=False)
        how = "plain"
    except OSError as plain_error:
        try:
            f = h5py.File(where, "r", swmr=True, locking=False)
            how = "swmr"
        except OSError as swmr_error:
            try:
                view = _ClearedFlagsView(where)
            except ValueError as err:
                if not allow_cleared:
                    raise _NotYet() from None
                raise RunFileError(f"cannot read run file {where}: {plain_error}; "
                                   f"{swmr_error}; {err}") from None
            try:
                f = h5py.File(view, "r")
            except OSError as err:
                view.close()
                if not allow_cleared:
                    raise _NotYet() from None
                raise RunFileError(
                    f"cannot read run file {where}: its writer died while changing its "
                    f"structure and its superblock or root group is damaged ({err})") from None
            if not allow_cleared and _writer_dead(f) is not True:
                # Perhaps a live writer in a structure phase (milliseconds): wait for it.
                f.close()
                view.close()
                raise _NotYet() from None
            else:
                how = "recovered"
    try:
        yield f, how
    finally:
        f.close()
        if how == "recovered":
            view.close()


def _truncated_view(where: Path) -> _ClearedFlagsView | None:
    """A view of the file when it was closed cleanly and then lost bytes at its end, else None."""
    try:
        view = _ClearedFlagsView(where)
    except (ValueError, OSError):
        return None
    if view.missing:
        return view
    view.close()
    return None


def _writer_dead(f: h5py.File) -> bool | None:
    """Whether the process recorded as the file's writer is known to have ended."""
    try:
        writer = json.loads(_optional_str(f.attrs.get("writer")) or "{}")
    except (OSError, KeyError, ValueError):
        return None
    alive = writer_alive(writer) if isinstance(writer, dict) else None
    return None if alive is None else not alive


def _check_signature(path: Path) -> None:
    """Refuse files that are not HDF5 (signature at 0, 512, 1024, ... bytes)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return
            offset = 512 if offset == 0 else offset * 2
    raise RunFileError(f"not an HDF5 file: {path}")


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (init value 0): HDF5's metadata checksum."""
    mask = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & mask

    length = len(data)
    a = b = c = (0xDEADBEEF + length) & mask
    i = 0
    while length - i > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & mask
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & mask
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & mask
        a = (a - c) & mask
        a ^= rot(c, 4)
        c = (c + b) & mask
        b = (b - a) & mask
        b ^= rot(a, 6)
        a = (a + c) & mask
        c = (c - b) & mask
        c ^= rot(b, 8)
        b = (b + a) & mask
        a = (a - c) & mask
        a ^= rot(c, 16)
        c = (c + b) & mask
        b = (b - a) & mask
        b ^= rot(a, 19)
        a = (a + c) & mask
        c = (c - b) & mask
        c ^= rot(b, 4)
        b = (b + a) & mask
        i += 12
    tail = data[i:]
    if not tail:
        return c
    tail = tail + bytes(12 - len(tail))
    a = (a + int.from_bytes(tail[0:4], "little")) & mask
    b = (b + int.from_bytes(tail[4:8], "little")) & mask
    c = (c + int.from_bytes(tail[8:12], "little")) & mask
    c ^= b
    c = (c - rot(b, 14)) & mask
    a ^= c
    a = (a - rot(c, 11)) & mask
    b ^= a
    b = (b - rot(a, 25)) & mask
    c ^= b
    c = (c - rot(b, 16)) & mask
    a ^= c
    a = (a - rot(c, 4)) & mask
    b ^= a
    b = (b - rot(a, 14)) & mask
    c ^= b
    c = (c - rot(b, 24)) & mask
    return c


class _ClearedFlagsView(io.RawIOBase):
    """The run file, read-only, as if ``h5clear -s`` had cleared its consistency flags.

    Only the superblock (version 2 or 3, the one our files have) is changed, in memory: its
    consistency flags are zeroed, its end-of-allocation address raised to cover the whole file
    (a crash can leave it short) and its checksum recomputed. Bytes past the end of the file up to
    the recorded end of allocation read as zeros. h5py opens this object through its file-object
    driver; the file on disk is never written.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._handle = path.open("rb")
        try:
            head = bytearray(self._handle.read(64))
            if head[:8] != _HDF5_SIGNATURE or len(head) < 12 or head[8] not in (2, 3):
                raise ValueError("only files with a version 2 or 3 superblock at offset 0 can "
                                 "be read this way")
            offsets = head[9]
            end = 12 + 4 * offsets
            stored = struct.unpack("<I", head[end:end + 4])[0]
            if stored != _lookup3(bytes(head[:end])):
                raise ValueError("the superblock checksum does not match")
            eoa_at = 12 + 2 * offsets
            eoa = int.from_bytes(head[eoa_at:eoa_at + offsets], "little")
            self._real_size = os.fstat(self._handle.fileno()).st_size
            self._size = max(self._real_size, eoa)
            #: Bytes missing at the end of a file that was closed cleanly (truncated since):
            #: reading from there raises, so HDF5 reports the objects they held as unreadable
            #: instead of parsing zeros (which can make it loop).
            self.missing = self._size - self._real_size if head[11] == 0 else 0
            head[11] = 0
            head[eoa_at:eoa_at + offsets] = self._size.to_bytes(offsets, "little")
            head[end:end + 4] = struct.pack("<I", _lookup3(bytes(head[:end])))
            self._head = bytes(head[:end + 4])
        except BaseException:
            self._handle.close()
            raise
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.missing and self._pos >= self._real_size:
            # HDF5 reads metadata in blocks that may run past the end (those bytes read as
            # zeros); an object that starts past the end is lost: say so.
            raise OSError(f"byte {self._pos} lies past the end of the file ({self._real_size} "
                          f"bytes; truncated by {self.missing})")
        wanted = max(0, min(len(view), self._size - self._pos))
        self._handle.seek(self._pos)
        got = self._handle.readinto(view[:wanted]) or 0
        if got < wanted:
            view[got:wanted] = bytes(wanted - got)
        if self._pos < len(self._head):
            count = min(len(self._head) - self._pos, wanted)
            view[:count] = self._head[self._pos:self._pos + count]
        self._pos += wanted
        return wanted

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()

