"""Keysight N9030B PXA driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.keysight_n9030b import KeysightN9030B

ADDRESS = "TCPIP0::192.168.1.81::hislip0::INSTR"
NO_ERROR = '+0,"No error"'
OUT_OF_RANGE = '-222,"Data out of range"'
IDN = "Keysight Technologies,N9030B,MY59100001,A.33.03"


def write(command: str) -> list[Exchange]:
    """A PXA write followed by an empty error-queue read."""
    return scpi_write(command, error_query=":SYST:ERR?", no_error=NO_ERROR)


def init(options: str = '"526,B40,EA3,P26"', data_format: str = "ASC") -> list[Exchange]:
    return [
        (":SYST:ERR?", NO_ERROR),  # at connect: what an earlier client left
        ("*OPT?", options),
        (":INST:SEL?", "SA"),
        (":CONF?", "SAN"),
        *write(":UNIT:POW DBM"),
        *write(":INIT:CONT 0"),
        (":FORM:DATA?", data_format),
        *([] if data_format.startswith("ASC") else write(":FORM:BORD SWAP")),
        ("*IDN?", IDN),
    ]


INIT = init()
INIT_BINARY = init(data_format="REAL,64")

# A known 3-point spectrum and its (frequency, amplitude) wire form.
FREQS = [4.9999e9, 5.0e9, 5.0001e9]
AMPLITUDES = [-120.5, -95.25, -119.75]
PAIRS = [v for pair in zip(FREQS, AMPLITUDES, strict=True) for v in pair]


def ieee_block(payload: bytes) -> bytes:
    """``#<n><length><payload>`` (IEEE 488.2 definite-length block)."""
    length = str(len(payload)).encode("ascii")
    return b"#" + str(len(length)).encode("ascii") + length + payload


# --- transcripts: init, identity -------------------------------------------------------------


def test_init_selects_nothing_when_already_in_swept_sa() -> None:
    with expected_protocol(KeysightN9030B, INIT, name="esa") as esa:
        assert esa.max_frequency == 26.5e9
        assert esa.stop.vals.valid_values == (10.0, 26.5e9)
        assert esa.start.vals.valid_values == (0, 26.5e9 - 10)
        assert esa.span.vals.valid_values == (10.0, 26.5e9)
        assert esa.noise_marker_frequency.vals.valid_values == (0, 26.5e9)
        assert esa.data_format.cache.get(get_if_invalid=False) == "ascii"
        assert esa.visa_handle.write_termination == "\n"
        assert esa.visa_handle.read_termination == "\n"


