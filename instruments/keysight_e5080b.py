"""QCoDeS driver for the Keysight E5080B ENA vector network analyzer (2-port, channel 1).

The driver works on channel 1 and its measurement 1 (the SCPI commands leave both numeric
suffixes out, which means 1): one S-parameter at a time, selected with ``s_parameter``. A
measurement is a single sweep, synchronised with ``*OPC?`` (:meth:`KeysightE5080B.run_sweep`),
then a read of the complex trace (``CALC:MEAS:DATA:SDAT?``, re/im pairs) in ASCII or in binary
(IEEE 488.2 block of little-endian floats), as ``data_format`` says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Unpack

import numpy as np
import numpy.typing as npt
from pyvisa.util import BINARY_DATATYPES
from qcodes.parameters import Parameter, ParameterWithSetpoints, create_on_off_val_mapping
from qcodes.validators import Arrays, Enum, Ints, Numbers

from instruments._scpi import InstrumentError, add_watts_parameter, dbm_to_w
from instruments._swept import SweptAnalyzer, data_format_parser

if TYPE_CHECKING:
    from qcodes.instrument import VisaInstrumentKWArgs

POWER_MIN_DBM = -100.0
POWER_MAX_DBM = 20.0
POINTS_MAX = 100003
IF_BANDWIDTH_MIN_HZ = 1.0
IF_BANDWIDTH_MAX_HZ = 15e6
AVERAGES_MAX = 65536
S_PARAMETERS = ("S11", "S12", "S21", "S22")

#: ``data_format`` value -> ``FORM:DATA`` argument (the short form the instrument replies with).
DATA_FORMATS = {"ascii": "ASC,0", "real32": "REAL,32", "real64": "REAL,64"}
_BINARY_DATATYPES: dict[str, BINARY_DATATYPES] = {"real32": "f", "real64": "d"}

TRACE_QUERY = "CALC:MEAS:DATA:SDAT?"



class KeysightE5080B(SweptAnalyzer):
    """Keysight E5080B ENA vector network analyzer.

    Frequencies are in Hz; the settable range is read from the instrument at init
    (``SYST:CAP:FREQ:MIN?`` / ``MAX?``), since it depends on the frequency option (E5080B models
    reach from 4.5 to 53 GHz; the sim profile is the 20 GHz one, 9 kHz to 20 GHz). Start, stop,
    center and span are coupled in the instrument: after setting one, the driver re-reads the
    other three.

    At init the binary byte order is set to little-endian (``FORM:BORD SWAP``) if the data format
    is binary, and the data format is read into ``data_format``'s cache; change it through
    ``data_format`` only, since trace reads decode by that cache.

    A VNA drives the cryostat's microwave line: :meth:`safe_state` switches its RF power off.
    """

    default_terminator = "\n"
    error_query = "SYST:ERR?"
    data_formats = DATA_FORMATS

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "start": (9e3, 53e9), "stop": (9e3, 53e9),  # the family; the option's own at init
        "points": (1, POINTS_MAX),
        "if_bandwidth": (IF_BANDWIDTH_MIN_HZ, IF_BANDWIDTH_MAX_HZ),
        "power_dbm": (POWER_MIN_DBM, POWER_MAX_DBM),
        "power": (dbm_to_w(POWER_MIN_DBM), dbm_to_w(POWER_MAX_DBM)),
        "averages": (1, AVERAGES_MAX),
    }
    """Settable ranges by parameter, known without opening the instrument (SI units)."""

    def __init__(self, name: str, address: str | None = None,
                 **kwargs: Unpack[VisaInstrumentKWArgs]) -> None:
        super().__init__(name, address, **kwargs)
        freq_min = float(self.ask("SYST:CAP:FREQ:MIN?"))
        freq_max = float(self.ask("SYST:CAP:FREQ:MAX?"))

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
        """Frequencies of the sweep points: ``points`` values from ``start`` to ``stop`` (read
        from the instrument on each get). Left out of the snapshot: start, stop and points are
        in it, and an array of up to 100003 values is not a setting."""

        self.trace: ParameterWithSetpoints = self.add_parameter(
            "trace",
            label="S-parameter",
            get_cmd=self.fetch_trace,
            vals=Arrays(shape=(self._points_latest,), valid_types=(np.complexfloating,)),
            setpoints=(self.frequency_axis,),
            parameter_class=ParameterWithSetpoints,
        )
        """Complex S-parameter of the last sweep (no new sweep; see :meth:`run_sweep`)."""

        self.magnitude: ParameterWithSetpoints = self.add_parameter(
            "magnitude",
            label="|S|",
            unit="dB",
            get_cmd=lambda: _magnitude_db(self.fetch_trace()),
            vals=Arrays(shape=(self._points_latest,)),
            setpoints=(self.frequency_axis,),
            parameter_class=ParameterWithSetpoints,
        )
        """Magnitude of the last sweep's S-parameter, 20 log10 |S| (reads the trace again)."""

        self.phase: ParameterWithSetpoints = self.add_parameter(
            "phase",
            label="arg S",
            unit="rad",
            get_cmd=lambda: np.angle(self.fetch_trace()),
            vals=Arrays(shape=(self._points_latest,)),
            setpoints=(self.frequency_axis,),
            parameter_class=ParameterWithSetpoints,
        )
        """Phase of the last sweep's S-parameter in (-pi, pi] (reads the trace again)."""

        self.start: Parameter = self.add_parameter(
            "start",
            label="Start frequency",
            unit="Hz",
            get_cmd="SENS:FREQ:STAR?",
            get_parser=float,
            set_cmd=self._frequency_setter("SENS:FREQ:STAR", "start"),
            vals=Numbers(freq_min, freq_max),
        )
        """Sweep start frequency (sent with 1 Hz resolution)."""

        self.stop: Parameter = self.add_parameter(
            "stop",
            label="Stop frequency",
            unit="Hz",
            get_cmd="SENS:FREQ:STOP?",
            get_parser=float,
            set_cmd=self._frequency_setter("SENS:FREQ:STOP", "stop"),
            vals=Numbers(freq_min, freq_max),
        )
        """Sweep stop frequency (sent with 1 Hz resolution)."""

        self.center: Parameter = self.add_parameter(
            "center",
            label="Center frequency",
            unit="Hz",
            get_cmd="SENS:FREQ:CENT?",
            get_parser=float,
            set_cmd=self._frequency_setter("SENS:FREQ:CENT", "center"),
            vals=Numbers(freq_min, freq_max),
        )
        """Sweep center frequency; the span is kept where the range allows."""

        self.span: Parameter = self.add_parameter(
            "span",
            label="Frequency span",
            unit="Hz",
            get_cmd="SENS:FREQ:SPAN?",
            get_parser=float,
            set_cmd=self._frequency_setter("SENS:FREQ:SPAN", "span"),
            vals=Numbers(0, freq_max - freq_min),
        )
        """Sweep span around ``center``."""

        self._frequency_parameters = (self.start, self.stop, self.center, self.span)

        self.points: Parameter = self.add_parameter(
            "points",
            label="Points",
            get_cmd="SENS:SWE:POIN?",
            get_parser=int,
            set_cmd="SENS:SWE:POIN {:d}",
            vals=Ints(1, POINTS_MAX),
        )
        """Number of frequency points per sweep."""

        self.if_bandwidth: Parameter = self.add_parameter(
            "if_bandwidth",
            label="IF bandwidth",
            unit="Hz",
            get_cmd="SENS:BWID?",
            get_parser=float,
            set_cmd="SENS:BWID {:.10g}",
            vals=Numbers(IF_BANDWIDTH_MIN_HZ, IF_BANDWIDTH_MAX_HZ),
        )
        """Receiver IF bandwidth. The instrument rounds up to its next allowed value
        (1, 1.5, 2, 3, 5, 7 x 10^n); get() reads what it chose."""

        self.power_dbm: Parameter = self.add_parameter(
            "power_dbm",
            label="Source power",
            unit="dBm",
            get_cmd="SOUR:POW?",
            get_parser=float,
            set_cmd="SOUR:POW {:.2f}",
            vals=Numbers(POWER_MIN_DBM, POWER_MAX_DBM),
        )
        """Source power at the test port in dBm (0.01 dB resolution)."""

        self.power: Parameter = add_watts_parameter(
            self, "power", self.power_dbm, label="Source power", low_dbm=POWER_MIN_DBM,
            high_dbm=POWER_MAX_DBM)
        """Source power in W, through ``power_dbm`` so station limits on it hold here too."""

        self.rf_output: Parameter = self.add_parameter(
            "rf_output",
            label="RF power",
            get_cmd="OUTP?",
            set_cmd="OUTP {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """RF source power on/off (all ports)."""

        self.s_parameter: Parameter = self.add_parameter(
            "s_parameter",
            label="S-parameter",
            get_cmd="CALC:MEAS:PAR?",
            get_parser=lambda reply: reply.strip().strip('"'),
            set_cmd='CALC:MEAS:PAR "{}"',
            vals=Enum(*S_PARAMETERS),
        )
        """S-parameter of measurement 1: ``S11``, ``S12``, ``S21`` or ``S22`` (sent quoted, as
        the instrument's string argument; the reply's quotes are stripped)."""

        self.averaging: Parameter = self.add_parameter(
            "averaging",
            label="Sweep averaging",
            get_cmd="SENS:AVER?",
            set_cmd="SENS:AVER {}",
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
        )
        """Sweep-to-sweep averaging on/off; :meth:`run_sweep` then sweeps ``averages`` times."""

        self.averages: Parameter = self.add_parameter(
            "averages",
            label="Averages",
            get_cmd="SENS:AVER:COUN?",
            get_parser=int,
            set_cmd="SENS:AVER:COUN {:d}",
            vals=Ints(1, AVERAGES_MAX),
        )
        """Number of sweeps averaged when ``averaging`` is on."""

        self.sweep_time: Parameter = self.add_parameter(
            "sweep_time",
            label="Sweep time",
            unit="s",
            get_cmd="SENS:SWE:TIME?",
            get_parser=float,
            vals=Numbers(0),
        )
        """Duration of one sweep as the instrument computes it (read-only here)."""

        self.data_format: Parameter = self.add_parameter(
            "data_format",
            label="Trace transfer format",
            get_cmd="FORM:DATA?",
            get_parser=data_format_parser(DATA_FORMATS, "FORM:DATA?"),
            set_cmd=self._set_data_format,
            vals=Enum(*DATA_FORMATS),
        )
        """How traces cross the wire: ``ascii`` (slow, what plain pyvisa-sim serves), ``real32``
        or ``real64`` (IEEE block of little-endian floats; ``FORM:BORD SWAP`` is sent with it)."""

        if self.data_format.get() != "ascii":
            self.write("FORM:BORD SWAP")

        self.connect_message()

    # --- data --------------------------------------------------------------------------------

    def fetch_trace(self) -> npt.NDArray[np.complex128]:
        """Complex S-parameter of the last sweep, one value per point (starts no sweep)."""
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
                                  f"expected 2 x {points} points (re, im)")
        return values[0::2] + 1j * values[1::2]

    # --- sweeping ----------------------------------------------------------------------------

    def run_sweep(self, timeout: float | None = None) -> None:
        """Take one complete measurement and wait for it, then leave the sweep on hold.

        Without averaging: one sweep (``SENS:SWE:MODE SING``). With averaging: the average is
        restarted and ``averages`` sweeps are taken (``SENS:SWE:MODE GRO``). Both end with
        ``*OPC?``, which replies once the sweeps are done; the VISA timeout is raised for that
        wait to ``timeout`` seconds, by default the sweeps' duration plus the usual timeout.
        """
        sweeps = self.averages.get() if self.averaging.get() else 1
        if timeout is None:
            timeout = sweeps * self.sweep_time.get() + (self.timeout.get() or 0.0)
        if sweeps > 1:
            self.write("SENS:AVER:CLE")
            self.write(f"SENS:SWE:GRO:COUN {sweeps:d}")
            self.write("SENS:SWE:MODE GRO")
        else:
            self.write("SENS:SWE:MODE SING")
        with self.timeout.set_to(timeout):
            reply = self.ask("*OPC?")
        if reply.strip().lstrip("+") != "1":
            raise InstrumentError(f"{self.name}: '*OPC?' after the sweep -> {reply!r}, expected '1'")

    # --- output ------------------------------------------------------------------------------

    def enable_output(self) -> None:
        """Switch the RF source power on (the safe state leaves it off)."""
        self.rf_output.set(True)

    def safe_state(self) -> None:
        """RF power off: nothing reaches the cryostat's microwave line from this instrument."""
        self.rf_output.set(False)


def _magnitude_db(trace: npt.NDArray[np.complex128]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return 20 * np.log10(np.abs(trace))
