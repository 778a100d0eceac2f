"""Keysight E5080B VNA driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.keysight_e5080b import KeysightE5080B

ADDRESS = "TCPIP0::192.168.1.80::hislip0::INSTR"
NO_ERROR = '+0,"No error"'
OUT_OF_RANGE = '-222,"Data out of range"'
IDN = "Keysight Technologies,E5080B,MY59200001,A.15.20.07"

write = scpi_write  # the E5080B's error query and empty-queue reply are scpi_write's defaults

INIT: list[Exchange] = [
    ("SYST:ERR?", NO_ERROR),  # at connect: what an earlier client left
    ("SYST:CAP:FREQ:MIN?", "+9.00000000000E+03"),
    ("SYST:CAP:FREQ:MAX?", "+2.00000000000E+10"),
    ("FORM:DATA?", "ASC,0"),
    ("*IDN?", IDN),
]

INIT_BINARY: list[Exchange] = [
    ("SYST:ERR?", NO_ERROR),
    ("SYST:CAP:FREQ:MIN?", "+9.00000000000E+03"),
    ("SYST:CAP:FREQ:MAX?", "+2.00000000000E+10"),
    ("FORM:DATA?", "REAL,64"),
    *write("FORM:BORD SWAP"),
    ("*IDN?", IDN),
]

# A known 3-point trace and its re,im wire form.
TRACE = np.array([0.5 - 0.25j, -1e-3 + 2e-6j, 0.0 + 1.0j])
RE_IM = [v for z in TRACE for v in (z.real, z.imag)]


def ieee_block(payload: bytes) -> bytes:
    """``#<n><length><payload>`` (IEEE 488.2 definite-length block)."""
    length = str(len(payload)).encode("ascii")
    return b"#" + str(len(length)).encode("ascii") + length + payload


# --- transcripts: init, identity -------------------------------------------------------------


def test_init_reads_frequency_range_and_data_format() -> None:
    with expected_protocol(KeysightE5080B, INIT, name="vna") as vna:
        assert vna.start.vals.valid_values == (9e3, 20e9)
        assert vna.stop.vals.valid_values == (9e3, 20e9)
        assert vna.center.vals.valid_values == (9e3, 20e9)
        assert vna.span.vals.valid_values == (0, 20e9 - 9e3)
        assert vna.data_format.cache.get(get_if_invalid=False) == "ascii"
        assert vna.visa_handle.write_termination == "\n"
        assert vna.visa_handle.read_termination == "\n"


def test_init_with_binary_format_sets_little_endian_byte_order() -> None:
    with expected_protocol(KeysightE5080B, INIT_BINARY) as vna:
        assert vna.data_format.cache.get(get_if_invalid=False) == "real64"


def test_idn_is_parsed() -> None:
    with expected_protocol(KeysightE5080B, [*INIT, ("*IDN?", IDN)]) as vna:
        assert vna.get_idn() == {
            "vendor": "Keysight Technologies", "model": "E5080B", "serial": "MY59200001",
            "firmware": "A.15.20.07",
        }