def test_init_switches_to_sa_mode_and_swept_sa_measurement() -> None:
    transcript = [
        (":SYST:ERR?", NO_ERROR),
        ("*OPT?", '"544"'),
        (":INST:SEL?", "PNOISE"), *write(":INST:SEL SA"),
        (":CONF?", "ACP"), *write(":CONF:SAN"),
        *write(":UNIT:POW DBM"),
        *write(":INIT:CONT 0"),
        (":FORM:DATA?", "ASC,8"),
        ("*IDN?", IDN),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        assert esa.max_frequency == 44e9
        assert esa.data_format.cache.get(get_if_invalid=False) == "ascii"


def test_init_with_binary_format_sets_little_endian_byte_order() -> None:
    with expected_protocol(KeysightN9030B, INIT_BINARY) as esa:
        assert esa.data_format.cache.get(get_if_invalid=False) == "real64"


@pytest.mark.parametrize(
    ("options", "max_frequency"),
    [('"503"', 3.6e9), ('"B25,508,EA3"', 8.4e9), ('"513"', 13.6e9), ('"550,B1X"', 50e9)],
)
def test_frequency_range_follows_the_frequency_option(options: str, max_frequency: float) -> None:
    with expected_protocol(KeysightN9030B, init(options=options)) as esa:
        assert esa.max_frequency == max_frequency
        assert esa.stop.vals.valid_values == (10.0, max_frequency)


def test_unknown_frequency_option_is_refused_clearly() -> None:
    with (
        pytest.raises(InstrumentError, match=r"no known frequency option in \*OPT\? "
                                             r"\('B40', 'EA3'\)"),
        expected_protocol(KeysightN9030B, [(":SYST:ERR?", NO_ERROR), ("*OPT?", '"B40,EA3"')]),
    ):
        pass


def test_idn_is_parsed() -> None:
    with expected_protocol(KeysightN9030B, [*INIT, ("*IDN?", IDN)]) as esa:
        assert esa.get_idn() == {
            "vendor": "Keysight Technologies", "model": "N9030B", "serial": "MY59100001",
            "firmware": "A.33.03",
        }


# --- transcripts: parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("points", 1001, [":SENS:SWE:POIN 1001"]),
        ("points", 1, [":SENS:SWE:POIN 1"]),
        ("points", 20001, [":SENS:SWE:POIN 20001"]),
        ("rbw", 1, [":SENS:BAND:RES 1"]),
        ("rbw", 1e3, [":SENS:BAND:RES 1000"]),
        ("rbw", 8e6, [":SENS:BAND:RES 8000000"]),
        ("rbw", 4.7, [":SENS:BAND:RES 4.7"]),
        ("vbw", 1, [":SENS:BAND:VID 1"]),
        ("vbw", 50e6, [":SENS:BAND:VID 50000000"]),
        ("averages", 1, [":SENS:AVER:COUN 1"]),
        ("averages", 10000, [":SENS:AVER:COUN 10000"]),
        ("trace_type", "average", [":TRAC1:TYPE AVER"]),
        ("trace_type", "write", [":TRAC1:TYPE WRIT"]),
        ("trace_type", "max_hold", [":TRAC1:TYPE MAXH"]),
        ("average_type", "RMS", [":SENS:AVER:TYPE RMS"]),
        ("average_type", "LOG", [":SENS:AVER:TYPE LOG"]),
        ("average_type", "SCAL", [":SENS:AVER:TYPE SCAL"]),
        ("detector", "AVER", [":SENS:DET:TRAC AVER"]),
        ("detector", "SAMP", [":SENS:DET:TRAC SAMP"]),
        ("attenuation", 0, [":SENS:POW:ATT 0"]),
        ("attenuation", 70, [":SENS:POW:ATT 70"]),
        ("preamp", True, [":SENS:POW:GAIN:STAT 1"]),
        ("preamp", False, [":SENS:POW:GAIN:STAT 0"]),
        ("marker_mode", "normal", [":CALC:MARK1:MODE POS"]),
        ("marker_mode", "off", [":CALC:MARK1:MODE OFF"]),
        ("marker_function", "noise", [":CALC:MARK1:FUNC NOIS"]),
        ("marker_function", "off", [":CALC:MARK1:FUNC OFF"]),
        ("noise_marker_frequency", 5.0001e9, [":CALC:MARK1:X 5000100000"]),
        ("noise_marker_frequency", 26.5e9, [":CALC:MARK1:X 26500000000"]),
        ("data_format", "ascii", [":FORM:DATA ASC"]),
        ("data_format", "real64", [":FORM:DATA REAL,64", ":FORM:BORD SWAP"]),
        ("data_format", "real32", [":FORM:DATA REAL,32", ":FORM:BORD SWAP"]),
    ],
)
def test_set_sends_exact_bytes_then_reads_error_queue(
    parameter: str, value: object, sent: list[str]
) -> None:
    transcript = [*INIT, *[step for command in sent for step in write(command)]]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        getattr(esa, parameter).set(value)


def test_set_bytes_on_the_wire() -> None:
    with expected_protocol(KeysightN9030B, [*INIT, *write(":SENS:BAND:RES 1000")]) as esa:
        esa.rbw(1e3)
        assert esa.visa_handle.written[-2:] == [b":SENS:BAND:RES 1000\n", b":SYST:ERR?\n"]


