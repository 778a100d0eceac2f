"""Settle detection: wait until a reading stops drifting, instead of a fixed settling time.

A fixed ``settle_s`` must cover the slowest case (the largest step, the slowest fridge) and so
wastes lab time on every small step. :func:`settle` reads every ``interval_s`` and fits a straight
line through the last ``window`` readings (:func:`hil.analysis.stability.level`); the reading has
settled when the change that line makes over the window is below ``tolerance`` (or ``rel`` times
the reading). The fit averages the window's scatter, so a tolerance near one reading's scatter
is reached soon after the drift has gone, and a step that happens to read flat for a moment is
not taken as settled (a test against the fit's own standard error was: it stopped small steps
early). ``max_s`` bounds the wait; the caller learns whether it settled.

For a first-order approach with time constant tau, a window of span w stops when the distance
left is about ``change / (e^{w/tau} - 1)``: choose ``window`` x ``interval_s`` of the order of the
system's time constant or longer (docs/lab-time.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hil.analysis.stability import level
from hil.clock import clock_of, wait
from hil.parameters import Param

#: The step parameters of a settle on the mixing chamber (fridge_load, added_noise).
SETTLE_WINDOW = Param("s", (1.0, 3600.0), "Settled when the mixing chamber's drift over this "
                      "window (its time constant or longer) is small")
SETTLE_REL = Param("", (0.0, 0.1), "Settled below this drift over the window, relative to the "
                   "temperature")


def interlock_ceiling(lab, parameter: str = "mxc_temperature") -> float | None:
    """The lowest ``above`` limit of the station's interlocks watching ``parameter`` (None when
    none does): what a step that heats the fridge must stay under."""
    return min((spec.above for spec in getattr(lab, "interlocks", ())
                if spec.parameter == parameter and spec.above is not None), default=None)


@dataclass(frozen=True)
class Settled:
    """How a wait ended: ``settled`` (else ``max_s`` ran out), after ``waited_s``, at ``value``
    (the last reading) with ``change`` (the fitted change over the last window) and ``level``
    (the last window's mean: a settled value with its scatter averaged, NaN before a full
    window)."""

    settled: bool
    waited_s: float
    value: float
    change: float
    level: float = float("nan")


def settle(lab, read: Callable[[], float], *, max_s: float, tolerance: float = 0.0,
           rel: float = 0.0,
           interval_s: float = 5.0, window: int = 6,
           check: Callable[[float], None] | None = None) -> Settled:
    """Read ``read()`` every ``interval_s`` of lab time until it has settled (see the module
    docs) or ``max_s`` has passed. ``check(value)`` sees every reading (it may raise, e.g. a
    temperature over its ceiling)."""
    if window < 3:
        raise ValueError(f"settle needs a window of at least 3 readings, got {window}")
    if interval_s <= 0 or tolerance < 0 or rel < 0:
        raise ValueError(f"settle needs interval_s > 0, tolerance >= 0 and rel >= 0, got "
                         f"{interval_s}, {tolerance}, {rel}")
    clock = clock_of(lab)
    start = clock.now()
    times: deque[float] = deque(maxlen=window)
    values: deque[float] = deque(maxlen=window)
    change, mean = float("inf"), float("nan")
    while True:
        value = float(read())
        if check is not None:
            check(value)
        now = clock.now()
        times.append(now - start)
        values.append(value)
        if len(values) == window and np.all(np.isfinite(values)):
            trend = level(list(times), list(values))
            span = times[-1] - times[0]
            change, mean = abs(trend.drift) * span, trend.mean
            if change <= max(tolerance, rel * abs(mean)):
                return Settled(True, now - start, value, change, mean)
        left = start + max_s - now
        if left <= 0:
            return Settled(False, now - start, value, change, mean)
        wait(lab, min(interval_s, left))
