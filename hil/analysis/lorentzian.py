"""Lorentzian transmission dip of a side-coupled cavity (physics.md §1.1).

Model: ``P(x) = P0 (1 + s (x - xm)) [1 - A / (1 + (2 (x - x0) / kappa)^2)]`` with ``A = 1 - T_min``;
then ``kappa_0, kappa_ex = (kappa / 2)(1 +- sqrt(T_min))``. The dip depth is symmetric in
kappa_0 <-> kappa_ex, so the split assumes under-coupling (kappa_ex <= kappa_0), the usual
regime of a weakly coupled resonator; phase data would be needed to tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from hil.results import FitError


@dataclass(frozen=True)
class DipFit:
    """Best-fit parameters (x in the caller's unit) and one-sigma uncertainties."""

    center: float
    center_err: float
    fwhm: float
    fwhm_err: float
    depth: float
    depth_err: float
    baseline: float
    slope: float  # relative baseline slope per unit x, about x_ref
    x_ref: float
    residual_rms: float
    width_depth_corr: float = 0.0  # the fit's correlation between fwhm and depth

    @property
    def width_depth_cov(self) -> float:
        return self.width_depth_corr * self.fwhm_err * self.depth_err

    @property
    def min_transmission(self) -> float:
        return 1.0 - self.depth

    def kappa_split(self) -> tuple[float, float, float, float]:
        """(kappa_ex, kappa_ex_err, kappa_0, kappa_0_err) assuming under-coupling; the errors
        from the width's and the depth's, with their correlation."""
        root = np.sqrt(max(self.min_transmission, 0.0))
        kappa_ex = self.fwhm / 2 * (1 - root)
        kappa_0 = self.fwhm / 2 * (1 + root)
        # kappa_ex,0 = fwhm (1 -+ root) / 2, root = sqrt(1 - depth): d root / d depth = -1 / (2 root)
        droot = -1 / (2 * root) if root > 0 else -1.0
        errs = []
        for sign in (-1.0, 1.0):
            d_fwhm, d_depth = (1 + sign * root) / 2, self.fwhm / 2 * sign * droot
            var = ((d_fwhm * self.fwhm_err) ** 2 + (d_depth * self.depth_err) ** 2
                   + 2 * d_fwhm * d_depth * self.width_depth_cov)
            errs.append(float(np.sqrt(max(var, 0.0))))
        return float(kappa_ex), errs[0], float(kappa_0), errs[1]

    def model(self, x):
        """The fitted curve at ``x``."""
        return dip_model(np.asarray(x, float) - self.x_ref, self.baseline, self.slope,
                         self.depth, self.center - self.x_ref, self.fwhm)


def dip_model(x, baseline, slope, depth, center, fwhm):
    """The module docstring's ``P(x)``: ``baseline (1 + slope x)`` times a Lorentzian dip of
    fractional ``depth`` and full width ``fwhm`` at ``center`` (x about the fit's reference)."""
    return baseline * (1 + slope * x) * (1 - depth / (1 + (2 * (x - center) / fwhm) ** 2))


def fit_dip(x, y) -> DipFit:
    """Fit one Lorentzian dip; raises FitError if there is none to fit."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 6:
        raise FitError(f"need at least 6 points to fit a dip, got {x.size}")
    order = np.argsort(x)
    x, y = x[order], y[order]
    # Fit in scaled units (x in spans, y in baselines): raw Hz and W differ by ~1e12 and
    # would leave the covariance meaningless.
    x_mid = 0.5 * (x[0] + x[-1])
    x_scale = x[-1] - x[0]
    if x_scale <= 0:
        raise FitError("all points are at the same setpoint")
    xs = (x - x_mid) / x_scale
    edge = max(2, x.size // 10)
    y_scale = float(np.median(np.concatenate([y[:edge], y[-edge:]])))
    if y_scale <= 0:
        raise FitError("no light on the detector: the baseline power is not positive")
    ys = y / y_scale
    i_min = int(np.argmin(ys))
    depth = 1 - ys[i_min]
    if depth < 0.02:
        raise FitError(f"no dip: the minimum is only {depth:.1%} below the baseline")
    step = 1.0 / (x.size - 1)
    below = np.flatnonzero(ys < 1 - depth / 2)
    fwhm = max(float(xs[below[-1]] - xs[below[0]]), step)
    p0 = [1.0, 0.0, depth, xs[i_min], fwhm]
    bounds = ([0, -np.inf, 0, -0.5, step / 20], [np.inf, np.inf, 1, 0.5, 2.0])
    try:
        # Detector noise scales with the power it sees (relative noise), so deep in the dip the
        # points are better than at the shoulders; weight them so, with a floor near zero.
        popt, pcov = curve_fit(dip_model, xs, ys, p0=p0, sigma=np.maximum(ys, 0.02),
                               bounds=bounds, max_nfev=10_000)
    except (RuntimeError, ValueError) as exc:
        raise FitError(f"the Lorentzian fit did not converge: {exc}") from None
    perr = np.sqrt(np.clip(np.diag(pcov), 0, np.inf))
    corr = float(pcov[2, 4] / (perr[2] * perr[4])) if perr[2] > 0 and perr[4] > 0 else 0.0
    residual = ys - dip_model(xs, *popt)
    return DipFit(
        center=float(popt[3] * x_scale + x_mid), center_err=float(perr[3] * x_scale),
        fwhm=float(popt[4] * x_scale), fwhm_err=float(perr[4] * x_scale),
        depth=float(popt[2]), depth_err=float(perr[2]),
        baseline=float(popt[0] * y_scale), slope=float(popt[1] / x_scale), x_ref=float(x_mid),
        residual_rms=float(np.sqrt(np.mean(residual ** 2)) * y_scale),
        width_depth_corr=min(max(corr, -1.0), 1.0),
    )
