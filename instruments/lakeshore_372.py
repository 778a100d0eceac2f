"""QCoDeS driver for the Lake Shore Model 372 AC resistance bridge and temperature controller.

Written from the 372 command set rather than on qcodes' ``LakeshoreModel372``: qcodes 0.58 sends a
336-style ``HTRSET`` (wrong fields for the 372) and has no ``SCAN``, ``RDGR?``, ``RDGPWR?``,
``STILL`` or ``MOUT``.

Error checking. The 372 has no SCPI error queue. A command it cannot parse or execute sets a bit
of the IEEE 488.2 standard event status register instead (QYE 4, EXE 16, CME 32), which ``*ESR?``
reads and clears. So every write is followed by one ``*ESR?`` read, and any of those bits (or DDE 8)
raises :class:`~instruments._scpi.InstrumentError` naming instrument, command and the bits; OPC
(1), URQ (64) and PON (128) are not errors. Lake Shore's own Python driver checks ``*ESR?`` after
each command the same way. At init one ``*ESR?`` read clears whatever an earlier client left.
Reads are not followed by ``*ESR?`` (a bad query shows up as a missing or wrong reply).

Wire format. Commands use the manual's spelling with no spaces after commas
(``INSET 6,1,10,3,0,1``). Multi-field commands are ``GroupParameter`` groups; their replies are
normalised field by field (``+100.000`` -> ``100``, ``06`` -> ``6``), so a group written back after
a read sends the same canonical text as one set from Python.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Unpack

import numpy as np
from qcodes.instrument import (
    ChannelList,
    InstrumentBaseKWArgs,
    InstrumentChannel,
    InstrumentModule,
)
from qcodes.parameters import Group, GroupParameter, Parameter
from qcodes.validators import Enum, Ints, MultiType, Numbers, Strings

from instruments._scpi import InstrumentError, RecoveringInstrument, StaleErrorWarning, set_all

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

N_CHANNELS = 16
"""Measurement inputs 1..16 (through the scanner option; 1..8 with a 3708 scanner)."""

MXC_CHANNEL = 6
"""Input of the mixing-chamber thermometer in the usual Bluefors wiring."""

SAMPLE_HEATER_RANGES_A: dict[float, int] = {
    0.0: 0, 31.6e-6: 1, 100e-6: 2, 316e-6: 3, 1e-3: 4, 3.16e-3: 5, 10e-3: 6, 31.6e-3: 7, 100e-3: 8,
}
"""Sample heater ``RANGE`` codes by full-scale current (A); 0 A = off."""

RESISTANCE_RANGES_OHM: dict[float, int] = {
    2e-3: 1, 6.32e-3: 2, 20e-3: 3, 63.2e-3: 4, 200e-3: 5, 632e-3: 6,
    2.0: 7, 6.32: 8, 20.0: 9, 63.2: 10, 200.0: 11, 632.0: 12,
    2e3: 13, 6.32e3: 14, 20e3: 15, 63.2e3: 16, 200e3: 17, 632e3: 18,
    2e6: 19, 6.32e6: 20, 20e6: 21, 63.2e6: 22,
}
"""Measurement-input ``INTYPE`` resistance range codes by full-scale resistance (ohm)."""

READING_STATUS_BITS: tuple[tuple[int, str], ...] = (
    (1, "CS OVL"), (2, "VCM OVL"), (4, "VMIX OVL"), (8, "VDIF OVL"),
    (16, "R. OVER"), (32, "R. UNDER"), (64, "T. OVER"), (128, "T. UNDER"),
)
"""``RDGST?`` bit weights and the manual's names for them."""

ESR_ERROR_BITS: tuple[tuple[int, str], ...] = (
    (4, "query error"), (8, "device-dependent error"), (16, "execution error"), (32, "command error"),
)
"""``*ESR?`` bits that mean the last command was refused."""

OUTPUT_MODES: dict[str, int] = {
    "off": 0, "monitor_out": 1, "open_loop": 2, "zone": 3, "still": 4, "closed_loop": 5,
    "warm_up": 6,
}
"""``OUTMODE`` modes."""

