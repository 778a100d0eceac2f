"""Mixing-chamber cooling power from a heat map (physics.md §1.6 item 6, §3 (a)).

Model: a load ``P`` (heater plus absorbed light) settles the mixing chamber at
``T = sqrt(T0^2 + P / a)``, i.e. ``P = a (T^2 - T0^2)``, the cooling power of a dilution
refrigerator growing as ``T^2``. In ``T^2`` the model is a straight line,
``T^2 = T0^2 + P / a``, fitted by weighted least squares (``sigma(T^2) = 2 T sigma(T)``) with the
covariance scaled up by the scatter about the line where it exceeds the given errors (and to it
where none are given); then ``a = 1 / slope`` and
``T0 = sqrt(intercept)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hil.analysis.data import paired
from hil.results import FitError


@dataclass(frozen=True)
class CoolingFit:
    """Cooling coefficient a (W/K^2), base temperature T0 (K), one-sigma uncertainties."""

    a: float
    a_err: float
    t0: float
    t0_err: float
    residual_rms_k: float

    def temperature(self, power_w):
        """T (K) the fit predicts for a load ``power_w`` (W)."""
        return np.sqrt(self.t0 ** 2 + np.asarray(power_w, float) / self.a)

    def cooling_power(self, temperature_k):
        """P = a (T^2 - T0^2) (W): the load that holds the mixing chamber at ``temperature_k``."""
        return self.a * (np.asarray(temperature_k, float) ** 2 - self.t0 ** 2)


def fit_cooling(power_w, temperature_k, temperature_err_k=None) -> CoolingFit:
    """Fit ``T = sqrt(T0^2 + P/a)`` to steady temperatures at heater powers.

    ``temperature_err_k`` (per point) weights the points; without it, thermometer noise is
    taken as relative (as a RuOx reading's is), i.e. sigma proportional to T.
    """
    p, t = paired(power_w, temperature_k, names="powers and temperatures", at_least=3,
                  of="heater powers")
    if np.ptp(p) <= 0:
        raise FitError("all heater powers are equal: nothing to fit")
    if np.any(t <= 0) or not np.all(np.isfinite(t)):
        raise FitError("temperatures must be finite and > 0 K")
    sigma_t = t * 1e-3 if temperature_err_k is None else np.asarray(temperature_err_k, float)
    sigma_t = np.maximum(sigma_t, 1e-6 * t)  # a point with zero scatter must not take all weight
    y = t ** 2
    w = 1.0 / (2 * t * sigma_t)
    # Scale P to order 1 so the normal equations are well conditioned.
    p_scale = float(np.max(np.abs(p)))
    design = np.column_stack([np.ones_like(p), p / p_scale]) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, y * w, rcond=None)
    resid = (y - (coef[0] + coef[1] * p / p_scale)) * w
    dof = p.size - 2
    chi2 = float(resid @ resid) / dof if dof > 0 else 1.0
    # given errors are trusted unless the scatter about the line exceeds them; assumed ones
    # (relative 1e-3) are scaled to the scatter
    scale = max(chi2, 1.0) if temperature_err_k is not None else chi2
    cov = np.linalg.inv(design.T @ design) * scale
    intercept, slope = coef[0], coef[1] / p_scale
    intercept_err = np.sqrt(cov[0, 0])
    slope_err = np.sqrt(cov[1, 1]) / p_scale
    if slope <= 0:
        raise FitError(f"the temperature does not rise with heater power (slope {slope:.3g} K^2/W)")
    if intercept <= 0:
        raise FitError(f"the fit puts the base temperature below 0 K (T0^2 = {intercept:.3g} K^2)")
    a = 1.0 / slope
    t0 = float(np.sqrt(intercept))
    fit_t = np.sqrt(np.maximum(coef[0] + coef[1] * p / p_scale, 0))
    return CoolingFit(a=float(a), a_err=float(slope_err / slope ** 2), t0=t0,
                      t0_err=float(intercept_err / (2 * t0)),
                      residual_rms_k=float(np.sqrt(np.mean((t - fit_t) ** 2))))
