"""Lake Shore 372 driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hil.sim.units import KNOWN_UNITS
from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.lakeshore_372 import (
    LakeShore372,
    LakeShore372Channel,
    decode_reading_status,
    format_number,
)

ADDRESS = "TCPIP0::192.168.1.70::7777::SOCKET"
IDN = "LSCI,MODEL372,LSA2245,1.3"
PROFILE = Path(__file__).resolve().parent.parent / "sim_profiles" / "lakeshore_372.yaml"


def write(command: str) -> list[Exchange]:
    """A write followed by the *ESR? read that finds no error bit."""
    return scpi_write(command, error_query="*ESR?", no_error="0")


INIT: list[Exchange] = [("*ESR?", "0"), ("*IDN?", IDN)]


# --- transcripts: init ---------------------------------------------------------------------------


def test_init_clears_event_register_then_reads_idn() -> None:
    with expected_protocol(LakeShore372, INIT, name="ls") as ls:
        assert ls.visa_handle.write_termination == "\r\n"
        assert ls.visa_handle.read_termination == "\r\n"
        assert ls.visa_handle.written == [b"*ESR?\r\n", b"*IDN?\r\n"]
        assert len(ls.channels) == 16
        assert [ch.short_name for ch in ls.channels][:2] == ["ch01", "ch02"]
        assert ls.channels[5] is ls.ch06
        assert ls.ch06.channel == 6
        assert isinstance(ls.ch16, LakeShore372Channel)
        assert ls.mxc_channel == 6


def test_idn_is_parsed() -> None:
    with expected_protocol(LakeShore372, [*INIT, ("*IDN?", IDN)]) as ls:
        assert ls.get_idn() == {
            "vendor": "LSCI", "model": "372", "serial": "LSA2245", "firmware": "1.3",
        }


@pytest.mark.parametrize("mxc_channel", [0, 17])
def test_mxc_channel_out_of_range_is_refused_before_any_byte(mxc_channel: int) -> None:
    with (
        pytest.raises(ValueError, match="mxc_channel"),
        expected_protocol(LakeShore372, [], mxc_channel=mxc_channel),
    ):
        pass


# --- transcripts: readings and decoding ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "reply", "expected"),
    [
        ("ch06.temperature", "RDGK? 6", "+1.20000E-02", 0.012),
        ("ch01.temperature", "RDGK? 1", "+4.51230E+01", 45.123),
        ("ch16.temperature", "RDGK? 16", "+0.00000E+00", 0.0),
        ("ch06.resistance", "RDGR? 6", "+1.83456E+04", 18345.6),
        ("ch06.excitation_power", "RDGPWR? 6", "+2.50000E-15", 2.5e-15),
        ("ch03.status", "RDGST? 3", "000", ()),
        ("ch03.status", "RDGST? 3", "017", ("CS OVL", "R. OVER")),
        ("ch03.status", "RDGST? 3", "160", ("R. UNDER", "T. UNDER")),
        ("ch06.sensor_name", "INNAME? 6", '"MXC"', "MXC"),
        ("ch06.sensor_name", "INNAME? 6", "MXC            ", "MXC"),
        ("mxc_temperature", "RDGK? 6", "+9.87000E-03", 0.00987),
        ("sample_heater.current_range", "RANGE? 0", "0", 0.0),
        ("sample_heater.current_range", "RANGE? 0", "1", 31.6e-6),
        ("sample_heater.current_range", "RANGE? 0", "5", 3.16e-3),
        ("sample_heater.current_range", "RANGE? 0", "8", 100e-3),
        ("sample_heater.setpoint", "SETP? 0", "+1.25000E-02", 0.0125),
        ("sample_heater.manual_output", "MOUT? 0", "+12.500", 12.5),
        ("sample_heater.heater_output", "HTR?", "+3.20000E-05", 3.2e-5),
        ("sample_heater.status", "HTRST? 0", "0", "ok"),
        ("sample_heater.status", "HTRST? 0", "1", "open"),
        ("sample_heater.status", "HTRST? 0", "2", "short"),
        ("warmup_heater.enabled", "RANGE? 1", "1", True),
        ("warmup_heater.status", "HTRST? 1", "2", "short"),
        ("warmup_heater.output_percent", "AOUT? 1", "+25.000", 25.0),
        ("still_heater.enabled", "RANGE? 2", "0", False),
        ("still_heater.power_percent", "STILL?", "+35.000", 35.0),
        ("still_heater.output_percent", "AOUT? 2", "+35.000", 35.0),
    ],
)
def test_get_parses_reply_without_esr_read(
    path: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(LakeShore372, [*INIT, (query, reply)]) as ls:
        value = _parameter(ls, path).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_mxc_temperature_reads_the_configured_channel() -> None:
    transcript = [*INIT, ("RDGK? 5", "+1.10000E-02")]
    with expected_protocol(LakeShore372, transcript, mxc_channel=5) as ls:
        assert ls.mxc_temperature() == pytest.approx(0.011)


def test_decode_reading_status_names_every_bit() -> None:
    assert decode_reading_status("255") == (
        "CS OVL", "VCM OVL", "VMIX OVL", "VDIF OVL", "R. OVER", "R. UNDER", "T. OVER", "T. UNDER",
    )
    assert decode_reading_status(0) == ()


@pytest.mark.parametrize(
    ("value", "text"),
    [(100.0, "100"), (0.45, "0.45"), (0, "0"), (-0.0, "0"), (0.0125, "0.0125"),
     (1e-5, "0.00001"), (12.3456789, "12.3457"), (2500, "2500")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


# --- transcripts: plain sets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "sent"),
    [
        ("sample_heater.current_range", 0, "RANGE 0,0"),
        ("sample_heater.current_range", 31.6e-6, "RANGE 0,1"),
        ("sample_heater.current_range", 100e-6, "RANGE 0,2"),
        ("sample_heater.current_range", 316e-6, "RANGE 0,3"),
        ("sample_heater.current_range", 1e-3, "RANGE 0,4"),
        ("sample_heater.current_range", 3.16e-3, "RANGE 0,5"),
        ("sample_heater.current_range", 10e-3, "RANGE 0,6"),
        ("sample_heater.current_range", 31.6e-3, "RANGE 0,7"),
        ("sample_heater.current_range", 100e-3, "RANGE 0,8"),
        ("sample_heater.setpoint", 0.1, "SETP 0,0.1"),
        ("sample_heater.setpoint", 0.0125, "SETP 0,0.0125"),
        ("sample_heater.setpoint", 300, "SETP 0,300"),
        ("sample_heater.manual_output", 12.5, "MOUT 0,12.5"),
        ("sample_heater.manual_output", 0, "MOUT 0,0"),
        ("sample_heater.manual_output", 100, "MOUT 0,100"),
        ("warmup_heater.enabled", True, "RANGE 1,1"),
        ("warmup_heater.enabled", False, "RANGE 1,0"),
        ("still_heater.enabled", True, "RANGE 2,1"),
        ("still_heater.enabled", False, "RANGE 2,0"),
        ("still_heater.power_percent", 35, "STILL 35"),
        ("still_heater.power_percent", 0, "STILL 0"),
        ("still_heater.power_percent", 12.3456789, "STILL 12.3457"),
        ("ch06.sensor_name", "MXC", 'INNAME 6,"MXC"'),
        ("ch12.sensor_name", "Still plate", 'INNAME 12,"Still plate"'),
    ],
)
def test_set_sends_exact_bytes_then_reads_esr(path: str, value: object, sent: str) -> None:
    with expected_protocol(LakeShore372, [*INIT, *write(sent)]) as ls:
        _parameter(ls, path).set(value)
        assert ls.visa_handle.written[-2:] == [f"{sent}\r\n".encode(), b"*ESR?\r\n"]


# --- transcripts: group parameters ---------------------------------------------------------------


def test_inset_group_reads_all_fields_and_writes_them_back_canonical() -> None:
    transcript = [
        *INIT,
        ("INSET? 6", "1,010,003,00,1"),
        *write("INSET 6,1,20,3,0,1"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        ch = ls.ch06
        assert ch.enabled() is True
        assert (ch.dwell.get_latest(), ch.pause.get_latest(), ch.curve.get_latest()) == (10, 3, 0)
        assert ch.tempco.get_latest() == "negative"
        ch.dwell(20)
        assert ch.dwell.get_latest() == 20


def test_inset_set_with_empty_cache_reads_the_group_first() -> None:
    transcript = [*INIT, ("INSET? 3", "0,10,3,0,1"), *write("INSET 3,1,10,3,0,1")]
    with expected_protocol(LakeShore372, transcript) as ls:
        ls.ch03.enabled(True)


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("enabled", False, "INSET 6,0,10,3,0,1"),
        ("dwell", 1, "INSET 6,1,1,3,0,1"),
        ("dwell", 200, "INSET 6,1,200,3,0,1"),
        ("pause", 3, "INSET 6,1,10,3,0,1"),
        ("pause", 200, "INSET 6,1,10,200,0,1"),
        ("curve", 59, "INSET 6,1,10,3,59,1"),
        ("tempco", "positive", "INSET 6,1,10,3,0,2"),
    ],
)
def test_inset_fields(parameter: str, value: object, sent: str) -> None:
    transcript = [*INIT, ("INSET? 6", "1,10,3,0,1"), *write(sent)]
    with expected_protocol(LakeShore372, transcript) as ls:
        getattr(ls.ch06, parameter).set(value)


def test_intype_group_decodes_fields() -> None:
    transcript = [*INIT, ("INTYPE? 6", "1,07,2,22,1,2")]
    with expected_protocol(LakeShore372, transcript) as ls:
        ch = ls.ch06
        assert ch.excitation_mode() == "current"
        assert ch.excitation_range.get_latest() == 7
        assert ch.autorange.get_latest() == "rox102b"
        assert ch.resistance_range.get_latest() == 63.2e6
        assert ch.current_source_shunted.get_latest() is True
        assert ch.units.get_latest() == "ohms"


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("excitation_mode", "current", "INTYPE 6,1,4,1,12,0,1"),
        ("excitation_range", 12, "INTYPE 6,0,12,1,12,0,1"),
        ("autorange", "off", "INTYPE 6,0,4,0,12,0,1"),
        ("autorange", "rox102b", "INTYPE 6,0,4,2,12,0,1"),
        ("resistance_range", 2e-3, "INTYPE 6,0,4,1,1,0,1"),
        ("resistance_range", 6.32e3, "INTYPE 6,0,4,1,14,0,1"),
        ("resistance_range", 63.2e6, "INTYPE 6,0,4,1,22,0,1"),
        ("current_source_shunted", True, "INTYPE 6,0,4,1,12,1,1"),
        ("units", "ohms", "INTYPE 6,0,4,1,12,0,2"),
    ],
)
def test_intype_fields(parameter: str, value: object, sent: str) -> None:
    transcript = [*INIT, ("INTYPE? 6", "0,4,1,12,0,1"), *write(sent)]
    with expected_protocol(LakeShore372, transcript) as ls:
        getattr(ls.ch06, parameter).set(value)


def test_outmode_group_decodes_fields_including_control_input_a() -> None:
    transcript = [*INIT, ("OUTMODE? 0", "5,A,0,1,1,010"), *write("OUTMODE 0,2,A,0,1,1,10")]
    with expected_protocol(LakeShore372, transcript) as ls:
        heater = ls.sample_heater
        assert heater.mode() == "closed_loop"
        assert heater.input_channel.get_latest() == "A"
        assert heater.powerup_enable.get_latest() is False
        assert heater.polarity.get_latest() == "bipolar"
        assert heater.use_filter.get_latest() is True
        assert heater.delay.get_latest() == 10
        heater.mode("open_loop")


@pytest.mark.parametrize(
    ("module", "parameter", "value", "sent"),
    [
        ("sample_heater", "mode", "off", "OUTMODE 0,0,6,0,0,0,1"),
        ("sample_heater", "mode", "closed_loop", "OUTMODE 0,5,6,0,0,0,1"),
        ("sample_heater", "input_channel", "A", "OUTMODE 0,2,A,0,0,0,1"),
        ("sample_heater", "input_channel", 16, "OUTMODE 0,2,16,0,0,0,1"),
        ("sample_heater", "powerup_enable", True, "OUTMODE 0,2,6,1,0,0,1"),
        ("sample_heater", "polarity", "bipolar", "OUTMODE 0,2,6,0,1,0,1"),
        ("sample_heater", "use_filter", True, "OUTMODE 0,2,6,0,0,1,1"),
        ("sample_heater", "delay", 255, "OUTMODE 0,2,6,0,0,0,255"),
        ("warmup_heater", "mode", "warm_up", "OUTMODE 1,6,6,0,0,0,1"),
        ("still_heater", "mode", "still", "OUTMODE 2,4,6,0,0,0,1"),
        ("still_heater", "mode", "monitor_out", "OUTMODE 2,1,6,0,0,0,1"),
        ("still_heater", "mode", "zone", "OUTMODE 2,3,6,0,0,0,1"),
    ],
)
def test_outmode_fields(module: str, parameter: str, value: object, sent: str) -> None:
    output = {"sample_heater": 0, "warmup_heater": 1, "still_heater": 2}[module]
    transcript = [*INIT, (f"OUTMODE? {output}", "2,6,0,0,0,1"), *write(sent)]
    with expected_protocol(LakeShore372, transcript) as ls:
        getattr(getattr(ls, module), parameter).set(value)


def test_pid_group() -> None:
    transcript = [
        *INIT,
        ("PID? 0", "+10.0000,+20.0000,+0.0000"),
        *write("PID 0,50,20,0"),
        *write("PID 0,50,10000,2500"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        heater = ls.sample_heater
        heater.P(50)
        assert (heater.P.get_latest(), heater.I.get_latest(), heater.D.get_latest()) == (50, 20, 0)
        heater.pid_group.set_parameters({"I": 10000, "D": 2500})


def test_pid_values_are_parsed_as_floats() -> None:
    transcript = [*INIT, ("PID? 0", "+12.5000,+300.000,+2.5000")]
    with expected_protocol(LakeShore372, transcript) as ls:
        assert ls.sample_heater.P() == 12.5
        assert ls.sample_heater.I.get_latest() == 300.0
        assert ls.sample_heater.D.get_latest() == 2.5


def test_sample_heater_htrset_uses_the_372_layout() -> None:
    transcript = [
        *INIT,
        ("HTRSET? 0", "+120.000,0,+0.000,1"),
        *write("HTRSET 0,120,0,0,2"),
        *write("HTRSET 0,1.5,0,0,2"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        heater = ls.sample_heater
        assert heater.resistance() == 120.0
        assert heater.display.get_latest() == "current"
        heater.display("power")
        heater.resistance(1.5)


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("resistance", 25, "HTRSET 1,1,0,0.3,1"),
        ("resistance", 50, "HTRSET 1,2,0,0.3,1"),
        ("max_current", 0.45, "HTRSET 1,2,1,0.3,1"),
        ("max_current", 0.63, "HTRSET 1,2,2,0.3,1"),
        ("max_current", "user", "HTRSET 1,2,0,0.3,1"),
        ("max_user_current", 0.5, "HTRSET 1,2,0,0.5,1"),
        ("display", "power", "HTRSET 1,2,0,0.3,2"),
    ],
)
def test_warmup_heater_htrset_fields(parameter: str, value: object, sent: str) -> None:
    transcript = [*INIT, ("HTRSET? 1", "2,0,+0.300,1"), *write(sent)]
    with expected_protocol(LakeShore372, transcript) as ls:
        getattr(ls.warmup_heater, parameter).set(value)


def test_warmup_heater_htrset_decodes_fields() -> None:
    with expected_protocol(LakeShore372, [*INIT, ("HTRSET? 1", "1,2,+0.000,2")]) as ls:
        heater = ls.warmup_heater
        assert heater.resistance() == 25.0
        assert heater.max_current.get_latest() == 0.63
        assert heater.max_user_current.get_latest() == 0.0
        assert heater.display.get_latest() == "power"


def test_scan_group() -> None:
    transcript = [*INIT, ("SCAN?", "06,1"), *write("SCAN 3,1"), *write("SCAN 3,0")]
    with expected_protocol(LakeShore372, transcript) as ls:
        assert ls.scan_channel() == 6
        assert ls.autoscan.get_latest() is True
        ls.scan_channel(3)
        ls.autoscan(False)


def test_group_reply_with_wrong_field_count_is_an_error() -> None:
    with (
        expected_protocol(LakeShore372, [*INIT, ("INSET? 6", "1,10,3")]) as ls,
        pytest.raises(ValueError, match=r"'INSET\? 6' has 3 fields, expected 5"),
    ):
        ls.ch06.dwell()


# --- transcripts: heater power ---------------------------------------------------------------


def test_power_is_htr_reading_when_display_is_power() -> None:
    transcript = [*INIT, ("HTRSET? 0", "+100.000,0,+0.000,2"), ("HTR?", "+2.50000E-05")]
    with expected_protocol(LakeShore372, transcript) as ls:
        assert ls.sample_heater.power() == pytest.approx(2.5e-5)


def test_power_from_percent_of_range_current_when_display_is_current() -> None:
    # 50 % of the 1 mA range into 100 ohm: (0.5 mA)^2 * 100 ohm = 25 uW
    transcript = [
        *INIT, ("HTRSET? 0", "+100.000,0,+0.000,1"), ("HTR?", "+50.000"), ("RANGE? 0", "4"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        assert ls.sample_heater.power() == pytest.approx(25e-6)


def test_heater_power_is_the_sample_heater_power() -> None:
    transcript = [*INIT, ("HTRSET? 0", "+100.000,0,+0.000,2"), ("HTR?", "+1.00000E-06")]
    with expected_protocol(LakeShore372, transcript) as ls:
        assert ls.heater_power() == pytest.approx(1e-6)


# --- transcripts: errors (*ESR?) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("esr", "names"),
    [
        ("32", "command error"),
        ("16", "execution error"),
        ("4", "query error"),
        ("48", "execution error, command error"),
        ("160", "command error"),  # PON is not an error, CME is
    ],
)
def test_refused_command_raises_with_instrument_command_and_bits(esr: str, names: str) -> None:
    transcript = [*INIT, ("RANGE 0,8", None), ("*ESR?", esr)]
    with (
        expected_protocol(LakeShore372, transcript, name="ls") as ls,
        pytest.raises(InstrumentError) as info,
    ):
        ls.sample_heater.current_range(100e-3)
    assert info.value.args[0] == f"ls: 'RANGE 0,8' -> *ESR? {esr} ({names})"


@pytest.mark.parametrize("esr", ["0", "1", "64", "128", "193"])
def test_opc_urq_and_pon_bits_are_not_errors(esr: str) -> None:
    transcript = [*INIT, ("RANGE 1,0", None), ("*ESR?", esr)]
    with expected_protocol(LakeShore372, transcript) as ls:
        ls.warmup_heater.enabled(False)


def test_unparsable_esr_reply_raises() -> None:
    transcript = [*INIT, ("STILL 0", None), ("*ESR?", "+1.00000E-02")]
    with (
        expected_protocol(LakeShore372, transcript, name="ls") as ls,
        pytest.raises(InstrumentError, match=r"unparsable reply '\+1.00000E-02' to \*ESR\?"),
    ):
        ls.still_heater.power_percent(0)


# --- transcripts: validators ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("ch06.dwell", 0),
        ("ch06.dwell", 201),
        ("ch06.pause", 2),
        ("ch06.curve", 60),
        ("ch06.tempco", "neg"),
        ("ch06.excitation_range", 23),
        ("ch06.excitation_range", 0),
        ("ch06.resistance_range", 1e3),
        ("ch06.autorange", True),
        ("ch06.units", "K"),
        ("ch06.sensor_name", "a name too long!"),
        ("ch06.sensor_name", 'say "MXC"'),
        ("ch06.sensor_name", 6),
        ("sample_heater.current_range", 5e-3),
        ("sample_heater.current_range", 8),
        ("sample_heater.setpoint", -0.001),
        ("sample_heater.P", 1000.1),
        ("sample_heater.I", 10001),
        ("sample_heater.D", 2501),
        ("sample_heater.D", -1),
        ("sample_heater.manual_output", 100.1),
        ("sample_heater.resistance", 0.5),
        ("sample_heater.resistance", 2001),
        ("sample_heater.mode", "manual"),
        ("sample_heater.input_channel", 17),
        ("sample_heater.input_channel", "B"),
        ("sample_heater.delay", 256),
        ("warmup_heater.resistance", 30),
        ("warmup_heater.max_current", 0.5),
        ("warmup_heater.max_user_current", 0.7),
        ("warmup_heater.enabled", 2),
        ("still_heater.power_percent", 100.1),
        ("still_heater.power_percent", -1),
        ("scan_channel", 17),
        ("scan_channel", 0),
    ],
)
def test_validators_refuse_before_any_byte_is_written(path: str, value: object) -> None:
    # The transcript holds the init traffic only: any further byte would fail the test.
    # (qcodes raises TypeError for a value of the wrong type, ValueError for one out of range.)
    with expected_protocol(LakeShore372, INIT) as ls, pytest.raises((TypeError, ValueError)):
        _parameter(ls, path).set(value)


@pytest.mark.parametrize(
    "path",
    ["ch06.temperature", "ch06.resistance", "ch06.excitation_power", "ch06.status",
     "mxc_temperature", "heater_power", "sample_heater.power", "sample_heater.heater_output",
     "sample_heater.status", "warmup_heater.status", "warmup_heater.output_percent",
     "still_heater.output_percent"],
)
def test_readings_are_get_only(path: str) -> None:
    with expected_protocol(LakeShore372, INIT) as ls:
        assert not _parameter(ls, path).settable


# --- transcripts: safe state ---------------------------------------------------------------------


def test_safe_state_turns_every_heater_off() -> None:
    transcript = [
        *INIT, *write("RANGE 0,0"), *write("RANGE 1,0"), *write("RANGE 2,0"), *write("STILL 0"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        ls.safe_state()


def test_safe_state_goes_on_after_a_refused_step() -> None:
    transcript = [
        *INIT,
        ("RANGE 0,0", None), ("*ESR?", "16"),
        *write("RANGE 1,0"), *write("RANGE 2,0"), *write("STILL 0"),
    ]
    with (
        expected_protocol(LakeShore372, transcript) as ls,
        pytest.raises(InstrumentError, match="RANGE 0,0"),
    ):
        ls.safe_state()


# --- the profile's twin keys ---------------------------------------------------------------------


def test_profile_twin_keys() -> None:
    """The keys hil.sim will bind once the lab gives the device the twin slot ``cryostat``."""
    device = yaml.safe_load(PROFILE.read_text())["devices"]["LS372"]
    twin = {name: prop["twin"] for name, prop in device["properties"].items() if "twin" in prop}
    assert twin == {
        "mxc_temperature": {"reading": "mxc_temperature_k", "unit": "K"},
        "sample_heater_range": {"state": "sample_heater_range", "unit": "1"},
        "warmup_heater_range": {"state": "warmup_heater_range", "unit": "1"},
        "still_heater_range": {"state": "still_heater_range", "unit": "1"},
        "sample_heater_mout": {"state": "sample_heater_mout", "unit": "1"},
        "sample_heater_output": {"reading": "sample_heater_power_w", "unit": "W"},
        "sample_heater_output_q": {"reading": "sample_heater_power_w", "unit": "W"},  # HTR? 0
        "still_heater": {"state": "still_heater_percent", "unit": "1"},
    }
    assert {spec["unit"] for spec in twin.values()} <= set(KNOWN_UNITS)
    assert device["properties"]["mxc_temperature"]["getter"]["q"] == "RDGK? 6"
    # hil.sim binds device-level properties only: none inside the channel block.
    assert not any("twin" in p for p in device["channels"]["input"]["properties"].values())


# --- plain pyvisa-sim profile --------------------------------------------------------------------


@pytest.fixture
def sim_ls(profile_copy: Callable[[str], str]) -> LakeShore372:
    return LakeShore372("ls", ADDRESS, visalib=profile_copy("lakeshore_372.yaml"))


def test_sim_defaults(sim_ls: LakeShore372) -> None:
    ls = sim_ls
    assert ls.mxc_temperature() == pytest.approx(0.012)
    assert ls.ch06.temperature() == pytest.approx(0.012)  # the device-level property shadows it
    assert ls.ch01.temperature() == pytest.approx(1.5)
    assert ls.ch01.resistance() == pytest.approx(2000.0)
    assert ls.ch01.excitation_power() == pytest.approx(1e-15)
    assert ls.ch01.status() == ()
    assert ls.ch01.sensor_name() == "RuOx"
    assert (ls.ch01.enabled(), ls.ch01.dwell(), ls.ch01.pause(), ls.ch01.curve()) == (True, 10, 3, 0)
    assert ls.ch01.excitation_mode() == "voltage"
    assert ls.ch01.resistance_range() == 632.0
    assert (ls.scan_channel(), ls.autoscan()) == (6, False)
    assert ls.sample_heater.current_range() == 0.0
    assert ls.sample_heater.resistance() == 120.0
    assert ls.sample_heater.display() == "power"
    assert ls.sample_heater.power() == 0.0
    assert ls.sample_heater.status() == "ok"
    assert (ls.sample_heater.P(), ls.sample_heater.I(), ls.sample_heater.D()) == (10.0, 20.0, 0.0)
    assert ls.sample_heater.mode() == "off"
    assert ls.warmup_heater.resistance() == 25.0
    assert ls.warmup_heater.max_current() == 0.63
    assert ls.still_heater.mode() == "still"
    assert ls.still_heater.power_percent() == 0.0
    assert ls.get_idn()["serial"] == "LSA2245"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("ch03.enabled", False),
        ("ch03.dwell", 200),
        ("ch03.pause", 30),
        ("ch03.curve", 21),
        ("ch03.tempco", "positive"),
        ("ch03.excitation_mode", "current"),
        ("ch03.excitation_range", 12),
        ("ch03.autorange", "off"),
        ("ch03.resistance_range", 63.2e3),
        ("ch03.current_source_shunted", True),
        ("ch03.units", "ohms"),
        ("ch03.sensor_name", "4K plate"),
        ("scan_channel", 16),
        ("autoscan", True),
        ("sample_heater.current_range", 3.16e-3),
        ("sample_heater.setpoint", 0.0125),
        ("sample_heater.P", 50.0),
        ("sample_heater.I", 300.0),
        ("sample_heater.D", 2.5),
        ("sample_heater.manual_output", 12.5),
        ("sample_heater.resistance", 120.0),
        ("sample_heater.display", "current"),
        ("sample_heater.mode", "closed_loop"),
        ("sample_heater.input_channel", "A"),
        ("sample_heater.input_channel", 6),
        ("sample_heater.delay", 255),
        ("warmup_heater.enabled", True),
        ("warmup_heater.resistance", 50.0),
        ("warmup_heater.max_current", "user"),
        ("warmup_heater.max_user_current", 0.3),
        ("still_heater.enabled", True),
        ("still_heater.power_percent", 35.0),
        ("still_heater.mode", "open_loop"),
    ],
)
def test_sim_round_trip(sim_ls: LakeShore372, path: str, value: object) -> None:
    param = _parameter(sim_ls, path)
    param.set(value)
    param.cache.invalidate()
    assert param.get() == value
    assert sim_ls.ask("*ESR?") == "0"


def test_sim_channels_keep_their_own_values(sim_ls: LakeShore372) -> None:
    sim_ls.ch03.dwell(42)
    sim_ls.ch03.sensor_name("Cold plate")
    sim_ls.ch04.dwell.cache.invalidate()
    assert sim_ls.ch04.dwell() == 10
    assert sim_ls.ch04.sensor_name() == "RuOx"
    assert sim_ls.ch03.sensor_name() == "Cold plate"


def test_sim_safe_state(sim_ls: LakeShore372) -> None:
    sim_ls.sample_heater.current_range(10e-3)
    sim_ls.warmup_heater.enabled(True)
    sim_ls.still_heater.enabled(True)
    sim_ls.still_heater.power_percent(40)
    sim_ls.safe_state()
    assert sim_ls.sample_heater.current_range.get() == 0.0
    assert sim_ls.warmup_heater.enabled.get() is False
    assert sim_ls.still_heater.enabled.get() is False
    assert sim_ls.still_heater.power_percent.get() == 0.0


def test_sim_raw_out_of_range_write_sets_command_error_bit(sim_ls: LakeShore372) -> None:
    sim_ls.visa_handle.write("RANGE 0,9")
    assert sim_ls.ask("*ESR?") == "32"
    assert sim_ls.ask("*ESR?") == "0"  # read clears it
    assert sim_ls.sample_heater.current_range() == 0.0


def test_sim_driver_write_out_of_range_raises(sim_ls: LakeShore372) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_ls.write("STILL 101")
    assert info.value.args[0] == "ls: 'STILL 101' -> *ESR? 32 (command error)"
    assert sim_ls.ask("*ESR?") == "0"


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("lakeshore_372.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        ls = LakeShore372("ls", ADDRESS, visalib=visalib)
        snapshot = ls.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    values = {name: p["value"] for name, p in snapshot["parameters"].items()}
    assert values["mxc_temperature"] == pytest.approx(0.012)
    assert values["IDN"]["model"] == "372"
    modules = snapshot["submodules"]
    assert modules["ch06"]["parameters"]["dwell"]["value"] == 10
    assert modules["sample_heater"]["parameters"]["power"]["value"] == 0.0
    assert modules["still_heater"]["parameters"]["mode"]["value"] == "still"


def test_sim_isolation_first_changes_state(sim_ls: LakeShore372) -> None:
    sim_ls.sample_heater.current_range(100e-3)
    sim_ls.ch02.dwell(99)
    assert sim_ls.sample_heater.current_range.get() == 100e-3


def test_sim_isolation_second_sees_defaults(sim_ls: LakeShore372) -> None:
    assert sim_ls.sample_heater.current_range.get() == 0.0
    assert sim_ls.ch02.dwell() == 10


# --- helpers -------------------------------------------------------------------------------------


def _parameter(instrument: LakeShore372, path: str):
    """``"sample_heater.P"`` -> instrument.sample_heater.P"""
    obj: object = instrument
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def test_heater_power_is_driven_open_loop_and_the_resistance_corrected_from_the_readback() -> None:
    """10 µW into a heater the setup calls 100 Ohm: I = sqrt(P/R) = 316.2 µA, on the 1 mA range
    (the 316 µA range leaves no 10 % headroom) at 31.6228 %. The controller reads back 12 µW,
    so the heater is R = 100 Ohm x 12/10 = 120 Ohm; at 120 Ohm, I = sqrt(10 µW / 120 Ohm) =
    288.7 µA: 28.8675 % of the same range, the range set first since it does not go up."""
    transcript = [
        *INIT,
        ("HTRSET? 0", "+100.000,0,+0.000,2"),
        *write("MOUT 0,31.6228"),
        *write("RANGE 0,4"),
        ("HTRSET? 0", "+100.000,0,+0.000,2"),
        ("HTR?", "+1.2000E-05"),
        *write("RANGE 0,4"),
        *write("MOUT 0,28.8675"),
    ]
    with expected_protocol(LakeShore372, transcript) as ls:
        ls.set_heater_power(10e-6)
        assert ls.heater_resistance_ohm == pytest.approx(120.0, rel=1e-9)


def test_heater_off_sets_range_then_output_to_zero() -> None:
    transcript = [*INIT, *write("RANGE 0,0"), *write("MOUT 0,0")]
    with expected_protocol(LakeShore372, transcript) as ls:
        ls.heater_off()


def test_a_heater_power_beyond_the_largest_range_is_refused_before_any_write() -> None:
    """1 W into 100 Ohm needs 100 mA, the largest range: beyond its 90 % headroom."""
    transcript = [*INIT, ("HTRSET? 0", "+100.000,0,+0.000,2")]
    with expected_protocol(LakeShore372, transcript) as ls, \
            pytest.raises(ValueError, match="beyond the largest range"):
        ls.set_heater_power(1.0)
