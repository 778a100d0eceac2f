"""Where the pump sits on its mode: the through port read at and beside the pump wavelength
(the sub-measurement; the analysis is :mod:`hil.analysis.pump_detuning`)."""

from __future__ import annotations

import numpy as np
from qcodes.parameters import Parameter
from scipy.constants import c as SPEED_OF_LIGHT

from experiments.transduction.priors import Priors
from experiments.transduction.pump import check_wavelength, on_grid
from hil.analysis.pump_detuning import PumpDetuning, detuning_from_dip
from hil.results import Result


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
    kappa = priors.rates.kappa_o_hz
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

    nominal = SPEED_OF_LIGHT / wavelengths - priors.pump_frequency_hz
    result = detuning_from_dip(data["through_power"], nominal, priors.rates,
                               priors.rel_err["kappa_o_hz"], priors.rel_err["kappa_o_ex_hz"])
    run.record_results(f"{step}_pump_detuning", {
        "pump_detuning_hz": Result(result.detuning_hz, "Hz", result.detuning_err),
        "cooperativity_factor": Result(result.factor, "", result.factor_err),
        "transmission": Result(result.transmission, "", result.transmission_err),
        "wavelength_detuning_hz": Result(result.from_wavelengths_hz, "Hz", None)})
    return result