# --- transcripts: parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("points", 201, ["SENS:SWE:POIN 201"]),
        ("points", 1, ["SENS:SWE:POIN 1"]),
        ("points", 100003, ["SENS:SWE:POIN 100003"]),
        ("if_bandwidth", 1000, ["SENS:BWID 1000"]),
        ("if_bandwidth", 1.5, ["SENS:BWID 1.5"]),
        ("if_bandwidth", 15e6, ["SENS:BWID 15000000"]),
        ("if_bandwidth", 1, ["SENS:BWID 1"]),
        ("power_dbm", -30, ["SOUR:POW -30.00"]),
        ("power_dbm", -100, ["SOUR:POW -100.00"]),
        ("power_dbm", 20, ["SOUR:POW 20.00"]),
        ("power_dbm", -12.345, ["SOUR:POW -12.35"]),
        ("power", 1e-3, ["SOUR:POW 0.00"]),
        ("power", 1e-5, ["SOUR:POW -20.00"]),
        ("power", 1e-13, ["SOUR:POW -100.00"]),
        ("rf_output", True, ["OUTP 1"]),
        ("rf_output", "off", ["OUTP 0"]),
        ("s_parameter", "S11", ['CALC:MEAS:PAR "S11"']),
        ("s_parameter", "S12", ['CALC:MEAS:PAR "S12"']),
        ("s_parameter", "S21", ['CALC:MEAS:PAR "S21"']),
        ("s_parameter", "S22", ['CALC:MEAS:PAR "S22"']),
        ("averaging", True, ["SENS:AVER 1"]),
        ("averaging", False, ["SENS:AVER 0"]),
        ("averages", 16, ["SENS:AVER:COUN 16"]),
        ("averages", 65536, ["SENS:AVER:COUN 65536"]),
        ("data_format", "ascii", ["FORM:DATA ASC,0"]),
        ("data_format", "real64", ["FORM:DATA REAL,64", "FORM:BORD SWAP"]),
        ("data_format", "real32", ["FORM:DATA REAL,32", "FORM:BORD SWAP"]),
    ],
)
def test_set_sends_exact_bytes_then_reads_error_queue(
    parameter: str, value: object, sent: list[str]
) -> None:
    transcript = [*INIT, *[step for command in sent for step in write(command)]]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        getattr(vna, parameter).set(value)


def test_set_bytes_on_the_wire() -> None:
    with expected_protocol(KeysightE5080B, [*INIT, *write('CALC:MEAS:PAR "S21"')]) as vna:
        vna.s_parameter("S21")
        assert vna.visa_handle.written[-2:] == [b'CALC:MEAS:PAR "S21"\n', b"SYST:ERR?\n"]


FREQUENCY_QUERIES = {
    "start": ("SENS:FREQ:STAR?", "+4.99000000000E+09", 4.99e9),
    "stop": ("SENS:FREQ:STOP?", "+5.01000000000E+09", 5.01e9),
    "center": ("SENS:FREQ:CENT?", "+5.00000000000E+09", 5.0e9),
    "span": ("SENS:FREQ:SPAN?", "+2.00000000000E+07", 2.0e7),
}


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("start", 4.99e9, "SENS:FREQ:STAR 4990000000"),
        ("start", 9e3, "SENS:FREQ:STAR 9000"),
        ("stop", 5.01e9, "SENS:FREQ:STOP 5010000000"),
        ("stop", 20e9, "SENS:FREQ:STOP 20000000000"),
        ("center", 5e9, "SENS:FREQ:CENT 5000000000"),
        ("center", 5.0000000004e9, "SENS:FREQ:CENT 5000000000"),  # 1 Hz resolution
        ("span", 2e7, "SENS:FREQ:SPAN 20000000"),
        ("span", 0, "SENS:FREQ:SPAN 0"),
    ],
)
def test_frequency_set_rereads_the_three_coupled_ones(
    parameter: str, value: float, sent: str
) -> None:
    others = [name for name in ("start", "stop", "center", "span") if name != parameter]
    transcript = [*INIT, *write(sent), *[FREQUENCY_QUERIES[name][:2] for name in others]]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        getattr(vna, parameter).set(value)
        for name in others:
            assert getattr(vna, name).cache.get(get_if_invalid=False) == FREQUENCY_QUERIES[name][2]
        assert getattr(vna, parameter).cache.get(get_if_invalid=False) == value


