"""The microwave resonator on its own, as a VNA sees it (physics.md §1.2, Probst et al. 2015).

Rates are full widths in Hz: ``kappa_hz`` loaded, ``kappa_ex_hz`` the coupling to the line
(``Q_c = f_r / kappa_ex``), ``kappa_hz - kappa_ex_hz`` the internal loss (``Q_i``).

Convention: these are the *measurement* (engineering, ``exp(+j w t)``) forms of Probst et al.,
on-resonance reflection ``2 Q_L / Q_c - 1``. The transducer's physics-convention reflection with
the pump off, :meth:`hil.twin.transducer.EOTransducer.reflection`, relates to it by
``S11_probst(f) = -conj(S_ee(f))`` (a phase of pi, absorbed in the environment factor
``a e^{i alpha}`` of the fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hil.twin.params import TransducerParams
from hil.twin.quanta import driven_photons


def _environment(frequency_hz, a: float, alpha: float, tau_s: float):
    f = np.asarray(frequency_hz, dtype=float)
    return a * np.exp(1j * alpha) * np.exp(-2j * np.pi * f * tau_s)


@dataclass(frozen=True)
class MicrowaveResonator:
    """A microwave mode with internal and external loss."""

    frequency_hz: float
    kappa_hz: float
    kappa_ex_hz: float

    def __post_init__(self) -> None:
        if not self.frequency_hz > 0:
            raise ValueError(f"microwave frequency_hz must be > 0, got {self.frequency_hz}")
        if not self.kappa_hz > 0:
            raise ValueError(f"microwave kappa_hz must be > 0, got {self.kappa_hz}")
        if not 0 < self.kappa_ex_hz <= self.kappa_hz:
            raise ValueError(f"microwave kappa_ex_hz must be in (0, kappa_hz={self.kappa_hz}], "
                             f"got {self.kappa_ex_hz}")

    @classmethod
    def from_params(cls, p: TransducerParams) -> MicrowaveResonator:
        return cls(frequency_hz=p.f_m_hz, kappa_hz=p.kappa_m_hz, kappa_ex_hz=p.kappa_m_ex_hz)

    @property
    def kappa_0_hz(self) -> float:
        return self.kappa_hz - self.kappa_ex_hz

    @property
    def q_loaded(self) -> float:
        """Q_L = f_r / kappa."""
        return self.frequency_hz / self.kappa_hz

    @property
    def q_coupling(self) -> float:
        """Q_c = f_r / kappa_ex."""
        return self.frequency_hz / self.kappa_ex_hz

    @property
    def q_internal(self) -> float:
        """Q_i = f_r / kappa_0 (infinite without internal loss)."""
        return np.inf if self.kappa_0_hz == 0 else self.frequency_hz / self.kappa_0_hz

    def s11(self, frequency_hz, a: float = 1.0, alpha: float = 0.0, tau_s: float = 0.0):
        """Reflection S11 = a e^{i alpha} e^{-2 pi i f tau} (2Q_L/Q_c - 1 + 2iQ_L x)/(1 - 2iQ_L x),
        x = (f_r - f)/f_r. On resonance (environment 1): 2 Q_L / Q_c - 1."""
        f = np.asarray(frequency_hz, dtype=float)
        x = 2j * self.q_loaded * (self.frequency_hz - f) / self.frequency_hz
        core = (2 * self.q_loaded / self.q_coupling - 1 + x) / (1 - x)
        return _environment(f, a, alpha, tau_s) * core

    def s21_notch(self, frequency_hz, a: float = 1.0, alpha: float = 0.0, tau_s: float = 0.0,
                  phi: float = 0.0):
        """Side-coupled (notch) S21 = env [1 - (Q_L/|Q_c|) e^{i phi} / (1 + 2iQ_L (f - f_r)/f_r)].

        ``kappa_ex_hz`` is the total coupling to the feedline (both directions), so |Q_c| = Q_c;
        ``phi`` is the impedance-mismatch rotation (diameter correction Q_c = |Q_c| / cos phi)."""
        f = np.asarray(frequency_hz, dtype=float)
        x = 2j * self.q_loaded * (f - self.frequency_hz) / self.frequency_hz
        core = 1 - (self.q_loaded / self.q_coupling) * np.exp(1j * phi) / (1 + x)
        return _environment(f, a, alpha, tau_s) * core

    def photons(self, power_w, drive_hz=None, geometry: str = "reflection"):
        """Mean photons for power ``power_w`` (W) at the device port (physics.md §1.2).

        Reflection: kappa_ex/(Delta^2 + kappa^2/4) P/(hbar w) (4 kappa_c P/(hbar w kappa^2) on
        resonance); notch: half of it (the drive couples through kappa_ex/2)."""
        drive = self.frequency_hz if drive_hz is None else np.asarray(drive_hz, dtype=float)
        n = driven_photons(power_w, drive, self.kappa_hz, self.kappa_ex_hz, drive - self.frequency_hz)
        if geometry == "reflection":
            return n
        if geometry == "notch":
            return n / 2
        raise ValueError(f"geometry must be 'reflection' or 'notch', got {geometry!r}")
