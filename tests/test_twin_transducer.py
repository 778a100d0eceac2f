"""Electro-optic transducer of the twin against physics.md §1.3 and the acceptance tests of §4."""

from __future__ import annotations

import numpy as np
import pytest

from hil.twin.params import TwinParams
from hil.twin.transducer import (
    M_EX,
    O_EX,
    EOTransducer,
    conversion_spectrum_closed_form,
    efficiency_on_resonance,
)

A = EOTransducer.from_params(TwinParams().transducer)
B = EOTransducer.from_params(TwinParams.profile("B").transducer)


def _wide(ratio: float) -> EOTransducer:
    """kappa_o / kappa_m = ratio, kappa_m/2pi = 2 MHz, both modes half over-coupled (§1.3 table)."""
    return EOTransducer(f_m_hz=8e9, g0_hz=10.0, pump_frequency_hz=193.4e12, kappa_o_hz=ratio * 2e6,
                        kappa_o_ex_hz=ratio * 1e6, kappa_m_hz=2e6, kappa_m_ex_hz=1e6)


# --- acceptance test (1): Profile A table of §4, within 2 % -------------------------------------
PROFILE_A_TABLE = [  # P_pump (W), n_p, C, eta_int, eta_tot  (physics.md §4, Profile A)
    (0.1e-3, 5.96e6, 1.31e-4, 5.2e-4, 7.8e-5),
    (1e-3, 5.96e7, 1.31e-3, 5.21e-3, 7.8e-4),
    (10e-3, 5.96e8, 0.0131, 0.0509, 0.00763),
    (100e-3, 5.96e9, 0.131, 0.409, 0.0613),
    (300e-3, 1.79e10, 0.392, 0.809, 0.121),
    (1.0, 5.96e10, 1.306, 0.982, 0.147),
    (3.0, 1.79e11, 3.917, 0.648, 0.0972),
]


@pytest.mark.parametrize(("power", "n_p", "coop", "eta_int", "eta_tot"), PROFILE_A_TABLE)
def test_profile_a_efficiency_table(power, n_p, coop, eta_int, eta_tot) -> None:
    """§4 acceptance (1): n_p, C, eta_int and eta_tot = |S_oe|^2 (matrix) within 2 % of the table."""
    assert A.pump_photons(power) == pytest.approx(n_p, rel=0.02)
    assert A.cooperativity(power) == pytest.approx(coop, rel=0.02)
    assert A.efficiency(power) / A.eta_max == pytest.approx(eta_int, rel=0.02)
    assert A.efficiency(power) == pytest.approx(eta_tot, rel=0.02)


def test_profile_a_p_c1_and_eta_max() -> None:
    """§4 acceptance (1): P_C1 = 0.766 W +- 2 %, eta_max = 0.150 +- 0.003; n_p(C=1) 4.565e10,
    5.96e10 photons/W (§4). The numerical maximum of eta_tot(P) is at P_C1."""
    assert A.p_c1_w() == pytest.approx(0.766, rel=0.02)
    assert A.p_c1_w() == pytest.approx(0.7658, rel=1e-3)
    assert A.pump_photons(A.p_c1_w()) == pytest.approx(4.565e10, rel=1e-3)
    assert A.pump_photons(1.0) == pytest.approx(5.96e10, rel=1e-3)
    powers = np.geomspace(0.01, 30, 4001)
    eta = A.efficiency(powers)
    assert powers[np.argmax(eta)] == pytest.approx(A.p_c1_w(), rel=0.01)
    assert eta.max() == pytest.approx(0.150, abs=0.003)
    assert A.efficiency(A.p_c1_w()) == pytest.approx(0.15, abs=1e-12)


