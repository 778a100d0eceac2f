"""Faults a test injects into a simulated instrument (a dropped reply, garbage, an instrument
error, a dropped connection, a late or split reply on the wire), checked when injected."""

from __future__ import annotations

from dataclasses import dataclass

FAULT_KINDS = ("timeout", "garbage", "error", "disconnect", "delay", "split")
#: Faults of the wire, not of the instrument: the reply is right, but the TCP server of
#: hil.sim.server sends it late (``delay``: ``seconds`` after it is ready, by default past a
#: VISA timeout) or in several TCP packets ``seconds`` apart (``split``). In-process there is no
#: wire: the reply arrives whole and at once.
WIRE_FAULTS = ("delay", "split")
GARBAGE = b"\x00\xff#?%\x13garbage"


@dataclass
class Fault:
    """One injected fault; ``count`` replies or commands it affects (disconnect: until reconnect)."""

    kind: str
    count: int = 1
    text: str = '-350,"Queue overflow"'
    seconds: float | None = None  # wire faults: the delay, or the pause between packets

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError(f"fault count must be >= 1, got {self.count}")
        if self.seconds is not None and not 0 <= self.seconds <= 3600:
            raise ValueError(f"fault seconds must be in [0, 3600], got {self.seconds}")