HEATER_STATUS: dict[str, int] = {"ok": 0, "open": 1, "short": 2}
"""``HTRST?`` codes."""

ON_OFF: dict[bool, int] = {True: 1, False: 0}


def format_number(value: float) -> str:
    """Plain decimal text with at most 6 significant digits and no exponent (``0.45``, ``100``)."""
    text = np.format_float_positional(float(value), precision=6, unique=True, fractional=False,
                                      trim="-")
    return "0" if text == "-0" else text


def decode_reading_status(code: int | str) -> tuple[str, ...]:
    """Names of the ``RDGST?`` bits set in ``code``; empty for a valid reading."""
    value = int(code)
    return tuple(name for bit, name in READING_STATUS_BITS if value & bit)


def _input_field(text: str) -> int | str:
    """An input field: ``A`` (control input) or a channel number (0 = none)."""
    return "A" if text.strip().upper() == "A" else int(text)


def _number_field(text: str) -> str:
    return format_number(float(text))


class _SensorName(Strings):
    """An ``INNAME`` name: at most 15 characters and no double quote (it would end the field)."""

    def __init__(self) -> None:
        super().__init__(max_length=15)

    def validate(self, value: str, context: str = "") -> None:
        super().validate(value, context)
        if '"' in value:
            raise ValueError(f"{value!r} contains a double quote; {context}")


def _fields_parser(command: str, fields: Sequence[tuple[str | None, Callable[[str], Any]]]
                   ) -> Callable[[str], dict[str, Any]]:
    """Parser of a comma-separated reply to ``command`` into canonical raw values by name.

    ``fields`` gives, per reply field, the parameter name (None: ignore the field) and the function
    turning the field text into the raw value the set command will format.
    """

    def parse(reply: str) -> dict[str, Any]:
        texts = [text.strip() for text in reply.split(",")]
        if len(texts) != len(fields):
            raise ValueError(f"reply {reply!r} to {command!r} has {len(texts)} fields, "
                             f"expected {len(fields)}")
        return {name: canon(text) for (name, canon), text in zip(fields, texts, strict=True)
                if name is not None}

    return parse


def _group(parameters: Sequence[GroupParameter], *, set_cmd: str, get_cmd: str,
           fields: Sequence[tuple[str | None, Callable[[str], Any]]]) -> Group:
    return Group(list(parameters), set_cmd=set_cmd, get_cmd=get_cmd,
                 get_parser=_fields_parser(get_cmd, fields))


