"""Transcript tests for QCoDeS VISA drivers: the exact bytes a driver sends, without hardware.

``expected_protocol`` builds a real driver on a fake VISA resource that replays a transcript:

.. code-block:: python

    from hil.testing import expected_protocol, scpi_write

    def test_wavelength():
        transcript = [*init_traffic, *scpi_write(":WAV 1550.1234", error_query=":SYST:ERR?",
                                                 no_error='0,"No error"')]
        with expected_protocol(SantecTSL570, transcript) as laser:
            laser.wavelength(1550.1234e-9)

A transcript is the ordered list of ``(sent, reply)`` exchanges, both without terminators;
``reply`` is None for a write the instrument does not answer. All traffic counts, the driver's
``__init__`` and ``close()`` included. The fake raises :class:`TranscriptMismatch` (an
``AssertionError``) when a write differs from the next exchange, when the driver reads with no
reply pending, when it writes while a reply is still unread, and, when the ``with`` block ends,
if exchanges are left over. A mismatch the driver swallowed (QCoDeS' ``get_idn`` catches
everything) is raised again when the block ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from pyvisa.resources import MessageBasedResource
from qcodes.instrument import VisaInstrument

Exchange = tuple[str, str | None]
"""One step of a transcript: what the driver sends, and the reply (None for a write)."""

DriverT = TypeVar("DriverT", bound=VisaInstrument)


class TranscriptMismatch(AssertionError):
    """The driver's traffic differs from the expected transcript.

    ``args[0]`` is the message; QCoDeS appends context (``"setting dut_level to 3"``) as
    further args, which ``str()`` joins into one readable line.
    """

    def __str__(self) -> str:
        return "; ".join(str(arg) for arg in self.args)


def scpi_write(command: str, *, error_query: str = "SYST:ERR?",
               no_error: str = '+0,"No error"') -> list[Exchange]:
    """A write followed by the error-queue read that finds the queue empty."""
    return [(command, None), (error_query, no_error)]


class _TranscriptVisaLibrary:
    """Stands in for the pyvisa library object that QCoDeS inspects on the resource.

    Its class name is not ``SimVisaLibrary``, so QCoDeS treats the resource as hardware: it
    calls ``clear()`` at init (a no-op here) and does not try to reset a simulator on close.
    """

    library_path = "transcript"
    resource_manager = None


class TranscriptResource:
    """A message-based VISA resource that checks writes against a transcript and replays replies.

    It implements what ``qcodes.instrument.VisaInstrument`` uses of a resource: ``write``,
    ``read``, ``query``, ``clear``, ``close``, the ``timeout`` (ms), ``write_termination`` and
    ``read_termination`` attributes, ``resource_name``, ``session`` and ``visalib``. The bytes
    written are kept in :attr:`written`.
    """

    def __init__(self, transcript: Iterable[Exchange], resource_name: str) -> None:
        self._expected: deque[Exchange] = deque()
        for step in transcript:
            if not (isinstance(step, tuple | list) and len(step) == 2
                    and isinstance(step[0], str) and (step[1] is None or isinstance(step[1], str))):
                raise TypeError(f"transcript step must be (str, str | None), got {step!r}")
            self._expected.append((step[0], step[1]))
        self._step = 0
        self._unread: tuple[str, str] | None = None  # (command, reply)
        self._last_sent: str | None = None
        self.failures: list[str] = []
        self.written: list[bytes] = []
        """Every write as it would go on the wire (terminator included), in order."""
        self.resource_name = resource_name
        self.visalib = _TranscriptVisaLibrary()
        self.session: int | None = 1
        self.timeout: float = 2000.0
        self.write_termination = "\r\n"
        self.read_termination = ""

    def _fail(self, message: str) -> TranscriptMismatch:
        self.failures.append(message)
        return TranscriptMismatch(message)

    def write(self, message: str, termination: str | None = None,
              encoding: str | None = None) -> int:
        """Check ``message`` + termination against the next exchange and queue its reply."""
        data = (message + (self.write_termination if termination is None else termination)
                ).encode(encoding or "ascii")
        self.written.append(data)
        if self._unread is not None:
            command, reply = self._unread
            raise self._fail(f"step {self._step}: wrote {data!r} while the reply {reply!r} "
                             f"to {command!r} was still unread")
        if not self._expected:
            raise self._fail(f"step {self._step + 1}: wrote {data!r} after the end of the "
                             "transcript")
        sent, reply = self._expected[0]
        expected = (sent + self.write_termination).encode("ascii")
        if data != expected:
            raise self._fail(f"step {self._step + 1}: expected write {expected!r}, "
                             f"got {data!r}")
        self._expected.popleft()
        self._step += 1
        self._last_sent = message
        if reply is not None:
            self._unread = (message, reply)
        return len(data)

    def read(self, termination: str | None = None, encoding: str | None = None) -> str:
        """Return the reply queued by the last write."""
        if self._unread is None:
            after = f"after {self._last_sent!r}" if self._last_sent is not None else "first"
            raise self._fail(f"step {self._step}: read {after} with no reply pending")
        _, reply = self._unread
        self._unread = None
        return reply

    def query(self, message: str, delay: float | None = None) -> str:
        """Write then read, as pyvisa does."""
        self.write(message)
        return self.read()

    def clear(self) -> None:
        """Device clear: nothing to discard here, and it sends nothing."""

    def close(self) -> None:
        """Mark the session closed (QCoDeS checks ``session`` before closing again)."""
        self.session = None

    def check_complete(self) -> None:
        """Raise the first mismatch seen, or complain about exchanges that never happened."""
        if self.failures:
            extra = f" (and {len(self.failures) - 1} later)" if len(self.failures) > 1 else ""
            raise TranscriptMismatch(self.failures[0] + extra)
        if self._unread is not None:
            command, reply = self._unread
            raise TranscriptMismatch(f"the reply {reply!r} to {command!r} was never read")
        if self._expected:
            left = list(self._expected)
            raise TranscriptMismatch(f"{len(left)} exchange(s) of the transcript never "
                                     f"happened, from step {self._step + 1}: {left!r}")


@contextmanager
def expected_protocol(driver_cls: type[DriverT], transcript: Iterable[Exchange], *,
                      name: str = "dut", **driver_kwargs: Any) -> Iterator[DriverT]:
    """Yield ``driver_cls(name, resource=<fake>, **driver_kwargs)`` checked against ``transcript``.

    The instrument is closed when the block ends; then every exchange must have happened.
    """
    resource = TranscriptResource(transcript, resource_name=f"TRANSCRIPT::{name}::INSTR")
    try:
        instrument = driver_cls(name, resource=cast(MessageBasedResource, resource),
                                **driver_kwargs)
    except Exception as exc:
        _raise_first_failure(resource, exc)
        raise
    try:
        yield instrument
    except Exception as exc:
        _raise_first_failure(resource, exc)
        raise
    finally:
        instrument.close()
    resource.check_complete()


def _raise_first_failure(resource: TranscriptResource, exc: Exception) -> None:
    """If an earlier mismatch was swallowed, report it as the cause rather than ``exc``."""
    if not resource.failures:
        return
    first = resource.failures[0]
    if not (isinstance(exc, TranscriptMismatch) and exc.args and exc.args[0] == first):
        raise TranscriptMismatch(first) from exc
