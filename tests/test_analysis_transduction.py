"""The transduction fits' model and estimators against the closed forms and numbers of physics.md."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.bandwidth import fwhm
from hil.analysis.detuning import cooperativity_lorentzian, fit_detuning
from hil.analysis.efficiency import (
    bidirectional_efficiency,
    fit_cooperativity,
    fit_slope,
    reading_scatter,
    value_at,
)
from hil.analysis.noise import added_noise, internal_bath, output_occupancy, pooled_ratio_scatter
from hil.analysis.transducer import (
    PORTS,
    Rates,
    conversion_efficiency,
    detuning_factor,
    efficiency_on_resonance,
    g0_from_cooperativity_slope,
    photons_per_watt,
    s_element,
)

PROFILE_A = Rates(25e6, 7.5e6, 10e6, 5e6)


def s_matrix(offset, c, rates, d_o=0.0, d_m=0.0):
    return np.array([[complex(s_element(k, j, offset, c, rates, d_o, d_m)) for j in PORTS] for k in PORTS])


@pytest.mark.parametrize("c", [0.0, 0.3, 1.0, 4.0])
def test_the_scattering_matrix_is_unitary_and_reciprocal(c):
    """physics.md §4 acceptance (3): sum_j |S_kj|^2 = 1 and |S_oe| = |S_eo| to 1e-12."""
    for offset, d_o in ((0.0, 0.0), (7e6, -3e6), (-20e6, 5e6)):
        s = s_matrix(offset, c, PROFILE_A, d_o, 1e6)
        np.testing.assert_allclose(s @ s.conj().T, np.eye(4), atol=1e-12)
        assert abs(s[0, 2]) == pytest.approx(abs(s[2, 0]), abs=1e-12)


@pytest.mark.parametrize("c", [1e-3, 0.131, 1.0, 3.917])
def test_on_resonance_efficiency_is_4c_over_1_plus_c_squared(c):
    """physics.md §1.3: eta_tot = eta_o eta_m 4C/(1+C)^2 on resonance; Profile A table: 1 W -> C
    1.306, eta_tot 0.147."""
    expected = efficiency_on_resonance(c, 0.3, 0.5)
    assert conversion_efficiency(0.0, c, PROFILE_A) == pytest.approx(expected, rel=1e-12)
    assert efficiency_on_resonance(1.306, 0.3, 0.5) == pytest.approx(0.147, abs=5e-4)


def test_profile_a_photon_number_g0_and_pump_detuning():
    """physics.md §4 Profile A: 5.96e10 photons/W, P_C1 0.7658 W at g0/2pi = 37 Hz;
    §1.3: Delta_p = kappa/4 -> C x 0.8, kappa/2 -> x 0.5."""
    f_pump = 193.4052e12
    n_per_w = photons_per_watt(f_pump, 25e6, 7.5e6)
    assert n_per_w == pytest.approx(5.96e10, rel=2e-3)
    c_per_w = 4 * 37.0 ** 2 * n_per_w / (25e6 * 10e6)
    assert 1 / c_per_w == pytest.approx(0.7658, rel=1e-3)
    assert g0_from_cooperativity_slope(c_per_w, PROFILE_A, f_pump) == pytest.approx(37.0, rel=1e-12)
    assert detuning_factor(25e6 / 4, 25e6) == pytest.approx(0.8)
    assert detuning_factor(25e6 / 2, 25e6) == pytest.approx(0.5)


def test_bidirectional_calibration_cancels_random_gains():
    """physics.md §4 acceptance (4): random gains over 11 decades recover eta to < 1e-4 with a
    reference 2 GHz off resonance."""
    rng = np.random.default_rng(3)
    c = 0.7
    offsets = np.linspace(-5e6, 5e6, 11)
    for _ in range(5):
        g_in1, g_out1, g_in2, g_out2 = 10 ** rng.uniform(-5.5, 5.5, 4)
        s21 = np.sqrt(g_in1 * g_out2) * s_element("o_ex", "m_ex", offsets, c, PROFILE_A)
        s12 = np.sqrt(g_in2 * g_out1) * s_element("m_ex", "o_ex", offsets, c, PROFILE_A)
        s11 = np.sqrt(g_in1 * g_out1) * s_element("m_ex", "m_ex", 2e9, c, PROFILE_A)
        s22 = np.sqrt(g_in2 * g_out2) * s_element("o_ex", "o_ex", 2e9, c, PROFILE_A)
        eta = bidirectional_efficiency(s21, s12, s11, s22)
        np.testing.assert_allclose(eta, conversion_efficiency(offsets, c, PROFILE_A), rtol=1e-4)


@pytest.mark.parametrize("c", [2e-3, 0.4, 1.0, 2.5])
def test_cooperativity_from_a_noisy_spectrum(c):
    """The fit tells C from 1/C (same centre value, physics.md §1.3) by the spectrum's shape."""
    rng = np.random.default_rng(7)
    offsets = np.linspace(-30e6, 30e6, 101)
    d_o = -5.6e6
    clean = conversion_efficiency(offsets, c, PROFILE_A, d_o)
    amplitude = np.sqrt(clean) + 2e-3 * np.sqrt(clean.max()) * rng.standard_normal(offsets.size)
    fit = fit_cooperativity(offsets, amplitude ** 2, PROFILE_A, d_o)
    assert fit.cooperativity == pytest.approx(c, rel=0.01)
    assert abs(fit.cooperativity - c) < 5 * fit.stderr


