"""Triple-resonance mismatch: measured, and nulled with the bias source before transduction.

The signal mode should sit at pump mode + f_m; a mismatch delta costs the conversion
``1/(1 + (2 delta/kappa_o)^2)`` at low C (imperfections.md §5) and biases g0, P_C1 and the
bandwidth of every later step. Each scan steps the laser across the pump mode on its grid (a low
pump, C << 1), reading the through port and |S21| at f_m (a narrow window: away from f_m the
probe would read the signal mode's filter off its centre) at each wavelength; the ratio of
conversion to dip depth peaks at the signal mode, the dip at the pump mode, and their distance
is delta (:mod:`hil.analysis.mismatch`).

With a ``bias`` role: a scan at 0 V; if the mismatch is above ``tolerance_hz``, a scan at
``probe_bias_v`` (and at the source's limit if that did not move it measurably), then the straight
line through the (V, delta) pairs gives the voltage that nulls it, inside the source's limits on
this station; each voltage set is scanned again (up to ``max_steps``) until the mismatch is inside
the tolerance. The bias stays on at that voltage for the rest of the run (the runner's end-of-run
safe state turns it off and to 0 V); it is left off when no tuning was needed. Without a ``bias``
role the step only measures, and a mismatch above the tolerance is marked suspect, which the
transduction steps carry onto what it biases (:func:`experiments.transduction.tuning.untuned_mismatch`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT

from experiments.transduction.params import (
    LASER_POWER,
    MONITOR_AVERAGES,
    VNA_AVERAGES,
    VNA_IF_BANDWIDTH,
    VNA_POWER,
    Param,
)
from experiments.transduction.priors import load_priors
from experiments.transduction.pump import (
    check_wavelength,
    finish,
    on_grid,
    power_range_w,
    start_pump,
)
from experiments.transduction.vna import Vna, Window
from hil.analysis.checks import flag_all
from hil.analysis.mismatch import BiasLine, MismatchFit, bias_line, mismatch_from_scan
from hil.experiment import step
from hil.parameters import role_range, settable_range
from hil.plotting import save_series_plot
from hil.results import Result

STEP = "triple_resonance"


@step(needs=("optical_resonance", "microwave_resonance"), valid_for_s=3600)
def triple_resonance(
        lab, run, *,
        laser_power_w: Annotated[float, LASER_POWER(
            "Laser power of the scans (C << 1)",
            zero="a twentieth of the laser's maximum on this station")] = 0.0,
        half_span_linewidths: Annotated[float, Param("", (0.4, 3.0), "Laser detunings either "
                                                     "side of the pump mode, in optical "
                                                     "linewidths")] = 1.5,
        window_linewidths: Annotated[float, Param("", (0.01, 1.0), "VNA window around f_m, in "
                                                  "microwave linewidths (narrow: the optical "
                                                  "filter is read at f_m)")] = 0.1,
        points: Annotated[int, Param("", (3, 2001), "Points of the VNA window")] = 5,
        if_bandwidth_hz: Annotated[float, VNA_IF_BANDWIDTH] = 10.0,
        vna_power_dbm: Annotated[float, VNA_POWER] = 0.0,
        averages: Annotated[int, VNA_AVERAGES] = 1,
        meter_averages: Annotated[int, Param("", role_range("meter", "averages"),
                                             "Readings the through-port meter averages")] = 100,
        tolerance_hz: Annotated[float, Param("Hz", (0.0, 1e10), "Mismatch left untuned",
                                             zero="kappa_o/20 (1 % of the conversion)")] = 0.0,
        probe_bias_v: Annotated[float, Param("V", (0.0, 1e3), "First bias tried (its sign: "
                                             "positive)", zero="a fifth of the source's limit "
                                             "on this station")] = 0.0,
        current_limit_a: Annotated[float, Param("A", role_range("bias", "current_limit"),
                                                "Bias source's compliance")] = 1e-7,
        max_steps: Annotated[int, Param("", (1, 10), "Bias settings tried after the probe")] = 3,
        monitor_averages: Annotated[int, MONITOR_AVERAGES] = 10) -> dict[str, Result]:
    """Triple-resonance mismatch at 0 V, and the bias that nulls it (kept on for the run)."""
    priors = load_priors(run, pump_calibration=False)
    rates = priors.rates
    laser, meter = lab.pump, lab.meter
    low, high = power_range_w(laser)
    power = laser_power_w or max(low, high / 20)
    tolerance = tolerance_hz or rates.kappa_o_hz / 20
    center = on_grid(laser, priors.pump_wavelength_m)
    grid = laser.wavelength_step_m
    per_hz = center ** 2 / SPEED_OF_LIGHT  # metres of wavelength per hertz
    n = max(1, round(half_span_linewidths * rates.kappa_o_hz * per_hz / grid))
    wavelengths = center + grid * np.arange(-n, n + 1)
    far = on_grid(laser, 20 * rates.kappa_o_hz * per_hz)
    baseline_wavelengths = np.array([center - far, center + far])
    for w in (*wavelengths, *baseline_wavelengths):
        check_wavelength(STEP, lab, float(w))
    detunings = SPEED_OF_LIGHT / wavelengths - priors.pump_frequency_hz
    window = Window.around("frequency", priors.f_m_hz, window_linewidths * rates.kappa_m_hz, points)
    vna = Vna(STEP, lab.vna, if_bandwidth_hz=if_bandwidth_hz, power_dbm=vna_power_dbm,
              averages=averages)
    vna.check_window(window, "window_linewidths")
    bias = lab.roles.get("bias")

    # -- the lab -------------------------------------------------------------------------------
    meter.wavelength(center)
    meter.averages(meter_averages)
    start_pump(lab, center, power, monitor_averages)
    base = run.sweep(f"{STEP}_baseline", laser.wavelength, baseline_wavelengths,
                     {"through_power": meter.power}, description="through port off the pump mode")
    baseline = float(np.mean(base["through_power"]))
    vna.setup()
    scans: list[tuple[float, MismatchFit]] = []

    def scan(volts: float) -> MismatchFit:
        if bias is not None:
            bias.voltage(volts)
        group = f"{STEP}_scan{len(scans)}" if scans else STEP  # the 0 V scan holds the results
        data = run.sweep(group, laser.wavelength, wavelengths,
                         {"through_power": meter.power, **vna.traces(window, "S21", "s21")},
                         description=f"conversion vs pump detuning at {volts:g} V bias")
        depth = 1 - np.asarray(data["through_power"], dtype=float) / baseline
        conversion = np.mean(np.asarray(data["s21"], dtype=float) ** 2, axis=1)
        fit = mismatch_from_scan(detunings, depth, conversion, rates.kappa_o_hz)
        run.event("mismatch", f"{STEP}: {fit.mismatch_hz / 1e6:+.3f} ± {fit.mismatch_err / 1e6:.3f} "
                              f"MHz at {volts:g} V")
        scans.append((volts, fit))
        return fit

    if bias is not None:
        bias.current_limit(current_limit_a)
        bias.voltage(0.0)
        bias.enable_output()
    first = scan(0.0)
    line: BiasLine | None = None
    why_not: str | None = None
    if bias is not None and abs(first.mismatch_hz) > tolerance:
        line, why_not = _tune(bias, scan, scans, tolerance, probe_bias_v, max_steps)
    # the bias stays where the mismatch was smallest (0 V when the bias did not move it)
    volts, last = min(scans if line is not None else scans[:1],
                      key=lambda scanned: abs(scanned[1].mismatch_hz))
    if bias is not None and volts == 0.0:
        bias.safe_state()
    elif bias is not None:
        if volts != scans[-1][0]:
            bias.voltage(volts)
        volts = float(bias.voltage())  # what the source holds (its resolution)
    finish(lab)

    # -- results -------------------------------------------------------------------------------
    results = {
        "mismatch_hz": Result(first.mismatch_hz, "Hz", first.mismatch_err),
        "bias_v": Result(volts, "V", line.null_err if line and volts else None),
        "residual_mismatch_hz": Result(last.mismatch_hz, "Hz", last.mismatch_err),
        "tolerance_hz": Result(tolerance, "Hz"),
    }
    if line is not None:
        results["tuning_hz_per_v"] = Result(line.slope_hz_per_v, "Hz/V", line.slope_err)
    if abs(last.mismatch_hz) > tolerance:
        cause = why_not or "no bias source on this station (role 'bias') to tune it"
        flag_all(results, ("mismatch_hz", "residual_mismatch_hz"),
                 f"triple-resonance mismatch {last.mismatch_hz / 1e6:+.2f} MHz left (tolerance "
                 f"{tolerance / 1e6:.2f} MHz): {cause}")
    run.record_results(STEP, results)
    v = np.array([scanned[0] for scanned in scans])
    series: list[tuple[Any, ...]] = [
        (v, [f.mismatch_hz / 1e6 for _, f in scans], [f.mismatch_err / 1e6 for _, f in scans],
         "o", "measured")]
    if line is not None:
        span = np.linspace(min(v.min(), line.null_v), max(v.max(), line.null_v), 50)
        series.append((span, (line.intercept_hz + line.slope_hz_per_v * span) / 1e6, "-",
                       "delta_0 + k V"))
    save_series_plot(run.plot_path(STEP), series, xlabel="bias (V)",
                     ylabel="mismatch (MHz)", title="Triple-resonance mismatch vs bias",
                     note=f"delta(0 V) = {first.mismatch_hz / 1e6:+.3f} MHz\n"
                          f"bias {volts:g} V -> {last.mismatch_hz / 1e6:+.3f} MHz")
    return results


def _tune(bias, scan, scans: list[tuple[float, MismatchFit]], tolerance: float,
          probe_bias_v: float, max_steps: int) -> tuple[BiasLine | None, str | None]:
    """Probe, then step toward the null along the fitted line; (line, why the null was not
    reached) -- the line is None when the bias does not move the mismatch measurably."""
    v_low, v_high = settable_range(bias.voltage)
    reach = min(abs(v_low), abs(v_high))
    probe = probe_bias_v or reach / 5
    probe = min(max(probe, v_low), v_high)
    first = scans[0][1]
    for volts in (probe, v_high) if probe < v_high else (probe,):
        second = scan(volts)  # a small move first; the full limit if it did not show
        moved = second.mismatch_hz - first.mismatch_hz
        if abs(moved) >= 3 * math.hypot(first.mismatch_err, second.mismatch_err):
            break
    else:
        return None, (f"the bias moved it only {moved / 1e6:+.3f} MHz over {volts:g} V "
                      f"(less than 3 standard errors); tuning it needs more volts or another knob")
    line = None
    for _ in range(max_steps):
        scanned_v = [scanned for scanned, _ in scans]
        fits = [fit for _, fit in scans]
        line = bias_line(scanned_v, [f.mismatch_hz for f in fits], [f.mismatch_err for f in fits])
        target = min(max(line.null_v, v_low), v_high)
        if target in scanned_v:
            break
        if abs(scan(target).mismatch_hz) <= tolerance:
            return line, None
        if target != line.null_v:
            break
    if line is not None and not v_low <= line.null_v <= v_high:
        return line, (f"nulling it needs {line.null_v:.1f} V, outside the bias source's limits "
                      f"[{v_low:g}, {v_high:g}] V on this station")
    return line, f"the bias did not null it in {max_steps} settings"
