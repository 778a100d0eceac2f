"""The SCPI error/event queue and the standard event status bits a simulated instrument keeps
(IEEE 488.2 section 11.5.1, SCPI-99 chapter 21)."""

from __future__ import annotations

from collections import deque

#: Error/event queue depth when a profile does not give one (Keysight 8164, U2000: 30).
DEFAULT_QUEUE_DEPTH = 30
#: Standard event status register bits (488.2 section 11.5.1).
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 1, 4, 8, 16, 32


class ErrorQueue:
    """The SCPI error/event queue: FIFO, fixed depth, ``-350`` in the last slot on overflow."""

    def __init__(self, empty: str = '0,"No error"', depth: int = DEFAULT_QUEUE_DEPTH) -> None:
        self.empty = empty
        self.depth = depth
        self.plus = empty.lstrip().startswith("+")  # Keysight/Thorlabs write +0, and +nnn
        self.entries: deque[tuple[int, str]] = deque()

    def push(self, code: int, text: str) -> None:
        if len(self.entries) >= self.depth:
            self.entries[-1] = (-350, "Queue overflow")
        else:
            self.entries.append((code, text))

    def format(self, code: int, text: str) -> str:
        return f'{code:+d},"{text}"' if self.plus else f'{code},"{text}"'

    def pop(self) -> str:
        return self.format(*self.entries.popleft()) if self.entries else self.empty

    def pop_all(self) -> str:
        if not self.entries:
            return self.empty
        text = ",".join(self.format(*e) for e in self.entries)
        self.entries.clear()
        return text

    def clear(self) -> None:
        self.entries.clear()

