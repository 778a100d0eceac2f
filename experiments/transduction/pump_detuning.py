"""Where the pump sits on its mode, measured from the through port's dip (physics.md §1.1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qcodes.parameters import Parameter
from scipy.constants import c as SPEED_OF_LIGHT

from experiments.transduction.priors import Priors
from experiments.transduction.pump import check_wavelength, on_grid
from hil.results import Result


@dataclass(frozen=True)
class PumpDetuning:
    """The pump's detuning from its mode, from the through port's dip (physics.md §1.1)."""

    detuning_hz: float     # Delta_p, sign from the optical resonance step's centre
    detuning_err: float
    factor: float          # C(Delta_p)/C(0) = 1/(1 + 4 Delta_p^2/kappa^2) = (1 - T)/(1 - T_min)
    factor_err: float
    transmission: float    # T at the pump wavelength
    from_wavelengths_hz: float  # what the laser's wavelength and the resonance step's centre say


def measure_pump_detuning(lab, run, step: str, priors: Priors, wavelength_m: float, power_w: float,
                          *, readings: int = 5, averages: int = 100,
                          offset_linewidths: float = 20.0) -> PumpDetuning:
    """Through-port power at the pump wavelength and ``offset_linewidths`` optical linewidths
    either side (the baseline), ``readings`` times each, recorded as ``<step>_pump_detuning``.

    Why not the wavelengths alone: the laser's wavelength steps are 12.5 MHz, and a centre found
    from them carries whatever error the resonance step made; but C depends on the detuning as
    the dip depth does: ``1/(1 + 4 Delta^2/kappa^2) = (1 - T)/(1 - T_min)`` with
    ``T_min = ((kappa_0 - kappa_ex)/kappa)^2``, so the depth at the pump wavelength measures the
    factor directly. Its errors: the meter's scatter, and the depth 1 - T_min from the resonance
    step's linewidths. The pump's power is the same at every wavelength: the meter's time
    average cancels the duty cycle. The meter's reading needs no calibration (a ratio).
    """
    rates = priors.rates
    kappa, kappa_ex = rates.kappa_o_hz, rates.kappa_o_ex_hz
    kappa_0 = kappa - kappa_ex
    offset_m = on_grid(lab.pump, offset_linewidths * kappa * wavelength_m ** 2 / SPEED_OF_LIGHT)
    wavelengths = np.array([wavelength_m - offset_m, wavelength_m, wavelength_m + offset_m])
    for w in wavelengths:
        check_wavelength(step, lab, float(w))
    laser, meter = lab.pump, lab.meter
    meter.wavelength(wavelength_m)
    meter.averages(averages)
    laser.power(power_w)
    laser.enable_output()
    reading = Parameter("reading", label="Reading", unit="", set_cmd=None, get_cmd=None)
    data = run.sweep2d(f"{step}_pump_detuning", laser.wavelength, wavelengths, reading,
                       np.arange(readings), {"through_power": meter.power},
                       description="pump detuning from the through port")
    laser.wavelength(wavelength_m)

    def lorentz_t(detuning):
        return 1 - kappa_0 * kappa_ex / (np.asarray(detuning) ** 2 + kappa ** 2 / 4)

    nominal = SPEED_OF_LIGHT / wavelengths - priors.pump_frequency_hz
    power = data["through_power"]
    base = np.concatenate([power[0] / lorentz_t(nominal[0]), power[2] / lorentz_t(nominal[2])])
    on = power[1]
    transmission = float(np.mean(on) / np.mean(base))
    rel = math.hypot(np.std(on, ddof=1) / np.mean(on) / math.sqrt(on.size),
                     np.std(base, ddof=1) / np.mean(base) / math.sqrt(base.size))
    eta = kappa_ex / kappa
    depth = 1 - (1 - 2 * eta) ** 2  # 1 - T_min = 4 eta (1 - eta)
    eta_err = eta * math.hypot(priors.rel_err["kappa_o_hz"], priors.rel_err["kappa_o_ex_hz"])
    depth_err = abs(4 * (1 - 2 * eta)) * eta_err
    factor = min(max((1 - transmission) / depth, 1e-6), 1.0)
    factor_err = math.hypot(transmission * rel / depth, factor * depth_err / depth)
    detuning = math.copysign(kappa / 2 * math.sqrt(1 / factor - 1), nominal[1] or 1.0)
    # d Delta / d factor = -(kappa/2) / (2 factor^2 sqrt(1/factor - 1)); bounded near factor = 1
    slope = kappa / 4 / (factor ** 2 * max(math.sqrt(1 / factor - 1), factor_err))
    result = PumpDetuning(detuning, slope * factor_err, factor, factor_err, transmission,
                          float(nominal[1]))
    run.record_results(f"{step}_pump_detuning", {
        "pump_detuning_hz": Result(result.detuning_hz, "Hz", result.detuning_err),
        "cooperativity_factor": Result(factor, "", factor_err),
        "transmission": Result(transmission, "", transmission * rel),
        "wavelength_detuning_hz": Result(result.from_wavelengths_hz, "Hz", None)})
    return result
