"""What Keysight swept analyzers (the E5080B VNA, the N9030B spectrum analyzer) share.

Both couple start, stop, centre and span (setting one moves the others, so the driver re-reads
them), compute their frequency axis from start, stop and points, and transfer traces in ASCII or
as little-endian binary blocks (``FORM:BORD SWAP``). They differ only in spelling: the N9030B's
commands carry a leading colon, and its ASCII format reads ``ASC`` where the VNA's reads ``ASC,0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from qcodes.parameters import Parameter

from instruments._scpi import ScpiInstrument


def data_format_parser(formats: dict[str, str], query: str) -> Callable[[str], str]:
    """``FORM:DATA?`` reply (any ``ASC`` form, ``REAL,32``, ``REAL,64``) -> ``data_format`` name."""

    def parse(reply: str) -> str:
        wire = reply.strip().upper().replace(" ", "")
        if wire.startswith("ASC"):
            return "ascii"
        for name, spelling in formats.items():
            if wire == spelling:
                return name
        raise ValueError(f"unknown {query} reply {reply!r}")

    return parse


class SweptAnalyzer(ScpiInstrument):
    """Coupled frequencies, the frequency axis and the trace format of a swept analyzer."""

    command_prefix: ClassVar[str] = ""  # ":" where the instrument's manual spells commands so
    data_formats: ClassVar[dict[str, str]] = {}
    _frequency_parameters: tuple[Parameter, ...]
    points: Parameter
    start: Parameter
    stop: Parameter

    def _frequency_setter(self, command: str, name: str) -> Callable[[float], None]:
        """Set one of start/stop/centre/span, then re-read the three it moved."""

        def set_and_reread(value: float) -> None:
            self.write(f"{command} {value:.0f}")
            for parameter in self._frequency_parameters:
                if parameter.name != name:
                    parameter.get()

        return set_and_reread

    def set_window(self, start_hz: float, stop_hz: float) -> None:
        """Sweep from ``start_hz`` to ``stop_hz``, never asking for stop < start on the way
        (the edge that moves toward the new window goes first)."""
        if start_hz > self.stop():
            self.stop(stop_hz)
            self.start(start_hz)
        else:
            self.start(start_hz)
            self.stop(stop_hz)

    def _points_latest(self) -> int:
        return self.points.get_latest()

    def _frequency_axis(self) -> npt.NDArray[np.float64]:
        return np.linspace(self.start.get(), self.stop.get(), self.points.get())

    def _set_data_format(self, name: str) -> None:
        self.write(f"{self.command_prefix}FORM:DATA {self.data_formats[name]}")
        if name != "ascii":
            self.write(f"{self.command_prefix}FORM:BORD SWAP")
