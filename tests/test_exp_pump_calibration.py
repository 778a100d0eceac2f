"""pump_calibration: on-chip pump power from the monitor tap (physics.md §3 (d):
``T_rt = eta_in eta_dev eta_out``, ``P_device = P_tap x ratio x eta_in``, input and output losses
assumed equal), against the twin's pump path (hil.twin.lines.PumpPath)."""

from __future__ import annotations

import numpy as np
import pytest
from exp_support import STATION_A, bare_run, run_steps, station_b, station_variant, traffic

from experiments.calibration.optical_resonance import optical_resonance
from experiments.calibration.pump_calibration import pump_calibration
from hil.calibration import MissingCalibration
from hil.results import Result
from hil.store import open_run


def calibrate(station, out):
    return run_steps(station, out, optical_resonance, pump_calibration)


def check_against_truth(run) -> dict:
    world = run.lab.world
    truth = world.truth()
    lines = world.params.lines
    results = run.results["pump_calibration"]
    # (1 - r)/r x eta_in: on-chip power per watt in the monitor arm at the same instant
    assert results["chip_per_monitor"].value == pytest.approx(truth["chip_per_monitor"], rel=0.05)
    assert 0 < results["chip_per_monitor"].stderr < 0.01 * truth["chip_per_monitor"]
    assert results["insertion_loss_db"].value == pytest.approx(lines.pump_insertion_loss_db, rel=0.05)
    assert results["round_trip_loss_db"].value == pytest.approx(
        lines.pump_insertion_loss_db + lines.pump_return_loss_db, rel=0.05)
    assert results["equal_loss_assumed"].value == 1.0
    # The definition, end to end: a monitor meter reading M (time average) means an on-chip peak
    # power chip_peak_per_monitor_reading x M.
    laser_w = 5e-3
    monitor_reading = world.physics.monitor_power_w(laser_w) * lines.pump_duty_cycle
    on_chip_peak = world.physics.on_chip_pump_w(laser_w)
    assert results["chip_peak_per_monitor_reading"].value * monitor_reading == pytest.approx(
        on_chip_peak, rel=0.05)
    assert run.plot_path("pump_calibration").is_file()
    record = open_run(run.path)
    assert record.status == "completed"
    step = record.steps["pump_calibration"]
    assert step["monitor_power"].size == 16 and step["through_power"].attrs["units"] == "W"
    # the recorded laser powers are the ones the TSL-570 set: on its 0.01 dBm grid
    dbm = 10 * np.log10(step["power"].values / 1e-3)
    np.testing.assert_allclose(dbm, np.round(dbm, 2), rtol=0, atol=1e-9)
    return results


def test_profile_a_pulsed_pump(tmp_path) -> None:
    """Profile A: 20 dB EDFA, 1 % tap, 4.01 dB each way, pulses at duty cycle 1e-5."""
    run = calibrate(STATION_A, tmp_path / "a.h5")
    results = check_against_truth(run)
    assert results["chip_peak_per_monitor_reading"].value == pytest.approx(
        results["chip_per_monitor"].value / 1e-5)
    # Parked 50 pm off the resonance (a residual dip of ~3e-6, divided out), and left dark.
    world = run.lab.world
    parked = run.results["optical_resonance"]["wavelength_m"].value + 50e-12
    assert float(world.state("pump_laser", "wavelength_m")) == pytest.approx(parked, abs=1e-13)
    assert world.laser_emitted_power() == 0.0
    assert 0.999 < results["device_transmission"].value < 1.0


def test_profile_b_cw_pump(tmp_path) -> None:
    results = check_against_truth(calibrate(station_b(tmp_path), tmp_path / "b.h5"))
    assert results["chip_peak_per_monitor_reading"].value == results["chip_per_monitor"].value


def test_unequal_losses_show_as_the_assumptions_error(tmp_path) -> None:
    """3 dB in, 5 dB out: the round trip (8 dB) is measured; the split reads 4 dB each way, as the
    stated equal-loss assumption says it must."""
    station = station_variant(tmp_path, "unequal", {"lines": {"pump_insertion_loss_db": 3.0,
                                                              "pump_return_loss_db": 5.0}})
    results = calibrate(station, tmp_path / "u.h5").results["pump_calibration"]
    assert results["round_trip_loss_db"].value == pytest.approx(8.0, abs=0.05)
    assert results["insertion_loss_db"].value == pytest.approx(4.0, abs=0.05)


def test_it_needs_the_optical_resonance_first(tmp_path) -> None:
    with bare_run(STATION_A, tmp_path) as (lab, run), traffic(lab) as sent:
        with pytest.raises(MissingCalibration, match="needs optical_resonance.wavelength_m"):
            pump_calibration(lab, run)
        assert sent == []


@pytest.mark.parametrize(("params", "message"), [
    ({"detuning_m": 1e-12}, r"pump_calibration: detuning_m must be in \[5e-12, 5e-09\] m"),
    ({"laser_powers_mw": "0.1,0.2"},
     "pump_calibration: laser_powers_mw must hold at least 3 different numbers"),
    ({"laser_powers_mw": "0.1,0.11,0.12"}, "laser_powers_mw must span at least a factor 2"),
    ({"laser_powers_mw": "0.1,x,1"}, "pump_calibration: laser_powers_mw must be comma-separated numbers"),
    ({"laser_powers_mw": "0.1,1,1000"},
     r"laser_powers_mw must be in \[0.0316\d*, 19.95\d*\] mW \(each\), got 1000.0"),
    ({"averages": 0}, r"pump_calibration: averages must be an integer in \[1, 10000\]"),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message) -> None:
    with bare_run(STATION_A, tmp_path) as (lab, run), traffic(lab) as sent:
        run.results["optical_resonance"] = {  # as optical_resonance would leave them
            "wavelength_m": Result(lab.world.truth()["optical_wavelength_m"], "m"),
            "kappa_o_hz": Result(25e6, "Hz"), "min_transmission": Result(0.16, "")}
        with pytest.raises(ValueError, match=message):
            pump_calibration(lab, run, **params)
        assert sent == []


def test_a_station_without_the_tap_ratio_is_refused(tmp_path) -> None:
    station = station_b(tmp_path)
    text = station.read_text().replace("  pump_tap_ratio: 0.01\n", "")
    station.write_text(text)
    with bare_run(station, tmp_path) as (lab, run), traffic(lab) as sent:
        with pytest.raises(ValueError, match="pump_calibration: needs constants: pump_tap_ratio"):
            pump_calibration(lab, run)
        assert sent == []
