"""Thermal occupancy, pump heating and added noise of the transducer (physics.md §1.5, §1.6).

Bath occupancies (photons above vacuum) sit on the four ports of the scattering matrix:
``[o_ex, o_0, m_ex, m_0] = [0, 0, n_line, n_int]`` (optical baths are cold; ``n_line`` is the
microwave input line; ``n_int`` the microwave mode's internal bath, heated by the pump:
``n_int = n_floor + A (P/P_ref)^alpha`` [+ n_th(f_m, T_mc) if a bath temperature is given]).
Each output carries ``N_k(w) = sum_j |S_kj(w)|^2 n_j``, and the added noise referred to input j
is ``N_add = (N_k - |S_kj|^2 n_j) / |S_kj|^2`` (physics.md §1.5 bookkeeping).

Spectrum-analyzer view of the microwave output: the output chain (power gain ``G``, noise
temperature ``T_N``, i.e. ``n_amp = k_B T_N / (h f)`` photons, vacuum half-quantum included in
it) gives a power spectral density at the analyzer input
``PSD(f) = G h f (N_m(f) + n_amp) + DANL`` in W/Hz, so ``n_out = PSD/(G h f) - n_amp``
(physics.md §3 (g)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from hil.twin.params import NoiseParams, TwinParams
from hil.twin.quanta import K_B, photon_energy_j, thermal_occupancy
from hil.twin.transducer import M_EX, O_EX, EOTransducer
from hil.units import dbm_to_w, w_to_dbm

__all__ = [
    "NoiseModel", "added_noise_m_to_o", "added_noise_o_to_m", "amplifier_occupancy", "dbm_to_w",
    "mode_occupancy", "pulsed_hot_bath", "pump_heating_occupancy", "thermal_occupancy", "w_to_dbm",
]


def pump_heating_occupancy(power_w, n_floor: float, heating_a: float, heating_alpha: float,
                           p_ref_w: float):
    """Hot-bath occupancy n_int = n_floor + A (P / P_ref)^alpha (physics.md §1.6 item 1, §4)."""
    p = np.asarray(power_w, dtype=float)
    return n_floor + heating_a * (np.clip(p, 0.0, None) / p_ref_w) ** heating_alpha


def added_noise_m_to_o(n_int, eta_m: float):
    """m->o input-referred added noise n_int (1 - eta_m) / eta_m, independent of C (§1.5)."""
    return np.asarray(n_int, dtype=float) * (1 - eta_m) / eta_m


def added_noise_o_to_m(n_int, eta_o: float, eta_m: float, cooperativity):
    """o->m input-referred added noise n_int (1 - eta_m) / (eta_o C), cold line (§1.5)."""
    return np.asarray(n_int, dtype=float) * (1 - eta_m) / (eta_o * np.asarray(cooperativity, dtype=float))


def mode_occupancy(n_int, n_line, kappa_m_hz: float, kappa_m_ex_hz: float, cooperativity):
    """Red-pump microwave-mode occupancy (k_m,0 n_int + k_m,ex n_line) / (k_m (1 + C)) (§1.5)."""
    kappa_0 = kappa_m_hz - kappa_m_ex_hz
    return (kappa_0 * np.asarray(n_int) + kappa_m_ex_hz * np.asarray(n_line)) / (
        kappa_m_hz * (1 + np.asarray(cooperativity)))


def amplifier_occupancy(noise_temp_k, frequency_hz):
    """Added photons of an amplifier chain: n_amp = k_B T_N / (h f)."""
    return K_B * np.asarray(noise_temp_k, dtype=float) / photon_energy_j(frequency_hz)


def pulsed_hot_bath(n_floor: float, n_ss: float, pulse_s: float, rep_hz: float, tau_rise_s: float,
                    tau_fall_s: float) -> tuple[float, float]:
    """Periodic steady state of the hot bath under flat-top pump pulses (physics.md §1.6 item 7).

    During a pulse n relaxes to ``n_ss`` with ``tau_rise_s``, between pulses to ``n_floor`` with
    ``tau_fall_s``. Returns ``(n_base, n_end)``: occupancy just before a pulse and at its end.
    """
    period = 1.0 / rep_hz
    if not 0 < pulse_s <= period:
        raise ValueError(f"pulse length must be in (0, 1/rep_hz = {period:g}] s, got {pulse_s}")
    a = np.exp(-pulse_s / tau_rise_s)
    b = np.exp(-(period - pulse_s) / tau_fall_s)
    n_base = (n_floor * (1 - b) + n_ss * (1 - a) * b) / (1 - a * b)
    n_end = n_ss * (1 - a) + n_base * a
    return float(n_base), float(n_end)


@dataclass(frozen=True)
class NoiseModel:
    """Added noise and output noise spectra of one transducer (powers on chip in W)."""

    transducer: EOTransducer
    params: NoiseParams = NoiseParams()
    output_gain_db: float = 70.0
    amp_noise_temp_k: float = 4.0

    @classmethod
    def from_params(cls, params: TwinParams, transducer: EOTransducer | None = None) -> NoiseModel:
        """Gain and noise temperature of the microwave output chain come from ``twin.lines``
        (``vna_path_gains_db[1]`` = port1_out, ``hemt_noise_temp_k``)."""
        return cls(transducer=transducer or EOTransducer.from_params(params.transducer),
                   params=params.noise, output_gain_db=params.lines.vna_path_gains_db[1],
                   amp_noise_temp_k=params.lines.hemt_noise_temp_k)

    # --- baths ------------------------------------------------------------------------------------
    def n_int(self, power_w, t_bath_k: float | None = None):
        """Microwave internal bath: n_floor + A (P/P_ref)^alpha [+ n_th(f_m, t_bath_k)]."""
        p = self.params
        n = pump_heating_occupancy(power_w, p.n_floor, p.heating_a, p.heating_alpha, p.heating_p_ref_w)
        if t_bath_k is not None:
            n = n + thermal_occupancy(self.transducer.f_m_hz, t_bath_k)
        return n

    def bath_occupancies(self, power_w: float, t_bath_k: float | None = None) -> np.ndarray:
        """[o_ex, o_0, m_ex, m_0] = [0, 0, n_line, n_int(P)]."""
        return np.array([0.0, 0.0, self.params.n_line, float(self.n_int(power_w, t_bath_k))])

    def pulsed_bath(self, peak_power_w: float, pulse_s: float, rep_hz: float) -> tuple[float, float]:
        """(n_base, n_end) of n_int under pulses of ``peak_power_w`` on chip (§1.6 item 7)."""
        p = self.params
        return pulsed_hot_bath(p.n_floor, float(self.n_int(peak_power_w)), pulse_s, rep_hz,
                               p.tau_rise_s, p.tau_fall_s)

    # --- outputs ----------------------------------------------------------------------------------
    def output_occupancy(self, probe_hz, power_w: float, pump_detuning_hz: float = 0.0, port: str = "m",
                         t_bath_k: float | None = None):
        """Noise photons per second per Hz above vacuum, N_k(f) = sum_j |S_kj(f)|^2 n_j, leaving
        the microwave line (``port="m"``) or the optical bus (``"o"``) at probe frequency ``probe_hz``
        (the microwave frequency; for the optical port, the offset of f_laser + probe_hz)."""
        k = {"m": M_EX, "o": O_EX}.get(port)
        if k is None:
            raise ValueError(f"port must be 'm' or 'o', got {port!r}")
        s = self.transducer.s_matrix(probe_hz, power_w, pump_detuning_hz)
        return np.abs(s[..., k, :]) ** 2 @ self.bath_occupancies(power_w, t_bath_k)

    def added_noise(self, direction: str, power_w: float, pump_detuning_hz: float = 0.0, probe_hz=None,
                    t_bath_k: float | None = None):
        """Input-referred added noise of ``"m->o"`` or ``"o->m"`` conversion (S-matrix bookkeeping).

        On resonance with a cold line: m->o n_int (1-eta_m)/eta_m; o->m n_int (1-eta_m)/(eta_o C).
        """
        if direction == "m->o":
            k, j = O_EX, M_EX
        elif direction == "o->m":
            k, j = M_EX, O_EX
        else:
            raise ValueError(f"direction must be 'm->o' or 'o->m', got {direction!r}")
        probe = self.transducer.f_m_hz if probe_hz is None else probe_hz
        s2 = np.abs(self.transducer.s_matrix(probe, power_w, pump_detuning_hz)) ** 2
        n = self.bath_occupancies(power_w, t_bath_k)
        total = s2[..., k, :] @ n
        return (total - s2[..., k, j] * n[j]) / s2[..., k, j]

    def mode_occupancies(self, power_w: float, pump_detuning_hz: float = 0.0,
                         t_bath_k: float | None = None) -> tuple[float, float]:
        """Steady occupancies (<a+a>, <b+b>) of the optical signal and microwave modes, any C.

        Solves the Lyapunov equation M Y + Y M^H = -L diag(n) L^T for Y_ki = <a_i+ a_k>; at zero
        detuning and kappa_o >> kappa_m, <b+b> is the §1.5 closed form
        (k_m,0 n_int + k_m,ex n_line) / (k_m (1 + C))."""
        t = self.transducer
        g = float(t.coupling_hz(power_w, pump_detuning_hz))
        d_o = float(t.signal_detuning_hz(pump_detuning_hz))
        m = np.array([[-t.kappa_o_hz / 2 - 1j * d_o, -1j * g], [-1j * g, -t.kappa_m_hz / 2]])
        lmat = np.sqrt(np.array([[t.kappa_o_ex_hz, t.kappa_o_0_hz, 0, 0],
                                 [0, 0, t.kappa_m_ex_hz, t.kappa_m_0_hz]]))
        q = lmat @ np.diag(self.bath_occupancies(power_w, t_bath_k)) @ lmat.T
        y = solve_continuous_lyapunov(m, -q)
        return float(y[0, 0].real), float(y[1, 1].real)

    def output_psd_w_per_hz(self, frequency_hz, power_w: float, pump_detuning_hz: float = 0.0,
                            t_bath_k: float | None = None, danl_dbm_per_hz: float | None = None):
        """PSD (W/Hz) at the spectrum-analyzer input on the microwave output line:
        G h f (N_m(f) + n_amp(f)) [+ analyzer noise floor ``danl_dbm_per_hz``]."""
        f = np.asarray(frequency_hz, dtype=float)
        n_out = self.output_occupancy(f, power_w, pump_detuning_hz, "m", t_bath_k)
        n_amp = amplifier_occupancy(self.amp_noise_temp_k, f)
        psd = 10 ** (self.output_gain_db / 10) * photon_energy_j(f) * (n_out + n_amp)
        if danl_dbm_per_hz is not None:
            psd = psd + dbm_to_w(danl_dbm_per_hz)
        return psd

    def noise_marker_dbm_per_hz(self, frequency_hz, power_w: float, pump_detuning_hz: float = 0.0,
                                t_bath_k: float | None = None, danl_dbm_per_hz: float | None = -160.0):
        """Spectrum-analyzer noise marker (dBm/Hz) at ``frequency_hz``."""
        return w_to_dbm(self.output_psd_w_per_hz(frequency_hz, power_w, pump_detuning_hz, t_bath_k,
                                                 danl_dbm_per_hz))

    def spectrum_trace_dbm(self, frequency_hz, rbw_hz: float, power_w: float, pump_detuning_hz: float = 0.0,
                           t_bath_k: float | None = None, danl_dbm_per_hz: float | None = -160.0):
        """Mean spectrum-analyzer trace (dBm per RBW bin): PSD x RBW, for RBW << kappa_m."""
        if not rbw_hz > 0:
            raise ValueError(f"rbw_hz must be > 0, got {rbw_hz}")
        return w_to_dbm(rbw_hz * self.output_psd_w_per_hz(frequency_hz, power_w, pump_detuning_hz, t_bath_k,
                                                          danl_dbm_per_hz))