class LakeShore372Channel(InstrumentChannel):
    """One measurement input (1..16) of the 372: readings, ``INSET``, ``INTYPE`` and its name."""

    def __init__(self, parent: LakeShore372, name: str, channel: int,
                 **kwargs: Unpack[InstrumentBaseKWArgs]) -> None:
        super().__init__(parent, name, **kwargs)
        self.channel = channel
        """Input number on the wire (1..16)."""
        ch = channel

        self.temperature: Parameter = self.add_parameter(
            "temperature", label="Temperature", unit="K", get_cmd=f"RDGK? {ch}",
            get_parser=float, vals=Numbers(min_value=0))
        """Temperature from the input's curve; 0 when no curve is assigned (see ``status``)."""

        self.resistance: Parameter = self.add_parameter(
            "resistance", label="Resistance", unit="Ohm", get_cmd=f"RDGR? {ch}",
            get_parser=float, vals=Numbers())
        """Sensor resistance (in-phase part of the AC measurement)."""

        self.excitation_power: Parameter = self.add_parameter(
            "excitation_power", label="Excitation power", unit="W", get_cmd=f"RDGPWR? {ch}",
            get_parser=float, vals=Numbers(min_value=0))
        """Power the excitation dissipates in the sensor (self-heating check)."""

        self.status: Parameter = self.add_parameter(
            "status", label="Reading status", get_cmd=f"RDGST? {ch}",
            get_parser=decode_reading_status)
        """Set ``RDGST?`` flags by name (``CS OVL`` .. ``T. UNDER``); ``()`` = valid reading."""

        self.sensor_name: Parameter = self.add_parameter(
            "sensor_name", label="Sensor name", get_cmd=f"INNAME? {ch}",
            get_parser=lambda reply: reply.strip().strip('"').strip(),
            set_cmd=f'INNAME {ch},"{{}}"', vals=_SensorName())
        """Name shown for the input (``INNAME``, at most 15 characters)."""

        # INSET <ch>,<enabled>,<dwell>,<pause>,<curve>,<tempco>
        self.enabled: GroupParameter = self.add_parameter(
            "enabled", label="Enabled in the scan", val_mapping=ON_OFF,
            parameter_class=GroupParameter)
        """Input scanned (at least one input stays enabled: the 372 re-enables input 1)."""
        self.dwell: GroupParameter = self.add_parameter(
            "dwell", label="Autoscan dwell", unit="s", get_parser=int, vals=Ints(1, 200),
            parameter_class=GroupParameter)
        """Time the autoscan stays on this input."""
        self.pause: GroupParameter = self.add_parameter(
            "pause", label="Change pause", unit="s", get_parser=int, vals=Ints(3, 200),
            parameter_class=GroupParameter)
        """Settling time after switching to this input, before readings count."""
        self.curve: GroupParameter = self.add_parameter(
            "curve", label="Curve", get_parser=int, vals=Ints(0, 59),
            parameter_class=GroupParameter)
        """Temperature curve: 0 none, 1..20 standard, 21..59 user curves."""
        self.tempco: GroupParameter = self.add_parameter(
            "tempco", label="Temperature coefficient", val_mapping={"negative": 1, "positive": 2},
            parameter_class=GroupParameter)
        """Sign of dR/dT used for control when no curve is assigned."""
        self.inset_group = _group(
            [self.enabled, self.dwell, self.pause, self.curve, self.tempco],
            set_cmd=f"INSET {ch},{{enabled}},{{dwell}},{{pause}},{{curve}},{{tempco}}",
            get_cmd=f"INSET? {ch}",
            fields=[("enabled", int), ("dwell", int), ("pause", int), ("curve", int),
                    ("tempco", int)])

        # INTYPE <ch>,<mode>,<excitation>,<autorange>,<range>,<cs shunt>,<units>
        self.excitation_mode: GroupParameter = self.add_parameter(
            "excitation_mode", label="Excitation mode", val_mapping={"voltage": 0, "current": 1},
            parameter_class=GroupParameter)
        """Voltage or current excitation."""
        self.excitation_range: GroupParameter = self.add_parameter(
            "excitation_range", label="Excitation range code", get_parser=int, vals=Ints(1, 22),
            parameter_class=GroupParameter)
        """Excitation range code: 1..12 = 2 uV..632 mV (voltage mode), 1..22 = 1 pA..31.6 mA
        (current mode), in 1-3.16 steps."""
        self.autorange: GroupParameter = self.add_parameter(
            "autorange", label="Autorange", val_mapping={"off": 0, "on": 1, "rox102b": 2},
            parameter_class=GroupParameter)
        """Resistance autorange: off, on, or the ROX-102B mode."""
        self.resistance_range: GroupParameter = self.add_parameter(
            "resistance_range", label="Resistance range", unit="Ohm",
            val_mapping=RESISTANCE_RANGES_OHM, parameter_class=GroupParameter)
        """Full-scale resistance of the range: 2 mOhm .. 63.2 MOhm (codes 1..22)."""
        self.current_source_shunted: GroupParameter = self.add_parameter(
            "current_source_shunted", label="Current source shunted", val_mapping=ON_OFF,
            parameter_class=GroupParameter)
        """True = current source shunted, i.e. excitation off."""
        self.units: GroupParameter = self.add_parameter(
            "units", label="Preferred units", val_mapping={"kelvin": 1, "ohms": 2},
            parameter_class=GroupParameter)
        """Units of the display and of a control setpoint on this input."""
        self.intype_group = _group(
            [self.excitation_mode, self.excitation_range, self.autorange, self.resistance_range,
             self.current_source_shunted, self.units],
            set_cmd=(f"INTYPE {ch},{{excitation_mode}},{{excitation_range}},{{autorange}},"
                     f"{{resistance_range}},{{current_source_shunted}},{{units}}"),
            get_cmd=f"INTYPE? {ch}",
            fields=[("excitation_mode", int), ("excitation_range", int), ("autorange", int),
                    ("resistance_range", int), ("current_source_shunted", int), ("units", int)])


