"""Each check of hil.analysis.checks fires on a deliberately bad input and passes a good one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.analysis.bandwidth import fit_conversion_spectrum
from hil.analysis.checks import (
    agree,
    choose,
    fit_quality,
    flag,
    flag_all,
    inside,
    loss_plausible,
    not_above,
    precise,
    residual_structure,
)
from hil.analysis.lorentzian import dip_model, fit_dip
from hil.analysis.transducer import Rates
from hil.results import Result


def test_fit_quality_fires_on_a_chi_square_noise_cannot_give():
    assert fit_quality(1.1, 11, "C = P / P_C1") is None
    reason = fit_quality(21.2, 11, "C = P / P_C1")  # the over-coupled mode fitted as under-coupled
    assert reason and "C = P / P_C1" in reason and "reduced chi-square 21.2" in reason


def test_a_single_lorentzian_fitted_to_a_split_dip_leaves_structured_residuals():
    rng = np.random.default_rng(3)
    x = np.linspace(-1, 1, 201)
    one = dip_model(x, 1.0, 0.0, 0.8, 0.0, 0.2) * (1 + 1e-3 * rng.standard_normal(x.size))
    fit = fit_dip(x, one)
    assert residual_structure(one - fit.model(x), "dip") is None
    # a doublet (backscattering splits the mode) fitted with one Lorentzian
    two = (dip_model(x, 1.0, 0.0, 0.6, -0.12, 0.15) * dip_model(x, 1.0, 0.0, 0.6, 0.12, 0.15)
           * (1 + 1e-3 * rng.standard_normal(x.size)))
    fit = fit_dip(x, two)
    reason = residual_structure(two - fit.model(x), "optical dip fit")
    assert reason and "optical dip fit" in reason and "runs-test z" in reason


def test_inside_flags_a_position_outside_the_window():
    assert inside(5.0, 0.0, 10.0, "f_m", "Hz") is None
    assert "outside the measured window" in inside(12.0, 0.0, 10.0, "f_m", "Hz")


def test_eta_total_above_eta_max_is_flagged():
    """physics.md §1.3: eta_total = eta_max 4C/(1+C)^2 <= eta_max. The over-coupled mode read as
    under-coupled reported 0.304 beside 0.150."""
    assert not_above(0.1409, 3e-5, 0.1500, 4e-4, "eta_total", "eta_max") is None
    reason = not_above(0.304, 3e-4, 0.150, 4e-4, "eta_total", "eta_max")
    assert reason and "eta_total = 0.304 exceeds eta_max = 0.15" in reason


def test_agree_flags_two_determinations_that_differ():
    assert agree(0.854, 2e-4, 0.850, 2e-3, "C") is None
    assert "+54 %" in agree(1.54, 0.01, 1.0, 0.01, "C at the lowest pump")


def test_precise_flags_a_result_its_own_error_cannot_vouch_for():
    assert precise(0.42, 0.0056, 0.1, "n_add", "more readings") is None
    assert "known only to +-20%" in precise(0.031, 0.0063, 0.1, "n_add", "more readings")


def test_loss_plausible():
    assert loss_plausible(4.0, "insertion loss") is None
    assert "not a plausible loss" in loss_plausible(-1.5, "insertion loss")


def test_choose_resolves_only_when_the_other_hypothesis_fails():
    clear = choose({"under-coupled": 0.9, "over-coupled": 21.0}, dof=11)
    assert clear.chosen == "under-coupled" and clear.resolved and clear.reason("regime") is None
    vague = choose({"under-coupled": 0.9, "over-coupled": 1.2}, dof=11)
    assert not vague.resolved and "do not tell the hypotheses apart" in vague.reason("regime")


def test_flag_keeps_earlier_reasons_and_adds_new_ones():
    r = flag(Result(1.0, "Hz", 0.1), None)
    assert r.suspect is None
    r = flag(flag(r, "first"), "second", "first")
    assert r.suspect == "first; second"
    results = flag_all({"a": Result(1.0, ""), "b": Result(2.0, "")}, ("a",), "why")
    assert results["a"].suspect == "why" and results["b"].suspect is None


@pytest.mark.parametrize("cooperativity", [0.3, 2.0])
def test_bandwidth_from_the_model_fit_holds_against_noise_and_its_bias(cooperativity):
    """physics.md §1.3: for kappa_o >> kappa_m the conversion spectrum is a Lorentzian of FWHM
    kappa_m (1 + C). Complex receiver noise biases |S21|^2 upwards by its variance; the fit
    (noise bias free) recovers the width within 2 % and its stated error covers the scatter."""
    from hil.analysis.transducer import conversion_efficiency

    rates = Rates(2e9, 1e9, 10e6, 5e6)
    x = np.linspace(-60e6, 60e6, 201)
    rng = np.random.default_rng(1)
    s = np.sqrt(conversion_efficiency(x, cooperativity, rates)) * 1e-3
    sigma = 0.03 * s.max()
    noisy = s + sigma * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) / math.sqrt(2)
    fit = fit_conversion_spectrum(x, np.abs(noisy) ** 2, rates)
    truth = 10e6 * (1 + cooperativity)
    assert fit.fwhm == pytest.approx(truth, rel=0.02)
    assert abs(fit.fwhm - truth) < 4 * fit.fwhm_err  # the stated error covers the scatter
    # the bias itself is known only roughly: over 200 such traces it scatters by 0.8 sigma^2
    # (C = 0.3) and 2 sigma^2 (C = 2) about sigma^2
    assert 0 <= fit.noise_bias < 6 * sigma ** 2


def test_the_bandwidths_stated_error_is_its_scatter_over_repeated_traces():
    """|S21|^2 of signal plus complex receiver noise scatters as sqrt(|s|^2 + sigma^2): strong at
    the peak, weak in the wings. Over 200 noisy traces of one spectrum (physics.md §1.3: FWHM
    kappa_m (1 + C) for kappa_o >> kappa_m) the stated FWHM error is the FWHM's scatter, and
    the mean is the truth within that scatter's standard error (the fit weighs each point by
    its own noise)."""
    from hil.analysis.transducer import conversion_efficiency

    rates = Rates(2e9, 1e9, 10e6, 5e6)
    x = np.linspace(-60e6, 60e6, 101)
    rng = np.random.default_rng(4)
    s = np.sqrt(conversion_efficiency(x, 0.8, rates)) * 1e-3
    sigma = 0.02 * s.max()
    def trace():
        noise = rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)
        return np.abs(s + sigma * noise / math.sqrt(2)) ** 2

    fits = [fit_conversion_spectrum(x, trace(), rates) for _ in range(200)]
    widths = np.array([f.fwhm for f in fits])
    assert np.std(widths, ddof=1) == pytest.approx(np.mean([f.fwhm_err for f in fits]), rel=0.12)
    assert abs(np.mean(widths) - 18e6) < 4 * np.std(widths) / math.sqrt(widths.size)
