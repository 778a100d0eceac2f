"""Fridge load: the mixing chamber's cooling power from a heat map (physics.md §3 (a), §1.6 item 6).

Pump off, the mixing-chamber (sample) heater is stepped through ``heater_powers_uw``; after each
step the fridge is left to settle: the thermometer is read until its drift over
``settle_window_s`` is below ``settle_rel`` of the temperature (:func:`hil.settle.settle`; at
most ``settle_s``), then it is read ``samples`` times,
``sample_interval_s`` apart. Settle detection lets a first-order approach go with up to
1/(e - 1) of the window's last drift still to go (for a time constant up to the window, as
``settle_window_s`` asks): half of that is added on the side the level came from and the rest
carried as an error. The steady temperatures
against the heater's power readback are fitted with ``T = sqrt(T0^2 + P / a)``
(:mod:`hil.analysis.cooling`). The heater is switched off at the end, also when the step fails.

Heater power. The cryostat role drives the heater open loop at each power
(``cryostat.set_heater_power``), correcting the heater resistance it assumes from the
controller's power readback where the two disagree (an event records it); the fit uses the
readback (``cryostat.heater_power``).

Safety: while settling, the temperature is watched; above ``max_temperature_k`` the heater is
switched off and the step stops (lower ``heater_powers_uw``), unless the station has an interlock
on the mixing chamber at or below that ceiling: it is then the authority (its safe state turns
the heater off; it resumes or ends the run as the station says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from qcodes.parameters import Parameter

from hil.analysis.cooling import fit_cooling
from hil.analysis.stability import level
from hil.clock import clock_of, wait
from hil.experiment import step
from hil.parameters import Param, parse_list
from hil.plotting import save_fit_plot
from hil.results import Result
from hil.settle import SETTLE_REL, SETTLE_WINDOW, interlock_ceiling
from hil.settle import settle as settle_reading

STEP = "fridge_load"


class FridgeTooWarm(RuntimeError):
    """The heat map took the mixing chamber above the step's ceiling."""


@dataclass
class _Settling:
    """Where the heater ladder's settling stands: when the last level settled, the settled
    temperatures so far, and the drift criterion in force (tighter for the probe)."""

    settled_at: float
    rel: float
    levels: list[float] = field(default_factory=list)
    # per requested power (W): how far the reading may still sit from its steady value when
    # settle detection let it go (K; > 0 below it, approached from below)
    lag: dict[float, float] = field(default_factory=dict)


