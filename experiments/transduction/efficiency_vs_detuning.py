"""Conversion vs pump detuning -> the pump mode's linewidth kappa_p (physics.md §1.3, §3 (e)).

At a fixed pump power the laser steps across the pump mode, ``half_span_linewidths`` optical
linewidths either side of the optical resonance. At each wavelength the VNA takes the four
traces of the bidirectional calibration (physics.md §1.8); each calibrated conversion spectrum
gives C, with the converted sideband's signal mode at -Delta_p in the probe's frame. The pump's
intracavity photon number follows the pump mode, so
``C(Delta_p) = C0 / (1 + 4 (Delta_p - Delta_0)^2 / kappa_p^2)`` gives kappa_p (the optical
linewidth as the pump sees it) and Delta_0, the mode's offset from the optical resonance step's
centre (the spectra are fitted again with the signal mode placed by it until it settles).

The laser steps on a 0.1 pm grid (~12.5 MHz at 1550 nm): for a 25 MHz wide mode that is only
about four points per linewidth, so the sweep takes every grid step there and the fit has few
points to work with; wider modes are sampled with ``max_points`` at coarser (whole) steps.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT

from experiments.transduction.params import (
    CONVERSION_POINTS,
    CONVERSION_SPAN,
    MONITOR_AVERAGES,
    PUMP_POWER,
    REFERENCE_OFFSET,
    REFERENCE_POINTS,
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
    operating_laser_power,
    start_pump,
)
from experiments.transduction.vna import conversion_measured, conversion_spectra, conversion_windows
from hil.analysis.detuning import fit_detuning
from hil.experiment import step
from hil.plotting import save_series_plot
from hil.results import Result

STEP = "efficiency_vs_detuning"


@step(needs=("optical_resonance", "microwave_resonance"), valid_for_s=3600)
def efficiency_vs_detuning(
        lab, run, *,
        pump_power_w: Annotated[float, PUMP_POWER] = 0.0,
        half_span_linewidths: Annotated[float, Param("", (0.5, 20.0), "Detuning span either "
                                                     "side, in optical linewidths")] = 2.0,
        max_points: Annotated[int, Param("", (5, 401), "Most laser wavelengths")] = 21,
        span_linewidths: Annotated[float, CONVERSION_SPAN] = 6.0,
        points: Annotated[int, CONVERSION_POINTS] = 101,
        reference_offset_hz: Annotated[float, REFERENCE_OFFSET] = 0.0,
        reference_points: Annotated[int, REFERENCE_POINTS] = 21,
        if_bandwidth_hz: Annotated[float, VNA_IF_BANDWIDTH] = 10.0,
        vna_power_dbm: Annotated[float, VNA_POWER] = 0.0,
        averages: Annotated[int, VNA_AVERAGES] = 1,
        monitor_averages: Annotated[int, MONITOR_AVERAGES] = 10) -> dict[str, Result]:
    """C vs pump detuning at fixed power: kappa_p, C0 and the pump mode's offset Delta_0.

    ``pump_power_w``: laser output (W; 0 = the laser's maximum on this station). The laser
    steps over +-``half_span_linewidths`` optical linewidths, on its 0.1 pm grid, at most
    ``max_points`` wavelengths. VNA settings as in efficiency_vs_pump.
    """
    priors = load_priors(run, pump_calibration=False)
    laser = lab.pump
    power = operating_laser_power(run, STEP, laser, pump_power_w)
    rates = priors.rates
    vna, main, reference = conversion_windows(
        STEP, lab, priors, span_linewidths=span_linewidths, points=points,
        reference_offset_hz=reference_offset_hz, reference_points=reference_points,
        if_bandwidth_hz=if_bandwidth_hz, vna_power_dbm=vna_power_dbm, averages=averages)
    wavelengths = _wavelength_grid(laser, priors.pump_wavelength_m, half_span_linewidths * rates.kappa_o_hz,
                                   max_points)
    for w in (wavelengths[0], wavelengths[-1]):
        check_wavelength(STEP, lab, w)
    if wavelengths.size < 5:
        run.event("note", f"{STEP}: only {wavelengths.size} laser wavelengths across the mode")

    # -- the lab -------------------------------------------------------------------------------
    start_pump(lab, float(wavelengths[0]), power, monitor_averages)
    vna.setup()
    data = run.sweep(STEP, laser.wavelength, wavelengths,
                     {"monitor_power": lab.monitor.power, **conversion_measured(vna, main, reference)},
                     description="efficiency vs pump detuning")
    finish(lab)

    # -- analysis ------------------------------------------------------------------------------
    nominal = SPEED_OF_LIGHT / data["wavelength"] - priors.pump_frequency_hz
    # The mode's centre from the resonance step may be off by a fraction of a linewidth. The
    # C(Delta) fit finds where the mode is (Delta_0) for an assumed centre, but the spectra's C
    # depend on that assumption too (the signal mode sits at -Delta_p); so the centre is solved
    # for self-consistency, Delta_0(shift) = 0, by secant steps.
    starts = None

    def centred(shift: float):
        nonlocal starts
        spectra = conversion_spectra(data, main, reference, priors, nominal - shift, starts)
        starts = [p.cooperativity for p in spectra]
        coop = np.array([p.cooperativity for p in spectra])
        coop_err = np.array([p.cooperativity_err for p in spectra])
        return fit_detuning(nominal - shift, coop, coop_err, kappa_guess_hz=rates.kappa_o_hz), coop, coop_err

    shift, (fit, coop, coop_err) = 0.0, centred(0.0)
    previous = None
    for _ in range(6):
        if abs(fit.center_hz) < max(fit.center_err / 3, 1e-5 * fit.kappa_hz):
            break
        if previous is None or previous[1] == fit.center_hz:
            move = fit.center_hz
        else:
            move = -fit.center_hz * (shift - previous[0]) / (fit.center_hz - previous[1])
        previous = (shift, fit.center_hz)
        shift += move
        fit, coop, coop_err = centred(shift)
    detunings = nominal - shift
    results = {
        "kappa_p_hz": Result(fit.kappa_hz, "Hz", fit.kappa_err),
        "c0": Result(fit.c0, "", fit.c0_err),
        "pump_offset_hz": Result(shift, "Hz", fit.center_err),
        "detuning_points": Result(float(wavelengths.size), "", None),
    }
    run.record_results(STEP, results)

    dense = np.linspace(detunings.min(), detunings.max(), 400)
    save_series_plot(
        run.plot_path(STEP),
        [(detunings / 1e6, coop, coop_err, "o", "C from each conversion spectrum"),
         (dense / 1e6, fit.model(dense), "-", "C0 / (1 + 4(Δ - Δ0)²/κp²)")],
        xlabel="pump detuning Δp/2π from the pump mode (MHz)", ylabel="cooperativity C",
        title="Efficiency vs pump detuning",
        note=(f"κp/2π = {fit.kappa_hz / 1e6:.3f} ± {fit.kappa_err / 1e6:.3f} MHz\n"
              f"C0 = {fit.c0:.4g} ± {fit.c0_err:.2g}\n"
              f"Δ0/2π = {shift / 1e6:+.3f} ± {fit.center_err / 1e6:.3f} MHz\n"
              f"{wavelengths.size} wavelengths (0.1 pm grid)"))
    return results


def _wavelength_grid(laser, center_m: float, half_span_hz: float, max_points: int) -> np.ndarray:
    """Laser wavelengths on its tuning grid covering +-half_span_hz around ``center_m``, in whole
    grid steps, at most ``max_points`` of them, ascending."""
    grid_m = laser.wavelength_step_m
    center = on_grid(laser, center_m)
    step_hz = SPEED_OF_LIGHT * grid_m / center ** 2
    steps_per_point = max(1, math.ceil(2 * half_span_hz / step_hz / (max_points - 1)))
    half = max(1, math.ceil(half_span_hz / (steps_per_point * step_hz)))
    while 2 * half + 1 > max_points:
        half -= 1
    index = np.arange(-half, half + 1) * steps_per_point
    return np.array([on_grid(laser, center + i * grid_m) for i in index])
