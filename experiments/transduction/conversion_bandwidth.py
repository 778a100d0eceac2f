"""Conversion bandwidth: the FWHM of |S21|^2 at one pump power (physics.md §1.3 spectrum, §3 (e)).

For kappa_o >> kappa_m the conversion spectrum is a Lorentzian of width kappa_m (1 + C); with
comparable linewidths (Profile A: kappa_o/kappa_m = 2.5) it is not, and above C ~ 1.5 the
normal modes split it in two. So the trace is fitted with the full model of the spectrum
(C free; the linewidths from the resonance steps, with the microwave mode's pump-induced loss
and shift at this pump power from efficiency_vs_pump's power law, physics.md §1.2; path gain
and noise bias free; :func:`hil.analysis.bandwidth.fit_conversion_spectrum`) and the bandwidth
is the model's FWHM:
a search trace over ``search_span_linewidths`` microwave linewidths finds the peak and a rough
width, then a fine trace over ``fine_span_widths`` of those widths (more averaging) is fitted.
``bandwidth_crossings_hz`` keeps the width between the outermost half-maximum crossings as a
cross-check. The path gains of S21 are flat over the window, so the shape
of |S21|^2 is the device's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import numpy as np

from experiments.transduction.params import (
    MONITOR_AVERAGES,
    PUMP_POWER,
    VNA_AVERAGES,
    VNA_IF_BANDWIDTH,
    VNA_POWER,
    Param,
)
from experiments.transduction.prior_errors import prior_shares
from experiments.transduction.priors import LINEWIDTHS, load_priors, pumped_kappa_m_err, pumped_mode
from experiments.transduction.pump import (
    check_wavelength,
    duty_cycle,
    finish,
    on_chip_peak_w,
    on_chip_rel_err,
    on_grid,
    operating_laser_power,
    pump_setpoint,
    start_pump,
)
from experiments.transduction.pump_detuning import measure_pump_detuning
from experiments.transduction.tuning import untuned_mismatch
from experiments.transduction.vna import Vna, Window
from hil.analysis.bandwidth import fit_conversion_spectrum, fwhm
from hil.analysis.checks import agree, flag_all, residual_structure
from hil.experiment import step
from hil.plotting import save_series_plot
from hil.results import FitError, Result

STEP = "conversion_bandwidth"


@step(needs=("optical_resonance", "microwave_resonance", "pump_calibration"), valid_for_s=3600)
def conversion_bandwidth(
        lab, run, *,
        pump_power_w: Annotated[float, PUMP_POWER] = 0.0,
        search_span_linewidths: Annotated[float, Param("", (4.0, 1000.0), "Search window, in "
                                                       "microwave linewidths")] = 20.0,
        search_points: Annotated[int, Param("", (21, 20001), "Points of the search trace")] = 201,
        search_averages: Annotated[int, Param("", (1, 10_000), "VNA sweeps averaged for the "
                                              "search trace (it only places the fine window)")] = 1,
        fine_span_widths: Annotated[float, Param("", (1.5, 50.0), "Fine window, in rough "
                                                 "conversion widths")] = 4.0,
        points: Annotated[int, Param("", (21, 20001), "Points of the fine trace")] = 201,
        if_bandwidth_hz: Annotated[float, VNA_IF_BANDWIDTH] = 10.0,
        vna_power_dbm: Annotated[float, VNA_POWER] = 0.0,
        averages: Annotated[int, VNA_AVERAGES] = 4,
        monitor_averages: Annotated[int, MONITOR_AVERAGES] = 10) -> dict[str, Result]:
    """FWHM of the conversion spectrum |S21|^2 at ``pump_power_w`` (laser output, W; 0 = the
    laser's maximum on this station)."""
    priors = load_priors(run)
    duty = duty_cycle(STEP, lab)
    laser = lab.pump
    power = operating_laser_power(run, STEP, laser, pump_power_w)
    vna = Vna(STEP, lab.vna, if_bandwidth_hz=if_bandwidth_hz, power_dbm=vna_power_dbm,
              averages=averages)
    f_m = priors.f_m_hz
    # The window from the expected width kappa_m (1 + C), C scaled from the bidirectional
    # calibration's to this power (0 when this run has none).
    expected_c = _expected_cooperativity(run, power)
    search = Window.around("frequency", f_m, search_span_linewidths * priors.rates.kappa_m_hz
                           * (1 + expected_c), search_points)
    vna.check_window(search, "search_span_linewidths")
    wavelength = on_grid(laser, priors.pump_wavelength_m)
    check_wavelength(STEP, lab, wavelength)

    # -- the lab -------------------------------------------------------------------------------
    start_pump(lab, wavelength, power, monitor_averages)
    pump = measure_pump_detuning(lab, run, STEP, priors, wavelength, power)
    vna.setup()
    vna.set_averages(search_averages)
    rough_data = run.sweep(f"{STEP}_search", pump_setpoint(lab), [power],
                           {"monitor_power": lab.monitor.power, **vna.traces(search, "S21", "s21")},
                           description="conversion bandwidth: search")
    try:
        rough = fwhm(search.frequencies(), rough_data["s21"][0] ** 2)
    except FitError as exc:
        finish(lab)
        raise FitError(f"{STEP}: no conversion peak within ±{search.span_hz / 2e6:.3g} MHz of f_m "
                       f"({exc}); widen {STEP}.search_span_linewidths") from None
    fine = Window.around("frequency", rough.center, fine_span_widths * rough.fwhm, points)
    vna.check_window(fine, "fine_span_widths")
    vna.set_averages(averages)
    data = run.sweep(STEP, pump_setpoint(lab), [power],
                     {"monitor_power": lab.monitor.power, **vna.traces(fine, "S21", "s21")},
                     description="conversion bandwidth")
    finish(lab)

    # -- analysis ------------------------------------------------------------------------------
    freqs = fine.frequencies()
    power_trace = data["s21"][0] ** 2
    width = fwhm(freqs, power_trace)
    chip_w = float(on_chip_peak_w(data["monitor_power"][0], priors.chip_per_monitor, duty))
    mode = pumped_mode(run, priors, chip_w)

    def fitted(pr, detuning, kappa_m_excess_hz=0.0):
        moved = pumped_mode(run, pr, chip_w)
        rates = replace(moved.rates, kappa_m_hz=moved.rates.kappa_m_hz + kappa_m_excess_hz)
        return fit_conversion_spectrum(freqs - pr.f_m_hz, power_trace, rates,
                                       -detuning, moved.delta_m_hz)

    def values(fit):
        return {"bandwidth_hz": fit.fwhm, "cooperativity": fit.cooperativity}

    try:
        model = fitted(priors, pump.detuning_hz)
        # the linewidths', f_m's, the detuning's and the pumped kappa_m's errors (the pump law's
        # at this power) move the model the spectrum is fitted with
        law_err = pumped_kappa_m_err(run, chip_w)
        shares = prior_shares(lambda pr, d: values(fitted(pr, d)), priors, pump, values(model), {
            "pump law": lambda: values(fitted(priors, pump.detuning_hz, law_err))} if law_err else None)
    except FitError as exc:
        raise FitError(f"{STEP}: the conversion spectrum did not fit the model ({exc})") from None
    power_rel, power_doubt = on_chip_rel_err(run, priors.rel_err, monitor_averages)
    results = {
        "bandwidth_hz": Result(model.fwhm, "Hz", shares.widened("bandwidth_hz", model.fwhm_err)),
        "bandwidth_crossings_hz": Result(width.fwhm, "Hz", width.fwhm_err),
        "cooperativity": Result(model.cooperativity, "",
                                shares.widened("cooperativity", model.cooperativity_err)),
        "center_offset_hz": Result(width.center - f_m, "Hz", width.fwhm_err / 2),
        "pump_power_w": Result(chip_w, "W", chip_w * power_rel),
        "pump_detuning_hz": Result(pump.detuning_hz, "Hz", pump.detuning_err),
    }
    # The model's width and the crossings' agree unless the shape is not the model's (then the
    # linewidths or the detuning it was built from are wrong); the residuals must be noise.
    flag_all(results, ("bandwidth_hz", "cooperativity"),
             residual_structure(model.residuals, "conversion spectrum fit (a triple-resonance "
                                "mismatch or a wrong pump detuning moves the peak)"),
             agree(width.fwhm, width.fwhm_err, model.fwhm, model.fwhm_err,
                   "bandwidth between the half-maximum crossings vs the model's", rel_tol=0.1),
             priors.doubt(*LINEWIDTHS), mode.suspect)
    flag_all(results, ("pump_power_w",), priors.doubt("chip_per_monitor"), power_doubt)
    flag_all(results, ("bandwidth_hz", "cooperativity"), shares.doubt())
    flag_all(results, ("bandwidth_hz",), untuned_mismatch(run))
    run.record_results(STEP, results)

    norm = width.peak
    offsets = (freqs - f_m) / 1e6
    save_series_plot(
        run.plot_path(STEP),
        [(offsets, power_trace / norm, ".", "|S21|² / max"),
         (np.array([width.left, width.right]) / 1e6 - f_m / 1e6, [0.5, 0.5], "-",
          "half maximum")],
        xlabel=f"probe offset from f_m = {f_m / 1e9:.6f} GHz (MHz)", ylabel="|S21|² (normalised)",
        title="Conversion bandwidth",
        note=(f"FWHM/2π = {width.fwhm / 1e6:.4f} ± {width.fwhm_err / 1e6:.4f} MHz\n"
              f"κm/2π = {mode.rates.kappa_m_hz / 1e6:.3f} MHz under the pump\n"
              f"P_chip = {chip_w * 1e3:.4g} mW peak"))
    return results


def _expected_cooperativity(run, laser_w: float) -> float:
    """C at ``laser_w`` from the bidirectional calibration's C at its own laser power (C is
    proportional to the pump power), or 0 when this run has none."""
    point = run.results.get("bidirectional", {})
    if "cooperativity" not in point or "laser_power_w" not in point:
        return 0.0
    return point["cooperativity"].value * laser_w / point["laser_power_w"].value
