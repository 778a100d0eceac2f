"""Refusing bad step parameters before any instrument is touched.

Every message names the step, the parameter and what is allowed, so ``hil run`` can print it as
is. Checks against an instrument's range read only the QCoDeS validators (the driver's range
narrowed by the station's ``limits:``): nothing is sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qcodes.parameters import Parameter
from qcodes.validators import Ints, Numbers


def refuse(step: str, message: str) -> ValueError:
    """The error a step raises for a bad parameter: ``"<step>: <message>"``."""
    return ValueError(f"{step}: {message}")


def check(step: str, condition: bool, message: str) -> None:
    """Raise ``ValueError("<step>: <message>")`` unless ``condition``."""
    if not condition:
        raise refuse(step, message)


def check_range(step: str, name: str, value: float, low: float, high: float, unit: str = "") -> None:
    """``low <= value <= high`` (and a finite number), or a ValueError saying so."""
    u = f" {unit}" if unit else ""
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
          and low <= value <= high)
    check(step, ok, f"{name} must be in [{low:g}, {high:g}]{u}, got {value!r}")


def check_int(step: str, name: str, value: int, low: int, high: int) -> None:
    """An integer in [low, high], or a ValueError saying so."""
    ok = not isinstance(value, bool) and isinstance(value, int) and low <= value <= high
    check(step, ok, f"{name} must be an integer in [{low}, {high}], got {value!r}")


def check_settable(step: str, name: str, value: float, parameter: Parameter, unit: str = "") -> None:
    """``value`` is one ``parameter`` would accept (driver range and station limits)."""
    try:
        parameter.validate(value)
    except (ValueError, TypeError):
        low, high = allowed_range(parameter)
        u = f" {unit or parameter.unit}".rstrip()
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ValueError(f"{step}: {name} = {shown}{u} is outside what {parameter.full_name} "
                         f"accepts in this station: [{low:g}, {high:g}]{u}") from None


def allowed_range(parameter: Parameter) -> tuple[float, float]:
    """The intersection of a parameter's numeric validators (-inf, inf when there are none)."""
    low, high = float("-inf"), float("inf")
    for validator in _validators(parameter):
        if isinstance(validator, Numbers | Ints):
            low = max(low, float(validator.min_value))
            high = min(high, float(validator.max_value))
    return low, high


def parse_list(step: str, name: str, text: str) -> list[float]:
    """``"0, 1, 3"`` -> ``[0.0, 1.0, 3.0]`` (a list a user can give with ``--set``)."""
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{step}: {name} must be comma-separated numbers, got {text!r}") from None
    check(step, bool(values), f"{name} must list at least one number, got {text!r}")
    return values


def _validators(parameter: Parameter) -> Sequence:
    found = getattr(parameter, "validators", None)
    if found is None:
        found = (parameter.vals,) if parameter.vals is not None else ()
    return tuple(found)
