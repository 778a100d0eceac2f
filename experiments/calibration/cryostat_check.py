"""Cryostat check: is the mixing chamber at a stable base? (physics.md §3 (a)).

The gate of the morning: no pump before a stable base. Read the mixing-chamber thermometer every
``interval_s`` for ``duration_s`` (time as the sweep's setpoint: setting it waits until that
much time has passed since the first reading), then the level, its scatter and its drift. The
step records its results, then refuses to pass (:class:`CryostatNotReady`) when the level is
above ``max_base_k`` or the scatter above ``max_stability_k``.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from qcodes.parameters import Parameter

from hil.analysis.stability import level
from hil.clock import clock_of, wait
from hil.experiment import step
from hil.parameters import Check, Param
from hil.plotting import save_fit_plot
from hil.results import Result

STEP = "cryostat_check"


class CryostatNotReady(RuntimeError):
    """The mixing chamber is not at a stable base: later steps must not pump."""


@step(valid_for_s=600, checks=(
    Check(lambda p: p["duration_s"] / p["interval_s"] >= 3,
          "duration_s / interval_s must give at least 4 readings, got duration_s = {duration_s} s "
          "and interval_s = {interval_s} s"),
    Check(lambda p: p["duration_s"] / p["interval_s"] <= 10_000,
          "duration_s / interval_s gives more than 10000 readings (duration_s = {duration_s} s, "
          "interval_s = {interval_s} s)"),
))
def cryostat_check(
        lab, run, *,
        duration_s: Annotated[float, Param("s", (1.0, 3600.0), "How long to read")] = 60.0,
        interval_s: Annotated[float, Param("s", (0.1, 600.0), "Time between readings")] = 5.0,
        max_base_k: Annotated[float, Param("K", (1e-3, 4.0), "Highest mean temperature that "
                                           "passes")] = 0.05,
        max_stability_k: Annotated[float, Param("K", (1e-6, 1.0), "Largest scatter (standard "
                                                "deviation) that passes")] = 0.002,
) -> dict[str, Result]:
    """Mixing-chamber base temperature and its stability; refuse to go on if not cold and steady.

    Results: ``t_base_k`` (mean reading, K, stderr of the mean), ``stability_k`` (standard
    deviation of the readings, K), ``drift_k_per_s`` (slope of a straight line through them, K/s,
    with its stderr).
    """
    cryostat = lab.cryostat

    clock = clock_of(lab)
    start = clock.now()

    def wait_until(elapsed_s: float) -> None:
        wait(lab, max(0.0, start + elapsed_s - clock.now()))

    elapsed = Parameter("elapsed", label="Time since the first reading", unit="s",
                        set_cmd=wait_until, get_cmd=False)
    times = interval_s * np.arange(int(np.floor(duration_s / interval_s + 1e-9)) + 1)
    data = run.sweep(STEP, elapsed, times, {"mxc_temperature": cryostat.mxc_temperature},
                     description="cryostat: mixing chamber at base?")
    t, temp = data["elapsed"], data["mxc_temperature"]
    fit = level(t, temp)
    results = {
        "t_base_k": Result(fit.mean, "K", fit.mean_err),
        "stability_k": Result(fit.std, "K"),
        "drift_k_per_s": Result(fit.drift, "K/s", fit.drift_err),
    }
    run.record_results(STEP, results)
    save_fit_plot(
        run.plot_path(STEP), t, temp * 1e3, t,
        (fit.mean + fit.drift * (t - t.mean())) * 1e3,
        xlabel="time since the first reading (s)", ylabel="mixing chamber (mK)",
        title="Cryostat check",
        note=(f"T = {fit.mean * 1e3:.3f} ± {fit.mean_err * 1e3:.3f} mK\n"
              f"std = {fit.std * 1e6:.1f} µK, drift = {fit.drift * 1e6 * 60:.2f} µK/min\n"
              f"limits: T <= {max_base_k * 1e3:g} mK, std <= {max_stability_k * 1e6:g} µK"),
    )

    if fit.mean > max_base_k:
        raise CryostatNotReady(
            f"{STEP}: the mixing chamber reads {fit.mean * 1e3:.3f} ± {fit.mean_err * 1e3:.3f} mK, "
            f"above max_base_k = {max_base_k * 1e3:g} mK: no pump before a stable base "
            f"(physics.md §3a). Let the fridge cool (heaters off?) or raise {STEP}.max_base_k.")
    if fit.std > max_stability_k:
        raise CryostatNotReady(
            f"{STEP}: the mixing chamber scatters by {fit.std * 1e6:.1f} µK (std over "
            f"{t[-1] - t[0]:g} s), above max_stability_k = {max_stability_k * 1e6:g} µK: no pump "
            f"before a stable base (physics.md §3a). Wait for it to settle or raise "
            f"{STEP}.max_stability_k.")
    return results
