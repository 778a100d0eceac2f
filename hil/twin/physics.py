"""The twin's physics in one place: what each simulated instrument would read, from the lab's state.

:class:`TwinPhysics` wires the parts (transducer, pump cavity, microwave resonator, pump path,
VNA paths, noise, fridge on a clock) from one :class:`~hil.twin.params.TwinParams`. Its methods
take the laser state as arguments (power leaving the laser in W, 0 when off or shuttered;
wavelength in m) and return SI readings, so the instrument coupling only has to pass state in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hil.clock import Clock, VirtualClock
from hil.twin import effects
from hil.twin.fridge import Fridge
from hil.twin.lines import VNA_TO_DEVICE, PumpPath, VnaPaths
from hil.twin.microwave import MicrowaveResonator
from hil.twin.noise import NoiseModel
from hil.twin.optical import OpticalCavity, wavelength_to_frequency
from hil.twin.params import TwinParams
from hil.twin.transducer import M_EX, O_EX, EOTransducer
from hil.units import dbm_to_w


def active_effects(p: TwinParams) -> frozenset[str]:
    """Names of the imperfections ``p`` turns on (empty: the ideal twin, bit for bit)."""
    on = set()
    q = p.quasiparticle
    if q.loss_hz_per_w_gamma or q.shift_hz_per_w_gamma:
        on.add("quasiparticle")
    if p.readout.pulse_timing:
        on.add("pulse_timing")
    if p.device_heating.absorbed_fraction:
        on.add("device_heating")
    o = p.optics
    if o.thermo_shift_hz_per_w:
        on.add("thermo")
    if o.backscatter_hz or o.kappa_p_hz:
        on.add("pump_mode")
    if p.bias.mismatch_hz_per_v:
        on.add("bias")
    m = p.microwave
    if m.atten_4k_db or m.atten_still_db or m.atten_mxc_db:
        on.add("line")
    if m.ripple_db or m.hemt_p1db_w:
        on.add("output_chain")
    return frozenset(on)


class TwinPhysics:
    """Every physical reading of the simulated lab (SI units)."""

    def __init__(self, params: TwinParams | None = None, clock: Clock | None = None) -> None:
        self.params = params or TwinParams()
        self.params.check()
        self.clock: Clock = clock or VirtualClock()
        p = self.params
        self.transducer = EOTransducer.from_params(p.transducer)
        self.pump_cavity = OpticalCavity(frequency_hz=self.transducer.pump_frequency_hz,
                                         kappa_hz=p.transducer.kappa_o_hz,
                                         kappa_ex_hz=p.transducer.kappa_o_ex_hz)
        self.resonator = MicrowaveResonator.from_params(p.transducer)
        self.pump_path = PumpPath.from_params(p.lines)
        self.vna = VnaPaths.from_params(p.lines)
        self.noise = NoiseModel.from_params(p, self.transducer)
        self.fridge = Fridge(p.fridge, self.clock, p.device_heating)
        self.effects = active_effects(p)
        o = p.optics
        self._kappa_p_hz = o.kappa_p_hz or p.transducer.kappa_o_hz
        self._kappa_p_ex_hz = o.kappa_p_ex_hz or p.transducer.kappa_o_ex_hz
        self._thermo_shift_hz = 0.0  # pump-mode thermo-optic shift (<= 0: red)
        self._thermo_t = self.clock.now()
        self._thermo_drive = (0.0, 0.0)  # (average on-chip W, laser - cold pump mode, Hz)
        self.bias_v = 0.0
        self._variants: dict[tuple[float, float, float], EOTransducer] = {}

    # --- imperfections -----------------------------------------------------------------------------
    def set_bias_v(self, volts: float) -> None:
        """Voltage across the crystal now (0 when the source's output is off)."""
        self.bias_v = float(volts)

    def set_thermo_drive(self, average_laser_w: float, laser_wavelength_m: float) -> None:
        """The laser changed: the thermo-optic shift evolves under the old drive until now."""
        self.thermo_shift_hz()
        self._thermo_drive = (self.on_chip_pump_w(average_laser_w),
                              self.pump_detuning_hz(laser_wavelength_m))

    def thermo_shift_hz(self) -> float:
        """The pump mode's thermo-optic shift now (Hz; 0 unless ``optics.thermo_shift_hz_per_w``)."""
        if "thermo" not in self.effects:
            return 0.0
        now = self.clock.now()
        average_w, detuning = self._thermo_drive
        o = self.params.optics
        self._thermo_shift_hz = effects.thermo_relax(self._thermo_shift_hz, detuning, o.thermo_shift_hz_per_w,
                                                     average_w, self._kappa_p_hz, now - self._thermo_t,
                                                     o.thermo_tau_s)
        self._thermo_t = now
        return self._thermo_shift_hz

    def pump_state(self, laser_w: float, laser_wavelength_m: float) -> tuple[float, float]:
        """(on-chip power the transducer sees, pump detuning from the mode as it is now).

        Ideal: (P_chip, f_laser - f_pump). With a thermo-optic shift s the detuning is taken
        from the shifted mode; a doublet or a pump linewidth of its own scales the power by its
        pump-photon number over the signal-mode Lorentzian the transducer assumes."""
        power = self.on_chip_pump_w(laser_w)
        detuning = self.pump_detuning_hz(laser_wavelength_m)
        if "thermo" in self.effects:
            detuning -= self.thermo_shift_hz()
        if "pump_mode" in self.effects:
            t = self.params.transducer
            own = (self._kappa_p_ex_hz / self._kappa_p_hz ** 2) * effects.doublet_filling(
                detuning, self._kappa_p_hz, self.params.optics.backscatter_hz)
            assumed = (t.kappa_o_ex_hz / t.kappa_o_hz ** 2) * effects.lorentzian_filling(detuning,
                                                                                         t.kappa_o_hz)
            power *= float(own / assumed)
        return power, detuning

    def transducer_at(self, on_chip_w: float, fraction: float = 1.0) -> EOTransducer:
        """The transducer with its quasiparticle loss and shift (``fraction`` of the steady value,
        the pulse-averaged response) and the bias-tuned mismatch applied."""
        t = self.transducer
        q = self.params.quasiparticle
        d_kappa, d_f = 0.0, 0.0
        if "quasiparticle" in self.effects:
            d_kappa, d_f = effects.quasiparticle_shifts(on_chip_w, q.loss_hz_per_w_gamma,
                                                        q.shift_hz_per_w_gamma, q.exponent)
            d_kappa, d_f = d_kappa * fraction, d_f * fraction
        d_bias = self.params.bias.mismatch_hz_per_v * self.bias_v if "bias" in self.effects else 0.0
        if d_kappa == 0 and d_f == 0 and d_bias == 0:
            return t
        key = (d_kappa, d_f, d_bias)
        variant = self._variants.get(key)
        if variant is None:
            if len(self._variants) > 256:
                self._variants.clear()
            # The microwave mode moves; the optical signal mode stays where it was.
            variant = replace(t, kappa_m_hz=t.kappa_m_hz + d_kappa, f_m_hz=t.f_m_hz + d_f,
                              fsr_mismatch_hz=t.fsr_mismatch_hz - d_f + d_bias)
            self._variants[key] = variant
        return variant

    def _pulse_fractions(self, tau_rise_s: float, tau_fall_s: float) -> tuple[float, float]:
        lines = self.params.lines
        return effects.pulse_train_response(lines.pump_pulse_s, lines.pump_duty_cycle, tau_rise_s, tau_fall_s)

    def _averaged(self, gated: bool) -> bool:
        """Does a reading average over the pulse train (pulse timing on, pump pulsed, not gated)?"""
        return ("pulse_timing" in self.effects and not gated
                and self.params.lines.pump_duty_cycle < 1.0)

    def _qp_fractions(self) -> tuple[float, float]:
        q = self.params.quasiparticle
        return self._pulse_fractions(q.tau_rise_s, q.tau_fall_s)

    def line_occupancy(self) -> float:
        """Microwave input-line occupancy: ``noise.n_line``, or the attenuator chain's at the
        fridge's present 4 K, still and MXC temperatures."""
        if "line" not in self.effects:
            return self.params.noise.n_line
        m = self.params.microwave
        temps = self.fridge.temperatures()
        return effects.line_occupancy(self.transducer.f_m_hz, [(m.atten_4k_db, temps["4k"]),
                                                               (m.atten_still_db, temps["still"]),
                                                               (m.atten_mxc_db, temps["mixing_chamber"])])

    def bath_temperature_k(self) -> float:
        """Temperature whose thermal occupancy the microwave bath takes: the device's or the MXC's."""
        if "device_heating" in self.effects:
            return self.fridge.device_k()
        return self.fridge.mixing_chamber_k()

    # --- pump -------------------------------------------------------------------------------------
    def pump_detuning_hz(self, laser_wavelength_m: float) -> float:
        """Delta_p = f_laser - f_pump_mode (Hz)."""
        return float(wavelength_to_frequency(laser_wavelength_m)) - self.transducer.pump_frequency_hz

    def on_chip_pump_w(self, laser_w: float) -> float:
        """Pump power at the device port for ``laser_w`` leaving the laser."""
        return float(self.pump_path.on_chip_w(laser_w))

    def monitor_power_w(self, laser_w: float) -> float:
        """Power meter on the monitor tap (W)."""
        return float(self.pump_path.monitor_w(laser_w))

    def through_power_w(self, laser_w: float, laser_wavelength_m: float) -> float:
        """Power meter at the through port after the chip (W), with the pump mode's dip."""
        if self.effects & {"thermo", "pump_mode"}:
            _, detuning = self.pump_state(0.0, laser_wavelength_m)
            transmission = effects.doublet_transmission(detuning, self._kappa_p_hz, self._kappa_p_ex_hz,
                                                        self.params.optics.backscatter_hz)
        else:
            transmission = self.pump_cavity.transmission(wavelength_to_frequency(laser_wavelength_m))
        return float(self.pump_path.through_port_w(laser_w, transmission))

    def cooperativity(self, laser_w: float, laser_wavelength_m: float) -> float:
        """C for the laser state (through the pump path and the pump-mode Lorentzian)."""
        if self.effects:
            power, detuning = self.pump_state(laser_w, laser_wavelength_m)
            return float(self.transducer_at(power, self._qp_fractions()[0]).cooperativity(power, detuning))
        return float(self.transducer.cooperativity(self.on_chip_pump_w(laser_w),
                                                   self.pump_detuning_hz(laser_wavelength_m)))

    # --- VNA --------------------------------------------------------------------------------------
    def vna_trace(self, frequency_hz, s_param: str, laser_w: float, laser_wavelength_m: float):
        """Complex VNA reading of ``s_param`` ("S11" = S_ee, "S21" = M->O, "S12" = O->M,
        "S22" = S_oo, times the path gains) at each frequency (Hz)."""
        if s_param not in VNA_TO_DEVICE:
            raise ValueError(f"s_param must be one of {', '.join(VNA_TO_DEVICE)}, got {s_param!r}")
        f = np.asarray(frequency_hz, dtype=float)
        s = self._device_s(f, laser_w, laser_wavelength_m)
        return self.vna.measure(s_param, f, s)

    def vna_traces(self, frequency_hz, laser_w: float, laser_wavelength_m: float, *, gated: bool = False,
                   vna_power_w: float = 0.0) -> dict[str, np.ndarray]:
        """All four VNA readings at once (``gated``: the VNA triggers on the pump pulses;
        ``vna_power_w``: its source power, which the HEMT may compress)."""
        f = np.asarray(frequency_hz, dtype=float)
        s = self._device_s(f, laser_w, laser_wavelength_m, gated)
        traces = self.vna.two_port(f, s)
        if "output_chain" in self.effects:
            self._output_chain(f, traces, s, vna_power_w)
        return traces

    def _device_s(self, frequency_hz: np.ndarray, laser_w: float, laser_wavelength_m: float,
                  gated: bool = False) -> np.ndarray:
        if not self.effects:
            return self.transducer.s_matrix(frequency_hz, self.on_chip_pump_w(laser_w),
                                            self.pump_detuning_hz(laser_wavelength_m))
        power, detuning = self.pump_state(laser_w, laser_wavelength_m)
        in_pulse, between = self._qp_fractions()
        s = self.transducer_at(power, in_pulse).s_matrix(frequency_hz, power, detuning)
        if self._averaged(gated):
            # A free-running VNA averages the field response over the pulse train.
            duty = self.params.lines.pump_duty_cycle
            s_off = self.transducer_at(power, between).s_matrix(frequency_hz, 0.0, detuning)
            s = duty * s + (1 - duty) * s_off
        return s

    def _output_chain(self, f: np.ndarray, traces: dict[str, np.ndarray], s: np.ndarray,
                      vna_power_w: float) -> None:
        """Gain ripple and HEMT compression on the readings that leave by the microwave line."""
        m = self.params.microwave
        gains = self.params.lines.vna_path_gains_db
        for name, in_port, in_path in (("S11", M_EX, 0), ("S12", O_EX, 2)):
            factor = effects.ripple_amplitude(f, m.ripple_db, m.ripple_period_hz) if m.ripple_db else 1.0
            if m.hemt_p1db_w:
                at_hemt = vna_power_w * 10 ** (gains[in_path] / 10) * np.abs(s[..., M_EX, in_port]) ** 2
                factor = factor * effects.compression_amplitude(at_hemt, m.hemt_p1db_w)
            traces[name] = traces[name] * factor

    # --- spectrum analyzer on the microwave output ------------------------------------------------
    def spectrum_psd_w_per_hz(self, frequency_hz, laser_w: float, laser_wavelength_m: float,
                              danl_dbm_per_hz: float | None = -160.0, gated: bool = False):
        """PSD (W/Hz) at the analyzer: output chain x (device noise + amplifier noise) + DANL.

        The pump heats the microwave bath (peak on-chip power) and the MXC temperature adds its
        thermal occupancy."""
        if self.effects:
            return self._spectrum_psd_with_effects(frequency_hz, laser_w, laser_wavelength_m, danl_dbm_per_hz,
                                                   gated)
        return self.noise.output_psd_w_per_hz(frequency_hz, self.on_chip_pump_w(laser_w),
                                              self.pump_detuning_hz(laser_wavelength_m),
                                              t_bath_k=self.fridge.mixing_chamber_k(),
                                              danl_dbm_per_hz=danl_dbm_per_hz)

    def _spectrum_psd_with_effects(self, frequency_hz, laser_w: float, laser_wavelength_m: float,
                                   danl_dbm_per_hz: float | None, gated: bool):
        """The analyser PSD with the active imperfections: the bath at the device (or MXC)
        temperature, the line's occupancy, the quasiparticle-shifted mode, and under a pulsed
        pump the in-pulse hot bath (gated) or the duty-weighted mean of pulse and gap."""
        power, detuning = self.pump_state(laser_w, laser_wavelength_m)
        t_bath = self.bath_temperature_k()
        p = self.params.noise
        base = replace(p, n_line=self.line_occupancy())
        in_qp, between_qp = self._qp_fractions()
        f = np.asarray(frequency_hz, dtype=float)
        gain = self.params.microwave
        ripple = (effects.ripple_amplitude(f, gain.ripple_db, gain.ripple_period_hz) ** 2
                  if "output_chain" in self.effects and gain.ripple_db else 1.0)
        if "pulse_timing" not in self.effects or self.params.lines.pump_duty_cycle >= 1.0:
            model = replace(self.noise, transducer=self.transducer_at(power, in_qp), params=base)
            return self._psd(model, f, power, detuning, t_bath, danl_dbm_per_hz, ripple)
        in_bath, between_bath = self._pulse_fractions(p.tau_rise_s, p.tau_fall_s)
        n_ss = float(self.noise.n_int(power)) - p.n_floor  # hot-bath excess at the peak power
        pulse = replace(self.noise, transducer=self.transducer_at(power, in_qp),
                        params=replace(base, n_floor=p.n_floor + n_ss * in_bath, heating_a=0.0))
        psd = self._psd(pulse, f, power, detuning, t_bath, None, ripple)
        if not self._averaged(gated):
            return psd + (0.0 if danl_dbm_per_hz is None else dbm_to_w(danl_dbm_per_hz))
        gap = replace(self.noise, transducer=self.transducer_at(power, between_qp),
                      params=replace(base, n_floor=p.n_floor + n_ss * between_bath, heating_a=0.0))
        duty = self.params.lines.pump_duty_cycle
        psd = duty * psd + (1 - duty) * self._psd(gap, f, 0.0, detuning, t_bath, None, ripple)
        return psd + (0.0 if danl_dbm_per_hz is None else dbm_to_w(danl_dbm_per_hz))

    @staticmethod
    def _psd(model: NoiseModel, f, power: float, detuning: float, t_bath: float, danl, ripple):
        psd = model.output_psd_w_per_hz(f, power, detuning, t_bath_k=t_bath, danl_dbm_per_hz=None) * ripple
        return psd if danl is None else psd + dbm_to_w(danl)

    def noise_marker_dbm_per_hz(self, frequency_hz, laser_w: float, laser_wavelength_m: float,
                                danl_dbm_per_hz: float | None = -160.0):
        """Noise marker (dBm/Hz) at ``frequency_hz``."""
        return 10 * np.log10(self.spectrum_psd_w_per_hz(frequency_hz, laser_w, laser_wavelength_m,
                                                        danl_dbm_per_hz) / 1e-3)

    def spectrum_trace_dbm(self, frequency_hz, rbw_hz: float, laser_w: float, laser_wavelength_m: float,
                           danl_dbm_per_hz: float | None = -160.0, gated: bool = False):
        """Mean analyzer trace (dBm per RBW bin)."""
        if not rbw_hz > 0:
            raise ValueError(f"rbw_hz must be > 0, got {rbw_hz}")
        return 10 * np.log10(rbw_hz * self.spectrum_psd_w_per_hz(frequency_hz, laser_w, laser_wavelength_m,
                                                                 danl_dbm_per_hz, gated) / 1e-3)

    # --- fridge -----------------------------------------------------------------------------------
    def set_fridge_loads(self, average_laser_w: float, heater_w: float | None = None) -> None:
        """Tell the fridge the time-averaged laser power (W leaving the laser) and MXC heater power."""
        if heater_w is not None:
            self.fridge.set_heater_w(heater_w)
        self.fridge.set_optical_power_w(self.on_chip_pump_w(average_laser_w))

    def mixing_chamber_k(self) -> float:
        """MXC temperature now (K)."""
        return self.fridge.mixing_chamber_k()

    # --- ground truth -----------------------------------------------------------------------------
    def truth(self) -> dict[str, float]:
        """The true device parameters, for checking what experiments recover."""
        t = self.transducer
        return {
            "pump_frequency_hz": t.pump_frequency_hz,
            "signal_frequency_hz": t.signal_frequency_hz,
            "f_m_hz": t.f_m_hz,
            "g0_hz": t.g0_hz,
            "kappa_o_hz": t.kappa_o_hz,
            "kappa_o_ex_hz": t.kappa_o_ex_hz,
            "kappa_m_hz": t.kappa_m_hz,
            "kappa_m_ex_hz": t.kappa_m_ex_hz,
            "eta_o": t.eta_o,
            "eta_m": t.eta_m,
            "eta_max": t.eta_max,
            "p_c1_w": t.p_c1_w(),
            "photons_per_w": float(t.pump_photons(1.0)),
            "chip_per_laser": self.pump_path.chip_per_laser,
            "chip_per_monitor": self.pump_path.chip_per_monitor,
        }
