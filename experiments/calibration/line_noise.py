"""The microwave input line against the fridge's temperature: pump-off noise on and off resonance.

added_noise calibrates its output chain on the off-resonance noise, where the device reflects the
input line; a line warmer than the mode's internal bath makes that reference too hot and n_add
too low (a line at occupancy 0.05 took 29 % off n_add, imperfections.md §7). With the pump off
and no tone on the line, the mode swaps part of the line's noise for its internal bath's, so the
on-resonance reading dips below the off-resonance one exactly when the line is the warmer bath;
the ratio of the pair gives ``n_0 - n_line`` in photons through the same chain, and the mixing
chamber's temperature, read with them, bounds the mode's pump-off bath from below
(:mod:`hil.analysis.input_line`): ``n_line >= n_th(f_m, T_mc) - (n_0 - n_line)``.

added_noise takes that bound as the line's occupancy
(:func:`experiments.transduction.tuning.line_occupancy`) and, when it is above zero by more than
its error, marks what it reports: a line warmer than the fridge's bath makes n_add a lower bound
(the mode's own pump-off bath may sit above the fridge's).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from qcodes.parameters import Parameter

from experiments.transduction.noise_readings import (
    ANALYZER_RBW,
    ESA_AVERAGES,
    OFF_RESONANCE_OFFSET,
    noise_marker,
    noise_temperature,
    noise_windows,
    setup_analyzer,
)
from experiments.transduction.priors import load_priors
from hil.analysis.input_line import line_bound, thermal_occupancy_err
from hil.experiment import step
from hil.parameters import Param, ParameterError, role_range, within
from hil.plotting import save_series_plot
from hil.results import Result
from hil.units import dbm_to_w

STEP = "line_noise"


@step(needs=("microwave_resonance",), valid_for_s=4 * 3600)
def line_noise(
        lab, run, *,
        readings: Annotated[int, Param("", (2, 1000), "On/off-resonance reading pairs")] = 8,
        off_resonance_offset_hz: Annotated[float, OFF_RESONANCE_OFFSET] = 0.0,
        rbw_hz: Annotated[float, ANALYZER_RBW] = 10e3,
        esa_points: Annotated[int, Param("", within(role_range("esa", "points"), 3),
                                         "Points per analyzer sweep (the marker reads one: "
                                         "few points, short sweeps)")] = 5,
        esa_averages: Annotated[int, ESA_AVERAGES] = 2500,
) -> dict[str, Result]:
    """Pump-off noise at f_m and beside it -> the line's occupancy at least (anchored at T_mc)."""
    priors = load_priors(run, pump_calibration=False)
    rates, f_m = priors.rates, priors.f_m_hz
    t_n = noise_temperature(STEP, lab)
    esa = lab.esa
    offset, span = noise_windows(STEP, esa, rates, f_m, off_resonance_offset_hz, rbw_hz)
    if "cryostat" not in lab.roles:
        raise ParameterError(f"{STEP}: the station {lab.path} has no cryostat role: the line is "
                             "bounded against the mixing chamber's temperature")

    # -- the lab: pump off, no tone on the line -------------------------------------------------
    for role in ("pump", "vna", "mw_source"):
        if role in lab.roles:
            lab.roles[role].safe_state()
    setup_analyzer(esa, rbw_hz, esa_points, esa_averages)
    reading = Parameter("reading", label="Reading", unit="", set_cmd=None, get_cmd=None)
    data = run.sweep(STEP, reading, np.arange(readings),
                     {"psd_on": noise_marker(esa, "psd_on", f_m, span),
                      "psd_off": noise_marker(esa, "psd_off", f_m + offset, span),
                      "mxc_temperature": lab.cryostat.mxc_temperature},
                     description="pump-off noise on and off the microwave resonance")

    # -- analysis ------------------------------------------------------------------------------
    t_mc = float(np.mean(data["mxc_temperature"]))
    t_mc_err = float(np.std(data["mxc_temperature"], ddof=1) / math.sqrt(readings))
    bound = line_bound(dbm_to_w(data["psd_on"]), dbm_to_w(data["psd_off"]), f_m, offset, t_n,
                       rates, t_mc)
    results = {
        "mode_excess": Result(bound.excess, "", bound.excess_err),
        "n_line_min": Result(bound.n_line_min, "", bound.n_line_err),
        "n_th_mxc": Result(bound.n_th_mc, "", thermal_occupancy_err(f_m, t_mc, t_mc_err)),
        "mxc_temperature_k": Result(t_mc, "K", t_mc_err),
    }
    run.record_results(STEP, results)
    pairs = np.arange(readings)
    save_series_plot(run.plot_path(STEP), [
        (pairs, data["psd_on"], "o", f"at f_m = {f_m / 1e9:.6f} GHz"),
        (pairs, data["psd_off"], "s", f"{offset / 1e6:.0f} MHz above")],
        xlabel="reading", ylabel="noise density (dBm/Hz)", title="Pump-off output noise",
        note=f"n_0 - n_line = {bound.excess:+.4f} ± {bound.excess_err:.4f}\n"
             f"n_line >= {bound.n_line_min:.4f} (T_mc = {t_mc * 1e3:.1f} mK)")
    return results