class _LakeShore372Output(InstrumentModule):
    """What every 372 output has: ``OUTMODE`` and the on/off or range ``RANGE``."""

    output: ClassVar[int]

    def __init__(self, parent: LakeShore372, name: str,
                 **kwargs: Unpack[InstrumentBaseKWArgs]) -> None:
        super().__init__(parent, name, **kwargs)
        out = self.output

        # OUTMODE <out>,<mode>,<input>,<powerup>,<polarity>,<filter>,<delay>
        self.mode: GroupParameter = self.add_parameter(
            "mode", label="Output mode", val_mapping=OUTPUT_MODES, parameter_class=GroupParameter)
        """Output mode: off, monitor_out, open_loop, zone, still, closed_loop, warm_up."""
        self.input_channel: GroupParameter = self.add_parameter(
            "input_channel", label="Control input", vals=MultiType(Ints(0, N_CHANNELS), Enum("A")),
            parameter_class=GroupParameter)
        """Input the loop reads: 1..16, ``A`` (control input) or 0 (none)."""
        self.powerup_enable: GroupParameter = self.add_parameter(
            "powerup_enable", label="On after power-up", val_mapping=ON_OFF,
            parameter_class=GroupParameter)
        """Whether the output comes back on after a power cycle (False is the safe choice)."""
        self.polarity: GroupParameter = self.add_parameter(
            "polarity", label="Polarity", val_mapping={"unipolar": 0, "bipolar": 1},
            parameter_class=GroupParameter)
        """Output polarity (not used by the warm-up heater)."""
        self.use_filter: GroupParameter = self.add_parameter(
            "use_filter", label="Control on filtered readings", val_mapping=ON_OFF,
            parameter_class=GroupParameter)
        """Control on filtered (True) or unfiltered readings."""
        self.delay: GroupParameter = self.add_parameter(
            "delay", label="Autoscan setpoint delay", unit="s", get_parser=int, vals=Ints(0, 255),
            parameter_class=GroupParameter)
        """Delay before control resumes when the autoscan returns to the control input."""
        self.outmode_group = _group(
            [self.mode, self.input_channel, self.powerup_enable, self.polarity, self.use_filter,
             self.delay],
            set_cmd=(f"OUTMODE {out},{{mode}},{{input_channel}},{{powerup_enable}},{{polarity}},"
                     f"{{use_filter}},{{delay}}"),
            get_cmd=f"OUTMODE? {out}",
            fields=[("mode", int), ("input_channel", _input_field), ("powerup_enable", int),
                    ("polarity", int), ("use_filter", int), ("delay", int)])


