"""The simulated lab as one world: instrument settings in, physical readings out.

Instruments are slots (``pump_laser``, ``power_meter``). The simulation backend writes each
accepted setting into the slot's state in SI units and asks for readings by name; the optical
path decides what each reading is (physics.md §1.1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hil.twin.optical import OpticalCavity, wavelength_to_frequency
from hil.twin.params import TwinParams

#: The state every slot starts with, before the simulated instruments push their defaults.
_INITIAL_STATE: dict[str, dict[str, float]] = {
    "pump_laser": {"wavelength_m": 1550e-9, "power_w": 1e-3, "output": 0.0, "shutter_closed": 0.0},
    "power_meter": {"wavelength_m": 1550e-9, "averages": 1.0},
}


class TwinLab:
    """One simulated lab. Deterministic for a given seed."""

    def __init__(self, params: TwinParams | None = None) -> None:
        self.params = params or TwinParams()
        t = self.params.transducer
        self.cavity = OpticalCavity(
            frequency_hz=float(wavelength_to_frequency(t.pump_wavelength_m)),
            kappa_hz=t.kappa_o_hz,
            kappa_ex_hz=t.kappa_o_ex_hz,
        )
        self.rng = np.random.default_rng(self.params.seed)
        self._state = {slot: dict(values) for slot, values in _INITIAL_STATE.items()}
        self._readings: dict[tuple[str, str], Callable[[], float]] = {
            ("power_meter", "power_w"): self._power_meter_power,
        }

    # --- what the backend calls -------------------------------------------------------------
    def set_state(self, slot: str, key: str, value: float) -> None:
        """Record an instrument setting (SI units)."""
        self._check_state_key(slot, key)
        self._state[slot][key] = float(value)

    def state(self, slot: str, key: str) -> float:
        self._check_state_key(slot, key)
        return self._state[slot][key]

    def read(self, slot: str, key: str) -> float:
        """A physical reading (SI units) computed from the current state of the lab."""
        try:
            compute = self._readings[(slot, key)]
        except KeyError:
            known = ", ".join(f"{s}.{k}" for s, k in self._readings)
            raise KeyError(f"the twin has no reading {slot}.{key}; it has: {known}") from None
        return compute()

    def check_binding(self, slot: str, key: str, kind: str) -> None:
        """Refuse a profile that names a slot, state or reading the twin does not have."""
        if kind == "state":
            self._check_state_key(slot, key)
        elif (slot, key) not in self._readings:
            self.read(slot, key)  # raises the descriptive KeyError

    def truth(self) -> dict[str, float]:
        """The true device parameters, for checking what experiments recover."""
        return {
            "optical_wavelength_m": self.cavity.wavelength_m,
            "optical_frequency_hz": self.cavity.frequency_hz,
            "kappa_o_hz": self.cavity.kappa_hz,
            "kappa_o_ex_hz": self.cavity.kappa_ex_hz,
        }

    # --- physics -------------------------------------------------------------------------------
    def laser_emitted_power(self) -> float:
        """Power leaving the laser: zero unless the diode is on and the shutter open."""
        laser = self._state["pump_laser"]
        if laser["output"] < 0.5 or laser["shutter_closed"] > 0.5:
            return 0.0
        return laser["power_w"]

    def _power_meter_power(self) -> float:
        """Through-port power: laser power times the cavity transmission at its wavelength."""
        laser = self._state["pump_laser"]
        frequency = wavelength_to_frequency(laser["wavelength_m"])
        power = self.laser_emitted_power() * float(self.cavity.transmission(frequency))
        averages = max(self._state["power_meter"]["averages"], 1.0)
        sigma = self.params.noise.power_meter_rel / np.sqrt(averages)
        return power * (1.0 + sigma * self.rng.standard_normal())

    def _check_state_key(self, slot: str, key: str) -> None:
        if slot not in self._state:
            raise KeyError(f"the twin has no instrument slot {slot!r}; it has: "
                           f"{', '.join(self._state)}")
        if key not in self._state[slot]:
            raise KeyError(f"the twin's {slot} has no setting {key!r}; it has: "
                           f"{', '.join(self._state[slot])}")
