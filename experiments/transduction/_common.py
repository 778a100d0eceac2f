"""What the transduction steps share: earlier results, the pump, the VNA windows, parameter checks.

Every step checks its parameters (and finds its prerequisites) before it touches an
instrument: :func:`refuse` raises the ``ValueError`` naming the step, the parameter and the
allowed range. Instruments are addressed by role only.

On-chip pump power. The monitor meter reads the time average of the (possibly pulsed) amplified
pump; the transducer sees the peak. ``pump_calibration.chip_per_monitor`` is taken as the
on-chip power per watt at the monitor tap (the path ratio, what the pump calibration measures
with the pump CW), so the peak on chip is ``monitor / duty x chip_per_monitor`` with the duty
cycle from the station's ``constants: pump_duty_cycle`` (:func:`on_chip_peak_w`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qcodes.parameters import Parameter, ParameterWithSetpoints
from qcodes.validators import Arrays, Numbers
from scipy.constants import c as SPEED_OF_LIGHT

from experiments._checks import allowed_range, check_int, check_range, refuse
from experiments.calibration.optical_resonance import LASER_STEP_M
from hil.analysis.efficiency import (
    CooperativityFit,
    bidirectional_efficiency,
    fit_cooperativity,
    reference_gain,
    value_at,
)
from hil.analysis.transducer import Rates, s_element
from hil.calibration import require
from hil.clock import wait
from hil.results import Result
from hil.units import dbm_to_w

# --- earlier results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Priors:
    """What the resonance steps (and the pump calibration) found, with relative errors."""

    pump_wavelength_m: float   # the optical (pump) resonance
    rates: Rates
    f_m_hz: float
    chip_per_monitor: float | None
    rel_err: dict[str, float]  # relative standard errors by result name

    @property
    def pump_frequency_hz(self) -> float:
        return SPEED_OF_LIGHT / self.pump_wavelength_m


def _value(run, step: str, name: str) -> tuple[float, float]:
    result = require(run, step, name)
    rel = (result.stderr or 0.0) / abs(result.value) if result.value else 0.0
    return float(result.value), float(rel)


def load_priors(run, *, pump_calibration: bool = True) -> Priors:
    """The optical and microwave resonances (and chip_per_monitor) of this run, or a clear
    MissingCalibration naming what to run first."""
    rel: dict[str, float] = {}
    values: dict[str, float] = {}
    wanted = [("optical_resonance", "wavelength_m"), ("optical_resonance", "kappa_o_hz"),
              ("optical_resonance", "kappa_o_ex_hz"), ("microwave_resonance", "f_m_hz"),
              ("microwave_resonance", "kappa_m_hz"), ("microwave_resonance", "kappa_m_ex_hz")]
    if pump_calibration:
        wanted.append(("pump_calibration", "chip_per_monitor"))
    for step, name in wanted:
        values[name], rel[name] = _value(run, step, name)
    rates = Rates(values["kappa_o_hz"], values["kappa_o_ex_hz"], values["kappa_m_hz"],
                  values["kappa_m_ex_hz"])
    return Priors(values["wavelength_m"], rates, values["f_m_hz"],
                  values.get("chip_per_monitor"), rel)


def eta_max_with_error(priors: Priors) -> tuple[float, float]:
    """eta_o eta_m (the on-chip efficiency at C = 1, physics.md §1.3) and its standard error."""
    r = priors.rel_err
    rel = math.sqrt(r["kappa_o_hz"] ** 2 + r["kappa_o_ex_hz"] ** 2 + r["kappa_m_hz"] ** 2
                    + r["kappa_m_ex_hz"] ** 2)
    value = priors.rates.eta_o * priors.rates.eta_m
    return value, value * rel


# --- the pump ------------------------------------------------------------------------------


def power_range_w(instrument) -> tuple[float, float]:
    """Settable output power (W) of a laser or a VNA: ``power``'s validators intersected with
    those of ``power_dbm`` where the driver has one (station limits are usually set there)."""
    low, high = allowed_range(instrument.power)
    dbm = getattr(instrument, "power_dbm", None)
    if dbm is not None:
        lo_dbm, hi_dbm = allowed_range(dbm)
        if math.isfinite(lo_dbm):
            low = max(low, float(dbm_to_w(lo_dbm)))
        if math.isfinite(hi_dbm):
            high = min(high, float(dbm_to_w(hi_dbm)))
    return max(low, 0.0), high


def laser_powers(step: str, laser, count: int, power_min_w: float, power_max_w: float,
                 *, count_name: str = "powers") -> np.ndarray:
    """``count`` laser output powers, log-spaced, inside the laser's range on this station
    (0 for a bound means the laser's own bound); refused when outside it."""
    low, high = power_range_w(laser)
    check_int(step, count_name, count, 1, 200)
    pmin = low if power_min_w == 0 else power_min_w
    pmax = high if power_max_w == 0 else power_max_w
    unit = "W (the laser's range on this station; 0 = its bound)"
    check_range(step, "power_min_w", pmin, low, high, unit)
    check_range(step, "power_max_w", pmax, low, high, unit)
    if pmin > pmax:
        raise refuse(step, f"power_min_w ({pmin:g} W) must not exceed power_max_w ({pmax:g} W)")
    if count == 1:
        return np.array([pmax])
    return np.geomspace(pmin, pmax, count)


def one_laser_power(step: str, laser, name: str, value: float, default: float | None = None) -> float:
    """A single laser power (0 -> ``default``, or the laser's maximum), inside the laser's range."""
    low, high = power_range_w(laser)
    power = (high if default is None else default) if value == 0 else value
    check_range(step, name, power, low, high, "W (the laser's range on this station; 0 = default)")
    return float(power)


def on_grid(wavelength_m: float) -> float:
    """The nearest wavelength the laser takes (its 0.1 pm step)."""
    return round(wavelength_m / LASER_STEP_M) * LASER_STEP_M


def duty_cycle(step: str, lab) -> float:
    """The pump's duty cycle from the station's constants (1 for a CW pump)."""
    duty = lab.constants.get("pump_duty_cycle")
    if duty is None:
        raise refuse(step, f"the station {lab.path} has no constants: pump_duty_cycle (1.0 for a "
                           f"CW pump, the gate's on-fraction for a pulsed one)")
    if not 0 < duty <= 1:
        raise refuse(step, f"constants.pump_duty_cycle must be in (0, 1], got {duty!r}")
    return float(duty)


def on_chip_peak_w(monitor_w, chip_per_monitor: float, duty: float):
    """Peak on-chip pump power from the monitor's time-averaged reading (see the module docs)."""
    return np.asarray(monitor_w, dtype=float) / duty * chip_per_monitor


def pump_setpoint(lab, settle_s: float = 0.0) -> Parameter:
    """The sweep's setpoint: the laser's output power (W), then ``settle_s`` on the lab's clock."""
    laser = lab.pump

    def set_power(watts: float) -> None:
        laser.power(watts)
        if settle_s > 0:
            wait(lab, settle_s)

    return Parameter("laser_power", label="Laser output power", unit="W", set_cmd=set_power,
                     get_cmd=None, vals=Numbers(*power_range_w(laser)))


def start_pump(lab, wavelength_m: float, power_w: float, monitor_averages: int) -> None:
    """Laser on at ``wavelength_m`` and ``power_w``; the monitor meter corrected for it."""
    laser, monitor = lab.pump, lab.monitor
    monitor.wavelength(wavelength_m)
    monitor.averages(monitor_averages)
    laser.power(power_w)
    laser.wavelength(wavelength_m)
    laser.enable_output()


def check_wavelength(step: str, lab, wavelength_m: float) -> None:
    low, high = allowed_range(lab.pump.wavelength)
    check_range(step, "pump wavelength", wavelength_m, low, high, "m (the laser's range)")


# --- the VNA -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A VNA frequency window; ``name`` is the trace axis' name in the run file."""

    name: str
    center_hz: float
    span_hz: float
    points: int

    @classmethod
    def around(cls, name: str, center_hz: float, span_hz: float, points: int) -> Window:
        # the instrument takes frequencies with 1 Hz resolution: plan on that grid
        return cls(name, float(round(center_hz)), float(round(span_hz)), int(points))

    @property
    def start_hz(self) -> float:
        return self.center_hz - self.span_hz / 2

    @property
    def stop_hz(self) -> float:
        return self.center_hz + self.span_hz / 2

    def frequencies(self) -> np.ndarray:
        return np.linspace(self.start_hz, self.stop_hz, self.points)


class Vna:
    """The network analyzer set up for transduction traces.

    Traces cross the wire as binary float64 (``data_format`` real64, where the driver has it);
    IF bandwidth, source power and averaging are fixed for a step. Each trace parameter from
    :meth:`traces` moves the VNA to its window if needed, selects its S-parameter, takes one
    (averaged) measurement and returns |S|; its ``_phase`` companion returns the phase of that
    same measurement (read it right after).
    """

    def __init__(self, step: str, vna, *, if_bandwidth_hz: float, power_dbm: float,
                 averages: int) -> None:
        self.step, self.vna = step, vna
        self.if_bandwidth_hz, self.power_dbm, self.averages = if_bandwidth_hz, power_dbm, averages
        self._window: Window | None = None
        self._last: dict[str, np.ndarray] = {}
        low, high = allowed_range(vna.if_bandwidth)
        check_range(step, "if_bandwidth_hz", if_bandwidth_hz, low, high, "Hz (the VNA's range)")
        p_low, p_high = power_range_w(vna)
        check_range(step, "vna_power_dbm", power_dbm, 10 * math.log10(p_low / 1e-3),
                    10 * math.log10(p_high / 1e-3), "dBm (the VNA's range on this station)")
        a_low, a_high = allowed_range(vna.averages)
        check_int(step, "averages", averages, int(max(a_low, 1)), int(min(a_high, 10_000)))

    def check_window(self, window: Window, what: str) -> None:
        f_low, f_high = allowed_range(self.vna.start)
        if not (f_low <= window.start_hz and window.stop_hz <= min(f_high, allowed_range(self.vna.stop)[1])):
            raise refuse(self.step, f"{what}: the window {window.start_hz:.0f}..{window.stop_hz:.0f} Hz "
                                    f"is outside the VNA's range [{f_low:g}, {f_high:g}] Hz")
        p_low, p_high = allowed_range(self.vna.points)
        check_int(self.step, f"{what} points", window.points, int(max(p_low, 3)), int(p_high))

    def setup(self) -> None:
        vna = self.vna
        if hasattr(vna, "data_format"):
            vna.data_format("real64")
        vna.if_bandwidth(self.if_bandwidth_hz)
        vna.power(float(dbm_to_w(self.power_dbm)))
        self.set_averages(self.averages)
        vna.enable_output()

    def set_averages(self, averages: int) -> None:
        a_low, a_high = allowed_range(self.vna.averages)
        check_int(self.step, "averages", averages, int(max(a_low, 1)), int(min(a_high, 10_000)))
        self.vna.averages(averages)
        if hasattr(self.vna, "averaging"):
            self.vna.averaging(averages > 1)

    def use(self, window: Window) -> None:
        if self._window == window:
            return
        vna = self.vna
        # never ask for stop < start: move the leading edge first
        if window.start_hz > vna.stop():
            vna.stop(window.stop_hz)
            vna.start(window.start_hz)
        else:
            vna.start(window.start_hz)
            vna.stop(window.stop_hz)
        vna.points(window.points)
        got = np.asarray(vna.frequency_axis(), dtype=float)
        if got.size != window.points or np.max(np.abs(got - window.frequencies())) > 1.0:
            raise RuntimeError(f"{self.step}: the VNA sweeps {got[0]:.0f}..{got[-1]:.0f} Hz in "
                               f"{got.size} points, not the planned window {window}")
        self._window = window

    def measure(self, window: Window, s_parameter: str) -> np.ndarray:
        """One complex trace of ``s_parameter`` over ``window``."""
        self.use(window)
        self.vna.s_parameter(s_parameter)
        self.vna.run_sweep()
        trace = np.asarray(self.vna.trace(), dtype=complex)
        self._last[s_parameter] = trace
        return trace

    def axis(self, window: Window) -> Parameter:
        freqs = window.frequencies()
        return Parameter(window.name, label="Frequency", unit="Hz", get_cmd=lambda: freqs,
                         set_cmd=False, vals=Arrays(shape=(window.points,)))

    def traces(self, window: Window, s_parameter: str, name: str) -> dict[str, Parameter]:
        """``{name: |S|, name_phase: arg S}`` over ``window`` (magnitude first: it measures)."""
        axis = self.axis(window)
        shape = Arrays(shape=(window.points,))

        def magnitude() -> np.ndarray:
            return np.abs(self.measure(window, s_parameter))

        def phase() -> np.ndarray:
            return np.angle(self._last[s_parameter])

        mag = ParameterWithSetpoints(name, label=f"|{s_parameter}|", unit="", setpoints=(axis,),
                                     get_cmd=magnitude, set_cmd=False, vals=shape)
        arg = ParameterWithSetpoints(f"{name}_phase", label=f"arg {s_parameter}", unit="rad",
                                     setpoints=(axis,), get_cmd=phase, set_cmd=False, vals=shape)
        return {name: mag, f"{name}_phase": arg}


def finish(lab) -> None:
    """End of a step: pump off, VNA source off (the next step sets up what it needs)."""
    for role in ("pump", "vna"):
        if role in lab.roles:
            lab.roles[role].safe_state()



# --- calibrated conversion spectra -------------------------------------------------------------


@dataclass(frozen=True)
class ConversionPoint:
    """One pump setting's calibrated conversion spectrum and its cooperativity."""

    offsets_hz: np.ndarray      # probe - f_m
    eta: np.ndarray             # |S21 S12| / (G11 G22): on-chip |S_oe|^2 (physics.md §1.8)
    fit: CooperativityFit
    gain_rel_err: float         # relative error of eta from the two reference gains

    @property
    def cooperativity(self) -> float:
        return self.fit.cooperativity

    @property
    def cooperativity_err(self) -> float:
        c = self.fit.cooperativity
        return math.hypot(self.fit.stderr, c * self.gain_rel_err)

    def eta_at_f_m(self) -> tuple[float, float]:
        """eta at the microwave resonance (local quadratic fit) and its standard error."""
        value, err = value_at(self.offsets_hz, self.eta, self.fit.model, 0.0)
        return value, math.hypot(err, value * self.gain_rel_err)


def conversion_windows(step: str, lab, priors: Priors, *, span_linewidths: float, points: int,
                       reference_offset_hz: float, reference_points: int, if_bandwidth_hz: float,
                       vna_power_dbm: float, averages: int) -> tuple[Vna, Window, Window]:
    """The VNA and its two windows for the conversion measurements: ``span_linewidths``
    microwave linewidths around f_m, and a reference window far enough off resonance (0: 20
    linewidths) for the bidirectional calibration's reflections; checked before any write."""
    check_range(step, "span_linewidths", span_linewidths, 1.0, 100.0)
    check_int(step, "points", points, 11, 20001)
    check_int(step, "reference_points", reference_points, 3, 20001)
    rates = priors.rates
    widest = max(rates.kappa_o_hz, rates.kappa_m_hz)
    offset = reference_offset_hz or 20 * widest
    check_range(step, "reference_offset_hz", offset, 5 * widest, math.inf,
                "Hz (at least 5 linewidths off resonance; 0 = 20 linewidths)")
    vna = Vna(step, lab.vna, if_bandwidth_hz=if_bandwidth_hz, power_dbm=vna_power_dbm,
              averages=averages)
    main = Window.around("frequency", priors.f_m_hz, span_linewidths * rates.kappa_m_hz, points)
    reference = Window.around("reference_frequency", priors.f_m_hz + offset, 2 * rates.kappa_m_hz,
                              reference_points)
    vna.check_window(main, "span_linewidths")
    vna.check_window(reference, "reference_offset_hz")
    return vna, main, reference


def conversion_measured(vna: Vna, main: Window, reference: Window) -> dict[str, Parameter]:
    """What each pump setting records: S21 and S12 over the conversion window, S11 and S22
    over the reference window off resonance (the bidirectional calibration, physics.md §1.8)."""
    return {**vna.traces(main, "S21", "s21"), **vna.traces(main, "S12", "s12"),
            **vna.traces(reference, "S11", "s11_ref"), **vna.traces(reference, "S22", "s22_ref")}


def conversion_point(s21, s12, s11_ref, s22_ref, main: Window, reference: Window, priors: Priors,
                     detuning_hz: float, start: float | None = None) -> ConversionPoint:
    """Calibrate one setting's traces with its references and fit its cooperativity.

    The references are divided by the device's own reflection at their frequencies (1 far off
    resonance; computed with the fitted C, so the loop runs twice). ``start``: a C to start the
    fit from (else it scans for one).
    """
    rates = priors.rates
    delta_o = -detuning_hz  # the signal mode sits at -Delta_p in the probe's frame (§1.3)
    offsets = main.frequencies() - priors.f_m_hz
    ref_offsets = reference.frequencies() - priors.f_m_hz
    s21, s12 = np.asarray(s21, dtype=float), np.asarray(s12, dtype=float)
    cooperativity = 0.0
    for i in range(2):
        g11, e11 = reference_gain(s11_ref, np.abs(s_element("m_ex", "m_ex", ref_offsets, cooperativity,
                                                             rates, delta_o)))
        g22, e22 = reference_gain(s22_ref, np.abs(s_element("o_ex", "o_ex", ref_offsets, cooperativity,
                                                             rates, delta_o)))
        eta = bidirectional_efficiency(s21, s12, g11, g22)
        fit = fit_cooperativity(offsets, eta, rates, delta_o, start=start if i == 0 else cooperativity)
        cooperativity = fit.cooperativity
    return ConversionPoint(offsets, eta, fit, math.hypot(e11 / g11, e22 / g22))


def conversion_points(data: dict[str, np.ndarray], main: Window, reference: Window, priors: Priors,
                      detunings_hz, starts=None) -> list[ConversionPoint]:
    count = len(data["s21"])
    detunings = np.broadcast_to(np.asarray(detunings_hz, dtype=float), (count,))
    starts = [None] * count if starts is None else list(starts)
    return [conversion_point(data["s21"][i], data["s12"][i], data["s11_ref"][i], data["s22_ref"][i],
                             main, reference, priors, float(detunings[i]), starts[i])
            for i in range(count)]


# --- where the pump sits on its mode -------------------------------------------------------------


@dataclass(frozen=True)
class PumpDetuning:
    """The pump's detuning from its mode, from the through port's dip (physics.md §1.1)."""

    detuning_hz: float     # Delta_p, sign from the optical resonance step's centre
    detuning_err: float
    factor: float          # C(Delta_p)/C(0) = 1/(1 + 4 Delta_p^2/kappa^2) = (1 - T)/(1 - T_min)
    factor_err: float
    transmission: float    # T at the pump wavelength
    from_wavelengths_hz: float  # what the laser's wavelength and the resonance step's centre say


def measure_pump_detuning(lab, run, step: str, priors: Priors, wavelength_m: float, power_w: float,
                          *, readings: int = 5, averages: int = 100,
                          offset_linewidths: float = 20.0) -> PumpDetuning:
    """Through-port power at the pump wavelength and ``offset_linewidths`` optical linewidths
    either side (the baseline), ``readings`` times each, recorded as ``<step>_pump_detuning``.

    Why not the wavelengths alone: the laser's wavelength steps are 12.5 MHz, and a centre found
    from them carries whatever error the resonance step made; but C depends on the detuning as
    the dip depth does: ``1/(1 + 4 Delta^2/kappa^2) = (1 - T)/(1 - T_min)`` with
    ``T_min = ((kappa_0 - kappa_ex)/kappa)^2``, so the depth at the pump wavelength measures the
    factor directly. Its errors: the meter's scatter, and the depth 1 - T_min from the resonance
    step's linewidths. The pump's power is the same at every wavelength: the meter's time
    average cancels the duty cycle. The meter's reading needs no calibration (a ratio).
    """
    rates = priors.rates
    kappa, kappa_ex = rates.kappa_o_hz, rates.kappa_o_ex_hz
    kappa_0 = kappa - kappa_ex
    offset_m = on_grid(offset_linewidths * kappa * wavelength_m ** 2 / SPEED_OF_LIGHT)
    wavelengths = np.array([wavelength_m - offset_m, wavelength_m, wavelength_m + offset_m])
    for w in wavelengths:
        check_wavelength(step, lab, float(w))
    laser, meter = lab.pump, lab.meter
    meter.wavelength(wavelength_m)
    meter.averages(averages)
    laser.power(power_w)
    laser.enable_output()
    reading = Parameter("reading", label="Reading", unit="", set_cmd=None, get_cmd=None)
    data = run.sweep2d(f"{step}_pump_detuning", laser.wavelength, wavelengths, reading,
                       np.arange(readings), {"through_power": meter.power},
                       description="pump detuning from the through port")
    laser.wavelength(wavelength_m)

    def lorentz_t(detuning):
        return 1 - kappa_0 * kappa_ex / (np.asarray(detuning) ** 2 + kappa ** 2 / 4)

    nominal = SPEED_OF_LIGHT / wavelengths - priors.pump_frequency_hz
    power = data["through_power"]
    base = np.concatenate([power[0] / lorentz_t(nominal[0]), power[2] / lorentz_t(nominal[2])])
    on = power[1]
    transmission = float(np.mean(on) / np.mean(base))
    rel = math.hypot(np.std(on, ddof=1) / np.mean(on) / math.sqrt(on.size),
                     np.std(base, ddof=1) / np.mean(base) / math.sqrt(base.size))
    eta = kappa_ex / kappa
    depth = 1 - (1 - 2 * eta) ** 2  # 1 - T_min = 4 eta (1 - eta)
    eta_err = eta * math.hypot(priors.rel_err["kappa_o_hz"], priors.rel_err["kappa_o_ex_hz"])
    depth_err = abs(4 * (1 - 2 * eta)) * eta_err
    factor = min(max((1 - transmission) / depth, 1e-6), 1.0)
    factor_err = math.hypot(transmission * rel / depth, factor * depth_err / depth)
    detuning = math.copysign(kappa / 2 * math.sqrt(1 / factor - 1), nominal[1] or 1.0)
    # d Delta / d factor = -(kappa/2) / (2 factor^2 sqrt(1/factor - 1)); bounded near factor = 1
    slope = kappa / 4 / (factor ** 2 * max(math.sqrt(1 / factor - 1), factor_err))
    result = PumpDetuning(detuning, slope * factor_err, factor, factor_err, transmission,
                          float(nominal[1]))
    run.record_results(f"{step}_pump_detuning", {
        "pump_detuning_hz": Result(result.detuning_hz, "Hz", result.detuning_err),
        "cooperativity_factor": Result(factor, "", factor_err),
        "transmission": Result(transmission, "", transmission * rel),
        "wavelength_detuning_hz": Result(result.from_wavelengths_hz, "Hz", None)})
    return result