@pytest.mark.parametrize(
    ("parameter", "query", "reply", "expected"),
    [
        ("start", "SENS:FREQ:STAR?", "+4.99000000000E+09", 4.99e9),
        ("stop", "SENS:FREQ:STOP?", "+2.00000000000E+10", 20e9),
        ("center", "SENS:FREQ:CENT?", "+5.00000000000E+09", 5e9),
        ("span", "SENS:FREQ:SPAN?", "+2.00000000000E+07", 2e7),
        ("points", "SENS:SWE:POIN?", "201", 201),
        ("points", "SENS:SWE:POIN?", "+100003", 100003),
        ("if_bandwidth", "SENS:BWID?", "+1.00000000000E+03", 1e3),
        ("power_dbm", "SOUR:POW?", "-2.00000000000E+01", -20.0),
        ("power", "SOUR:POW?", "+0.00000000000E+00", 1e-3),
        ("power", "SOUR:POW?", "-3.00000000000E+01", 1e-6),
        ("rf_output", "OUTP?", "1", True),
        ("rf_output", "OUTP?", "0", False),
        ("s_parameter", "CALC:MEAS:PAR?", '"S21"', "S21"),
        ("s_parameter", "CALC:MEAS:PAR?", "S12", "S12"),
        ("averaging", "SENS:AVER?", "1", True),
        ("averaging", "SENS:AVER?", "0", False),
        ("averages", "SENS:AVER:COUN?", "16", 16),
        ("sweep_time", "SENS:SWE:TIME?", "+1.21000000000E-02", 0.0121),
        ("data_format", "FORM:DATA?", "ASC,0", "ascii"),
        ("data_format", "FORM:DATA?", "REAL,32", "real32"),
        ("data_format", "FORM:DATA?", "REAL,64", "real64"),
    ],
)
def test_get_parses_reply_without_error_read(
    parameter: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(KeysightE5080B, [*INIT, (query, reply)]) as vna:
        value = getattr(vna, parameter).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_settable_parameters_accept_their_own_get_output() -> None:
    transcript = [
        *INIT,
        ("SOUR:POW?", "-2.00000000000E+01"), *write("SOUR:POW -20.00"),
        ("SOUR:POW?", "-2.00000000000E+01"), *write("SOUR:POW -20.00"),
        ("CALC:MEAS:PAR?", '"S21"'), *write('CALC:MEAS:PAR "S21"'),
        ("FORM:DATA?", "REAL,64"), *write("FORM:DATA REAL,64"), *write("FORM:BORD SWAP"),
        ("SENS:BWID?", "+1.50000000000E+00"), *write("SENS:BWID 1.5"),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        vna.power_dbm(vna.power_dbm())
        vna.power(vna.power())
        vna.s_parameter(vna.s_parameter())
        vna.data_format(vna.data_format())
        vna.if_bandwidth(vna.if_bandwidth())


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start", 8.999e3),
        ("start", 20.001e9),
        ("stop", 0),
        ("center", 21e9),
        ("span", -1),
        ("span", 20e9),
        ("points", 0),
        ("points", 100004),
        ("points", 10.5),
        ("if_bandwidth", 0.5),
        ("if_bandwidth", 15.1e6),
        ("power_dbm", -100.01),
        ("power_dbm", 20.01),
        ("power", 0.0),
        ("power", 0.2),
        ("rf_output", "maybe"),
        ("s_parameter", "S31"),
        ("s_parameter", "s21"),
        ("averaging", 2),
        ("averages", 0),
        ("averages", 65537),
        ("data_format", "binary"),
        ("data_format", "REAL,64"),
    ],
)
def test_validators_refuse_before_any_byte_is_written(parameter: str, value: object) -> None:
    # The transcript holds the init traffic only: any further byte would fail the test.
    with expected_protocol(KeysightE5080B, INIT) as vna, pytest.raises((ValueError, TypeError)):
        getattr(vna, parameter).set(value)


def test_read_only_parameters() -> None:
    with expected_protocol(KeysightE5080B, INIT) as vna:
        assert not vna.sweep_time.settable
        assert not vna.trace.settable
        assert not vna.frequency_axis.settable


def test_instrument_error_names_instrument_command_and_message() -> None:
    transcript = [
        *INIT,
        ("SOUR:POW 15.00", None),
        ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(KeysightE5080B, transcript, name="vna") as vna,
        pytest.raises(InstrumentError) as info,
    ):
        vna.power_dbm(15)
    assert info.value.args[0] == "vna: 'SOUR:POW 15.00' -> -221,\"Settings conflict\""


