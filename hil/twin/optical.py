"""Optical cavity seen through its bus waveguide (physics.md §1.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.constants import c as SPEED_OF_LIGHT  # m/s, exact


def wavelength_to_frequency(wavelength_m):
    """Vacuum wavelength (m) -> optical frequency (Hz)."""
    return SPEED_OF_LIGHT / np.asarray(wavelength_m, dtype=float)


def frequency_to_wavelength(frequency_hz):
    """Optical frequency (Hz) -> vacuum wavelength (m)."""
    return SPEED_OF_LIGHT / np.asarray(frequency_hz, dtype=float)


@dataclass(frozen=True)
class OpticalCavity:
    """A side-coupled optical mode.

    Rates are full widths in Hz (kappa/2pi), as papers quote them: ``kappa_hz`` is the loaded
    linewidth and ``kappa_ex_hz`` the part of it that leaks into the bus waveguide.
    """

    frequency_hz: float
    kappa_hz: float
    kappa_ex_hz: float

    def __post_init__(self) -> None:
        if not self.frequency_hz > 0:
            raise ValueError(f"optical frequency_hz must be > 0, got {self.frequency_hz}")
        if not self.kappa_hz > 0:
            raise ValueError(f"optical kappa_hz must be > 0, got {self.kappa_hz}")
        if not 0 < self.kappa_ex_hz <= self.kappa_hz:
            raise ValueError(
                f"optical kappa_ex_hz must be in (0, kappa_hz={self.kappa_hz}], "
                f"got {self.kappa_ex_hz}"
            )

    @property
    def kappa_0_hz(self) -> float:
        """Intrinsic loss rate: kappa = kappa_ex + kappa_0."""
        return self.kappa_hz - self.kappa_ex_hz

    @property
    def wavelength_m(self) -> float:
        """Vacuum wavelength of the resonance."""
        return float(frequency_to_wavelength(self.frequency_hz))

    @property
    def min_transmission(self) -> float:
        """Power transmission on resonance, ((k0 - kex)/(k0 + kex))^2."""
        return ((self.kappa_0_hz - self.kappa_ex_hz) / self.kappa_hz) ** 2

    def amplitude_transmission(self, laser_frequency_hz):
        """Through-port field transmission t(Delta), Delta = laser - cavity frequency."""
        detuning = np.asarray(laser_frequency_hz, dtype=float) - self.frequency_hz
        return ((self.kappa_0_hz - self.kappa_ex_hz) / 2 - 1j * detuning) / (
            self.kappa_hz / 2 - 1j * detuning
        )

    def transmission(self, laser_frequency_hz):
        """Through-port power transmission T = 1 - k0 kex / (Delta^2 + k^2/4)."""
        return np.abs(self.amplitude_transmission(laser_frequency_hz)) ** 2