@pytest.mark.parametrize("x", [1.5, 3.0, 10.0, 100.0, 1e3])
def test_efficiency_is_symmetric_in_log_power(x) -> None:
    """§4 acceptance (2): eta(x P_C1) = eta(P_C1 / x) to 1e-9 (matrix form, on resonance)."""
    p_c1 = A.p_c1_w()
    assert abs(A.efficiency(x * p_c1) - A.efficiency(p_c1 / x)) < 1e-9


@pytest.mark.parametrize("transducer", [A, B, _wide(100)], ids=["A", "B", "wide"])
@pytest.mark.parametrize("coop", [0.0, 0.05, 1.0, 4.0])
def test_scattering_matrix_is_unitary_and_reciprocal(transducer, coop) -> None:
    """§4 acceptance (3): sum_j |S_kj|^2 = 1 (rows and columns) and |S_oe| = |S_eo| to 1e-12,
    across the band, with detuned modes too."""
    t = transducer
    g = t.coupling_for_cooperativity(coop)
    w = np.linspace(-5, 5, 201) * (t.kappa_o_hz + t.kappa_m_hz)
    for d_o, d_m in [(0.0, 0.0), (0.3 * t.kappa_o_hz, -0.2 * t.kappa_m_hz)]:
        s = t.scattering(w, g, d_o, d_m)
        p = np.abs(s) ** 2
        assert np.max(np.abs(p.sum(axis=-1) - 1)) < 1e-12
        assert np.max(np.abs(p.sum(axis=-2) - 1)) < 1e-12
        assert np.max(np.abs(np.abs(s[:, O_EX, M_EX]) - np.abs(s[:, M_EX, O_EX]))) < 1e-12
        identity = np.einsum("...ki,...kj->...ij", s.conj(), s)
        assert np.max(np.abs(identity - np.eye(4))) < 1e-12


@pytest.mark.parametrize("coop", [0.01, 0.3, 1.0, 2.5])
def test_on_resonance_efficiency_closed_form(coop) -> None:
    """§1.3 (checked): |S_oe(0)|^2 = eta_o eta_m 4C/(1+C)^2; reflections
    |S_ee(0)| = |(1 - 2 eta_m) + C| / (1 + C) (pump off: |k_0 - k_ex|/k), to 1e-12."""
    g = A.coupling_for_cooperativity(coop)
    s = A.scattering(0.0, g)
    expected = efficiency_on_resonance(coop, A.eta_o, A.eta_m)
    assert abs(s[O_EX, M_EX]) ** 2 == pytest.approx(expected, abs=1e-12)
    # S_ee(0) = 1 - 2 eta_m / (1 + C), S_oo(0) = 1 - 2 eta_o / (1 + C)
    assert s[M_EX, M_EX] == pytest.approx(1 - 2 * A.eta_m / (1 + coop), abs=1e-12)
    assert s[O_EX, O_EX] == pytest.approx(1 - 2 * A.eta_o / (1 + coop), abs=1e-12)


def test_spectrum_matches_closed_form_eta_omega() -> None:
    """§1.3 spectrum: |S_oe(w)|^2 = k_o,ex k_m,ex |g chi_o chi_m/(1 + g^2 chi_o chi_m)|^2, to 1e-12,
    including detuned modes."""
    for coop in (0.2, 2.0):
        g = float(A.coupling_for_cooperativity(coop))
        w = np.linspace(-80e6, 80e6, 801)
        for d_o, d_m in [(0.0, 0.0), (7e6, -2e6)]:
            matrix = np.abs(A.scattering(w, g, d_o, d_m)[:, O_EX, M_EX]) ** 2
            closed = conversion_spectrum_closed_form(w, g, A.kappa_o_hz, A.kappa_o_ex_hz, A.kappa_m_hz,
                                                     A.kappa_m_ex_hz, d_o, d_m)
            assert np.max(np.abs(matrix - closed)) < 1e-12