def test_refused_frequency_set_raises_before_the_rereads() -> None:
    transcript = [*INIT, ("SENS:FREQ:STAR 5000000000", None), ("SYST:ERR?", OUT_OF_RANGE),
                  ("SYST:ERR?", NO_ERROR)]
    with (
        expected_protocol(KeysightE5080B, transcript) as vna,
        pytest.raises(InstrumentError, match="SENS:FREQ:STAR 5000000000"),
    ):
        vna.start(5e9)


# --- transcripts: traces --------------------------------------------------------------------


def test_frequency_axis_is_computed_from_start_stop_points() -> None:
    transcript = [*INIT, ("SENS:FREQ:STAR?", "+1.00000000000E+09"),
                  ("SENS:FREQ:STOP?", "+2.00000000000E+09"), ("SENS:SWE:POIN?", "5")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        axis = vna.frequency_axis()
    np.testing.assert_array_equal(axis, [1.0e9, 1.25e9, 1.5e9, 1.75e9, 2.0e9])


def test_ascii_trace_is_parsed_into_complex_values() -> None:
    reply = ",".join(f"{v:+.11E}" for v in RE_IM)
    transcript = [*INIT, ("CALC:MEAS:DATA:SDAT?", reply), ("SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        trace = vna.trace()
    assert trace.dtype == np.complex128
    np.testing.assert_allclose(trace, TRACE, rtol=1e-11, atol=0)


def test_binary_real64_trace_decodes_little_endian_block() -> None:
    block = ieee_block(struct.pack("<6d", *RE_IM))
    assert block.startswith(b"#248")
    transcript = [*INIT_BINARY, ("CALC:MEAS:DATA:SDAT?", block), ("SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        trace = vna.trace()
    np.testing.assert_array_equal(trace, TRACE)  # float64 end to end: exact


def test_binary_real32_trace_decodes_little_endian_block() -> None:
    block = ieee_block(struct.pack("<6f", *RE_IM))
    transcript = [
        *INIT, *write("FORM:DATA REAL,32"), *write("FORM:BORD SWAP"),
        ("CALC:MEAS:DATA:SDAT?", block), ("SENS:SWE:POIN?", "3"),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        vna.data_format("real32")
        trace = vna.trace()
    np.testing.assert_allclose(trace, TRACE, rtol=1e-6, atol=1e-9)


def test_binary_trace_with_a_newline_byte_in_the_data() -> None:
    # A value made of 0x0A bytes: a read that stops at the termination character would cut the
    # block there; the driver must read the length the block header announces.
    values = [struct.unpack("<d", bytes([0x0A] * 8))[0], 1.0, 0.25, -0.5, 2.0, 3.0]
    payload = struct.pack("<6d", *values)
    assert b"\n" in payload
    transcript = [*INIT_BINARY, ("CALC:MEAS:DATA:SDAT?", ieee_block(payload)),
                  ("SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        trace = vna.trace()
    np.testing.assert_array_equal(trace, np.array(values[0::2]) + 1j * np.array(values[1::2]))


def test_magnitude_and_phase_of_the_trace() -> None:
    block = ieee_block(struct.pack("<6d", 0.1, 0.0, 0.0, -1.0, -10.0, 0.0))
    transcript = [
        *INIT_BINARY,
        ("CALC:MEAS:DATA:SDAT?", block), ("SENS:SWE:POIN?", "3"),
        ("CALC:MEAS:DATA:SDAT?", block),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        magnitude = vna.magnitude()
        phase = vna.phase()
        assert (vna.magnitude.unit, vna.phase.unit) == ("dB", "rad")
    np.testing.assert_allclose(magnitude, [-20.0, 0.0, 20.0], atol=1e-12)
    np.testing.assert_allclose(phase, [0.0, -np.pi / 2, np.pi], atol=1e-12)


def test_trace_length_not_matching_points_is_an_instrument_error() -> None:
    reply = ",".join(f"{v:+.11E}" for v in RE_IM)
    transcript = [*INIT, ("CALC:MEAS:DATA:SDAT?", reply), ("SENS:SWE:POIN?", "201")]
    with (
        expected_protocol(KeysightE5080B, transcript, name="vna") as vna,
        pytest.raises(InstrumentError, match=r"6 values, expected 2 x 201 points"),
    ):
        vna.fetch_trace()


def test_unparsable_ascii_trace_is_an_instrument_error() -> None:
    transcript = [*INIT, ("CALC:MEAS:DATA:SDAT?", "1.0,abc")]
    with (
        expected_protocol(KeysightE5080B, transcript) as vna,
        pytest.raises(InstrumentError, match="unparsable ASCII trace"),
    ):
        vna.fetch_trace()


def test_trace_setpoints_and_snapshot_exclusions() -> None:
    with expected_protocol(KeysightE5080B, INIT) as vna:
        for parameter in (vna.trace, vna.magnitude, vna.phase):
            assert parameter.setpoints == (vna.frequency_axis,)
        snapshot = vna.snapshot(update=False)["parameters"]
        for name in ("trace", "magnitude", "phase", "frequency_axis"):
            assert "value" not in snapshot[name]


# --- transcripts: sweeps and safety ------------------------------------------------------------


def _record_timeouts(vna: KeysightE5080B, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []
    resource = vna.visa_handle
    original = resource.read

    def read(*args, **kwargs):
        seen.append(resource.timeout)
        return original(*args, **kwargs)

    monkeypatch.setattr(resource, "read", read)
    return seen


def test_run_sweep_single_waits_with_opc(monkeypatch: pytest.MonkeyPatch) -> None:
    transcript = [
        *INIT,
        ("SENS:AVER?", "0"),
        ("SENS:SWE:TIME?", "+1.50000000000E+00"),
        *write("SENS:SWE:MODE SING"),
        ("*OPC?", "1"),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        seen = _record_timeouts(vna, monkeypatch)
        vna.run_sweep()
        assert seen[-1] == pytest.approx(6500.0)  # 1.5 s sweep + 5 s default, in ms
        assert vna.visa_handle.timeout == pytest.approx(5000.0)


def test_run_sweep_with_averaging_takes_a_group_of_sweeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transcript = [
        *INIT,
        ("SENS:AVER?", "1"),
        ("SENS:AVER:COUN?", "8"),
        ("SENS:SWE:TIME?", "+2.50000000000E-01"),
        *write("SENS:AVER:CLE"),
        *write("SENS:SWE:GRO:COUN 8"),
        *write("SENS:SWE:MODE GRO"),
        ("*OPC?", "+1"),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        seen = _record_timeouts(vna, monkeypatch)
        vna.run_sweep()
        assert seen[-1] == pytest.approx(7000.0)  # 8 x 0.25 s + 5 s


def test_run_sweep_with_explicit_timeout_does_not_ask_the_sweep_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transcript = [*INIT, ("SENS:AVER?", "0"), *write("SENS:SWE:MODE SING"), ("*OPC?", "1")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        seen = _record_timeouts(vna, monkeypatch)
        vna.run_sweep(timeout=60)
        assert seen[-1] == pytest.approx(60000.0)


def test_run_sweep_averaging_on_with_one_average_is_a_single_sweep() -> None:
    transcript = [*INIT, ("SENS:AVER?", "1"), ("SENS:AVER:COUN?", "1"),
                  *write("SENS:SWE:MODE SING"), ("*OPC?", "1")]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        vna.run_sweep(timeout=10)


def test_run_sweep_unexpected_opc_reply_is_an_instrument_error() -> None:
    transcript = [*INIT, ("SENS:AVER?", "0"), *write("SENS:SWE:MODE SING"), ("*OPC?", "0")]
    with (
        expected_protocol(KeysightE5080B, transcript) as vna,
        pytest.raises(InstrumentError, match="expected '1'"),
    ):
        vna.run_sweep(timeout=10)


def test_run_sweep_refused_is_an_instrument_error() -> None:
    transcript = [
        *INIT, ("SENS:AVER?", "0"),
        ("SENS:SWE:MODE SING", None), ("SYST:ERR?", '-221,"Settings conflict"'),
        ("SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(KeysightE5080B, transcript) as vna,
        pytest.raises(InstrumentError, match="SENS:SWE:MODE SING"),
    ):
        vna.run_sweep(timeout=10)


def test_sweep_then_binary_trace_sequence() -> None:
    block = ieee_block(struct.pack("<6d", *RE_IM))
    transcript = [
        *INIT_BINARY,
        ("SENS:AVER?", "0"), ("SENS:SWE:TIME?", "+1.00000000000E-02"),
        *write("SENS:SWE:MODE SING"), ("*OPC?", "1"),
        ("CALC:MEAS:DATA:SDAT?", block), ("SENS:SWE:POIN?", "3"),
    ]
    with expected_protocol(KeysightE5080B, transcript) as vna:
        vna.run_sweep()
        np.testing.assert_array_equal(vna.trace(), TRACE)


def test_safe_state_switches_rf_power_off() -> None:
    with expected_protocol(KeysightE5080B, [*INIT, *write("OUTP 0")]) as vna:
        vna.safe_state()


def test_enable_output_switches_rf_power_on() -> None:
    with expected_protocol(KeysightE5080B, [*INIT, *write("OUTP 1")]) as vna:
        vna.enable_output()


def test_power_in_watts_obeys_a_narrowed_dbm_range() -> None:
    from qcodes.validators import Numbers

    with expected_protocol(KeysightE5080B, [*INIT, *write("SOUR:POW -40.00")]) as vna:
        vna.power_dbm.add_validator(Numbers(-100, -40))
        vna.power(1e-7)
        with pytest.raises(ValueError, match="power_dbm"):
            vna.power(1e-3)


# --- plain pyvisa-sim profile ------------------------------------------------------------------

@pytest.fixture
def sim_vna(profile_copy: Callable[[str], str]) -> KeysightE5080B:
    return KeysightE5080B("vna", ADDRESS, visalib=profile_copy("keysight_e5080b.yaml"))


def test_sim_defaults(sim_vna: KeysightE5080B) -> None:
    vna = sim_vna
    assert vna.start() == 4.99e9
    assert vna.stop() == 5.01e9
    assert vna.center() == 5.0e9
    assert vna.span() == 2e7
    assert vna.points() == 11
    assert vna.if_bandwidth() == 1e3
    assert vna.power_dbm() == -20.0
    assert vna.rf_output() is False
    assert vna.s_parameter() == "S11"
    assert vna.averaging() is False
    assert vna.averages() == 1
    assert vna.data_format() == "ascii"
    assert vna.start.vals.valid_values == (9e3, 20e9)
    assert vna.get_idn()["serial"] == "MY59200001"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start", 1e9),
        ("start", 9e3),
        ("stop", 20e9),
        ("center", 7.5e9),
        ("span", 1e6),
        ("points", 1),
        ("points", 100003),
        ("if_bandwidth", 1.0),
        ("if_bandwidth", 15e6),
        ("power_dbm", -100.0),
        ("power_dbm", 20.0),
        ("power_dbm", -7.25),
        ("power", 1e-6),
        ("rf_output", True),
        ("rf_output", False),
        ("s_parameter", "S12"),
        ("s_parameter", "S21"),
        ("s_parameter", "S22"),
        ("averaging", True),
        ("averages", 65536),
        ("data_format", "real64"),
        ("data_format", "real32"),
        ("data_format", "ascii"),
    ],
)
def test_sim_round_trip(sim_vna: KeysightE5080B, parameter: str, value: object) -> None:
    param = getattr(sim_vna, parameter)
    param.set(value)
    param.cache.invalidate()
    got = param.get()
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-12)
    else:
        assert got == value
    assert sim_vna.ask("SYST:ERR?") == NO_ERROR


def test_sim_ascii_trace_fetch_and_parse(sim_vna: KeysightE5080B) -> None:
    sim_vna.run_sweep()
    trace = sim_vna.trace()
    axis = sim_vna.frequency_axis()
    assert trace.shape == axis.shape == (11,)
    np.testing.assert_allclose(axis, np.linspace(4.99e9, 5.01e9, 11))
    # The profile serves S11 of a resonator at 5 GHz: deepest at the centre point (0.25 + 0j).
    assert trace[5] == pytest.approx(0.25 + 0j)
    assert trace[0] == pytest.approx(0.9711538 - 0.1442308j)
    magnitude = sim_vna.magnitude()
    assert int(np.argmin(magnitude)) == 5
    assert magnitude[5] == pytest.approx(20 * np.log10(0.25))
    assert sim_vna.ask("SYST:ERR?") == NO_ERROR


def test_sim_run_sweep_with_averaging(sim_vna: KeysightE5080B) -> None:
    sim_vna.averaging(True)
    sim_vna.averages(4)
    sim_vna.run_sweep()
    assert sim_vna.ask("SYST:ERR?") == NO_ERROR


def test_sim_trace_with_other_points_is_refused(sim_vna: KeysightE5080B) -> None:
    # The static trace has 11 points; the driver notices when the instrument disagrees.
    sim_vna.points(21)
    with pytest.raises(InstrumentError, match="22 values, expected 2 x 21 points"):
        sim_vna.trace()


def test_sim_safe_state(sim_vna: KeysightE5080B) -> None:
    sim_vna.enable_output()
    assert sim_vna.rf_output.get() is True
    sim_vna.safe_state()
    assert sim_vna.rf_output.get() is False


def test_sim_raw_out_of_range_write_queues_instrument_error(sim_vna: KeysightE5080B) -> None:
    sim_vna.visa_handle.write("SOUR:POW 30.00")
    assert sim_vna.ask("SYST:ERR?") == OUT_OF_RANGE
    assert sim_vna.ask("SYST:ERR?") == NO_ERROR
    assert sim_vna.power_dbm() == -20.0


def test_sim_driver_write_out_of_range_raises(sim_vna: KeysightE5080B) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_vna.write("SENS:SWE:POIN 100004")
    assert info.value.args[0] == "vna: 'SENS:SWE:POIN 100004' -> -222,\"Data out of range\""
    assert sim_vna.ask("SYST:ERR?") == NO_ERROR


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("keysight_e5080b.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        vna = KeysightE5080B("vna", ADDRESS, visalib=visalib)
        snapshot = vna.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    parameters = snapshot["parameters"]
    values = {name: p.get("value") for name, p in parameters.items()}
    assert values["start"] == 4.99e9
    assert values["points"] == 11
    assert values["power_dbm"] == -20.0
    assert values["power"] == pytest.approx(1e-5)
    assert values["rf_output"] is False
    assert values["s_parameter"] == "S11"
    assert values["data_format"] == "ascii"
    assert values["IDN"]["model"] == "E5080B"
    # Traces and their axis are data, not settings: not fetched for the snapshot.
    for name in ("trace", "magnitude", "phase", "frequency_axis"):
        assert "value" not in parameters[name]


def test_sim_isolation_first_changes_state(sim_vna: KeysightE5080B) -> None:
    sim_vna.rf_output(True)
    sim_vna.s_parameter("S21")
    assert sim_vna.rf_output.get() is True


def test_sim_isolation_second_sees_defaults(sim_vna: KeysightE5080B) -> None:
    assert sim_vna.rf_output.get() is False
    assert sim_vna.s_parameter.get() == "S11"