FREQUENCY_QUERIES = {
    "start": (":SENS:FREQ:STAR?", "4.9995000000E+09", 4.9995e9),
    "stop": (":SENS:FREQ:STOP?", "5.0005000000E+09", 5.0005e9),
    "center": (":SENS:FREQ:CENT?", "5.0000000000E+09", 5.0e9),
    "span": (":SENS:FREQ:SPAN?", "1.0000000000E+06", 1.0e6),
}


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("start", 4.9995e9, ":SENS:FREQ:STAR 4999500000"),
        ("start", 0, ":SENS:FREQ:STAR 0"),
        ("stop", 5.0005e9, ":SENS:FREQ:STOP 5000500000"),
        ("stop", 26.5e9, ":SENS:FREQ:STOP 26500000000"),
        ("center", 5e9, ":SENS:FREQ:CENT 5000000000"),
        ("span", 1e6, ":SENS:FREQ:SPAN 1000000"),
        ("span", 10, ":SENS:FREQ:SPAN 10"),
    ],
)
def test_frequency_set_rereads_the_three_coupled_ones(
    parameter: str, value: float, sent: str
) -> None:
    others = [name for name in ("start", "stop", "center", "span") if name != parameter]
    transcript = [*INIT, *write(sent), *[FREQUENCY_QUERIES[name][:2] for name in others]]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        getattr(esa, parameter).set(value)
        for name in others:
            assert getattr(esa, name).cache.get(get_if_invalid=False) == FREQUENCY_QUERIES[name][2]
        assert getattr(esa, parameter).cache.get(get_if_invalid=False) == value


