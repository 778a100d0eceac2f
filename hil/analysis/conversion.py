"""Calibrated conversion spectra: eta(w) = |S21 S12| / (G11 G22) and its cooperativity.

Each pump setting's S21 and S12 over the conversion window are divided by the reference gains
from S11 and S22 off resonance (the bidirectional calibration, physics.md §1.8), and the
spectrum is fitted for C (:func:`hil.analysis.efficiency.fit_cooperativity`), or, where the
microwave reflection over the same window was taken under the pump, for C and the pumped
microwave mode together (:mod:`hil.analysis.pumped_mode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hil.analysis.checks import SIGMAS
from hil.analysis.efficiency import (
    CooperativityFit,
    bidirectional_efficiency,
    fit_cooperativity,
    reference_gain,
    value_at,
)
from hil.analysis.pumped_mode import fit_pumped_mode, pumped_rates
from hil.analysis.transducer import Rates, s_element


@dataclass(frozen=True)
class ConversionPoint:
    """One pump setting's calibrated conversion spectrum and its cooperativity."""

    offsets_hz: np.ndarray      # probe - f_m
    eta: np.ndarray             # |S21 S12| / (G11 G22): on-chip |S_oe|^2 (physics.md §1.8)
    fit: CooperativityFit
    gain_rel_err: float         # relative error of eta from the two reference gains
    mode: CooperativityFit | None = None  # the pumped-mode fit, where S11 was taken (kept in
                                          # ``fit`` only where the pump moved the mode)

    @property
    def cooperativity(self) -> float:
        return self.fit.cooperativity

    @property
    def cooperativity_err(self) -> float:
        c = self.fit.cooperativity
        return math.hypot(self.fit.stderr, c * self.gain_rel_err)

    @property
    def cooperativity_rest(self) -> tuple[float, float]:
        """C with the pump-off microwave linewidth (proportional to the pump power) and its
        error; C itself when the pumped mode was not measured."""
        c, err = self.fit.rest
        return c, math.hypot(err, c * self.gain_rel_err)

    def eta_at_f_m(self) -> tuple[float, float]:
        """eta at the microwave resonance (where the fit puts it under this pump; local
        quadratic fit) and its standard error."""
        value, err = value_at(self.offsets_hz, self.eta, self.fit.model, self.fit.delta_m_hz)
        return value, math.hypot(err, value * self.gain_rel_err)


def conversion_point(s21, s12, s11_ref, s22_ref, offsets_hz, ref_offsets_hz, rates: Rates,
                     detuning_hz: float, start: float | None = None, s11=None,
                     seed: ConversionPoint | None = None) -> ConversionPoint:
    """Calibrate one setting's traces with its references and fit its cooperativity.

    The references are divided by the device's own reflection at their frequencies (1 far off
    resonance; computed with the fitted C, so the loop runs twice). ``start``: a C to start the
    fit from (else it scans for one). ``s11``: the microwave reflection over the conversion
    window under the same pump; with it the pumped mode's kappa_m and frequency are fitted too
    (:func:`hil.analysis.pumped_mode.fit_pumped_mode`), else the pump-off ones are assumed.
    ``seed``: this setting's point fitted with nearby ``rates`` (a refit with one prior moved
    by its error): its C and mode give the references at once, and the loop runs once.
    """
    delta_o = -detuning_hz  # the signal mode sits at -Delta_p in the probe's frame (§1.3)
    offsets = np.asarray(offsets_hz, dtype=float)
    ref_offsets = np.asarray(ref_offsets_hz, dtype=float)
    s21, s12 = np.asarray(s21, dtype=float), np.asarray(s12, dtype=float)
    cooperativity, mode, delta_m = 0.0, rates, 0.0
    passes = 2
    if seed is not None:
        cooperativity, delta_m, passes = seed.fit.cooperativity, seed.fit.delta_m_hz, 1
        mode = pumped_rates(rates, seed.fit.rates.kappa_m_hz)
        start = cooperativity
    for i in range(passes):
        g11, e11 = reference_gain(s11_ref, np.abs(s_element("m_ex", "m_ex", ref_offsets, cooperativity,
                                                             mode, delta_o, delta_m)))
        g22, e22 = reference_gain(s22_ref, np.abs(s_element("o_ex", "o_ex", ref_offsets, cooperativity,
                                                             mode, delta_o, delta_m)))
        eta = bidirectional_efficiency(s21, s12, g11, g22)
        fit = fit_cooperativity(offsets, eta, rates, delta_o, start=start if i == 0 else cooperativity)
        if s11 is not None:
            pumped = fit_pumped_mode(offsets, eta, np.asarray(s11, dtype=float) / g11, rates, delta_o,
                                     start_c=fit.cooperativity)
            if moved(pumped, rates):
                fit = pumped
        else:
            pumped = None
        cooperativity, mode, delta_m = fit.cooperativity, fit.rates, fit.delta_m_hz
    return ConversionPoint(offsets, eta, fit, math.hypot(e11 / g11, e22 / g22), pumped)


def moved(fit: CooperativityFit, rates: Rates) -> bool:
    """Has the pump moved the microwave mode: kappa_m or f_m off the pump-off values by more than
    SIGMAS standard errors? Where it has not, the pump-off mode stays (its C is the sharper)."""
    return (abs(fit.rates.kappa_m_hz - rates.kappa_m_hz) > SIGMAS * (fit.kappa_m_err or 0.0)
            or abs(fit.delta_m_hz) > SIGMAS * (fit.delta_m_err or 0.0))


def conversion_points(data: dict[str, np.ndarray], offsets_hz, ref_offsets_hz, rates: Rates,
                      detunings_hz, starts=None, seeds=None) -> list[ConversionPoint]:
    """Every setting of a sweep (``data``: rows of ``s21``, ``s12``, ``s11_ref``, ``s22_ref``):
    probe offsets from f_m of the main and the reference window, detuning per row."""
    count = len(data["s21"])
    detunings = np.broadcast_to(np.asarray(detunings_hz, dtype=float), (count,))
    starts = [None] * count if starts is None else list(starts)
    seeds = [None] * count if seeds is None else list(seeds)
    s11 = data.get("s11")
    return [conversion_point(data["s21"][i], data["s12"][i], data["s11_ref"][i], data["s22_ref"][i],
                             offsets_hz, ref_offsets_hz, rates, float(detunings[i]), starts[i],
                             None if s11 is None else s11[i], seeds[i])
            for i in range(count)]