def test_slope_through_the_origin_and_a_value_along_the_line_shape():
    k = 1 / 0.7658
    p = np.geomspace(1e-3, 1.0, 10)
    slope = fit_slope(p, k * p, 1e-3 * k * p)
    assert slope.slope == pytest.approx(k, rel=1e-12)
    x = np.linspace(-10e6, 10e6, 21)  # coarse: a parabola through 7 points would be 2 % low

    def shape(f):
        return conversion_efficiency(f, 0.01, PROFILE_A)

    noise = 1 + 1e-3 * np.cos(np.arange(x.size))
    value, err = value_at(x, 3.0 * shape(x) * noise, shape, 0.0)
    assert value == pytest.approx(3.0 * shape(0.0), rel=2e-3)
    assert 0 < err < 2e-3 * value


@pytest.mark.parametrize("c, width_mhz", [(0.1, 9.88), (0.5, 14.36), (1.0, 20.0)])
def test_fwhm_of_the_profile_a_spectrum(c, width_mhz):
    """physics.md §4 Profile A: FWHM 9.88 MHz (C 0.1), 14.36 (C 0.5), 20.0 (C 1); the table's
    numbers are rounded (the spectrum's own widths are 9.892, 14.366 and 20.000 MHz), hence 0.2 %;
    acceptance (5) asks 20.0 MHz +- 1 % at C = 1."""
    offsets = np.linspace(-40e6, 40e6, 801)
    width = fwhm(offsets, conversion_efficiency(offsets, c, PROFILE_A))
    assert width.fwhm / 1e6 == pytest.approx(width_mhz, rel=2e-3)


def test_fwhm_of_a_split_spectrum_spans_both_peaks():
    """physics.md §4 Profile A: the spectrum splits for C >~ 1.5 (C 2: peaks +-5.86 MHz)."""
    offsets = np.linspace(-60e6, 60e6, 1201)
    eta = conversion_efficiency(offsets, 2.0, PROFILE_A)
    peaks = offsets[1:-1][(eta[1:-1] > eta[:-2]) & (eta[1:-1] > eta[2:])]
    np.testing.assert_allclose(np.abs(peaks), 5.86e6, atol=0.1e6)
    width = fwhm(offsets, eta)
    assert width.left < -5.86e6 and width.right > 5.86e6


def test_detuning_lorentzian_recovers_kappa_p():
    """physics.md §1.3: C(Delta_p) = C(0)/(1 + 4 Delta_p^2/kappa_p^2)."""
    d = 5.58e6 + 12.48e6 * np.arange(-4, 5)
    c = cooperativity_lorentzian(d, 0.9, 0.2e6, 25e6)
    fit = fit_detuning(d, c * (1 + 1e-3 * np.sin(d)), 1e-3 * c)
    assert fit.kappa_hz == pytest.approx(25e6, rel=5e-3)
    assert fit.c0 == pytest.approx(0.9, rel=5e-3)


def test_added_noise_check_values():
    """physics.md §1.5 check values: n_int 0.3, kappa_m ex/int 8/2 MHz, kappa_o 10/10 MHz:
    m->o 0.075; o->m 0.6 (C 0.2), 0.12 (C 1)."""
    rates = Rates(20e6, 10e6, 10e6, 8e6)
    assert added_noise("m->o", 0.3, 0.2, rates) == pytest.approx(0.075)
    assert added_noise("m->o", 0.3, 1.0, rates) == pytest.approx(0.075)
    assert added_noise("o->m", 0.3, 0.2, rates) == pytest.approx(0.6)
    assert added_noise("o->m", 0.3, 1.0, rates) == pytest.approx(0.12)


def test_output_occupancy_from_psd_on_and_off_resonance():
    """physics.md §3 (g): n_out = PSD/(G h f) - n_amp, G from the off-resonance (cold-line) PSD."""
    from scipy.constants import Boltzmann, Planck
    gain, t_n, f_on, f_off = 1e7, 4.0, 8.8e9, 9.0e9
    rates = PROFILE_A
    n_int, c = 0.4, 0.85
    n_m = abs(complex(s_element("m_ex", "m_0", 0.0, c, rates))) ** 2 * n_int
    psd_on = gain * Planck * f_on * (n_m + Boltzmann * t_n / (Planck * f_on))
    psd_off = gain * Boltzmann * t_n
    out = output_occupancy([psd_on, psd_on], [psd_off, psd_off], f_on, f_off, t_n)
    assert out.n_out == pytest.approx(n_m, rel=1e-9)
    assert out.gain == pytest.approx(gain, rel=1e-12)
    assert internal_bath(out.n_out, c, rates) == pytest.approx(n_int, rel=1e-9)


