"""Photon bookkeeping shared by the twin's modes (physics.md §0, §1.1, §1.2, §1.5).

Rates are given as full widths in Hz (kappa/2pi) everywhere in the twin; photon numbers need
rad/s, so the conversion happens here and only here.
"""

from __future__ import annotations

import numpy as np
from scipy.constants import Boltzmann as K_B
from scipy.constants import Planck as H

TWO_PI = 2.0 * np.pi

__all__ = ["H", "K_B", "driven_photons", "photon_energy_j", "thermal_occupancy", "thermal_temperature_k"]


def photon_energy_j(frequency_hz):
    """hbar omega = h f, in J."""
    return H * np.asarray(frequency_hz, dtype=float)


def driven_photons(power_w, frequency_hz, kappa_hz, kappa_ex_hz, detuning_hz=0.0):
    """Mean photons in a mode driven through one port (physics.md §1.1, §1.2 reflection).

    ``n = kappa_ex / (Delta^2 + kappa^2/4) * P / (hbar omega)`` with every rate in rad/s; in Hz
    (kappa/2pi, Delta/2pi) that is ``kappa_ex / (2 pi (Delta^2 + kappa^2/4)) * P / (h f)``.
    ``power_w`` is the power at the device port; ``detuning_hz`` = drive - mode frequency.
    """
    power = np.asarray(power_w, dtype=float)
    detuning = np.asarray(detuning_hz, dtype=float)
    lorentz = kappa_ex_hz / (TWO_PI * (detuning ** 2 + kappa_hz ** 2 / 4))  # s
    return lorentz * power / photon_energy_j(frequency_hz)


def thermal_occupancy(frequency_hz, temperature_k):
    """Bose-Einstein occupancy n_th = 1 / (exp(h f / k_B T) - 1) (physics.md §1.5); 0 at T = 0."""
    f = np.asarray(frequency_hz, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        x = np.where(t > 0, H * f / (K_B * np.where(t > 0, t, 1.0)), np.inf)
        n = 1.0 / np.expm1(x)
    return n if n.ndim else float(n)


def thermal_temperature_k(frequency_hz, occupancy):
    """The temperature of a mode at ``occupancy``: T = h f / (k_B ln(1 + 1/n)) (physics.md §1.5)."""
    f = np.asarray(frequency_hz, dtype=float)
    n = np.asarray(occupancy, dtype=float)
    t = H * f / (K_B * np.log1p(1.0 / n))
    return t if t.ndim else float(t)