@pytest.mark.parametrize(
    ("parameter", "query", "reply", "expected"),
    [
        ("start", ":SENS:FREQ:STAR?", "4.9995000000E+09", 4.9995e9),
        ("stop", ":SENS:FREQ:STOP?", "2.6500000000E+10", 26.5e9),
        ("center", ":SENS:FREQ:CENT?", "5.0000000000E+09", 5e9),
        ("span", ":SENS:FREQ:SPAN?", "1.0000000000E+06", 1e6),
        ("points", ":SENS:SWE:POIN?", "1001", 1001),
        ("rbw", ":SENS:BAND:RES?", "1.0000000000E+04", 1e4),
        ("vbw", ":SENS:BAND:VID?", "3.0000000000E+03", 3e3),
        ("averages", ":SENS:AVER:COUN?", "100", 100),
        ("trace_type", ":TRAC1:TYPE?", "AVER", "average"),
        ("trace_type", ":TRAC1:TYPE?", "WRIT", "write"),
        ("trace_type", ":TRAC1:TYPE?", "MINH", "min_hold"),
        ("average_type", ":SENS:AVER:TYPE?", "RMS", "RMS"),
        ("detector", ":SENS:DET:TRAC?", "NORM", "NORM"),
        ("attenuation", ":SENS:POW:ATT?", "10", 10),
        ("attenuation", ":SENS:POW:ATT?", "1.2000000000E+01", 12),
        ("preamp", ":SENS:POW:GAIN:STAT?", "1", True),
        ("preamp", ":SENS:POW:GAIN:STAT?", "0", False),
        ("sweep_time", ":SENS:SWE:TIME?", "5.3100000000E-02", 0.0531),
        ("data_format", ":FORM:DATA?", "ASC", "ascii"),
        ("data_format", ":FORM:DATA?", "ASC,8", "ascii"),
        ("data_format", ":FORM:DATA?", "REAL,64", "real64"),
        ("data_format", ":FORM:DATA?", "REAL,32", "real32"),
        ("marker_mode", ":CALC:MARK1:MODE?", "POS", "normal"),
        ("marker_function", ":CALC:MARK1:FUNC?", "NOIS", "noise"),
        ("marker_function", ":CALC:MARK1:FUNC?", "BPOW", "band_power"),
        ("noise_marker_frequency", ":CALC:MARK1:X?", "5.0001000000E+09", 5.0001e9),
        ("noise_density", ":CALC:MARK1:Y?", "-1.654300E+02", -165.43),
    ],
)
def test_get_parses_reply_without_error_read(
    parameter: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(KeysightN9030B, [*INIT, (query, reply)]) as esa:
        value = getattr(esa, parameter).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_settable_parameters_accept_their_own_get_output() -> None:
    transcript = [
        *INIT,
        (":SENS:BAND:RES?", "1.0000000000E+04"), *write(":SENS:BAND:RES 10000"),
        (":SENS:POW:ATT?", "1.2000000000E+01"), *write(":SENS:POW:ATT 12"),
        (":TRAC1:TYPE?", "AVER"), *write(":TRAC1:TYPE AVER"),
        (":FORM:DATA?", "ASC,8"), *write(":FORM:DATA ASC"),
        (":CALC:MARK1:FUNC?", "NOIS"), *write(":CALC:MARK1:FUNC NOIS"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        esa.rbw(esa.rbw())
        esa.attenuation(esa.attenuation())
        esa.trace_type(esa.trace_type())
        esa.data_format(esa.data_format())
        esa.marker_function(esa.marker_function())


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start", -1),
        ("start", 26.5e9),
        ("stop", 5),
        ("stop", 26.6e9),
        ("center", 27e9),
        ("span", 0),
        ("span", 9.9),
        ("span", 27e9),
        ("points", 0),
        ("points", 20002),
        ("rbw", 0.5),
        ("rbw", 8.1e6),
        ("vbw", 0.9),
        ("vbw", 51e6),
        ("averages", 0),
        ("averages", 10001),
        ("attenuation", -2),
        ("attenuation", 72),
        ("attenuation", 10.5),
        ("preamp", "maybe"),
        ("trace_type", "AVER"),
        ("average_type", "POW"),
        ("detector", "RMS"),
        ("marker_mode", "POS"),
        ("marker_function", "nois"),
        ("noise_marker_frequency", 27e9),
        ("noise_marker_frequency", -1),
        ("data_format", "binary"),
    ],
)
def test_validators_refuse_before_any_byte_is_written(parameter: str, value: object) -> None:
    # The transcript holds the init traffic only: any further byte would fail the test.
    with expected_protocol(KeysightN9030B, INIT) as esa, pytest.raises((ValueError, TypeError)):
        getattr(esa, parameter).set(value)


def test_read_only_parameters() -> None:
    with expected_protocol(KeysightN9030B, INIT) as esa:
        assert not esa.sweep_time.settable
        assert not esa.noise_density.settable
        assert not esa.trace.settable


def test_instrument_error_names_instrument_command_and_message() -> None:
    transcript = [
        *INIT,
        (":SENS:POW:GAIN:STAT 1", None),
        (":SYST:ERR?", '-241,"Hardware missing; Option not installed"'),
        (":SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(KeysightN9030B, transcript, name="esa") as esa,
        pytest.raises(InstrumentError) as info,
    ):
        esa.preamp(True)
    assert info.value.args[0] == (
        "esa: ':SENS:POW:GAIN:STAT 1' -> -241,\"Hardware missing; Option not installed\"")


# --- transcripts: traces and the noise marker ----------------------------------------------


def test_frequency_axis_is_computed_from_start_stop_points() -> None:
    transcript = [*INIT, (":SENS:FREQ:STAR?", "1.0000000000E+09"),
                  (":SENS:FREQ:STOP?", "1.0000040000E+09"), (":SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        axis = esa.frequency_axis()
    np.testing.assert_array_equal(axis, [1.0e9, 1.000002e9, 1.000004e9])


def test_ascii_trace_returns_the_amplitudes_of_the_pairs() -> None:
    reply = ",".join(f"{v:.10E}" for v in PAIRS)
    transcript = [*INIT, (":FETC:SAN1?", reply), (":SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        trace = esa.trace()
        assert esa.trace.unit == "dBm"
    np.testing.assert_allclose(trace, AMPLITUDES, rtol=1e-10)


def test_binary_real64_spectrum_decodes_little_endian_pairs() -> None:
    block = ieee_block(struct.pack("<6d", *PAIRS))
    assert block.startswith(b"#248")
    transcript = [*INIT_BINARY, (":FETC:SAN1?", block), (":SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        frequencies, amplitudes = esa.fetch_spectrum()
    np.testing.assert_array_equal(frequencies, FREQS)
    np.testing.assert_array_equal(amplitudes, AMPLITUDES)


def test_binary_trace_parameter() -> None:
    block = ieee_block(struct.pack("<6d", *PAIRS))
    transcript = [*INIT_BINARY, (":FETC:SAN1?", block), (":SENS:SWE:POIN?", "3")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        np.testing.assert_array_equal(esa.trace(), AMPLITUDES)


def test_binary_real32_spectrum() -> None:
    block = ieee_block(struct.pack("<6f", *PAIRS))
    transcript = [
        *INIT, *write(":FORM:DATA REAL,32"), *write(":FORM:BORD SWAP"),
        (":FETC:SAN1?", block), (":SENS:SWE:POIN?", "3"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        esa.data_format("real32")
        frequencies, amplitudes = esa.fetch_spectrum()
    np.testing.assert_allclose(frequencies, FREQS, rtol=1e-7)
    np.testing.assert_allclose(amplitudes, AMPLITUDES, rtol=1e-7)


def test_trace_length_not_matching_points_is_an_instrument_error() -> None:
    reply = ",".join(f"{v:.10E}" for v in PAIRS)
    transcript = [*INIT, (":FETC:SAN1?", reply), (":SENS:SWE:POIN?", "1001")]
    with (
        expected_protocol(KeysightN9030B, transcript) as esa,
        pytest.raises(InstrumentError, match=r"6 values, expected 2 x 1001 points"),
    ):
        esa.fetch_spectrum()


def test_unparsable_ascii_trace_is_an_instrument_error() -> None:
    transcript = [*INIT, (":FETC:SAN1?", "4.9E+09,-1.0E+02,oops")]
    with (
        expected_protocol(KeysightN9030B, transcript) as esa,
        pytest.raises(InstrumentError, match="unparsable ASCII trace"),
    ):
        esa.fetch_spectrum()


def test_measure_noise_density_sets_up_marker_then_reads_it() -> None:
    transcript = [
        *INIT,
        *write(":CALC:MARK1:MODE POS"),
        *write(":CALC:MARK1:FUNC NOIS"),
        *write(":CALC:MARK1:X 5000100000"),
        (":CALC:MARK1:Y?", "-1.654300E+02"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        assert esa.measure_noise_density(5.0001e9) == pytest.approx(-165.43)
        assert esa.noise_density.unit == "dBm/Hz"


def test_measure_noise_density_out_of_range_sends_nothing() -> None:
    with expected_protocol(KeysightN9030B, INIT) as esa, pytest.raises(ValueError):
        esa.measure_noise_density(30e9)


def test_snapshot_reads_neither_traces_nor_the_marker_reading() -> None:
    with expected_protocol(KeysightN9030B, INIT) as esa:
        assert esa.trace.setpoints == (esa.frequency_axis,)
        snapshot = esa.snapshot(update=False)["parameters"]
        for name in ("trace", "frequency_axis"):
            assert "value" not in snapshot[name]
        assert esa.noise_density._snapshot_get is False


# --- transcripts: acquisition and safety -------------------------------------------------------


def _record_timeouts(esa: KeysightN9030B, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []
    resource = esa.visa_handle
    original = resource.read

    def read(*args, **kwargs):
        seen.append(resource.timeout)
        return original(*args, **kwargs)

    monkeypatch.setattr(resource, "read", read)
    return seen


def test_run_sweep_single_acquisition(monkeypatch: pytest.MonkeyPatch) -> None:
    transcript = [
        *INIT,
        (":TRAC1:TYPE?", "WRIT"),
        (":SENS:SWE:TIME?", "2.0000000000E+00"),
        *write(":INIT:IMM"),
        ("*OPC?", "1"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        seen = _record_timeouts(esa, monkeypatch)
        esa.run_sweep()
        assert seen[-1] == pytest.approx(7000.0)  # 2 s sweep + 5 s default, in ms
        assert esa.visa_handle.timeout == pytest.approx(5000.0)


def test_run_sweep_with_trace_averaging_waits_for_all_sweeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transcript = [
        *INIT,
        (":TRAC1:TYPE?", "AVER"),
        (":SENS:AVER:COUN?", "20"),
        (":SENS:SWE:TIME?", "5.0000000000E-01"),
        *write(":INIT:IMM"),
        ("*OPC?", "1"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        seen = _record_timeouts(esa, monkeypatch)
        esa.run_sweep()
        assert seen[-1] == pytest.approx(15000.0)  # 20 x 0.5 s + 5 s


def test_run_sweep_explicit_timeout() -> None:
    transcript = [*INIT, *write(":INIT:IMM"), ("*OPC?", "1")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        esa.run_sweep(timeout=30)


def test_run_sweep_unexpected_opc_reply_is_an_instrument_error() -> None:
    transcript = [*INIT, *write(":INIT:IMM"), ("*OPC?", "0")]
    with (
        expected_protocol(KeysightN9030B, transcript) as esa,
        pytest.raises(InstrumentError, match="expected '1'"),
    ):
        esa.run_sweep(timeout=30)


def test_sweep_then_binary_trace_then_noise_marker_sequence() -> None:
    block = ieee_block(struct.pack("<6d", *PAIRS))
    transcript = [
        *INIT_BINARY,
        (":TRAC1:TYPE?", "WRIT"), (":SENS:SWE:TIME?", "5.0000000000E-02"),
        *write(":INIT:IMM"), ("*OPC?", "1"),
        (":FETC:SAN1?", block), (":SENS:SWE:POIN?", "3"),
        *write(":CALC:MARK1:MODE POS"), *write(":CALC:MARK1:FUNC NOIS"),
        *write(":CALC:MARK1:X 5000000000"), (":CALC:MARK1:Y?", "-1.500000E+02"),
    ]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        esa.run_sweep()
        np.testing.assert_array_equal(esa.trace(), AMPLITUDES)
        assert esa.measure_noise_density(5e9) == -150.0


def test_safe_state_turns_preamp_off_and_attenuation_to_10_db() -> None:
    transcript = [*INIT, *write(":SENS:POW:GAIN:STAT 0"), *write(":SENS:POW:ATT 10")]
    with expected_protocol(KeysightN9030B, transcript) as esa:
        esa.safe_state()


def test_safe_state_sets_attenuation_even_if_preamp_off_fails() -> None:
    transcript = [
        *INIT,
        (":SENS:POW:GAIN:STAT 0", None), (":SYST:ERR?", '-241,"Hardware missing"'),
        (":SYST:ERR?", NO_ERROR),
        *write(":SENS:POW:ATT 10"),
    ]
    with (
        expected_protocol(KeysightN9030B, transcript) as esa,
        pytest.raises(InstrumentError, match="GAIN:STAT 0"),
    ):
        esa.safe_state()


# --- plain pyvisa-sim profile ------------------------------------------------------------------

@pytest.fixture
def sim_esa(profile_copy: Callable[[str], str]) -> KeysightN9030B:
    return KeysightN9030B("esa", ADDRESS, visalib=profile_copy("keysight_n9030b.yaml"))


def test_sim_defaults(sim_esa: KeysightN9030B) -> None:
    esa = sim_esa
    assert esa.max_frequency == 26.5e9
    assert esa.start() == 4.9995e9
    assert esa.stop() == 5.0005e9
    assert esa.center() == 5e9
    assert esa.span() == 1e6
    assert esa.points() == 11
    assert esa.rbw() == 1e4
    assert esa.averages() == 1
    assert esa.trace_type() == "write"
    assert esa.attenuation() == 10
    assert esa.preamp() is False
    assert esa.data_format() == "ascii"
    assert esa.get_idn()["model"] == "N9030B"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start", 1e9),
        ("start", 0.0),
        ("stop", 26.5e9),
        ("center", 7.5e9),
        ("span", 10.0),
        ("points", 1),
        ("points", 20001),
        ("rbw", 1.0),
        ("rbw", 8e6),
        ("vbw", 50e6),
        ("averages", 10000),
        ("trace_type", "average"),
        ("trace_type", "max_hold"),
        ("average_type", "RMS"),
        ("detector", "AVER"),
        ("attenuation", 0),
        ("attenuation", 70),
        ("preamp", True),
        ("marker_mode", "normal"),
        ("marker_function", "noise"),
        ("noise_marker_frequency", 5.0001e9),
        ("data_format", "real64"),
        ("data_format", "ascii"),
    ],
)
def test_sim_round_trip(sim_esa: KeysightN9030B, parameter: str, value: object) -> None:
    param = getattr(sim_esa, parameter)
    param.set(value)
    param.cache.invalidate()
    got = param.get()
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-12)
    else:
        assert got == value
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR


def test_sim_ascii_trace_fetch_and_parse(sim_esa: KeysightN9030B) -> None:
    sim_esa.run_sweep()
    frequencies, amplitudes = sim_esa.fetch_spectrum()
    axis = sim_esa.frequency_axis()
    np.testing.assert_allclose(frequencies, axis)
    trace = sim_esa.trace()
    np.testing.assert_array_equal(trace, amplitudes)
    assert trace.shape == (11,)
    assert int(np.argmax(trace)) == 5
    assert trace[5] == pytest.approx(-95.09)
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR


def test_sim_noise_marker(sim_esa: KeysightN9030B) -> None:
    sim_esa.run_sweep()
    assert sim_esa.measure_noise_density(5.0002e9) == -165.0
    assert sim_esa.marker_function() == "noise"
    assert sim_esa.marker_mode() == "normal"
    assert sim_esa.noise_marker_frequency() == 5.0002e9
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR


def test_sim_run_sweep_with_averaging(sim_esa: KeysightN9030B) -> None:
    sim_esa.trace_type("average")
    sim_esa.averages(50)
    sim_esa.run_sweep()
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR


def test_sim_safe_state(sim_esa: KeysightN9030B) -> None:
    sim_esa.preamp(True)
    sim_esa.attenuation(0)
    sim_esa.safe_state()
    assert sim_esa.preamp.get() is False
    assert sim_esa.attenuation.get() == 10


def test_sim_raw_out_of_range_write_queues_instrument_error(sim_esa: KeysightN9030B) -> None:
    sim_esa.visa_handle.write(":SENS:BAND:RES 9000000")
    assert sim_esa.ask(":SYST:ERR?") == OUT_OF_RANGE
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR
    assert sim_esa.rbw() == 1e4


def test_sim_driver_write_out_of_range_raises(sim_esa: KeysightN9030B) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_esa.write(":SENS:POW:ATT 80")
    assert info.value.args[0] == "esa: ':SENS:POW:ATT 80' -> -222,\"Data out of range\""
    assert sim_esa.ask(":SYST:ERR?") == NO_ERROR


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("keysight_n9030b.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        esa = KeysightN9030B("esa", ADDRESS, visalib=visalib)
        snapshot = esa.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    parameters = snapshot["parameters"]
    values = {name: p.get("value") for name, p in parameters.items()}
    assert values["center"] == 5e9
    assert values["rbw"] == 1e4
    assert values["trace_type"] == "write"
    assert values["marker_function"] == "off"
    assert values["attenuation"] == 10
    assert values["IDN"]["model"] == "N9030B"
    # Measurements, not settings: not taken for the snapshot.
    assert values["noise_density"] is None
    for name in ("trace", "frequency_axis"):
        assert "value" not in parameters[name]


def test_sim_isolation_first_changes_state(sim_esa: KeysightN9030B) -> None:
    sim_esa.preamp(True)
    sim_esa.rbw(100.0)
    assert sim_esa.preamp.get() is True


def test_sim_isolation_second_sees_defaults(sim_esa: KeysightN9030B) -> None:
    assert sim_esa.preamp.get() is False
    assert sim_esa.rbw() == 1e4
