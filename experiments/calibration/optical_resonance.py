"""Optical resonance: find the pump mode and fit its centre, linewidth and coupling (physics.md §3b).

Coarse search across ``search_span_m`` on the laser's tuning grid (``step_m``, 0: two of its
finest steps), then a fine sweep of ``fine_span_linewidths`` linewidths around the dip on the
laser's finest step with more averaging, fitted with the Lorentzian of physics.md §1.1 in
optical frequency.

Lab time: each wavelength step costs the laser's settle time, so the search is most of this
step's time. Two grid steps (0.2 pm, 25 MHz at 1550 nm on a 0.1 pm grid) still put a point
within half a step of any mode as wide as the step, where a Lorentzian dip keeps at least
half its depth (physics.md §1.1); the fine sweep then resolves it.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT

from hil.analysis.checks import flag_all, inside, residual_structure
from hil.analysis.lorentzian import fit_dip
from hil.experiment import step
from hil.parameters import Check, Param, role_power_w, role_range, settable_range, within
from hil.plotting import save_fit_plot
from hil.results import FitError, Result


def _laser_steps(capabilities) -> tuple[float, float]:
    """From the laser's tuning grid to a 1 nm step."""
    return capabilities.attribute("pump", "wavelength_step_m"), 1e-9


@step(valid_for_s=3600, checks=(
    Check(lambda p: p["step_m"] == 0 or p["search_span_m"] / p["step_m"] <= 200_000,
          "search_span_m / step_m must give at most 200000 points, got {search_span_m} m / "
          "{step_m} m"),
))
def optical_resonance(
        lab, run, *,
        center_m: Annotated[float, Param("m", role_range("pump", "wavelength"),
                                         "Centre of the search window")] = 1550.0e-9,
        search_span_m: Annotated[float, Param("m", (1e-12, 100e-9), "Width of the search "
                                              "window")] = 0.2e-9,
        step_m: Annotated[float, Param("m", _laser_steps, "Wavelength step of the search",
                                       zero="two of the laser's finest steps")] = 0.0,
        power_w: Annotated[float, Param("W", role_power_w("pump"), "Laser output power")] = 1e-4,
        fine_span_linewidths: Annotated[float, Param("", (4.0, 1000.0), "Fine window, in "
                                                     "linewidths")] = 12.0,
        fine_averages: Annotated[int, Param("", within(role_range("meter", "averages"), 1),
                                            "Readings the meter averages in the fine "
                                            "sweep")] = 10,
        max_widenings: Annotated[int, Param("", (0, 10), "Times the search window may widen "
                                            "4x when it holds no dip")] = 4,
) -> dict[str, Result]:
    """Find the optical (pump) resonance; fit wavelength, linewidth and external rate."""
    laser, meter = lab.pump, lab.meter
    grid_m = laser.wavelength_step_m
    step_m = step_m or 2 * grid_m

    meter.wavelength(center_m)
    meter.averages(1)
    laser.power(power_w)
    laser.wavelength(center_m - search_span_m / 2)
    laser.enable_output()

    # Start at the design window; widen it 4x at a time up to the laser's range until a dip shows.
    low_m, high_m = settable_range(laser.wavelength)
    span_m, attempt = search_span_m, 0
    while True:
        start, stop = max(center_m - span_m / 2, low_m), min(center_m + span_m / 2, high_m)
        coarse_m = _grid(start, stop, step_m, grid_m)
        group = "optical_resonance_search" + (f"_wide{attempt}" if attempt else "")
        coarse = run.sweep(group, laser.wavelength, coarse_m, {"power": meter.power},
                           description="optical search")
        try:
            rough = fit_dip(SPEED_OF_LIGHT / coarse_m, coarse["power"])
            break
        except FitError as exc:
            whole = start <= low_m and stop >= high_m
            if whole or attempt >= max_widenings:
                raise FitError(f"no optical resonance between {coarse_m[0] * 1e9:.4f} and "
                               f"{coarse_m[-1] * 1e9:.4f} nm ({exc}); move "
                               "optical_resonance.center_m or widen "
                               "optical_resonance.search_span_m") from None
            run.event("search", f"optical_resonance: no dip within {coarse_m[0] * 1e9:.4f} .. "
                                f"{coarse_m[-1] * 1e9:.4f} nm; widening the search 4x")
            span_m *= 4
            attempt += 1
    i_min = int(np.argmin(coarse["power"]))

    lam_min = coarse_m[i_min]
    half_span_m = max(fine_span_linewidths * rough.fwhm * lam_min ** 2 / SPEED_OF_LIGHT / 2,
                      10 * grid_m)
    fine_m = _grid(lam_min - half_span_m, lam_min + half_span_m, grid_m, grid_m)
    meter.averages(fine_averages)
    fine = run.sweep("optical_resonance", laser.wavelength, fine_m, {"power": meter.power},
                     description="optical fine sweep")

    freq = SPEED_OF_LIGHT / fine_m
    fit = fit_dip(freq, fine["power"])
    kappa_ex, kappa_ex_err, _, _ = fit.kappa_split()
    wavelength = SPEED_OF_LIGHT / fit.center
    results = {
        "wavelength_m": Result(wavelength, "m", wavelength ** 2 / SPEED_OF_LIGHT * fit.center_err),
        "frequency_hz": Result(fit.center, "Hz", fit.center_err),
        "kappa_o_hz": Result(fit.fwhm, "Hz", fit.fwhm_err),
        "kappa_o_ex_hz": Result(kappa_ex, "Hz", kappa_ex_err),
        "min_transmission": Result(fit.min_transmission, "", fit.depth_err),
        # how the fit's width and depth errors go together: kappa_o_ex is made of both
        "width_depth_correlation": Result(fit.width_depth_corr, ""),
    }
    flag_all(results, tuple(results),
             residual_structure(fine["power"] - fit.model(freq), "optical dip fit"),
             inside(fit.center, freq.min(), freq.max(), "optical resonance frequency", "Hz"))
    run.record_results("optical_resonance", results)

    detuning_mhz = (freq - fit.center) / 1e6
    dense = np.linspace(freq.min(), freq.max(), 600)
    save_fit_plot(
        run.plot_path("optical_resonance"), detuning_mhz, fine["power"] * 1e6,
        (dense - fit.center) / 1e6, fit.model(dense) * 1e6,
        xlabel=f"laser detuning from {fit.center / 1e12:.6f} THz (MHz)",
        ylabel="transmitted power (µW)", title="Optical resonance",
        note=(f"λ0 = {wavelength * 1e9:.5f} nm\n"
              f"κ/2π = {fit.fwhm / 1e6:.2f} ± {fit.fwhm_err / 1e6:.2f} MHz\n"
              f"κex/2π = {kappa_ex / 1e6:.2f} ± {kappa_ex_err / 1e6:.2f} MHz"),
    )
    return results


def _grid(start: float, stop: float, step: float, grid: float) -> np.ndarray:
    """Wavelengths from start to stop on the laser's own grid, so none is rounded away."""
    first = round(start / grid)
    stride = max(round(step / grid), 1)
    count = int((stop - start) / (stride * grid) + 1e-9) + 1  # a whole span is not cut by rounding
    return (first + stride * np.arange(count)) * grid
