"""Fridge load: the mixing chamber's cooling power from a heat map (physics.md §3 (a), §1.6 item 6).

Pump off, the mixing-chamber (sample) heater is stepped through ``heater_powers_uw``; after each
step the fridge is left ``settle_s`` to settle (several of its time constants), then the
thermometer is read ``samples`` times, ``sample_interval_s`` apart. The steady temperatures
against the heater's power readback are fitted with ``T = sqrt(T0^2 + P / a)``
(:mod:`hil.analysis.cooling`). The heater is switched off at the end, also when the step fails.

Heater power. The heater is driven open loop (manual output, percent of a current range);
``P = (range x output)^2 R``. The resistance is first taken from the controller's heater setup
(``sample_heater.resistance``), then corrected from the controller's power readback
(``cryostat.heater_power``) if the two disagree; the fit uses the readback.

Safety: while settling, the temperature is watched; above ``max_temperature_k`` the heater is
switched off and the step stops (lower ``heater_powers_uw``).
"""

from __future__ import annotations

import numpy as np
from qcodes.parameters import Parameter

from experiments._checks import check, check_range, parse_list
from hil.analysis.cooling import fit_cooling
from hil.analysis.stability import level
from hil.calibration import calibration
from hil.clock import clock_of, wait
from hil.plotting import save_fit_plot
from hil.results import Result

STEP = "fridge_load"
#: Readback and request may differ by this much before the heater resistance is corrected.
POWER_TOLERANCE = 0.01
#: Fill at most this fraction of a current range, leaving room for a resistance correction.
RANGE_HEADROOM = 0.9


class FridgeTooWarm(RuntimeError):
    """The heat map took the mixing chamber above the step's ceiling."""


