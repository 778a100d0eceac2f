"""How a run's safety ends it: the exceptions a stop, a trip or a live lab raise, and the
``hil`` exit code each one means (kept apart so every safety module, and the CLI, can use them
without importing the threads that raise them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.safety.safe_state import SafeFailure


class RunAborted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C, SIGTERM); it ends as ``aborted``."""


class RunInterlocked(BaseException):
    """An interlock with ``then: end`` tripped; the run ends as ``interlocked``.

    A BaseException, like KeyboardInterrupt, so that experiment code catching ``Exception``
    cannot swallow it.
    """

    def __init__(self, interlock: str, message: str = "") -> None:
        super().__init__(message or f"interlock {interlock} tripped")
        self.interlock = interlock


class GarbledReply(RuntimeError):
    """An instrument answered bytes that are not text: the message names the instrument."""

    def __init__(self, instrument: str, error: UnicodeDecodeError) -> None:
        super().__init__(f"{instrument}: garbled reply (not {error.encoding} text): "
                         f"{bytes(error.object[:40])!r}")
        self.instrument = instrument

    def __str__(self) -> str:  # QCoDeS appends "getting <parameter>" to args
        return "; ".join(str(a) for a in self.args)


class InterlockConfigError(ValueError):
    """A mistake in a station's ``interlocks:`` section; the message names the key."""



class UnsafeLab(RuntimeError):
    """The run ended but some instrument's safe state did not hold: the lab may be live."""

    def __init__(self, failures: Sequence[SafeFailure]) -> None:
        super().__init__("safe state did not hold: " + "; ".join(f.message() for f in failures))
        self.failures = list(failures)


def exit_code(exc: BaseException) -> int:
    """The ``hil`` exit code of a run that ended with ``exc`` (the DESIGN contract)."""
    if isinstance(exc, RunInterlocked):
        return 3
    if isinstance(exc, KeyboardInterrupt):
        return 143 if str(exc).startswith("SIGTERM") else 130
    return 1
