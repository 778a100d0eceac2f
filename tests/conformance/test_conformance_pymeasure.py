"""PyMeasure's drivers, unmodified, on our simulation (in process and over TCP).

The TSL-570's setpoints land in the twin's laser and its monitor reads the twin's power; the
PM100USB reads what the twin's optical cavity transmits for that laser.
"""

from __future__ import annotations

import math

import pytest

pymeasure = pytest.importorskip("pymeasure")
# PyMeasure asks to be told whether the PM100USB speaks SCPI; nothing for this suite to act on.
pytestmark = pytest.mark.filterwarnings("ignore:It is not known whether this device:FutureWarning")

from pymeasure.adapters import VISAAdapter  # noqa: E402
from pymeasure.instruments.santec.tsl570 import TSL570  # noqa: E402
from pymeasure.instruments.thorlabs import ThorlabsPM100USB  # noqa: E402


def adapter(bench, name: str) -> VISAAdapter:
    return VISAAdapter(bench.address(name), visa_library=bench.library, timeout=2000,
                       **bench.terminations(name))


@pytest.fixture
def laser(bench):
    instrument = TSL570(adapter(bench, "laser"))
    yield instrument
    instrument.adapter.close()


@pytest.fixture
def meter(bench):
    instrument = ThorlabsPM100USB(adapter(bench, "powermeter"))
    yield instrument
    instrument.adapter.close()


def test_tsl570_setpoints_round_trip_into_the_twin(bench, laser) -> None:
    assert laser.command_set == "Legacy"
    assert laser.power_unit == "dBm"
    laser.wavelength_setpoint = 1550.5
    laser.power_setpoint = 3.5
    assert laser.wavelength_setpoint == pytest.approx(1550.5)
    assert laser.power_setpoint == pytest.approx(3.5)
    assert bench.world.state("pump_laser", "wavelength_m") == pytest.approx(1550.5e-9)
    assert bench.world.state("pump_laser", "power_w") == pytest.approx(1e-3 * 10 ** 0.35)
    assert laser.check_errors() == []


def test_tsl570_actual_power_follows_the_power_unit(bench, laser) -> None:
    laser.power_setpoint = 3.0
    assert laser.power == pytest.approx(3.0)  # :POW:ACT? in dBm
    laser.power_unit = "mW"
    assert laser.power_unit == "mW"
    assert laser.power == pytest.approx(10 ** 0.3, rel=1e-3)  # the same power in mW
    laser.power_setpoint = 1.0  # mW now
    assert bench.world.state("pump_laser", "power_w") == pytest.approx(1e-3)


def test_tsl570_scpi_command_set_speaks_metres(bench, laser) -> None:
    laser.command_set = "SCPI"
    laser.wavelength_setpoint = 1.5512e-6
    assert laser.wavelength_setpoint == pytest.approx(1.5512e-6)
    assert bench.world.state("pump_laser", "wavelength_m") == pytest.approx(1.5512e-6)
    laser.write(":WAV 1549.8nm")
    assert laser.wavelength_setpoint == pytest.approx(1.5498e-6)


def test_tsl570_check_errors_reports_a_refused_setpoint(bench, laser) -> None:
    laser.write(":WAV 1700")  # the TSL-570 tunes 1480..1640 nm
    assert [(int(code), text.strip('"')) for code, text in laser.check_errors()] == [
        (-222, "Data out of range")]
    assert laser.wavelength_setpoint == pytest.approx(1550.0)  # unchanged


def test_pm100usb_reads_its_sensor_and_the_twins_transmitted_power(bench, meter) -> None:
    assert meter.sensor_name == "S144C"
    assert meter.is_power_sensor and meter.wavelength_settable
    meter.wavelength = 1310
    assert meter.wavelength == pytest.approx(1310)
    assert bench.world.state("power_meter", "wavelength_m") == pytest.approx(1310e-9)
    world = bench.world
    world.set_state("pump_laser", "output", 1.0)
    world.set_state("pump_laser", "power_w", 5e-3)
    for wavelength in (1549.0e-9, world.truth()["optical_wavelength_m"]):
        world.set_state("pump_laser", "wavelength_m", wavelength)
        expected = (world.physics.through_power_w(5e-3, wavelength)
                    * world.params.lines.pump_duty_cycle)
        assert meter.power == pytest.approx(expected, rel=6 * world.params.noise.power_meter_rel)


def test_pm100usb_reading_is_not_a_constant(bench, meter) -> None:
    bench.world.set_state("pump_laser", "output", 0.0)
    dark = meter.power
    bench.world.set_state("pump_laser", "output", 1.0)
    lit = meter.power
    assert lit > 0 and (dark == 0 or math.log10(lit / max(dark, 1e-30)) > 3)
