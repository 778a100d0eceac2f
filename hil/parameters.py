"""Declared step parameters: each declared once, every value checked before anything happens.

A step declares a parameter in its signature, once: the type annotation gives the type, the
default gives the default, and an ``Annotated`` :class:`Param` gives the unit, the allowed range
and the help text::

    def cryostat_check(lab, run, *,
                       duration_s: Annotated[float, Param("s", (1.0, 3600.0),
                                                          "How long to read the thermometer")] = 60.0,
                       ...)

A range is static (a tuple) or computed from the station without opening any instrument (a
function of :class:`Capabilities`, e.g. :func:`role_range`): the range a driver class declares
for one of its parameters (its ``RANGES``), narrowed by the station file's ``limits:``.
Relations between parameters are :class:`Check`\\ s of the step (``@step(checks=...)``).

:func:`check_experiment` checks every parameter of every step of an experiment (defaults, the
station's ``steps:`` values, every ``--set``) before the run file exists and before any
instrument is opened; a step called directly checks its own call the same way (see
:func:`hil.experiment.step`). Checks that need measured data stay in the step, with
:func:`check_value` for the same message.
"""

from __future__ import annotations

import importlib
import inspect
import math
import string
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hil.units import dbm_to_w

Range = tuple[float, float]


class ParameterError(ValueError):
    """A step parameter is of the wrong type, not finite, or outside its allowed range."""


@dataclass(frozen=True)
class Param:
    """What a step declares about one parameter besides its type and default.

    ``range``: ``(low, high)`` in ``unit``, or a function of the station's :class:`Capabilities`
    returning one. ``zero``: when set, 0 is also allowed and means this (e.g. "the laser's
    bound"). ``each``: the value is text listing numbers (``"0, 1, 3"``), each in ``range``;
    ``count`` is the least number of distinct numbers it must list.
    """

    unit: str = ""
    range: Range | Callable[[Capabilities], Range] | None = None
    help: str = ""
    zero: str | None = None
    each: bool = False
    count: int = 1

    def allowed(self, capabilities: Capabilities) -> Range:
        if self.range is None:
            return (-math.inf, math.inf)
        low, high = self.range(capabilities) if callable(self.range) else self.range
        return float(low), float(high)


@dataclass(frozen=True)
class Check:
    """A relation between a step's parameters: ``test(values)`` must hold, else ``message``
    (formatted with the values) is the error."""

    test: Callable[[Mapping[str, Any]], bool]
    message: str


@dataclass(frozen=True)
class Declared:
    """One parameter as declared: name, type, default and its :class:`Param`."""

    name: str
    kind: type
    default: Any
    param: Param

    def describe_range(self, capabilities: Capabilities | None) -> str:
        if self.param.range is None:
            return ""
        if capabilities is None and callable(self.param.range):
            return "from the station"
        low, high = self.param.allowed(capabilities or Capabilities({}))
        shown = _interval(low, high, self.kind)
        return shown + (f" or 0 ({self.param.zero})" if self.param.zero else "")


def declared(step: Callable[..., Any]) -> dict[str, Declared]:
    """A step's keyword-only parameters with their declarations, in signature order."""
    function = inspect.unwrap(step)
    hints = typing.get_type_hints(function, include_extras=True)
    found: dict[str, Declared] = {}
    for p in inspect.signature(function).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        hint = hints.get(p.name, str)
        param = Param()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            param = next((e for e in extras if isinstance(e, Param)), param)
        found[p.name] = Declared(p.name, hint, p.default, param)
    return found


class Capabilities:
    """What the station's instruments can do, from the station file alone (nothing is opened).

    For a role and one of its driver's parameters: the range the driver class declares
    (``RANGES``, in the parameter's unit) intersected with the station's ``limits:`` on that
    parameter. Station limits narrow, never widen.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._instruments = data.get("instruments") or {}
        self._roles = data.get("roles") or {}

    def has(self, role: str) -> bool:
        return role in self._roles

    def driver(self, role: str) -> type:
        spec = self._spec(role)
        module, _, name = str(spec["type"]).rpartition(".")
        return getattr(importlib.import_module(module), name)

    def attribute(self, role: str, name: str) -> Any:
        """A class-level capability of the role's driver (e.g. the laser's tuning grid)."""
        if not self.has(role):
            raise ParameterError(f"the station has no role {role!r}, which this step needs")
        driver = self.driver(role)
        if not hasattr(driver, name):
            raise ParameterError(f"roles.{role}: {driver.__name__} does not declare {name}, "
                                 f"which the {role} role needs (see hil.roles)")
        return getattr(driver, name)

    def range(self, role: str, parameter: str) -> Range:
        if not self.has(role):
            return (-math.inf, math.inf)
        ranges = getattr(self.driver(role), "RANGES", {})
        low, high = ranges.get(parameter, (-math.inf, math.inf))
        limits = ((self._spec(role).get("parameters") or {}).get(parameter) or {}).get("limits")
        if limits:
            low, high = max(low, float(limits[0])), min(high, float(limits[1]))
        return float(low), float(high)

    def power_w(self, role: str) -> Range:
        """A source's output power range in W: ``power`` (W) and ``power_dbm`` (where the
        station's limits usually sit) intersected."""
        low, high = self.range(role, "power")
        lo_dbm, hi_dbm = self.range(role, "power_dbm")
        if math.isfinite(lo_dbm):
            low = max(low, float(dbm_to_w(lo_dbm)))
        if math.isfinite(hi_dbm):
            high = min(high, float(dbm_to_w(hi_dbm)))
        return max(low, 0.0), high

    def _spec(self, role: str) -> Mapping[str, Any]:
        return self._instruments[self._roles[role]]