def test_a_slope_carries_the_scatter_of_its_x_readings():
    """C = k P where C is known to 0.02 % and each P reading scatters by 0.1 % (a monitor meter):
    with x's error carried (effective variance) the reduced chi-square of 400 sweeps averages 1
    and the stated slope error is their scatter; without it the chi-square reads about 25 and
    the model looks wrong. The meter's scatter comes back from successive readings'
    ratios to the set points."""
    rng = np.random.default_rng(5)
    k, rel_x, rel_y = 1.3, 1e-3, 2e-4
    p = np.geomspace(1e-3, 0.8, 12)
    slopes, errs, chi2, bare, scatter = [], [], [], [], []
    for _ in range(400):
        read = p * (1 + rel_x * rng.standard_normal(p.size))
        c = k * p * (1 + rel_y * rng.standard_normal(p.size))
        scatter.append(reading_scatter(read, p))
        fit = fit_slope(read, c, rel_y * c, rel_x)
        slopes.append(fit.slope)
        errs.append(fit.stderr)
        chi2.append(fit.chi2_reduced)
        bare.append(fit_slope(read, c, rel_y * c).chi2_reduced)
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.15)
    assert np.mean(bare) > 10
    assert np.std(slopes, ddof=1) == pytest.approx(np.mean(errs), rel=0.15)
    assert np.mean(scatter) == pytest.approx(rel_x, rel=0.1)


def test_the_output_occupancys_error_pools_the_readings_scatter_over_the_powers():
    """Three on/off pairs per power at five powers, each reading scattering by 0.1 % on a floor
    the amplifier sets (n_amp = k_B T_N / h f = 9.5 photons at 8.8 GHz and 4 K, N = 0.15): over
    2000 such sweeps the error from the scatter pooled over all powers is the scatter of n_out
    (Student's t with 10 degrees of freedom: rms pull sqrt(10/8)), while three pairs' own
    scatter (2 degrees of freedom, often far too small) gives an rms pull over 2 (physics.md
    §3 (g): n_out + n_amp is the on/off ratio times constants)."""
    from scipy.constants import Boltzmann, Planck
    rng = np.random.default_rng(9)
    t_n, f_m, n_true, rel = 4.0, 8.8e9, 0.15, 1e-3
    n_amp = Boltzmann * t_n / (Planck * f_m)
    pooled_pulls, own_pulls, scatters = [], [], []
    for _ in range(2000):
        groups = [(Planck * f_m * (n_true + n_amp) * (1 + rel * rng.standard_normal(3)),
                   Boltzmann * t_n * (1 + rel * rng.standard_normal(3))) for _ in range(5)]
        scatter, dof = pooled_ratio_scatter(groups)
        scatters.append(scatter)
        pooled = output_occupancy(*groups[-1], f_m, f_m, t_n, ratio_scatter=scatter)
        own = output_occupancy(*groups[-1], f_m, f_m, t_n)
        pooled_pulls.append((pooled.n_out - n_true) / pooled.n_out_err)
        own_pulls.append((own.n_out - n_true) / own.n_out_err)
    assert dof == 10
    assert np.mean(scatters) == pytest.approx(np.sqrt(2) * rel, rel=0.05)
    assert np.sqrt(np.mean(np.square(pooled_pulls))) == pytest.approx(np.sqrt(10 / 8), abs=0.06)
    assert np.sqrt(np.mean(np.square(own_pulls))) > 2


def test_a_value_at_f_ms_error_takes_the_scatter_of_every_point_above_half_maximum():
    """eta at f_m from the seven points nearest it (physics.md §1.3 spectrum, C = 0.04, additive
    receiver noise on |S21| and |S12|): over 2000 traces its stated error is its scatter (rms
    pull 1.00 +- 0.06), where the seven points' own scatter (6 degrees of freedom, Student's t:
    rms pull sqrt(6/4) = 1.22) would not be."""
    rng = np.random.default_rng(8)
    x = np.linspace(-15e6, 15e6, 101)

    def shape(f):
        return conversion_efficiency(f, 0.04, PROFILE_A)

    clean = np.sqrt(shape(x))
    sigma = 0.01 * clean.max()
    pulls = []
    for _ in range(2000):
        s21 = np.abs(clean + sigma * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)))
        s12 = np.abs(clean + sigma * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)))
        value, err = value_at(x, s21 * s12, shape, 0.0)
        pulls.append((value - shape(0.0)) / err)
    assert np.sqrt(np.mean(np.square(pulls))) == pytest.approx(1.0, abs=0.06)
