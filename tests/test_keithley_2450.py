"""Keithley 2450 bias source: bytes on the wire, the plain pyvisa-sim profile, and the twin coupling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hil.roles import ROLE_KINDS, BiasSource
from hil.station import load_lab
from hil.testing import Exchange, expected_protocol, scpi_write
from instruments._scpi import InstrumentError
from instruments.keithley_2450 import Keithley2450

ADDRESS = "USB0::0x05E6::0x2450::04412345::INSTR"
ERR = ":SYST:ERR?"
NO_ERROR = '0,"No error;0,0,0"'  # the 2450's empty-queue reply (scpi.md §3.7)
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2450,04412345,1.7.3c"
ROOT = Path(__file__).resolve().parent.parent


def write(command: str) -> list[Exchange]:
    return scpi_write(command, error_query=ERR, no_error=NO_ERROR)


INIT: list[Exchange] = [
    ("*LANG?", "SCPI"),
    (ERR, NO_ERROR),  # at connect: what an earlier client left
    *write(":SOUR:FUNC VOLT"),
    *write(':SENS:FUNC "CURR"'),
    ("*IDN?", IDN),
]


# --- transcripts -------------------------------------------------------------------------------
def test_init_checks_scpi_mode_and_selects_voltage_source_current_sense() -> None:
    with expected_protocol(Keithley2450, [*INIT, ("*IDN?", IDN)], name="smu") as smu:
        assert smu.visa_handle.written[:4] == [b"*LANG?\n", b":SYST:ERR?\n", b":SOUR:FUNC VOLT\n",
                                               b":SYST:ERR?\n"]
        assert smu.get_idn()["model"] == "2450"  # QCoDeS strips the "MODEL " prefix


def test_a_unit_left_in_tsp_mode_is_refused_with_the_fix() -> None:
    with pytest.raises(InstrumentError, match=r"'TSP' command mode; send '\*LANG SCPI' and power-cycle"), \
            expected_protocol(Keithley2450, [("*LANG?", "TSP")]):
        pass


@pytest.mark.parametrize(("parameter", "value", "sent"), [
    ("voltage", 1.5, ":SOUR:VOLT 1.5"),
    ("voltage", -210.0, ":SOUR:VOLT -210"),
    ("voltage", 1.234567e-3, ":SOUR:VOLT 0.00123457"),
    ("voltage_range", 20.0, ":SOUR:VOLT:RANG 20"),
    ("voltage_range", 0.02, ":SOUR:VOLT:RANG 0.02"),
    ("current_limit", 1e-6, ":SOUR:VOLT:ILIM 1e-06"),
    ("current_limit", 1.05, ":SOUR:VOLT:ILIM 1.05"),
    ("output", True, ":OUTP 1"),
    ("output", False, ":OUTP 0"),
    ("nplc", 10, ":SENS:CURR:NPLC 10"),
])
def test_set_sends_exact_bytes_then_reads_error_queue(parameter: str, value: object, sent: str) -> None:
    with expected_protocol(Keithley2450, [*INIT, *write(sent)]) as smu:
        getattr(smu, parameter).set(value)
        assert smu.visa_handle.written[-2:] == [f"{sent}\n".encode(), b":SYST:ERR?\n"]


@pytest.mark.parametrize(("parameter", "query", "reply", "expected"), [
    ("voltage", ":SOUR:VOLT?", "1.500000E+00", 1.5),
    ("current", ":MEAS:CURR?", "-2.345000E-12", -2.345e-12),
    ("current_limit", ":SOUR:VOLT:ILIM?", "1.050000E-04", 1.05e-4),
    ("output", ":OUTP?", "1", True),
    ("output", ":OUTP?", "0", False),
    ("current_limit_tripped", ":SOUR:VOLT:ILIM:TRIP?", "1", True),
    ("nplc", ":SENS:CURR:NPLC?", "1", 1.0),
])
def test_get_parses_reply(parameter: str, query: str, reply: str, expected: object) -> None:
    with expected_protocol(Keithley2450, [*INIT, (query, reply)]) as smu:
        assert getattr(smu, parameter).get() == expected


def test_instrument_error_is_raised_with_the_2450_text() -> None:
    transcript = [*INIT, (":SOUR:VOLT 5", None), (ERR, '-221,"Settings conflict;1,1,2"'), (ERR, NO_ERROR)]
    with expected_protocol(Keithley2450, transcript, name="smu") as smu, \
            pytest.raises(InstrumentError, match=r"smu: ':SOUR:VOLT 5' -> -221"):
        smu.voltage(5)


@pytest.mark.parametrize(("parameter", "value"), [
    ("voltage", 210.1), ("voltage", -211), ("voltage_range", 21.0), ("current_limit", 0.0),
    ("current_limit", 1.1), ("nplc", 11), ("output", "maybe"),
])
def test_validators_refuse_before_any_byte(parameter: str, value: object) -> None:
    with expected_protocol(Keithley2450, INIT) as smu, pytest.raises((ValueError, TypeError)):
        getattr(smu, parameter).set(value)


def test_safe_state_is_output_off_then_zero_volts() -> None:
    with expected_protocol(Keithley2450, [*INIT, *write(":OUTP 0"), *write(":SOUR:VOLT 0")]) as smu:
        smu.safe_state()


def test_fills_the_bias_role() -> None:
    assert ROLE_KINDS["bias"] is BiasSource
    with expected_protocol(Keithley2450, INIT) as smu:
        assert isinstance(smu, BiasSource)


# --- plain pyvisa-sim profile --------------------------------------------------------------------
@pytest.fixture
def sim_smu(profile_copy: Callable[[str], str]) -> Keithley2450:
    return Keithley2450("smu", ADDRESS, visalib=profile_copy("keithley_2450.yaml"))


def test_sim_round_trips_and_safe_state(sim_smu: Keithley2450) -> None:
    assert sim_smu.voltage() == 0.0 and sim_smu.output() is False
    assert sim_smu.current_limit() == pytest.approx(1.05e-4)
    sim_smu.voltage(12.5)
    sim_smu.output(True)
    sim_smu.voltage.cache.invalidate()
    assert sim_smu.voltage() == 12.5 and sim_smu.output() is True
    sim_smu.safe_state()
    assert sim_smu.voltage.get() == 0.0 and sim_smu.output.get() is False
    assert sim_smu.ask(ERR) == NO_ERROR


def test_sim_out_of_range_raw_write_queues_an_error(sim_smu: Keithley2450) -> None:
    sim_smu.visa_handle.write(":SOUR:VOLT 300")
    assert sim_smu.ask(ERR).startswith("-222,")
    assert sim_smu.ask(ERR) == NO_ERROR


# --- twin: the bias tunes the triple resonance ----------------------------------------------------
def test_station_bias_tunes_the_converted_signal(tmp_path: Path) -> None:
    # imperfections.md §5: with the probe on f_m and low C, the converted sideband falls by
    # 1/(1 + (2 k_V V/kappa_o)^2); k_V V = kappa_o/2 halves |S21|^2 (tolerance 1 %; receiver
    # noise ~0.2 % averaged over 51 points at 1 Hz IFBW). The bias reaches the twin only through
    # the SMU's bytes.
    station = (ROOT / "stations" / "twin.yaml").read_text().replace(
        "twin:\n  seed: 1", "twin:\n  seed: 1\n  lines: {pump_duty_cycle: 1.0}\n"
        "  bias: {mismatch_hz_per_v: 1.0e6}\n"
        "  transducer: {pump_wavelength_m: 1.55e-6}")  # on the laser's 0.1 pm grid: Delta_p = 0
    path = tmp_path / "station.yaml"
    path.write_text(station)
    lab = load_lab(path)
    try:
        truth = lab.world.truth()
        lab.pump.wavelength(truth["optical_wavelength_m"])
        lab.pump.power(10 ** -1.4 * 1e-3)  # -14 dBm: C ~ 2e-3, the low-C limit
        lab.pump.enable_output()
        vna = lab.vna
        vna.s_parameter("S21")
        vna.start(8.8e9 - 5)
        vna.stop(8.8e9 + 5)
        vna.points(51)
        vna.if_bandwidth(1)
        vna.power(1e-3)  # 0 dBm: receiver floor ~0.7 % of |S21| per point
        vna.enable_output()

        def eta() -> float:
            vna.run_sweep()
            return float(np.mean(np.abs(vna.trace()) ** 2))

        zero = eta()
        lab.bias.voltage(12.5)  # 12.5 MHz = kappa_o / 2
        lab.bias.enable_output()
        assert eta() / zero == pytest.approx(0.5, rel=0.01)
        assert lab.bias.current() == pytest.approx(12.5 / 1e12, rel=1e-9)
        lab.bias.safe_state()
        assert eta() / zero == pytest.approx(1.0, rel=0.01)
        with pytest.raises(ValueError):
            lab.bias.voltage(60)  # the station limit narrows the driver's +-210 V
    finally:
        lab.close()
