"""What a run file is made of: statuses, names, columns and axes, plans, and the checks on them.

Pure values and validation; no file is opened here. The layout itself is described in
:mod:`hil.store` and docs/run-file.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h5py
import numpy as np

from hil.results import Result

STATUSES = ("running", "completed", "aborted", "failed", "interlocked")


FINAL_STATUSES = STATUSES[1:]


#: Name of the index dataset used as the dimension of steps without exactly one setpoint.
POINT = "point"


#: Prefix of the datasets holding a step's planned setpoints.
PLANNED = "planned_"


#: Root and step group attribute: the lab time (s) the run or the group cost, on the lab's clock.
LAB_TIME_ATTR = "lab_time_s"
#: Group attribute holding a step's schema (JSON).
SCHEMA_ATTR = "hil.schema"


#: Points buffered per step before they are written to the datasets.
DEFAULT_BUFFER_POINTS = 4096


#: Upper bound of one step's buffer in bytes (traces buffer fewer points).
DEFAULT_BUFFER_BYTES = 8 * 2**20


#: A point is on disk at most this many seconds after it was appended.
DEFAULT_FLUSH_INTERVAL = 1.0


#: Seconds a reader keeps retrying while the writer holds the file in a structure phase.
READ_RETRY_SECONDS = 2.0


# SWMR needs the 1.10 file format or newer; a 1.10 lower bound keeps the files readable by
# HDF5 >= 1.10, while "latest" as upper bound lets HDF5 use newer formats only where needed.
_LIBVER = ("v110", "latest")


_SCALAR_CHUNK_POINTS = 4096


_TRACE_CHUNK_BYTES = 512 * 1024


_EVENT_MESSAGE_BYTES = 1024


# Fixed-size records: variable-length strings live in HDF5's global heap, which SWMR does not
# cover, and events are appended in SWMR mode.
_EVENT_DTYPE = np.dtype([("time", h5py.string_dtype("ascii", 32)),
                         ("kind", h5py.string_dtype("utf-8", 64)),
                         ("message", h5py.string_dtype("utf-8", _EVENT_MESSAGE_BYTES)),
                         ("more", np.uint8)])


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# Attributes HDF5 and netCDF use for dimension bookkeeping: not shown as user attributes.
_BOOKKEEPING_ATTRS = frozenset({"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST",
                                "_Netcdf4Dimid", "_Netcdf4Coordinates", "coordinates",
                                SCHEMA_ATTR})


_RESULT_PREFIX = "result."


_RESERVED_ROOT_NAMES = frozenset({"events"})


_NOT_RESUMED_ROOT_ATTRS = frozenset({"status", "ended", "traceback", "snapshot_end", "writer"})


class RunFileError(OSError):
    """A run file cannot be read, or is not a run file, or cannot be resumed."""


@dataclass(frozen=True, eq=False)
class Axis:
    """The second dimension of a trace column: e.g. the 1001 frequencies of a VNA trace."""

    name: str
    unit: str
    long_name: str
    values: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"axis name must be a valid identifier, got {self.name!r}")
        values = np.array(self.values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"axis {self.name!r}: values must be a non-empty 1-D sequence")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Axis) and (self.name, self.unit, self.long_name)
                == (other.name, other.unit, other.long_name)
                and np.array_equal(self.values, other.values))

    def __hash__(self) -> int:
        return hash((self.name, self.values.size))


@dataclass(frozen=True)
class Column:
    """One recorded quantity: its dataset name (an identifier), unit and descriptive name.

    With an ``axis`` the column holds a trace per point (``len(axis)`` values).
    """

    name: str
    unit: str
    long_name: str
    axis: Axis | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"column name must be a valid identifier, got {self.name!r}")
        if not isinstance(self.unit, str):
            raise ValueError(f"column {self.name!r}: unit must be a string, got {self.unit!r}")
        if not isinstance(self.long_name, str):
            raise ValueError(
                f"column {self.name!r}: long_name must be a string, got {self.long_name!r}")
        if self.axis is not None and not isinstance(self.axis, Axis):
            raise ValueError(f"column {self.name!r}: axis must be an Axis, got {self.axis!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one point's value: ``()`` for a scalar, ``(len(axis),)`` for a trace."""
        return () if self.axis is None else (self.axis.values.size,)


