"""The network analyzer set up for transduction traces: frequency windows and their traces.

Every window is checked against the VNA's range before any write (:func:`conversion_windows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qcodes.parameters import Parameter, ParameterWithSetpoints
from qcodes.validators import Arrays

from experiments.transduction.priors import Priors
from hil.analysis.conversion import ConversionPoint, conversion_points
from hil.parameters import ParameterError, check_value, settable_range
from hil.units import dbm_to_w


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

    Traces cross the wire as binary float64 (``data_format`` real64);
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

    def check_window(self, window: Window, what: str) -> None:
        """A window computed from measured data, inside what the VNA sweeps (nothing sent)."""
        f_low = settable_range(self.vna.start)[0]
        f_high = min(settable_range(self.vna.start)[1], settable_range(self.vna.stop)[1])
        if not (f_low <= window.start_hz and window.stop_hz <= f_high):
            raise ParameterError(
                f"{self.step}: {what}: the window {window.start_hz:.0f}..{window.stop_hz:.0f} Hz "
                f"is outside the VNA's range [{f_low:g}, {f_high:g}] Hz")
        p_low, p_high = settable_range(self.vna.points)
        check_value(self.step, f"{what} points", window.points, max(p_low, 3), p_high, "", int)

    def setup(self) -> None:
        vna = self.vna
        vna.data_format("real64")
        vna.if_bandwidth(self.if_bandwidth_hz)
        vna.power(float(dbm_to_w(self.power_dbm)))
        self.set_averages(self.averages)
        vna.enable_output()

    def set_averages(self, averages: int) -> None:
        self.vna.averages(averages)
        self.vna.averaging(averages > 1)

    def use(self, window: Window) -> None:
        if self._window == window:
            return
        vna = self.vna
        vna.set_window(window.start_hz, window.stop_hz)
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


def conversion_windows(step: str, lab, priors: Priors, *, span_linewidths: float, points: int,
                       reference_offset_hz: float, reference_points: int, if_bandwidth_hz: float,
                       vna_power_dbm: float, averages: int) -> tuple[Vna, Window, Window]:
    """The VNA and its two windows for the conversion measurements: ``span_linewidths``
    microwave linewidths around f_m, and a reference window far enough off resonance (0: 20
    linewidths) for the bidirectional calibration's reflections; checked before any write."""
    rates = priors.rates
    widest = max(rates.kappa_o_hz, rates.kappa_m_hz)
    offset = reference_offset_hz or 20 * widest
    check_value(step, "reference_offset_hz", offset, 5 * widest, math.inf,
                "Hz (at least 5 linewidths off resonance; 0 = 20 linewidths)")
    vna = Vna(step, lab.vna, if_bandwidth_hz=if_bandwidth_hz, power_dbm=vna_power_dbm,
              averages=averages)
    main = Window.around("frequency", priors.f_m_hz, span_linewidths * rates.kappa_m_hz, points)
    reference = Window.around("reference_frequency", priors.f_m_hz + offset, 2 * rates.kappa_m_hz,
                              reference_points)
    vna.check_window(main, "span_linewidths")
    vna.check_window(reference, "reference_offset_hz")
    return vna, main, reference


def conversion_measured(vna: Vna, main: Window, reference: Window, *,
                        pumped_mode: bool = False) -> dict[str, Parameter]:
    """What each pump setting records: S21 and S12 over the conversion window, S11 and S22
    over the reference window off resonance (the bidirectional calibration, physics.md §1.8);
    with ``pumped_mode`` also S11 over the conversion window, which shows the microwave mode as
    the pump leaves it (:mod:`hil.analysis.pumped_mode`)."""
    reflection = vna.traces(main, "S11", "s11") if pumped_mode else {}
    return {**vna.traces(main, "S21", "s21"), **vna.traces(main, "S12", "s12"), **reflection,
            **vna.traces(reference, "S11", "s11_ref"), **vna.traces(reference, "S22", "s22_ref")}


def conversion_spectra(data: dict[str, np.ndarray], main: Window, reference: Window,
                       priors: Priors, detunings_hz, starts=None, seeds=None) -> list[ConversionPoint]:
    """The calibrated conversion spectrum and C of every setting a sweep recorded with
    :func:`conversion_measured` (:mod:`hil.analysis.conversion`); ``seeds``: the same settings'
    points fitted with nearby priors, for a quicker refit."""
    return conversion_points(data, main.frequencies() - priors.f_m_hz,
                             reference.frequencies() - priors.f_m_hz, priors.rates, detunings_hz,
                             starts, seeds)
