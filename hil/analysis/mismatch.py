"""The triple-resonance mismatch from a pump-detuning scan, and the bias that nulls it.

Mismatch ``delta = f_signal - (f_pump_mode + f_m)`` (imperfections.md §5). With the pump
``Delta`` from its mode, the converted sideband sits ``delta - Delta`` from the signal mode, so at
low C the conversion goes as the pump's filling times the signal mode's filter (physics.md §1.3):
``|S21|^2 ∝ L(Delta) L(delta - Delta)``, ``L(x) = 1/(1 + (2x/kappa_o)^2)``. The through port's
dip depth at the same laser settings is ``1 - T ∝ L(Delta)`` (physics.md §1.1), so the ratio
conversion / dip depth is ``L(delta - Delta)`` alone: a Lorentzian in the laser's detuning whose
centre, less the dip's centre on the same axis, is ``delta``. The laser's offset from its
nominal wavelength (grid, setting error) is common to both centres and cancels.

At f_m the conversion is exactly ``|S21|^2 ∝ C / ((1 + C)^2 + (2 delta_o/kappa_o)^2)`` (the
two-mode response at zero probe detuning, ``delta_o = delta - Delta``), so a finite C widens the
ratio where the pump fills the mode most, asymmetrically when ``delta != 0``; the fit carries
``C = c L(Delta)`` with c free (c -> 0 is the Lorentzian above).

A bias V across the crystal moves the mismatch linearly (Pockels, imperfections.md §5):
``delta(V) = delta_0 + k V``; a weighted straight line through the measured (V, delta) gives
``k`` and the voltage that nulls it, ``V_0 = -delta_0 / k``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from hil.results import FitError


def lorentzian(x, center: float, kappa: float):
    """``1 / (1 + (2 (x - center) / kappa)^2)``."""
    return 1.0 / (1.0 + (2.0 * (np.asarray(x, dtype=float) - center) / kappa) ** 2)


@dataclass(frozen=True)
class MismatchFit:
    """One scan's mismatch and the two centres it comes from (Hz, on the nominal detuning axis)."""

    mismatch_hz: float
    mismatch_err: float
    pump_center_hz: float   # where the dip is deepest: minus the laser's offset
    signal_center_hz: float  # where conversion / dip depth peaks


def _center(x: np.ndarray, y: np.ndarray, kappa: float, what: str) -> tuple[float, float]:
    """Centre (and its standard error, from the residuals' scatter) of ``y = A L(x - c)``."""
    guess = float(x[int(np.argmax(y))])
    try:
        (amp, center), cov = curve_fit(lambda v, a, c: a * lorentzian(v, c, kappa), x, y,
                                       p0=(float(np.max(y)), guess))
    except (RuntimeError, ValueError) as exc:
        raise FitError(f"{what}: no Lorentzian centre ({exc})") from None
    err = float(np.sqrt(cov[1, 1])) if np.all(np.isfinite(cov)) else math.inf
    if not amp > 0 or not math.isfinite(center):
        raise FitError(f"{what}: the fit found no peak (amplitude {amp:g})")
    return float(center), err


def mismatch_from_scan(detuning_hz, dip_depth, conversion, kappa_o_hz: float) -> MismatchFit:
    """``detuning_hz``: the laser's nominal detunings from the pump mode; ``dip_depth``:
    ``1 - T`` at each; ``conversion``: |S21|^2 there (any unit). Needs three points or more."""
    x = np.asarray(detuning_hz, dtype=float)
    depth = np.asarray(dip_depth, dtype=float)
    conv = np.asarray(conversion, dtype=float)
    if x.size < 3 or depth.shape != x.shape or conv.shape != x.shape:
        raise FitError(f"need three or more matching points, got {x.size}, {depth.size}, {conv.size}")
    if np.any(depth <= 0):
        raise FitError("the pump's dip is not seen at every detuning of the scan")
    pump, pump_err = _center(x, depth / np.max(depth), kappa_o_hz, "pump dip")
    ratio = conv / depth
    ratio = ratio / np.max(ratio)
    filling = lorentzian(x, pump, kappa_o_hz)

    def model(v, amp, center, c):
        f = np.interp(v, x[np.argsort(x)], filling[np.argsort(x)])
        return amp / ((1 + c * f) ** 2 + (2 * (v - center) / kappa_o_hz) ** 2)

    start = float(x[int(np.argmax(ratio))])
    try:
        (_, signal, _), cov = curve_fit(model, x, ratio, p0=(1.0, start, 0.0),
                                        bounds=([0.0, -np.inf, 0.0], [np.inf, np.inf, 100.0]))
    except (RuntimeError, ValueError) as exc:
        raise FitError(f"conversion / dip depth: no peak ({exc})") from None
    signal_err = float(np.sqrt(cov[1, 1])) if np.all(np.isfinite(cov)) else math.inf
    return MismatchFit(float(signal) - pump, math.hypot(pump_err, signal_err), pump, float(signal))


@dataclass(frozen=True)
class BiasLine:
    """``delta(V) = intercept + slope V`` and the voltage that nulls it."""

    slope_hz_per_v: float
    slope_err: float
    intercept_hz: float
    null_v: float
    null_err: float


def bias_line(volts, mismatch_hz, errors_hz) -> BiasLine:
    """Weighted straight line through (V, delta) with two or more distinct voltages."""
    v = np.asarray(volts, dtype=float)
    d = np.asarray(mismatch_hz, dtype=float)
    e = np.maximum(np.asarray(errors_hz, dtype=float), 1e-9 * max(float(np.max(np.abs(d))), 1.0))
    if np.unique(v).size < 2:
        raise FitError("the bias line needs two different voltages")
    w = 1.0 / e ** 2
    sw, sv, sd = np.sum(w), np.sum(w * v), np.sum(w * d)
    svv, svd = np.sum(w * v * v), np.sum(w * v * d)
    det = sw * svv - sv ** 2
    slope = (sw * svd - sv * sd) / det
    intercept = (svv * sd - sv * svd) / det
    var_slope, var_int, cov = sw / det, svv / det, -sv / det
    if slope == 0:
        raise FitError("the mismatch does not move with the bias")
    null = -intercept / slope
    # V0 = -b/a: dV0 = -(db)/a + b (da)/a^2
    null_var = (var_int / slope ** 2 + intercept ** 2 * var_slope / slope ** 4
                - 2 * intercept * cov / slope ** 3)
    return BiasLine(float(slope), float(math.sqrt(var_slope)), float(intercept), float(null),
                    float(math.sqrt(max(null_var, 0.0))))