@pytest.mark.parametrize("ratio", [100, 300, 1000, 1e4])
def test_bandwidth_at_c1_for_wide_optical_mode(ratio) -> None:
    """§4 acceptance (5): FWHM at C = 1 within 2 % of kappa_m (1 + C) for kappa_o/kappa_m >= 100."""
    t = _wide(ratio)
    assert t.bandwidth_hz(1.0) == pytest.approx(2 * t.kappa_m_hz, rel=0.02)


@pytest.mark.parametrize(("coop", "fwhm_mhz"), [(0.1, 2.200), (1.0, 4.036), (3.0, 8.240)])
def test_bandwidth_table_of_section_1_3(coop, fwhm_mhz) -> None:
    """§1.3 table, kappa_o/kappa_m = 100, kappa_m/2pi = 2 MHz: 2.200, 4.036, 8.240 MHz at C = 0.1,
    1, 3, within 0.5 % (the table's own rounding is ~0.1 %)."""
    assert _wide(100).bandwidth_hz(coop) / 1e6 == pytest.approx(fwhm_mhz, rel=0.005)


def test_profile_a_bandwidths_and_normal_mode_splitting() -> None:
    """§4 acceptance (5): Profile A FWHM 20.0 MHz +- 1 % at C = 1; §4: 9.88 MHz (C 0.1), 14.36
    (C 0.5) within 1 %; the spectrum splits for C = 2 into peaks at +-5.86 MHz (+- 0.01 MHz),
    and the normal modes split once 4g > |kappa_o - kappa_m| (§1.3)."""
    assert A.bandwidth_hz(1.0) == pytest.approx(20.0e6, rel=0.01)
    assert A.bandwidth_hz(0.1) == pytest.approx(9.88e6, rel=0.01)
    assert A.bandwidth_hz(0.5) == pytest.approx(14.36e6, rel=0.01)
    assert len(A.conversion_peaks_hz(1.0)) == 1
    peaks = A.conversion_peaks_hz(2.0)
    assert len(peaks) == 2
    assert peaks == pytest.approx([-5.86e6, 5.86e6], abs=0.01e6)
    threshold_g = abs(A.kappa_o_hz - A.kappa_m_hz) / 4
    freqs_below, _ = A.normal_modes(0.99 * threshold_g)
    freqs_above, widths_above = A.normal_modes(1.01 * threshold_g)
    assert freqs_below == pytest.approx([0.0, 0.0], abs=1e-6)
    assert freqs_above[0] > 0 > freqs_above[1]
    assert widths_above == pytest.approx([(A.kappa_o_hz + A.kappa_m_hz) / 2] * 2, rel=1e-9)


def test_pump_detuning_lowers_cooperativity() -> None:
    """§1.3: C(Delta_p) = C(0)/(1 + 4 Delta_p^2/kappa_p^2): kappa/4 -> x 0.8, kappa/2 -> x 0.5, to
    1e-6 (the photon energy hbar w_L moves with the laser by ~1e-7 of itself)."""
    c0 = A.cooperativity(0.3)
    assert A.cooperativity(0.3, A.kappa_o_hz / 4) / c0 == pytest.approx(0.8, rel=1e-6)
    assert A.cooperativity(0.3, -A.kappa_o_hz / 2) / c0 == pytest.approx(0.5, rel=1e-6)


def test_pump_detuning_moves_the_signal_mode() -> None:
    """§1.3: with f_m fixed the converted sideband sits |delta_o| = |Delta_p| off (mismatch 0): the
    conversion peak of a wide optical mode follows the detuned signal mode only partly, and the
    peak efficiency drops below that of a resonant pump of the same C."""
    delta_p = A.kappa_o_hz / 2
    assert A.signal_detuning_hz(delta_p) == pytest.approx(-delta_p)
    power = A.p_c1_w()
    on = A.efficiency(power)
    off = A.efficiency(power, pump_detuning_hz=delta_p)
    coop_off = A.cooperativity(power, delta_p)
    assert off < efficiency_on_resonance(coop_off, A.eta_o, A.eta_m) < on


