"""Shared bases for our drivers: a session that never takes a late reply for the next answer,
and the SCPI error queue read after every write.

A SCPI instrument that refuses a command does not say so in reply to the command: it pushes an
entry onto its error queue and carries on. Unless the queue is read after every write, a refused
set goes unnoticed and the cached value of the parameter is wrong. :class:`ScpiInstrument` drains
the queue after every write and turns what it finds into an :class:`InstrumentError`; at connect
it drains what an earlier client left, reports it as a warning and goes on.

A reply that comes after the VISA timeout is still on its way: the next read would take it as
the answer to the next query and record a wrong value without a word. :class:`RecoveringInstrument`
recovers the session after a timeout or a garbled reply, before the next command: a device
clear (which on a raw socket drains until the line is quiet), then ``*IDN?`` and every line
read up to its answer discarded, so whatever the instrument still had to say is gone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar

from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from qcodes.instrument import InstrumentBase, VisaInstrument
from qcodes.parameters import Parameter, ParameterBase
from qcodes.validators import Numbers

log = logging.getLogger(__name__)
_VI_ERROR_TMO = StatusCode.error_timeout

_LEADING_CODE = re.compile(r"^\s*([+-]?\d+)\s*(?:,|$)")


def dbm_to_w(dbm: float) -> float:
    """Power in W from dBm (0 dBm = 1 mW): the drivers' one conversion for SI power parameters."""
    return 1e-3 * 10 ** (float(dbm) / 10)


def w_to_dbm(watts: float) -> float:
    """Power in dBm from W."""
    return 10 * math.log10(float(watts) / 1e-3)


def add_watts_parameter(instrument: InstrumentBase, name: str, dbm: Parameter, *, label: str,
                        low_dbm: float, high_dbm: float) -> Parameter:
    """A power parameter in W (the roles' SI unit) that reads and sets ``dbm``, the instrument's
    own in dBm (to 0.01 dB): the bytes on the wire are ``dbm``'s, and station limits on ``dbm``
    hold here too."""
    return instrument.add_parameter(
        name,
        label=label,
        unit="W",
        get_cmd=lambda: dbm_to_w(dbm.get()),
        set_cmd=lambda watts: dbm.set(round(w_to_dbm(watts), 2)),
        vals=Numbers(dbm_to_w(low_dbm), dbm_to_w(high_dbm)),
    )


class InstrumentError(RuntimeError):
    """The instrument reported an error in its error queue after a command.

    ``args[0]`` is the message; QCoDeS appends context (``"setting laser_wavelength to ..."``)
    as further args, which ``str()`` joins into one readable line.
    """

    def __str__(self) -> str:
        return "; ".join(str(arg) for arg in self.args)


class StaleErrorWarning(UserWarning):
    """The instrument's error queue held errors when we connected (an earlier client's)."""


class RecoveringInstrument(VisaInstrument):
    """A VISA instrument whose session is recovered after a timeout or a garbled reply.

    The query that failed still raises (its value is lost, never replaced by another's); the
    next command finds the session in step. If the instrument does not answer the resync either,
    :class:`InstrumentError` says so, chained to the first failure.
    """

    sync_query: ClassVar[str] = "*IDN?"
    """A query whose reply is known, to find the end of whatever was still in flight."""

    resync_reads: ClassVar[int] = 4
    """Timeouts the resync waits for the sync reply (a late reply may hold it up)."""

    _sync_reply: str | None = None
    _session_checked: bool = False
    _out_of_step: tuple[str, BaseException] | None = None

    def ask_raw(self, cmd: str) -> str:
        self._before_command()
        try:
            reply = super().ask_raw(cmd)
        except VisaIOError as exc:
            if exc.error_code == _VI_ERROR_TMO:
                self._out_of_step = (cmd, exc)
            raise
        except UnicodeDecodeError as exc:
            self._out_of_step = (cmd, exc)
            raise
        if cmd.strip().upper() == self.sync_query:
            self._sync_reply = reply.strip()
        return reply

    def write_raw(self, cmd: str) -> None:
        self._before_command()
        super().write_raw(cmd)

    def _before_command(self) -> None:
        if not self._session_checked:
            self._session_checked = True
            self.on_connect()
        if self._out_of_step is not None:
            cmd, cause = self._out_of_step
            self._out_of_step = None
            self._resync(cmd, cause)

    def on_connect(self) -> None:
        """Runs once, before the first command of the session (subclasses check the instrument)."""

    def _resync(self, cmd: str, cause: BaseException) -> None:
        handle = self.visa_handle
        with contextlib.suppress(Exception):  # not every interface has a device clear
            handle.clear()
        started = time.monotonic()
        try:
            handle.write(self.sync_query)
            for _ in range(self.resync_reads):
                try:
                    line = handle.read().strip()
                except UnicodeDecodeError:
                    continue
                except VisaIOError as exc:
                    if exc.error_code != _VI_ERROR_TMO:  # a timeout: keep waiting
                        raise
                    continue
                if line == self._sync_reply or (self._sync_reply is None and line.count(",") == 3):
                    log.info("%s: session recovered after %r failed (%.2f s)", self.name, cmd,
                             time.monotonic() - started)
                    return
                log.warning("%s: discarded a late reply %r (not the answer to the next query)",
                            self.name, line[:80])
        except Exception as exc:
            raise InstrumentError(f"{self.name}: {cmd!r} failed ({cause}) and the instrument "
                                  f"did not answer {self.sync_query} afterwards: {exc}") from cause
        raise InstrumentError(f"{self.name}: {cmd!r} failed ({cause}) and the instrument did not "
                              f"answer {self.sync_query} within {self.resync_reads} timeouts "
                              f"afterwards; its session cannot be trusted") from cause