@step(valid_for_s=7 * 24 * 3600)
def fridge_load(
        lab, run, *,
        heater_powers_uw: Annotated[str, Param("µW", (0.0, 1000.0), "Heater powers of the map "
                                               "(comma-separated)", each=True, count=3)
                                    ] = "0,1,10,100",
        settle_s: Annotated[float, Param("s", (0.0, 7200.0), "Longest settling time at each "
                                         "power")] = 600.0,
        settle_window_s: Annotated[float, SETTLE_WINDOW] = 30.0,
        settle_rel: Annotated[float, SETTLE_REL] = 1e-3,
        samples: Annotated[int, Param("", (1, 1000), "Readings per power")] = 5,
        sample_interval_s: Annotated[float, Param("s", (0.0, 600.0), "Time between "
                                                  "readings")] = 6.0,
        max_temperature_k: Annotated[float, Param("K", (0.005, 1.0), "Ceiling: the heater goes "
                                                  "off above it")] = 0.05,
        top_fraction: Annotated[float, Param("", (0.0, 0.95), "The map's top power heats the "
                                             "mixing chamber to this fraction of "
                                             "max_temperature_k (from a probe); 0: "
                                             "heater_powers_uw as given")] = 0.8,
) -> dict[str, Result]:
    """Heat map of the mixing chamber: cooling coefficient a and base temperature T0.

    Results: ``cooling_a_w_per_k2`` (a in P = a (T^2 - T0^2), W/K^2), ``t_base_k`` (T0, K),
    ``cooling_power_20mk_w`` (a ((20 mK)^2 - T0^2), W), each with its standard error.
    """
    powers_uw = parse_list(heater_powers_uw)
    cryostat = lab.cryostat
    clock = clock_of(lab)
    # The probe's small step scales the whole ladder: it settles 4x tighter.
    state = _Settling(settled_at=clock.now(), rel=settle_rel / 4)

    def apply(power_w: float) -> None:
        assumed = cryostat.heater_resistance_ohm
        cryostat.set_heater_power(power_w)
        if assumed is not None and cryostat.heater_resistance_ohm != assumed:
            run.event("heater", f"{STEP}: at {power_w * 1e6:g} µW the power read back differed "
                                f"from the request: heater resistance taken as "
                                f"{cryostat.heater_resistance_ohm:.4g} Ohm, not {assumed:.4g} Ohm")
        settle(power_w)
        state.settled_at = clock.now()

    # A station interlock at or below the ceiling is the authority (its safe state turns the
    # heater off, then it resumes or ends the run); the step's own ceiling is for stations
    # without one.
    station_ceiling = interlock_ceiling(lab)
    guarded = station_ceiling is not None and station_ceiling <= max_temperature_k

    def settle(power_w: float) -> None:
        if settle_s == 0:
            return

        def ceiling(temperature: float) -> None:
            if temperature > max_temperature_k and not guarded:
                cryostat.heater_off()
                raise FridgeTooWarm(
                    f"{STEP}: the mixing chamber reached {temperature * 1e3:.2f} mK at "
                    f"{power_w * 1e6:g} µW, above max_temperature_k = {max_temperature_k * 1e3:g} mK; "
                    f"heater switched off. Lower {STEP}.heater_powers_uw.")

        done = settle_reading(lab, cryostat.mxc_temperature.get,
                              rel=state.rel, max_s=settle_s,
                              interval_s=settle_window_s / 5, window=6, check=ceiling)
        # A first-order approach of time constant tau <= the window (settle_window_s' contract)
        # is let go with at most change / (e - 1) still to go, change the fitted drift over the
        # window (no more than the criterion where it settled), on the side it came from.
        previous = state.levels[-1] if state.levels else float("nan")
        bound = max(abs(done.change), state.rel * abs(done.level)) / (math.e - 1)
        if math.isfinite(bound) and math.isfinite(previous) and math.isfinite(done.level):
            state.lag[power_w] = math.copysign(bound, done.level - previous)
        state.levels.append(done.level)
        if not done.settled:
            run.event("settling", f"{STEP}: at {power_w * 1e6:g} µW the mixing chamber still "
                                  f"drifted {done.change * 1e6:.1f} µK per {settle_window_s:g} s "
                                  f"after {STEP}.settle_s = {settle_s:g} s")

    def dwell(elapsed_s: float) -> None:
        wait(lab, max(0.0, state.settled_at + elapsed_s - clock.now()))

    setpoint = Parameter("heater_setpoint", label="Requested heater power", unit="W",
                         set_cmd=apply, get_cmd=False)
    sample_time = Parameter("dwell", label="Time since settled", unit="s", set_cmd=dwell,
                            get_cmd=False)
    if "pump" in lab.roles:
        lab.pump.safe_state()  # absorbed pump light would add to the heater
    if top_fraction > 0:
        powers_uw = _scaled_ladder(run, lab, apply, powers_uw, top_fraction * max_temperature_k,
                                   state.levels)
    state.rel = settle_rel
    try:
        data = run.sweep2d(STEP, setpoint, [p * 1e-6 for p in powers_uw], sample_time,
                           sample_interval_s * np.arange(samples),
                           {"mxc_temperature": cryostat.mxc_temperature,
                            "heater_power": cryostat.heater_power},
                           description="fridge: heat map")
    finally:
        cryostat.heater_off()

    temps = data["mxc_temperature"]  # (powers, samples)
    power = data["heater_power"].mean(axis=1)
    t_mean = temps.mean(axis=1)
    # the thermometer's relative scatter is the same at every level: pooled over all of them
    # (4 dof a level would leave each point's error, and the fit's, poorly known)
    t_err = (t_mean * np.sqrt(np.mean(temps.var(axis=1, ddof=1) / t_mean ** 2)) / np.sqrt(samples)
             if samples > 1 else None)
    # what settling may have left: anywhere between none and its bound, so half of it is
    # added and the rest is an error (uniform: bound / sqrt(12))
    lag = np.array([state.lag.get(p * 1e-6, 0.0) for p in powers_uw])
    t_mean = t_mean + lag / 2
    if t_err is not None:
        t_err = np.hypot(t_err, np.abs(lag) / math.sqrt(12))
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



def _scaled_ladder(run, lab, apply, powers_uw: list[float], target_k: float,
                   levels: list[float]) -> list[float]:
    """The heater ladder's shape scaled so its top heats the mixing chamber to ``target_k``.

    A probe at the ladder's smallest non-zero power, from the base temperature, gives a first
    estimate of the cooling coefficient a = P / (T^2 - T0^2) (physics.md §1.6 item 6); the top
    power is a (target^2 - T0^2). A weak fridge gets a low ladder, a strong one a high ladder,
    and neither is taken past its limit. The two temperatures are the settled levels the settle
    detection averaged (``levels``, appended by ``apply``) where it had them, else the probe's
    readings.
    """
    cryostat = lab.cryostat
    probe_uw = min(p for p in powers_uw if p > 0)
    try:
        base = run.sweep(f"{STEP}_probe", Parameter("probe_heater", unit="W", set_cmd=apply,
                                                    get_cmd=False), [0.0, probe_uw * 1e-6],
                         {"mxc_temperature": cryostat.mxc_temperature,
                          "heater_power": cryostat.heater_power},
                         description="fridge: probe of the cooling power")
    finally:
        cryostat.heater_off()
    readings = [float(t) for t in base["mxc_temperature"]]
    found = levels[-2:] if len(levels) >= 2 else []
    t0, t1 = (level if np.isfinite(level) else reading
              for level, reading in zip(found or readings, readings, strict=True))
    p1 = float(base["heater_power"][1])
    if not t1 > t0:
        run.event("fridge_load", f"{STEP}: {probe_uw:g} µW did not warm the mixing chamber "
                                 f"({t0 * 1e3:.3f} -> {t1 * 1e3:.3f} mK); ladder kept as given")
        return powers_uw
    a = p1 / (t1 ** 2 - t0 ** 2)
    top_uw = min(a * (target_k ** 2 - t0 ** 2) * 1e6, 1000.0)
    scale = top_uw / max(powers_uw)
    ladder = [p * scale for p in powers_uw]
    run.event("fridge_load", f"{STEP}: probe {p1 * 1e6:.3g} µW -> {t1 * 1e3:.3f} mK, a ~ {a:.3g} "
                             f"W/K^2; heater ladder up to {top_uw:.3g} µW for "
                             f"{target_k * 1e3:.3g} mK")
    return ladder