@calibration(valid_for_s=7 * 24 * 3600)
def fridge_load(lab, run, *, heater_powers_uw: str = "0,1,3,10,30,100", settle_s: float = 180.0,
                samples: int = 5, sample_interval_s: float = 6.0, max_temperature_k: float = 0.05
                ) -> dict[str, Result]:
    """Heat map of the mixing chamber: cooling coefficient a and base temperature T0.

    Results: ``cooling_a_w_per_k2`` (a in P = a (T^2 - T0^2), W/K^2), ``t_base_k`` (T0, K),
    ``cooling_power_20mk_w`` (a ((20 mK)^2 - T0^2), W), each with its standard error.
    """
    powers_uw = parse_list(STEP, "heater_powers_uw", heater_powers_uw)
    for p in powers_uw:
        check_range(STEP, "heater_powers_uw", p, 0.0, 1000.0, "µW (each)")
    check(STEP, len(set(powers_uw)) >= 3,
          f"heater_powers_uw must hold at least 3 different powers, got {heater_powers_uw!r}")
    check_range(STEP, "settle_s", settle_s, 0.0, 7200.0, "s")
    check_range(STEP, "samples", samples, 1, 1000)
    check(STEP, isinstance(samples, int), f"samples must be an integer, got {samples!r}")
    check_range(STEP, "sample_interval_s", sample_interval_s, 0.0, 600.0, "s")
    check_range(STEP, "max_temperature_k", max_temperature_k, 0.005, 1.0, "K")
    cryostat = lab.cryostat
    heater = getattr(cryostat, "sample_heater", None)
    check(STEP, heater is not None and hasattr(heater, "current_range")
          and hasattr(heater, "manual_output"),
          f"the cryostat {cryostat.name} has no sample heater with current_range and "
          f"manual_output; this step drives a Lake Shore 372-style heater")
    ranges_a = sorted(a for a in (heater.current_range.val_mapping or {}) if a > 0)
    check(STEP, bool(ranges_a), f"{heater.current_range.full_name} lists no current ranges")

    clock = clock_of(lab)
    state = {"ohm": None, "range": 0.0, "settled_at": clock.now()}

    def set_heater(power_w: float) -> tuple[float, float]:
        if state["ohm"] is None:
            state["ohm"] = float(heater.resistance.get()) if hasattr(heater, "resistance") else 100.0
        current = np.sqrt(power_w / state["ohm"])
        fitting = [a for a in ranges_a if a * RANGE_HEADROOM >= current]
        if power_w > 0 and not fitting:
            raise ValueError(f"{STEP}: heater_powers_uw: {power_w * 1e6:g} µW needs "
                             f"{current * 1e3:.3g} mA, beyond the largest range "
                             f"({ranges_a[-1] * 1e3:g} mA) of {heater.full_name}")
        full_scale = fitting[0] if power_w > 0 else 0.0
        percent = 100.0 * current / full_scale if full_scale else 0.0
        if full_scale > state["range"]:  # going up: the lower percentage first
            heater.manual_output(percent)
            heater.current_range(full_scale)
        else:
            heater.current_range(full_scale)
            heater.manual_output(percent)
        state["range"] = full_scale
        return full_scale, percent

    def apply(power_w: float) -> None:
        full_scale, percent = set_heater(power_w)
        if power_w > 0:
            readback = float(cryostat.heater_power.get())
            if abs(readback / power_w - 1) > POWER_TOLERANCE:
                driven = full_scale * percent / 100
                ohm = readback / driven ** 2
                run.event("heater", f"{STEP}: {power_w * 1e6:g} µW requested, {readback * 1e6:.4g} µW "
                                    f"read back: heater resistance taken as {ohm:.4g} Ohm, not "
                                    f"{state['ohm']:.4g} Ohm")
                state["ohm"] = ohm
                set_heater(power_w)
        settle(power_w)
        state["settled_at"] = clock.now()

    def settle(power_w: float) -> None:
        end = clock.now() + settle_s
        while True:
            temperature = float(cryostat.mxc_temperature.get())
            if temperature > max_temperature_k:
                _heater_off(heater)
                raise FridgeTooWarm(
                    f"{STEP}: the mixing chamber reached {temperature * 1e3:.2f} mK at "
                    f"{power_w * 1e6:g} µW, above max_temperature_k = {max_temperature_k * 1e3:g} mK; "
                    f"heater switched off. Lower {STEP}.heater_powers_uw.")
            left = end - clock.now()
            if left <= 0:
                return
            wait(lab, min(left, 10.0))

    def dwell(elapsed_s: float) -> None:
        wait(lab, max(0.0, state["settled_at"] + elapsed_s - clock.now()))

    setpoint = Parameter("heater_setpoint", label="Requested heater power", unit="W",
                         set_cmd=apply, get_cmd=False)
    sample_time = Parameter("dwell", label="Time since settled", unit="s", set_cmd=dwell,
                            get_cmd=False)
    if "pump" in lab.roles:
        lab.pump.safe_state()  # absorbed pump light would add to the heater
    try:
        data = run.sweep2d(STEP, setpoint, [p * 1e-6 for p in powers_uw], sample_time,
                           sample_interval_s * np.arange(samples),
                           {"mxc_temperature": cryostat.mxc_temperature,
                            "heater_power": cryostat.heater_power},
                           description="fridge: heat map")
    finally:
        _heater_off(heater)

    temps = data["mxc_temperature"]  # (powers, samples)
    power = data["heater_power"].mean(axis=1)
    t_mean = temps.mean(axis=1)
    t_err = temps.std(axis=1, ddof=1) / np.sqrt(samples) if samples > 1 else None
    for row, p in enumerate(power):
        if samples >= 3:
            trend = level(data["dwell"], temps[row])
            change = abs(trend.drift) * (data["dwell"][-1] - data["dwell"][0])
            if abs(trend.drift) > 3 * trend.drift_err and change > 2e-3 * trend.mean:
                run.event("settling", f"{STEP}: at {p * 1e6:.3g} µW the temperature still moved "
                                      f"{change * 1e6:.1f} µK while sampled; raise {STEP}.settle_s")
    fit = fit_cooling(power, t_mean, t_err)
    p20 = fit.cooling_power(0.020)
    p20_err = np.hypot(fit.a_err * (0.020 ** 2 - fit.t0 ** 2), fit.a * 2 * fit.t0 * fit.t0_err)
    results = {
        "cooling_a_w_per_k2": Result(fit.a, "W/K^2", fit.a_err),
        "t_base_k": Result(fit.t0, "K", fit.t0_err),
        "cooling_power_20mk_w": Result(float(p20), "W", float(p20_err)),
    }
    run.record_results(STEP, results)

    dense = np.linspace(0, power.max() * 1.05, 200)
    save_fit_plot(
        run.plot_path(STEP), power * 1e6, t_mean * 1e3, dense * 1e6, fit.temperature(dense) * 1e3,
        xlabel="mixing-chamber heater power (µW)", ylabel="steady mixing chamber (mK)",
        title="Fridge load: T = sqrt(T0² + P/a)",
        note=(f"a = {fit.a:.4g} ± {fit.a_err:.2g} W/K²\n"
              f"T0 = {fit.t0 * 1e3:.3f} ± {fit.t0_err * 1e3:.3f} mK\n"
              f"P(20 mK) = {p20 * 1e6:.2f} µW"),
    )
    return results


def _heater_off(heater) -> None:
    """Sample heater off (range 0, then output 0); both are tried even if one fails."""
    failure = None
    for parameter, value in ((heater.current_range, 0.0), (heater.manual_output, 0.0)):
        try:
            parameter.set(value)
        except Exception as exc:  # the other one must still be tried
            failure = failure or exc
    if failure is not None:
        raise failure
