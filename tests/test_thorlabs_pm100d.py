"""Thorlabs PM100D driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import pytest

from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.thorlabs_pm100d import ThorlabsPM100D

ADDRESS = "USB0::0x1313::0x8078::P0012345::INSTR"
NO_ERROR = '+0,"No error"'
OUT_OF_RANGE = '-222,"Data out of range"'
IDN = "Thorlabs,PM100D,P0012345,1.6.0"


def init_traffic(wav_min: str = "8.000000E+02", wav_max: str = "1.700000E+03") -> list[Exchange]:
    """Init traffic; the wavelength range is that of the sensor head plugged in."""
    return [
        ("SYST:ERR?", NO_ERROR),  # at connect: what an earlier client left
        *scpi_write("SENS:POW:DC:UNIT W"),
        ("SENS:CORR:WAV? MIN", wav_min),
        ("SENS:CORR:WAV? MAX", wav_max),
        ("*IDN?", IDN),
    ]


INIT = init_traffic()


# --- transcripts -------------------------------------------------------------------------------


def test_init_traffic_sets_watts_and_reads_sensor_range() -> None:
    with expected_protocol(ThorlabsPM100D, INIT, name="pm") as pm:
        assert pm.wavelength.vals.valid_values == (800e-9, 1700e-9)
        assert pm.visa_handle.write_termination == "\n"
        assert pm.visa_handle.read_termination == "\n"
        assert pm.visa_handle.written[:2] == [b"SYST:ERR?\n", b"SENS:POW:DC:UNIT W\n"]


def test_wavelength_range_follows_the_sensor_head() -> None:
    # A silicon head (400-1100 nm) cannot be corrected for the C band.
    with (
        expected_protocol(ThorlabsPM100D, init_traffic("4.000000E+02", "1.100000E+03")) as pm,
        pytest.raises(ValueError),
    ):
        pm.wavelength(1550e-9)


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("wavelength", 1550e-9, "SENS:CORR:WAV 1550.0"),
        ("wavelength", 1550.04e-9, "SENS:CORR:WAV 1550.0"),
        ("wavelength", 1310.26e-9, "SENS:CORR:WAV 1310.3"),
        ("wavelength", 800e-9, "SENS:CORR:WAV 800.0"),
        ("wavelength", 1700e-9, "SENS:CORR:WAV 1700.0"),
        ("auto_range", True, "SENS:POW:RANG:AUTO 1"),
        ("auto_range", "off", "SENS:POW:RANG:AUTO 0"),
        ("averages", 1, "SENS:AVER:COUN 1"),
        ("averages", 100, "SENS:AVER:COUN 100"),
        ("averages", 10000, "SENS:AVER:COUN 10000"),
    ],
)
def test_set_sends_exact_bytes_then_reads_error_queue(
    parameter: str, value: object, sent: str
) -> None:
    with expected_protocol(ThorlabsPM100D, [*INIT, *scpi_write(sent)]) as pm:
        getattr(pm, parameter).set(value)
        assert pm.visa_handle.written[-2:] == [f"{sent}\n".encode(), b"SYST:ERR?\n"]


@pytest.mark.parametrize(
    ("parameter", "query", "reply", "expected"),
    [
        ("power", "MEAS:POW?", "1.000000E-03", 1e-3),
        ("power", "MEAS:POW?", "2.345678E-07", 2.345678e-7),
        ("power", "MEAS:POW?", "-1.200000E-09", -1.2e-9),
        ("wavelength", "SENS:CORR:WAV?", "1.550000E+03", 1550e-9),
        ("wavelength", "SENS:CORR:WAV?", "1310.5", 1310.5e-9),
        ("auto_range", "SENS:POW:RANG:AUTO?", "1", True),
        ("auto_range", "SENS:POW:RANG:AUTO?", "0", False),
        ("averages", "SENS:AVER:COUN?", "100", 100),
    ],
)
def test_get_parses_reply_without_error_read(
    parameter: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(ThorlabsPM100D, [*INIT, (query, reply)]) as pm:
        value = getattr(pm, parameter).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected
        assert type(value) is type(expected)


def test_instrument_error_names_instrument_command_and_message() -> None:
    transcript = [
        *INIT,
        ("SENS:AVER:COUN 5000", None),
        ("SYST:ERR?", OUT_OF_RANGE),
        ("SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(ThorlabsPM100D, transcript, name="pm") as pm,
        pytest.raises(InstrumentError) as info,
    ):
        pm.averages(5000)
    assert info.value.args[0] == "pm: 'SENS:AVER:COUN 5000' -> -222,\"Data out of range\""


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("wavelength", 799.9e-9),
        ("wavelength", 1700.1e-9),
        ("wavelength", 1550),  # nm given where metres are expected
        ("averages", 0),
        ("averages", 10001),
        ("averages", 2.5),
        ("auto_range", "auto"),
    ],
)
def test_validators_refuse_before_any_byte_is_written(parameter: str, value: object) -> None:
    with expected_protocol(ThorlabsPM100D, INIT) as pm, pytest.raises((ValueError, TypeError)):
        getattr(pm, parameter).set(value)


def test_power_is_get_only() -> None:
    with expected_protocol(ThorlabsPM100D, INIT) as pm:
        assert not pm.power.settable
        assert pm.power.unit == "W"


def test_safe_state_turns_auto_range_on() -> None:
    with expected_protocol(ThorlabsPM100D, [*INIT, *scpi_write("SENS:POW:RANG:AUTO 1")]) as pm:
        pm.safe_state()


# --- plain pyvisa-sim profile ------------------------------------------------------------------


@pytest.fixture
def sim_pm(profile_copy: Callable[[str], str]) -> ThorlabsPM100D:
    return ThorlabsPM100D("pm", ADDRESS, visalib=profile_copy("thorlabs_pm100d.yaml"))


def test_sim_defaults(sim_pm: ThorlabsPM100D) -> None:
    assert sim_pm.power() == pytest.approx(1e-3)
    assert sim_pm.wavelength() == pytest.approx(1550e-9, rel=1e-12)
    assert sim_pm.auto_range() is True
    assert sim_pm.averages() == 1
    assert sim_pm.wavelength.vals.valid_values == (800e-9, 1700e-9)
    assert sim_pm.get_idn()["model"] == "PM100D"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("wavelength", 1550e-9),
        ("wavelength", 800e-9),
        ("wavelength", 1700e-9),
        ("wavelength", 1310.5e-9),
        ("auto_range", False),
        ("auto_range", True),
        ("averages", 1),
        ("averages", 250),
        ("averages", 10000),
    ],
)
def test_sim_round_trip(sim_pm: ThorlabsPM100D, parameter: str, value: object) -> None:
    param = getattr(sim_pm, parameter)
    param.set(value)
    param.cache.invalidate()
    got = param.get()
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-12)
    else:
        assert got == value
        assert type(got) is type(value)
    assert sim_pm.ask("SYST:ERR?") == NO_ERROR


def test_sim_safe_state(sim_pm: ThorlabsPM100D) -> None:
    sim_pm.auto_range(False)
    sim_pm.safe_state()
    assert sim_pm.auto_range.get() is True


def test_sim_raw_out_of_range_write_queues_instrument_error(sim_pm: ThorlabsPM100D) -> None:
    sim_pm.visa_handle.write("SENS:CORR:WAV 2000.0")
    assert sim_pm.ask("SYST:ERR?") == OUT_OF_RANGE
    assert sim_pm.ask("SYST:ERR?") == NO_ERROR
    assert sim_pm.wavelength() == pytest.approx(1550e-9, rel=1e-12)


def test_sim_driver_write_out_of_range_raises(sim_pm: ThorlabsPM100D) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_pm.write("SENS:AVER:COUN 0")
    assert info.value.args[0] == "pm: 'SENS:AVER:COUN 0' -> -222,\"Data out of range\""
    assert sim_pm.averages() == 1


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("thorlabs_pm100d.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        pm = ThorlabsPM100D("pm", ADDRESS, visalib=visalib)
        snapshot = pm.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    values = {name: p["value"] for name, p in snapshot["parameters"].items()}
    assert values["power"] == pytest.approx(1e-3)
    assert values["averages"] == 1
    assert values["auto_range"] is True
    assert values["IDN"]["serial"] == "P0012345"


def test_sim_isolation_first_changes_state(sim_pm: ThorlabsPM100D) -> None:
    sim_pm.averages(500)
    assert sim_pm.averages.get() == 500


def test_sim_isolation_second_sees_defaults(sim_pm: ThorlabsPM100D) -> None:
    assert sim_pm.averages.get() == 1
