"""Shared base for SCPI instruments that keep an error queue.

A SCPI instrument that refuses a command does not say so in reply to the command: it pushes an
entry onto its error queue and carries on. Unless the queue is read after every write, a refused
set goes unnoticed and the cached value of the parameter is wrong. This base drains the queue
after every write and turns what it finds into an :class:`InstrumentError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from qcodes.instrument import VisaInstrument
from qcodes.parameters import ParameterBase

_LEADING_CODE = re.compile(r"^\s*([+-]?\d+)\s*(?:,|$)")


def dbm_to_w(dbm: float) -> float:
    """Power in W from dBm (0 dBm = 1 mW): the drivers' one conversion for SI power parameters."""
    return 1e-3 * 10 ** (float(dbm) / 10)


def w_to_dbm(watts: float) -> float:
    """Power in dBm from W."""
    return 10 * math.log10(float(watts) / 1e-3)


class InstrumentError(RuntimeError):
    """The instrument reported an error in its error queue after a command.

    ``args[0]`` is the message; QCoDeS appends context (``"setting laser_wavelength to ..."``)
    as further args, which ``str()`` joins into one readable line.
    """

    def __str__(self) -> str:
        return "; ".join(str(arg) for arg in self.args)


class ScpiInstrument(VisaInstrument):
    """A VISA instrument whose writes are each followed by a drain of the SCPI error queue.

    Subclasses set :attr:`error_query`. Queries are not followed by an error read: a refused
    query already shows up as a missing or wrong reply, and an extra read per get would double
    the traffic of every sweep.
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
