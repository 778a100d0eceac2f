"""Waiting in experiments: on the twin's clock when the lab is simulated, on the wall otherwise.

A fridge settling for ten minutes costs ten minutes on real hardware and nothing on the twin's
virtual clock, so experiments wait through :func:`wait`, never ``time.sleep``.
"""

from __future__ import annotations

from hil.twin.clock import Clock, RealClock

_WALL = RealClock()


def clock_of(lab) -> Clock:
    """The clock the lab's physics runs on."""
    world = getattr(lab, "world", None)
    return world.clock if world is not None else _WALL


def wait(lab, seconds: float) -> None:
    """Let ``seconds`` pass for the lab (and its fridge)."""
    if seconds < 0:
        raise ValueError(f"cannot wait a negative time ({seconds} s)")
    clock_of(lab).sleep(seconds)
