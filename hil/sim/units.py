"""Wire units of simulated instruments <-> the twin's SI units."""

from __future__ import annotations

import math
from collections.abc import Callable

_LINEAR_SCALE = {
    "m": 1.0, "nm": 1e-9, "pm": 1e-12,
    "Hz": 1.0, "GHz": 1e9, "THz": 1e12,
    "W": 1.0, "mW": 1e-3,
    "K": 1.0, "s": 1.0, "1": 1.0, "V": 1.0, "A": 1.0,
}
_FLOOR_W = 1e-30  # a dark detector still prints a finite dBm value


def _dbm_to_w(value: float) -> float:
    return 1e-3 * 10.0 ** (value / 10.0)


def _w_to_dbm(value: float) -> float:
    return 10.0 * math.log10(max(value, _FLOOR_W) / 1e-3)


def _bool_to_si(value: float | str) -> float:
    return 1.0 if str(value).strip().upper() in ("1", "ON", "1.0") else 0.0


_SPECIAL: dict[str, tuple[Callable, Callable]] = {
    "dBm": (_dbm_to_w, _w_to_dbm),
    "bool": (_bool_to_si, lambda v: 1 if v >= 0.5 else 0),
    "str": (str, str),  # an enumerated setting the twin keeps as text (e.g. S21)
    "quoted": (lambda v: str(v).strip('"'), lambda v: f'"{v}"'),  # ditto, quoted on the wire
}

KNOWN_UNITS = tuple(_LINEAR_SCALE) + tuple(_SPECIAL)


def check_unit(unit: str, where: str) -> None:
    if unit not in KNOWN_UNITS:
        raise ValueError(f"{where}: unknown unit {unit!r}; known: {', '.join(KNOWN_UNITS)}")


def to_si(unit: str, value) -> float | str:
    """A value as the instrument speaks it -> SI."""
    if unit in _SPECIAL:
        return _SPECIAL[unit][0](value)
    return float(value) * _LINEAR_SCALE[unit]


def from_si(unit: str, value: float | str):
    """An SI value -> as the instrument speaks it (text settings stay text)."""
    if unit in _SPECIAL:
        return _SPECIAL[unit][1](value)
    return float(value) / _LINEAR_SCALE[unit]