class LakeShore372SampleHeater(_LakeShore372Output):
    """Output 0, the sample heater: a current source, 31.6 uA .. 100 mA full scale."""

    output = 0

    def __init__(self, parent: LakeShore372, name: str,
                 **kwargs: Unpack[InstrumentBaseKWArgs]) -> None:
        super().__init__(parent, name, **kwargs)

        self.current_range: Parameter = self.add_parameter(
            "current_range", label="Current range", unit="A", get_cmd="RANGE? 0",
            set_cmd="RANGE 0,{}", val_mapping=SAMPLE_HEATER_RANGES_A)
        """Full-scale heater current: 0 (off), 31.6e-6, 100e-6, 316e-6, 1e-3, 3.16e-3, 10e-3,
        31.6e-3 or 100e-3 A."""

        self.setpoint: Parameter = self.add_parameter(
            "setpoint", label="Setpoint", unit="K", get_cmd="SETP? 0", get_parser=float,
            set_cmd="SETP 0,{}", set_parser=format_number, vals=Numbers(0, 63.2e6))
        """Control setpoint, in the preferred units of the control input: K (``units`` =
        kelvin), or ohms when that input's ``units`` is ohms."""

        # PID 0,<P>,<I>,<D>
        self.P: GroupParameter = self.add_parameter(
            "P", label="Proportional gain", get_parser=float, set_parser=format_number,
            vals=Numbers(0, 1000), parameter_class=GroupParameter)
        """Proportional gain (0..1000)."""
        self.I: GroupParameter = self.add_parameter(
            "I", label="Integral", unit="s", get_parser=float, set_parser=format_number,
            vals=Numbers(0, 10000), parameter_class=GroupParameter)
        """Integral (reset) time (0..10000 s, 0 = off)."""
        self.D: GroupParameter = self.add_parameter(
            "D", label="Derivative", unit="s", get_parser=float, set_parser=format_number,
            vals=Numbers(0, 2500), parameter_class=GroupParameter)
        """Derivative (rate) time (0..2500 s)."""
        self.pid_group = _group(
            [self.P, self.I, self.D], set_cmd="PID 0,{P},{I},{D}", get_cmd="PID? 0",
            fields=[("P", _number_field), ("I", _number_field), ("D", _number_field)])

        self.manual_output: Parameter = self.add_parameter(
            "manual_output", label="Manual output", unit="%", get_cmd="MOUT? 0",
            get_parser=float, set_cmd="MOUT 0,{}", set_parser=format_number,
            vals=Numbers(0, 100))
        """Manual (open-loop) output, in percent of the range (added to the PID output in
        closed loop)."""

        # HTRSET 0,<resistance>,0,0,<display>: the two max-current fields are warm-up only.
        self.resistance: GroupParameter = self.add_parameter(
            "resistance", label="Heater resistance", unit="Ohm", get_parser=float,
            set_parser=format_number, vals=Numbers(1, 2000), parameter_class=GroupParameter)
        """Heater load resistance (1..2000 Ohm); only used to show and compute power."""
        self.display: GroupParameter = self.add_parameter(
            "display", label="Heater output shown as", val_mapping={"current": 1, "power": 2},
            parameter_class=GroupParameter)
        """Heater output shown (and returned by ``HTR?``) as % of range current or as power."""
        self.htrset_group = _group(
            [self.resistance, self.display], set_cmd="HTRSET 0,{resistance},0,0,{display}",
            get_cmd="HTRSET? 0",
            fields=[("resistance", _number_field), (None, str), (None, str), ("display", int)])

        self.heater_output: Parameter = self.add_parameter(
            "heater_output", label="Heater output (% of range or W)", get_cmd="HTR?",
            get_parser=float, vals=Numbers(min_value=0))
        """Raw ``HTR?`` value: percent of range current when ``display`` is current, watts
        when it is power. Use ``power`` for watts whatever the display."""

        self.power: Parameter = self.add_parameter(
            "power", label="Heater power", unit="W", get_cmd=self._get_power,
            vals=Numbers(min_value=0))
        """Power into the heater: ``HTR?`` itself when ``display`` is power, else
        (percent x range current)^2 x ``resistance``."""

        self.status: Parameter = self.add_parameter(
            "status", label="Heater status", get_cmd="HTRST? 0", val_mapping=HEATER_STATUS)
        """Heater fault: ok, open (load open) or short."""

    def _get_power(self) -> float:
        display = self.display.get()  # reads HTRSET? 0, resistance with it
        reading = self.heater_output.get()
        if display == "power":
            return reading
        full_scale = self.current_range.get()
        resistance = self.resistance.get_latest()
        return (reading / 100.0 * full_scale) ** 2 * resistance


