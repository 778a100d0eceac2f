"""Cooperativity vs pump detuning: the pump mode's Lorentzian (physics.md §1.3).

``C(Delta_p) = C0 / (1 + 4 (Delta_p - Delta_0)^2 / kappa_p^2)``: the intracavity pump photon
number follows the pump mode's Lorentzian of full width ``kappa_p`` centred at ``Delta_0`` (the
mode's offset from where the optical resonance step put it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from hil.results import FitError


def cooperativity_lorentzian(detuning_hz, c0: float, center_hz: float, kappa_hz: float):
    """C0 / (1 + 4 (Delta - Delta_0)^2 / kappa^2)."""
    d = np.asarray(detuning_hz, dtype=float) - center_hz
    return c0 / (1 + 4 * (d / kappa_hz) ** 2)


@dataclass(frozen=True)
class DetuningFit:
    c0: float
    c0_err: float
    center_hz: float
    center_err: float
    kappa_hz: float
    kappa_err: float

    def model(self, detuning_hz):
        return cooperativity_lorentzian(detuning_hz, self.c0, self.center_hz, self.kappa_hz)


def fit_detuning(detuning_hz, cooperativity, cooperativity_err=None,
                 kappa_guess_hz: float | None = None) -> DetuningFit:
    """Fit C0, Delta_0 and kappa_p; errors from the covariance scaled by the scatter."""
    x = np.asarray(detuning_hz, dtype=float)
    y = np.asarray(cooperativity, dtype=float)
    if x.size < 4:
        raise FitError(f"need at least 4 detunings to fit C0, Delta_0 and kappa_p, got {x.size}")
    span = float(x.max() - x.min())
    if span <= 0:
        raise FitError("all detunings are the same")
    i_max = int(np.argmax(y))
    guess = kappa_guess_hz or span / 2
    sigma = None
    if cooperativity_err is not None:
        err = np.asarray(cooperativity_err, dtype=float)
        # floor the errors at 0.1 % of each point: the model's own approximations (pump photon
        # energy, prior linewidths) are not better than that
        sigma = np.maximum(err, 1e-3 * np.abs(y))
    p0 = [float(y[i_max]), float(x[i_max]), guess]
    bounds = ([0.0, x.min() - span, span / 1e3], [np.inf, x.max() + span, 100 * span])
    scale = np.array([max(abs(p0[0]), 1e-12), guess, guess])
    try:
        popt, pcov = curve_fit(lambda d, c0, x0, k: cooperativity_lorentzian(d * scale[1], c0 * scale[0],
                                                                              x0 * scale[1], k * scale[2]),
                               x / scale[1], y, p0=np.array(p0) / scale, sigma=sigma,
                               absolute_sigma=False,
                               bounds=(np.array(bounds[0]) / scale, np.array(bounds[1]) / scale),
                               max_nfev=10_000)
    except (RuntimeError, ValueError) as exc:
        raise FitError(f"the detuning fit did not converge: {exc}") from None
    perr = np.sqrt(np.clip(np.diag(pcov), 0, np.inf)) * scale
    c0, x0, kappa = popt * scale
    if not math.isfinite(perr[2]):
        raise FitError("the detuning data do not constrain kappa_p")
    return DetuningFit(float(c0), float(perr[0]), float(x0), float(perr[1]), float(abs(kappa)),
                       float(perr[2]))
