"""What a step reports: a value with its unit and uncertainty, and the one error a fit raises.

A :class:`Result` the step cannot vouch for carries ``suspect``: the reason, in words a
physicist can act on. It is kept beside the value in the run file and the catalog, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class FitError(RuntimeError):
    """The data do not show what the fit looks for (no dip, too few points, no convergence)."""


@dataclass(frozen=True)
class Result:
    """A fitted value with its uncertainty (standard error, same unit), if known.

    ``suspect`` is ``None`` for a result that passed its checks, otherwise the reason it did not.
    """

    value: float
    unit: str
    stderr: float | None = None
    suspect: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _as_float(self.value, "Result value"))
        if not isinstance(self.unit, str):
            raise ValueError(f"Result unit must be a string, got {self.unit!r}")
        if self.stderr is not None:
            stderr = _as_float(self.stderr, "Result stderr")
            if stderr < 0:
                raise ValueError(f"Result stderr must not be negative, got {stderr!r}")
            object.__setattr__(self, "stderr", stderr)
        if self.suspect is not None and (not isinstance(self.suspect, str) or not self.suspect):
            raise ValueError(f"Result suspect must be a non-empty reason, got {self.suspect!r}")


def _as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a real number, got {value!r}") from None
