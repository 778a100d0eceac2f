"""Dilution refrigerator thermal model (physics.md §1.6 item 6), evolving on a :class:`Clock`.

Mixing chamber (MXC): cooling power grows as T^2, so a load P settles at
``T_ss = sqrt(T0^2 + P / a)`` (P = MXC heater + ``absorbed_fraction`` x on-chip optical power,
time-averaged). Still and 4 K plate: linear stand-ins ``T_ss = T_base + P / G`` (P = that stage's
heater), not anchored in physics.md. Every stage relaxes to its steady state at first order,
``dT/dt = -(T - T_ss) / tau_s``; the state is advanced exactly (exponential step) whenever it is
read or a load changes, so loads are piecewise constant in time and no background thread runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from hil.clock import Clock, VirtualClock
from hil.twin.effects import device_steady_k
from hil.twin.params import DeviceHeatingParams, FridgeParams


def mixing_chamber_steady_k(absorbed_w: float, t_base_k: float, cooling_a_w_per_k2: float) -> float:
    """T_mc = sqrt(T0^2 + P_abs / a) (physics.md §1.6 item 6)."""
    if absorbed_w < 0:
        raise ValueError(f"absorbed power must be >= 0 W, got {absorbed_w}")
    return math.sqrt(t_base_k ** 2 + absorbed_w / cooling_a_w_per_k2)


def _check_power(power_w: float, what: str) -> None:
    if not (math.isfinite(power_w) and power_w >= 0):
        raise ValueError(f"{what} must be a finite power >= 0 W, got {power_w}")


class _Stage:
    """One first-order thermal stage: T relaxes to steady(load) with time constant tau."""

    def __init__(self, steady: Callable[[float], float], tau_s: float, now: float) -> None:
        self._steady = steady
        self.tau_s = tau_s
        self.load_w = 0.0
        self.target_k = steady(0.0)
        self.value_k = self.target_k
        self._t = now

    def advance(self, now: float) -> None:
        dt = now - self._t
        if dt <= 0:
            return
        if self.tau_s == 0:
            self.value_k = self.target_k
        else:
            self.value_k = self.target_k + (self.value_k - self.target_k) * math.exp(-dt / self.tau_s)
        self._t = now

    def set_load(self, load_w: float, now: float) -> None:
        _check_power(load_w, "heat load")
        self.advance(now)
        self.load_w = float(load_w)
        self.target_k = self._steady(self.load_w)


class Fridge:
    """MXC, still and 4 K plate temperatures (K) vs heaters and absorbed pump light (W)."""

    def __init__(self, params: FridgeParams | None = None, clock: Clock | None = None,
                 device: DeviceHeatingParams | None = None) -> None:
        self.params = params or FridgeParams()
        self.device_params = device or DeviceHeatingParams()
        self.clock: Clock = clock or VirtualClock()
        p = self.params
        now = self.clock.now()
        self._lock = threading.Lock()
        self._mxc = _Stage(lambda w: mixing_chamber_steady_k(w, p.t_base_k, p.cooling_a_w_per_k2),
                           p.tau_s, now)
        self._still = _Stage(lambda w: p.t_still_k + w / p.still_conductance_w_per_k, p.tau_s, now)
        self._plate_4k = _Stage(lambda w: p.t_4k_k + w / p.plate_4k_conductance_w_per_k, p.tau_s, now)
        d = self.device_params
        # The device hangs off the MXC by a T^4 link (imperfections.md §3); off by default.
        self._device = _Stage(lambda w: device_steady_k(self._mxc.target_k, w, d.conductance_w_per_k4),
                              d.tau_s, now)
        self._heater_w = 0.0
        self._optical_w = 0.0

    # --- loads --------------------------------------------------------------------------------
    def set_heater_w(self, power_w: float) -> None:
        """MXC heater power (W)."""
        _check_power(power_w, "heater power")
        with self._lock:
            self._mxc.set_load(power_w + self.params.absorbed_fraction * self._optical_w, self.clock.now())
            self._heater_w = float(power_w)
            self._device.set_load(self._device.load_w, self.clock.now())  # its sink moved

    def set_optical_power_w(self, on_chip_w: float) -> None:
        """Time-averaged on-chip pump power (W); the fraction ``absorbed_fraction`` heats the MXC."""
        _check_power(on_chip_w, "optical power")
        with self._lock:
            self._mxc.set_load(self._heater_w + self.params.absorbed_fraction * on_chip_w, self.clock.now())
            self._optical_w = float(on_chip_w)
            self._device.set_load(self.device_params.absorbed_fraction * on_chip_w, self.clock.now())

    def set_still_heater_w(self, power_w: float) -> None:
        """Still heater power (W)."""
        with self._lock:
            self._still.set_load(power_w, self.clock.now())

    def set_4k_load_w(self, power_w: float) -> None:
        """Extra heat load on the 4 K plate (W)."""
        with self._lock:
            self._plate_4k.set_load(power_w, self.clock.now())

    @property
    def heater_w(self) -> float:
        return self._heater_w

    @property
    def optical_power_w(self) -> float:
        return self._optical_w

    @property
    def absorbed_w(self) -> float:
        """Total power (W) deposited at the MXC: heater + absorbed light."""
        return self._mxc.load_w

    # --- temperatures ---------------------------------------------------------------------------
    def mixing_chamber_k(self) -> float:
        """MXC temperature (K) now."""
        return self._read(self._mxc)

    def still_k(self) -> float:
        """Still temperature (K) now."""
        return self._read(self._still)

    def plate_4k_k(self) -> float:
        """4 K plate temperature (K) now."""
        return self._read(self._plate_4k)

    def temperatures(self) -> dict[str, float]:
        """All stages now: ``{"mixing_chamber": K, "still": K, "4k": K}``."""
        return {"mixing_chamber": self.mixing_chamber_k(), "still": self.still_k(),
                "4k": self.plate_4k_k()}

    def device_k(self) -> float:
        """Device temperature (K) now: relaxes with ``device_heating.tau_s`` towards
        (T_mc^4 + f_dev P_avg / K_d)^(1/4), T_mc the MXC's settled value (imperfections.md §3)."""
        return self._read(self._device)

    def steady_state_mixing_chamber_k(self) -> float:
        """Where the MXC settles under the present loads."""
        return self._mxc.target_k

    def _read(self, stage: _Stage) -> float:
        with self._lock:
            stage.advance(self.clock.now())
            return stage.value_k
