"""The writer's side of a resume: what a resumed :class:`~hil.store.writer.RunWriter` knows of
the run before it (steps, lab time, steps done) and how a step found on disk continues.

The file itself is rebuilt by :mod:`hil.store.resume`; this module fills a writer from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from hil.store.integrity import STEP_GROUPS_ATTR
from hil.store.resume import _rebuild_for_resume
from hil.store.schema import LAB_TIME_ATTR, _json_list
from hil.store.steps import StepWriter

if TYPE_CHECKING:
    from hil.store.writer import RunWriter


def load_prior(writer: RunWriter, reason: str) -> None:
    """Rebuild ``writer``'s file for a resume and take over what the run before it recorded."""
    writer.prior, writer.prior_root = _rebuild_for_resume(writer.path, reason)
    writer._step_names = set(writer.prior)
    writer._group_order = [n for n in _json_list(writer.prior_root.get(STEP_GROUPS_ATTR))
                           if n in writer.prior]
    writer._lab_before = _seconds(writer.prior_root.get(LAB_TIME_ATTR))
    writer.lab_times = {name: _seconds(p.attrs.get(LAB_TIME_ATTR)) for name, p in
                        writer.prior.items()}
    writer._calls_done = list(_json_list(writer.prior_root.get("calls_done")))


def continue_step(writer: RunWriter, name: str) -> StepWriter:
    """Reopen a step found by a resume, appending after its points on disk."""
    with writer._lock:
        writer._check_usable()
        prior = writer.prior.get(name)
        if prior is None:
            raise ValueError(f"step {name!r} is not in the resumed run file {writer.path}")
        if name in writer._open_steps:
            raise ValueError(f"step {name!r} is open already")
        step = StepWriter(writer, name, prior.setpoints, prior.measured,
                          buffer_points=writer._buffer_points, buffer_bytes=writer._buffer_bytes,
                          flush_interval=writer._flush_interval, written=prior.points)
        writer._open_steps[name] = step
        try:
            writer._ensure_streaming()
        except BaseException:
            del writer._open_steps[name]
            raise
        return step


def read_prior(writer: RunWriter, name: str) -> dict[str, np.ndarray]:
    """The points on disk of a step found by a resume, column by column."""
    with writer._lock:
        prior = writer.prior[name]
        names = [c.name for c in (*prior.setpoints, *prior.measured)]
        if writer._file is not None:
            group = writer._file[name]
            return {n: group[n][:prior.points] for n in names}
        with h5py.File(writer.path, "r", locking=False) as f:
            return {n: f[name][n][:prior.points] for n in names}


def _seconds(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
