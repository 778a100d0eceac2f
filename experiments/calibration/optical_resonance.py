"""Optical resonance: find the pump mode and fit its centre, linewidth and coupling (physics.md §3b).

Coarse search across ``search_span_m`` at the laser's finest step, then a fine sweep of
``fine_span_linewidths`` linewidths around the dip with more averaging, fitted with the
Lorentzian of physics.md §1.1 in optical frequency.
"""

from __future__ import annotations

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT

from hil.analysis.lorentzian import fit_dip
from hil.calibration import calibration
from hil.plotting import save_fit_plot
from hil.results import FitError, Result

LASER_STEP_M = 0.1e-12  # 0.1 pm: the finest wavelength step a C-band ECL takes reliably


@calibration(valid_for_s=3600)
def optical_resonance(lab, run, *, center_m: float = 1550.0e-9, search_span_m: float = 0.2e-9,
                      step_m: float = LASER_STEP_M, power_w: float = 1e-4,
                      fine_span_linewidths: float = 12.0, fine_averages: int = 10
                      ) -> dict[str, Result]:
    """Find the optical (pump) resonance; fit wavelength, linewidth and external rate."""
    _check(search_span_m > 0, f"search_span_m must be > 0 m, got {search_span_m}")
    _check(step_m >= LASER_STEP_M, f"step_m must be >= {LASER_STEP_M} m (0.1 pm), got {step_m}")
    _check(search_span_m / step_m <= 200_000,
           f"search_span_m / step_m gives {search_span_m / step_m:.0f} points; at most 200000")
    _check(fine_span_linewidths >= 4, f"fine_span_linewidths must be >= 4, got "
                                      f"{fine_span_linewidths}")
    laser, meter = lab.pump, lab.meter

    meter.wavelength(center_m)
    meter.averages(1)
    laser.power(power_w)
    laser.wavelength(center_m - search_span_m / 2)
    laser.enable_output()

    coarse_m = _grid(center_m - search_span_m / 2, center_m + search_span_m / 2, step_m)
    coarse = run.sweep("optical_resonance_search", laser.wavelength, coarse_m,
                       {"power": meter.power}, description="optical search")
    i_min = int(np.argmin(coarse["power"]))
    try:
        rough = fit_dip(SPEED_OF_LIGHT / coarse_m, coarse["power"])
    except FitError as exc:
        raise FitError(f"no optical resonance between {coarse_m[0] * 1e9:.4f} and "
                       f"{coarse_m[-1] * 1e9:.4f} nm ({exc}); move optical_resonance.center_m "
                       "or widen optical_resonance.search_span_m") from None

    lam_min = coarse_m[i_min]
    half_span_m = max(fine_span_linewidths * rough.fwhm * lam_min ** 2 / SPEED_OF_LIGHT / 2,
                      10 * step_m)
    fine_m = _grid(lam_min - half_span_m, lam_min + half_span_m, step_m)
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
    }
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


def _grid(start: float, stop: float, step: float) -> np.ndarray:
    """Wavelengths from start to stop on the laser's own 0.1 pm grid, so none is rounded away."""
    first = round(start / LASER_STEP_M)
    stride = max(round(step / LASER_STEP_M), 1)
    count = int((stop - start) / (stride * LASER_STEP_M)) + 1
    return (first + stride * np.arange(count)) * LASER_STEP_M


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"optical_resonance: {message}")
