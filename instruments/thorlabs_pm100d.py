"""QCoDeS driver for the Thorlabs PM100D optical power meter (USBTMC SCPI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Unpack

from qcodes.parameters import Parameter, create_on_off_val_mapping
from qcodes.validators import Ints, Numbers

from instruments._scpi import ScpiInstrument

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

_NM_PER_M = 1e9  # exact in binary, so nm <-> m conversions round once
_AVERAGES = (1, 10000)  # samples per reading the meter accepts


class ThorlabsPM100D(ScpiInstrument):
    """Thorlabs PM100D console with a photodiode or thermal sensor head.

    At init the power unit is set to W, so ``MEAS:POW?`` replies in watts whatever the front
    panel shows. The correction-wavelength range is read from the instrument, since it is that of
    the sensor head plugged in.
    """

    default_terminator = "\n"
    error_query = "SYST:ERR?"

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"averages": _AVERAGES}
    """Settable ranges by parameter, known without opening the instrument."""

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        super().__init__(name, address, **kwargs)
        self.write("SENS:POW:DC:UNIT W")
        wav_min = float(self.ask("SENS:CORR:WAV? MIN")) / _NM_PER_M
        wav_max = float(self.ask("SENS:CORR:WAV? MAX")) / _NM_PER_M

        self.wavelength: Parameter = self.add_parameter(
            "wavelength",
            label="Correction wavelength",
            unit="m",
            get_cmd="SENS:CORR:WAV?",
            get_parser=lambda reply: float(reply) / _NM_PER_M,
            set_cmd="SENS:CORR:WAV {:.1f}",
            set_parser=lambda metres: metres * _NM_PER_M,
            vals=Numbers(wav_min, wav_max),
        )
        """Wavelength whose sensor responsivity converts photocurrent to power (sent in nm)."""

        self.power: Parameter = self.add_parameter(
            "power",
            label="Optical power",
            unit="W",
            get_cmd="MEAS:POW?",
            get_parser=float,
            vals=Numbers(),
        )
        """One power measurement (averaged over ``averages`` samples); may be slightly
        negative after zeroing."""

        self.auto_range: Parameter = self.add_parameter(
            "auto_range",
            label="Auto range",
            get_cmd="SENS:POW:RANG:AUTO?",
            set_cmd="SENS:POW:RANG:AUTO {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Automatic choice of the power range."""

        self.averages: Parameter = self.add_parameter(
            "averages",
            label="Averages",
            get_cmd="SENS:AVER:COUN?",
            get_parser=int,
            set_cmd="SENS:AVER:COUN {}",
            vals=Ints(*_AVERAGES),
        )
        """Number of samples averaged per measurement (more samples: less noise, slower reads)."""

        self.connect_message()

    def safe_state(self) -> None:
        """Turn auto range on.

        A power meter emits nothing, so there is nothing to switch off; the one unsafe state is
        being left on a fixed range too small for the light that arrives next, where it
        saturates and reads wrong. Auto range avoids that.
        """
        self.auto_range.set(True)
