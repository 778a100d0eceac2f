"""The imperfections of a real transducer lab, as plain functions (imperfections.md, physics.md).

Each function is one published formula or model; :mod:`hil.twin.physics` decides when to apply
it (only when its ``twin:`` key turns it on, so the ideal twin's numbers stay untouched).
"""

from __future__ import annotations

import math

import numpy as np

from hil.twin.noise import pulsed_hot_bath
from hil.twin.quanta import thermal_occupancy

#: Temperature of the room-temperature end of the microwave input line (K).
ROOM_K = 300.0


# --- pulses (physics.md §1.6 item 7, imperfections.md §1-2) --------------------------------------
def pulse_train_response(pulse_s: float, duty: float, tau_rise_s: float,
                         tau_fall_s: float) -> tuple[float, float]:
    """Periodic first-order response x(t) to a unit pulse train (x -> 1 with ``tau_rise_s`` in a
    pulse, -> 0 with ``tau_fall_s`` between): ``(in-pulse mean, between-pulse mean)``.

    Built on the hot-bath recursion ``pulsed_hot_bath`` (n_floor 0, n_ss 1): from the start of
    pulse value x_b and end value x_e, the means are ``1 - (1 - x_b) tau_r/t_p (1 - e^{-t_p/tau_r})``
    and ``x_e tau_f/t_off (1 - e^{-t_off/tau_f})``. CW (duty 1): (1, 0)."""
    if duty >= 1.0:
        return 1.0, 0.0
    period = pulse_s / duty
    base, end = pulsed_hot_bath(0.0, 1.0, pulse_s, 1.0 / period, tau_rise_s, tau_fall_s)
    off = period - pulse_s
    in_mean = 1.0 - (1.0 - base) * tau_rise_s / pulse_s * -math.expm1(-pulse_s / tau_rise_s)
    off_mean = end * tau_fall_s / off * -math.expm1(-off / tau_fall_s)
    return in_mean, off_mean


# --- quasiparticles (imperfections.md §1) --------------------------------------------------------
def quasiparticle_shifts(on_chip_w: float, loss_hz_per_w_gamma: float, shift_hz_per_w_gamma: float,
                         exponent: float) -> tuple[float, float]:
    """Steady (delta kappa_m,0, delta f_m) in Hz: (+b_k P^gamma, -b_f P^gamma) (physics.md §1.2)."""
    x = max(on_chip_w, 0.0) ** exponent
    return loss_hz_per_w_gamma * x, -shift_hz_per_w_gamma * x


# --- device heating (imperfections.md §3) --------------------------------------------------------
def device_steady_k(t_mxc_k: float, absorbed_w: float, conductance_w_per_k4: float) -> float:
    """T_d = (T_mc^4 + P_abs / K_d)^(1/4): phonon (T^4) conduction to the mixing chamber."""
    return (t_mxc_k ** 4 + max(absorbed_w, 0.0) / conductance_w_per_k4) ** 0.25


# --- optics (imperfections.md §4, physics.md §1.1, §1.7) ----------------------------------------
def lorentzian_filling(detuning_hz, kappa_hz: float):
    """Intracavity energy relative to resonance: (kappa/2)^2 / (Delta^2 + (kappa/2)^2)."""
    d = np.asarray(detuning_hz, dtype=float)
    return (kappa_hz / 2) ** 2 / (d ** 2 + (kappa_hz / 2) ** 2)


def doublet_filling(detuning_hz, kappa_hz: float, beta_hz: float):
    """Pump photons of a backscatter doublet relative to the singlet's peak:
    ``(|chi(D - beta)|^2 + |chi(D + beta)|^2) / 2`` normalised by |chi(0)|^2 (each standing-wave
    mode takes half the pump)."""
    return 0.5 * (lorentzian_filling(np.asarray(detuning_hz) - beta_hz, kappa_hz)
                  + lorentzian_filling(np.asarray(detuning_hz) + beta_hz, kappa_hz))


