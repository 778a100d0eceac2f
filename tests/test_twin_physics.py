"""TwinPhysics: the readings simulated instruments will need, from the laser state (physics.md §1, §4)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.clock import VirtualClock
from hil.twin.lines import bidirectional_efficiency
from hil.twin.optical import SPEED_OF_LIGHT
from hil.twin.params import TwinParams
from hil.twin.physics import TwinPhysics

PUMP_WL = SPEED_OF_LIGHT / 193.4052e12  # Profile A pump mode


def test_full_laser_power_gives_c_about_1_on_resonance() -> None:
    """Default lines: 20 mW laser -> 0.786 W on chip -> C = 1.03 (§1.3), eta_tot ~ 0.15 (§4)."""
    twin = TwinPhysics()
    assert twin.cooperativity(20e-3, PUMP_WL) == pytest.approx(1.026, abs=0.01)
    f = np.array([twin.transducer.f_m_hz])
    s21 = twin.vna_trace(f, "S21", 20e-3, PUMP_WL)
    gains = twin.params.lines.vna_path_gains_db
    assert abs(s21[0]) ** 2 / 10 ** ((gains[0] + gains[3]) / 10) == pytest.approx(0.15, abs=0.001)


def test_laser_off_or_far_detuned_means_no_conversion() -> None:
    """No pump photons -> S21 = 0; detuned by 10 kappa_p -> C / 401 (§1.3 Lorentzian)."""
    twin = TwinPhysics()
    f = np.linspace(8.78e9, 8.82e9, 5)
    assert np.all(twin.vna_trace(f, "S21", 0.0, PUMP_WL) == 0)
    far = SPEED_OF_LIGHT / (193.4052e12 + 10 * 25e6)
    assert twin.cooperativity(20e-3, far) == pytest.approx(twin.cooperativity(20e-3, PUMP_WL) / 401, rel=1e-5)


def test_vna_calibration_through_the_twin() -> None:
    """§1.8 through the facade: |S21 S12| / |S11 S22| (reflections 2 GHz off) = eta_tot (< 1e-4)."""
    params = TwinParams.from_mapping({"lines": {"vna_path_gains_db": [-63, 71, -31, 4]}})
    twin = TwinPhysics(params)
    f = np.array([twin.transducer.f_m_hz, twin.transducer.f_m_hz + 2e9])
    r = twin.vna_traces(f, 10e-3, PUMP_WL)
    eta = bidirectional_efficiency(r["S21"][0], r["S12"][0], r["S11"][1], r["S22"][1])
    assert eta == pytest.approx(float(twin.transducer.efficiency(twin.on_chip_pump_w(10e-3))), abs=1e-4)
    with pytest.raises(ValueError, match="s_param"):
        twin.vna_trace(f, "S31", 0.0, PUMP_WL)


def test_microwave_s11_with_pump_off_is_the_probst_resonator() -> None:
    """Pump off, the VNA's S11 / path gain is the §1.2 reflection up to the phase pi (1e-12)."""
    twin = TwinPhysics()
    f = twin.transducer.f_m_hz + np.linspace(-30e6, 30e6, 61)
    s11 = twin.vna_trace(f, "S11", 0.0, PUMP_WL) / 10 ** ((-60 + 70) / 20)
    assert np.allclose(-s11, twin.resonator.s11(f), atol=1e-12)


def test_power_meters_on_the_pump_path() -> None:
    """Monitor tap reads 1 % of 100x the laser; through port shows the pump-mode dip T_min = 0.16
    (§1.1) after the return loss."""
    twin = TwinPhysics()
    assert twin.monitor_power_w(10e-3) == pytest.approx(10e-3, rel=1e-12)
    on_res = twin.through_power_w(10e-3, PUMP_WL)
    far = twin.through_power_w(10e-3, 1.50e-6)
    assert on_res / far == pytest.approx(0.16, abs=1e-6)


def test_fridge_follows_the_pump_and_feeds_the_noise() -> None:
    """0.5 mW on-chip average (f_abs 0.05 -> 25 uW) warms the MXC to sqrt(T0^2 + P/a) after many tau
    (§1.6 item 6); the analyzer sees the added n_th(f_m, T_mc) (§1.5)."""
    clock = VirtualClock()
    twin = TwinPhysics(clock=clock)
    f = np.array([twin.transducer.f_m_hz])
    cold = twin.spectrum_psd_w_per_hz(f, 0.0, PUMP_WL, danl_dbm_per_hz=None)
    laser_avg = twin.pump_path.laser_for_on_chip_w(0.5e-3)
    twin.set_fridge_loads(laser_avg, heater_w=0.0)
    clock.advance(40 * twin.params.fridge.tau_s)
    assert twin.mixing_chamber_k() == pytest.approx(np.sqrt(0.01 ** 2 + 25e-6 / 0.05), rel=1e-9)
    warm = twin.spectrum_psd_w_per_hz(f, 0.0, PUMP_WL, danl_dbm_per_hz=None)
    assert warm > cold
    marker = twin.noise_marker_dbm_per_hz(f, 0.0, PUMP_WL)
    assert -125 < marker[0] < -120  # G 70 dB, T_N 4 K at 8.8 GHz: -122.6 dBm/Hz
    trace = twin.spectrum_trace_dbm(f, 100.0, 0.0, PUMP_WL)
    assert trace[0] == pytest.approx(marker[0] + 20.0, abs=1e-9)


def test_truth_reports_the_device() -> None:
    truth = TwinPhysics(TwinParams.profile("B")).truth()
    assert truth["p_c1_w"] == pytest.approx(42.9e-3, rel=0.003)
    assert truth["eta_max"] == pytest.approx(0.25 * 0.27, rel=1e-12)
