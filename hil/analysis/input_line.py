"""The microwave input line's occupancy from pump-off noise, anchored at the fridge's temperature.

With the pump off the microwave mode couples only its two baths: the input line ``n_line``
(through kappa_m,ex) and its internal bath ``n_0`` (through kappa_m,0). Off resonance the device
reflects the line, on resonance it swaps part of the line for its internal bath (physics.md §1.5
bookkeeping, ``N = sum_j |S_mj|^2 n_j``)::

    N_off = n_line,    N_on = |S_mm|^2 n_line + |S_m0|^2 n_0,    |S_mm|^2 + |S_m0|^2 = 1 (C = 0)

so the on/off pair's excess ``N_on - N_off = |S_m0|^2 (n_0 - n_line)``: a dip when the line is
the warmer bath. Both readings go through the same output chain (gain G, amplifier occupancy
``n_amp = k_B T_N/(h f)``), so their ratio ``R = PSD_on/PSD_off`` gives the excess in photons with
no gain: ``n_0 - n_line = (R - 1)(n_line + n_amp)/|S_m0|^2``.

The fridge's own temperature anchors the split: a pump-off internal bath is at least as warm as
the mixing chamber it is thermalised to, ``n_0 >= n_th(f_m, T_mc)``, so
``n_line >= n_th(f_m, T_mc) - (n_0 - n_line)``: the line's occupancy at least, and exactly when the
mode's pump-off bath is the fridge's. (A Y-factor with the fridge as the variable load would need
``n_th`` to move by more than the readings resolve: at 8.8 GHz ``n_th`` is 3e-5 at 40 mK and 0.06
at 150 mK; docs/physics.md.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.constants import Boltzmann, Planck

from hil.analysis.noise import amplifier_occupancy
from hil.analysis.transducer import Rates, s_element
from hil.results import FitError


def thermal_occupancy(frequency_hz: float, temperature_k: float) -> float:
    """Bose-Einstein ``n_th = 1/(exp(h f / k_B T) - 1)`` (physics.md §1.5); 0 at 0 K."""
    if temperature_k <= 0:
        return 0.0
    return 1.0 / math.expm1(Planck * frequency_hz / (Boltzmann * temperature_k))


def thermal_occupancy_err(frequency_hz: float, temperature_k: float, temperature_err_k: float) -> float:
    """Standard error of ``n_th`` from the temperature's: ``dn/dT = n (n + 1) x / T``,
    ``x = h f / k_B T`` (first order; steep at millikelvin, where ``x`` is tens)."""
    if temperature_k <= 0:
        return 0.0
    n = thermal_occupancy(frequency_hz, temperature_k)
    x = Planck * frequency_hz / (Boltzmann * temperature_k)
    return n * (n + 1) * x / temperature_k * temperature_err_k


@dataclass(frozen=True)
class LineBound:
    """What the pump-off pair says about the line (photons)."""

    excess: float          # n_0 - n_line
    excess_err: float
    n_th_mc: float         # the mixing chamber's thermal occupancy at f_m
    n_line_min: float      # max(0, n_th_mc - excess): the line's occupancy at least
    n_line_err: float


def line_bound(psd_on_w, psd_off_w, f_m_hz: float, offset_hz: float, noise_temp_k: float,
               rates: Rates, t_mc_k: float) -> LineBound:
    """Pump-off on/off-resonance readings (W/Hz, paired) -> the line's occupancy bound.

    The off-resonance reading at ``offset_hz`` still sees the mode's tail: its occupancy is
    ``n_line + |S_m0(offset)|^2 (n_0 - n_line)``; solved with two passes of the estimate."""
    on = np.asarray(psd_on_w, dtype=float).ravel()
    off = np.asarray(psd_off_w, dtype=float).ravel()
    if on.size != off.size or on.size < 2:
        raise FitError(f"need two or more paired on/off readings, got {on.size} and {off.size}")
    if np.any(on <= 0) or np.any(off <= 0):
        raise FitError("a noise reading is not positive")
    s_on = abs(complex(s_element("m_ex", "m_0", 0.0, 0.0, rates))) ** 2
    s_off = abs(complex(s_element("m_ex", "m_0", offset_hz, 0.0, rates))) ** 2
    n_amp_on = float(amplifier_occupancy(noise_temp_k, f_m_hz))
    n_amp_off = float(amplifier_occupancy(noise_temp_k, f_m_hz + offset_hz))
    n_th = thermal_occupancy(f_m_hz, t_mc_k)
    excess = np.zeros_like(on)
    n_line = 0.0
    for _ in range(2):
        n_off = n_line + s_off * excess
        # one gain for both: PSD = G h f (N + n_amp(f))
        n_on = on / off * (f_m_hz + offset_hz) / f_m_hz * (n_off + n_amp_off) - n_amp_on
        excess = (n_on - n_off) / (s_on - s_off)
        n_line = max(0.0, n_th - float(np.mean(excess)))
    mean = float(np.mean(excess))
    err = float(np.std(excess, ddof=1) / math.sqrt(excess.size))
    return LineBound(mean, err, n_th, max(0.0, n_th - mean), err)
