"""Conversion efficiency from VNA traces: bidirectional calibration, cooperativity (physics.md §1.3, §1.8).

* :func:`bidirectional_efficiency`: ``eta = |S21 S12| / |S11 S22|`` with the reflections taken
  where the device reflects (nearly) fully, so the unknown path gains cancel (§1.8).
* :func:`reference_gain`: the path gain a reflection trace shows, divided by the device's own
  (model) reflection there, which is 1 far off resonance and a small correction nearer.
* :func:`fit_cooperativity`: C from one calibrated conversion spectrum ``eta(w)``, with the
  linewidths known from the resonance steps; the amplitude fixes C at low C and the shape
  (width, splitting) near and above C = 1, where ``4C/(1 + C)^2`` is flat.
* :func:`fit_slope`: ``C = k P L`` through the origin (``L`` the pump-detuning factor), weighted.
* :func:`value_at`: a trace's value at one frequency from the points around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from hil.analysis.transducer import Rates, conversion_efficiency
from hil.results import FitError


def bidirectional_efficiency(s21, s12, s11_ref, s22_ref):
    """eta_tot = |S21 S12| / |S11 S22| (physics.md §1.8); broadcasts."""
    return np.abs(np.asarray(s21) * np.asarray(s12)) / np.abs(np.asarray(s11_ref) * np.asarray(s22_ref))


def reference_gain(magnitude, device_magnitude) -> tuple[float, float]:
    """Path gain (amplitude) of a reflection trace taken off resonance: the mean of
    ``|S_measured| / |S_device|`` over the trace, and its standard error."""
    ratio = np.asarray(magnitude, dtype=float) / np.asarray(device_magnitude, dtype=float)
    if ratio.size == 0 or not np.all(np.isfinite(ratio)) or np.any(ratio <= 0):
        raise FitError("the reference trace holds no usable reflection")
    err = float(np.std(ratio, ddof=1) / math.sqrt(ratio.size)) if ratio.size > 1 else 0.0
    return float(np.mean(ratio)), err


@dataclass(frozen=True)
class CooperativityFit:
    """C from one conversion spectrum, its standard error and the amplitude residual (rms)."""

    cooperativity: float
    stderr: float
    residual_rms: float
    rates: Rates
    delta_o_hz: float
    delta_m_hz: float
    # the pumped microwave mode, when it was measured (hil.analysis.pumped_mode): C with the
    # pump-off linewidth (C kappa_m = C_rest kappa_m,0) and the errors of kappa_m and delta_m
    cooperativity_rest: float | None = None
    cooperativity_rest_err: float | None = None
    kappa_m_err: float | None = None
    delta_m_err: float | None = None

    @property
    def rest(self) -> tuple[float, float]:
        """(C with the pump-off linewidth, its error): C itself when the mode was not measured."""
        if self.cooperativity_rest is None:
            return self.cooperativity, self.stderr
        return self.cooperativity_rest, self.cooperativity_rest_err or 0.0

    def model(self, offset_hz):
        """The fitted efficiency spectrum."""
        return conversion_efficiency(offset_hz, self.cooperativity, self.rates, self.delta_o_hz,
                                     self.delta_m_hz)


def fit_cooperativity(offset_hz, eta, rates: Rates, delta_o_hz: float = 0.0,
                      delta_m_hz: float = 0.0, start: float | None = None) -> CooperativityFit:
    """Fit C to a calibrated conversion spectrum ``eta(offset)`` (physics.md §1.3 spectrum).

    The fit runs on amplitudes ``sqrt(eta)``, where the VNA's receiver noise is additive and
    the same at every point. Unless a ``start`` is given, a scan of log C over 1e-7..1e3 picks
    the branch (the centre value alone cannot tell C from 1/C); least squares refines it.
    """
    x = np.asarray(offset_hz, dtype=float)
    y = np.sqrt(np.clip(np.asarray(eta, dtype=float), 0.0, None))
    if x.size < 5 or x.size != y.size:
        raise FitError(f"need at least 5 points of a conversion spectrum, got {x.size}")
    if not np.any(y > 0):
        raise FitError("no conversion: the calibrated spectrum is zero everywhere")

    def residual(log_c):
        c = math.exp(float(np.ravel(log_c)[0]))
        return np.sqrt(conversion_efficiency(x, c, rates, delta_o_hz, delta_m_hz)) - y

    if start is not None and start > 0:
        first = math.log(start)
    else:
        grid = np.linspace(math.log(1e-7), math.log(1e3), 241)
        models = np.sqrt(conversion_efficiency(x[None, :], np.exp(grid)[:, None], rates, delta_o_hz,
                                               delta_m_hz))
        first = float(grid[int(np.argmin(np.sum((models - y) ** 2, axis=1)))])
    fit = least_squares(residual, x0=[first], method="lm")
    if not fit.success:
        raise FitError(f"the cooperativity fit did not converge: {fit.message}")
    log_c = float(fit.x[0])
    dof = max(x.size - 1, 1)
    s2 = float(np.sum(fit.fun ** 2)) / dof
    jtj = float(np.sum(fit.jac ** 2))
    log_err = math.sqrt(s2 / jtj) if jtj > 0 else math.inf
    c = math.exp(log_c)
    return CooperativityFit(cooperativity=c, stderr=c * log_err,
                            residual_rms=math.sqrt(float(np.mean(fit.fun ** 2))), rates=rates,
                            delta_o_hz=delta_o_hz, delta_m_hz=delta_m_hz)


@dataclass(frozen=True)
class SlopeFit:
    """``C = k x`` through the origin: k (per unit of x), its standard error, reduced chi^2."""

    slope: float
    stderr: float
    chi2_reduced: float


def fit_slope(x, y, y_err, x_rel_err: float = 0.0) -> SlopeFit:
    """Weighted least squares of ``y = k x``; the error is scaled up by sqrt(chi^2_red) when the
    scatter exceeds the given errors (e.g. heating bends C(P)). ``x_rel_err``: the relative
    error of each x (a meter's reading), carried as ``k x x_rel_err`` added in quadrature to
    y's (the effective-variance method, refined with k): where y is known better than x, x's
    scatter would otherwise read as a model that does not fit."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    err = np.asarray(y_err, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(err) & (err > 0)
    if ok.sum() < 2:
        raise FitError(f"need at least 2 points with finite errors for a slope, got {int(ok.sum())}")
    x, y, err = x[ok], y[ok], err[ok]
    k = 0.0
    for _ in range(4 if x_rel_err > 0 else 1):
        w = 1.0 / (err ** 2 + (k * x * x_rel_err) ** 2)
        sxx = float(np.sum(w * x * x))
        k = float(np.sum(w * x * y)) / sxx
    chi2 = float(np.sum(w * (y - k * x) ** 2)) / (x.size - 1)
    return SlopeFit(slope=k, stderr=math.sqrt(max(chi2, 1.0) / sxx), chi2_reduced=chi2)


def reading_scatter(readings, setpoints) -> float:
    """The relative scatter of a meter's ``readings`` of a quantity set to ``setpoints`` (e.g.
    a monitor tap's power against the laser's set power), from successive differences of their
    ratio (von Neumann): a slow drift or a non-linear path does not count as scatter, a reading
    that jumps does. NaN for fewer than three."""
    ratio = np.asarray(readings, dtype=float) / np.asarray(setpoints, dtype=float)
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size < 3 or not np.all(ratio > 0):
        return math.nan
    return float(np.sqrt(np.mean(np.diff(np.log(ratio)) ** 2) / 2))


def value_at(x, y, model, at: float, half_points: int = 3) -> tuple[float, float]:
    """``y`` at ``x = at`` from the ``2 half_points + 1`` points nearest it, each carried to ``at``
    along the fitted line shape ``model`` (a callable of x): ``model(at) x mean(y / model)``;
    (value, standard error of that mean). The shape only bridges the points' small offsets, so
    the value stays a measured one even where a parabola through them would be biased.

    The points' scatter is taken from every point above the shape's half maximum where there
    are more of them (seven points' own scatter is poorly known), each point's ratio scaled by
    sqrt(shape / peak): a magnitude with additive receiver noise scatters relatively more
    where it is smaller."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = 2 * half_points + 1
    if x.size < n or n < 3:
        raise FitError(f"need at least {max(n, 3)} points around {at}, got {x.size}")
    centre = int(np.argmin(np.abs(x - at)))
    lo = min(max(centre - half_points, 0), x.size - n)
    shape = np.asarray(model(x[lo:lo + n]), dtype=float)
    if np.any(shape <= 0):
        raise FitError("the line shape vanishes where the value is wanted")
    ratio = y[lo:lo + n] / shape
    peak = float(np.asarray(model(np.array([at])), dtype=float)[0])
    scatter = float(np.std(ratio, ddof=1))
    every = np.asarray(model(x), dtype=float)
    above = every >= peak / 2
    if above.sum() > n:
        ratios = y[above] / every[above]
        scatter = float(np.std((ratios - ratios.mean()) * np.sqrt(every[above] / peak), ddof=1))
    return peak * float(np.mean(ratio)), peak * scatter / math.sqrt(n)
