"""line_noise: the input line's occupancy bounded by pump-off noise and the fridge's temperature.

The analysis is checked on physics.md §1.5's bookkeeping (N = sum_j |S_mj|^2 n_j) seen through
an output chain PSD = G h f (N + n_amp), §3 (g); the step on the twin, whose ``noise.n_line`` and
``noise.n_floor`` (the mode's pump-off bath) are the truth.
"""

from __future__ import annotations

import math

import pytest
from scipy.constants import Boltzmann, Planck
from transduction_support import fill_priors, lab_and_run

from experiments.calibration.line_noise import line_noise
from experiments.transduction.tuning import line_occupancy
from hil.analysis.input_line import line_bound, thermal_occupancy, thermal_occupancy_err
from hil.analysis.transducer import Rates

RATES = Rates(25e6, 7.5e6, 10e6, 5e6)  # Profile A
F_M, OFFSET, T_N, GAIN = 8.8e9, 200e6, 4.0, 1e7


def _psd(n: float, f: float) -> float:
    return GAIN * Planck * f * (n + Boltzmann * T_N / (Planck * f))


def _pair(n_line: float, n_0: float) -> tuple[float, float]:
    """PSD on and off resonance, pump off: N = n_line + |S_m0|^2 (n_0 - n_line)."""
    def s_m0(w: float) -> float:
        k0, kex = RATES.kappa_m_hz - RATES.kappa_m_ex_hz, RATES.kappa_m_ex_hz
        return k0 * kex / ((RATES.kappa_m_hz / 2) ** 2 + w ** 2)

    return (_psd(n_line + s_m0(0.0) * (n_0 - n_line), F_M),
            _psd(n_line + s_m0(OFFSET) * (n_0 - n_line), F_M + OFFSET))


def test_a_mode_at_the_fridges_temperature_gives_the_line_exactly():
    """n_0 = n_th(f_m, 60 mK): the bound is the line's occupancy (0.05) to 1e-4."""
    t_mc = 0.060
    on, off = _pair(0.05, thermal_occupancy(F_M, t_mc))
    bound = line_bound([on, on], [off, off], F_M, OFFSET, T_N, RATES, t_mc)
    assert bound.n_line_min == pytest.approx(0.05, abs=1e-4)
    assert bound.excess == pytest.approx(thermal_occupancy(F_M, t_mc) - 0.05, abs=1e-4)


def test_a_warmer_mode_floor_makes_it_a_lower_bound():
    """n_0 = 0.02 above a 10 mK fridge: n_line >= 0.05 - 0.02. The 0.02 the bound misses sits
    in the off-resonance reference too, scaled by f_off/f_on - 1 = 2.3 %: 5e-4 at most."""
    on, off = _pair(0.05, 0.02)
    bound = line_bound([on, on], [off, off], F_M, OFFSET, T_N, RATES, 0.010)
    assert bound.n_line_min == pytest.approx(0.03, abs=5e-4)


def test_a_cold_line_is_not_corrected(tmp_path):
    """Profile A: n_line 0, n_floor 0.02: the mode is the warmer bath, no correction, no flag."""
    with lab_and_run(tmp_path) as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        results = line_noise(lab, run)
        assert line_occupancy(run) == (0.0, None)
    excess = results["mode_excess"]
    assert excess.value == pytest.approx(0.02, abs=4 * excess.stderr + 0.01)
    assert results["n_line_min"].value == 0.0


def test_a_warm_line_is_bounded_and_named(tmp_path):
    """n_line 0.05 over the mode's 0.02: the bound is above zero, at most the truth (within the
    readings' error), and added_noise is told why n_add is then a lower bound."""
    with lab_and_run(tmp_path, noise={"n_line": 0.05}) as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        results = line_noise(lab, run)
        n_line, why = line_occupancy(run)
        assert not lab.world.laser_emitted_power()
    bound = results["n_line_min"]
    assert 4 * bound.stderr < bound.value <= 0.05 - 0.02 + 4 * bound.stderr
    assert n_line == bound.value and "microwave input line" in why
    assert (tmp_path / "run_line_noise.png").is_file()


def test_thermal_occupancy_error_is_the_bose_einstein_slope_times_the_temperature_error() -> None:
    """physics.md §1.5: n_th = 1/(exp(hf/kT) - 1); its error is dn/dT times T's, here checked
    against a central difference of the formula written out (8.8 GHz, 10 mK +- 0.1 mK)."""
    h, k = 6.62607015e-34, 1.380649e-23
    f, t, dt = 8.8e9, 0.010, 1e-4

    def n(temperature: float) -> float:
        return 1.0 / (math.exp(h * f / (k * temperature)) - 1.0)

    slope = (n(t + 1e-7) - n(t - 1e-7)) / 2e-7
    assert thermal_occupancy_err(f, t, dt) == pytest.approx(slope * dt, rel=1e-4)
    assert thermal_occupancy_err(f, 0.0, dt) == 0.0
