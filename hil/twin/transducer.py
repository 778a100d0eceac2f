"""The electro-optic three-mode transducer (physics.md §1.3).

A pump laser near the optical pump mode (frequency ``pump_frequency_hz``) makes a beam-splitter
coupling ``g = g0 sqrt(n_p)`` between the optical signal mode ``a`` (one microwave frequency above
the pump mode) and the microwave mode ``b``. Linearised, in the frame of the microwave probe
(microwave at ``f_m``, optical at ``f_laser + f_m``)::

    M = [[-kappa_o/2 - i delta_o, -i g], [-i g, -kappa_m/2 - i delta_m]]
    S(w) = I - L (-i w I - M)^-1 L^T,   L = [[sqrt(k_o,ex), 0], [sqrt(k_o,0), 0],
                                             [0, sqrt(k_m,ex)], [0, sqrt(k_m,0)]]

on the ports ``[o_ex, o_0, m_ex, m_0]`` (bus waveguide, optical loss, microwave line, microwave
loss). ``S[k, j]`` is the amplitude from input port j to output port k, normalised to photon flux,
so S is unitary. Physics sign convention ``exp(-i w t)``; ``delta = mode - frame`` frequency.

Units: every rate is a full width in Hz (kappa/2pi) and every frequency in Hz. S depends only on
ratios of rates, so the 2 pi cancels; only photon numbers need rad/s (done in
:mod:`hil.twin.quanta`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from hil.twin.optical import wavelength_to_frequency
from hil.twin.params import TransducerParams
from hil.twin.quanta import driven_photons

#: Port order of the scattering matrix (physics.md §1.3).
PORTS = ("o_ex", "o_0", "m_ex", "m_0")
O_EX, O_0, M_EX, M_0 = range(4)


def efficiency_on_resonance(cooperativity, eta_o: float = 1.0, eta_m: float = 1.0):
    """eta_tot = eta_o eta_m 4C / (1 + C)^2 (physics.md §1.3, on resonance; eta_o = eta_m = 1: eta_int)."""
    c = np.asarray(cooperativity, dtype=float)
    return eta_o * eta_m * 4 * c / (1 + c) ** 2


def conversion_spectrum_closed_form(offset_hz, g_hz, kappa_o_hz, kappa_o_ex_hz, kappa_m_hz, kappa_m_ex_hz,
                                    delta_o_hz=0.0, delta_m_hz=0.0):
    """eta(w) = k_o,ex k_m,ex |g chi_o chi_m / (1 + g^2 chi_o chi_m)|^2 with
    chi_j = 1/(k_j/2 - i(w - delta_j)) (physics.md §1.3)."""
    w = np.asarray(offset_hz, dtype=float)
    chi_o = 1.0 / (kappa_o_hz / 2 - 1j * (w - delta_o_hz))
    chi_m = 1.0 / (kappa_m_hz / 2 - 1j * (w - delta_m_hz))
    return kappa_o_ex_hz * kappa_m_ex_hz * np.abs(g_hz * chi_o * chi_m / (1 + g_hz ** 2 * chi_o * chi_m)) ** 2


@dataclass(frozen=True)
class EOTransducer:
    """Three-mode electro-optic transducer; rates are full widths in Hz.

    ``pump_frequency_hz`` is the optical pump mode (the laser detuning ``Delta_p = f_laser -
    pump_frequency_hz``); the signal mode sits at ``pump_frequency_hz + f_m_hz + fsr_mismatch_hz``.
    Pump and signal modes share ``kappa_o_hz``/``kappa_o_ex_hz``.
    """

    f_m_hz: float
    g0_hz: float
    pump_frequency_hz: float
    kappa_o_hz: float
    kappa_o_ex_hz: float
    kappa_m_hz: float
    kappa_m_ex_hz: float
    fsr_mismatch_hz: float = 0.0

    def __post_init__(self) -> None:
        for name in ("f_m_hz", "pump_frequency_hz", "kappa_o_hz", "kappa_m_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"transducer {name} must be > 0, got {value}")
        if not (math.isfinite(self.g0_hz) and self.g0_hz >= 0):
            raise ValueError(f"transducer g0_hz must be >= 0, got {self.g0_hz}")
        if not 0 < self.kappa_o_ex_hz <= self.kappa_o_hz:
            raise ValueError(f"transducer kappa_o_ex_hz must be in (0, kappa_o_hz={self.kappa_o_hz}], "
                             f"got {self.kappa_o_ex_hz}")
        if not 0 < self.kappa_m_ex_hz <= self.kappa_m_hz:
            raise ValueError(f"transducer kappa_m_ex_hz must be in (0, kappa_m_hz={self.kappa_m_hz}], "
                             f"got {self.kappa_m_ex_hz}")

    @classmethod
    def from_params(cls, p: TransducerParams) -> EOTransducer:
        return cls(f_m_hz=p.f_m_hz, g0_hz=p.g0_hz,
                   pump_frequency_hz=float(wavelength_to_frequency(p.pump_wavelength_m)),
                   kappa_o_hz=p.kappa_o_hz, kappa_o_ex_hz=p.kappa_o_ex_hz,
                   kappa_m_hz=p.kappa_m_hz, kappa_m_ex_hz=p.kappa_m_ex_hz,
                   fsr_mismatch_hz=p.fsr_mismatch_hz)

    # --- rates and extraction ratios ------------------------------------------------------------
    @property
    def kappa_o_0_hz(self) -> float:
        return self.kappa_o_hz - self.kappa_o_ex_hz

    @property
    def kappa_m_0_hz(self) -> float:
        return self.kappa_m_hz - self.kappa_m_ex_hz

    @property
    def eta_o(self) -> float:
        """Optical extraction kappa_o,ex / kappa_o."""
        return self.kappa_o_ex_hz / self.kappa_o_hz

    @property
    def eta_m(self) -> float:
        """Microwave extraction kappa_m,ex / kappa_m."""
        return self.kappa_m_ex_hz / self.kappa_m_hz

    @property
    def eta_max(self) -> float:
        """Peak on-chip efficiency eta_o eta_m, reached at C = 1."""
        return self.eta_o * self.eta_m

    @property
    def signal_frequency_hz(self) -> float:
        """Optical signal mode: pump mode + f_m + mismatch."""
        return self.pump_frequency_hz + self.f_m_hz + self.fsr_mismatch_hz

    # --- pump -> photons -> cooperativity ------------------------------------------------------
    def pump_photons(self, power_w, pump_detuning_hz=0.0):
        """Intracavity pump photons n_p = k_p,ex/(Delta_p^2 + k_p^2/4) P/(hbar w_L), P on chip (W).

        The photon energy is the laser's (pump mode + Delta_p), a 1e-7-level correction to the
        Lorentzian factor of C(Delta_p) for MHz detunings."""
        return driven_photons(power_w, self.pump_frequency_hz + np.asarray(pump_detuning_hz),
                              self.kappa_o_hz, self.kappa_o_ex_hz, pump_detuning_hz)

    def coupling_hz(self, power_w, pump_detuning_hz=0.0):
        """Pump-enhanced coupling g/2pi = g0/2pi sqrt(n_p), in Hz."""
        return self.g0_hz * np.sqrt(self.pump_photons(power_w, pump_detuning_hz))

    def cooperativity(self, power_w, pump_detuning_hz=0.0):
        """C = 4 g0^2 n_p / (kappa_o kappa_m); off resonance C(Delta_p) = C(0)/(1 + 4 Delta_p^2/kappa_p^2)."""
        return 4 * self.g0_hz ** 2 * self.pump_photons(power_w, pump_detuning_hz) / (
            self.kappa_o_hz * self.kappa_m_hz)

    def coupling_for_cooperativity(self, cooperativity):
        """g (Hz) giving cooperativity C: g = sqrt(C kappa_o kappa_m / 4)."""
        return np.sqrt(np.asarray(cooperativity, dtype=float) * self.kappa_o_hz * self.kappa_m_hz / 4)

    def p_c1_w(self, pump_detuning_hz: float = 0.0) -> float:
        """On-chip pump power for C = 1 (where eta_tot peaks at eta_o eta_m)."""
        c_per_watt = float(self.cooperativity(1.0, pump_detuning_hz))
        return math.inf if c_per_watt == 0 else 1.0 / c_per_watt

    def signal_detuning_hz(self, pump_detuning_hz=0.0):
        """delta_o = signal mode - (laser + f_m) = fsr_mismatch - Delta_p (mode minus frame)."""
        return self.fsr_mismatch_hz - np.asarray(pump_detuning_hz, dtype=float)

    # --- scattering matrix ------------------------------------------------------------------------
    def scattering(self, offset_hz, g_hz, delta_o_hz=0.0, delta_m_hz=0.0) -> np.ndarray:
        """S(w) of shape offset.shape + (4, 4), ports [o_ex, o_0, m_ex, m_0].

        ``offset_hz`` is w/2pi, the probe's offset from the frame (microwave: f - f_m); ``g_hz``,
        ``delta_o_hz``, ``delta_m_hz`` broadcast against it.
        """
        w, g, d_o, d_m = np.broadcast_arrays(*(np.asarray(x, dtype=float)
                                               for x in (offset_hz, g_hz, delta_o_hz, delta_m_hz)))
        # A = -i w I - M, inverted in closed form (2 x 2)
        a11 = -1j * w + self.kappa_o_hz / 2 + 1j * d_o
        a22 = -1j * w + self.kappa_m_hz / 2 + 1j * d_m
        a12 = 1j * g
        det = a11 * a22 - a12 * a12
        inv = np.empty(w.shape + (2, 2), dtype=complex)
        inv[..., 0, 0] = a22 / det
        inv[..., 1, 1] = a11 / det
        inv[..., 0, 1] = -a12 / det
        inv[..., 1, 0] = -a12 / det
        lmat = np.zeros((4, 2))
        lmat[O_EX, 0] = math.sqrt(self.kappa_o_ex_hz)
        lmat[O_0, 0] = math.sqrt(self.kappa_o_0_hz)
        lmat[M_EX, 1] = math.sqrt(self.kappa_m_ex_hz)
        lmat[M_0, 1] = math.sqrt(self.kappa_m_0_hz)
        return np.eye(4) - np.einsum("ka,...ab,jb->...kj", lmat, inv, lmat)

    def s_matrix(self, probe_hz, power_w, pump_detuning_hz=0.0) -> np.ndarray:
        """S at an absolute microwave probe frequency (Hz) for an on-chip pump power (W).

        The optical probe (an EOM sideband of the laser at ``f_laser + probe_hz``) sees the same
        offset ``probe_hz - f_m``; the pump detuning lowers g and moves the signal mode in the frame.
        """
        g = self.coupling_hz(power_w, pump_detuning_hz)
        offset = np.asarray(probe_hz, dtype=float) - self.f_m_hz
        return self.scattering(offset, g, self.signal_detuning_hz(pump_detuning_hz), 0.0)

    def conversion(self, probe_hz, power_w, pump_detuning_hz=0.0, direction: str = "m->o"):
        """Complex conversion amplitude: ``"m->o"`` S[o_ex, m_ex] or ``"o->m"`` S[m_ex, o_ex]."""
        s = self.s_matrix(probe_hz, power_w, pump_detuning_hz)
        if direction == "m->o":
            return s[..., O_EX, M_EX]
        if direction == "o->m":
            return s[..., M_EX, O_EX]
        raise ValueError(f"direction must be 'm->o' or 'o->m', got {direction!r}")

    def reflection(self, probe_hz, power_w, pump_detuning_hz=0.0, port: str = "m"):
        """Complex reflection S_ee (``port="m"``, microwave line) or S_oo (``port="o"``, bus)."""
        s = self.s_matrix(probe_hz, power_w, pump_detuning_hz)
        if port == "m":
            return s[..., M_EX, M_EX]
        if port == "o":
            return s[..., O_EX, O_EX]
        raise ValueError(f"port must be 'm' or 'o', got {port!r}")

    def efficiency(self, power_w, pump_detuning_hz=0.0, probe_hz=None):
        """On-chip total efficiency eta_tot = |S_oe|^2 (at ``probe_hz``, default f_m)."""
        probe = self.f_m_hz if probe_hz is None else probe_hz
        return np.abs(self.conversion(probe, power_w, pump_detuning_hz)) ** 2

    # --- spectrum at a given cooperativity ------------------------------------------------------
    def conversion_spectrum(self, offset_hz, cooperativity, delta_o_hz=0.0, delta_m_hz=0.0):
        """|S_oe(w)|^2 vs probe offset (Hz) at cooperativity C (matrix form)."""
        g = self.coupling_for_cooperativity(cooperativity)
        return np.abs(self.scattering(offset_hz, g, delta_o_hz, delta_m_hz)[..., O_EX, M_EX]) ** 2

    def normal_modes(self, g_hz, delta_o_hz: float = 0.0, delta_m_hz: float = 0.0):
        """Eigen-frequencies (Hz, in the frame) and full linewidths (Hz) of the coupled modes.

        For zero detunings they split (distinct frequencies) when 4g > |kappa_o - kappa_m|.
        """
        m = np.array([[-self.kappa_o_hz / 2 - 1j * delta_o_hz, -1j * g_hz],
                      [-1j * g_hz, -self.kappa_m_hz / 2 - 1j * delta_m_hz]])
        lam = np.linalg.eigvals(m)
        lam = lam[np.argsort(lam.imag)]  # highest frequency (-Im lambda) first
        return -lam.imag, -2 * lam.real

    def _spectrum_grid(self, cooperativity: float, delta_o_hz: float, delta_m_hz: float):
        g = float(self.coupling_for_cooperativity(cooperativity))
        centre = 0.5 * (delta_o_hz + delta_m_hz)
        half_span = 6 * (self.kappa_o_hz + self.kappa_m_hz + 2 * g + abs(delta_o_hz - delta_m_hz))
        x = np.linspace(centre - half_span, centre + half_span, 40001)
        y = self.conversion_spectrum(x, cooperativity, delta_o_hz, delta_m_hz)
        return x, y

    def conversion_peaks_hz(self, cooperativity: float, delta_o_hz: float = 0.0,
                            delta_m_hz: float = 0.0) -> np.ndarray:
        """Offsets (Hz) of the local maxima of |S_oe(w)|^2: one peak, or two once normal modes split."""
        x, y = self._spectrum_grid(cooperativity, delta_o_hz, delta_m_hz)
        idx = np.flatnonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])) + 1
        step = x[1] - x[0]
        peaks = []
        for i in idx:
            res = minimize_scalar(
                lambda w: -float(self.conversion_spectrum(w, cooperativity, delta_o_hz, delta_m_hz)),
                bounds=(x[i] - step, x[i] + step), method="bounded",
                options={"xatol": 1e-9 * max(self.kappa_m_hz, 1.0)})
            peaks.append(res.x)
        return np.array(peaks)

    def bandwidth_hz(self, cooperativity: float, delta_o_hz: float = 0.0, delta_m_hz: float = 0.0) -> float:
        """Full width at half maximum (Hz) of the conversion spectrum |S_oe(w)|^2.

        Where the normal modes split, the width between the outermost half-maximum points.
        For kappa_o >> kappa_m it approaches kappa_m (1 + C) (physics.md §1.3).
        """
        x, y = self._spectrum_grid(cooperativity, delta_o_hz, delta_m_hz)
        peaks = self.conversion_peaks_hz(cooperativity, delta_o_hz, delta_m_hz)
        refined = self.conversion_spectrum(peaks, cooperativity, delta_o_hz, delta_m_hz)
        half = max(float(y.max()), float(np.max(refined, initial=0.0))) / 2

        def f(w: float) -> float:
            return float(self.conversion_spectrum(w, cooperativity, delta_o_hz, delta_m_hz)) - half

        above = np.flatnonzero(y >= half)
        lo, hi = above[0], above[-1]
        tol = 1e-12 * (self.kappa_o_hz + self.kappa_m_hz)
        left = brentq(f, x[lo - 1], x[lo], xtol=tol)
        right = brentq(f, x[hi], x[hi + 1], xtol=tol)
        return right - left
