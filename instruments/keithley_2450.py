"""QCoDeS driver for the Keithley 2450 source-measure unit as a DC bias source (SCPI mode).

Why not a subclass of qcodes' ``Keithley2450``: its source level and current limit carry no
validators (a station limit has nothing to narrow, so an out-of-range bias would reach the
crystal), the active function's parameters live on submodules swapped by a property (a role
needs fixed attributes), and its sweep parameters raise on read until a sweep is set up. This
driver keeps the same command spellings (2450 Reference Manual, SCPI command set) with typed,
range-checked parameters, an error-queue check after every write, and ``safe_state()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from qcodes.parameters import Parameter, create_on_off_val_mapping
from qcodes.validators import Enum, Numbers

from instruments._scpi import InstrumentError, ScpiInstrument, set_all

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

#: Source voltage ranges of the 2450 (V); the level may exceed a range by 5 % (210 V on 200 V).
VOLTAGE_RANGES = (0.02, 0.2, 2.0, 20.0, 200.0)
MAX_VOLTAGE = 210.0
#: Current limit (compliance) span of the 2450 (A).
CURRENT_LIMIT_A = (1e-9, 1.05)


class Keithley2450(ScpiInstrument):
    """Keithley 2450 sourcing voltage and measuring current (the bias across an EO crystal).

    At init the unit must be in SCPI mode (``*LANG?``): a 2450 left in TSP mode ignores SCPI, so
    it is refused with a clear error instead of timing out later. The driver then selects voltage
    source and current sense once; every later command is a plain set or query.
    """

    default_terminator = "\n"
    error_query = ":SYST:ERR?"

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        super().__init__(name, address, **kwargs)
        self.write(":SOUR:FUNC VOLT")
        self.write(':SENS:FUNC "CURR"')

        self.voltage: Parameter = self.add_parameter(
            "voltage",
            label="Bias voltage",
            unit="V",
            get_cmd=":SOUR:VOLT?",
            get_parser=float,
            set_cmd=":SOUR:VOLT {:.6g}",
            vals=Numbers(-MAX_VOLTAGE, MAX_VOLTAGE),
        )
        """Source voltage level; reaches the terminals only while ``output`` is on."""

        self.voltage_range: Parameter = self.add_parameter(
            "voltage_range",
            label="Source voltage range",
            unit="V",
            get_cmd=":SOUR:VOLT:RANG?",
            get_parser=float,
            set_cmd=":SOUR:VOLT:RANG {:g}",
            vals=Enum(*VOLTAGE_RANGES),
        )
        """Fixed source range; the level may not exceed it by more than 5 %."""

        self.current_limit: Parameter = self.add_parameter(
            "current_limit",
            label="Current limit",
            unit="A",
            get_cmd=":SOUR:VOLT:ILIM?",
            get_parser=float,
            set_cmd=":SOUR:VOLT:ILIM {:.6g}",
            vals=Numbers(*CURRENT_LIMIT_A),
        )
        """Compliance: the source holds the current below this (protects a leaky crystal)."""

        self.current_limit_tripped: Parameter = self.add_parameter(
            "current_limit_tripped",
            label="Current limit tripped",
            get_cmd=":SOUR:VOLT:ILIM:TRIP?",
            val_mapping=create_on_off_val_mapping(on_val="1", off_val="0"),
        )
        """True while the source is held at the current limit (the set voltage is not applied)."""

        self.output: Parameter = self.add_parameter(
            "output",
            label="Output",
            get_cmd=":OUTP?",
            set_cmd=":OUTP {}",
            val_mapping=create_on_off_val_mapping(on_val="1", off_val="0"),
        )
        """Output relay: off, the terminals are at 0 V (the 2450's normal off state)."""

        self.nplc: Parameter = self.add_parameter(
            "nplc",
            label="Integration time",
            unit="PLC",
            get_cmd=":SENS:CURR:NPLC?",
            get_parser=float,
            set_cmd=":SENS:CURR:NPLC {:g}",
            vals=Numbers(0.01, 10),
        )
        """Current-measurement aperture in power-line cycles (longer: quieter, slower)."""

        self.current: Parameter = self.add_parameter(
            "current",
            label="Measured current",
            unit="A",
            get_cmd=":MEAS:CURR?",
            get_parser=float,
        )
        """One current measurement through the load (the crystal's leakage)."""

        self.connect_message()

    def on_connect(self) -> None:
        """Refuse a unit left in TSP mode before any SCPI (even the error-queue drain) is sent:
        it would not answer SCPI at all."""
        language = self.ask_raw("*LANG?").strip()
        if language != "SCPI":
            raise InstrumentError(f"{self.name}: the 2450 is in {language!r} command mode; send "
                                  "'*LANG SCPI' and power-cycle it (the driver speaks SCPI only)")
        super().on_connect()

    def enable_output(self) -> None:
        """Connect the source to the terminals at the set voltage."""
        self.output.set(True)

    def safe_state(self) -> None:
        """Output off, then 0 V, so switching on again cannot apply an old bias."""
        set_all([(self.output, False), (self.voltage, 0.0)])
