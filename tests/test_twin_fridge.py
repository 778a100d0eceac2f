"""Fridge thermal model and clocks of the twin against physics.md §1.6 item 6."""

from __future__ import annotations

import math
import time

import pytest

from hil.clock import Clock, RealClock, VirtualClock
from hil.twin.fridge import Fridge, mixing_chamber_steady_k
from hil.twin.params import FridgeParams

PARAMS = FridgeParams()  # T0 10 mK, a 0.05 W/K^2, f_abs 0.05 (Profile A)


@pytest.mark.parametrize(("absorbed_w", "t_mk"),
                         [(0.0, 10.0), (1e-6, 10.95), (10e-6, 17.32), (100e-6, 45.83), (1e-3, 141.77)])
def test_steady_state_table(absorbed_w, t_mk) -> None:
    """§1.6 item 6: T_mc = sqrt(T0^2 + P/a), T0 = 10 mK, a = 0.05 W/K^2: 1 uW -> 10.95 mK,
    10 uW -> 17.32, 100 uW -> 45.83, 1 mW -> 141.77 (+- 0.005 mK, the printed digits)."""
    assert mixing_chamber_steady_k(absorbed_w, 0.010, 0.05) * 1e3 == pytest.approx(t_mk, abs=0.005)
    fridge = Fridge(PARAMS, VirtualClock())
    fridge.set_heater_w(absorbed_w)
    fridge.clock.sleep(50 * PARAMS.tau_s)
    assert fridge.mixing_chamber_k() * 1e3 == pytest.approx(t_mk, abs=0.005)


def test_cooling_power_anchors() -> None:
    """§1.6 item 6: a = 0.05 W/K^2 means 20 uW at 20 mK and 500 uW at 100 mK (a T^2), 1e-12."""
    cooling_at_20mk = 0.05 * 0.020 ** 2
    assert cooling_at_20mk == pytest.approx(20e-6, rel=1e-12)
    assert mixing_chamber_steady_k(500e-6, 0.0, 0.05) == pytest.approx(0.100, rel=1e-12)


def test_only_the_absorbed_fraction_of_the_pump_heats() -> None:
    """§1.6 item 6: the MXC sees f_abs x on-chip power (Profile A f_abs = 0.05) plus the heater."""
    fridge = Fridge(PARAMS, VirtualClock())
    fridge.set_optical_power_w(2e-3)  # 100 uW absorbed
    fridge.set_heater_w(0.0)
    assert fridge.absorbed_w == pytest.approx(100e-6, rel=1e-12)
    assert fridge.steady_state_mixing_chamber_k() == pytest.approx(0.04583, abs=5e-6)
    fridge.set_heater_w(900e-6)
    assert fridge.absorbed_w == pytest.approx(1e-3, rel=1e-12)


def test_first_order_time_constant() -> None:
    """63.2 % (1 - 1/e) of a step after tau_s, 86.5 % after 2 tau, exactly (1e-12), and relaxing back."""
    clock = VirtualClock()
    fridge = Fridge(PARAMS, clock)
    t0 = fridge.mixing_chamber_k()
    fridge.set_heater_w(100e-6)
    t_ss = fridge.steady_state_mixing_chamber_k()
    assert fridge.mixing_chamber_k() == pytest.approx(t0, abs=1e-15)  # no time has passed
    clock.advance(PARAMS.tau_s)
    assert (fridge.mixing_chamber_k() - t0) / (t_ss - t0) == pytest.approx(1 - math.exp(-1), abs=1e-12)
    clock.advance(PARAMS.tau_s / 2)
    fridge.still_k()  # reading other stages does not disturb the MXC
    clock.advance(PARAMS.tau_s / 2)
    assert (fridge.mixing_chamber_k() - t0) / (t_ss - t0) == pytest.approx(1 - math.exp(-2), abs=1e-12)
    t_hot = fridge.mixing_chamber_k()
    fridge.set_heater_w(0.0)
    clock.advance(PARAMS.tau_s)
    assert (fridge.mixing_chamber_k() - t0) / (t_hot - t0) == pytest.approx(math.exp(-1), abs=1e-12)


def test_still_and_4k_stages() -> None:
    """Still and 4 K plates: T = T_base + P/G with the same first-order response (design stand-ins)."""
    clock = VirtualClock()
    fridge = Fridge(PARAMS, clock)
    assert fridge.temperatures() == {"mixing_chamber": pytest.approx(0.010), "still": pytest.approx(0.8),
                                     "4k": pytest.approx(3.5)}
    fridge.set_still_heater_w(10e-3)
    fridge.set_4k_load_w(0.5)
    clock.advance(1e3 * PARAMS.tau_s)
    assert fridge.still_k() == pytest.approx(0.8 + 10e-3 / 0.02, rel=1e-12)
    assert fridge.plate_4k_k() == pytest.approx(3.5 + 0.5, rel=1e-12)


def test_zero_time_constant_is_instant_and_bad_loads_are_refused() -> None:
    fridge = Fridge(FridgeParams(tau_s=0.0), VirtualClock())
    fridge.set_heater_w(1e-3)
    fridge.clock.advance(1e-9)
    assert fridge.mixing_chamber_k() * 1e3 == pytest.approx(141.77, abs=0.005)
    with pytest.raises(ValueError, match="heater power"):
        fridge.set_heater_w(-1e-6)
    with pytest.raises(ValueError, match="optical power"):
        fridge.set_optical_power_w(float("nan"))


def test_virtual_clock_costs_no_wall_time() -> None:
    clock = VirtualClock()
    start = time.monotonic()
    clock.sleep(3600.0)
    clock.advance(1.5)
    assert clock.now() == pytest.approx(3601.5)
    assert time.monotonic() - start < 0.5
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)


def test_real_clock_follows_wall_time_and_both_satisfy_the_interface() -> None:
    clock = RealClock(speed=100.0)
    t0 = clock.now()
    clock.sleep(1.0)  # 10 ms of wall time
    assert clock.now() - t0 >= 1.0 - 1e-6
    assert isinstance(clock, Clock) and isinstance(VirtualClock(), Clock)
    with pytest.raises(ValueError, match="speed"):
        RealClock(speed=0.0)
