"""QCoDeS driver for the Keysight N9030B PXA signal analyzer, swept spectrum analysis (SA mode).

Written here rather than subclassed from qcodes' ``KeysightN9030B`` (qcodes 0.58), whose
swept-SA part does not fit this project: its trace is read in binary only (no ASCII path, so
plain pyvisa-sim cannot serve it) through a function bound inside the hard-wired ``sa``
submodule; its init fails with a bare ``AssertionError`` on a frequency option it does not list
(e.g. 550, 50 GHz); it has no noise marker, averaging count or error-queue check; every trace
read sends two extra queries (``:CONFigure?``, ``:SENSe:SWEep:TIME?``); the trace unit is "dB"
for an amplitude in dBm; and ``sweep_time`` is settable without a validator. The parameter
names follow the rest of this project, not qcodes' (``points`` not ``npts``, ``rbw`` not
``res_bw``).

Measurement cycle: set up, :meth:`KeysightN9030B.run_sweep` (single acquisition including
trace averaging, synchronised with ``*OPC?``), then read ``trace`` (``:FETC:SAN1?``, no new
acquisition) and the noise marker (:meth:`KeysightN9030B.measure_noise_density`) from that same
acquisition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Unpack

import numpy as np
import numpy.typing as npt
from pyvisa.util import BINARY_DATATYPES
from qcodes.parameters import Parameter, ParameterWithSetpoints, create_on_off_val_mapping
from qcodes.validators import Arrays, Enum, Ints, Numbers

from instruments._scpi import InstrumentError, set_all
from instruments._swept import SweptAnalyzer, data_format_parser

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

#: Frequency option (in ``*OPT?``) -> highest frequency (Hz) of the PXA (specified range).
FREQUENCY_OPTIONS = {
    "503": 3.6e9,
    "508": 8.4e9,
    "513": 13.6e9,
    "526": 26.5e9,
    "543": 43e9,
    "544": 44e9,
    "550": 50e9,
}
MIN_SPAN_HZ = 10.0
"""Smallest span accepted: span 0 (zero span) would turn the trace into a function of time."""
POINTS_MAX = 20001
RBW_MIN_HZ, RBW_MAX_HZ = 1.0, 8e6
VBW_MIN_HZ, VBW_MAX_HZ = 1.0, 50e6
AVERAGES_MAX = 10000
ATTENUATION_MAX_DB = 70
SAFE_ATTENUATION_DB = 10
"""Input attenuation applied by :meth:`KeysightN9030B.safe_state` (the instrument's preset)."""

#: ``data_format`` value -> ``:FORM:DATA`` argument.
DATA_FORMATS = {"ascii": "ASC", "real32": "REAL,32", "real64": "REAL,64"}
_BINARY_DATATYPES: dict[str, BINARY_DATATYPES] = {"real32": "f", "real64": "d"}

TRACE_QUERY = ":FETC:SAN1?"


def _parse_options(reply: str) -> tuple[str, ...]:
    """``*OPT?`` reply (``"526,B40,EA3"``) -> ``("526", "B40", "EA3")``."""
    return tuple(opt.strip() for opt in reply.strip().strip('"').split(",") if opt.strip())


class KeysightN9030B(SweptAnalyzer):
    """Keysight N9030B PXA signal analyzer in swept spectrum analysis.

    At init the analyzer is put in Signal Analyzer mode and the Swept SA measurement if it is
    not there already (``:INST:SEL SA``, ``:CONF:SAN``, which also restores that measurement's
    defaults), with amplitudes in dBm (``:UNIT:POW DBM``), single acquisitions
    (``:INIT:CONT 0``), and little-endian binary transfers if the data format is binary. The
    frequency range follows the frequency option read from ``*OPT?``.

    Start, stop, center and span are coupled in the instrument: after setting one, the driver
    re-reads the other three.
    """

    default_terminator = "\n"
    error_query = ":SYST:ERR?"
    command_prefix = ":"
    data_formats = DATA_FORMATS

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "start": (0, max(FREQUENCY_OPTIONS.values())), "stop": (0, max(FREQUENCY_OPTIONS.values())),
        "points": (1, POINTS_MAX),
        "rbw": (RBW_MIN_HZ, RBW_MAX_HZ),
        "averages": (1, AVERAGES_MAX),
    }
    """Settable ranges by parameter, known without opening the instrument (the frequencies of
    the widest option; the instrument's own at init)."""

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        super().__init__(name, address, **kwargs)
        options = _parse_options(self.ask("*OPT?"))
        frequency_options = [opt for opt in options if opt in FREQUENCY_OPTIONS]
        if not frequency_options:
            raise InstrumentError(
                f"{self.name}: no known frequency option in *OPT? {options!r}; known: "
                f"{', '.join(FREQUENCY_OPTIONS)}")
        freq_max = max(FREQUENCY_OPTIONS[opt] for opt in frequency_options)
        self.max_frequency = freq_max
        """Highest frequency of this analyzer (Hz), from its frequency option."""

        if self.ask(":INST:SEL?").strip() != "SA":
            self.write(":INST:SEL SA")
        if self.ask(":CONF?").strip() != "SAN":
            self.write(":CONF:SAN")
        self.write(":UNIT:POW DBM")
        self.write(":INIT:CONT 0")

        # Traces first (they need ``points`` only at get time): a tool that walks the
        # parameters in declaration order, reading each and changing the settable ones
        # (``hil profiles check``), then reads them before it changes ``points`` or
        # ``data_format``, which a plain-sim profile's one fixed ASCII trace cannot follow.
        self.frequency_axis: Parameter = self.add_parameter(
            "frequency_axis",
            label="Frequency",
            unit="Hz",
            get_cmd=self._frequency_axis,
            vals=Arrays(shape=(self._points_latest,)),
            snapshot_get=False,
            snapshot_value=False,
        )
        """Frequencies of the trace points: ``points`` values from ``start`` to ``stop`` (read
        from the instrument on each get). Left out of the snapshot: start, stop and points are
        in it, and an array of up to 20001 values is not a setting."""

        self.trace: ParameterWithSetpoints = self.add_parameter(
            "trace",
            label="Spectrum",
            unit="dBm",
            get_cmd=lambda: self.fetch_spectrum()[1],
            vals=Arrays(shape=(self._points_latest,)),
            setpoints=(self.frequency_axis,),
            parameter_class=ParameterWithSetpoints,
        )
        """Trace 1 amplitudes (power in the RBW, dBm) of the last acquisition (starts none; see
        :meth:`run_sweep`)."""

        self.start: Parameter = self.add_parameter(
            "start",
            label="Start frequency",
            unit="Hz",
            get_cmd=":SENS:FREQ:STAR?",
            get_parser=float,
            set_cmd=self._frequency_setter(":SENS:FREQ:STAR", "start"),
            vals=Numbers(0, freq_max - MIN_SPAN_HZ),
        )
        """Start frequency (sent with 1 Hz resolution)."""

        self.stop: Parameter = self.add_parameter(
            "stop",
            label="Stop frequency",
            unit="Hz",
            get_cmd=":SENS:FREQ:STOP?",
            get_parser=float,
            set_cmd=self._frequency_setter(":SENS:FREQ:STOP", "stop"),
            vals=Numbers(MIN_SPAN_HZ, freq_max),
        )
        """Stop frequency (sent with 1 Hz resolution)."""

        self.center: Parameter = self.add_parameter(
            "center",
            label="Center frequency",
            unit="Hz",
            get_cmd=":SENS:FREQ:CENT?",
            get_parser=float,
            set_cmd=self._frequency_setter(":SENS:FREQ:CENT", "center"),
            vals=Numbers(MIN_SPAN_HZ / 2, freq_max - MIN_SPAN_HZ / 2),
        )
        """Center frequency; the span is kept where the range allows."""

        self.span: Parameter = self.add_parameter(
            "span",
            label="Frequency span",
            unit="Hz",
            get_cmd=":SENS:FREQ:SPAN?",
            get_parser=float,
            set_cmd=self._frequency_setter(":SENS:FREQ:SPAN", "span"),
            vals=Numbers(MIN_SPAN_HZ, freq_max),
        )
        """Span around ``center`` (no zero span: the trace stays a spectrum)."""

        self._frequency_parameters = (self.start, self.stop, self.center, self.span)

        self.points: Parameter = self.add_parameter(
            "points",
            label="Points",
            get_cmd=":SENS:SWE:POIN?",
            get_parser=int,
            set_cmd=":SENS:SWE:POIN {:d}",
            vals=Ints(1, POINTS_MAX),
        )
        """Number of trace points per sweep."""

        self.rbw: Parameter = self.add_parameter(
            "rbw",
            label="Resolution bandwidth",
            unit="Hz",
            get_cmd=":SENS:BAND:RES?",
            get_parser=float,
            set_cmd=":SENS:BAND:RES {:.10g}",
            vals=Numbers(RBW_MIN_HZ, RBW_MAX_HZ),
        )
        """Resolution bandwidth (-3 dB); the instrument rounds to its allowed values."""

        self.vbw: Parameter = self.add_parameter(
            "vbw",
            label="Video bandwidth",
            unit="Hz",
            get_cmd=":SENS:BAND:VID?",
            get_parser=float,
            set_cmd=":SENS:BAND:VID {:.10g}",
            vals=Numbers(VBW_MIN_HZ, VBW_MAX_HZ),
        )
        """Video bandwidth; the instrument rounds to its allowed values."""

        self.averages: Parameter = self.add_parameter(
            "averages",
            label="Averages",
            get_cmd=":SENS:AVER:COUN?",
            get_parser=int,
            set_cmd=":SENS:AVER:COUN {:d}",
            vals=Ints(1, AVERAGES_MAX),
        )
        """Number of sweeps averaged (or held) into trace 1 unless ``trace_type`` is ``write``."""

        self.trace_type: Parameter = self.add_parameter(
            "trace_type",
            label="Trace 1 type",
            get_cmd=":TRAC1:TYPE?",
            set_cmd=":TRAC1:TYPE {}",
            val_mapping={"write": "WRIT", "average": "AVER", "max_hold": "MAXH",
                         "min_hold": "MINH"},
        )
        """What trace 1 shows: the last sweep (``write``, clear-write), the average of
        ``averages`` sweeps (``average``), or the max/min hold over ``averages`` sweeps."""

        self.average_type: Parameter = self.add_parameter(
            "average_type",
            label="Average type",
            get_cmd=":SENS:AVER:TYPE?",
            get_parser=str.strip,
            set_cmd=":SENS:AVER:TYPE {}",
            vals=Enum("LOG", "RMS", "SCAL"),
        )
        """Scale averaging and the VBW filter work on: ``LOG`` (dB), ``RMS`` (power; the right one
        for noise) or ``SCAL`` (voltage). The noise marker corrects for it."""

        self.detector: Parameter = self.add_parameter(
            "detector",
            label="Detector",
            get_cmd=":SENS:DET:TRAC?",
            get_parser=str.strip,
            set_cmd=":SENS:DET:TRAC {}",
            vals=Enum("NORM", "AVER", "POS", "SAMP", "NEG"),
        )
        """Trace 1 detector: normal, average (for noise), positive/negative peak, sample."""

        self.attenuation: Parameter = self.add_parameter(
            "attenuation",
            label="Input attenuation",
            unit="dB",
            get_cmd=":SENS:POW:ATT?",
            get_parser=lambda reply: int(round(float(reply))),
            set_cmd=":SENS:POW:ATT {:d}",
            vals=Ints(0, ATTENUATION_MAX_DB),
        )
        """Mechanical input attenuation (the PXA steps it by 2 dB)."""

        self.preamp: Parameter = self.add_parameter(
            "preamp",
            label="Preamplifier",
            get_cmd=":SENS:POW:GAIN:STAT?",
            set_cmd=":SENS:POW:GAIN:STAT {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Internal preamplifier on/off (if the option is installed)."""

        self.sweep_time: Parameter = self.add_parameter(
            "sweep_time",
            label="Sweep time",
            unit="s",
            get_cmd=":SENS:SWE:TIME?",
            get_parser=float,
            vals=Numbers(0),
        )
        """Duration of one sweep as the instrument computes it (read-only here)."""

        self.data_format: Parameter = self.add_parameter(
            "data_format",
            label="Trace transfer format",
            get_cmd=":FORM:DATA?",
            get_parser=data_format_parser(DATA_FORMATS, ":FORM:DATA?"),
            set_cmd=self._set_data_format,
            vals=Enum(*DATA_FORMATS),
        )
        """How traces cross the wire: ``ascii`` (what plain pyvisa-sim serves), ``real32`` or
        ``real64`` (IEEE block of little-endian floats; ``:FORM:BORD SWAP`` is sent with it)."""

        self.marker_mode: Parameter = self.add_parameter(
            "marker_mode",
            label="Marker 1 mode",
            get_cmd=":CALC:MARK1:MODE?",
            set_cmd=":CALC:MARK1:MODE {}",
            val_mapping={"normal": "POS", "delta": "DELT", "fixed": "FIX", "off": "OFF"},
        )
        """Marker 1 mode: ``normal`` (reads the trace at its frequency), ``delta``, ``fixed``,
        ``off``."""

        self.marker_function: Parameter = self.add_parameter(
            "marker_function",
            label="Marker 1 function",
            get_cmd=":CALC:MARK1:FUNC?",
            set_cmd=":CALC:MARK1:FUNC {}",
            val_mapping={"off": "OFF", "noise": "NOIS", "band_power": "BPOW",
                         "band_density": "BDEN"},
        )
        """Marker 1 function: ``noise`` makes its reading a noise density in dBm/Hz."""

        self.noise_marker_frequency: Parameter = self.add_parameter(
            "noise_marker_frequency",
            label="Marker 1 frequency",
            unit="Hz",
            get_cmd=":CALC:MARK1:X?",
            get_parser=float,
            set_cmd=":CALC:MARK1:X {:.0f}",
            vals=Numbers(0, freq_max),
        )
        """Frequency marker 1 reads at (1 Hz resolution)."""

        self.noise_density: Parameter = self.add_parameter(
            "noise_density",
            label="Noise density",
            unit="dBm/Hz",
            get_cmd=":CALC:MARK1:Y?",
            get_parser=float,
            vals=Numbers(),
            snapshot_get=False,
        )
        """Marker 1 reading: the noise density in dBm/Hz when ``marker_function`` is ``noise``
        (see :meth:`measure_noise_density`). A measurement, not a setting: the snapshot does not
        read it (with the marker off there is no reading to take)."""

        if self.data_format.get() != "ascii":
            self.write(":FORM:BORD SWAP")

        self.connect_message()

    # --- data --------------------------------------------------------------------------------

    def fetch_spectrum(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Frequencies (Hz) and amplitudes (dBm) of trace 1 from the last acquisition.

        ``:FETC:SAN1?`` returns (frequency, amplitude) pairs; nothing is acquired.
        """
        data_format = self.data_format.get_latest()
        if data_format == "ascii":
            reply = self.ask(TRACE_QUERY)
            try:
                values = np.array([float(v) for v in reply.split(",")], dtype=np.float64)
            except ValueError:
                raise InstrumentError(f"{self.name}: {TRACE_QUERY!r} -> unparsable ASCII trace "
                                      f"{reply[:60]!r}") from None
        else:
            values = np.asarray(self.visa_handle.query_binary_values(
                TRACE_QUERY, datatype=_BINARY_DATATYPES[data_format], is_big_endian=False,
                container=np.ndarray), dtype=np.float64)
        points = self.points.get_latest()
        if values.size != 2 * points:
            raise InstrumentError(f"{self.name}: {TRACE_QUERY!r} -> {values.size} values, "
                                  f"expected 2 x {points} points (frequency, amplitude)")
        return values[0::2], values[1::2]

    # --- acquisition -------------------------------------------------------------------------

    def run_sweep(self, timeout: float | None = None) -> None:
        """Take one acquisition (``averages`` sweeps unless ``trace_type`` is ``write``), wait.

        ``:INIT:IMM`` then ``*OPC?``, which replies once the acquisition is complete; the VISA
        timeout is raised for that wait to ``timeout`` seconds, by default the sweeps' duration
        plus the usual timeout.
        """
        if timeout is None:
            sweeps = 1 if self.trace_type.get() == "write" else self.averages.get()
            timeout = sweeps * self.sweep_time.get() + (self.timeout.get() or 0.0)
        self.write(":INIT:IMM")
        with self.timeout.set_to(timeout):
            reply = self.ask("*OPC?")
        if reply.strip().lstrip("+") != "1":
            raise InstrumentError(f"{self.name}: '*OPC?' after the sweep -> {reply!r}, expected '1'")

    def enable_noise_marker(self) -> None:
        """Marker 1 on (normal) with the noise function: it then reads dBm/Hz."""
        self.marker_mode.set("normal")
        self.marker_function.set("noise")

    def measure_noise_density(self, frequency: float) -> float:
        """Noise density (dBm/Hz) of the last acquisition at ``frequency`` (Hz), via marker 1.

        The marker reads the current trace; call :meth:`run_sweep` first for a fresh one. A
        frequency outside the analyzer's range is refused before anything is sent.
        """
        self.noise_marker_frequency.validate(frequency)
        self.enable_noise_marker()
        self.noise_marker_frequency.set(frequency)
        return self.noise_density.get()

    # --- safety ------------------------------------------------------------------------------

    def use_noise_averaging(self) -> None:
        """Noise-friendly settings: power (RMS) averaging of an averaged trace, average detector."""
        self.trace_type("average")
        self.average_type("RMS")
        self.detector("AVER")

    def safe_state(self) -> None:
        """Protect the input: preamplifier off, input attenuation to 10 dB.

        An analyzer emits nothing, so there is nothing to switch off. What can hurt it is a
        strong signal reaching the first mixer with the preamp on or the attenuation at 0 dB
        (e.g. when a pump tone is switched onto a line set up for noise measurements). Both
        steps are attempted even if the first one fails; the first failure is re-raised.
        """
        set_all([(self.preamp, False), (self.attenuation, SAFE_ATTENUATION_DB)])
