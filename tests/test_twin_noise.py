"""Pump heating, added noise and the spectrum-analyzer view against physics.md §1.5, §1.6 and §4."""

from __future__ import annotations

import numpy as np
import pytest

from hil.twin.noise import (
    NoiseModel,
    added_noise_m_to_o,
    added_noise_o_to_m,
    amplifier_occupancy,
    mode_occupancy,
    pulsed_hot_bath,
    w_to_dbm,
)
from hil.twin.params import NoiseParams, TwinParams
from hil.twin.quanta import H, thermal_occupancy
from hil.twin.transducer import EOTransducer, efficiency_on_resonance

PARAMS_A = TwinParams()
MODEL_A = NoiseModel.from_params(PARAMS_A)
T_A = MODEL_A.transducer

# §1.5 check device: n_int 0.3, kappa_m ex/int 8/2 MHz, kappa_o ex/int 10/10 MHz
CHECK = EOTransducer(f_m_hz=8e9, g0_hz=1.0, pump_frequency_hz=193.4e12, kappa_o_hz=20e6, kappa_o_ex_hz=10e6,
                     kappa_m_hz=10e6, kappa_m_ex_hz=8e6)
CHECK_MODEL = NoiseModel(CHECK, NoiseParams(n_floor=0.3, heating_a=0.0))


def test_closed_form_check_values() -> None:
    """§1.5 check values (n_int 0.3, kappa_m 8/2, kappa_o 10/10 MHz): m->o 0.075; o->m 0.6 (C 0.2),
    0.12 (C 1); occupancy 0.060 -> 0.050 (C 0.2), 0.030 (C 1); to 1e-12."""
    eta_o, eta_m = CHECK.eta_o, CHECK.eta_m
    assert added_noise_m_to_o(0.3, eta_m) == pytest.approx(0.075, abs=1e-12)
    assert added_noise_o_to_m(0.3, eta_o, eta_m, 0.2) == pytest.approx(0.6, abs=1e-12)
    assert added_noise_o_to_m(0.3, eta_o, eta_m, 1.0) == pytest.approx(0.12, abs=1e-12)
    for coop, occ in [(0.0, 0.060), (0.2, 0.050), (1.0, 0.030)]:
        assert mode_occupancy(0.3, 0.0, 10e6, 8e6, coop) == pytest.approx(occ, abs=1e-12)


@pytest.mark.parametrize(("coop", "m_to_o", "o_to_m"), [(0.2, 0.075, 0.6), (1.0, 0.075, 0.12)])
def test_scattering_bookkeeping_reproduces_the_check_values(coop, m_to_o, o_to_m) -> None:
    """§1.5 bookkeeping N_add = (N_k - |S_kj|^2 n_j)/|S_kj|^2 from the matrix, on resonance, cold
    line, equals the closed forms (check values) to 1e-9; m->o does not depend on C."""
    power = coop * CHECK.p_c1_w()
    assert CHECK_MODEL.added_noise("m->o", power) == pytest.approx(m_to_o, abs=1e-9)
    assert CHECK_MODEL.added_noise("o->m", power) == pytest.approx(o_to_m, abs=1e-9)


def test_hot_line_adds_to_o_to_m_only_through_reflection() -> None:
    """§1.5: o->m gains the hot-line reflection |S_ee|^2 n_line/|S_eo|^2; m->o is unchanged."""
    hot = NoiseModel(CHECK, NoiseParams(n_floor=0.3, heating_a=0.0, n_line=0.1))
    power = CHECK.p_c1_w()
    s = CHECK.s_matrix(CHECK.f_m_hz, power)
    extra = abs(s[2, 2]) ** 2 * 0.1 / abs(s[2, 0]) ** 2
    assert hot.added_noise("m->o", power) == pytest.approx(0.075, abs=1e-9)
    assert hot.added_noise("o->m", power) == pytest.approx(0.12 + extra, abs=1e-9)


def test_mode_occupancy_tends_to_the_closed_form_for_a_wide_optical_mode() -> None:
    """§1.5 occupancy (k_m,0 n_int + k_m,ex n_line)/(k_m(1 + C)) is the kappa_o >> kappa_m limit of the
    exact (Lyapunov) occupancy: within 0.1 % at kappa_o/kappa_m = 2000 (C 0, 0.2, 1)."""
    wide = EOTransducer(f_m_hz=8e9, g0_hz=1.0, pump_frequency_hz=193.4e12, kappa_o_hz=20e9,
                        kappa_o_ex_hz=10e9, kappa_m_hz=10e6, kappa_m_ex_hz=8e6)
    model = NoiseModel(wide, NoiseParams(n_floor=0.3, heating_a=0.0, n_line=0.05))
    for coop in (0.0, 0.2, 1.0):
        _, n_b = model.mode_occupancies(coop * wide.p_c1_w())
        assert n_b == pytest.approx(mode_occupancy(0.3, 0.05, 10e6, 8e6, coop), rel=1e-3)


def test_profile_a_heating_law_and_calibration_points() -> None:
    """§4 Profile A: n_int = 0.02 + 0.39 (P/P_C1)^0.66, calibrated so m->o N_add = 0.16 at 8.7 %
    (C 0.214) and 0.41 at 15 % (C 1); at C = 1 o->m ~ 0.68. To the printed digits."""
    p_c1 = T_A.p_c1_w()
    assert MODEL_A.n_int(0.0) == pytest.approx(0.02, abs=1e-12)
    assert MODEL_A.n_int(p_c1) == pytest.approx(0.41, abs=1e-4)
    low = 0.214 * p_c1
    assert T_A.efficiency(low) == pytest.approx(0.087, abs=0.0005)
    assert MODEL_A.added_noise("m->o", low) == pytest.approx(0.16, abs=0.005)
    assert T_A.efficiency(p_c1) == pytest.approx(0.15, abs=0.0005)
    assert MODEL_A.added_noise("m->o", p_c1) == pytest.approx(0.41, abs=0.005)
    assert MODEL_A.added_noise("o->m", p_c1) == pytest.approx(0.68, abs=0.005)


