"""Pump path calibration: on-chip power from the monitor tap (physics.md §3 (d)).

Path: laser -> amplifier -> tap (fraction ``r`` to the monitor, ``1 - r`` on) -> input loss
``eta_in`` -> chip (transmission ``T_dev`` far off the optical resonance) -> output loss
``eta_out`` -> through-port meter. Both meters see the same light at the same instants (a pulse
gate scales both by the duty cycle), so the ratio of their readings is

    through / monitor = rho = (1 - r) / r * eta_in * T_dev * eta_out.

The round trip ``eta_in eta_out`` is measured; splitting it needs an assumption, here equal
losses in and out (``eta_in = eta_out``, the usual one for a symmetric fiber-to-chip
coupling), which gives ``eta_in = sqrt(rho r / ((1 - r) T_dev))`` and the on-chip power per
watt in the monitor arm ``(1 - r) / r * eta_in``.

``rho`` is the slope of a straight line through (monitor, through) readings at several laser
powers; the intercept absorbs the meters' zero offsets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hil.analysis.data import paired
from hil.results import FitError


@dataclass(frozen=True)
class RatioFit:
    """``y = slope x + offset``, one-sigma uncertainties, from points (x, y)."""

    slope: float
    slope_err: float
    offset: float
    offset_err: float
    residual_rms: float

    def model(self, x):
        return self.slope * np.asarray(x, float) + self.offset


def fit_ratio(x, y) -> RatioFit:
    """Straight-line fit with relative weights (power-meter noise is relative)."""
    x, y = paired(x, y, names="readings", at_least=3, of="power levels")
    if np.ptp(x) <= 0 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise FitError("the monitor readings do not change with the laser power")
    scale_x, scale_y = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if scale_y <= 0:
        raise FitError("no light at the through port")
    xs, ys = x / scale_x, y / scale_y
    w = 1.0 / np.maximum(np.abs(ys), 1e-3)
    design = np.column_stack([xs, np.ones_like(xs)]) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, ys * w, rcond=None)
    resid = (ys - xs * coef[0] - coef[1]) * w
    dof = x.size - 2
    chi2 = float(resid @ resid) / dof
    cov = np.linalg.inv(design.T @ design) * chi2
    slope = coef[0] * scale_y / scale_x
    return RatioFit(slope=float(slope), slope_err=float(np.sqrt(cov[0, 0]) * scale_y / scale_x),
                    offset=float(coef[1] * scale_y), offset_err=float(np.sqrt(cov[1, 1]) * scale_y),
                    residual_rms=float(np.sqrt(np.mean((ys - xs * coef[0] - coef[1]) ** 2)) * scale_y))


@dataclass(frozen=True)
class PumpPath:
    """The pump path from one ratio fit, assuming equal input and output losses."""

    rho: float  # through / monitor
    rho_err: float
    tap_ratio: float
    device_transmission: float

    @property
    def round_trip(self) -> float:
        """eta_in eta_out = rho r / ((1 - r) T_dev): measured, no assumption."""
        r = self.tap_ratio
        return self.rho * r / ((1 - r) * self.device_transmission)

    @property
    def round_trip_err(self) -> float:
        return self.round_trip * self.rho_err / self.rho

    @property
    def eta_in(self) -> float:
        """Input transmission, tap -> chip, with eta_in = eta_out."""
        return math.sqrt(self.round_trip)

    @property
    def eta_in_err(self) -> float:
        return self.eta_in * self.rho_err / (2 * self.rho)

    @property
    def insertion_loss_db(self) -> float:
        """Tap -> chip loss, -10 log10(eta_in) (dB), with eta_in = eta_out."""
        return -10 * math.log10(self.eta_in)

    @property
    def insertion_loss_db_err(self) -> float:
        return 10 / math.log(10) * self.eta_in_err / self.eta_in

    @property
    def chip_per_monitor(self) -> float:
        """On-chip power per watt in the monitor arm at the same instant: (1 - r)/r eta_in."""
        r = self.tap_ratio
        return (1 - r) / r * self.eta_in

    @property
    def chip_per_monitor_err(self) -> float:
        return self.chip_per_monitor * self.eta_in_err / self.eta_in


def pump_path(fit: RatioFit, tap_ratio: float, device_transmission: float = 1.0) -> PumpPath:
    """Split the measured ratio into the path's parts (see the module docstring)."""
    if not 0 < tap_ratio < 1:
        raise ValueError(f"tap_ratio must be in (0, 1), got {tap_ratio}")
    if not 0 < device_transmission <= 1:
        raise ValueError(f"device_transmission must be in (0, 1], got {device_transmission}")
    if fit.slope <= 0:
        raise FitError(f"the through-port power does not rise with the monitor's (slope "
                       f"{fit.slope:.3g})")
    return PumpPath(rho=fit.slope, rho_err=fit.slope_err, tap_ratio=tap_ratio,
                    device_transmission=device_transmission)
