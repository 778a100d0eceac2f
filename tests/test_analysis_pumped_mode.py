"""The microwave mode under the pump (hil.analysis.pumped_mode) against the twin's scattering
matrix with the light-induced quasiparticle loss and shift of physics.md §1.2
(``kappa_m,0 + b_k P^gamma``, ``f_m - b_f P^gamma``): the truth is the twin's input parameters
put through that formula, the traces the twin's S_oe and S_ee (physics.md §1.3)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.efficiency import fit_cooperativity
from hil.analysis.pumped_mode import fit_pump_dependence, fit_pumped_mode
from hil.analysis.transducer import Rates
from hil.twin import TwinLab, TwinParams
from hil.twin.transducer import M_EX, O_EX

B_K, B_F, GAMMA = 5.7e5, 8.6e5, 0.5      # stations/twin.yaml's quasiparticle values
DETUNING = 5.58e6                         # the pump's leftover detuning in the default chain
NOISE = 1e-4                              # relative trace noise (the VNA's 0.001 dB)


def twin(b_k=B_K, b_f=B_F, mismatch=0.0):
    return TwinLab(TwinParams.from_mapping({
        "quasiparticle": {"loss_hz_per_w_gamma": b_k, "shift_hz_per_w_gamma": b_f, "exponent": GAMMA},
        "transducer": {"fsr_mismatch_hz": mismatch}})).physics


def traces(physics, power_w, seed=0):
    """Offsets from the pump-off f_m, |S_oe|^2 and |S_ee| of the pumped device (steady state)."""
    t0 = physics.transducer
    probe = t0.f_m_hz + np.linspace(-30e6, 30e6, 101)
    s = physics.transducer_at(power_w).s_matrix(probe, power_w, DETUNING)
    rng = np.random.default_rng(seed)
    eta = np.abs(s[:, O_EX, M_EX]) ** 2 * (1 + 2 * NOISE * rng.standard_normal(probe.size))
    s_ee = np.abs(s[:, M_EX, M_EX]) * (1 + NOISE * rng.standard_normal(probe.size))
    rates = Rates(t0.kappa_o_hz, t0.kappa_o_ex_hz, t0.kappa_m_hz, t0.kappa_m_ex_hz)
    return probe - t0.f_m_hz, eta, s_ee, rates


@pytest.mark.parametrize("power_w", [0.01, 0.3, 0.77, 3.0])
def test_the_pumped_linewidth_and_shift_are_recovered(power_w):
    """kappa_m = 10 MHz + b_k P^0.5 and f_m - b_f P^0.5 within 3 sigma and 0.3 % of kappa_m;
    C with the pump-off linewidth equals 4 g0^2 n_p/(kappa_o kappa_m,0) of the twin within 0.1 %."""
    physics = twin()
    x, eta, s_ee, rates = traces(physics, power_w)
    start = fit_cooperativity(x, eta, rates, -DETUNING).cooperativity
    fit = fit_pumped_mode(x, eta, s_ee, rates, -DETUNING, start_c=start)
    kappa_m = rates.kappa_m_hz + B_K * power_w ** GAMMA
    shift = -B_F * power_w ** GAMMA
    assert abs(fit.rates.kappa_m_hz - kappa_m) < max(3 * fit.kappa_m_err, 3e-3 * kappa_m)
    assert abs(fit.delta_m_hz - shift) < max(3 * fit.delta_m_err, 3e-3 * kappa_m)
    c_rest = float(physics.transducer.cooperativity(power_w, DETUNING))
    assert fit.rest[0] == pytest.approx(c_rest, rel=1e-3)
    assert fit.cooperativity == pytest.approx(c_rest * rates.kappa_m_hz / kappa_m, rel=1e-3)


def test_without_the_effect_the_pump_off_mode_comes_back():
    """No quasiparticles: kappa_m and f_m are the resonance step's within 3 sigma."""
    x, eta, s_ee, rates = traces(twin(0.0, 0.0), 0.77)
    fit = fit_pumped_mode(x, eta, s_ee, rates, -DETUNING, start_c=0.8)
    assert abs(fit.rates.kappa_m_hz - rates.kappa_m_hz) < 3 * fit.kappa_m_err
    assert abs(fit.delta_m_hz) < 3 * fit.delta_m_err


def test_a_triple_resonance_mismatch_is_not_taken_for_a_shifted_microwave_mode():
    """A 3 MHz signal-mode offset (no quasiparticles) moves the conversion peak, but the
    reflection pins the microwave mode near where it is: the fitted shift stays below a tenth of
    the mismatch, and the residuals of the conversion spectrum keep the mismatch's shape (so the
    chain's residual check still names it)."""
    from hil.analysis.checks import residual_structure

    physics = twin(0.0, 0.0, mismatch=3e6)
    x, eta, s_ee, rates = traces(physics, 0.77)
    fit = fit_pumped_mode(x, eta, s_ee, rates, -DETUNING, start_c=0.8)
    assert abs(fit.delta_m_hz) < 0.1 * 3e6
    assert residual_structure(np.sqrt(eta) - np.sqrt(fit.model(x)), "spectrum") is not None


def test_the_power_law_comes_back_from_a_sweep():
    """b_k, b_f within 2 % and gamma within 0.02 from eight powers over three decades."""
    physics = twin()
    powers = np.geomspace(1e-3, 1.0, 8)
    rows = []
    for i, p in enumerate(powers):
        x, eta, s_ee, rates = traces(physics, float(p), seed=i)
        start = fit_cooperativity(x, eta, rates, -DETUNING).cooperativity
        fit = fit_pumped_mode(x, eta, s_ee, rates, -DETUNING, start_c=start)
        rows.append((fit.rates.kappa_m_hz, fit.kappa_m_err, fit.delta_m_hz, fit.delta_m_err))
    law = fit_pump_dependence(powers, *np.array(rows).T)
    assert law.loss_hz == pytest.approx(B_K, rel=0.02)
    assert law.shift_hz == pytest.approx(B_F, rel=0.02)
    assert law.exponent == pytest.approx(GAMMA, abs=0.02)


def test_the_power_laws_errors_match_the_scatter_of_repeated_sweeps():
    """physics.md §1.2's law, kappa_m,0 + b_k P^gamma and -b_f P^gamma, with gamma = 0.537 (off
    any grid), fitted to 300 synthetic sweeps with known Gaussian errors: the stated errors of
    b_k, b_f and gamma are the scatter of the fitted values (the marginal errors, gamma free;
    b_k at 1 W, above the sweep, moves with gamma), and gamma is not pulled to a grid."""
    rng = np.random.default_rng(11)
    powers = np.geomspace(1e-3, 0.4, 12)
    gamma, b_k, b_f = 0.537, 2.0e5, 3.0e5
    k_err, d_err = 800.0, 150.0
    fits = []
    for _ in range(200):
        x = powers ** gamma
        k = 10e6 + b_k * x + k_err * rng.standard_normal(x.size)
        d = -b_f * x + d_err * rng.standard_normal(x.size)
        fits.append(fit_pump_dependence(powers, k, np.full(x.size, k_err), d, np.full(x.size, d_err)))
    for name, truth in (("loss_hz", b_k), ("shift_hz", b_f), ("exponent", gamma)):
        values = np.array([getattr(f, name) for f in fits])
        stated = np.mean([getattr(f, name.replace("_hz", "") + "_err") for f in fits])
        assert np.std(values, ddof=1) == pytest.approx(stated, rel=0.15), name
        assert abs(np.mean(values) - truth) < 4 * stated / np.sqrt(len(fits)) + 0.002 * truth, name
