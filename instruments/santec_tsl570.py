"""QCoDeS driver for the Santec TSL-570 tunable laser (SCPI mode, Legacy command code)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Unpack

from qcodes.parameters import Parameter, create_on_off_val_mapping
from qcodes.validators import Numbers, Strings

from instruments._scpi import ScpiInstrument, add_watts_parameter, dbm_to_w, set_all
from instruments._scpi import w_to_dbm as w_to_dbm  # imported from here by users of this driver

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

_NM_PER_M = 1e9  # exact in binary, so nm <-> m conversions round once
POWER_MIN_DBM = -15.0
POWER_MAX_DBM = 13.0



class SantecTSL570(ScpiInstrument):
    """Santec TSL-570 tunable laser.

    At init the laser is put in Legacy command code (wavelength in nm, plain numbers) with power
    in dBm, so the units on the wire do not depend on how the front panel was left. The
    wavelength range is read from the instrument, since it depends on the band option.
    """

    default_terminator = "\r"
    error_query = ":SYST:ERR?"

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "wavelength": (1480e-9, 1640e-9),  # the widest band option; the instrument's own at init
        "power_dbm": (POWER_MIN_DBM, POWER_MAX_DBM),
        "power": (dbm_to_w(POWER_MIN_DBM), dbm_to_w(POWER_MAX_DBM)),
    }
    """Settable ranges by parameter, known without opening the instrument (SI units)."""

    wavelength_step_m: ClassVar[float] = 0.1e-12
    """The finest wavelength step the laser takes reliably (0.1 pm): its tuning grid."""

    power_step_db: ClassVar[float] = 0.01
    """The output power's setting resolution (dB): ``power`` is sent rounded to it."""

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        super().__init__(name, address, **kwargs)
        self.write(":SYST:COMM:COD 0")
        self.write(":POW:UNIT 0")
        wav_min = float(self.ask(":WAV? MIN")) / _NM_PER_M
        wav_max = float(self.ask(":WAV? MAX")) / _NM_PER_M

        self.wavelength: Parameter = self.add_parameter(
            "wavelength",
            label="Wavelength",
            unit="m",
            get_cmd=":WAV?",
            get_parser=lambda reply: float(reply) / _NM_PER_M,
            set_cmd=":WAV {:.4f}",
            set_parser=lambda metres: metres * _NM_PER_M,
            vals=Numbers(wav_min, wav_max),
        )
        """Output wavelength in vacuum (sent in nm with 0.1 pm resolution)."""

        self.power_dbm: Parameter = self.add_parameter(
            "power_dbm",
            label="Output power",
            unit="dBm",
            get_cmd=":POW?",
            get_parser=float,
            set_cmd=":POW {:.2f}",
            vals=Numbers(POWER_MIN_DBM, POWER_MAX_DBM),
        )
        """Output power set point in dBm (0.01 dB resolution)."""

        self.power: Parameter = add_watts_parameter(
            self, "power", self.power_dbm, label="Output power", low_dbm=POWER_MIN_DBM,
            high_dbm=POWER_MAX_DBM)
        """Output power set point in W, through ``power_dbm`` so station limits on it hold here too."""

        self.output: Parameter = self.add_parameter(
            "output",
            label="Laser diode output",
            get_cmd=":POW:STAT?",
            set_cmd=":POW:STAT {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Laser diode current on/off."""

        self.shutter_closed: Parameter = self.add_parameter(
            "shutter_closed",
            label="Shutter closed",
            get_cmd=":POW:SHUT?",
            set_cmd=":POW:SHUT {}",
            val_mapping={True: 1, False: 0},
        )
        """Internal shutter: True = closed (wire ``1``), False = open (wire ``0``)."""

        self.alerts: Parameter = self.add_parameter(
            "alerts",
            label="Alerts",
            get_cmd=":SYST:ALER?",
            get_parser=str.strip,
            vals=Strings(),
        )
        """Alert queue text: ``No alerts.`` when clean, else e.g. ``No07.`` (interlock)."""

        self.connect_message()

    def enable_output(self) -> None:
        """Emit light: shutter open, then laser diode on (a safe state leaves both off)."""
        self.shutter_closed(False)
        self.output(True)

    def safe_state(self) -> None:
        """Stop emitting: laser diode off, then shutter closed.

        Both steps are attempted even if the first one fails; the first failure is re-raised.
        """
        set_all([(self.output, False), (self.shutter_closed, True)])
