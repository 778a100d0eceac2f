"""Standard SCPI forms (IEEE 488.2, SCPI-99) from a raw VISA client, in process and over TCP.

Each expected reply or error code is the standard's (scpi.md 1-2), not the simulation's: short
and long forms, optional nodes, units with multipliers, MIN/MAX, booleans, compound messages
and the header path, the common commands, and the error queue's codes, order and overflow.
"""

from __future__ import annotations

import logging

import pytest
from pyvisa.errors import VisaIOError


@pytest.fixture
def mxg(bench):
    resource = bench.open("mwsource")
    yield resource
    resource.close()


def errors(resource) -> list[str]:
    """Every entry of the error queue, oldest first (the drain a driver does)."""
    found = []
    while True:
        reply = resource.query("SYST:ERR?")
        if reply.lstrip("+").startswith("0,"):
            return found
        found.append(reply)


@pytest.mark.parametrize("command", [
    ":SOURce:POWer:LEVel:IMMediate:AMPLitude -16 dBm",
    "SOUR:POW -16DBM",
    ":pow -16",
    "POWer 25.1188643 UW",  # a power in watts to a level kept in dBm: 10 log10(25.12 uW / 1 mW)
])
def test_one_node_many_spellings_and_units(bench, mxg, command) -> None:
    mxg.write(command)
    assert errors(mxg) == []
    expected = -16.0
    assert float(mxg.query("POW?")) == pytest.approx(expected, abs=1e-6)
    assert bench.world.state("mw_source", "power_w") == pytest.approx(1e-3 * 10 ** (expected / 10))


def test_frequency_multipliers_and_the_cw_node(bench, mxg) -> None:
    mxg.write("FREQ 6.5 GHZ")
    assert float(mxg.query(":SOURce:FREQuency:CW?")) == pytest.approx(6.5e9)
    mxg.write("freq:cw 120 MHz")  # MHZ is megahertz, whatever the case (488.2 table 7-2)
    assert float(mxg.query("FREQ?")) == pytest.approx(120e6)
    assert bench.world.state("mw_source", "frequency_hz") == pytest.approx(120e6)
    assert errors(mxg) == []


def test_booleans_and_the_optional_state_node(bench, mxg) -> None:
    mxg.write("OUTP ON")
    assert mxg.query("OUTP?") == "1"
    assert bench.world.state("mw_source", "output") == 1.0
    mxg.write(":OUTPut:STATe OFF")
    assert mxg.query("OUTP:STAT?") == "0"
    assert errors(mxg) == []


def test_min_max_def_as_values_and_in_queries(mxg) -> None:
    assert float(mxg.query("SOUR:POW? MIN")) == -20.0
    assert float(mxg.query("SOUR:POW? MAXimum")) == 19.0
    mxg.write("SOUR:POW MAX")
    assert float(mxg.query("SOUR:POW?")) == 19.0
    mxg.write("SOUR:POW DEF")
    assert float(mxg.query("SOUR:POW?")) == -20.0
    assert errors(mxg) == []


def test_compound_messages_follow_the_header_path_and_reply_on_one_line(mxg) -> None:
    mxg.write("SOUR:FREQ 7.1E9;POW -12")  # POW resolves under SOUR (the path rule)
    assert mxg.query("FREQ?;POW?") == "+7.10000000000000E+09;-1.20000000E+01"
    mxg.write("OUTP:STAT 1;:SOUR:FREQ 7.2E9;")  # ;: back to the root, trailing ; tolerated
    assert mxg.query("OUTP?;:FREQ?") == "1;+7.20000000000000E+09"
    assert errors(mxg) == []


def test_common_commands(mxg) -> None:
    assert mxg.query("*OPC?") == "1"
    mxg.write("*ESE 60")
    assert mxg.query("*ESE?") == "60"
    mxg.write("FOO:BAR 1")  # a command error: CME (32) in *ESR, EAV (4) and ESB (32) in *STB
    assert int(mxg.query("*STB?")) & (4 | 32) == 36
    assert mxg.query("*ESR?") == "32"
    assert mxg.query("*ESR?") == "0"  # read clears
    mxg.write("*CLS")
    assert errors(mxg) == []
    assert mxg.query("*TST?") == "0"