def doublet_transmission(detuning_hz, kappa_hz: float, kappa_ex_hz: float, beta_hz: float):
    """Through-port power of a doublet (imperfections.md §4.4):
    ``t = 1 - (kappa_ex/2)[chi(D - beta) + chi(D + beta)]``, ``chi(x) = 1/(kappa/2 - i x)``;
    at beta = 0 it is physics.md §1.1's singlet."""
    d = np.asarray(detuning_hz, dtype=float)

    def chi(x):
        return 1.0 / (kappa_hz / 2 - 1j * x)

    t = 1 - (kappa_ex_hz / 2) * (chi(d - beta_hz) + chi(d + beta_hz))
    return np.abs(t) ** 2


def thermo_steady_shift(laser_detuning_hz: float, shift_per_w: float, average_w: float, kappa_hz: float,
                        start_hz: float = 0.0, tol_hz: float = 1.0) -> float:
    """Self-consistent thermo-optic shift s (Hz, <= 0: red) of a mode heated by its own filling,
    ``s = -K P L(Delta - s)`` (physics.md §1.7, Carmon et al. 2004), found by relaxing
    ``ds/dt = s_ss(s) - s`` from ``start_hz``: in the bistable range it lands on the branch the
    mode was on, which makes the triangle and the direction dependence of a sweep."""
    s = start_hz
    amplitude = shift_per_w * average_w
    if amplitude == 0:
        return 0.0
    step = 0.2
    for _ in range(20000):
        target = -amplitude * float(lorentzian_filling(laser_detuning_hz - s, kappa_hz))
        if abs(target - s) < tol_hz:
            return target
        s += step * (target - s)
    return s


def thermo_relax(shift_hz: float, laser_detuning_hz: float, shift_per_w: float, average_w: float,
                 kappa_hz: float, elapsed_s: float, tau_s: float) -> float:
    """The thermo-optic shift after ``elapsed_s`` of ``ds/dt = (s_ss(s) - s)/tau`` (RK4 steps of
    at most tau/20; past 30 tau, or tau = 0, the steady branch reached from ``shift_hz``)."""
    if tau_s == 0 or elapsed_s > 30 * tau_s:
        return thermo_steady_shift(laser_detuning_hz, shift_per_w, average_w, kappa_hz, shift_hz)
    if elapsed_s <= 0:
        return shift_hz
    amplitude = shift_per_w * average_w

    def rate(s: float) -> float:
        return (-amplitude * float(lorentzian_filling(laser_detuning_hz - s, kappa_hz)) - s) / tau_s

    steps = max(1, math.ceil(elapsed_s / (tau_s / 20)))
    h = elapsed_s / steps
    s = shift_hz
    for _ in range(steps):
        k1 = rate(s)
        k2 = rate(s + h * k1 / 2)
        k3 = rate(s + h * k2 / 2)
        k4 = rate(s + h * k3)
        s += h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    return s


# --- microwave side (imperfections.md §7) --------------------------------------------------------
def line_occupancy(frequency_hz: float, stages: list[tuple[float, float]], source_k: float = ROOM_K) -> float:
    """Input-line occupancy after attenuators ``[(A_dB, T_K), ...]`` from the room end:
    ``n <- n / A + n_th(T_i)(1 - 1/A)``, starting at n_th(f, 300 K)."""
    n = float(thermal_occupancy(frequency_hz, source_k))
    for atten_db, temperature_k in stages:
        a = 10 ** (atten_db / 10)
        n = n / a + float(thermal_occupancy(frequency_hz, temperature_k)) * (1 - 1 / a)
    return n


def ripple_amplitude(frequency_hz, ripple_db: float, period_hz: float):
    """Field factor of an output gain ``G(f) = G0 + ripple_db sin(2 pi f / period)`` (dB)."""
    f = np.asarray(frequency_hz, dtype=float)
    return 10 ** (ripple_db * np.sin(2 * np.pi * f / period_hz) / 20)


def compression_amplitude(input_w, p1db_w: float):
    """Field factor of a HEMT compressing as G = G0 / (1 + P/P_sat), P_sat = P1dB/(10^0.1 - 1),
    so the gain is 1 dB down at P = P1dB."""
    p_sat = p1db_w / (10 ** 0.1 - 1)
    return 1.0 / np.sqrt(1.0 + np.asarray(input_w, dtype=float) / p_sat)
