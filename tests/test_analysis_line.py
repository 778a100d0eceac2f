"""The public straight-line fit against the textbook least-squares formulas: slope
Sxy/Sxx, intercept ybar - slope xbar, se(slope) = s / sqrt(Sxx), s^2 = sum(r^2) / (n - 2)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis import fit_line
from hil.results import FitError


def test_equal_weights_match_the_textbook_formulas():
    rng = np.random.default_rng(3)
    x = np.linspace(1e-3, 5e-3, 25)  # W-scale numbers: the fit must not lose them to scaling
    y = 0.42 * x + 2e-4 + rng.normal(0, 2e-5, x.size)
    fit = fit_line(x, y, relative_noise=False)
    sxx = np.sum((x - x.mean()) ** 2)
    slope = np.sum((x - x.mean()) * (y - y.mean())) / sxx
    offset = y.mean() - slope * x.mean()
    s = np.sqrt(np.sum((y - slope * x - offset) ** 2) / (x.size - 2))
    assert fit.slope == pytest.approx(slope, rel=1e-9)
    assert fit.offset == pytest.approx(offset, rel=1e-9)
    assert fit.slope_err == pytest.approx(s / np.sqrt(sxx), rel=1e-9)
    assert fit.offset_err == pytest.approx(s * np.sqrt(1 / x.size + x.mean() ** 2 / sxx), rel=1e-9)


def test_relative_noise_recovers_a_ratio_within_its_uncertainty():
    rng = np.random.default_rng(5)
    x = np.geomspace(1e-6, 1e-3, 12)  # three decades: relative weights matter here
    y = 39.3 * x * (1 + rng.normal(0, 0.01, x.size))
    fit = fit_line(x, y)
    assert abs(fit.slope - 39.3) < 3 * fit.slope_err
    assert fit.slope_err / fit.slope < 0.02
    np.testing.assert_allclose(fit.model(x), fit.slope * x + fit.offset)


@pytest.mark.parametrize(("x", "y", "message"), [
    ([1.0, 2.0], [1.0, 2.0], "at least 3 points"),
    ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "x does not change"),
    ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], "y is zero everywhere"),
    ([1.0, 2.0, np.nan], [1.0, 2.0, 3.0], "finite"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "1-D of one length"),
])
def test_what_cannot_be_fitted_says_why(x, y, message):
    with pytest.raises(FitError, match=message):
        fit_line(x, y)