class LakeShore372WarmupHeater(_LakeShore372Output):
    """Output 1, the warm-up heater: up to 0.63 A into a 25 or 50 Ohm heater (10 W)."""

    output = 1

    def __init__(self, parent: LakeShore372, name: str,
                 **kwargs: Unpack[InstrumentBaseKWArgs]) -> None:
        super().__init__(parent, name, **kwargs)

        self.enabled: Parameter = self.add_parameter(
            "enabled", label="Output on", get_cmd="RANGE? 1", set_cmd="RANGE 1,{}",
            val_mapping=ON_OFF)
        """Warm-up heater output on (``RANGE 1,1``) or off (``RANGE 1,0``)."""

        # HTRSET 1,<resistance code>,<max current code>,<max user current>,<display>
        self.resistance: GroupParameter = self.add_parameter(
            "resistance", label="Heater resistance setting", unit="Ohm",
            val_mapping={25.0: 1, 50.0: 2}, parameter_class=GroupParameter)
        """Heater resistance setting: 25 or 50 Ohm."""
        self.max_current: GroupParameter = self.add_parameter(
            "max_current", label="Maximum current", unit="A",
            val_mapping={"user": 0, 0.45: 1, 0.63: 2}, parameter_class=GroupParameter)
        """Current limit: 0.45 A, 0.63 A, or ``user`` (then ``max_user_current``)."""
        self.max_user_current: GroupParameter = self.add_parameter(
            "max_user_current", label="User maximum current", unit="A", get_parser=float,
            set_parser=format_number, vals=Numbers(0, 0.63), parameter_class=GroupParameter)
        """Current limit used when ``max_current`` is ``user``."""
        self.display: GroupParameter = self.add_parameter(
            "display", label="Heater output shown as", val_mapping={"current": 1, "power": 2},
            parameter_class=GroupParameter)
        """Output shown as current or as power (% of full scale for this output)."""
        self.htrset_group = _group(
            [self.resistance, self.max_current, self.max_user_current, self.display],
            set_cmd="HTRSET 1,{resistance},{max_current},{max_user_current},{display}",
            get_cmd="HTRSET? 1",
            fields=[("resistance", int), ("max_current", int),
                    ("max_user_current", _number_field), ("display", int)])

        self.output_percent: Parameter = self.add_parameter(
            "output_percent", label="Output", unit="%", get_cmd="AOUT? 1", get_parser=float,
            vals=Numbers(0, 100))
        """Present output in percent of full scale."""

        self.status: Parameter = self.add_parameter(
            "status", label="Heater status", get_cmd="HTRST? 1", val_mapping=HEATER_STATUS)
        """Heater fault: ok, open (load open) or short."""


class LakeShore372StillHeater(_LakeShore372Output):
    """Output 2, the analog output driving the still heater (``OUTMODE`` mode ``still``)."""

    output = 2

    def __init__(self, parent: LakeShore372, name: str,
                 **kwargs: Unpack[InstrumentBaseKWArgs]) -> None:
        super().__init__(parent, name, **kwargs)

        self.enabled: Parameter = self.add_parameter(
            "enabled", label="Output on", get_cmd="RANGE? 2", set_cmd="RANGE 2,{}",
            val_mapping=ON_OFF)
        """Analog/still output on (``RANGE 2,1``) or off (``RANGE 2,0``)."""

        self.power_percent: Parameter = self.add_parameter(
            "power_percent", label="Still heater power", unit="%", get_cmd="STILL?",
            get_parser=float, set_cmd="STILL {}", set_parser=format_number,
            vals=Numbers(0, 100))
        """Still heater power in percent of full power (``STILL``); drives the output while
        ``mode`` is ``still`` and ``enabled`` is on."""

        self.output_percent: Parameter = self.add_parameter(
            "output_percent", label="Output", unit="%", get_cmd="AOUT? 2", get_parser=float,
            vals=Numbers(-100, 100))
        """Present analog output in percent of full scale."""


