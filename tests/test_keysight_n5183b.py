"""Keysight N5183B driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hil.sim.units import KNOWN_UNITS
from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.keysight_n5183b import KeysightN5183B, parse_options

ADDRESS = "TCPIP0::192.168.1.60::inst0::INSTR"
NO_ERROR = '+0,"No error"'
OUT_OF_RANGE = '-222,"Data out of range"'
IDN = "Keysight Technologies,N5183B,MY59100001,B.01.86"
OPTIONS = '"1E1,1EA,520,UNW"'
PROFILE = Path(__file__).resolve().parent.parent / "sim_profiles" / "keysight_n5183b.yaml"


def write(command: str) -> list[Exchange]:
    """A write followed by an empty error-queue read."""
    return scpi_write(command, error_query="SYST:ERR?", no_error=NO_ERROR)


def init_traffic(options: str = OPTIONS) -> list[Exchange]:
    """The error queue an earlier client may have left is drained at connect; then the qcodes
    base reads the options and connect_message reads *IDN?; nothing is written."""
    return [("SYST:ERR?", NO_ERROR), ("*OPT?", options), ("*IDN?", IDN)]


INIT = init_traffic()


# --- transcripts: init and options -------------------------------------------------------------


def test_init_reads_options_and_sets_ranges() -> None:
    with expected_protocol(KeysightN5183B, INIT, name="mw") as mw:
        assert mw.options == {"1E1", "1EA", "520", "UNW"}
        assert mw.frequency.vals.valid_values == (9e3, 20e9)
        assert mw.power.vals.valid_values == (-20, 19)
        assert mw.phase_offset.vals.valid_values == (-math.pi, math.pi)
        assert mw.has_pulse_modulation
        assert mw.visa_handle.write_termination == "\n"
        assert mw.visa_handle.read_termination == "\n"
        assert mw.visa_handle.written == [b"SYST:ERR?\n", b"*OPT?\n", b"*IDN?\n"]


def test_idn_is_parsed() -> None:
    with expected_protocol(KeysightN5183B, [*INIT, ("*IDN?", IDN)]) as mw:
        assert mw.get_idn() == {
            "vendor": "Keysight Technologies", "model": "N5183B", "serial": "MY59100001",
            "firmware": "B.01.86",
        }


@pytest.mark.parametrize(
    ("options", "max_frequency"),
    [('"520"', 20e9), ('"1E1,532"', 31.8e9), ('"540,UNU"', 40e9), ("506", 6e9)],
)
def test_frequency_range_follows_the_frequency_option(options: str, max_frequency: float) -> None:
    with expected_protocol(KeysightN5183B, init_traffic(options)) as mw:
        assert mw.frequency.vals.valid_values == (9e3, max_frequency)


def test_no_frequency_option_is_refused_at_init() -> None:
    with (
        pytest.raises(RuntimeError, match="frequency option"),
        expected_protocol(KeysightN5183B, [("SYST:ERR?", NO_ERROR), ("*OPT?", '"1E1,UNW"')]),
    ):
        pass


def test_option_unu_brings_pulse_modulation_too() -> None:
    transcript = [*init_traffic('"520,UNU"'), *write("PULM:STAT 1"), *write("PULM:SOUR EXT")]
    with expected_protocol(KeysightN5183B, transcript) as mw:
        assert mw.has_pulse_modulation
        mw.pulse_modulation(True)
        mw.pulse_modulation_source("external")


def test_without_pulse_option_there_is_no_pulse_modulation() -> None:
    with expected_protocol(KeysightN5183B, init_traffic('"1E1,520"')) as mw:
        assert not mw.has_pulse_modulation
        assert "pulse_modulation_source" not in mw.parameters


def test_parse_options() -> None:
    assert parse_options('"1E1,1EA,520,UNW"') == {"1E1", "1EA", "520", "UNW"}
    assert parse_options(" 520 , UNU \n") == {"520", "UNU"}
    assert parse_options('""') == frozenset()


# --- transcripts: sets and gets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("frequency", 5e9, "SOUR:FREQ 5000000000.00"),
        ("frequency", 9e3, "SOUR:FREQ 9000.00"),
        ("frequency", 20e9, "SOUR:FREQ 20000000000.00"),
        ("frequency", 1234567890.123, "SOUR:FREQ 1234567890.12"),
        ("power", -20, "SOUR:POW -20.00"),
        ("power", 19, "SOUR:POW 19.00"),
        ("power", 3.456, "SOUR:POW 3.46"),
        ("phase_offset", 1.5, "SOUR:PHAS 1.50"),
        ("phase_offset", -math.pi, "SOUR:PHAS -3.14"),
        ("auto_freq_ref", True, ":ROSC:SOUR:AUTO 1"),
        ("auto_freq_ref", False, ":ROSC:SOUR:AUTO 0"),
        ("rf_output", True, "OUTP:STAT 1"),
        ("rf_output", "off", "OUTP:STAT 0"),
        ("modulation_output", True, "OUTP:MOD 1"),
        ("modulation_output", False, "OUTP:MOD 0"),
        ("alc", True, "SOUR:POW:ALC 1"),
        ("alc", False, "SOUR:POW:ALC 0"),
        ("user_power_limit", 10, "SOUR:POW:USER:MAX 10.00"),
        ("user_power_limit", -5.125, "SOUR:POW:USER:MAX -5.12"),
        ("user_power_limit_enabled", True, "SOUR:POW:USER:ENAB 1"),
        ("user_power_limit_enabled", False, "SOUR:POW:USER:ENAB 0"),
        ("pulse_modulation", True, "PULM:STAT 1"),
        ("pulse_modulation", False, "PULM:STAT 0"),
        ("pulse_modulation_source", "internal", "PULM:SOUR INT"),
        ("pulse_modulation_source", "external", "PULM:SOUR EXT"),
    ],
)
def test_set_sends_exact_bytes_then_reads_error_queue(
    parameter: str, value: object, sent: str
) -> None:
    with expected_protocol(KeysightN5183B, [*INIT, *write(sent)]) as mw:
        getattr(mw, parameter).set(value)
        assert mw.visa_handle.written[-2:] == [f"{sent}\n".encode(), b"SYST:ERR?\n"]


@pytest.mark.parametrize(
    ("parameter", "query", "reply", "expected"),
    [
        ("frequency", "SOUR:FREQ?", "+5.00000000000000E+09", 5e9),
        ("frequency", "SOUR:FREQ?", "+9.00000000000000E+03", 9e3),
        ("power", "SOUR:POW?", "+1.00000000E+01", 10.0),
        ("power", "SOUR:POW?", "-2.00000000E+01", -20.0),
        ("phase_offset", "SOUR:PHAS?", "+1.50000000E+00", 1.5),
        ("auto_freq_ref", ":ROSC:SOUR:AUTO?", "1", True),
        ("rf_output", "OUTP:STAT?", "0", False),
        ("rf_output", "OUTP:STAT?", "1", True),
        ("modulation_output", "OUTP:MOD?", "1", True),
        ("alc", "SOUR:POW:ALC?", "0", False),
        ("reference_source", ":ROSC:SOUR?", "INT", "internal"),
        ("reference_source", ":ROSC:SOUR?", "EXT", "external"),
        ("user_power_limit", "SOUR:POW:USER:MAX?", "+1.20000000E+01", 12.0),
        ("user_power_limit_enabled", "SOUR:POW:USER:ENAB?", "1", True),
        ("pulse_modulation", "PULM:STAT?", "0", False),
        ("pulse_modulation_source", "PULM:SOUR?", "EXT", "external"),
    ],
)
def test_get_parses_reply_without_error_read(
    parameter: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(KeysightN5183B, [*INIT, (query, reply)]) as mw:
        value = getattr(mw, parameter).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_reference_source_is_read_only() -> None:
    with expected_protocol(KeysightN5183B, INIT) as mw:
        assert not mw.reference_source.settable


def test_settable_parameters_accept_their_own_get_output() -> None:
    transcript = [
        *INIT,
        ("SOUR:FREQ?", "+2.00000000000000E+10"), *write("SOUR:FREQ 20000000000.00"),
        ("SOUR:POW?", "+1.90000000E+01"), *write("SOUR:POW 19.00"),
        ("SOUR:POW:USER:MAX?", "-2.00000000E+01"), *write("SOUR:POW:USER:MAX -20.00"),
        ("PULM:SOUR?", "INT"), *write("PULM:SOUR INT"),
    ]
    with expected_protocol(KeysightN5183B, transcript) as mw:
        mw.frequency(mw.frequency())
        mw.power(mw.power())
        mw.user_power_limit(mw.user_power_limit())
        mw.pulse_modulation_source(mw.pulse_modulation_source())


# --- transcripts: errors and validators --------------------------------------------------------


def test_instrument_error_names_instrument_command_and_message() -> None:
    transcript = [
        *INIT,
        ("SOUR:POW 19.00", None),
        ("SYST:ERR?", '-221,"Settings conflict;Exceeds user power limit"'),
        ("SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(KeysightN5183B, transcript, name="mw") as mw,
        pytest.raises(InstrumentError) as info,
    ):
        mw.power(19)
    assert info.value.args[0] == (
        "mw: 'SOUR:POW 19.00' -> -221,\"Settings conflict;Exceeds user power limit\""
    )


def test_every_queued_error_is_drained_and_reported() -> None:
    transcript = [
        *INIT,
        ("SOUR:FREQ 5000000000.00", None),
        ("SYST:ERR?", OUT_OF_RANGE),
        ("SYST:ERR?", '-113,"Undefined header"'),
        ("SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(KeysightN5183B, transcript, name="mw") as mw,
        pytest.raises(InstrumentError) as info,
    ):
        mw.frequency(5e9)
    assert info.value.args[0] == (
        "mw: 'SOUR:FREQ 5000000000.00' -> -222,\"Data out of range\"; -113,\"Undefined header\""
    )


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("frequency", 8.999e3),
        ("frequency", 20.000001e9),
        ("frequency", -1.0),
        ("power", -20.01),
        ("power", 19.01),
        ("phase_offset", 3.2),
        ("user_power_limit", 19.5),
        ("user_power_limit", -21),
        ("rf_output", "maybe"),
        ("alc", 2),
        ("pulse_modulation_source", "INT"),  # the wire value, not the parameter's
        ("pulse_modulation_source", "square"),
    ],
)
def test_validators_refuse_before_any_byte_is_written(parameter: str, value: object) -> None:
    # The transcript holds the init traffic only: any further byte would fail the test.
    with expected_protocol(KeysightN5183B, INIT) as mw, pytest.raises(ValueError):
        getattr(mw, parameter).set(value)


# --- transcripts: safe state -------------------------------------------------------------------


def test_safe_state_turns_rf_off_then_modulation_off() -> None:
    transcript = [*INIT, *write("OUTP:STAT 0"), *write("PULM:STAT 0"), *write("OUTP:MOD 0")]
    with expected_protocol(KeysightN5183B, transcript) as mw:
        mw.safe_state()


def test_safe_state_without_pulse_option() -> None:
    transcript = [*init_traffic('"520"'), *write("OUTP:STAT 0"), *write("OUTP:MOD 0")]
    with expected_protocol(KeysightN5183B, transcript) as mw:
        mw.safe_state()


def test_safe_state_turns_modulation_off_even_if_rf_off_fails() -> None:
    transcript = [
        *INIT,
        ("OUTP:STAT 0", None), ("SYST:ERR?", '-310,"System error"'), ("SYST:ERR?", NO_ERROR),
        *write("PULM:STAT 0"),
        *write("OUTP:MOD 0"),
    ]
    with (
        expected_protocol(KeysightN5183B, transcript) as mw,
        pytest.raises(InstrumentError, match="OUTP:STAT 0"),
    ):
        mw.safe_state()


# --- the profile's twin keys -------------------------------------------------------------------


def test_profile_twin_keys() -> None:
    """The keys hil.sim will bind once the lab gives the device the twin slot ``mw_source``."""
    properties = yaml.safe_load(PROFILE.read_text())["devices"]["N5183B"]["properties"]
    twin = {name: prop["twin"] for name, prop in properties.items() if "twin" in prop}
    assert twin == {
        "frequency": {"state": "frequency_hz", "unit": "Hz"},
        "power": {"state": "power_w", "unit": "dBm"},
        "output": {"state": "output", "unit": "bool"},
    }
    assert {spec["unit"] for spec in twin.values()} <= set(KNOWN_UNITS)


# --- plain pyvisa-sim profile ------------------------------------------------------------------


@pytest.fixture
def sim_mw(profile_copy: Callable[[str], str]) -> KeysightN5183B:
    return KeysightN5183B("mw", ADDRESS, visalib=profile_copy("keysight_n5183b.yaml"))


def test_sim_defaults(sim_mw: KeysightN5183B) -> None:
    mw = sim_mw
    assert mw.options == {"1E1", "1EA", "520", "UNW"}
    assert mw.frequency() == 5e9
    assert mw.power() == -20.0
    assert mw.rf_output() is False
    assert mw.modulation_output() is False
    assert mw.pulse_modulation() is False
    assert mw.pulse_modulation_source() == "internal"
    assert mw.reference_source() == "internal"
    assert mw.auto_freq_ref() is True
    assert mw.alc() is True
    assert mw.user_power_limit() == 19.0
    assert mw.user_power_limit_enabled() is False
    assert mw.get_idn()["serial"] == "MY59100001"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("frequency", 9e3),
        ("frequency", 20e9),
        ("frequency", 7.123456789e9),
        ("power", -20.0),
        ("power", 19.0),
        ("power", -3.25),
        ("phase_offset", -3.14),
        ("phase_offset", 0.5),
        ("auto_freq_ref", False),
        ("rf_output", True),
        ("modulation_output", True),
        ("alc", False),
        ("user_power_limit", 0.0),
        ("user_power_limit_enabled", True),
        ("pulse_modulation", True),
        ("pulse_modulation_source", "external"),
    ],
)
def test_sim_round_trip(sim_mw: KeysightN5183B, parameter: str, value: object) -> None:
    param = getattr(sim_mw, parameter)
    param.set(value)
    param.cache.invalidate()
    got = param.get()
    if isinstance(value, float):
        assert got == pytest.approx(value, abs=0.005)  # sent with 2 decimals
    else:
        assert got == value
    assert sim_mw.ask("SYST:ERR?") == NO_ERROR


def test_sim_safe_state(sim_mw: KeysightN5183B) -> None:
    sim_mw.rf_output(True)
    sim_mw.modulation_output(True)
    sim_mw.pulse_modulation(True)
    sim_mw.safe_state()
    assert sim_mw.rf_output.get() is False
    assert sim_mw.modulation_output.get() is False
    assert sim_mw.pulse_modulation.get() is False


def test_sim_raw_out_of_range_write_queues_instrument_error(sim_mw: KeysightN5183B) -> None:
    sim_mw.visa_handle.write("SOUR:FREQ 25000000000.00")
    assert sim_mw.ask("SYST:ERR?") == OUT_OF_RANGE
    assert sim_mw.ask("SYST:ERR?") == NO_ERROR
    assert sim_mw.frequency() == 5e9


def test_sim_driver_write_out_of_range_raises(sim_mw: KeysightN5183B) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_mw.write("SOUR:POW 25.00")
    assert info.value.args[0] == "mw: 'SOUR:POW 25.00' -> -222,\"Data out of range\""
    assert sim_mw.ask("SYST:ERR?") == NO_ERROR


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("keysight_n5183b.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        mw = KeysightN5183B("mw", ADDRESS, visalib=visalib)
        snapshot = mw.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    values = {name: p["value"] for name, p in snapshot["parameters"].items()}
    assert values["frequency"] == 5e9
    assert values["power"] == -20.0
    assert values["rf_output"] is False
    assert values["pulse_modulation_source"] == "internal"
    assert values["reference_source"] == "internal"
    assert values["IDN"]["model"] == "N5183B"


def test_sim_isolation_first_changes_state(sim_mw: KeysightN5183B) -> None:
    sim_mw.rf_output(True)
    sim_mw.frequency(12e9)
    assert sim_mw.rf_output.get() is True


def test_sim_isolation_second_sees_defaults(sim_mw: KeysightN5183B) -> None:
    assert sim_mw.rf_output.get() is False
    assert sim_mw.frequency() == 5e9


def test_power_in_watts_goes_through_the_dbm_power() -> None:
    """1 mW = 0 dBm; 20 mW = 10 log10(20) = 13.01 dBm (rounded to the 0.01 dB the driver sends)."""
    transcript = [*INIT, *scpi_write("SOUR:POW 13.01"), ("SOUR:POW?", "+1.30100000E+01")]
    with expected_protocol(KeysightN5183B, transcript) as mw:
        mw.power_w(20e-3)
        assert mw.power_w() == pytest.approx(10 ** (13.01 / 10) * 1e-3, rel=1e-12)