def role_range(role: str, parameter: str) -> Callable[[Capabilities], Range]:
    """A range computed from the station: ``role``'s ``parameter`` (driver range and limits)."""
    return lambda capabilities: capabilities.range(role, parameter)


def role_power_w(role: str) -> Callable[[Capabilities], Range]:
    """A source's output power range in W on this station (see :meth:`Capabilities.power_w`)."""
    return lambda capabilities: capabilities.power_w(role)


def role_power_dbm(role: str) -> Callable[[Capabilities], Range]:
    """A source's output power range in dBm on this station (its ``power_dbm``)."""
    return lambda capabilities: capabilities.range(role, "power_dbm")


def within(outer: Callable[[Capabilities], Range], low: float = -math.inf,
           high: float = math.inf) -> Callable[[Capabilities], Range]:
    """A station range further narrowed to ``[low, high]`` (what the step itself allows)."""
    def narrowed(capabilities: Capabilities) -> Range:
        a, b = outer(capabilities)
        return max(a, low), min(b, high)
    return narrowed


def check_step(step: Callable[..., Any], values: Mapping[str, Any], capabilities: Capabilities,
               sources: Mapping[str, str] | None = None) -> None:
    """Check one step's values (all of them: defaults included) against its declaration."""
    name = step.__name__
    sources = sources or {}
    params = declared(step)
    for key, value in values.items():
        if key in params:
            _check_one(name, params[key], value, capabilities, sources.get(key))
    for check in getattr(step, "checks", ()):
        if not check.test(values):
            named = [f for _, f, _, _ in string.Formatter().parse(check.message) if f]
            given = [sources[f] for f in dict.fromkeys(named) if f in sources]
            where = f" ({'; '.join(given)})" if given else ""
            raise ParameterError(f"{name}: {check.message.format(**values)}{where}")


def check_experiment(steps, params: Mapping[str, Mapping[str, Any]], capabilities: Capabilities,
                     sources: Mapping[str, Mapping[str, str]]) -> None:
    """Every parameter of every step: refused with one message naming the step, the
    parameter, where the value came from and the allowed range."""
    for step in steps:
        name = step.__name__
        values = {d.name: d.default for d in declared(step).values()}
        values.update(params.get(name, {}))
        check_step(step, values, capabilities, sources.get(name, {}))


def check_value(step: str, name: str, value: float, low: float, high: float, unit: str = "",
                kind: type = float) -> None:
    """A value a step computes from measured data: in ``[low, high]`` and finite, or the same
    message a declared parameter gets."""
    decl = Declared(name, kind, None, Param(unit, (low, high)))
    _check_one(step, decl, value, Capabilities({}), None)


def _check_one(step: str, decl: Declared, value: Any, capabilities: Capabilities,
               source: str | None) -> None:
    where = f" ({source})" if source else ""
    param, kind = decl.param, decl.kind

    def refuse(message: str) -> ParameterError:
        return ParameterError(f"{step}: {decl.name} {message}{where}")

    if param.each:
        numbers = _numbers(value)
        if numbers is None:
            raise refuse(f"must be comma-separated numbers, got {value!r}")
        if len(set(numbers)) < param.count:
            raise refuse(f"must hold at least {param.count} different numbers, got {value!r}")
        for number in numbers:
            _in_range(decl, number, capabilities, refuse, each=True)
        return
    if kind in (int, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and ok and not isinstance(value, int):
            ok = False
        if not ok:
            raise refuse(f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        _in_range(decl, value, capabilities, refuse)
    elif kind is bool and not isinstance(value, bool):
        raise refuse(f"must be true or false, got {value!r}")
    elif kind is str and not isinstance(value, str):
        raise refuse(f"must be text, got {value!r}")


def _in_range(decl: Declared, value: float, capabilities: Capabilities,
              refuse: Callable[[str], ParameterError], each: bool = False) -> None:
    param = decl.param
    if param.zero and value == 0:
        return
    low, high = param.allowed(capabilities)
    if math.isfinite(value) and low <= value <= high:
        return
    unit = f" {param.unit}" if param.unit else ""
    notes = [n for n in (param.zero and f"0 = {param.zero}", each and "each") if n]
    note = f" ({', '.join(notes)})" if notes else ""
    kind = "an integer in" if decl.kind is int and not each else "in"
    raise refuse(f"must be {kind} {_interval(low, high, decl.kind)}{unit}{note}, got {value!r}")


def _interval(low: float, high: float, kind: type) -> str:
    def show(v: float) -> str:
        if kind is int and math.isfinite(v):
            return str(int(v))
        return f"{v:g}"
    return f"[{show(low)}, {show(high)}]"


def _numbers(text: Any) -> list[float] | None:
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        return None
    return values or None


def parse_list(text: str) -> list[float]:
    """``"0, 1, 3"`` -> ``[0.0, 1.0, 3.0]`` (a declared ``each`` parameter, already checked)."""
    return _numbers(text) or []


def settable_range(parameter) -> Range:
    """What an opened instrument's parameter accepts: the intersection of its numeric
    validators (driver range narrowed by station limits); read locally, nothing is sent."""
    from qcodes.validators import Ints, Numbers

    found = getattr(parameter, "validators", None)
    if found is None:
        found = (parameter.vals,) if parameter.vals is not None else ()
    low, high = -math.inf, math.inf
    for validator in found:
        if isinstance(validator, Numbers | Ints):
            low = max(low, float(validator.min_value))
            high = min(high, float(validator.max_value))
    return low, high
