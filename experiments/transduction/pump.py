"""The pump for the transduction steps: its powers, its wavelength on the laser's grid, its duty.

On-chip pump power. The monitor meter reads the time average of the (possibly pulsed) amplified
pump; the transducer sees the peak. ``pump_calibration.chip_per_monitor`` is taken as the
on-chip power per watt at the monitor tap (the path ratio, what the pump calibration measures
with the pump CW), so the peak on chip is ``monitor / duty x chip_per_monitor`` with the duty
cycle from the station's ``constants: pump_duty_cycle`` (:func:`on_chip_peak_w`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from qcodes.parameters import Parameter
from qcodes.validators import Numbers

from hil.calibration import MissingCalibration
from hil.clock import wait
from hil.parameters import ParameterError, check_value, settable_range
from hil.settle import settle
from hil.units import dbm_to_w


def power_range_w(laser) -> tuple[float, float]:
    """The laser's settable output power (W) on this station: ``power``'s range intersected
    with ``power_dbm``'s (where station limits usually sit)."""
    low, high = settable_range(laser.power)
    lo_dbm, hi_dbm = settable_range(laser.power_dbm)
    if math.isfinite(lo_dbm):
        low = max(low, float(dbm_to_w(lo_dbm)))
    if math.isfinite(hi_dbm):
        high = min(high, float(dbm_to_w(hi_dbm)))
    return max(low, 0.0), high


def laser_powers(laser, count: int, power_min_w: float, power_max_w: float) -> np.ndarray:
    """``count`` laser output powers, log-spaced from ``power_min_w`` to ``power_max_w`` (0 for
    a bound: the laser's own bound on this station), each on the laser's power grid
    (:func:`on_power_grid`). The step's declaration checked them."""
    low, high = power_range_w(laser)
    pmin = low if power_min_w == 0 else power_min_w
    pmax = high if power_max_w == 0 else power_max_w
    if count == 1:
        return np.array([on_power_grid(laser, pmax)])
    return np.array([on_power_grid(laser, p) for p in np.geomspace(pmin, pmax, count)])


def one_laser_power(laser, value: float, default: float | None = None) -> float:
    """A single laser power: ``value``, or for 0 ``default`` (else the laser's maximum), on the
    laser's power grid."""
    if value != 0:
        return on_power_grid(laser, float(value))
    return on_power_grid(laser, float(power_range_w(laser)[1] if default is None else default))


def on_power_grid(laser, power_w: float, highest_w: float | None = None) -> float:
    """The power the laser sets for ``power_w``: the nearest step of its ``power_step_db`` grid
    in dBm (where it declares one), kept inside its range on this station (and at or below
    ``highest_w``). A sweep then records what the laser set, not a request it rounded (0.01 dB
    is up to 0.12 %)."""
    step = float(getattr(laser, "power_step_db", 0.0) or 0.0)
    if step <= 0 or not power_w > 0:
        return float(power_w)
    low, high = power_range_w(laser)
    if highest_w is not None:
        high = max(min(high, highest_w), low)
    steps = round(10 * math.log10(power_w / 1e-3) / step)
    for candidate in (steps, steps - 1, steps + 1):
        snapped = 1e-3 * 10 ** (candidate * step / 10)
        if low <= snapped <= high:
            return snapped
    return float(power_w)


def on_grid(laser, wavelength_m: float) -> float:
    """The nearest wavelength on the laser's tuning grid (its ``wavelength_step_m``)."""
    step = laser.wavelength_step_m
    return round(wavelength_m / step) * step


def duty_cycle(step: str, lab) -> float:
    """The pump's duty cycle from the station's constants (1 for a CW pump)."""
    duty = lab.constants.get("pump_duty_cycle")
    if duty is None:
        raise ParameterError(f"{step}: the station {lab.path} has no constants: pump_duty_cycle "
                             f"(1.0 for a CW pump, the gate's on-fraction for a pulsed one)")
    if not 0 < duty <= 1:
        raise ParameterError(f"{step}: constants.pump_duty_cycle must be in (0, 1], got {duty!r}")
    return float(duty)


def on_chip_peak_w(monitor_w, chip_per_monitor: float | None, duty: float):
    """Peak on-chip pump power from the monitor's time-averaged reading (see the module docs);
    ``chip_per_monitor`` is None when the priors were loaded without the pump calibration."""
    if chip_per_monitor is None:
        raise MissingCalibration("pump_calibration.chip_per_monitor: the on-chip pump power needs "
                                 "it; run pump_calibration first")
    return np.asarray(monitor_w, dtype=float) / duty * chip_per_monitor


#: efficiency_vs_pump's result: the relative noise of one un-averaged monitor sample, measured
#: from its sweep's readings (:func:`hil.analysis.efficiency.reading_scatter`).
MONITOR_NOISE = "monitor_sample_noise"


