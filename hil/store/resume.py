"""Rebuilding an interrupted run's file in place so a run can continue where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hil.store.layout import (
    _append_events,
    _create_events,
    _create_step_group,
    _event_records,
    _set_attrs,
    _write_results,
)
from hil.store.provenance import _writer_identity, writer_alive
from hil.store.reader import (
    _group_schema,
    _json_attr,
    _points_on_disk,
    _read_events,
    _read_results,
    _step_groups,
    _user_attrs,
)
from hil.store.recovery import _check_signature, _open_readable
from hil.store.schema import (
    _BOOKKEEPING_ATTRS,
    _LIBVER,
    _NOT_RESUMED_ROOT_ATTRS,
    _RESULT_PREFIX,
    PLANNED,
    POINT,
    SCHEMA_ATTR,
    PriorStep,
    RunFileError,
    _columns_from_schema,
    _now,
    _optional_str,
    _to_json,
)


def _rebuild_for_resume(path: Path, reason: str) -> tuple[dict[str, PriorStep], dict[str, Any]]:
    """Replace an interrupted run file by a clean copy of what it holds; see the module docs."""
    if not path.is_file():
        raise FileNotFoundError(f"run file not found: {path}")
    _check_signature(path)
    with _exclusive(path):
        temp = path.with_name(f".{path.name}.resuming")
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # left by a resume that died: we hold the lock, it is garbage
        prior: dict[str, PriorStep] = {}
        dropped: dict[str, str] = {}
        try:
            with _open_readable(path, allow_cleared=True) as (src, how):
                root = {k: src.attrs[k] for k in src.attrs}
                status = _optional_str(root.get("status"))
                if status != "running":
                    raise RunFileError(f"{path}: the run ended ({status}); only a run left "
                                       f"'running' by a dead process can be resumed")
                writer = _json_attr(src, "writer", path)
                alive = writer_alive(writer)
                if alive is not False:
                    who = f"pid {writer.get('pid')} on {writer.get('host')}" if writer else "?"
                    raise RunFileError(
                        f"{path}: its writer ({who}) " + ("is still running" if alive else
                                                          "cannot be checked from this host")
                        + "; only an interrupted run can be resumed")
                for key in ("experiment", "station"):
                    if key not in root:
                        raise RunFileError(f"not a run file (no root attribute {key!r}): {path}")
                events = _read_events(src)
                with h5py.File(temp, "x", libver=_LIBVER, track_order=True,
                               locking=False) as dst:
                    for key, value in root.items():
                        if key not in _NOT_RESUMED_ROOT_ATTRS:
                            dst.attrs[key] = value
                    _set_attrs(dst, {"status": "running", "writer": _to_json(_writer_identity())})
                    _create_events(dst)
                    for when, kind, message in events:
                        _append_events(dst, _event_records(when, kind, message))
                    for name, group in _step_groups(src):
                        try:
                            prior[name] = _copy_step(group, dst, name)
                        except Exception as err:
                            dropped[name] = f"{type(err).__name__}: {err}"
                            with contextlib.suppress(Exception):
                                del dst[name]
                    lines = [f"{name}: {p.points}"
                             + (f" of {p.planned_points}" if p.planned_points is not None else "")
                             + " points" for name, p in prior.items()]
                    lines += [f"{name}: unreadable, dropped ({err})" for name, err in
                              dropped.items()]
                    message = (f"resumed by pid {os.getpid()} on {socket.gethostname()}"
                               + (f" ({reason})" if reason else "")
                               + (" from a file read with cleared consistency flags"
                                  if how == "recovered" else "")
                               + "; " + ("; ".join(lines) if lines else "no steps yet"))
                    _append_events(dst, _event_records(_now(), "resume", message))
                    root_out = {k: dst.attrs[k] for k in dst.attrs}
            _fsync(temp)
            if dropped:
                backup = _free_name(path)
                os.link(path, backup)
                warnings.warn(f"{path}: some steps could not be read and were dropped "
                              f"({', '.join(dropped)}); the interrupted file is kept as "
                              f"{backup}", RuntimeWarning, stacklevel=3)
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
    return prior, root_out


def _copy_step(group: h5py.Group, dst: h5py.File, name: str) -> PriorStep:
    schema = _group_schema(group)
    if schema is None:
        raise RunFileError(f"step {name!r} has no {SCHEMA_ATTR} attribute (written by an older "
                           f"qlink-hil?); it cannot be continued")
    setpoints, measured = _columns_from_schema(schema, group)
    plan = {k: group[PLANNED + k][:] for k in schema.get("plan") or []}
    attrs = {k: group.attrs[k] for k in group.attrs
             if k not in _BOOKKEEPING_ATTRS and not k.startswith(_RESULT_PREFIX)}
    results = _read_results(group)
    points = _points_on_disk(group)
    _create_step_group(dst, name, setpoints, measured,
                       {**attrs, SCHEMA_ATTR: group.attrs[SCHEMA_ATTR]}, plan)
    out = dst[name]
    _write_results(out, results)
    names = [c.name for c in (*setpoints, *measured)]
    if len(setpoints) != 1:
        names.append(POINT)
    for column in names:
        source, target = group[column], out[column]
        target.resize(points, axis=0)
        block = max(1, 2**25 // (8 * int(np.prod(source.shape[1:]))))  # 32 MiB at a time
        for start in range(0, points, block):
            stop = min(points, start + block)
            target[start:stop] = source[start:stop]
    return PriorStep(name=name, setpoints=setpoints, measured=measured, points=points,
                     plan=plan or None, attrs=_user_attrs(group.attrs), results=results)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run file: one resume at a time, none while it is open."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the writer check alone
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFileError(f"{path} is open in another process (a run still writing it, a "
                               f"resume, or a viewer holding it); close it and try again"
                               ) from None
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise RunFileError(f"{path} was replaced while we waited (resumed by another "
                               f"process?); nothing done")
        yield
    finally:
        os.close(fd)


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem}.interrupted-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

