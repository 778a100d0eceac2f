"""Pump calibration: on-chip pump power from the monitor tap (physics.md §3 (d)).

With the laser parked ``detuning_m`` away from the optical resonance (where the chip barely
absorbs), step the laser power and read the monitor tap (role ``monitor``, before the fridge)
and the through port (role ``meter``, after the chip). The ratio of the two readings is the
path's round trip times the tap's split; with the tap ratio ``r`` measured at room temperature
(``constants: pump_tap_ratio``) and the assumption that **the input and output losses are equal**
(``eta_in = eta_out``), it gives the loss into the chip and so the on-chip power per watt at the
monitor (see :mod:`hil.analysis.pump_path`).

Average and peak. Power meters read time averages. With a pulsed pump (``constants:
pump_duty_cycle`` D < 1) both meters see the same pulses, so their ratio, and ``chip_per_monitor``,
hold for peak and average powers alike; the on-chip *peak* power while the monitor meter reads
``M`` (its time average) is ``chip_peak_per_monitor_reading x M = chip_per_monitor x M / D``.

The small dip the optical mode still makes at the parking point (``kappa^2/4 (1 - T_min) /
(Delta^2 + kappa^2/4)``, physics.md §1.1, from optical_resonance's width and depth) is divided out.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT

from experiments.transduction.pump import on_power_grid
from hil.analysis.checks import flag_all, loss_plausible
from hil.analysis.line import fit_line
from hil.analysis.pump_path import pump_path
from hil.calibration import require
from hil.experiment import step
from hil.parameters import (
    Check,
    Param,
    ParameterError,
    check_value,
    parse_list,
    role_range,
    settable_range,
    within,
)
from hil.plotting import save_fit_plot
from hil.results import Result

STEP = "pump_calibration"


def _laser_power_mw(capabilities) -> tuple[float, float]:
    low, high = capabilities.power_w("pump")
    return low * 1e3, high * 1e3


@step(needs=("optical_resonance",), valid_for_s=8 * 3600, checks=(
    Check(lambda p: 5e-12 <= abs(p["detuning_m"]) <= 5e-9,
          "detuning_m must be in [5e-12, 5e-09] m (absolute value), got {detuning_m!r}"),
    Check(lambda p: max(parse_list(p["laser_powers_mw"]))
          >= 2 * min(parse_list(p["laser_powers_mw"])),
          "laser_powers_mw must span at least a factor 2, got {laser_powers_mw!r}"),
))
def pump_calibration(
        lab, run, *,
        detuning_m: Annotated[float, Param("m", (-5e-9, 5e-9), "Parking point from the optical "
                                           "resonance (5 pm to 5 nm either side)")] = 50e-12,
        laser_powers_mw: Annotated[str, Param("mW", _laser_power_mw, "Laser powers "
                                              "(comma-separated)", each=True, count=3)
                                   # 16 points: the slope's error is estimated from their
                                   # scatter, and 6 (4 degrees of freedom) left it 1.4x short
                                   ] = ("0.05,0.08,0.11,0.14,0.17,0.2,0.23,0.26,0.29,0.32,0.35,"
                                        "0.38,0.41,0.44,0.47,0.5"),
        averages: Annotated[int, Param("", within(role_range("meter", "averages"), 1, 10_000),
                                       "Readings each meter averages")] = 10,
) -> dict[str, Result]:
    """Loss into the chip and on-chip pump power per watt at the monitor tap.

    Needs ``optical_resonance.wavelength_m``, ``.kappa_o_hz`` and ``.min_transmission``; the
    station's ``constants: pump_tap_ratio`` and ``pump_duty_cycle``.

    Results: ``chip_per_monitor`` (W/W: on-chip power per watt in the monitor arm at the same
    instant; the same for peak and for average powers), ``chip_peak_per_monitor_reading`` (W/W:
    on-chip peak power per watt the monitor meter reads, i.e. chip_per_monitor / duty cycle),
    ``insertion_loss_db`` (tap -> chip, dB), ``round_trip_loss_db`` (tap -> chip -> through-port
    meter, dB, measured without the equal-loss assumption), ``through_per_monitor`` (W/W, the
    measured ratio), ``device_transmission`` (the chip's residual transmission at the parking
    point, divided out) and ``equal_loss_assumed`` (1: eta_in = eta_out assumed), with stderr.
    """
    powers_w = [p * 1e-3 for p in parse_list(laser_powers_mw)]
    constants = getattr(lab, "constants", {}) or {}
    for key in ("pump_tap_ratio", "pump_duty_cycle"):
        if key not in constants:
            raise ParameterError(f"{STEP}: needs constants: {key} in the station file "
                                 f"{getattr(lab, 'path', '')}")
    tap_ratio = float(constants["pump_tap_ratio"])
    duty = float(constants["pump_duty_cycle"])
    if not 0 < tap_ratio < 1:
        raise ParameterError(f"{STEP}: constants: pump_tap_ratio must be in (0, 1), got {tap_ratio}")
    if not 0 < duty <= 1:
        raise ParameterError(f"{STEP}: constants: pump_duty_cycle must be in (0, 1], got {duty}")

    resonance = require(run, "optical_resonance", "wavelength_m").value
    kappa = require(run, "optical_resonance", "kappa_o_hz").value
    t_min = require(run, "optical_resonance", "min_transmission").value
    wavelength = resonance + detuning_m
    laser, monitor, meter = lab.pump, lab.monitor, lab.meter
    check_value(STEP, "optical_resonance.wavelength_m + detuning_m", wavelength,
                *settable_range(laser.wavelength), "m")

    detuning_hz = SPEED_OF_LIGHT / wavelength - SPEED_OF_LIGHT / resonance
    dip = (kappa ** 2 / 4) * (1 - t_min) / (detuning_hz ** 2 + kappa ** 2 / 4)
    device_transmission = 1.0 - dip

    for role in (monitor, meter):
        role.wavelength(wavelength)
        role.averages(averages)
    laser.wavelength(wavelength)
    laser.power(min(powers_w))
    laser.enable_output()
    data = run.sweep(STEP, laser.power, sorted(on_power_grid(laser, p) for p in powers_w),
                     {"monitor_power": monitor.power, "through_power": meter.power},
                     description="pump: monitor vs through port")
    laser.safe_state()  # nothing later in this step needs light

    ratio = fit_line(data["monitor_power"], data["through_power"])
    path = pump_path(ratio, tap_ratio, device_transmission)
    # The dip correction is known to the width and depth of optical_resonance: small, as is its
    # uncertainty, so it is left out of the error budget.
    results = {
        "chip_per_monitor": Result(path.chip_per_monitor, "W/W", path.chip_per_monitor_err),
        "chip_peak_per_monitor_reading": Result(path.chip_per_monitor / duty, "W/W",
                                                path.chip_per_monitor_err / duty),
        "insertion_loss_db": Result(path.insertion_loss_db, "dB", path.insertion_loss_db_err),
        "round_trip_loss_db": Result(-10 * math.log10(path.round_trip), "dB",
                                     10 / math.log(10) * path.round_trip_err / path.round_trip),
        "through_per_monitor": Result(ratio.slope, "W/W", ratio.slope_err),
        "device_transmission": Result(device_transmission, ""),
        "equal_loss_assumed": Result(1.0, ""),
    }
    # Unequal input and output losses cannot be told apart by this measurement: the station's
    # bound on their difference (constants: pump_loss_asymmetry_db, e.g. from a room-temperature
    # cut-back) goes into the error budget; a bound that leaves the on-chip power uncertain by
    # more than 5 % marks it suspect.
    asymmetry_db = float(constants.get("pump_loss_asymmetry_db", 0.0))
    if asymmetry_db < 0:
        raise ParameterError(f"{STEP}: constants: pump_loss_asymmetry_db must be >= 0 dB, got "
                             f"{asymmetry_db}")
    if asymmetry_db > 0:
        rel = 10 ** (asymmetry_db / 20) - 1  # in = out +- asymmetry/2 dB
        for name in ("chip_per_monitor", "chip_peak_per_monitor_reading"):
            r = results[name]
            results[name] = Result(r.value, r.unit, math.hypot(r.stderr or 0.0, r.value * rel))
        results["insertion_loss_db"] = Result(
            path.insertion_loss_db, "dB", math.hypot(path.insertion_loss_db_err, asymmetry_db / 2))
        if rel > 0.05:
            flag_all(results, ("chip_per_monitor", "chip_peak_per_monitor_reading",
                               "insertion_loss_db"),
                     f"input and output fibre losses may differ by up to {asymmetry_db:g} dB "
                     f"(constants: pump_loss_asymmetry_db) and equal losses are assumed: the "
                     f"on-chip power is known only to +-{rel:.0%}")
    flag_all(results, ("chip_per_monitor", "chip_peak_per_monitor_reading", "insertion_loss_db"),
             loss_plausible(path.insertion_loss_db, "insertion loss tap -> chip"))
    run.record_results(STEP, results)

    m = data["monitor_power"]
    dense = np.linspace(0, m.max() * 1.05, 100)
    save_fit_plot(
        run.plot_path(STEP), m * 1e6, data["through_power"] * 1e6, dense * 1e6,
        ratio.model(dense) * 1e6,
        xlabel="monitor tap reading (µW, time average)",
        ylabel="through-port reading (µW, time average)",
        title=f"Pump calibration, {detuning_m * 1e12:+.0f} pm from the optical resonance",
        note=(f"through/monitor = {ratio.slope:.4g} ± {ratio.slope_err:.2g}\n"
              f"tap ratio {tap_ratio:g}, duty cycle {duty:g}\n"
              f"insertion loss {path.insertion_loss_db:.3f} dB (in = out assumed)\n"
              f"chip/monitor = {path.chip_per_monitor:.4g} W/W"),
    )
    return results
