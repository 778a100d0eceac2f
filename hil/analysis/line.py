"""A straight line ``y = slope x + offset`` through measured points, with uncertainties.

The generic fit a lab reuses for any linear response (a ratio of two meters, a power ladder,
a calibration curve). Points are weighted by ``1/|y|`` when the noise is relative (a power
meter's is: a fixed fraction of the reading), else equally. The uncertainties are the fit's
covariance scaled by the reduced chi-square, so they come from the scatter of the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hil.results import FitError


@dataclass(frozen=True)
class LineFit:
    """``y = slope x + offset``, one-sigma uncertainties, from points (x, y)."""

    slope: float
    slope_err: float
    offset: float
    offset_err: float
    residual_rms: float  # in y's unit

    def model(self, x):
        """The fitted line at ``x``."""
        return self.slope * np.asarray(x, float) + self.offset


def fit_line(x, y, *, relative_noise: bool = True) -> LineFit:
    """Least-squares straight line through (x, y); :class:`FitError` when none can be fitted.

    ``relative_noise``: weight each point by ``1/|y|`` (noise proportional to the reading,
    floored at 1e-3 of the largest ``|y|``); False weights all points equally. Needs at least
    3 points (two for the line, one to estimate the scatter) and ``x`` that varies.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise FitError(f"x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < 3:
        raise FitError(f"need at least 3 points to fit a line, got {x.size}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise FitError("x and y must be finite (no nan or inf)")
    if np.ptp(x) <= 0:
        raise FitError("x does not change: every point is at the same x")
    scale_x, scale_y = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if scale_y <= 0:
        raise FitError("y is zero everywhere")
    xs, ys = x / scale_x, y / scale_y  # scaled: raw W and Hz would spoil the covariance
    w = 1.0 / np.maximum(np.abs(ys), 1e-3) if relative_noise else np.ones_like(ys)
    design = np.column_stack([xs, np.ones_like(xs)]) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, ys * w, rcond=None)
    plain = ys - xs * coef[0] - coef[1]
    resid = plain * w
    chi2 = float(resid @ resid) / (x.size - 2)
    cov = np.linalg.inv(design.T @ design) * chi2
    return LineFit(slope=float(coef[0] * scale_y / scale_x),
                   slope_err=float(np.sqrt(cov[0, 0]) * scale_y / scale_x),
                   offset=float(coef[1] * scale_y), offset_err=float(np.sqrt(cov[1, 1]) * scale_y),
                   residual_rms=float(np.sqrt(np.mean(plain ** 2)) * scale_y))
