"""The pump's detuning from its optical mode, from the dip's depth at the pump wavelength.

C depends on the detuning as the dip depth does (physics.md §1.1):
``1/(1 + 4 Delta^2/kappa^2) = (1 - T)/(1 - T_min)`` with ``T_min = ((kappa_0 - kappa_ex)/kappa)^2``,
so the through port's transmission at the pump wavelength, against a baseline either side,
gives the cooperativity factor directly, with no error from the laser's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hil.analysis.transducer import Rates


@dataclass(frozen=True)
class PumpDetuning:
    """The pump's detuning from its mode, from the through port's dip (physics.md §1.1)."""

    detuning_hz: float     # Delta_p, sign from the optical resonance step's centre
    detuning_err: float
    factor: float          # C(Delta_p)/C(0) = 1/(1 + 4 Delta_p^2/kappa^2) = (1 - T)/(1 - T_min)
    factor_err: float
    transmission: float    # T at the pump wavelength
    transmission_err: float
    from_wavelengths_hz: float  # what the laser's wavelength and the resonance step's centre say
    # the readings it came from, so it can be worked out again with other linewidths
    readings: np.ndarray | None = field(default=None, repr=False, compare=False)
    nominal_hz: np.ndarray | None = field(default=None, repr=False, compare=False)

    def with_rates(self, rates: Rates) -> PumpDetuning:
        """The same readings worked out with other optical linewidths, its errors from the
        readings' scatter alone: how the detuning moves with the linewidths it was computed
        from (their errors are then carried by whoever varies them)."""
        if self.readings is None or self.nominal_hz is None:
            raise ValueError("this detuning has no readings to work out again")
        return detuning_from_dip(self.readings, self.nominal_hz, rates, 0.0, 0.0)


def detuning_from_dip(power, nominal_hz, rates: Rates, kappa_rel_err: float,
                      kappa_ex_rel_err: float) -> PumpDetuning:
    """``power``: through-port readings, rows below / at / above the pump wavelength;
    ``nominal_hz``: those three wavelengths' detunings from the resonance step's centre. The
    baseline rows are divided by the Lorentzian's small tail at their offsets. Errors: the
    readings' scatter and the depth ``1 - T_min`` from the linewidths' relative errors."""
    kappa, kappa_ex = rates.kappa_o_hz, rates.kappa_o_ex_hz
    kappa_0 = kappa - kappa_ex

    def lorentz_t(detuning):
        return 1 - kappa_0 * kappa_ex / (np.asarray(detuning) ** 2 + kappa ** 2 / 4)

    power = np.asarray(power, dtype=float)
    base = np.concatenate([power[0] / lorentz_t(nominal_hz[0]), power[2] / lorentz_t(nominal_hz[2])])
    on = power[1]
    transmission = float(np.mean(on) / np.mean(base))
    rel = math.hypot(np.std(on, ddof=1) / np.mean(on) / math.sqrt(on.size),
                     np.std(base, ddof=1) / np.mean(base) / math.sqrt(base.size))
    eta = kappa_ex / kappa
    depth = 1 - (1 - 2 * eta) ** 2  # 1 - T_min = 4 eta (1 - eta)
    eta_err = eta * math.hypot(kappa_rel_err, kappa_ex_rel_err)
    depth_err = abs(4 * (1 - 2 * eta)) * eta_err
    factor = min(max((1 - transmission) / depth, 1e-6), 1.0)
    factor_err = math.hypot(transmission * rel / depth, factor * depth_err / depth)
    detuning = math.copysign(kappa / 2 * math.sqrt(1 / factor - 1), nominal_hz[1] or 1.0)
    # d Delta / d factor = -(kappa/2) / (2 factor^2 sqrt(1/factor - 1)); bounded near factor = 1
    slope = kappa / 4 / (factor ** 2 * max(math.sqrt(1 / factor - 1), factor_err))
    return PumpDetuning(detuning, slope * factor_err, factor, factor_err, transmission,
                        transmission * rel, float(nominal_hz[1]), power, np.asarray(nominal_hz, dtype=float))
