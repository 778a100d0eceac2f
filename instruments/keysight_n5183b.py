"""QCoDeS driver for the Keysight N5183B MXG X-series microwave analog signal generator.

Built on qcodes' own ``KeysightN5183B`` (frequency, power, phase, reference auto, RF output and,
with option UNW, pulse modulation) and adds what the lab needs on top: the modulation master
switch, ALC, the user power limit, pulse modulation with option UNU as well, a phase range, the
SCPI error-queue check after every write (from :class:`~instruments._scpi.ScpiInstrument`) and
:meth:`KeysightN5183B.safe_state`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Unpack

from qcodes.instrument_drivers.Keysight import KeysightN5183B as _QcodesN5183B
from qcodes.parameters import Parameter, ParameterBase, create_on_off_val_mapping
from qcodes.validators import Numbers

from instruments._scpi import ScpiInstrument, add_watts_parameter, set_all

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

POWER_MIN_DBM = -20.0
"""Lowest power qcodes allows the N5183B (the specified range without the step attenuator)."""
POWER_MAX_DBM = 19.0
"""Highest power qcodes allows the N5183B."""

PULSE_OPTIONS = ("UNU", "UNW")
"""``*OPT?`` codes that bring pulse modulation: UNU standard pulse, UNW narrow pulse."""


def parse_options(reply: str) -> frozenset[str]:
    """Option codes of an ``*OPT?`` reply such as ``"1E1,1EA,520,UNW"`` (quotes optional)."""
    return frozenset(code.strip() for code in reply.strip().strip('"').split(",") if code.strip())


class KeysightN5183B(ScpiInstrument, _QcodesN5183B):
    """Keysight N5183B MXG microwave source (9 kHz to 20, 31.8 or 40 GHz by frequency option).

    The qcodes base reads ``*OPT?`` at init and sets the frequency range from the frequency option
    (``520``: 9 kHz..20 GHz); it raises if the reply names no frequency option. Power is in dBm
    on the wire and in the parameters (-20..+19 dBm, qcodes' N5183B range). Every write is
    followed by ``SYST:ERR?`` reads until ``+0,"No error"``; an entry raises
    :class:`~instruments._scpi.InstrumentError` naming instrument, command and message.

    Inherited parameters: ``frequency`` (Hz, ``SOUR:FREQ``), ``power`` (dBm, ``SOUR:POW``),
    ``phase_offset`` (rad, ``SOUR:PHAS``), ``auto_freq_ref`` (``:ROSC:SOUR:AUTO``),
    ``rf_output`` (``OUTP:STAT``) and, with option UNW, ``pulse_modulation`` (``PULM:STAT``) and
    ``pulse_modulation_source`` (``PULM:SOUR``, ``internal``/``external``).
    """

    default_terminator = "\n"
    error_query = "SYST:ERR?"

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        # The qcodes base types ``address`` as str but passes it on to VisaInstrument, which
        # takes None when a ``resource`` is given.
        super().__init__(name, address, **kwargs)  # type: ignore[arg-type]
        self.options: frozenset[str] = parse_options(self._options)
        """Option codes from ``*OPT?`` (e.g. ``{"1E1", "1EA", "520", "UNW"}``)."""

        self.phase_offset.vals = Numbers(-math.pi, math.pi)

        self.reference_source: Parameter = self.add_parameter(
            "reference_source",
            label="Reference oscillator in use",
            get_cmd=":ROSC:SOUR?",
            val_mapping={"internal": "INT", "external": "EXT"},
        )
        """Reference the synthesizer is locked to now: ``internal`` or ``external`` (read only)."""

        self.modulation_output: Parameter = self.add_parameter(
            "modulation_output",
            label="Modulation master switch",
            get_cmd="OUTP:MOD?",
            set_cmd="OUTP:MOD {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Master switch of all modulations (pulse included): off gives a clean CW tone."""

        self.alc: Parameter = self.add_parameter(
            "alc",
            label="Automatic level control",
            get_cmd="SOUR:POW:ALC?",
            set_cmd="SOUR:POW:ALC {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Automatic level control loop; off for narrow pulses, where it cannot settle."""

        self.power_w: Parameter = add_watts_parameter(
            self, "power_w", self.power, label="Power", low_dbm=POWER_MIN_DBM,
            high_dbm=POWER_MAX_DBM)
        """Output power in W (the MicrowaveSource role's unit), through ``power`` (dBm), so
        station limits on ``power`` hold here too."""

        self.user_power_limit: Parameter = self.add_parameter(
            "user_power_limit",
            label="User maximum power",
            unit="dBm",
            get_cmd="SOUR:POW:USER:MAX?",
            get_parser=float,
            set_cmd="SOUR:POW:USER:MAX {:.2f}",
            vals=Numbers(POWER_MIN_DBM, POWER_MAX_DBM),
        )
        """Power the instrument itself refuses to exceed while ``user_power_limit_enabled``."""

        self.user_power_limit_enabled: Parameter = self.add_parameter(
            "user_power_limit_enabled",
            label="User maximum power enabled",
            get_cmd="SOUR:POW:USER:ENAB?",
            set_cmd="SOUR:POW:USER:ENAB {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Enforce ``user_power_limit`` in the instrument (a guard that holds whatever the client)."""

        if "pulse_modulation" not in self.parameters and self.options & set(PULSE_OPTIONS):
            # The qcodes base adds pulse modulation only for UNW; UNU has the same commands.
            self.pulse_modulation: Parameter = self.add_parameter(
                "pulse_modulation",
                label="Pulse modulation",
                get_cmd="PULM:STAT?",
                set_cmd="PULM:STAT {}",
                val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
            )
            """Pulse modulation on/off (takes effect while ``modulation_output`` is on)."""

            self.pulse_modulation_source: Parameter = self.add_parameter(
                "pulse_modulation_source",
                label="Pulse modulation source",
                get_cmd="PULM:SOUR?",
                set_cmd="PULM:SOUR {}",
                val_mapping={"internal": "INT", "external": "EXT"},
            )
            """Pulse source: ``internal`` generator or ``external`` (PULSE IN connector)."""

    @property
    def has_pulse_modulation(self) -> bool:
        """True when an option (UNU or UNW) brings pulse modulation and its parameters exist."""
        return "pulse_modulation" in self.parameters

    def safe_state(self) -> None:
        """No microwaves out: RF output off, then modulation (pulse, master switch) off.

        Every step is attempted even if an earlier one fails; the first failure is re-raised.
        """
        steps: list[tuple[ParameterBase, bool]] = [(self.rf_output, False)]
        if self.has_pulse_modulation:
            steps.append((self.parameters["pulse_modulation"], False))
        steps.append((self.modulation_output, False))
        set_all(steps)
