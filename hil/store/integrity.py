"""What a damaged or incomplete run file still holds: reading around damage and saying where it is.

A run file can be hurt after it was written (a copy cut short, a disk that flips a bit) or be
left incomplete (a step group or a column gone). The readers do not refuse such a file whole:
they read every step that can be read, fill what cannot with NaN, and record each problem
against its step in a :class:`Damage`, so ``hil show`` can say what is readable and what is not.

What the file itself vouches for, to compare against:

* every dataset carries a Fletcher-32 checksum per chunk, so a flipped bit in a chunk makes that
  chunk unreadable (HDF5's filter refuses it) instead of a silently wrong value;
* the root attribute ``step_groups`` lists every step group the writer created, so a group that
  is gone is noticed;
* a group's ``hil.schema`` lists its columns, so a column that is gone is noticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from hil.store.schema import _json_list

#: Root attribute: JSON list of the step groups the writer created, in order.
STEP_GROUPS_ATTR = "step_groups"
#: What the problems of the run as a whole (not of one step) are filed under.
RUN = ""


class Damage:
    """Problems found while reading a file, by step group (:data:`RUN` for the whole run)."""

    def __init__(self) -> None:
        self.by_step: dict[str, list[str]] = {}

    def add(self, step: str, problem: str) -> None:
        self.by_step.setdefault(step, []).append(problem)

    def __bool__(self) -> bool:
        return bool(self.by_step)


def reason(err: BaseException) -> str:
    """An HDF5 error in words: a failed Fletcher-32 check is named as such."""
    text = str(err)
    if "filter returned failure" in text or "Fletcher32" in text.replace("-", ""):
        return "checksum mismatch (Fletcher-32): the data changed after they were written"
    return text.splitlines()[0] if text else type(err).__name__


def root_attr(f: h5py.File, key: str, damage: Damage) -> Any:
    """A root attribute, or None (with the problem recorded) when its bytes cannot be read."""
    try:
        return f.attrs.get(key)
    except (OSError, RuntimeError, ValueError) as err:
        damage.add(RUN, f"root attribute {key!r} unreadable ({reason(err)})")
        return None


def read_rows(ds: h5py.Dataset, length: int, step: str, damage: Damage) -> np.ndarray:
    """The first ``length`` rows of a column; chunks that cannot be read become NaN (recorded)."""
    try:
        return ds[:length]
    except (OSError, RuntimeError) as err:
        first = err
    out = np.full((length, *ds.shape[1:]), np.nan)
    rows = ds.chunks[0] if ds.chunks else max(1, length)
    bad: list[list[int]] = []
    why = reason(first)
    for start in range(0, length, rows):
        stop = min(length, start + rows)
        try:
            out[start:stop] = ds[start:stop]
        except (OSError, RuntimeError) as err:
            why = reason(err)
            if bad and bad[-1][1] == start:
                bad[-1][1] = stop
            else:
                bad.append([start, stop])
    name = ds.name.rsplit("/", 1)[-1]
    spans = ", ".join(f"{a}-{b - 1}" for a, b in bad) or "?"
    damage.add(step, f"column {name!r}: points {spans} of {length} unreadable ({why})")
    return out


def check_steps(f: h5py.File, seen: set[str], damage: Damage) -> list[str]:
    """Step groups the writer recorded that are not in the file (each recorded as a problem)."""
    recorded = _json_list(root_attr(f, STEP_GROUPS_ATTR, damage))
    missing = [name for name in recorded if isinstance(name, str) and name not in seen]
    for name in missing:
        damage.add(name, "step group missing: the writer recorded it, the file does not hold it")
    return missing


def missing_columns(group: h5py.Group, names: list[str], step: str, damage: Damage) -> None:
    """Record the columns a step's schema lists that its group does not hold."""
    for name in names:
        if name not in group:
            damage.add(step, f"column {name!r} missing: the step's schema lists it")


def datasets(group: h5py.Group, step: str, damage: Damage) -> Iterator[tuple[str, h5py.Dataset]]:
    """The datasets of a step group; those whose headers cannot be read are recorded, skipped."""
    for name in group:
        try:
            ds = group[name]
        except (OSError, KeyError, RuntimeError) as err:
            damage.add(step, f"dataset {name!r} unreadable ({reason(err)})")
            continue
        if isinstance(ds, h5py.Dataset):
            yield name, ds


def verify_step(group: h5py.Group, step: str, damage: Damage) -> None:
    """Read every dataset of a step chunk by chunk, so a checksum mismatch shows up."""
    for _, ds in datasets(group, step, damage):
        if ds.shape:
            read_rows(ds, ds.shape[0], step, damage)
