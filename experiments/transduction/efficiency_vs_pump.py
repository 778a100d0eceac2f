"""Conversion efficiency vs pump power -> g0, P_C1, eta_max; and the bidirectional calibration
(physics.md §1.3, §1.8, §3 (e)-(f)).

The pump sits on the optical resonance (the laser's nearest 0.1 pm step to it). The leftover
detuning Delta_p (up to half a step, 6 MHz, against kappa_o 25 MHz in Profile A) is measured
from the through port's dip depth at the pump wavelength (see ``measure_pump_detuning``) and
accounted for: C(Delta_p) = C(0)/(1 + 4 Delta_p^2/kappa_p^2), and the signal mode sits at
-Delta_p in the probe's frame (triple resonance assumed: signal mode = pump mode + f_m).

At each log-spaced pump power the VNA takes S21 (M->O), S12 (O->M) and S11 across the microwave
resonance and S11, S22 off resonance, where the device reflects (nearly) fully;
``eta(w) = |S21 S12| / |S11 S22|`` is then the on-chip conversion spectrum with every path gain
divided out. Each spectrum and the reflection beside it give C (amplitude at low C, shape near
and above C = 1, where 4C/(1 + C)^2 is flat) and the microwave mode as that pump leaves it: the
absorbed pump raises its loss and lowers its frequency (physics.md §1.2;
:mod:`hil.analysis.pumped_mode`), so kappa_m and f_m are measured at every power and their
power law ``kappa_m,0 + b_k P^gamma``, ``f_m - b_f P^gamma`` is recorded for the later steps.
The monitor tap gives the on-chip peak power P; ``C kappa_m(P) / kappa_m,0 = k L P`` (C with the
pump-off linewidth, whose growth with P the loss does not bend) through the origin gives
``P_C1 = 1/k`` (the pump at C = 1 for the pump-off linewidth) and
``g0 = sqrt(k kappa_o kappa_m / (4 n_p/P))`` with
``n_p/P = 4 kappa_ex / (hbar w kappa^2)`` in rad/s (physics.md §1.1). ``eta_max = eta_o eta_m``
(the efficiency at C = 1) comes from the resonance steps' linewidths.

The sweep's top (unless ``power_max_w`` says otherwise) comes from probes, never from the
laser's maximum by default: conversion spectra from the laser's low end up, 8x at a time, until
C is measurable (0.05) or the middle of the range (log scale) is reached, give C at a probe,
so the laser power at C = ``c_top`` is ``c_top P_probe / C_probe`` (C is linear in the pump,
physics.md §1.3); and with a cryostat, the mixing chamber settled
under the probe's average load gives the pump power at which it would reach ``fridge_fraction``
of the station's mixing-chamber interlock (``T^2 - T0^2`` grows linearly with the absorbed
power, physics.md §1.6 item 6). The top is the smallest of the two and the laser's maximum;
an event says which bound it.

At the operating power (unless ``operating_power_w`` says otherwise: the laser power at C = 1
from the sweep's own P_C1, within the laser's range on this station, never its maximum by
default) the four traces are taken again with more averaging and recorded as the
step ``bidirectional``, whose ``eta_total`` is eta at the microwave resonance frequency.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated

import numpy as np

from experiments.transduction.coupling import (
    OVER,
    correct_optical_resonance,
    extrapolated,
    resolve_coupling,
)
from experiments.transduction.params import (
    CONVERSION_POINTS,
    CONVERSION_SPAN,
    LASER_POWER,
    MONITOR_AVERAGES,
    POWER_MAX,
    POWER_MIN,
    POWER_ORDER,
    POWERS,
    REFERENCE_OFFSET,
    REFERENCE_POINTS,
    VNA_AVERAGES,
    VNA_IF_BANDWIDTH,
    VNA_POWER,
    Param,
)
from experiments.transduction.prior_errors import prior_shares
from experiments.transduction.priors import LINEWIDTHS, PUMP_LAW, eta_max_with_error, load_priors
from experiments.transduction.pump import (
    MONITOR_NOISE,
    MONITOR_NOISE_UNKNOWN,
    check_wavelength,
    duty_cycle,
    finish,
    laser_powers,
    on_chip_peak_w,
    on_grid,
    on_power_grid,
    one_laser_power,
    power_for_c1,
    power_range_w,
    pump_setpoint,
    start_pump,
)
from experiments.transduction.pump_detuning import measure_pump_detuning
from experiments.transduction.tuning import untuned_mismatch
from experiments.transduction.vna import conversion_measured, conversion_spectra, conversion_windows
from hil.analysis.checks import SIGMAS, agree, fit_quality, flag_all, not_above, runs_z
from hil.analysis.efficiency import fit_slope, reading_scatter
from hil.analysis.pumped_mode import fit_pump_dependence
from hil.analysis.transducer import conversion_efficiency, g0_from_cooperativity_slope
from hil.experiment import step
from hil.plotting import save_series_plot
from hil.results import FitError, Result
from hil.settle import interlock_ceiling

STEP = "efficiency_vs_pump"
BIDIRECTIONAL = "bidirectional"
PROBE_STEP = 8.0  # the probes' power ratio
PROBE_C = 0.05  # a probe's C this high is measured well enough to scale from


@step(needs=("optical_resonance", "microwave_resonance", "pump_calibration"), valid_for_s=3600,
      checks=(POWER_ORDER,))
def efficiency_vs_pump(
        lab, run, *,
        powers: Annotated[int, POWERS] = 12,
        power_min_w: Annotated[float, POWER_MIN] = 0.0,
        power_max_w: Annotated[float, POWER_MAX] = 0.0,
        operating_power_w: Annotated[float, LASER_POWER(
            "Laser power of the bidirectional calibration",
            zero="C = 1 from the sweep, within the laser's range")] = 0.0,
        span_linewidths: Annotated[float, CONVERSION_SPAN] = 6.0,
        points: Annotated[int, CONVERSION_POINTS] = 101,
        reference_offset_hz: Annotated[float, REFERENCE_OFFSET] = 0.0,
        reference_points: Annotated[int, REFERENCE_POINTS] = 21,
        if_bandwidth_hz: Annotated[float, VNA_IF_BANDWIDTH] = 10.0,
        vna_power_dbm: Annotated[float, VNA_POWER] = 0.0,
        averages: Annotated[int, VNA_AVERAGES] = 1,
        c_top: Annotated[float, Param("", (1.0, 1000.0), "The sweep reaches this cooperativity "
                                      "(from a probe) when the laser and fridge allow")] = 3.0,
        fridge_fraction: Annotated[float, Param("", (0.0, 1.0), "The sweep's top keeps the mixing "
                                                "chamber below this fraction of its interlock",
                                                zero="no thermal bound")] = 0.8,
        operating_averages: Annotated[int, Param("", (1, 10_000), "VNA sweeps averaged at the "
                                                 "operating power")] = 4,
        monitor_averages: Annotated[int, MONITOR_AVERAGES] = 10) -> dict[str, Result]:
    """Efficiency vs pump power: g0, P_C1, eta_max; bidirectional eta_total at the operating power.

    Returns this step's results; ``eta_total`` (with the operating point's on-chip power and C)
    is recorded as the step ``bidirectional`` (``run.results["bidirectional"]``).

    Laser powers (W, output of the laser): ``powers`` log-spaced from ``power_min_w`` to
    ``power_max_w`` (0 = the laser's bound on this station). VNA: ``points`` over
    ``span_linewidths`` microwave linewidths around f_m; references over ``reference_points``
    at ``reference_offset_hz`` above f_m (0 = 20 times the larger linewidth).
    """
    priors = load_priors(run)
    duty = duty_cycle(STEP, lab)
    laser = lab.pump
    rates = priors.rates
    vna, main, reference = conversion_windows(
        STEP, lab, priors, span_linewidths=span_linewidths, points=points,
        reference_offset_hz=reference_offset_hz, reference_points=reference_points,
        if_bandwidth_hz=if_bandwidth_hz, vna_power_dbm=vna_power_dbm, averages=averages)
    wavelength = on_grid(laser, priors.pump_wavelength_m)
    check_wavelength(STEP, lab, wavelength)

    # -- the lab -------------------------------------------------------------------------------
    low_w = laser_powers(laser, 1, 0.0, power_min_w or power_range_w(laser)[0])[0]
    start_pump(lab, wavelength, float(low_w), monitor_averages)
    pump = measure_pump_detuning(lab, run, STEP, priors, wavelength, float(low_w))
    delta_p, factor = pump.detuning_hz, pump.factor
    run.event("pump", f"{STEP}: pump at {wavelength * 1e9:.4f} nm, Delta_p/2pi = {delta_p / 1e6:+.3f} "
                      f"MHz from the dip depth ({pump.from_wavelengths_hz / 1e6:+.3f} MHz from the "
                      f"wavelengths), C factor {factor:.4f}")
    vna.setup()
    top_w = power_max_w or _sweep_top(run, lab, vna, main, reference, priors, delta_p, c_top,
                                      fridge_fraction)
    planned = laser_powers(laser, powers, power_min_w, top_w)
    setpoint = pump_setpoint(lab)
    data = run.sweep(STEP, setpoint, planned,
                     {"monitor_power": lab.monitor.power, **conversion_measured(vna, main, reference)},
                     description="efficiency vs pump power")
    # The microwave mode as each pump leaves it: S11 across the resonance at the same powers
    # (a pass of its own, so the conversion traces are taken as without it).
    data["s11"] = run.sweep(f"{STEP}_reflection", pump_setpoint(lab), planned,
                            vna.traces(main, "S11", "s11"),
                            description="microwave reflection under the pump")["s11"]

    # -- analysis ------------------------------------------------------------------------------
    chip_w = on_chip_peak_w(data["monitor_power"], priors.chip_per_monitor, duty)
    # The optical root is chosen with the pump-off microwave mode (a free pumped mode could
    # absorb the wrong root's eta_o); then the pumped mode is fitted with the chosen root.
    conversion = {name: trace for name, trace in data.items() if name != "s11"}
    # the monitor's reading scatter: an error of the sweep's x, not of its C (unknown, and left
    # out, with fewer than 3 powers)
    monitor_scatter = reading_scatter(data["monitor_power"], planned)
    monitor_rel = monitor_scatter if math.isfinite(monitor_scatter) else 0.0
    regime = resolve_coupling(priors, lambda p: _cooperativity_slope(
        conversion_spectra(conversion, main, reference, p, delta_p), chip_w * factor, monitor_rel))
    if regime.changed:
        run.event("coupling", f"{STEP}: {regime.note}")
        correct_optical_resonance(run, regime)
    priors = regime.priors
    spectra, slope = _cooperativity_slope(conversion_spectra(data, main, reference, priors, delta_p),
                                          chip_w * factor, monitor_rel)
    law, law_doubt = _pump_law(run, chip_w, spectra, lambda pr, d: conversion_spectra(
        data, main, reference, pr, d, seeds=spectra), priors, pump)
    k = slope.slope
    k_rel = math.hypot(slope.stderr / k, pump.factor_err / factor,
                       priors.rel_err.get("chip_per_monitor", 0.0))
    r = priors.rel_err
    rates = priors.rates
    g0 = g0_from_cooperativity_slope(k, rates, priors.pump_frequency_hz)
    g0_rel = 0.5 * math.sqrt(k_rel ** 2 + 9 * r["kappa_o_hz"] ** 2 + r["kappa_m_hz"] ** 2
                             + r["kappa_o_ex_hz"] ** 2 + r["wavelength_m"] ** 2)
    eta_max, eta_max_err = eta_max_with_error(priors)
    c_reached = float(max(p.cooperativity for p in spectra))
    results = {
        "g0_hz": Result(g0, "Hz", g0 * g0_rel),
        "p_c1_w": Result(1 / k, "W", k_rel / k),
        "eta_max": Result(eta_max, "", eta_max_err),
        "kappa_o_ex_hz": Result(rates.kappa_o_ex_hz, "Hz",
                                rates.kappa_o_ex_hz * r["kappa_o_ex_hz"]),
        "optical_over_coupled": Result(1.0 if regime.verdict.chosen == OVER else 0.0, ""),
        "pump_detuning_hz": Result(delta_p, "Hz", pump.detuning_err),
        "c_fit_chi2_reduced": Result(slope.chi2_reduced, "", None),
        "c_reached": Result(c_reached, ""),
        "eta_max_extrapolated": Result(extrapolated(c_reached), ""),
    }
    if math.isfinite(monitor_scatter):
        results[MONITOR_NOISE] = Result(monitor_scatter * math.sqrt(monitor_averages), "")
    if law is not None:
        results.update({
            "kappa_m_pump_loss_hz": Result(law.loss_hz, "Hz", law.loss_err),
            "f_m_pump_shift_hz": Result(law.shift_hz, "Hz", law.shift_err),
            "pump_loss_exponent": Result(law.exponent, "", _finite(law.exponent_err)),
        })

    dof = max(len(spectra) - 1, 1)
    flag_all(results, ("g0_hz", "p_c1_w"), fit_quality(slope.chi2_reduced, dof, "C = P / P_C1"),
             spectrum_shape(spectra))
    flag_all(results, ("g0_hz", "p_c1_w", "eta_max", "kappa_o_ex_hz"),
             regime.verdict.reason("optical coupling regime (dip depth alone is symmetric in "
                                   "kappa_o_ex <-> kappa_o_0)"))
    flag_all(results, ("g0_hz", "p_c1_w"), priors.doubt(), untuned_mismatch(run))
    if law is not None:
        flag_all(results, PUMP_LAW, fit_quality(law.chi2_reduced, max(2 * len(spectra) - 5, 1),
                                                "kappa_m, f_m = pump-off + b P^gamma"),
                 priors.doubt("kappa_m_hz", "kappa_m_ex_hz"), law_doubt)
    flag_all(results, ("eta_max",), priors.doubt(*LINEWIDTHS))
    run.record_results(STEP, results)

    eta_f_m = np.array([p.eta_at_f_m() for p in spectra])
    dense = np.geomspace(chip_w.min() / 2, chip_w.max() * 2, 200)
    model = conversion_efficiency(0.0, k * factor * dense, rates, -delta_p)
    save_series_plot(
        run.plot_path(STEP),
        [(chip_w, eta_f_m[:, 0], eta_f_m[:, 1], "o", "eta at f_m, |S21 S12|/|S11 S22|"),
         (dense, model, "-", "model, C = P / P_C1 (with Delta_p)")],
        xlabel="on-chip peak pump power (W)", ylabel="on-chip efficiency", title="Efficiency vs pump",
        xscale="log", yscale="log",
        note=(f"P_C1 = {1 / k:.4g} ± {k_rel / k:.2g} W\n"
              f"g0/2π = {g0:.4g} ± {g0 * g0_rel:.2g} Hz\n"
              f"η_max = ηoηm = {eta_max:.4f} ± {eta_max_err:.4f}\n"
              f"Δp/2π = {delta_p / 1e6:+.2f} MHz"))

    # -- the bidirectional calibration at the operating power --------------------------------
    operating = (one_laser_power(laser, operating_power_w) if operating_power_w else
                 power_for_c1(run, STEP, laser, planned, chip_w * factor, k, float(planned.max())))
    vna.set_averages(operating_averages)
    point = run.sweep(BIDIRECTIONAL, pump_setpoint(lab), [operating],
                      {"monitor_power": lab.monitor.power, **conversion_measured(vna, main, reference,
                                                                             pumped_mode=True)},
                      description="bidirectional calibration")
    finish(lab)
    def at_operating_point(pr, detuning):
        spectrum = conversion_spectra(point, main, reference, pr, detuning)[0]
        if spectrum.mode is None:  # S11 was taken with it (pumped_mode=True): never expected
            raise FitError(f"{BIDIRECTIONAL}: no pumped-mode fit at the operating power")
        return spectrum, {"eta_total": spectrum.eta_at_f_m()[0], "cooperativity": spectrum.cooperativity,
                          "kappa_m_hz": spectrum.mode.rates.kappa_m_hz,
                          "f_m_hz": pr.f_m_hz + spectrum.mode.delta_m_hz}

    spectrum, values = at_operating_point(priors, delta_p)
    assert spectrum.mode is not None  # (at_operating_point says so)
    eta_total_fit_err = spectrum.eta_at_f_m()[1]
    # every value also carries the linewidths', f_m's and the pump detuning's errors
    shares = prior_shares(lambda pr, d: at_operating_point(pr, d)[1], priors, pump, values)
    operating_chip_w = float(on_chip_peak_w(point["monitor_power"][0], priors.chip_per_monitor, duty))
    bidirectional = {
        "eta_total": Result(values["eta_total"], "", shares.widened("eta_total", eta_total_fit_err)),
        "pump_power_w": Result(operating_chip_w, "W", operating_chip_w * math.hypot(
            priors.rel_err.get("chip_per_monitor", 0.0), monitor_rel)),
        "cooperativity": Result(spectrum.cooperativity, "",
                                shares.widened("cooperativity", spectrum.cooperativity_err)),
        "laser_power_w": Result(float(operating), "W"),
        # the microwave mode as this pump leaves it (pump-induced loss and shift, §1.2)
        "kappa_m_hz": Result(values["kappa_m_hz"], "Hz",
                             shares.widened("kappa_m_hz", spectrum.mode.kappa_m_err)),
        "f_m_hz": Result(values["f_m_hz"], "Hz", shares.widened("f_m_hz", spectrum.mode.delta_m_err)),
    }
    eta_total, eta_total_err = bidirectional["eta_total"].value, bidirectional["eta_total"].stderr
    # The physics across steps: eta_total <= eta_max (4C/(1+C)^2 <= 1), and the C of this
    # spectrum against the C the sweep's slope predicts at this pump power (physics.md §1.3).
    predicted_c = k * factor * operating_chip_w
    c_rest, c_rest_err = spectrum.cooperativity_rest
    flag_all(bidirectional, ("eta_total",), not_above(
        eta_total, eta_total_err, eta_max, eta_max_err, "eta_total", "eta_max = eta_o eta_m"))
    flag_all(bidirectional, ("cooperativity",), agree(
        c_rest, c_rest_err, predicted_c, predicted_c * k_rel,
        "C (with the pump-off kappa_m) at the operating power vs C = P / P_C1 from the sweep"))
    flag_all(bidirectional, ("pump_power_w",), priors.doubt("chip_per_monitor"),
             None if math.isfinite(monitor_scatter) else MONITOR_NOISE_UNKNOWN)
    flag_all(bidirectional, ("cooperativity",), priors.doubt(*LINEWIDTHS))
    flag_all(bidirectional, ("eta_total", "cooperativity", "kappa_m_hz", "f_m_hz"), shares.doubt())
    run.record_results(BIDIRECTIONAL, bidirectional)
    offsets_mhz = spectrum.offsets_hz / 1e6
    save_series_plot(
        run.plot_path(BIDIRECTIONAL),
        [(offsets_mhz, spectrum.eta, ".", "|S21 S12| / |S11 S22|"),
         (offsets_mhz, spectrum.fit.model(spectrum.offsets_hz), "-",
          f"model, C = {spectrum.cooperativity:.3f}")],
        xlabel=f"probe offset from f_m = {priors.f_m_hz / 1e9:.6f} GHz (MHz)",
        ylabel="on-chip efficiency", title="Bidirectional calibration",
        note=(f"η_tot(f_m) = {eta_total:.4f} ± {eta_total_err:.4f}\n"
              f"P_chip = {operating_chip_w * 1e3:.4g} mW peak"))
    return results


def _sweep_top(run, lab, vna, main, reference, priors, delta_p: float, c_top: float,
               fridge_fraction: float) -> float:
    """The sweep's highest laser power: C = ``c_top`` from a probe, within the fridge's and the
    laser's limits (see the module docs)."""
    laser = lab.pump
    low, high = power_range_w(laser)
    measured = dict(conversion_measured(vna, main, reference))
    cryostat = lab.roles.get("cryostat")
    ceiling = interlock_ceiling(lab)
    thermal = cryostat is not None and ceiling is not None and fridge_fraction > 0
    base_k = math.nan
    if thermal:
        assert cryostat is not None and ceiling is not None  # (thermal says so)
        base_k = float(cryostat.mxc_temperature.get())
        measured["mxc_temperature"] = cryostat.mxc_temperature
    setpoint = pump_setpoint(lab, 600.0 if thermal else 0.0, settle_window_s=10.0, settle_rel=1e-3)
    bounds = {"the laser's maximum": high}
    # Probes from the laser's low end up, 8x at a time, until C is measurable (>= 0.05), the
    # middle of the range is reached, or the next probe could heat the fridge past its bound.
    probe_w, c_probe, attempt = on_power_grid(laser, low), 0.0, 0
    while True:
        group = f"{STEP}_probe" + (f"{attempt}" if attempt else "")
        data = run.sweep(group, setpoint, [probe_w], measured,
                         description="efficiency: probe for the sweep's top")
        c_probe = conversion_spectra(data, main, reference, priors, delta_p)[0].cooperativity
        if c_probe > 0:
            bounds[f"C = {c_top:g}"] = c_top * probe_w / c_probe
        if thermal and ceiling is not None:
            rise = float(data["mxc_temperature"][0]) ** 2 - base_k ** 2
            limit = (fridge_fraction * ceiling) ** 2 - base_k ** 2
            if rise > 0 and limit > 0:
                bounds[f"the mixing chamber at {fridge_fraction * ceiling * 1e3:.3g} mK"] = (
                    probe_w * limit / rise)
        if (c_probe >= PROBE_C or PROBE_STEP * probe_w > min(bounds.values())
                or probe_w >= math.sqrt(low * high)):
            break
        probe_w = on_power_grid(laser, probe_w * PROBE_STEP)
        attempt += 1
    why = min(bounds, key=lambda name: bounds[name])
    top = max(min(bounds.values()), low)
    run.event("operating_point", f"{STEP}: probe at {probe_w * 1e3:.4g} mW: C = {c_probe:.3g}; "
                                 f"sweep up to {top * 1e3:.4g} mW ({why})")
    return top


def spectrum_shape(spectra) -> str | None:
    """The conversion spectra's residuals against the model, over the whole sweep: structure in
    most of them (median runs-test z) means the spectrum is not where or how the model puts it."""
    z = float(np.median([runs_z(np.sqrt(np.clip(p.eta, 0, None)) - np.sqrt(p.fit.model(p.offsets_hz)))
                         for p in spectra]))
    if z < -SIGMAS:
        return (f"conversion spectra: the residuals keep their sign over long stretches (median "
                f"runs-test z = {z:.1f}); the line shape is not the model's (a triple-resonance "
                "mismatch, signal mode != pump mode + f_m, or a wrong pump detuning shifts the peak)")
    return None


def _cooperativity_slope(spectra, pump_w, pump_rel_err: float):
    """The spectra's C with the pump-off linewidth (``C kappa_m(P) / kappa_m,0``, which the
    pump's loss on the microwave mode does not bend) against the on-chip pump (times the
    detuning factor): C = k P. ``pump_rel_err``: the monitor readings' relative scatter; at
    high C the spectra know C better than the monitor knows P."""
    coop, coop_err = np.array([p.cooperativity_rest for p in spectra]).T
    return spectra, fit_slope(pump_w, coop, coop_err, pump_rel_err)


def _pump_law(run, chip_w, spectra, spectra_at, priors, pump):
    """The power law of the pumped microwave mode over the sweep (physics.md §1.2) and why its
    errors may be short (or None), or (None, None) with an event when the sweep has too few
    powers to fit it (later steps then assume the pump-off mode).

    Every power's fit takes the linewidths, f_m and the pump detuning as given, so an error in
    one of them moves all of them together (the conversion's share of S11 grows with C): a
    common-mode error no single fit nor the law's chi-square sees. Each one's share is found by
    refitting the sweep with it moved by its error (``spectra_at(priors, detuning)``,
    :mod:`experiments.transduction.prior_errors`) and added to the law's own errors."""
    def law_of(fits):
        return fit_pump_dependence(chip_w, *np.array([
            (p.mode.rates.kappa_m_hz, p.mode.kappa_m_err, p.mode.delta_m_hz, p.mode.delta_m_err)
            for p in fits]).T)

    def coefficients(law):
        return {"loss": law.loss_hz, "shift": law.shift_hz}

    try:
        law = law_of(spectra)
        shares = prior_shares(lambda pr, d: coefficients(law_of(spectra_at(pr, d))), priors, pump,
                              coefficients(law))
    except FitError as exc:
        run.event("pumped_mode", f"{STEP}: the pump's effect on the microwave mode is not measured "
                                 f"({exc}); later steps assume the pump-off kappa_m and f_m")
        return None, None
    fit_loss_err = law.loss_err
    law = replace(law, loss_err=shares.widened("loss", law.loss_err),
                  shift_err=shares.widened("shift", law.shift_err))
    run.event("pumped_mode", f"{STEP}: under the pump kappa_m rises by {law.loss_hz / 1e3:.4g} kHz "
                             f"and f_m falls by {law.shift_hz / 1e3:.4g} kHz per W^{law.exponent:.2f} "
                             f"on chip (physics.md §1.2); the rise's error "
                             f"{100 * law.loss_err / abs(law.loss_hz):.2g} %: the fit "
                             f"{100 * fit_loss_err / abs(law.loss_hz):.2g} %, "
                             f"{shares.describe('loss', law.loss_hz)}")
    return law, shares.doubt()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
