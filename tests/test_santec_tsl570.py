"""Santec TSL-570 driver: bytes on the wire (transcripts) and the plain pyvisa-sim profile."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable

import pytest

from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.santec_tsl570 import SantecTSL570, dbm_to_w, w_to_dbm

ADDRESS = "TCPIP0::192.168.1.50::5000::SOCKET"
NO_ERROR = '0,"No error"'
OUT_OF_RANGE = '-222,"Data out of range"'
IDN = "SANTEC,TSL-570,21020001,0001.0000.0001"


def write(command: str) -> list[Exchange]:
    """A Santec write followed by an empty error-queue read."""
    return scpi_write(command, error_query=":SYST:ERR?", no_error=NO_ERROR)


INIT: list[Exchange] = [
    (":SYST:ERR?", NO_ERROR),  # at connect: what an earlier client left
    *write(":SYST:COMM:COD 0"),
    *write(":POW:UNIT 0"),
    (":WAV? MIN", "1480.0000"),
    (":WAV? MAX", "1640.0000"),
    ("*IDN?", IDN),
]


# --- transcripts -------------------------------------------------------------------------------


def test_init_traffic_sets_units_and_reads_wavelength_range() -> None:
    with expected_protocol(SantecTSL570, INIT, name="laser") as laser:
        assert laser.wavelength.vals.valid_values == (1480e-9, 1640e-9)
        assert laser.visa_handle.write_termination == "\r"
        assert laser.visa_handle.read_termination == "\r"


def test_idn_is_parsed() -> None:
    with expected_protocol(SantecTSL570, [*INIT, ("*IDN?", IDN)]) as laser:
        assert laser.get_idn() == {
            "vendor": "SANTEC", "model": "TSL-570", "serial": "21020001",
            "firmware": "0001.0000.0001",
        }


@pytest.mark.parametrize(
    ("parameter", "value", "sent"),
    [
        ("wavelength", 1550.1234e-9, ":WAV 1550.1234"),
        ("wavelength", 1480e-9, ":WAV 1480.0000"),
        ("wavelength", 1640e-9, ":WAV 1640.0000"),
        ("wavelength", 1550.12346e-9, ":WAV 1550.1235"),  # 0.1 pm resolution
        ("power_dbm", -3.5, ":POW -3.50"),
        ("power_dbm", 13, ":POW 13.00"),
        ("power_dbm", -15, ":POW -15.00"),
        ("power", 1e-3, ":POW 0.00"),
        ("power", 2e-3, ":POW 3.01"),
        ("power", 10 ** (-15 / 10) * 1e-3, ":POW -15.00"),
        ("output", True, ":POW:STAT 1"),
        ("output", "on", ":POW:STAT 1"),
        ("output", False, ":POW:STAT 0"),
        ("output", "off", ":POW:STAT 0"),
        ("shutter_closed", True, ":POW:SHUT 1"),
        ("shutter_closed", False, ":POW:SHUT 0"),
    ],
)
def test_set_sends_exact_bytes_then_reads_error_queue(
    parameter: str, value: object, sent: str
) -> None:
    with expected_protocol(SantecTSL570, [*INIT, *write(sent)]) as laser:
        getattr(laser, parameter).set(value)


def test_wavelength_set_bytes_on_the_wire() -> None:
    with expected_protocol(SantecTSL570, [*INIT, *write(":WAV 1550.1234")]) as laser:
        laser.wavelength(1550.1234e-9)
        assert laser.visa_handle.written[-2:] == [b":WAV 1550.1234\r", b":SYST:ERR?\r"]


@pytest.mark.parametrize(
    ("parameter", "query", "reply", "expected"),
    [
        ("wavelength", ":WAV?", "1550.1234", 1550.1234e-9),
        ("wavelength", ":WAV?", "1480.0000", 1480e-9),
        ("power_dbm", ":POW?", "-3.50", -3.5),
        ("power_dbm", ":POW?", "13.00", 13.0),
        ("power", ":POW?", "0.00", 1e-3),
        ("power", ":POW?", "10.00", 1e-2),
        ("power", ":POW?", "-15.00", 10 ** -1.5 * 1e-3),
        ("output", ":POW:STAT?", "1", True),
        ("output", ":POW:STAT?", "0", False),
        ("shutter_closed", ":POW:SHUT?", "1", True),
        ("shutter_closed", ":POW:SHUT?", "0", False),
        ("alerts", ":SYST:ALER?", "No alerts.", "No alerts."),
        ("alerts", ":SYST:ALER?", "No07.", "No07."),
    ],
)
def test_get_parses_reply_without_error_read(
    parameter: str, query: str, reply: str, expected: object
) -> None:
    with expected_protocol(SantecTSL570, [*INIT, (query, reply)]) as laser:
        value = getattr(laser, parameter).get()
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_settable_parameters_accept_their_own_get_output() -> None:
    transcript = [
        *INIT,
        (":WAV?", "1640.0000"), *write(":WAV 1640.0000"),
        (":POW?", "13.00"), *write(":POW 13.00"),
        (":POW?", "-15.00"), *write(":POW -15.00"),
    ]
    with expected_protocol(SantecTSL570, transcript) as laser:
        laser.wavelength(laser.wavelength())
        laser.power_dbm(laser.power_dbm())
        laser.power(laser.power())


def test_instrument_error_names_instrument_command_and_message() -> None:
    transcript = [
        *INIT,
        (":WAV 1600.0000", None),
        (":SYST:ERR?", OUT_OF_RANGE),
        (":SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(SantecTSL570, transcript, name="laser") as laser,
        pytest.raises(InstrumentError) as info,
    ):
        laser.wavelength(1600e-9)
    assert info.value.args[0] == "laser: ':WAV 1600.0000' -> -222,\"Data out of range\""


def test_every_queued_error_is_drained_and_reported() -> None:
    transcript = [
        *INIT,
        (":POW 3.00", None),
        (":SYST:ERR?", OUT_OF_RANGE),
        (":SYST:ERR?", '-113,"Undefined header"'),
        (":SYST:ERR?", NO_ERROR),
    ]
    with (
        expected_protocol(SantecTSL570, transcript, name="laser") as laser,
        pytest.raises(InstrumentError) as info,
    ):
        laser.power_dbm(3)
    assert info.value.args[0] == (
        "laser: ':POW 3.00' -> -222,\"Data out of range\"; -113,\"Undefined header\""
    )


def test_error_queue_reads_are_bounded() -> None:
    reads = SantecTSL570.max_error_reads
    transcript = [*INIT, (":POW:STAT 1", None), *[(":SYST:ERR?", OUT_OF_RANGE)] * reads]
    with (
        expected_protocol(SantecTSL570, transcript) as laser,
        pytest.raises(InstrumentError, match=f"not empty after {reads} reads"),
    ):
        laser.output(True)


def test_unparsable_error_reply_stops_draining() -> None:
    transcript = [*INIT, (":POW:STAT 1", None), (":SYST:ERR?", "1550.0000")]
    with (
        expected_protocol(SantecTSL570, transcript) as laser,
        pytest.raises(InstrumentError, match="unparsable reply to :SYST:ERR?"),
    ):
        laser.output(True)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("wavelength", 1479.9999e-9),
        ("wavelength", 1640.0001e-9),
        ("wavelength", 1550),  # nm given where metres are expected
        ("power_dbm", -15.01),
        ("power_dbm", 13.01),
        ("power", 0.0),
        ("power", 0.03),
        ("output", "maybe"),
        ("shutter_closed", "closed"),
    ],
)
def test_validators_refuse_before_any_byte_is_written(parameter: str, value: object) -> None:
    # The transcript holds the init traffic only: any further byte would fail the test.
    with expected_protocol(SantecTSL570, INIT) as laser, pytest.raises(ValueError):
        getattr(laser, parameter).set(value)


def test_alerts_is_get_only() -> None:
    with expected_protocol(SantecTSL570, INIT) as laser:
        assert not laser.alerts.settable


def test_safe_state_turns_output_off_then_closes_shutter() -> None:
    transcript = [*INIT, *write(":POW:STAT 0"), *write(":POW:SHUT 1")]
    with expected_protocol(SantecTSL570, transcript) as laser:
        laser.safe_state()


def test_enable_output_opens_shutter_then_turns_diode_on() -> None:
    transcript = [*INIT, *write(":POW:SHUT 0"), *write(":POW:STAT 1")]
    with expected_protocol(SantecTSL570, transcript) as laser:
        laser.enable_output()


def test_power_in_watts_obeys_a_narrowed_dbm_range() -> None:
    """Station limits narrow power_dbm; the W view goes through it, so it cannot bypass them."""
    from qcodes.validators import Numbers

    with expected_protocol(SantecTSL570, [*INIT, *write(":POW 6.00")]) as laser:
        laser.power_dbm.add_validator(Numbers(-15, 6))
        laser.power(dbm_to_w(6.0))
        with pytest.raises(ValueError, match="power_dbm"):
            laser.power(dbm_to_w(10.0))


def test_safe_state_closes_shutter_even_if_output_off_fails() -> None:
    transcript = [
        *INIT,
        (":POW:STAT 0", None), (":SYST:ERR?", '-300,"Device-specific error"'),
        (":SYST:ERR?", NO_ERROR),
        *write(":POW:SHUT 1"),
    ]
    with (
        expected_protocol(SantecTSL570, transcript) as laser,
        pytest.raises(InstrumentError, match="POW:STAT 0"),
    ):
        laser.safe_state()


def test_dbm_watt_conversions() -> None:
    assert dbm_to_w(0) == pytest.approx(1e-3)
    assert dbm_to_w(10) == pytest.approx(1e-2)
    assert w_to_dbm(1e-3) == pytest.approx(0.0)
    assert w_to_dbm(dbm_to_w(-7.25)) == pytest.approx(-7.25)


# --- plain pyvisa-sim profile ------------------------------------------------------------------

@pytest.fixture
def sim_laser(profile_copy: Callable[[str], str]) -> SantecTSL570:
    return SantecTSL570("laser", ADDRESS, visalib=profile_copy("santec_tsl570.yaml"))


def test_sim_defaults(sim_laser: SantecTSL570) -> None:
    laser = sim_laser
    assert laser.wavelength() == pytest.approx(1550e-9, rel=1e-12)
    assert laser.power_dbm() == 0.0
    assert laser.power() == pytest.approx(1e-3)
    assert laser.output() is False
    assert laser.shutter_closed() is False
    assert laser.alerts() == "No alerts."
    assert laser.wavelength.vals.valid_values == (1480e-9, 1640e-9)
    assert laser.get_idn()["serial"] == "21020001"


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("wavelength", 1550.1234e-9),
        ("wavelength", 1480e-9),
        ("wavelength", 1640e-9),
        ("power_dbm", -15.0),
        ("power_dbm", 13.0),
        ("power_dbm", 2.5),
        ("power", 5e-4),
        ("output", True),
        ("output", False),
        ("shutter_closed", True),
        ("shutter_closed", False),
    ],
)
def test_sim_round_trip(sim_laser: SantecTSL570, parameter: str, value: object) -> None:
    param = getattr(sim_laser, parameter)
    param.set(value)
    param.cache.invalidate()
    got = param.get()
    if isinstance(value, float):
        # power in W passes through 0.01 dB rounding on the wire
        assert got == pytest.approx(value, rel=1e-3 if parameter == "power" else 1e-12)
    else:
        assert got is value
    assert sim_laser.ask(":SYST:ERR?") == NO_ERROR


def test_sim_safe_state(sim_laser: SantecTSL570) -> None:
    sim_laser.output(True)
    sim_laser.safe_state()
    assert sim_laser.output.get() is False
    assert sim_laser.shutter_closed.get() is True


def test_sim_raw_out_of_range_write_queues_instrument_error(sim_laser: SantecTSL570) -> None:
    sim_laser.visa_handle.write(":WAV 1700.0000")
    assert sim_laser.ask(":SYST:ERR?") == OUT_OF_RANGE
    assert sim_laser.ask(":SYST:ERR?") == NO_ERROR
    assert sim_laser.wavelength() == pytest.approx(1550e-9, rel=1e-12)


def test_sim_driver_write_out_of_range_raises(sim_laser: SantecTSL570) -> None:
    with pytest.raises(InstrumentError) as info:
        sim_laser.write(":POW 20.00")
    assert info.value.args[0] == "laser: ':POW 20.00' -> -222,\"Data out of range\""
    assert sim_laser.ask(":SYST:ERR?") == NO_ERROR


def test_sim_init_and_snapshot_have_no_warnings(
    profile_copy: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    visalib = profile_copy("santec_tsl570.yaml")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        laser = SantecTSL570("laser", ADDRESS, visalib=visalib)
        snapshot = laser.snapshot(update=True)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    values = {name: p["value"] for name, p in snapshot["parameters"].items()}
    assert values["wavelength"] == pytest.approx(1550e-9, rel=1e-12)
    assert values["power_dbm"] == 0.0
    assert values["output"] is False
    assert values["alerts"] == "No alerts."
    assert values["IDN"]["model"] == "TSL-570"
    assert not math.isnan(values["power"])


def test_sim_isolation_first_changes_state(sim_laser: SantecTSL570) -> None:
    sim_laser.output(True)
    sim_laser.wavelength(1600e-9)
    assert sim_laser.output.get() is True


def test_sim_isolation_second_sees_defaults(sim_laser: SantecTSL570) -> None:
    assert sim_laser.output.get() is False
    assert sim_laser.wavelength() == pytest.approx(1550e-9, rel=1e-12)
