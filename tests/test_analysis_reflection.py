"""Complex reflection fit (physics.md §1.2, Probst et al. 2015 reflection form) on synthetic
traces made with the twin's own resonator model (hil.twin.microwave, same convention)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.reflection import fit_reflection
from hil.results import FitError
from hil.twin.microwave import MicrowaveResonator


def trace(kappa_ex_hz: float, *, kappa_hz: float = 10e6, f_r: float = 8.8e9, noise: float = 1e-4,
          delay_s: float = 0.0, seed: int = 0, points: int = 801, span_linewidths: float = 15):
    res = MicrowaveResonator(frequency_hz=f_r, kappa_hz=kappa_hz, kappa_ex_hz=kappa_ex_hz)
    rng = np.random.default_rng(seed)
    f = f_r + 0.7e6 + np.linspace(-0.5, 0.5, points) * span_linewidths * kappa_hz
    s = res.s11(f, a=3.2, alpha=1.1, tau_s=delay_s)
    s = s + noise * 3.2 * (rng.standard_normal(points) + 1j * rng.standard_normal(points))
    return f, s


@pytest.mark.parametrize("kappa_ex_hz", [2e6, 5e6, 8e6, 9.9e6])
def test_under_critical_and_over_coupling_are_told_apart(kappa_ex_hz) -> None:
    f, s = trace(kappa_ex_hz, delay_s=47e-9)
    fit = fit_reflection(f, s)
    assert fit.f_r == pytest.approx(8.8e9, abs=1e3)
    assert fit.kappa == pytest.approx(10e6, rel=1e-3)
    assert fit.kappa_ex == pytest.approx(kappa_ex_hz, rel=1e-3)
    assert fit.kappa_0 == pytest.approx(10e6 - kappa_ex_hz, rel=1e-2)
    assert fit.delay == pytest.approx(47e-9, rel=1e-3)
    assert fit.line_gain_db == pytest.approx(20 * np.log10(3.2), abs=1e-3)


def test_swapped_rates_have_the_same_magnitude_but_not_the_same_fit() -> None:
    """|2 kappa_ex/kappa - 1| is symmetric in kappa_ex <-> kappa_0: magnitude data cannot tell
    2 MHz from 8 MHz external rate; the complex fit does."""
    f, under = trace(2e6, noise=0.0)
    _, over = trace(8e6, noise=0.0)
    np.testing.assert_allclose(np.abs(under), np.abs(over), rtol=1e-9)
    assert fit_reflection(f, under).coupling == "under"
    assert fit_reflection(f, over).coupling == "over"


def test_stated_uncertainties_match_the_scatter_of_repeated_fits() -> None:
    fits = [fit_reflection(*trace(5e6, noise=3e-3, seed=seed)) for seed in range(40)]
    for name in ("f_r", "kappa", "kappa_ex"):
        values = np.array([getattr(fit, name) for fit in fits])
        stated = np.mean([getattr(fit, f"{name}_err") for fit in fits])
        assert np.std(values) == pytest.approx(stated, rel=0.4), name


def test_noise_alone_is_not_a_resonance() -> None:
    rng = np.random.default_rng(3)
    f = np.linspace(8.7e9, 8.9e9, 2001)
    s = 3.2 + 1e-3 * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    with pytest.raises(FitError, match="no resonance"):
        fit_reflection(f, s)
