"""Full width at half maximum of a measured conversion spectrum |S21|^2 (physics.md §1.3 spectrum).

No line shape is assumed: for kappa_o >> kappa_m the spectrum is a Lorentzian of width
kappa_m (1 + C), but with comparable linewidths (Profile A: kappa_o/kappa_m = 2.5) it is not,
and above C ~ 1.5 it splits in two. The width is taken between the outermost half-maximum
crossings, each located by a local quadratic through the points around it; the maximum by a
local quadratic through the points around the highest one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hil.results import FitError


@dataclass(frozen=True)
class WidthFit:
    """FWHM, the two crossings and the maximum (x in the caller's unit), with standard errors."""

    fwhm: float
    fwhm_err: float
    left: float
    right: float
    peak: float
    peak_err: float

    @property
    def center(self) -> float:
        """Midpoint of the half-maximum crossings."""
        return (self.left + self.right) / 2


def _quadratic(x, y):
    """Least-squares quadratic in scaled units: (coefficients, x0, scale, residual std)."""
    x0 = float(np.mean(x))
    scale = float(np.max(np.abs(x - x0))) or 1.0
    u = (x - x0) / scale
    design = np.vander(u, 3)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = max(x.size - 3, 1)
    return coef, x0, scale, math.sqrt(float(np.sum(resid ** 2)) / dof), design


def _peak(x, y, half_points: int) -> tuple[float, float]:
    i = int(np.argmax(np.convolve(y, np.ones(3) / 3, mode="same")))
    lo, hi = max(i - half_points, 0), min(i + half_points + 1, x.size)
    if hi - lo < 4:
        return float(y[i]), 0.0
    coef, x0, scale, sigma, design = _quadratic(x[lo:hi], y[lo:hi])
    a, b, c = coef
    u = -b / (2 * a) if a < 0 else 0.0
    u = float(np.clip(u, (x[lo] - x0) / scale, (x[hi - 1] - x0) / scale))
    value = a * u * u + b * u + c
    cov = sigma ** 2 * np.linalg.inv(design.T @ design)
    grad = np.array([u * u, u, 1.0])
    return float(value), math.sqrt(float(grad @ cov @ grad))


def _crossing(x, y, i_in: int, i_out: int, half: float, half_points: int) -> tuple[float, float, float]:
    """Where ``y`` crosses ``half`` between neighbours ``i_in`` (above) and ``i_out`` (below):
    (position, standard error from the point scatter, |slope| there)."""
    linear = x[i_out] + (half - y[i_out]) * (x[i_in] - x[i_out]) / (y[i_in] - y[i_out])
    centre = min(i_in, i_out)
    lo, hi = max(centre - half_points + 1, 0), min(centre + half_points + 1, x.size)
    coef, x0, scale, sigma, _ = _quadratic(x[lo:hi], y[lo:hi])
    a, b, c = coef
    roots = np.roots([a, b, c - half]) if abs(a) > 1e-15 else np.array([(half - c) / b])
    roots = roots[np.isreal(roots)].real * scale + x0
    position = float(roots[np.argmin(np.abs(roots - linear))]) if roots.size else float(linear)
    if abs(position - linear) > abs(x[1] - x[0]):
        position = float(linear)
    u = (position - x0) / scale
    slope = abs(2 * a * u + b) / scale
    if slope == 0:
        raise FitError("the spectrum is flat at its half maximum")
    return position, sigma / slope, slope


def fwhm(x, y, *, half_points: int = 3) -> WidthFit:
    """FWHM of a peak (or of a split pair of peaks) in ``y(x)``; ``x`` ascending."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2 * half_points + 4:
        raise FitError(f"need at least {2 * half_points + 4} points for a width, got {x.size}")
    peak, peak_err = _peak(x, y, half_points)
    half = peak / 2
    above = np.flatnonzero(y >= half)
    if peak <= 0 or above.size == 0:
        raise FitError("no peak in the spectrum")
    first, last = int(above[0]), int(above[-1])
    if first == 0 or last == x.size - 1:
        raise FitError("the spectrum does not fall to half its maximum inside the window; "
                       "widen the span")
    left, left_err, left_slope = _crossing(x, y, first, first - 1, half, half_points)
    right, right_err, right_slope = _crossing(x, y, last, last + 1, half, half_points)
    # the half-maximum level's own error moves both crossings outward or inward together
    level = peak_err / 2 * (1 / left_slope + 1 / right_slope)
    err = math.sqrt(left_err ** 2 + right_err ** 2 + level ** 2)
    return WidthFit(fwhm=right - left, fwhm_err=err, left=left, right=right, peak=peak,
                    peak_err=peak_err)


@dataclass(frozen=True)
class SpectrumFit:
    """The conversion spectrum's model fit: its FWHM, the C that shapes it, the noise bias."""

    fwhm: float
    fwhm_err: float
    cooperativity: float
    cooperativity_err: float
    scale: float          # path gain times eta at the model's peak
    noise_bias: float     # additive |S21|^2 of the receiver noise (the magnitude's bias)
    residuals: np.ndarray
    model: object         # callable offset -> fitted |S21|^2


def fit_conversion_spectrum(offset_hz, power, rates, delta_o_hz: float = 0.0,
                            delta_m_hz: float = 0.0) -> SpectrumFit:
    """Fit ``|S21|^2 = G eta(offset; C) + b`` (physics.md §1.3 spectrum) with the linewidths
    and the mode positions known (``rates`` and ``delta_m_hz``: the microwave mode as the pump
    leaves it, hil.analysis.pumped_mode): C sets the shape (width kappa_m (1 + C) for
    kappa_o >> kappa_m, split above C ~ 1.5 when they are comparable), G the unknown path gain,
    b >= 0 the receiver noise that biases a magnitude squared upwards. The bandwidth is the FWHM
    of the fitted model, so every point of the trace weighs in, not the two nearest the half
    maximum."""
    from scipy.optimize import least_squares

    from hil.analysis.transducer import conversion_efficiency

    x = np.asarray(offset_hz, dtype=float)
    y = np.asarray(power, dtype=float)
    if x.size < 8:
        raise FitError(f"need at least 8 points of a conversion spectrum, got {x.size}")
    y_scale = float(np.max(y))
    if not y_scale > 0:
        raise FitError("no conversion peak: the trace is zero everywhere")
    ys = y / y_scale

    def shape(log_c):
        return conversion_efficiency(x, math.exp(log_c), rates, delta_o_hz, delta_m_hz)

    weights = np.ones_like(ys)

    def linear(log_c):
        """Best G, b for this C (weighted linear least squares, b >= 0)."""
        m = shape(log_c)
        design = np.column_stack([m, np.ones_like(m)]) / weights[:, None]
        (g, b), *_ = np.linalg.lstsq(design, ys / weights, rcond=None)
        if b < 0:
            mw = m / weights
            g, b = float(np.dot(mw, ys / weights) / np.dot(mw, mw)), 0.0
        return g, b

    def residual(p):
        g, b = linear(p[0])
        return (g * shape(p[0]) + b - ys) / weights

    grid = np.linspace(math.log(1e-4), math.log(1e3), 141)
    first = float(grid[int(np.argmin([np.sum(residual([v]) ** 2) for v in grid]))])
    fit = least_squares(residual, x0=[first], method="lm")
    # A magnitude squared of signal plus receiver noise (2 sigma^2 = b per point) scatters as
    # sqrt(|s|^2 + sigma^2): weigh each point so, from the first fit's model, and fit again.
    g, b = linear(float(fit.x[0]))
    weights = np.sqrt(np.clip(g * shape(float(fit.x[0])) + b / 2, 1e-6, None))
    fit = least_squares(residual, x0=fit.x, method="lm")
    log_c = float(fit.x[0])
    dof = max(x.size - 3, 1)
    s2 = float(np.sum(fit.fun ** 2)) / dof
    jtj = float(np.sum(fit.jac ** 2))
    log_c_err = math.sqrt(s2 / jtj) if jtj > 0 else math.inf
    g, b = linear(log_c)

    def width(lc: float) -> float:
        return model_fwhm(rates, math.exp(lc), delta_o_hz, span_hz=max(x[-1] - x[0], 1.0) * 4,
                          delta_m_hz=delta_m_hz)

    w = width(log_c)
    dw = abs(width(log_c + 1e-3) - width(log_c - 1e-3)) / 2e-3
    c = math.exp(log_c)
    return SpectrumFit(
        fwhm=w, fwhm_err=dw * log_c_err, cooperativity=c, cooperativity_err=c * log_c_err,
        scale=g * y_scale, noise_bias=b * y_scale, residuals=fit.fun * weights * y_scale,
        model=lambda f: (g * conversion_efficiency(np.asarray(f, float), c, rates, delta_o_hz,
                                                   delta_m_hz) + b) * y_scale)


def model_fwhm(rates, cooperativity: float, delta_o_hz: float, span_hz: float,
               delta_m_hz: float = 0.0) -> float:
    """FWHM of the model spectrum (outermost half-maximum points of a dense, noiseless curve)."""
    from hil.analysis.transducer import conversion_efficiency

    x = np.linspace(-span_hz / 2, span_hz / 2, 8001) + delta_m_hz
    y = conversion_efficiency(x, cooperativity, rates, delta_o_hz, delta_m_hz)
    above = np.flatnonzero(y >= y.max() / 2)
    if above.size == 0 or above[0] == 0 or above[-1] == x.size - 1:
        raise FitError("the model's half maximum lies outside the span")

    def cross(i, j):  # linear interpolation between a point below and one above
        return x[i] + (y.max() / 2 - y[i]) * (x[j] - x[i]) / (y[j] - y[i])

    return float(cross(above[-1] + 1, above[-1]) - cross(above[0] - 1, above[0]))
