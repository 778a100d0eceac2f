"""The simulated lab as one world: instrument settings in, physical readings out.

Instruments are slots (``pump_laser``, ``power_meter`` on the through port, ``monitor_meter``
on the pump's monitor tap, ``mw_source``, ``cryostat``, ``vna``, ``esa``). The simulation
backend writes each accepted setting into its slot's state (SI units) and asks for readings,
traces and actions by name; :class:`~hil.twin.physics.TwinPhysics` decides what each is.
Readings carry seeded instrument noise, so a run is reproducible.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

from hil.clock import Clock
from hil.twin.optical import OpticalCavity, frequency_to_wavelength, wavelength_to_frequency
from hil.twin.params import TwinParams
from hil.twin.physics import TwinPhysics
from hil.units import dbm_to_w

#: Every slot's settings, as the instrument is at power-up (the profiles push their own defaults).
_T = TypeVar("_T")

_INITIAL_STATE: dict[str, dict[str, float | str]] = {
    "pump_laser": {"wavelength_m": 1550e-9, "power_w": 1e-3, "output": 0.0, "shutter_closed": 0.0},
    "power_meter": {"wavelength_m": 1550e-9, "averages": 1.0},
    "monitor_meter": {"wavelength_m": 1550e-9, "averages": 1.0},
    "mw_source": {"frequency_hz": 8.8e9, "power_w": 1e-5, "output": 0.0},
    "cryostat": {"sample_heater_range": 0.0, "sample_heater_mout": 0.0, "warmup_heater_range": 0.0,
                 "still_heater_range": 0.0, "still_heater_percent": 0.0},
    "vna": {"start_hz": 8.75e9, "stop_hz": 8.85e9, "points": 201.0, "if_bandwidth_hz": 1e3,
            "power_w": 1e-4, "output": 1.0, "averaging": 0.0, "averages": 1.0, "s_parameter": "S11",
            "gate": 0.0},
    "esa": {"start_hz": 8.7e9, "stop_hz": 8.9e9, "points": 1001.0, "rbw_hz": 1e5, "vbw_hz": 1e5,
            "averages": 1.0, "attenuation_db": 10.0, "preamp": 0.0, "marker_hz": 8.8e9, "gate": 0.0},
    "bias_source": {"voltage_v": 0.0, "output": 0.0, "current_limit_a": 1.05e-4},
}

#: Swept instruments whose centre and span are derived from start and stop.
_SWEPT = ("vna", "esa")
_CENTER_SPAN = ("center_hz", "span_hz")

#: Lake Shore 372 sample-heater current ranges (A) by RANGE code, and the heater resistance.
_SAMPLE_HEATER_RANGE_A = (0.0, 31.6e-6, 100e-6, 316e-6, 1e-3, 3.16e-3, 10e-3, 31.6e-3, 100e-3)
SAMPLE_HEATER_OHM = 120.0


class TwinLab:
    """One simulated lab on a clock (virtual unless a real one is given). Seeded."""

    def __init__(self, params: TwinParams | None = None, clock: Clock | None = None) -> None:
        self.params = params or TwinParams()
        self.physics = TwinPhysics(self.params, clock)
        self.clock = self.physics.clock
        # One noise stream per instrument, so a thread reading one (an interlock watching the
        # thermometer) cannot change the noise another records: runs stay reproducible.
        self._streams: dict[str, random.Random] = {}
        self._array_streams: dict[str, np.random.Generator] = {}
        self._through_w: float | None = None  # noiseless through-port power for the laser's state
        self._state = {slot: dict(values) for slot, values in _INITIAL_STATE.items()}
        self._vna_sweep: dict[str, np.ndarray] | None = None
        self._esa_sweep: np.ndarray | None = None
        self._readings: dict[tuple[str, str], Callable[[], float]] = {
            ("power_meter", "power_w"): self._through_power,
            ("monitor_meter", "power_w"): self._monitor_power,
            ("cryostat", "mxc_temperature_k"): self._mxc_temperature,
            ("cryostat", "sample_heater_power_w"): self.sample_heater_power_w,
            ("vna", "sweep_time_s"): self.vna_sweep_time_s,
            ("esa", "noise_density_w_per_hz"): self._noise_density,
            ("bias_source", "current_a"): self._bias_current,
        }
        self._traces: dict[tuple[str, str], Callable[[], np.ndarray]] = {
            ("vna", "sdata"): self._vna_sdata,
            ("esa", "spectrum"): self._esa_spectrum,
        }
        self._actions: dict[tuple[str, str], Callable[[], None]] = {
            ("vna", "sweep"): self._vna_run_sweep,
            ("esa", "sweep"): self._esa_run_sweep,
        }
        timing = self.params.timing
        self._meter_sample_s = timing.power_meter_sample_s
        self._laser_settle_s = timing.laser_settle_s
        self._drift_hz_per_s = self.params.optics.laser_drift_hz_per_s
        self._laser_set_t = self.clock.now()
        # Readings that change with time alone cannot be cached per laser state.
        self._cache_through = not (self._drift_hz_per_s or "thermo" in self.physics.effects)
        self._update_fridge_loads()

    @property
    def cavity(self) -> OpticalCavity:
        """The pump mode the laser addresses."""
        return self.physics.pump_cavity

    # --- what the backend calls -------------------------------------------------------------
    def set_state(self, slot: str, key: str, value: float | str) -> None:
        """Record an instrument setting (SI units; a few settings are strings, e.g. 'S21')."""
        if key in _CENTER_SPAN and slot in _SWEPT:
            self._set_center_span(slot, key, float(value))
            return
        self._check_state_key(slot, key)
        current = self._state[slot][key]
        self._state[slot][key] = value if isinstance(current, str) else float(value)
        if slot in ("pump_laser", "cryostat"):
            self._through_w = None
            self._update_fridge_loads()
        if slot == "pump_laser" and key == "wavelength_m" and value != current:
            self._laser_set_t = self.clock.now()
            if self._laser_settle_s:
                self.clock.sleep(self._laser_settle_s)  # the laser reports done once settled
        if slot == "bias_source":
            bias = self._state["bias_source"]
            self.physics.set_bias_v(float(bias["voltage_v"]) if float(bias["output"]) >= 0.5 else 0.0)
        if slot == "vna":
            self._vna_sweep = None  # a changed setting invalidates the held trace

    def state(self, slot: str, key: str) -> float | str:
        if key in _CENTER_SPAN and slot in _SWEPT:
            start, stop = float(self._state[slot]["start_hz"]), float(self._state[slot]["stop_hz"])
            return (start + stop) / 2 if key == "center_hz" else stop - start
        self._check_state_key(slot, key)
        return self._state[slot][key]

    def _set_center_span(self, slot: str, key: str, value: float) -> None:
        """Centre and span are another view of start and stop, as on the instrument."""
        center, span = float(self.state(slot, "center_hz")), float(self.state(slot, "span_hz"))
        center, span = (value, span) if key == "center_hz" else (center, value)
        self._state[slot]["start_hz"] = center - span / 2
        self._state[slot]["stop_hz"] = center + span / 2
        if slot == "vna":
            self._vna_sweep = None

    def read(self, slot: str, key: str) -> float:
        """A physical reading (SI units) computed from the current state of the lab."""
        return self._lookup(self._readings, slot, key, "reading")()

    def trace(self, slot: str, key: str) -> np.ndarray:
        """A trace (1-D float array, as the instrument would transfer it)."""
        return self._lookup(self._traces, slot, key, "trace")()

    def act(self, slot: str, name: str) -> None:
        """Something an instrument does on command (a sweep); it takes time on the clock."""
        self._lookup(self._actions, slot, name, "action")()

    def check_binding(self, slot: str, key: str, kind: str) -> None:
        """Refuse a profile that names a slot, setting, reading, trace or action we do not have."""
        if kind == "state":
            if not (key in _CENTER_SPAN and slot in _SWEPT):
                self._check_state_key(slot, key)
        else:
            tables: dict[str, Mapping[tuple[str, str], object]] = {
                "reading": self._readings, "trace": self._traces, "action": self._actions}
            self._lookup(tables[kind], slot, key, kind)

    def truth(self) -> dict[str, float]:
        """The true device parameters, for checking what experiments recover."""
        truth = dict(self.physics.truth())
        truth.update({
            "optical_wavelength_m": self.cavity.wavelength_m,
            "optical_frequency_hz": self.cavity.frequency_hz,
            "pump_duty_cycle": self.params.lines.pump_duty_cycle,
            "cooling_a_w_per_k2": self.params.fridge.cooling_a_w_per_k2,
            "t_base_k": self.params.fridge.t_base_k,
        })
        return truth

    # --- the lab's physics, through the instruments ---------------------------------------------
    def laser_emitted_power(self) -> float:
        """Peak power leaving the laser: zero unless the diode is on and the shutter open."""
        laser = self._state["pump_laser"]
        if float(laser["output"]) < 0.5 or float(laser["shutter_closed"]) > 0.5:
            return 0.0
        return float(laser["power_w"])

    def sample_heater_power_w(self) -> float:
        """Mixing-chamber heater: (range current x manual output)^2 x R."""
        cryo = self._state["cryostat"]
        code = int(round(float(cryo["sample_heater_range"])))
        current = _SAMPLE_HEATER_RANGE_A[min(max(code, 0), 8)] * float(cryo["sample_heater_mout"]) / 100
        return current ** 2 * SAMPLE_HEATER_OHM

    def vna_frequencies(self) -> np.ndarray:
        vna = self._state["vna"]
        return np.linspace(float(vna["start_hz"]), float(vna["stop_hz"]), int(vna["points"]))

    def esa_frequencies(self) -> np.ndarray:
        esa = self._state["esa"]
        return np.linspace(float(esa["start_hz"]), float(esa["stop_hz"]), int(esa["points"]))

    def vna_sweep_time_s(self) -> float:
        """One sweep: points / IF bandwidth plus a little retrace time."""
        vna = self._state["vna"]
        per_point = 1.0 / float(vna["if_bandwidth_hz"]) + self.params.timing.vna_point_s
        return float(vna["points"]) * per_point + 1e-3

    def esa_sweep_time_s(self) -> float:
        """One analyser sweep: points / RBW, or a swept analyser's k span / RBW^2 when
        ``timing.esa_sweep_factor`` k is set (at least 1 ms)."""
        esa = self._state["esa"]
        k = self.params.timing.esa_sweep_factor
        rbw = float(esa["rbw_hz"])
        if k:
            return max(k * (float(esa["stop_hz"]) - float(esa["start_hz"])) / rbw ** 2, 1e-3)
        return max(float(esa["points"]) / rbw, 1e-3)

    def _bias_current(self) -> float:
        """Current the bias source measures: V / leakage when its output is on."""
        return self.physics.bias_v / self.params.bias.leakage_ohm

    def _laser(self) -> tuple[float, float]:
        wavelength = float(self._state["pump_laser"]["wavelength_m"])
        if self._drift_hz_per_s:
            # The laser walks away from its set point after each tuning (physics.md §1.7).
            drift = self._drift_hz_per_s * (self.clock.now() - self._laser_set_t)
            wavelength = float(frequency_to_wavelength(wavelength_to_frequency(wavelength) + drift))
        return self.laser_emitted_power(), wavelength

    def _update_fridge_loads(self) -> None:
        peak, wavelength = self._laser()
        average = peak * self.params.lines.pump_duty_cycle
        self.physics.set_fridge_loads(average, heater_w=self.sample_heater_power_w())
        if "thermo" in self.physics.effects:
            self.physics.set_thermo_drive(average, wavelength)

    def _stream(self, slot: str) -> random.Random:
        """Scalar noise of one instrument (random.Random: 5x cheaper per reading than numpy)."""
        if slot not in self._streams:
            self._streams[slot] = random.Random(f"{self.params.seed}:{slot}")
        return self._streams[slot]

    def _array_stream(self, slot: str) -> np.random.Generator:
        if slot not in self._array_streams:
            seed = self.params.seed
            self._array_streams[slot] = np.random.default_rng(
                None if seed is None else [seed, zlib.crc32(slot.encode())])
        return self._array_streams[slot]

    def _noisy(self, slot: str, value: float, rel: float) -> float:
        return value * (1.0 + rel * self._stream(slot).gauss(0.0, 1.0)) if rel else value

    def _through_power(self) -> float:
        """Power meter on the through port: the time average of the pulsed pump after the chip."""
        averages = max(float(self._state["power_meter"]["averages"]), 1.0)
        if self._meter_sample_s:
            self.clock.sleep(self._meter_sample_s * averages)
        if self._through_w is None or not self._cache_through:  # else recomputed on laser changes
            self._through_w = (self.physics.through_power_w(*self._laser())
                               * self.params.lines.pump_duty_cycle)
        return self._noisy("power_meter", self._through_w,
                           self.params.noise.power_meter_rel / math.sqrt(averages))

    def _monitor_power(self) -> float:
        """Power meter on the pump's monitor tap, before the fridge (time average)."""
        average = self.physics.monitor_power_w(self.laser_emitted_power()) * self.params.lines.pump_duty_cycle
        averages = max(float(self._state["monitor_meter"]["averages"]), 1.0)
        if self._meter_sample_s:
            self.clock.sleep(self._meter_sample_s * averages)
        return self._noisy("monitor_meter", average, self.params.noise.power_meter_rel / math.sqrt(averages))

    def _mxc_temperature(self) -> float:
        if self.params.timing.thermometer_read_s:
            self.clock.sleep(self.params.timing.thermometer_read_s)
        return self._noisy("cryostat", self.physics.mixing_chamber_k(), self.params.noise.thermometer_rel)

    def _noise_density(self) -> float:
        esa = self._state["esa"]
        psd = float(self.physics.spectrum_psd_w_per_hz(float(esa["marker_hz"]), *self._laser(),
                                                       gated=float(esa["gate"]) >= 0.5))
        rel = self.params.noise.esa_marker_rel / math.sqrt(max(float(esa["averages"]), 1))
        return self._noisy("esa", psd, rel)

    def _vna_run_sweep(self) -> None:
        vna = self._state["vna"]
        count = int(vna["averages"]) if float(vna["averaging"]) >= 0.5 else 1
        self.clock.sleep(self.vna_sweep_time_s() * count)
        f = self.vna_frequencies()
        if self.physics.effects:
            ideal = self.physics.vna_traces(f, *self._laser(), gated=float(vna["gate"]) >= 0.5,
                                            vna_power_w=float(vna["power_w"]))
        else:
            ideal = self.physics.vna_traces(f, *self._laser())
        emitting = float(vna["output"]) >= 0.5
        floor_w = dbm_to_w(self.params.noise.vna_floor_dbm_per_hz) * float(vna["if_bandwidth_hz"])
        # Receiver noise in |S| units: noise power over the set source power, per quadrature.
        floor = np.sqrt(floor_w / float(vna["power_w"]) / 2 / count)
        rel = self.params.noise.vna_trace_rel / np.sqrt(count)
        sweep = {}
        for name, s in ideal.items():
            if not emitting:
                s = np.zeros_like(s)  # RF off: the receivers see only their own noise
            rng = self._array_stream("vna")
            noise = (rel * np.abs(s) + floor) * (rng.standard_normal(s.size)
                                                 + 1j * rng.standard_normal(s.size))
            sweep[name] = s + noise
        self._vna_sweep = sweep

    def _vna_sdata(self) -> np.ndarray:
        """The last sweep of the selected S-parameter as re, im pairs (the VNA's SDATA)."""
        if self._vna_sweep is None:
            self._vna_run_sweep()
        assert self._vna_sweep is not None  # the sweep just run holds it
        s = self._vna_sweep[str(self._state["vna"]["s_parameter"])]
        pairs = np.empty(2 * s.size)
        pairs[0::2], pairs[1::2] = s.real, s.imag
        return pairs

    def _esa_run_sweep(self) -> None:
        esa = self._state["esa"]
        f = self.esa_frequencies()
        points = f.size
        rbw = float(esa["rbw_hz"])
        self.clock.sleep(self.esa_sweep_time_s() * max(float(esa["averages"]), 1))
        mean_dbm = self.physics.spectrum_trace_dbm(f, rbw, *self._laser(), gated=float(esa["gate"]) >= 0.5)
        # Log-averaged noise reads 2.51 dB below its mean power and scatters 5.57 dB per sweep.
        sigma_db = 5.57 / np.sqrt(max(float(esa["averages"]), 1))
        scatter = sigma_db * self._array_stream("esa").standard_normal(points)
        self._esa_sweep = np.asarray(mean_dbm) + scatter - 2.51

    def _esa_spectrum(self) -> np.ndarray:
        """The last sweep as frequency, amplitude (dBm) pairs (the analyzer's FETC:SAN?)."""
        if self._esa_sweep is None or self._esa_sweep.size != int(self._state["esa"]["points"]):
            self._esa_run_sweep()
        f = self.esa_frequencies()
        pairs = np.empty(2 * f.size)
        pairs[0::2], pairs[1::2] = f, self._esa_sweep
        return pairs

    def _check_state_key(self, slot: str, key: str) -> None:
        if slot not in self._state:
            raise KeyError(f"the twin has no instrument slot {slot!r}; it has: "
                           f"{', '.join(self._state)}")
        if key not in self._state[slot]:
            raise KeyError(f"the twin's {slot} has no setting {key!r}; it has: "
                           f"{', '.join(self._state[slot])}")

    @staticmethod
    def _lookup(table: Mapping[tuple[str, str], _T], slot: str, key: str, kind: str) -> _T:
        try:
            return table[(slot, key)]
        except KeyError:
            known = ", ".join(f"{s}.{k}" for s, k in table)
            raise KeyError(f"the twin has no {kind} {slot}.{key}; it has: {known}") from None
