"""How a measured value is written for people: the CLI's tables and the live view share it."""

from __future__ import annotations

import math


def format_value(value: float, stderr: float | None) -> str:
    """Enough significant digits to show the value to the second digit of its uncertainty."""
    if stderr is None or not math.isfinite(stderr) or stderr <= 0 or value == 0:
        return f"{value:.6g}"
    digits = math.floor(math.log10(abs(value))) - math.floor(math.log10(stderr)) + 2
    return f"{value:#.{min(max(digits, 2), 15)}g}"


def format_duration(seconds: float | None) -> str:
    """Lab time as a person reads it: ``12.3 s``, ``4.5 min``, ``2 h 05 min``; ``-`` if unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min"