#: Why an on-chip power's error may be short: the monitor's own noise is not in it.
MONITOR_NOISE_UNKNOWN = ("the monitor meter's noise is not measured (efficiency_vs_pump takes it "
                         "from a sweep of 3 or more powers): the error carries the pump "
                         "calibration's ratio only")


def on_chip_rel_err(run, priors_rel: dict[str, float], averages: int,
                    readings: int = 1) -> tuple[float, str | None]:
    """The relative error of an on-chip power from the mean of ``readings`` monitor readings at
    ``averages``: the pump calibration's ratio and the meter's own noise (efficiency_vs_pump's
    measured sample noise over sqrt(averages x readings)); with why it may be short (the noise
    not measured in this run), else None."""
    found = getattr(run, "results", {}).get("efficiency_vs_pump", {}).get(MONITOR_NOISE)
    known = found is not None and math.isfinite(found.value)
    noise = float(found.value) if known else 0.0
    return (math.hypot(priors_rel.get("chip_per_monitor", 0.0),
                       noise / math.sqrt(max(averages, 1) * max(readings, 1))),
            None if known else MONITOR_NOISE_UNKNOWN)


def pump_setpoint(lab, settle_s: float = 0.0, *, settle_window_s: float = 0.0,
                  settle_rel: float = 0.0, after: Callable[[float], None] | None = None) -> Parameter:
    """The sweep's setpoint: the laser's output power (W), then a wait on the lab's clock.

    With ``settle_window_s`` and a cryostat, the wait lasts until the mixing chamber has settled
    under the new load (:func:`hil.settle.settle`, at most ``settle_s``); otherwise ``settle_s``.
    ``after(watts)`` is called once the power is set."""
    laser = lab.pump
    cryostat = lab.roles.get("cryostat") if settle_window_s else None

    def set_power(watts: float) -> None:
        laser.power(watts)
        if after is not None:
            after(watts)
        if settle_s > 0 and cryostat is not None:
            settle(lab, cryostat.mxc_temperature.get, rel=settle_rel, max_s=settle_s,
                   interval_s=settle_window_s / 5, window=6)
        elif settle_s > 0:
            wait(lab, settle_s)

    return Parameter("laser_power", label="Laser output power", unit="W", set_cmd=set_power,
                     get_cmd=None, vals=Numbers(*power_range_w(laser)))


def start_pump(lab, wavelength_m: float, power_w: float, monitor_averages: int) -> None:
    """Laser on at ``wavelength_m`` and ``power_w``; the monitor meter corrected for it."""
    laser, monitor = lab.pump, lab.monitor
    monitor.wavelength(wavelength_m)
    monitor.averages(monitor_averages)
    laser.power(power_w)
    laser.wavelength(wavelength_m)
    laser.enable_output()


def check_wavelength(step: str, lab, wavelength_m: float) -> None:
    """A pump wavelength computed from measured data, inside the laser's range (nothing sent)."""
    check_value(step, "pump wavelength", wavelength_m, *settable_range(lab.pump.wavelength),
                "m (the laser's range)")


def finish(lab) -> None:
    """End of a step: pump off, VNA source off (the next step sets up what it needs)."""
    for role in ("pump", "vna"):
        if role in lab.roles:
            lab.roles[role].safe_state()


def power_for_c1(run, step: str, laser, laser_w, chip_w, k_per_w: float,
                 highest_w: float | None = None) -> float:
    """The laser power at C = 1 (``C = k P_chip``) from a sweep's laser setpoints and on-chip
    powers, inside the laser's range on this station (and below ``highest_w``, e.g. what the
    fridge allows); an event says when C = 1 is out of reach."""
    laser_w = np.asarray(laser_w, dtype=float)
    chip_w = np.asarray(chip_w, dtype=float)
    chip_per_laser = float(np.sum(chip_w * laser_w) / np.sum(laser_w ** 2))
    wanted = 1.0 / (k_per_w * chip_per_laser)
    low, high = power_range_w(laser)
    if highest_w is not None:
        high = max(min(high, highest_w), low)
    clamped = min(max(wanted, low), high)
    chosen = on_power_grid(laser, clamped, high)
    if clamped != wanted:
        run.event("operating_point", f"{step}: C = 1 needs {wanted * 1e3:.4g} mW from the laser, "
                                     f"outside the range [{low * 1e3:.4g}, {high * 1e3:.4g}] mW the "
                                     f"laser and the fridge allow; operating at {chosen * 1e3:.4g} mW "
                                     f"(C = {chosen / wanted:.3g})")
    return chosen


def operating_laser_power(run, step: str, laser, value: float) -> float:
    """A transduction step's pump power: ``value``, or for 0 the operating point
    efficiency_vs_pump chose (C = 1 within the laser's range), else the laser's maximum."""
    if value != 0:
        return float(value)
    chosen = run.results.get("bidirectional", {}).get("laser_power_w")
    if chosen is None:
        run.event("operating_point", f"{step}: no operating point from efficiency_vs_pump in this "
                                     "run; pumping at the laser's maximum")
        return float(power_range_w(laser)[1])
    return float(chosen.value)