@pytest.mark.parametrize(("command", "code"), [
    ("FOO:BAR 1", -113),  # undefined header
    ("SOUR:FREQU 1E9", -113),  # neither the short nor the long form
    ("SOUR:POW", -109),  # missing parameter
    ("OUTP:STAT 1,2", -108),  # parameter not allowed
    ("SOUR:POW -10 FOO", -131),  # invalid suffix
    ("SOUR:POW 30", -222),  # data out of range
    ("PULM:SOUR BOGUS", -224),  # illegal parameter value
    ("SOUR:FREQ ON", -104),  # data type error
    ("SOUR::FREQ 1E9", -102),  # syntax error
])
def test_each_refusal_queues_its_standard_code_and_is_logged(bench, mxg, caplog, command, code) -> None:
    caplog.set_level(logging.WARNING, logger="hil.sim")
    before = mxg.query("SOUR:FREQ?")
    mxg.write(command)
    [entry] = errors(mxg)
    assert int(entry.split(",")[0]) == code
    assert mxg.query("SOUR:FREQ?") == before  # nothing changed
    assert any(command.encode() in r.getMessage().encode() or repr(command.encode()) in r.getMessage()
               for r in caplog.records if r.name == "hil.sim")


def test_an_unknown_query_times_out_is_logged_and_queued(mxg, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="hil.sim")
    mxg.timeout = 200
    with pytest.raises(VisaIOError):
        mxg.query("SOUR:BOGUS?")
    assert any("SOUR:BOGUS?" in r.getMessage() and "not understood" in r.getMessage()
               for r in caplog.records)
    assert [int(e.split(",")[0]) for e in errors(mxg)] == [-113]


def test_error_queue_is_fifo_counts_overflows_and_clears(mxg) -> None:
    for command in ("SOUR:POW 30", "FOO 1"):
        mxg.write(command)
    assert mxg.query("SYST:ERR:COUN?") == "2"
    assert mxg.query("SYST:ERR?").startswith("-222,")
    assert mxg.query("SYST:ERR?").startswith("-113,")
    assert mxg.query("SYST:ERR?") == '+0,"No error"'
    for _ in range(40):  # deeper than the queue (30): the last slot says -350
        mxg.write("FOO 1")
    entries = mxg.query("SYST:ERR:ALL?")
    assert entries.count("-113,") == 29 and entries.endswith('-350,"Queue overflow"')
    mxg.write("FOO 1")
    mxg.write("*CLS")
    assert mxg.query("SYST:ERR?") == '+0,"No error"'


def test_rst_keeps_the_error_queue(mxg) -> None:
    mxg.write("SOUR:POW -12")
    mxg.write("FOO 1")
    mxg.write("*RST")
    assert float(mxg.query("SOUR:POW?")) == -20.0  # back to the preset
    assert [int(e.split(",")[0]) for e in errors(mxg)] == [-113]


def test_units_on_a_wavelength_in_nm(bench) -> None:
    meter = bench.open("powermeter")
    meter.write("SENSe:CORRection:WAVelength 1310 NM")
    assert float(meter.query("SENS:CORR:WAV?")) == pytest.approx(1310)
    meter.write("SENS:CORR:WAV 1.55 UM")
    assert float(meter.query("SENS:CORR:WAV?")) == pytest.approx(1550)
    assert meter.query("SYST:ERR?") == '+0,"No error"'
    assert bench.world.state("power_meter", "wavelength_m") == pytest.approx(1550e-9)


def test_santec_legacy_refuses_suffixes_and_scpi_mode_takes_them(bench) -> None:
    laser = bench.open("laser")
    laser.write(":WAV 1550nm")
    assert laser.query(":SYST:ERR?").startswith("-138,")  # Legacy: no suffix accepted
    laser.write(":SYST:COMM:COD 1")
    laser.write(":WAV 1551nm")
    assert float(laser.query(":WAV?")) == pytest.approx(1.551e-6)
    assert laser.query(":SYST:ERR?") == '0,"No error"'


def test_lake_shore_takes_lf_or_crlf_and_its_own_syntax(bench) -> None:
    fridge = bench.open("fridge")
    fridge.write_termination = "\n"  # Lake Shore's own package writes LF only
    assert float(fridge.query("KRDG? 6")) == pytest.approx(
        bench.world.physics.mixing_chamber_k(), rel=6 * bench.world.params.noise.thermometer_rel)
    fridge.write("RANGE 0, 3")  # QCoDeS writes a space after the comma
    fridge.write_termination = "\r\n"
    assert fridge.query("RANGE? 0") == "3"
    fridge.write("BOGUS 1")
    assert fridge.query("*ESR?") == "32"  # no error queue: CME in the event register