def test_profile_b_matches_section_4() -> None:
    """§4 Profile B: P_C1 42.9 mW, n_p(C=1) 2.667e8; 1 mW -> C 0.0233, eta_int 8.9 %, eta_tot 0.60 %;
    1.75 mW -> C 0.0408, eta_int 15.0 %, eta_tot 1.02 % (to the quoted digit: +- half of its last
    place); 10 mW -> C 0.233, 4.1 %; FWHM 3.12 MHz (C 0.04), 6.08 MHz (C 1); others within 1 %."""
    assert B.p_c1_w() == pytest.approx(42.9e-3, rel=0.003)
    assert B.pump_photons(B.p_c1_w()) == pytest.approx(2.667e8, rel=1e-3)
    assert B.cooperativity(1e-3) == pytest.approx(0.0233, rel=0.01)
    assert B.efficiency(1e-3) / B.eta_max == pytest.approx(0.089, rel=0.01)
    assert B.efficiency(1e-3) == pytest.approx(0.0060, rel=0.01)
    assert B.cooperativity(1.75e-3) == pytest.approx(0.0408, abs=0.00005)
    assert B.efficiency(1.75e-3) / B.eta_max == pytest.approx(0.150, abs=0.0005)
    assert B.efficiency(1.75e-3) == pytest.approx(0.0102, abs=0.00005)
    assert B.efficiency(3e-3) == pytest.approx(0.0165, rel=0.01)
    assert B.cooperativity(10e-3) == pytest.approx(0.233, rel=0.01)
    assert B.efficiency(10e-3) == pytest.approx(0.041, rel=0.01)
    assert B.bandwidth_hz(0.04) == pytest.approx(3.12e6, rel=0.01)
    assert B.bandwidth_hz(1.0) == pytest.approx(6.08e6, rel=0.01)


def test_low_cooperativity_slope() -> None:
    """§1.3: eta_tot/P = 64 eta_o eta_m g0^2 k_p,ex / (hbar w_p k_p^2 k_o k_m) = 4 eta_o eta_m / P_C1:
    0.78 /W for Profile A, 6.3e-6 /uW for Profile B (1 %); Hease 2020 1.48 mW -> C 1.9e-3, eta_int 0.77 %."""
    assert A.efficiency(1e-6) / 1e-6 == pytest.approx(0.78, rel=0.01)
    assert A.efficiency(1e-6) / 1e-6 == pytest.approx(4 * A.eta_max / A.p_c1_w(), rel=1e-5)
    assert B.efficiency(1e-9) / 1e-3 == pytest.approx(6.3e-6, rel=0.01)
    assert A.cooperativity(1.48e-3) == pytest.approx(1.9e-3, rel=0.03)
    assert A.efficiency(1.48e-3) / A.eta_max == pytest.approx(0.0077, rel=0.01)


def test_reflections_off_resonance_reach_unity() -> None:
    """§1.8 reference: 2 GHz off resonance |S_ee| and |S_oo| are 1 within 2e-5 for Profile A
    (1 - |S|^2 = k_ex k_0 / (w^2 + k^2/4), §1.1)."""
    far = A.f_m_hz + 2e9
    p = A.p_c1_w()
    assert abs(A.reflection(far, p, port="m")) == pytest.approx(1.0, abs=2e-5)
    assert abs(A.reflection(far, p, port="o")) == pytest.approx(1.0, abs=2e-5)


def test_unphysical_transducer_is_refused() -> None:
    with pytest.raises(ValueError, match="kappa_m_ex_hz"):
        EOTransducer(f_m_hz=8e9, g0_hz=1, pump_frequency_hz=1.9e14, kappa_o_hz=1e7, kappa_o_ex_hz=1e6,
                     kappa_m_hz=1e6, kappa_m_ex_hz=2e6)
    with pytest.raises(ValueError, match="direction"):
        A.conversion(A.f_m_hz, 0.1, direction="sideways")
