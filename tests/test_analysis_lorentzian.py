"""Lorentzian dip fit (physics.md §1.1 fit model) on synthetic data with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.lorentzian import fit_dip
from hil.results import FitError
from hil.twin import OpticalCavity

CAVITY = OpticalCavity(frequency_hz=193.4052e12, kappa_hz=25e6, kappa_ex_hz=7.5e6)


def sweep(points: int, span_linewidths: float, noise: float, seed: int, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    f = CAVITY.frequency_hz + offset + np.linspace(-0.5, 0.5, points) * span_linewidths * 25e6
    p = 2e-4 * CAVITY.transmission(f) * (1 + noise * rng.standard_normal(points))
    return f, p


def test_noiseless_dip_recovers_the_cavity_exactly() -> None:
    f, p = sweep(41, 12, 0.0, 0, offset=3.1e6)
    fit = fit_dip(f, p)
    assert fit.center == pytest.approx(CAVITY.frequency_hz, abs=1.0)  # Hz
    assert fit.fwhm == pytest.approx(25e6, rel=1e-6)
    kappa_ex, _, kappa_0, _ = fit.kappa_split()
    assert kappa_ex == pytest.approx(7.5e6, rel=1e-6)  # kappa_ex = (kappa/2)(1 - sqrt(T_min))
    assert kappa_0 == pytest.approx(17.5e6, rel=1e-6)
    assert np.allclose(fit.model(f), p, rtol=1e-6)


def test_two_points_per_linewidth_with_noise_stays_within_tolerance() -> None:
    """A 0.1 pm laser grid is 12.5 MHz: two points per 25 MHz linewidth still fit to < 1 %."""
    for seed in range(10):
        f, p = sweep(25, 12, 2e-3, seed)
        fit = fit_dip(f, p)
        assert abs(fit.center - CAVITY.frequency_hz) < 0.01 * 25e6
        assert fit.fwhm == pytest.approx(25e6, rel=0.01)


def test_stated_uncertainties_match_the_scatter_of_repeated_fits() -> None:
    fits = [fit_dip(*sweep(41, 12, 1e-2, seed)) for seed in range(60)]
    centers = np.array([f.center for f in fits])
    widths = np.array([f.fwhm for f in fits])
    mean_center_err = np.mean([f.center_err for f in fits])
    mean_width_err = np.mean([f.fwhm_err for f in fits])
    assert np.std(centers) == pytest.approx(mean_center_err, rel=0.35)
    assert np.std(widths) == pytest.approx(mean_width_err, rel=0.35)


def test_flat_trace_is_not_a_dip() -> None:
    f = np.linspace(0, 1e9, 50)
    with pytest.raises(FitError, match="no dip"):
        fit_dip(f, np.full(50, 1e-4))


def test_dark_detector_is_reported() -> None:
    with pytest.raises(FitError, match="no light"):
        fit_dip(np.linspace(0, 1e9, 50), np.zeros(50))


def test_kappa_ex_error_and_the_width_depth_correlation_match_repeated_fits() -> None:
    """kappa_ex = (kappa/2)(1 - sqrt(T_min)) is made of the fit's width and depth, whose errors
    are correlated: the stated kappa_ex error (with that correlation) and the stated
    correlation match the scatter of 200 independent noisy fits (physics.md §1.1)."""
    fits = [fit_dip(*sweep(41, 12, 1e-2, seed)) for seed in range(200)]
    widths = np.array([f.fwhm for f in fits])
    depths = np.array([f.depth for f in fits])
    ex = np.array([f.kappa_split()[0] for f in fits])
    assert np.std(ex, ddof=1) == pytest.approx(np.mean([f.kappa_split()[1] for f in fits]), rel=0.1)
    scattered = np.corrcoef(widths, depths)[0, 1]
    stated = np.mean([f.width_depth_corr for f in fits])
    assert abs(stated) > 0.2  # the correlation this test is about is there to be found
    assert stated == pytest.approx(scattered, abs=0.15)
