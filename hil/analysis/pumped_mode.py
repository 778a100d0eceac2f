"""The microwave mode under the pump, measured rather than assumed (physics.md §1.2, §1.3).

Absorbed pump light breaks Cooper pairs in the superconductor: the microwave mode's internal
loss rises and its frequency falls with the pump, ``kappa_m,0(P) = kappa_m,0(0) + b_k P^gamma``,
``delta f_m = -b_f P^gamma`` (physics.md §1.2, after Xu et al., arXiv:2211.10668). The pump-off
kappa_m and f_m of the resonance step are then wrong under the pump, and a conversion spectrum
alone cannot say so: its width ``~ kappa_m (1 + C)`` trades kappa_m against C, and a microwave
mode that moved shifts its peak just as a triple-resonance mismatch does.

The reflection of the microwave port taken over the same window under the same pump can: with
``a = kappa_o/2 - i(w - delta_o)``, ``b = kappa_m/2 - i(w - delta_m)``,
``S_ee = 1 - kappa_m,ex a / (a b + g^2)`` (physics.md §1.3) is a dip at ``delta_m`` whose depth
and width give kappa_m once the conversion spectrum ``|S_oe|^2`` (whose height is
``eta_o eta_m 4C/(1 + C)^2``) gives g. :func:`fit_pumped_mode` fits both traces together for g
(as ``C_rest``, the cooperativity with the pump-off linewidth, which grows as P), the pumped
kappa_m (kappa_m,ex kept: quasiparticles add internal loss, the coupling is geometry) and
delta_m. :func:`fit_pump_dependence` fits the power law to those found at several pump powers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from hil.analysis.efficiency import CooperativityFit
from hil.analysis.transducer import Rates, conversion_efficiency, s_element
from hil.results import FitError


def pumped_rates(rates: Rates, kappa_m_hz: float) -> Rates:
    """``rates`` with the microwave linewidth ``kappa_m_hz`` (kappa_m,ex unchanged)."""
    return replace(rates, kappa_m_hz=max(kappa_m_hz, rates.kappa_m_ex_hz))


def fit_pumped_mode(offset_hz, eta, s_ee, rates: Rates, delta_o_hz: float = 0.0,
                    start_c: float | None = None) -> CooperativityFit:
    """Fit C, the pumped kappa_m and delta_m to a calibrated conversion spectrum ``eta(offset)``
    and the microwave reflection ``|S_ee|(offset)`` over the same probe offsets (from the pump-off
    f_m). ``rates`` are the pump-off linewidths; ``start_c`` a C to start from (e.g. the
    fixed-linewidth fit's). Each trace is weighted by its own scatter (two passes)."""
    x = np.asarray(offset_hz, dtype=float)
    amp = np.sqrt(np.clip(np.asarray(eta, dtype=float), 0.0, None))
    refl = np.asarray(s_ee, dtype=float)
    if x.size < 8 or amp.size != x.size or refl.size != x.size:
        raise FitError(f"need matching traces of at least 8 points, got {x.size}, {amp.size}, "
                       f"{refl.size}")
    if not np.any(amp > 0):
        raise FitError("no conversion: the calibrated spectrum is zero everywhere")
    k0 = rates.kappa_m_hz
    c_start = start_c if start_c and start_c > 0 else 1e-3

    def unpack(p):
        kappa_m = k0 * p[1]
        c = math.exp(p[0]) * k0 / kappa_m  # g^2 fixed by C_rest: C kappa_m = C_rest kappa_m,0
        return c, pumped_rates(rates, kappa_m), k0 * p[2]

    def parts(p):
        c, r, delta_m = unpack(p)
        model_amp = np.sqrt(conversion_efficiency(x, c, r, delta_o_hz, delta_m))
        model_refl = np.abs(s_element("m_ex", "m_ex", x, c, r, delta_o_hz, delta_m))
        return model_amp - amp, model_refl - refl

    weights = (1.0, 1.0)

    def residual(p):
        r_amp, r_refl = parts(p)
        return np.concatenate([r_amp / weights[0], r_refl / weights[1]])

    low = [-math.inf, rates.kappa_m_ex_hz / k0 * (1 + 1e-9), -5.0]
    high = [math.inf, 20.0, 5.0]
    p0 = [math.log(c_start), 1.0, 0.0]
    fit = least_squares(residual, x0=p0, bounds=(low, high), x_scale=[1.0, 0.01, 0.01])
    for _ in range(2):  # weight each trace by its scatter, then refit
        r_amp, r_refl = parts(fit.x)
        floor = 1e-12 * max(float(np.max(amp)), 1.0)
        weights = (max(float(np.sqrt(np.mean(r_amp ** 2))), floor),
                   max(float(np.sqrt(np.mean(r_refl ** 2))), floor))
        fit = least_squares(residual, x0=fit.x, bounds=(low, high), x_scale=[1.0, 0.01, 0.01])
    if not fit.success:
        raise FitError(f"the pumped-mode fit did not converge: {fit.message}")
    dof = max(fit.fun.size - 3, 1)
    s2 = float(np.sum(fit.fun ** 2)) / dof
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * s2
        errs = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        errs = np.full(3, math.inf)
    c, r, delta_m = unpack(fit.x)
    c_rest = math.exp(fit.x[0])
    r_amp, _ = parts(fit.x)
    # C = C_rest kappa_m,0/kappa_m: its error from both (correlations kept)
    grad = np.array([c, -c / fit.x[1], 0.0])
    c_err = math.sqrt(max(float(grad @ cov @ grad), 0.0)) if np.all(np.isfinite(errs)) else math.inf
    return CooperativityFit(
        cooperativity=c, stderr=c_err, residual_rms=math.sqrt(float(np.mean(r_amp ** 2))),
        rates=r, delta_o_hz=delta_o_hz, delta_m_hz=delta_m,
        cooperativity_rest=c_rest, cooperativity_rest_err=c_rest * float(errs[0]),
        kappa_m_err=k0 * float(errs[1]), delta_m_err=k0 * float(errs[2]))


@dataclass(frozen=True)
class PumpDependence:
    """``kappa_m(P) = kappa_m,0 + b_k P^gamma`` and ``f_m(P) = f_m,0 - b_f P^gamma`` (P the
    on-chip peak pump, W), fitted to the pumped modes of a pump sweep (physics.md §1.2)."""

    loss_hz: float        # b_k: linewidth added at 1 W (Hz / W^gamma)
    loss_err: float
    shift_hz: float       # b_f: downward shift at 1 W (Hz / W^gamma)
    shift_err: float
    exponent: float       # gamma
    exponent_err: float
    chi2_reduced: float

    def kappa_m_excess_hz(self, power_w) -> np.ndarray:
        return self.loss_hz * np.power(np.clip(power_w, 0.0, None), self.exponent)

    def delta_m_hz(self, power_w) -> np.ndarray:
        return -self.shift_hz * np.power(np.clip(power_w, 0.0, None), self.exponent)


def fit_pump_dependence(power_w, kappa_m_hz, kappa_m_err, delta_m_hz, delta_m_err) -> PumpDependence:
    """The power law of physics.md §1.2 through the pumped linewidths and shifts of a sweep, with
    one exponent for both and their pump-off values free (so a resonance step's small offset
    from the conversion data does not read as a pump effect). For each exponent the model is
    linear: the best exponent is found on a grid and refined between its neighbours. The
    errors are the marginal ones, from all five parameters' covariance: b_k and b_f are quoted
    at 1 W, which the sweep may not reach, so they move with the exponent."""
    p = np.asarray(power_w, dtype=float)
    k, ke = np.asarray(kappa_m_hz, dtype=float), np.asarray(kappa_m_err, dtype=float)
    d, de = np.asarray(delta_m_hz, dtype=float), np.asarray(delta_m_err, dtype=float)
    ok = (p > 0) & np.isfinite(k) & np.isfinite(d) & (ke > 0) & (de > 0) & np.isfinite(ke) & np.isfinite(de)
    if ok.sum() < 4:
        raise FitError(f"need at least 4 pump powers with finite errors, got {int(ok.sum())}")
    p, k, ke, d, de = p[ok], k[ok], ke[ok], d[ok], de[ok]

    def linear(gamma: float):
        """(k0, b_k, d0, b_f) at this exponent, and the chi-square."""
        x = p ** gamma
        coefs, chi2 = [], 0.0
        for y, e, sign in ((k, ke, 1.0), (d, de, -1.0)):
            design = np.column_stack([np.ones_like(x), sign * x]) / e[:, None]
            coef, *_ = np.linalg.lstsq(design, y / e, rcond=None)
            chi2 += float(np.sum((design @ coef - y / e) ** 2))
            coefs.extend(coef)
        return np.array(coefs), chi2

    grid = np.linspace(0.1, 2.0, 191)
    i = int(np.argmin([linear(g)[1] for g in grid]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    gamma = float(minimize_scalar(lambda g: linear(g)[1], bounds=(lo, hi), method="bounded",
                                  options={"xatol": 1e-6}).x)
    (k0, b_k, d0, b_f), chi2 = linear(gamma)
    dof = max(2 * p.size - 5, 1)
    scale = max(chi2 / dof, 1.0)
    # the weighted residuals' Jacobian in (k0, b_k, d0, b_f, gamma): x = P^gamma, dx/dgamma = x ln P
    x = p ** gamma
    zeros = np.zeros_like(x)
    jac = np.vstack([
        np.column_stack([1 / ke, x / ke, zeros, zeros, b_k * x * np.log(p) / ke]),
        np.column_stack([zeros, zeros, 1 / de, -x / de, -b_f * x * np.log(p) / de])])
    try:
        cov = np.linalg.inv(jac.T @ jac) * scale
        errs = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        errs = np.full(5, math.inf)
    at_edge = gamma <= grid[0] + 1e-9 or gamma >= grid[-1] - 1e-9
    return PumpDependence(loss_hz=float(b_k), loss_err=float(errs[1]), shift_hz=float(b_f),
                          shift_err=float(errs[3]), exponent=gamma,
                          exponent_err=math.inf if at_edge else float(errs[4]),
                          chi2_reduced=chi2 / dof)