@dataclass
class PriorStep:
    """A step found in a run file being resumed: what it holds and what it planned."""

    name: str
    setpoints: tuple[Column, ...]
    measured: tuple[Column, ...]
    points: int
    plan: dict[str, np.ndarray] | None
    attrs: dict[str, Any]
    results: dict[str, Result]

    @property
    def planned_points(self) -> int | None:
        if not self.plan:
            return None
        return int(np.prod([v.size for v in self.plan.values()]))

    @property
    def complete(self) -> bool:
        """Every planned point is on disk (a step without a plan never counts as complete)."""
        planned = self.planned_points
        return planned is not None and self.points >= planned


def _check_plan(name: str, setpoints: Sequence[Column],
                plan: Mapping[str, Sequence[float] | np.ndarray] | None) -> dict[str, np.ndarray]:
    if plan is None:
        return {}
    if not isinstance(plan, Mapping):
        raise ValueError(f"step {name!r}: plan must map setpoint names to their values")
    names = [c.name for c in setpoints]
    if list(plan) != names:
        raise ValueError(f"step {name!r}: the plan must give values for the setpoints "
                         f"{names} in that order, got {list(plan)}")
    out = {}
    for key, values in plan.items():
        array = np.array(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"step {name!r}: planned {key} must be 1-D")
        out[key] = array
    return out


def _schema(setpoints: Sequence[Column], measured: Sequence[Column],
            plan: Mapping[str, np.ndarray]) -> dict[str, Any]:
    def column(c: Column) -> dict[str, Any]:
        return {"name": c.name, "unit": c.unit, "long_name": c.long_name,
                "axis": None if c.axis is None else c.axis.name}

    axes = {c.axis.name: {"unit": c.axis.unit, "long_name": c.axis.long_name}
            for c in measured if c.axis is not None}
    kind = "points" if not plan else ("sweep" if len(plan) == 1 else "grid")
    return {"version": 1, "kind": kind, "setpoints": [column(c) for c in setpoints],
            "measured": [column(c) for c in measured], "axes": axes, "plan": list(plan)}


def _columns_from_schema(schema: Mapping[str, Any], group: h5py.Group
                         ) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    axes = {}
    for name, spec in (schema.get("axes") or {}).items():
        axes[name] = Axis(name, spec["unit"], spec["long_name"], group[name][:])

    def column(spec: Mapping[str, Any]) -> Column:
        axis = axes[spec["axis"]] if spec.get("axis") else None
        return Column(spec["name"], spec["unit"], spec["long_name"], axis)

    return (tuple(column(s) for s in schema["setpoints"]),
            tuple(column(s) for s in schema["measured"]))


def _check_results(step: str, results: Mapping[str, Result]) -> dict[str, Result]:
    if not isinstance(results, Mapping):
        raise TypeError(f"step {step!r}: results must be a mapping of name to Result")
    checked: dict[str, Result] = {}
    for name, result in results.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"step {step!r}: result name must be a valid identifier, "
                             f"got {name!r}")
        if not isinstance(result, Result):
            raise TypeError(f"step {step!r}, result {name!r}: expected a Result, got "
                            f"{type(result).__name__}")
        checked[name] = result
    return checked


def _step_attrs(step: str, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Step attributes as HDF5 can store them: numbers, strings, arrays; the rest as JSON text."""
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"step {step!r}: attribute names must be non-empty strings, "
                             f"got {key!r}")
        if key.startswith(_RESULT_PREFIX) or key in _BOOKKEEPING_ATTRS:
            raise ValueError(f"step {step!r}: attribute name {key!r} is reserved "
                             f"(results go through set_results)")
        if isinstance(value, str | bool | int | float | np.generic):
            out[key] = value
        elif (isinstance(value, list | tuple | np.ndarray)
              and np.asarray(value).dtype.kind in "biuf"):
            out[key] = np.asarray(value)
        else:
            out[key] = _to_json(value)
    return out


def _json_list(value: Any) -> list:
    text = _optional_str(value)
    if not text:
        return []
    try:
        out = json.loads(text)
    except json.JSONDecodeError:
        return []
    return out if isinstance(out, list) else []


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value) if isinstance(value, bytes) else str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _is_real_scalar(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.shape == ()
            and value.dtype.kind in "biuf")


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _as_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a real number, got {value!r}") from None
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # a snapshot must never stop a run: keep a readable form


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)

