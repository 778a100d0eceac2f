"""Lab time: one clock interface, a virtual and a real implementation, and ``wait``.

Everything time-dependent in the twin (the fridge) asks a :class:`Clock` for ``now()`` and
computes its state lazily at that time, so nothing runs in the background. Tests use
:class:`VirtualClock` (``sleep`` and ``advance`` move time and cost no wall time); demos use
:class:`RealClock` (optionally faster than the wall clock).

Stops are prompt: a wall-clock sleep (a ``wait``, or a sweep the twin runs in real time) is cut
into slices of at most :data:`SLICE_S` and asks the stop check the runner installs
(:func:`stop_check`) between them, so a Ctrl-C during an hour-long settle ends the wait within
a slice. Watchers that must see the lab in its own time (interlocks on the virtual clock)
register with :meth:`VirtualClock.every`: time then never jumps past one of their polls.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

#: Longest wall-clock sleep between two looks at the stop check (seconds).
SLICE_S = 0.1

_stop_checks: dict[int, Callable[[], None]] = {}  # thread id -> raises when the run must stop


@contextlib.contextmanager
def stop_check(check: Callable[[], None]) -> Iterator[None]:
    """While inside, this thread's wall-clock sleeps call ``check`` (which raises to stop)."""
    ident = threading.get_ident()
    previous = _stop_checks.get(ident)
    _stop_checks[ident] = check
    try:
        yield
    finally:
        if previous is None:
            _stop_checks.pop(ident, None)
        else:
            _stop_checks[ident] = previous


def interruptible_sleep(seconds: float) -> None:
    """``time.sleep`` in slices, asking this thread's stop check (if any) before each."""
    check = _stop_checks.get(threading.get_ident())
    if check is None:
        if seconds > 0:
            time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while True:
        check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, SLICE_S))


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
        self._due: list[tuple[float, int, float, Callable[[], None]]] = []  # (when, id, period, fn)
        self._ids = itertools.count()
        self._ticking = threading.local()

    def now(self) -> float:
        with self._lock:
            return self._now

    def every(self, period: float, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn`` each ``period`` seconds of clock time; returns a function that stops it.

        ``advance`` stops at every due call, so ``fn`` sees the lab at each of its instants
        (an interlock polls the fridge in lab time however long the experiment waits). The
        calls run in the thread that advances time; time they advance themselves ticks no one.
        """
        if not period > 0:
            raise ValueError(f"period must be > 0 s, got {period}")
        ident = next(self._ids)
        with self._lock:
            heapq.heappush(self._due, (self._now + period, ident, float(period), fn))

        def cancel() -> None:
            with self._lock:
                self._due[:] = [d for d in self._due if d[1] != ident]
                heapq.heapify(self._due)
        return cancel

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        if not seconds >= 0:
            raise ValueError(f"a clock cannot go backwards: advance({seconds})")
        with self._lock:
            target = self._now + float(seconds)
            if not self._due or getattr(self._ticking, "on", False):
                self._now = target
                return self._now
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > target:
                    self._now = max(self._now, target)
                    return self._now
                when, ident, period, fn = heapq.heappop(self._due)
                self._now = max(self._now, when)
                heapq.heappush(self._due, (when + period, ident, period, fn))
            self._ticking.on = True
            try:
                fn()
            finally:
                self._ticking.on = False

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class RealClock:
    """Wall time (``time.monotonic``), scaled by ``speed`` (2.0: clock time runs twice as fast)."""

    def __init__(self, speed: float = 1.0) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"clock speed must be positive and finite, got {speed}")
        self.speed = float(speed)
        self._start = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            interruptible_sleep(seconds / self.speed)


_WALL = RealClock()


def clock_of(lab) -> Clock:
    """The clock the lab's physics runs on: the twin's when simulated, the wall clock otherwise."""
    world = getattr(lab, "world", None)
    return world.clock if world is not None else _WALL


def wait(lab, seconds: float) -> None:
    """Let ``seconds`` pass for the lab (and its fridge): free on the twin's virtual clock.

    Experiments wait through this, never ``time.sleep``. On a wall clock the wait ends early
    (raising) when the run is asked to stop; see :func:`stop_check`.
    """
    if seconds < 0:
        raise ValueError(f"cannot wait a negative time ({seconds} s)")
    clock_of(lab).sleep(seconds)