class ScpiInstrument(RecoveringInstrument):
    """A VISA instrument whose writes are each followed by a drain of the SCPI error queue.

    Subclasses set :attr:`error_query`. Queries are not followed by an error read: a refused
    query already shows up as a missing or wrong reply, and an extra read per get would double
    the traffic of every sweep. At connect the queue is drained once: what an earlier client
    left is reported (:class:`StaleErrorWarning`) and does not fail this session.
    """

    error_query: ClassVar[str] = "SYST:ERR?"
    """Query that pops one entry of the error queue, e.g. ``SYST:ERR?``."""

    max_error_reads: ClassVar[int] = 10
    """Upper bound on error-queue reads after one write, so a stuck queue cannot hang a set."""

    @staticmethod
    def error_code(reply: str) -> int | None:
        """Leading integer of an error-queue reply (``0`` = queue empty), None if unparsable.

        The empty-queue text differs between vendors (Santec ``0,"No error"``, Thorlabs and
        Keysight ``+0,"No error"``), the code does not.
        """
        match = _LEADING_CODE.match(reply)
        return int(match.group(1)) if match else None

    def on_connect(self) -> None:
        stale = self._drain_error_queue()
        if stale:
            message = (f"{self.name}: the error queue held {len(stale)} entr"
                       f"{'y' if len(stale) == 1 else 'ies'} at connect (left by an earlier "
                       f"client; cleared): {'; '.join(stale)}")
            log.warning(message)
            warnings.warn(message, StaleErrorWarning, stacklevel=2)

    def write_raw(self, cmd: str) -> None:
        """Send ``cmd``, then raise :class:`InstrumentError` if the instrument refused it."""
        super().write_raw(cmd)
        errors = self._drain_error_queue()
        if errors:
            raise InstrumentError(f"{self.name}: {cmd!r} -> {'; '.join(errors)}")

    def _drain_error_queue(self) -> list[str]:
        """Read the error queue until it is empty (at most ``max_error_reads`` times)."""
        errors: list[str] = []
        for _ in range(self.max_error_reads):
            reply = super().ask_raw(self.error_query).strip()
            code = self.error_code(reply)
            if code == 0:
                return errors
            errors.append(reply)
            if code is None:
                # Not an error-queue reply: the exchange is out of step, reading on would
                # only consume replies meant for later queries.
                errors.append(f"(unparsable reply to {self.error_query})")
                return errors
        errors.append(f"(error queue not empty after {self.max_error_reads} reads)")
        return errors


def set_all(steps: Iterable[tuple[ParameterBase, Any]]) -> None:
    """Set each parameter in turn, attempting every step even when one fails; re-raise the
    first failure. Safe states use it: one stuck setting must not leave the others live."""
    failure: Exception | None = None
    for parameter, value in steps:
        try:
            parameter.set(value)
        except Exception as exc:  # the remaining steps must still run
            failure = failure or exc
    if failure is not None:
        raise failure
