"""The three-mode electro-optic transducer as the transduction fits see it (physics.md §1.3).

Rates are full widths in Hz (kappa/2pi), frequencies in Hz; only photon numbers need rad/s
(:func:`photons_per_watt`). Ports of the scattering matrix: ``o_ex`` (optical bus), ``o_0``
(optical loss), ``m_ex`` (microwave line), ``m_0`` (microwave loss).

With ``a = kappa_o/2 - i(w - delta_o)`` and ``b = kappa_m/2 - i(w - delta_m)`` (the inverse
susceptibilities; ``delta`` = mode minus frame), ``D = a b + g^2`` and ``g^2 = C kappa_o kappa_m / 4``,
``S = I - L (-i w I - M)^-1 L^T`` has the elements

* optical -> optical ``S[o_x, o_y] = delta_xy - sqrt(k_ox k_oy) b / D``,
* microwave -> microwave ``S[m_x, m_y] = delta_xy - sqrt(k_mx k_my) a / D``,
* conversion ``S[o_x, m_y] = S[m_y, o_x] = i g sqrt(k_ox k_my) / D``,

so ``|S[o_ex, m_ex]|^2 = k_o,ex k_m,ex |g chi_o chi_m / (1 + g^2 chi_o chi_m)|^2`` and, on resonance,
``eta_o eta_m 4C/(1 + C)^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.constants import Planck

PORTS = ("o_ex", "o_0", "m_ex", "m_0")


@dataclass(frozen=True)
class Rates:
    """Linewidths (full widths, Hz) of the optical signal mode and the microwave mode."""

    kappa_o_hz: float
    kappa_o_ex_hz: float
    kappa_m_hz: float
    kappa_m_ex_hz: float

    def __post_init__(self) -> None:
        for total, part, name in ((self.kappa_o_hz, self.kappa_o_ex_hz, "kappa_o"),
                                  (self.kappa_m_hz, self.kappa_m_ex_hz, "kappa_m")):
            if not (math.isfinite(total) and total > 0 and 0 < part <= total):
                raise ValueError(f"{name}: need 0 < {name}_ex <= {name}, got {part} and {total} Hz")

    @property
    def eta_o(self) -> float:
        """Optical extraction kappa_o,ex / kappa_o."""
        return self.kappa_o_ex_hz / self.kappa_o_hz

    @property
    def eta_m(self) -> float:
        """Microwave extraction kappa_m,ex / kappa_m."""
        return self.kappa_m_ex_hz / self.kappa_m_hz

    def port_rate(self, port: str) -> tuple[str, float]:
        """(mode, rate in Hz) of a port."""
        return {"o_ex": ("o", self.kappa_o_ex_hz), "o_0": ("o", self.kappa_o_hz - self.kappa_o_ex_hz),
                "m_ex": ("m", self.kappa_m_ex_hz), "m_0": ("m", self.kappa_m_hz - self.kappa_m_ex_hz)
                }[port]


def s_element(out_port: str, in_port: str, offset_hz, cooperativity, rates: Rates,
              delta_o_hz=0.0, delta_m_hz=0.0):
    """One element S[out, in] of the device scattering matrix at probe offset ``offset_hz``
    (from the frame: the microwave probe minus the microwave frame frequency)."""
    if out_port not in PORTS or in_port not in PORTS:
        raise ValueError(f"ports must be among {PORTS}, got {out_port!r}, {in_port!r}")
    w = np.asarray(offset_hz, dtype=float)
    c = np.clip(np.asarray(cooperativity, dtype=float), 0.0, None)
    g = np.sqrt(c * rates.kappa_o_hz * rates.kappa_m_hz / 4)
    a = rates.kappa_o_hz / 2 - 1j * (w - delta_o_hz)
    b = rates.kappa_m_hz / 2 - 1j * (w - delta_m_hz)
    d = a * b + g ** 2
    mode_out, k_out = rates.port_rate(out_port)
    mode_in, k_in = rates.port_rate(in_port)
    root = math.sqrt(k_out * k_in)
    if mode_out != mode_in:
        return 1j * g * root / d
    same = 1.0 if out_port == in_port else 0.0
    return same - root * (b if mode_out == "o" else a) / d


def conversion_efficiency(offset_hz, cooperativity, rates: Rates, delta_o_hz=0.0, delta_m_hz=0.0):
    """On-chip total efficiency |S[o_ex, m_ex]|^2 at a probe offset (physics.md §1.3 spectrum)."""
    return np.abs(s_element("o_ex", "m_ex", offset_hz, cooperativity, rates, delta_o_hz,
                            delta_m_hz)) ** 2


def efficiency_on_resonance(cooperativity, eta_o: float = 1.0, eta_m: float = 1.0):
    """eta_o eta_m 4C / (1 + C)^2 (physics.md §1.3, on resonance)."""
    c = np.asarray(cooperativity, dtype=float)
    return eta_o * eta_m * 4 * c / (1 + c) ** 2


def detuning_factor(detuning_hz, kappa_hz: float):
    """C(Delta_p) / C(0) = 1 / (1 + 4 Delta_p^2 / kappa_p^2) (physics.md §1.3, pump detuning)."""
    return 1.0 / (1.0 + 4 * (np.asarray(detuning_hz, dtype=float) / kappa_hz) ** 2)


def photons_per_watt(frequency_hz: float, kappa_hz: float, kappa_ex_hz: float,
                     detuning_hz: float = 0.0) -> float:
    """Intracavity photons per watt at the device port: kappa_ex/(Delta^2 + kappa^2/4) / (hbar w)
    with rates in rad/s (physics.md §1.1); in Hz that is kappa_ex / (2 pi (Delta^2 + kappa^2/4) h f)."""
    lorentz = kappa_ex_hz / (2 * math.pi * (detuning_hz ** 2 + kappa_hz ** 2 / 4))
    return lorentz / (Planck * frequency_hz)


def g0_from_cooperativity_slope(c_per_watt: float, rates: Rates, pump_frequency_hz: float,
                                kappa_p_hz: float | None = None,
                                kappa_p_ex_hz: float | None = None) -> float:
    """g0/2pi (Hz) from C = 4 g0^2 n_p / (kappa_o kappa_m) with n_p = (photons per watt) P at zero
    pump detuning (physics.md §1.3); the pump mode's rates default to the signal mode's."""
    kappa_p = rates.kappa_o_hz if kappa_p_hz is None else kappa_p_hz
    kappa_p_ex = rates.kappa_o_ex_hz if kappa_p_ex_hz is None else kappa_p_ex_hz
    n_per_watt = photons_per_watt(pump_frequency_hz, kappa_p, kappa_p_ex)
    return math.sqrt(c_per_watt * rates.kappa_o_hz * rates.kappa_m_hz / (4 * n_per_watt))
