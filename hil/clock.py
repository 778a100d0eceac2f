"""Lab time: one clock interface, a virtual and a real implementation, and ``wait``.

Everything time-dependent in the twin (the fridge) asks a :class:`Clock` for ``now()`` and
computes its state lazily at that time, so nothing runs in the background. Tests use
:class:`VirtualClock` (``sleep`` and ``advance`` move time and cost no wall time); demos use
:class:`RealClock` (optionally faster than the wall clock).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Seconds since the clock started, and a way to let time pass."""

    def now(self) -> float:
        """Seconds since the clock started (monotonic)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of clock time pass."""
        ...


class VirtualClock:
    """A clock that only moves when told to: ``advance``/``sleep`` cost no wall time."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        if not seconds >= 0:
            raise ValueError(f"a clock cannot go backwards: advance({seconds})")
        with self._lock:
            self._now += float(seconds)
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class RealClock:
    """Wall time (``time.monotonic``), scaled by ``speed`` (2.0: clock time runs twice as fast)."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self.speed = float(speed)
        self._start = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


_WALL = RealClock()


def clock_of(lab) -> Clock:
    """The clock the lab's physics runs on: the twin's when simulated, the wall clock otherwise."""
    world = getattr(lab, "world", None)
    return world.clock if world is not None else _WALL


def wait(lab, seconds: float) -> None:
    """Let ``seconds`` pass for the lab (and its fridge): free on the twin's virtual clock.

    Experiments wait through this, never ``time.sleep``.
    """
    if seconds < 0:
        raise ValueError(f"cannot wait a negative time ({seconds} s)")
    clock_of(lab).sleep(seconds)
