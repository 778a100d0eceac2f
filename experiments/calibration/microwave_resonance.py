"""Microwave resonance: S11 of the microwave mode, pump off (physics.md §3 (c), §1.2).

A coarse sweep of ``search_span_hz`` around the design frequency finds the mode; a fine sweep
of ``span_linewidths`` linewidths around it, repeated ``sweeps`` times, is averaged and fitted
with the complex reflection model of physics.md §1.2 (line gain, phase and delay free). The
complex fit is what tells the external rate from the internal one: the magnitude of the dip is
the same for kappa_ex and kappa_0 swapped, and reaches zero at critical coupling.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from qcodes.parameters import Parameter, ParameterWithSetpoints
from qcodes.validators import Arrays

from hil.analysis.checks import flag_all, inside
from hil.analysis.reflection import fit_reflection
from hil.experiment import step
from hil.parameters import Param, check_value, role_range, settable_range, within
from hil.plotting import save_complex_fit_plot
from hil.results import FitError, Result
from hil.units import dbm_to_w

STEP = "microwave_resonance"


@step(valid_for_s=4 * 3600)
def microwave_resonance(
        lab, run, *,
        design_frequency_hz: Annotated[float, Param("Hz", (1e6, 100e9), "Centre of the search "
                                                    "window (the design frequency)")] = 8.8e9,
        search_span_hz: Annotated[float, Param("Hz", (1e5, 5e9), "Width of the search "
                                               "window")] = 200e6,
        search_points: Annotated[int, Param("", (101, 100_003), "Points of the search "
                                            "sweep")] = 2001,
        span_linewidths: Annotated[float, Param("", (5.0, 50.0), "Fine window, in "
                                                "linewidths")] = 15.0,
        points: Annotated[int, Param("", (51, 100_003), "Points of the fine sweep")] = 801,
        sweeps: Annotated[int, Param("", (1, 1000), "Fine sweeps averaged")] = 4,
        if_bandwidth_hz: Annotated[float, Param("Hz", within(role_range("vna", "if_bandwidth"),
                                                             1.0, 1e5), "VNA IF bandwidth")] = 1e3,
        power_dbm: Annotated[float, Param("dBm", within(role_range("vna", "power_dbm"), -200, 50),
                                          "VNA source power")] = -20.0,
        max_widenings: Annotated[int, Param("", (0, 10), "Times the search window may widen "
                                            "4x when it holds no mode")] = 4,
) -> dict[str, Result]:
    """Find the microwave mode; fit its frequency, linewidth and external (line) rate.

    Results: ``f_m_hz`` (resonance frequency), ``kappa_m_hz`` (loaded full width kappa_m/2pi),
    ``kappa_m_ex_hz`` (external rate, the coupling to the line), ``kappa_m_0_hz`` (internal
    loss), ``eta_m`` (kappa_ex/kappa), ``line_gain_db`` (off-resonant |S11|: input line x output
    chain) and ``delay_s`` (the lines' electrical delay), each with its standard error.
    """
    vna = lab.vna
    # The window against the VNA's own range (its frequency option): nothing is sent.
    check_value(STEP, "design_frequency_hz - search_span_hz / 2",
                design_frequency_hz - search_span_hz / 2, *settable_range(vna.start), "Hz")
    check_value(STEP, "design_frequency_hz + search_span_hz / 2",
                design_frequency_hz + search_span_hz / 2, *settable_range(vna.stop), "Hz")

    if "pump" in lab.roles:
        lab.pump.safe_state()  # pump off: its light would heat and shift the mode
    vna.s_parameter("S11")
    vna.data_format("real64")  # a 100k-point search trace: 1.6 MB as float64, twice that as text
    vna.averages(1)
    vna.if_bandwidth(if_bandwidth_hz)
    vna.power(float(dbm_to_w(power_dbm)))
    vna.enable_output()

    # Coarse: the design window, widened 4x at a time to the VNA's range until a mode shows.
    low_hz, high_hz = settable_range(vna.start)[0], settable_range(vna.stop)[1]
    most_points = int(settable_range(vna.points)[1])
    span, attempt = search_span_hz, 0
    while True:
        start = max(design_frequency_hz - span / 2, low_hz)
        stop = min(design_frequency_hz + span / 2, high_hz)
        vna.start(start)
        vna.stop(stop)
        # the same frequency step as the design window, as far as the VNA's points allow
        vna.points(min(int(search_points * (stop - start) / search_span_hz), most_points))
        group = f"{STEP}_search" + (f"_wide{attempt}" if attempt else "")
        coarse = _take(run, vna, group, 1, "microwave search")
        f_coarse = np.asarray(vna.frequency_axis.get())
        try:
            rough = fit_reflection(f_coarse, coarse)
            if not f_coarse[0] < rough.f_r < f_coarse[-1]:
                raise FitError(f"the resonance fitted at {rough.f_r / 1e9:.4f} GHz lies outside "
                               "the search window")
            break
        except FitError as exc:
            if (start <= low_hz and stop >= high_hz) or attempt >= max_widenings:
                raise FitError(f"{STEP}: no microwave resonance between {f_coarse[0] / 1e9:.4f} "
                               f"and {f_coarse[-1] / 1e9:.4f} GHz ({exc}); move "
                               f"{STEP}.design_frequency_hz or widen {STEP}.search_span_hz"
                               ) from None
            run.event("search", f"{STEP}: no mode within {start / 1e9:.4f} .. {stop / 1e9:.4f} "
                                f"GHz; widening the search 4x")
            span *= 4
            attempt += 1
    # Fine: span_linewidths linewidths around it, repeated and averaged.
    step_coarse = (f_coarse[-1] - f_coarse[0]) / (f_coarse.size - 1)
    span = max(span_linewidths * rough.kappa, 20 * step_coarse)
    vna.start(rough.f_r - span / 2)
    vna.stop(rough.f_r + span / 2)
    vna.points(points)
    fine = _take(run, vna, STEP, sweeps, "microwave fine sweeps")
    f = np.asarray(vna.frequency_axis.get())
    try:
        fit = fit_reflection(f, fine)
    except FitError as exc:
        raise FitError(f"{STEP}: the fine sweep around {rough.f_r / 1e9:.6f} GHz did not fit "
                       f"({exc})") from None

    results = {
        "f_m_hz": Result(fit.f_r, "Hz", fit.f_r_err),
        "kappa_m_hz": Result(fit.kappa, "Hz", fit.kappa_err),
        "kappa_m_ex_hz": Result(fit.kappa_ex, "Hz", fit.kappa_ex_err),
        "kappa_m_0_hz": Result(fit.kappa_0, "Hz", fit.kappa_0_err),
        "eta_m": Result(fit.eta, "", fit.eta_err),
        "line_gain_db": Result(fit.line_gain_db, "dB",
                               20 / np.log(10) * fit.amplitude_err / abs(fit.amplitude)),
        "delay_s": Result(fit.delay, "s", fit.delay_err),
    }
    flag_all(results, tuple(results), inside(fit.f_r, f[0], f[-1], "f_m", "Hz"),
             inside(fit.kappa, 0.0, f[-1] - f[0], "kappa_m (the window's width)", "Hz"))
    run.record_results(STEP, results)

    dense = np.linspace(f[0], f[-1], 2000)

    def undelayed(freq, s):  # the lines' delay taken out, so the circle shows as one
        return s * np.exp(2j * np.pi * (freq - fit.f_ref) * fit.delay)

    save_complex_fit_plot(
        run.plot_path(STEP), (f - fit.f_r) / 1e6, undelayed(f, fine), (dense - fit.f_r) / 1e6,
        undelayed(dense, fit.model(dense)),
        xlabel=f"frequency - {fit.f_r / 1e9:.6f} GHz (MHz)",
        title=(f"Microwave resonance: S11, mean of {sweeps} sweeps, pump off, "
               f"{fit.delay * 1e9:.2f} ns delay removed"),
        note=(f"fm = {fit.f_r / 1e9:.6f} GHz ± {fit.f_r_err / 1e3:.2g} kHz\n"
              f"κm/2π = {fit.kappa / 1e6:.4f} MHz ± {fit.kappa_err / 1e3:.2g} kHz\n"
              f"κex/2π = {fit.kappa_ex / 1e6:.4f} MHz ± {fit.kappa_ex_err / 1e3:.2g} kHz\n"
              f"{fit.coupling}-coupled, ηm = {fit.eta:.3f}"),
    )
    return results


def _take(run, vna, step: str, sweeps: int, description: str) -> np.ndarray:
    """Record ``sweeps`` complex S11 traces (real and imaginary parts) as step ``step``; return
    their mean."""
    held: dict[str, np.ndarray] = {}

    def sweep_once(_index: float) -> None:
        vna.run_sweep()
        held["trace"] = np.asarray(vna.trace.get())

    shape = Arrays(shape=vna.frequency_axis.vals.shape_unevaluated)  # the axis' own length
    sweep = Parameter("sweep", label="Sweep number", set_cmd=sweep_once, get_cmd=False)
    real = ParameterWithSetpoints("s11_real", label="Re S11", get_cmd=lambda: held["trace"].real,
                                  setpoints=(vna.frequency_axis,), vals=shape)
    imag = ParameterWithSetpoints("s11_imag", label="Im S11", get_cmd=lambda: held["trace"].imag,
                                  setpoints=(vna.frequency_axis,), vals=shape)
    data = run.sweep(step, sweep, range(sweeps), {"s11_real": real, "s11_imag": imag},
                     description=description)
    return (data["s11_real"] + 1j * data["s11_imag"]).mean(axis=0)