class LakeShore372(RecoveringInstrument):
    """Lake Shore Model 372 AC resistance bridge with the 3716 scanner (inputs 1..16).

    Inputs are ``ch01`` .. ``ch16`` (also ``channels[0]`` .. ``channels[15]``); outputs are
    ``sample_heater`` (0), ``warmup_heater`` (1) and ``still_heater`` (2). ``mxc_temperature`` and
    ``heater_power`` are what the Cryostat role reads. Every write is followed by ``*ESR?``
    (see the module docstring); ``safe_state()`` turns every heater off.
    """

    default_terminator = "\r\n"

    esr_query: ClassVar[str] = "*ESR?"
    """Query of the standard event status register (read clears it)."""

    def __init__(self, name: str, address: str | None = None, *, mxc_channel: int = MXC_CHANNEL,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        if not 1 <= mxc_channel <= N_CHANNELS:
            raise ValueError(f"mxc_channel must be 1..{N_CHANNELS}, got {mxc_channel}")
        super().__init__(name, address, **kwargs)

        channels = ChannelList(self, "channels", LakeShore372Channel, snapshotable=False)
        for number in range(1, N_CHANNELS + 1):
            channel = LakeShore372Channel(self, f"ch{number:02d}", number)
            channels.append(channel)
            self.add_submodule(channel.short_name, channel)
        self.channels = self.add_submodule("channels", channels.to_channel_tuple())
        """Inputs 1..16 in order (``channels[5]`` is input 6)."""

        self.sample_heater: LakeShore372SampleHeater = self.add_submodule(
            "sample_heater", LakeShore372SampleHeater(self, "sample_heater"))
        """Output 0: sample heater."""
        self.warmup_heater: LakeShore372WarmupHeater = self.add_submodule(
            "warmup_heater", LakeShore372WarmupHeater(self, "warmup_heater"))
        """Output 1: warm-up heater."""
        self.still_heater: LakeShore372StillHeater = self.add_submodule(
            "still_heater", LakeShore372StillHeater(self, "still_heater"))
        """Output 2: analog output driving the still heater."""

        # SCAN <ch>,<autoscan>
        self.scan_channel: GroupParameter = self.add_parameter(
            "scan_channel", label="Scanner input", get_parser=int, vals=Ints(1, N_CHANNELS),
            parameter_class=GroupParameter)
        """Input the scanner is on (the one being measured)."""
        self.autoscan: GroupParameter = self.add_parameter(
            "autoscan", label="Autoscan", val_mapping=ON_OFF, parameter_class=GroupParameter)
        """Step through the enabled inputs automatically (dwell per input from ``INSET``)."""
        self.scan_group = _group(
            [self.scan_channel, self.autoscan], set_cmd="SCAN {scan_channel},{autoscan}",
            get_cmd="SCAN?", fields=[("scan_channel", int), ("autoscan", int)])

        self.mxc_channel = mxc_channel
        """Input of the mixing-chamber thermometer."""
        self.mxc_temperature: Parameter = self.add_parameter(
            "mxc_temperature", label="Mixing chamber temperature", unit="K",
            get_cmd=f"RDGK? {mxc_channel}", get_parser=float, vals=Numbers(min_value=0))
        """Mixing-chamber temperature (``RDGK?`` of ``mxc_channel``)."""

        self.heater_power: Parameter = self.add_parameter(
            "heater_power", label="Sample heater power", unit="W",
            get_cmd=lambda: self.sample_heater.power.get(), vals=Numbers(min_value=0),
            snapshot_get=False)
        """Sample heater power (same as ``sample_heater.power``; not re-read by snapshots)."""

        self.connect_message()

    def on_connect(self) -> None:
        """Clear the event bits an earlier client left (reported, not blamed on our first write)."""
        reply = self.ask_raw(self.esr_query).strip()
        bits = [name for bit, name in ESR_ERROR_BITS if reply.isdigit() and int(reply) & bit]
        if bits:
            message = (f"{self.name}: {self.esr_query} was {reply} ({', '.join(bits)}) at connect "
                       f"(left by an earlier client; cleared)")
            logging.getLogger(__name__).warning(message)
            warnings.warn(message, StaleErrorWarning, stacklevel=2)

    def write_raw(self, cmd: str) -> None:
        """Send ``cmd``, then raise :class:`InstrumentError` if ``*ESR?`` shows it was refused."""
        super().write_raw(cmd)
        reply = super().ask_raw(self.esr_query).strip()
        try:
            code = int(reply)
        except ValueError:
            raise InstrumentError(
                f"{self.name}: {cmd!r} -> unparsable reply {reply!r} to {self.esr_query}"
            ) from None
        errors = [name for bit, name in ESR_ERROR_BITS if code & bit]
        if errors:
            raise InstrumentError(f"{self.name}: {cmd!r} -> {self.esr_query} {code} "
                                  f"({', '.join(errors)})")

    #: Readback and request may differ by this much before the heater resistance is corrected.
    HEATER_POWER_TOLERANCE: ClassVar[float] = 0.01
    #: Fill at most this fraction of a current range, leaving room for a resistance correction.
    HEATER_RANGE_HEADROOM: ClassVar[float] = 0.9

    heater_resistance_ohm: float | None = None
    """The sample heater's resistance the open-loop drive assumes: the controller's heater setup
    at first, then corrected from the power readback (:meth:`set_heater_power`)."""

    def set_heater_power(self, watts: float) -> None:
        """Drive the sample heater open loop (manual output, percent of a current range) at
        ``watts`` (0: off): ``P = (range x output)^2 R``. If the power read back differs from
        the request by more than 1 %, the resistance is taken from the readback and the output
        set again."""
        full_scale, percent = self._drive_heater(watts)
        if watts <= 0:
            return
        readback = float(self.heater_power.get())
        if abs(readback / watts - 1) > self.HEATER_POWER_TOLERANCE:
            self.heater_resistance_ohm = readback / (full_scale * percent / 100) ** 2
            self._drive_heater(watts)

    def _heater_ohm(self) -> float:
        """The assumed heater resistance, read from the controller's heater setup the first time."""
        if self.heater_resistance_ohm is None:
            self.heater_resistance_ohm = float(self.sample_heater.resistance.get())
        return self.heater_resistance_ohm

    def _drive_heater(self, watts: float) -> tuple[float, float]:
        heater = self.sample_heater
        ranges = sorted(a for a in SAMPLE_HEATER_RANGES_A if a > 0)
        current = float(np.sqrt(watts / self._heater_ohm()))
        fitting = [a for a in ranges if a * self.HEATER_RANGE_HEADROOM >= current]
        if watts > 0 and not fitting:
            raise ValueError(f"{self.name}: a heater power of {watts * 1e6:g} µW needs "
                             f"{current * 1e3:.3g} mA, beyond the largest range "
                             f"({ranges[-1] * 1e3:g} mA) of {heater.full_name}")
        full_scale = fitting[0] if watts > 0 else 0.0
        percent = 100.0 * current / full_scale if full_scale else 0.0
        if full_scale > float(heater.current_range.cache.get(get_if_invalid=False) or 0.0):
            heater.manual_output(percent)  # going up: the lower percentage first
            heater.current_range(full_scale)
        else:
            heater.current_range(full_scale)
            heater.manual_output(percent)
        return full_scale, percent

    def heater_off(self) -> None:
        """Sample heater off (range 0, then output 0); both are tried even if one fails."""
        set_all([(self.sample_heater.current_range, 0.0), (self.sample_heater.manual_output, 0.0)])

    def safe_state(self) -> None:
        """Every heater off: sample heater range 0, warm-up heater off, still output off at 0 %.

        Every step is attempted even if an earlier one fails; the first failure is re-raised.
        """
        steps: list[tuple[Parameter, object]] = [
            (self.sample_heater.current_range, 0.0),
            (self.warmup_heater.enabled, False),
            (self.still_heater.enabled, False),
            (self.still_heater.power_percent, 0),
        ]
        set_all(steps)


__all__ = [
    "LakeShore372", "LakeShore372Channel", "LakeShore372SampleHeater", "LakeShore372StillHeater",
    "LakeShore372WarmupHeater", "decode_reading_status", "format_number",
]
