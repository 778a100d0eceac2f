"""Added noise from the microwave output spectrum (physics.md §1.5, §3 (g)).

Output chain: a power gain G and an amplifier of noise temperature T_N (``n_amp = k_B T_N / (h f)``
photons) put ``PSD(f) = G h f (N(f) + n_amp)`` at the analyzer (§3 (g): ``n_out = PSD/(G h f) - n_amp``).
Off resonance the device reflects the input line, whose occupancy the caller gives in ``N_off``
(0 for a cold, attenuated line; :mod:`hil.analysis.input_line` bounds a warm one), so the off-resonance
PSD calibrates ``G = PSD_off / (h f_off (n_amp + N_off))``
with the T_N of a Y-factor measurement; on resonance the same G turns the PSD into the output
occupancy N at f_m.

Bookkeeping (§1.5): ``N_k = sum_j |S_kj|^2 n_j`` over the baths ``[o_ex, o_0, m_ex, m_0] =
[0, 0, n_line, n_int]``, so ``N_m(f_m) = |S[m_ex, m_0]|^2 n_int`` (cold line) gives the internal
bath n_int, and the input-referred added noise is ``(N_k - |S_kj|^2 n_j) / |S_kj|^2``:
m->o ``n_int |S[o_ex, m_0]|^2 / |S[o_ex, m_ex]|^2 = n_int (1 - eta_m)/eta_m`` (any C),
o->m ``n_int |S[m_ex, m_0]|^2 / |S[m_ex, o_ex]|^2`` (= ``n_int (1 - eta_m)/(eta_o C)`` on resonance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.constants import Boltzmann, Planck

from hil.analysis.transducer import Rates, s_element
from hil.results import FitError


def amplifier_occupancy(noise_temp_k: float, frequency_hz):
    """n_amp = k_B T_N / (h f)."""
    return Boltzmann * noise_temp_k / (Planck * np.asarray(frequency_hz, dtype=float))


@dataclass(frozen=True)
class OutputNoise:
    """Output occupancy at the on-resonance frequency and the calibrated chain gain."""

    n_out: float
    n_out_err: float
    gain: float          # power gain of the output chain
    gain_err: float
    readings: int


def output_occupancy(psd_on_w, psd_off_w, f_on_hz: float, f_off_hz: float, noise_temp_k: float,
                     n_off: float = 0.0, ratio_scatter: float | None = None) -> OutputNoise:
    """N(f_on) from paired PSD readings (W/Hz) on and off resonance; ``n_off`` is the device's
    output occupancy off resonance (0 for a cold line). Mean and standard error over the pairs:
    the error from ``ratio_scatter`` (one pair's relative on/off scatter, pooled over more
    readings than these, :func:`pooled_ratio_scatter`) where given, else from these pairs."""
    on = np.asarray(psd_on_w, dtype=float).ravel()
    off = np.asarray(psd_off_w, dtype=float).ravel()
    if on.size != off.size or on.size == 0:
        raise FitError(f"need paired on/off readings, got {on.size} and {off.size}")
    if np.any(off <= 0) or np.any(on <= 0):
        raise FitError("a noise reading is not positive")
    gain = off / (Planck * f_off_hz * (amplifier_occupancy(noise_temp_k, f_off_hz) + n_off))
    n_amp = float(amplifier_occupancy(noise_temp_k, f_on_hz))
    n_out = on / (gain * Planck * f_on_hz) - n_amp
    n = on.size

    def sem(x) -> float:
        return float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan

    # n_out + n_amp is the on/off ratio times constants: its relative scatter is the ratio's
    n_out_err = (sem(n_out) if ratio_scatter is None else
                 (float(np.mean(n_out)) + n_amp) * ratio_scatter / math.sqrt(n))
    return OutputNoise(float(np.mean(n_out)), n_out_err, float(np.mean(gain)), sem(gain), n)


def pooled_ratio_scatter(groups) -> tuple[float, int]:
    """One reading pair's relative on/off scatter, pooled over ``groups`` of pairs (``(on, off)``
    per pump power: the analyzer's noise on a floor the amplifier sets is the same at every
    power), and its degrees of freedom. A handful of pairs alone says little about it: their
    own scatter can come out several times too small, and an error bar or a stopping rule built
    on it with it."""
    squares, dof = 0.0, 0
    for on, off in groups:
        on, off = np.asarray(on, dtype=float).ravel(), np.asarray(off, dtype=float).ravel()
        ok = (on > 0) & (off > 0) & np.isfinite(on) & np.isfinite(off)
        if ok.sum() < 2:
            continue
        log_ratio = np.log(on[ok] / off[ok])
        squares += float(np.sum((log_ratio - log_ratio.mean()) ** 2))
        dof += int(ok.sum()) - 1
    return (math.sqrt(squares / dof) if dof else math.nan), dof


def internal_bath(n_out: float, cooperativity: float, rates: Rates, delta_o_hz: float = 0.0,
                  offset_hz: float = 0.0, n_line: float = 0.0) -> float:
    """n_int from the output occupancy N_m at ``offset_hz`` from f_m:
    ``(N_m - |S[m_ex, m_ex]|^2 n_line) / |S[m_ex, m_0]|^2``."""
    s_int = abs(complex(s_element("m_ex", "m_0", offset_hz, cooperativity, rates, delta_o_hz))) ** 2
    s_line = abs(complex(s_element("m_ex", "m_ex", offset_hz, cooperativity, rates, delta_o_hz))) ** 2
    return (n_out - s_line * n_line) / s_int


def added_noise(direction: str, n_int: float, cooperativity: float, rates: Rates,
                delta_o_hz: float = 0.0, offset_hz: float = 0.0) -> float:
    """Input-referred added noise of ``"m->o"`` or ``"o->m"`` conversion, cold line and optical baths."""
    if direction == "m->o":
        out, signal = "o_ex", "m_ex"
    elif direction == "o->m":
        out, signal = "m_ex", "o_ex"
    else:
        raise ValueError(f"direction must be 'm->o' or 'o->m', got {direction!r}")
    s_int = abs(complex(s_element(out, "m_0", offset_hz, cooperativity, rates, delta_o_hz))) ** 2
    s_sig = abs(complex(s_element(out, signal, offset_hz, cooperativity, rates, delta_o_hz))) ** 2
    return n_int * s_int / s_sig
