"""Pump path and VNA paths of the twin; the bidirectional calibration of physics.md §1.8."""

from __future__ import annotations

import numpy as np
import pytest

from hil.twin.lines import PumpPath, VnaPaths, bidirectional_efficiency, db_to_ratio, ratio_to_db
from hil.twin.params import TwinParams
from hil.twin.transducer import M_EX, O_EX, EOTransducer

A = EOTransducer.from_params(TwinParams().transducer)


def test_default_pump_path_reaches_p_c1_at_full_laser_power() -> None:
    """Defaults (physics.md §4, A): 20 mW laser, EDFA +20 dB -> 2 W; 1 % tap -> 20 mW at the monitor;
    1 dB fibers + device coupling 0.5 -> 0.786 W on chip ~ P_C1 (1 %); all to 1e-12 of the closed form."""
    path = PumpPath.from_params(TwinParams().lines)
    assert path.amplified_w(20e-3) == pytest.approx(2.0, rel=1e-12)
    assert path.monitor_w(20e-3) == pytest.approx(20e-3, rel=1e-12)
    on_chip = path.on_chip_w(20e-3)
    assert on_chip == pytest.approx(2.0 * 0.99 * 0.5 * 10 ** (-0.1), rel=1e-12)
    assert on_chip == pytest.approx(A.p_c1_w(), rel=0.03)
    assert path.laser_for_on_chip_w(on_chip) == pytest.approx(20e-3, rel=1e-12)
    # the lab's rule P_device = P_tap x (1 - r)/r x eta_in (physics.md §3 (d))
    assert path.monitor_w(20e-3) * path.chip_per_monitor == pytest.approx(on_chip, rel=1e-12)
    assert path.through_port_w(20e-3, 0.16) == pytest.approx(on_chip * 0.16 * 0.5 * 10 ** (-0.1), rel=1e-12)


def test_vna_reads_device_s_times_path_gains() -> None:
    """DESIGN.md/§1.8: S11 = S_ee, S21 = S_oe (M->O), S12 = S_eo (O->M), S22 = S_oo, each times
    sqrt(G_in G_out) of its paths (and conjugated: engineering convention), to 1e-12."""
    gains = (-61.0, 72.0, -17.0, -9.0)
    vna = VnaPaths(gains_db=gains)
    f = A.f_m_hz + np.linspace(-30e6, 30e6, 61)
    s = A.s_matrix(f, A.p_c1_w())
    two = vna.two_port(f, s)
    g = db_to_ratio(np.array(gains))
    expect = {
        "S11": np.sqrt(g[0] * g[1]) * s[:, M_EX, M_EX],
        "S21": np.sqrt(g[0] * g[3]) * s[:, O_EX, M_EX],
        "S12": np.sqrt(g[2] * g[1]) * s[:, M_EX, O_EX],
        "S22": np.sqrt(g[2] * g[3]) * s[:, O_EX, O_EX],
    }
    for name, value in expect.items():
        assert np.allclose(two[name], np.conj(value), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="S-parameter"):
        vna.measure("S33", f, s)


def test_delays_wind_the_phase() -> None:
    """A path delay tau multiplies the reading by exp(-2 pi i f tau) (Probst environment term)."""
    plain = VnaPaths()
    late = VnaPaths(delays_s=(10e-9, 20e-9, 0.0, 0.0))
    f = np.array([8.7e9, 8.8e9])
    s = A.s_matrix(f, 0.1)
    ratio = late.measure("S11", f, s) / plain.measure("S11", f, s)
    assert np.allclose(ratio, np.exp(-2j * np.pi * f * 30e-9), atol=1e-12)


def test_bidirectional_calibration_recovers_efficiency_for_random_gains() -> None:
    """§4 acceptance (4) / §1.8: eta = |S21 S12| / |S11 S22| with reflections 2 GHz off resonance
    recovers eta_tot = |S_oe|^2 to < 1e-4 for random path gains over 11 decades (+-55 dB), random
    delays, and pump powers from 0.01 to 10 P_C1."""
    rng = np.random.default_rng(2024)
    for _ in range(200):
        gains = tuple(rng.uniform(-55.0, 55.0, size=4))
        delays = tuple(rng.uniform(0.0, 100e-9, size=4))
        vna = VnaPaths(gains_db=gains, delays_s=delays)
        power = A.p_c1_w() * 10 ** rng.uniform(-2, 1)
        f = np.array([A.f_m_hz, A.f_m_hz + 2e9])
        r = vna.two_port(f, A.s_matrix(f, power))
        eta = bidirectional_efficiency(r["S21"][0], r["S12"][0], r["S11"][1], r["S22"][1])
        assert abs(eta - A.efficiency(power)) < 1e-4


def test_calibration_recovers_the_checked_0_26667() -> None:
    """§1.8 checked example: eta_tot = 0.26667 (here eta_o 0.6, eta_m 0.5, C = 0.5:
    0.3 x 4 x 0.5 / 1.5^2) recovered to < 1e-4 with random gains over 11 decades and a 2 GHz-off
    reference for the reflections."""
    t = EOTransducer(f_m_hz=8e9, g0_hz=37.0, pump_frequency_hz=193.4e12, kappa_o_hz=25e6, kappa_o_ex_hz=15e6,
                     kappa_m_hz=10e6, kappa_m_ex_hz=5e6)
    power = 0.5 * t.p_c1_w()
    assert t.efficiency(power) == pytest.approx(0.26667, abs=1e-5)
    rng = np.random.default_rng(7)
    f = np.array([t.f_m_hz, t.f_m_hz + 2e9])
    s = t.s_matrix(f, power)
    for _ in range(100):
        r = VnaPaths(gains_db=tuple(rng.uniform(-55.0, 55.0, size=4))).two_port(f, s)
        eta = bidirectional_efficiency(r["S21"][0], r["S12"][0], r["S11"][1], r["S22"][1])
        assert abs(eta - 0.26667) < 1e-4


def test_db_helpers_round_trip() -> None:
    assert ratio_to_db(db_to_ratio(-37.5)) == pytest.approx(-37.5, abs=1e-12)
    with pytest.raises(ValueError, match="tap_ratio"):
        PumpPath(tap_ratio=1.0)
