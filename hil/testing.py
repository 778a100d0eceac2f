"""Testing a lab's own code without hardware: drivers against transcripts, steps on the twin.

Steps: the ``hil_twin`` fixture (:mod:`hil.steptest`) opens the simulated lab and runs a step
on it as ``hil run`` would; a conftest takes it with ``pytest_plugins = ["hil.testing"]``.

Drivers: transcript tests, the exact bytes a driver sends.

``expected_protocol`` builds a real driver on a fake VISA resource that replays a transcript:

.. code-block:: python

    from hil.testing import expected_protocol, scpi_write

    def test_wavelength():
        transcript = [*init_traffic, *scpi_write(":WAV 1550.1234", error_query=":SYST:ERR?",
                                                 no_error='0,"No error"')]
        with expected_protocol(SantecTSL570, transcript) as laser:
            laser.wavelength(1550.1234e-9)

A transcript is the ordered list of ``(sent, reply)`` exchanges, both without terminators;
``reply`` is None for a write the instrument does not answer, and ``bytes`` for a binary reply
(an IEEE 488.2 block ``#<n><length><data>``, read with ``read_raw``, ``read_bytes``,
``read_binary_values`` or ``query_binary_values``). All traffic counts, the driver's
``__init__`` and ``close()`` included. The fake raises :class:`TranscriptMismatch` (an
``AssertionError``) when a write differs from the next exchange, when the driver reads with no
reply pending, when it writes while a reply is still unread, and, when the ``with`` block ends,
if exchanges are left over. A mismatch the driver swallowed (QCoDeS' ``get_idn`` catches
everything) is raised again when the block ends.

Every reply reaches the driver followed by the read termination, as on the wire, and the raw
reads stop where a VISA read stops: after the termination character. So a driver that reads a
binary block with ``read_raw`` (which stops at the first ``0x0A`` byte inside the data) fails
here as it would on the instrument, while ``query_binary_values`` reads the announced length.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pyvisa import errors as visa_errors
from pyvisa import util as visa_util
from pyvisa.resources import MessageBasedResource
from pyvisa.util import BINARY_DATATYPES
from qcodes.instrument import VisaInstrument

Exchange = tuple[str, str | bytes | None]
"""One step of a transcript: what the driver sends, and the reply (None for a write, bytes for
a binary reply)."""

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


@dataclass
class _PendingReply:
    """A reply the driver has not (fully) read yet."""

    command: str
    reply: str | bytes
    buffer: bytearray
    """What is left to read, read termination included."""
    touched: bool = False
    """True once part of the reply was read by a raw read."""

    def shown(self) -> str:
        """The reply as messages name it: as written in the transcript while untouched."""
        return repr(self.reply) if not self.touched else repr(bytes(self.buffer))


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
    ``read_termination`` attributes, ``resource_name``, ``session`` and ``visalib``; and the
    reads drivers use for binary data: ``read_raw``, ``read_bytes``, ``read_binary_values`` and
    ``query_binary_values``. The bytes written are kept in :attr:`written`.
    """

    def __init__(self, transcript: Iterable[Exchange], resource_name: str) -> None:
        self._expected: deque[Exchange] = deque()
        for step in transcript:
            if not (isinstance(step, tuple | list) and len(step) == 2 and isinstance(step[0], str)
                    and (step[1] is None or isinstance(step[1], str | bytes))):
                raise TypeError(f"transcript step must be (str, str | bytes | None), got {step!r}")
            self._expected.append((step[0], step[1]))
        self._step = 0
        self._unread: _PendingReply | None = None
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
        self.chunk_size = 20 * 1024

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
            pending = self._unread
            raise self._fail(f"step {self._step}: wrote {data!r} while the reply "
                             f"{pending.shown()} to {pending.command!r} was still unread")
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
            raw = reply if isinstance(reply, bytes) else reply.encode("utf-8")
            self._unread = _PendingReply(
                message, reply, bytearray(raw + (self.read_termination or "").encode("ascii")))
        return len(data)

    def read(self, termination: str | None = None, encoding: str | None = None) -> str:
        """Return the reply queued by the last write (without its termination).

        A text reply nothing has been read from is returned as written in the transcript.
        Otherwise (binary replies, partly read replies) this reads as pyvisa does: up to the
        termination character, decoded, termination stripped.
        """
        pending = self._pending("read")
        if isinstance(pending.reply, str) and not pending.touched:
            self._unread = None
            return pending.reply
        text = self._take(self._termchar_end(pending, len(pending.buffer))).decode(
            encoding or "ascii")
        end = self.read_termination if termination is None else termination
        return text[: -len(end)] if end and text.endswith(end) else text

    def read_raw(self, size: int | None = None) -> bytes:
        """Read as a VISA read does: up to and including the termination character (if set)."""
        pending = self._pending("read_raw")
        return self._take(self._termchar_end(pending, len(pending.buffer)))

    def read_bytes(self, count: int, chunk_size: int | None = None,
                   break_on_termchar: bool = False, monitoring_interface: Any = None) -> bytes:
        """Read exactly ``count`` bytes (fewer only with ``break_on_termchar``)."""
        pending = self._pending("read_bytes")
        end = self._termchar_end(pending, count) if break_on_termchar else count
        if end > len(pending.buffer):
            raise self._fail(f"step {self._step}: read {count} byte(s) of the reply to "
                             f"{pending.command!r}, only {len(pending.buffer)} left "
                             "(the instrument would time out)")
        return self._take(end)

    def read_binary_values(self, datatype: BINARY_DATATYPES = "f", is_big_endian: bool = False,
                           container: Callable[..., Any] = list, header_fmt: str = "ieee",
                           expect_termination: bool = True, data_points: int = -1,
                           chunk_size: int | None = None, monitoring_interface: Any = None,
                           length_before_block: int | None = None,
                           raise_on_late_block: bool = False) -> Any:
        """Read a binary block as pyvisa does: header, the announced length, the termination.

        The header formats are pyvisa's (``ieee``, ``rs``, ``hp``, ``empty``). With
        ``expect_termination`` the bytes after the block must be the read termination.
        """
        pending = self._pending("read_binary_values")
        block = bytes(pending.buffer)
        if header_fmt == "ieee":
            offset, length = visa_util.parse_ieee_block_header(
                block, length_before_block, raise_on_late_block)
        elif header_fmt == "rs":
            offset, length = visa_util.parse_ieee_or_rs_block_header(
                block, length_before_block, raise_on_late_block)
        elif header_fmt == "hp":
            offset, length = visa_util.parse_hp_block_header(
                block, is_big_endian, length_before_block, raise_on_late_block)
        elif header_fmt == "empty":
            offset, length = 0, -1
        else:
            raise ValueError("Invalid header format. Valid options are 'ieee', 'rs', 'hp', 'empty'")
        if length < 0:
            length = max(data_points, 0) * struct.calcsize(datatype)
        end = offset + length
        if end > len(block):
            raise self._fail(f"step {self._step}: the block in the reply to {pending.command!r} "
                             f"announces {length} byte(s) after {offset}, only "
                             f"{len(block) - offset} present")
        try:
            values = visa_util.from_binary_block(block, offset, length, datatype,
                                                 is_big_endian, container)
        except ValueError as exc:
            raise visa_errors.InvalidBinaryFormat(exc.args[0]) from exc
        self._take(end)
        termination = (self.read_termination or "").encode("ascii")
        if expect_termination and termination:
            rest = self._take(len(termination)) if self._unread is not None else b""
            if rest != termination:
                raise self._fail(f"step {self._step}: the block in the reply to "
                                 f"{pending.command!r} is followed by {rest!r}, not the read "
                                 f"termination {termination!r}")
        return values

    def query_binary_values(self, message: str, datatype: BINARY_DATATYPES = "f", is_big_endian: bool = False,
                            container: Callable[..., Any] = list, delay: float | None = None,
                            header_fmt: str = "ieee", expect_termination: bool = True,
                            data_points: int = 0, chunk_size: int | None = None,
                            monitoring_interface: Any = None,
                            length_before_block: int | None = None,
                            raise_on_late_block: bool = False) -> Any:
        """Write ``message``, then :meth:`read_binary_values`, as pyvisa does."""
        self.write(message)
        return self.read_binary_values(datatype, is_big_endian, container, header_fmt,
                                       expect_termination, data_points, chunk_size,
                                       monitoring_interface, length_before_block,
                                       raise_on_late_block)

    def _pending(self, what: str) -> _PendingReply:
        if self._unread is None:
            after = f"after {self._last_sent!r}" if self._last_sent is not None else "first"
            raise self._fail(f"step {self._step}: {what} {after} with no reply pending")
        return self._unread

    def _termchar_end(self, pending: _PendingReply, limit: int) -> int:
        """Where a read of at most ``limit`` bytes stops: after the termination character."""
        limit = min(limit, len(pending.buffer))
        if self.read_termination:
            at = pending.buffer.find(self.read_termination[-1].encode("ascii"), 0, limit)
            if at >= 0:
                return at + 1
        return limit

    def _take(self, count: int) -> bytes:
        """Consume ``count`` bytes of the pending reply; it is read once nothing is left."""
        assert self._unread is not None
        pending = self._unread
        data = bytes(pending.buffer[:count])
        del pending.buffer[:count]
        pending.touched = True
        if not pending.buffer:
            self._unread = None
        return data

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
            pending = self._unread
            what = "the reply" if not pending.touched else "the rest of the reply,"
            raise TranscriptMismatch(f"{what} {pending.shown()} to {pending.command!r} was "
                                     "never read")
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


# A lab's own steps on the twin (pytest fixtures, see hil.steptest): importing them here lets a
# conftest say ``pytest_plugins = ["hil.testing"]``.
from hil.steptest import TwinHarness, hil_station, hil_twin  # noqa: E402,F401
