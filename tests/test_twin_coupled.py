"""The whole simulated lab through the real drivers: instruments respond to each other's state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from hil.station import load_lab
from hil.twin.transducer import M_EX, O_EX

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "stations" / "twin.yaml"


@pytest.fixture
def make_lab(tmp_path: Path):
    labs = []

    def make(**twin_overrides):
        data = yaml.safe_load(TWIN.read_text())
        for section, values in twin_overrides.items():
            if isinstance(values, dict):
                data["twin"].setdefault(section, {}).update(values)
            else:
                data["twin"][section] = values
        path = tmp_path / f"station{len(labs)}.yaml"
        path.write_text(yaml.safe_dump(data))
        labs.append(load_lab(path))
        return labs[-1]

    yield make
    for lab in labs:
        lab.close()


def pump_on_resonance(lab, power_dbm: float) -> None:
    lab.pump.wavelength(round(lab.world.cavity.wavelength_m * 1e9, 4) * 1e-9)
    lab.pump.power_dbm(power_dbm)
    lab.pump.enable_output()


def vna_over_microwave_mode(lab, s_parameter: str, span: float = 60e6, points: int = 301,
                            if_bandwidth: float = 100.0):
    vna = lab.vna
    vna.s_parameter(s_parameter)
    vna.center(lab.world.truth()["f_m_hz"])
    vna.span(span)
    vna.points(points)
    vna.if_bandwidth(if_bandwidth)
    vna.power_dbm(0)  # -60 dBm at the device after the line
    vna.enable_output()
    vna.run_sweep()
    return vna.frequency_axis(), vna.trace()


def test_pump_power_warms_the_mixing_chamber_over_virtual_time(make_lab) -> None:
    """physics.md §1.6 item 6: T = sqrt(T0^2 + P_abs/a), reached with the fridge time constant."""
    lab = make_lab(lines={"pump_duty_cycle": 1.0}, noise={"thermometer_rel": 0.0})
    p = lab.world.params
    t0 = lab.cryostat.mxc_temperature()
    assert t0 == pytest.approx(p.fridge.t_base_k, rel=1e-3)
    pump_on_resonance(lab, -15.0)  # CW: 31.6 uW x 100 (amplifier) -> ~1.2 mW on chip
    on_chip = lab.world.physics.on_chip_pump_w(lab.world.laser_emitted_power())
    absorbed = p.fridge.absorbed_fraction * on_chip
    final = np.sqrt(p.fridge.t_base_k ** 2 + absorbed / p.fridge.cooling_a_w_per_k2)
    start = lab.world.clock.now()
    lab.world.clock.sleep(p.fridge.tau_s)
    one_tau = lab.cryostat.mxc_temperature()
    assert one_tau - t0 == pytest.approx((final - t0) * (1 - np.exp(-1)), rel=0.02)
    lab.world.clock.sleep(20 * p.fridge.tau_s)
    assert lab.cryostat.mxc_temperature() == pytest.approx(final, rel=1e-3)
    assert lab.world.clock.now() - start == pytest.approx(21 * p.fridge.tau_s)
    lab.pump.safe_state()
    lab.world.clock.sleep(20 * p.fridge.tau_s)
    assert lab.cryostat.mxc_temperature() == pytest.approx(t0, rel=1e-3)


def test_sample_heater_warms_the_mixing_chamber(make_lab) -> None:
    lab = make_lab(noise={"thermometer_rel": 0.0})
    heater = lab.cryostat.sample_heater
    heater.current_range(1e-3)
    heater.manual_output(50.0)
    assert lab.cryostat.heater_power() == pytest.approx((0.5e-3) ** 2 * 120, rel=1e-3)
    lab.world.clock.sleep(30 * lab.world.params.fridge.tau_s)
    p = lab.world.params.fridge
    expected = np.sqrt(p.t_base_k ** 2 + (0.5e-3) ** 2 * 120 / p.cooling_a_w_per_k2)
    assert lab.cryostat.mxc_temperature() == pytest.approx(expected, rel=1e-3)
    lab.cryostat.safe_state()
    assert lab.cryostat.heater_power() == 0.0


def test_s21_grows_with_pump_power_as_the_model_says(make_lab) -> None:
    """physics.md §1.3: on resonance eta = eta_o eta_m 4C/(1+C)^2, C proportional to pump power."""
    lab = make_lab()
    peaks = {}
    for power_dbm in (-10.0, 0.0):
        pump_on_resonance(lab, power_dbm)
        f, s21 = vna_over_microwave_mode(lab, "S21", if_bandwidth=1.0)  # virtual time is free
        peaks[power_dbm] = np.abs(s21[f.size // 2])  # at f_m
    model = {}
    physics = lab.world.physics
    for power_dbm in peaks:
        laser_w = 1e-3 * 10 ** (power_dbm / 10)
        s = physics.transducer.s_matrix(np.array([lab.world.truth()["f_m_hz"]]),
                                        physics.on_chip_pump_w(laser_w),
                                        physics.pump_detuning_hz(lab.pump.wavelength()))
        model[power_dbm] = abs(s[0, O_EX, M_EX]) ** 2
    measured_ratio = (peaks[0.0] / peaks[-10.0]) ** 2
    assert measured_ratio == pytest.approx(model[0.0] / model[-10.0], rel=0.02)
    lab.pump.safe_state()
    _, dark = vna_over_microwave_mode(lab, "S21", if_bandwidth=10.0)
    assert np.max(np.abs(dark)) < 0.1 * peaks[-10.0]  # pump off: no conversion, only noise


def test_bidirectional_calibration_through_the_vna_recovers_the_efficiency(make_lab) -> None:
    """physics.md §1.8: eta = |S21 S12| / |S11 S22|, reflections taken off resonance."""
    lab = make_lab()
    pump_on_resonance(lab, 10.0)
    truth = lab.world.physics
    f_m = lab.world.truth()["f_m_hz"]
    traces = {name: vna_over_microwave_mode(lab, name, span=400e6, points=801) for name in
              ("S11", "S21", "S12", "S22")}
    f = traces["S21"][0]
    centre = int(np.argmax(np.abs(traces["S21"][1])))
    off = int(np.argmin(np.abs(f - (f_m + 190e6))))
    eta = np.abs(traces["S21"][1][centre] * traces["S12"][1][centre]) / np.abs(
        traces["S11"][1][off] * traces["S22"][1][off])
    laser_w = lab.world.laser_emitted_power()
    device = truth.transducer.s_matrix(f[[centre, off]], truth.on_chip_pump_w(laser_w),
                                       truth.pump_detuning_hz(lab.pump.wavelength()))
    expected = abs(device[0, O_EX, M_EX] * device[0, M_EX, O_EX]) / abs(
        device[1, M_EX, M_EX] * device[1, O_EX, O_EX])
    assert eta == pytest.approx(expected, rel=0.01)
    # and that is the on-chip efficiency eta_o eta_m 4C/(1+C)^2 at the pump's detuning (the laser
    # sits on a 0.1 pm grid; the converted sideband then sits slightly off the optical mode)
    detuning = truth.pump_detuning_hz(lab.pump.wavelength())
    assert eta == pytest.approx(truth.transducer.efficiency(truth.on_chip_pump_w(laser_w), detuning),
                                rel=0.1)


def test_binary_and_ascii_traces_carry_the_same_sweep(make_lab) -> None:
    lab = make_lab()
    _, ascii_trace = vna_over_microwave_mode(lab, "S11")
    for fmt, rel in (("real64", 1e-9), ("real32", 1e-6)):
        lab.vna.data_format(fmt)
        binary = lab.vna.trace()  # the held sweep, now transferred as a binary block
        assert np.allclose(binary, ascii_trace, rtol=rel, atol=rel * np.abs(ascii_trace).max())


def test_a_sweep_takes_points_over_if_bandwidth_on_the_clock(make_lab) -> None:
    lab = make_lab()
    before = lab.world.clock.now()
    vna_over_microwave_mode(lab, "S11", points=301)  # IFBW 100 Hz
    # points (1/IFBW + the station's per-point overhead) + 1 ms (docs/twin.md, effect 7)
    overhead = lab.world.params.timing.vna_point_s
    assert lab.world.clock.now() - before == pytest.approx(301 * (1 / 100 + overhead) + 1e-3, rel=1e-6)


def test_centre_and_span_move_start_and_stop(make_lab) -> None:
    lab = make_lab()
    lab.vna.center(8.8e9)
    lab.vna.span(20e6)
    assert lab.vna.start() == pytest.approx(8.79e9)
    assert lab.vna.stop() == pytest.approx(8.81e9)
    assert lab.vna.frequency_axis()[0] == pytest.approx(8.79e9)


def test_optical_resonance_moves_with_the_twin_parameters(make_lab) -> None:
    lab = make_lab(transducer={"pump_wavelength_m": 1550.2e-9})
    lab.pump.power_dbm(-15)
    lab.pump.enable_output()
    readings = {}
    for wavelength_nm in (1550.0744, 1550.2000):
        lab.pump.wavelength(wavelength_nm * 1e-9)
        readings[wavelength_nm] = lab.meter.power()
    # the dip (T_min 0.16 for Profile A) follows the twin's pump mode to 1550.2 nm
    assert readings[1550.2000] / readings[1550.0744] == pytest.approx(0.16, rel=0.02)


def test_noise_marker_reads_the_output_chain_noise(make_lab) -> None:
    """Pump off, cold fridge: k_B T_N G per Hz from the HEMT chain (physics.md §1.5, §3g)."""
    lab = make_lab(noise={"esa_marker_rel": 0.0})
    density = lab.esa.measure_noise_density(lab.world.truth()["f_m_hz"])
    lines = lab.world.params.lines
    gain = 10 ** (lines.vna_path_gains_db[1] / 10)
    expected_w = 1.380649e-23 * lines.hemt_noise_temp_k * gain
    assert density == pytest.approx(10 * np.log10(expected_w / 1e-3), abs=0.3)
