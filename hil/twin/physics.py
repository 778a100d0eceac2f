"""The twin's physics in one place: what each simulated instrument would read, from the lab's state.

:class:`TwinPhysics` wires the parts (transducer, pump cavity, microwave resonator, pump path,
VNA paths, noise, fridge on a clock) from one :class:`~hil.twin.params.TwinParams`. Its methods
take the laser state as arguments (power leaving the laser in W, 0 when off or shuttered;
wavelength in m) and return SI readings, so the instrument coupling only has to pass state in.
"""

from __future__ import annotations

import numpy as np

from hil.clock import Clock, VirtualClock
from hil.twin.fridge import Fridge
from hil.twin.lines import VNA_TO_DEVICE, PumpPath, VnaPaths
from hil.twin.microwave import MicrowaveResonator
from hil.twin.noise import NoiseModel
from hil.twin.optical import OpticalCavity, wavelength_to_frequency
from hil.twin.params import TwinParams
from hil.twin.transducer import EOTransducer


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
        self.fridge = Fridge(p.fridge, self.clock)

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
        transmission = self.pump_cavity.transmission(wavelength_to_frequency(laser_wavelength_m))
        return float(self.pump_path.through_port_w(laser_w, transmission))

    def cooperativity(self, laser_w: float, laser_wavelength_m: float) -> float:
        """C for the laser state (through the pump path and the pump-mode Lorentzian)."""
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

    def vna_traces(self, frequency_hz, laser_w: float, laser_wavelength_m: float) -> dict[str, np.ndarray]:
        """All four VNA readings at once."""
        f = np.asarray(frequency_hz, dtype=float)
        s = self._device_s(f, laser_w, laser_wavelength_m)
        return self.vna.two_port(f, s)

    def _device_s(self, frequency_hz: np.ndarray, laser_w: float, laser_wavelength_m: float) -> np.ndarray:
        return self.transducer.s_matrix(frequency_hz, self.on_chip_pump_w(laser_w),
                                        self.pump_detuning_hz(laser_wavelength_m))

    # --- spectrum analyzer on the microwave output ------------------------------------------------
    def spectrum_psd_w_per_hz(self, frequency_hz, laser_w: float, laser_wavelength_m: float,
                              danl_dbm_per_hz: float | None = -160.0):
        """PSD (W/Hz) at the analyzer: output chain x (device noise + amplifier noise) + DANL.

        The pump heats the microwave bath (peak on-chip power) and the MXC temperature adds its
        thermal occupancy."""
        return self.noise.output_psd_w_per_hz(frequency_hz, self.on_chip_pump_w(laser_w),
                                              self.pump_detuning_hz(laser_wavelength_m),
                                              t_bath_k=self.fridge.mixing_chamber_k(),
                                              danl_dbm_per_hz=danl_dbm_per_hz)

    def noise_marker_dbm_per_hz(self, frequency_hz, laser_w: float, laser_wavelength_m: float,
                                danl_dbm_per_hz: float | None = -160.0):
        """Noise marker (dBm/Hz) at ``frequency_hz``."""
        return 10 * np.log10(self.spectrum_psd_w_per_hz(frequency_hz, laser_w, laser_wavelength_m,
                                                        danl_dbm_per_hz) / 1e-3)

    def spectrum_trace_dbm(self, frequency_hz, rbw_hz: float, laser_w: float, laser_wavelength_m: float,
                           danl_dbm_per_hz: float | None = -160.0):
        """Mean analyzer trace (dBm per RBW bin)."""
        if not rbw_hz > 0:
            raise ValueError(f"rbw_hz must be > 0, got {rbw_hz}")
        return 10 * np.log10(rbw_hz * self.spectrum_psd_w_per_hz(frequency_hz, laser_w, laser_wavelength_m,
                                                                 danl_dbm_per_hz) / 1e-3)

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