def test_profile_b_heating_law() -> None:
    """§4 Profile B: n_int = 0.02 + 0.05 (P/1 mW)^0.5 (1 mW -> 0.07, 4 mW -> 0.12), to 1e-12."""
    model = NoiseModel.from_params(TwinParams.profile("B"))
    assert model.n_int(1e-3) == pytest.approx(0.07, abs=1e-12)
    assert model.n_int(4e-3) == pytest.approx(0.12, abs=1e-12)


def test_fridge_temperature_adds_thermal_occupancy() -> None:
    """§1.5: with a bath temperature the microwave bath gains n_th(f_m, T): 100 mK at 8.8 GHz."""
    extra = MODEL_A.n_int(0.0, t_bath_k=0.1) - MODEL_A.n_int(0.0)
    assert extra == pytest.approx(thermal_occupancy(8.8e9, 0.1), rel=1e-12)
    assert thermal_occupancy(8.8e9, 0.1) == pytest.approx(0.0145, abs=0.0005)


@pytest.mark.parametrize(("rep_hz", "base", "end"),
                         [(1e3, 0.020, 0.357), (1e4, 0.067, 0.364), (1e5, 0.338, 0.400)])
def test_pulsed_hot_bath(rep_hz, base, end) -> None:
    """§1.6 item 7, Profile A (1 us pulses at P_C1, tau_rise 0.5 us, tau_fall 50 us): baseline
    0.020 / 0.067 / 0.338 and end-of-pulse 0.357 / 0.364 / 0.400 at 1 / 10 / 100 kHz (+- 0.001)."""
    n_base, n_end = MODEL_A.pulsed_bath(T_A.p_c1_w(), 1e-6, rep_hz)
    assert n_base == pytest.approx(base, abs=1e-3)
    assert n_end == pytest.approx(end, abs=1e-3)


def test_pulsed_hot_bath_limits() -> None:
    """CW (pulse = period) gives n_ss; a rare pulse starts from the floor."""
    base, end = pulsed_hot_bath(0.02, 0.41, 1e-3, 1e3, 0.5e-6, 50e-6)
    assert base == pytest.approx(0.41, abs=1e-12) and end == pytest.approx(0.41, abs=1e-12)
    with pytest.raises(ValueError, match="pulse length"):
        pulsed_hot_bath(0.02, 0.41, 2e-3, 1e3, 0.5e-6, 50e-6)


def test_spectrum_analyzer_psd_inverts_to_output_photons() -> None:
    """§3 (g): n_out = PSD/(G h f) - n_amp recovers sum_j |S_kj|^2 n_j (1e-9); n_amp = k_B T_N/(hf)
    = 9.47 for 4 K at 8.8 GHz; marker in dBm/Hz = 10 log10(PSD / 1 mW)."""
    f = T_A.f_m_hz + np.linspace(-40e6, 40e6, 81)
    power = T_A.p_c1_w()
    psd = MODEL_A.output_psd_w_per_hz(f, power)
    gain = 10 ** (70 / 10)
    n_amp = amplifier_occupancy(4.0, f)
    assert n_amp[40] == pytest.approx(9.47, abs=0.01)
    recovered = psd / (gain * H * f) - n_amp
    assert np.allclose(recovered, MODEL_A.output_occupancy(f, power), rtol=0, atol=1e-9)
    marker = MODEL_A.noise_marker_dbm_per_hz(f, power, danl_dbm_per_hz=None)
    assert np.allclose(marker, w_to_dbm(psd), atol=1e-12)


def test_noise_spectrum_shape_with_pump() -> None:
    """§1.5: pump off, the microwave output carries the internal bath as a Lorentzian of peak
    4 eta_m (1 - eta_m) n_int at f_m (1e-9); at C = 1 the peak is divided by (1 + C)^2 and
    heated (n_int(P_C1)), and the line is broadened (EO cooling); far off resonance only the line."""
    f_m = T_A.f_m_hz
    eta_m = T_A.eta_m
    off = MODEL_A.output_occupancy(f_m, 0.0)
    assert off == pytest.approx(4 * eta_m * (1 - eta_m) * 0.02, abs=1e-9)
    p_c1 = T_A.p_c1_w()
    on = MODEL_A.output_occupancy(f_m, p_c1)
    assert on == pytest.approx(4 * eta_m * (1 - eta_m) * float(MODEL_A.n_int(p_c1)) / 4, abs=1e-9)
    assert MODEL_A.output_occupancy(f_m + 3e9, p_c1) < 1e-4
    # the spectrum-analyzer trace is PSD x RBW, with the analyzer floor added
    trace = MODEL_A.spectrum_trace_dbm(f_m, 1e3, 0.0)
    assert trace == pytest.approx(MODEL_A.noise_marker_dbm_per_hz(f_m, 0.0) + 30.0, abs=1e-12)
    assert efficiency_on_resonance(1.0) == pytest.approx(1.0)


def test_spectrum_analyzer_floor_dominates_without_gain() -> None:
    """With no output gain the device noise sits far below a -160 dBm/Hz analyzer floor."""
    quiet = NoiseModel(T_A, PARAMS_A.noise, output_gain_db=0.0, amp_noise_temp_k=0.0)
    assert quiet.noise_marker_dbm_per_hz(T_A.f_m_hz, 0.0) == pytest.approx(-160.0, abs=0.01)
