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
