"""Simulated instruments behave like real ones: SCPI spellings, *RST, and injected faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvisa
from pyvisa.errors import VisaIOError

from hil.sim.backend import open_lab
from instruments._scpi import InstrumentError
from instruments.santec_tsl570 import SantecTSL570
from instruments.thorlabs_pm100d import ThorlabsPM100D

LAB = Path(__file__).resolve().parent.parent / "sim_profiles" / "lab.yaml"
LASER = "TCPIP0::192.168.1.50::5000::SOCKET"
METER = "USB0::0x1313::0x8078::P0012345::INSTR"


@pytest.fixture
def lab():
    library = open_lab(LAB)
    manager = pyvisa.ResourceManager(library)
    laser = SantecTSL570("laser", resource=manager.open_resource(LASER))
    meter = ThorlabsPM100D("meter", resource=manager.open_resource(METER))
    meter.timeout(0.05)  # a dropped reply must not cost the suite seconds
    return library, laser, meter


def test_instruments_answer_long_and_lower_case_forms(lab) -> None:
    _, laser, meter = lab
    laser.write(":WAVelength 1550.1000")
    assert laser.ask(":wavelength?") == "1550.1000"
    laser.write(":power:state 1")
    assert laser.output() is True
    assert float(meter.ask("SENSe:CORRection:WAVelength?")) == pytest.approx(1550.0)
    with pytest.raises(InstrumentError, match=r"':FOO 1' -> -113,\"Undefined header\""):
        laser.write(":FOO 1")


def test_rst_returns_settings_and_the_twin_to_defaults(lab) -> None:
    library, laser, _ = lab
    laser.wavelength(1551e-9)
    laser.enable_output()
    laser.write("*RST")
    laser.wavelength.cache.invalidate()
    assert laser.wavelength() == pytest.approx(1550e-9)
    assert laser.output() is False
    assert library.world.state("pump_laser", "wavelength_m") == pytest.approx(1550e-9)
    assert library.world.state("pump_laser", "output") == 0.0


def test_injected_timeout_drops_one_reply(lab) -> None:
    library, _, meter = lab
    library.inject(METER, "timeout")
    with pytest.raises(VisaIOError, match="Timeout"):
        meter.power()
    assert meter.power() >= 0.0


def test_injected_garbage_reply_fails_parsing_once(lab) -> None:
    library, _, meter = lab
    library.inject(METER, "garbage")
    with pytest.raises(ValueError):
        meter.power()
    assert meter.power() >= 0.0


def test_injected_instrument_error_surfaces_on_the_next_write(lab) -> None:
    library, laser, _ = lab
    library.inject(LASER, "error", text='-310,"System error"')
    with pytest.raises(InstrumentError, match=r"laser: ':WAV 1550.2000' -> -310,\"System error\""):
        laser.wavelength(1550.2e-9)
    laser.wavelength(1550.3e-9)  # one error, reported once


def test_dropped_connection_fails_every_call_until_reconnected(lab) -> None:
    library, laser, _ = lab
    library.inject(LASER, "disconnect")
    for _ in range(2):
        with pytest.raises(VisaIOError, match="connection"):
            laser.wavelength()
    library.reconnect(LASER)
    laser.wavelength.cache.invalidate()
    assert laser.wavelength() == pytest.approx(1550e-9)


def test_unknown_fault_and_resource_are_named() -> None:
    library = open_lab(LAB)
    with pytest.raises(ValueError, match="unknown fault 'smoke'"):
        library.inject(LASER, "smoke")
    with pytest.raises(KeyError, match="no GPIB0::9::INSTR"):
        library.inject("GPIB0::9::INSTR", "timeout")
