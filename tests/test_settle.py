"""Settle detection (hil.settle) on the twin's fridge model: a first-order approach
T(t) = T_ss + (T_start - T_ss) e^{-t/tau} (hil.twin.fridge, physics.md §1.6 item 6)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from hil.clock import VirtualClock
from hil.settle import settle
from hil.twin.fridge import Fridge
from hil.twin.params import FridgeParams

TAU_S = 30.0


def fridge_lab(heater_w: float):
    """A lab whose fridge (a = 0.05 W/K^2, T0 = 10 mK, tau 30 s) has just had its heater set."""
    clock = VirtualClock()
    fridge = Fridge(FridgeParams(tau_s=TAU_S), clock=clock)
    fridge.set_heater_w(heater_w)
    return SimpleNamespace(world=SimpleNamespace(clock=clock)), fridge, clock


@pytest.mark.parametrize("heater_w", [1e-6, 75e-6])
def test_it_waits_until_the_distance_left_is_within_the_tolerance(heater_w):
    """A line through a window of span w on the approach changes by about r (e^{w/tau} - 1),
    r the distance left (exactly so for its end points): stopping below rel T leaves
    r <= rel T / (e^{w/tau} - 1), here within 10 % of that bound."""
    lab, fridge, clock = fridge_lab(heater_w)
    done = settle(lab, fridge.mixing_chamber_k, rel=5e-4, max_s=3600, interval_s=6.0, window=6)
    steady = fridge.steady_state_mixing_chamber_k()
    left = abs(fridge.mixing_chamber_k() - steady)
    assert done.settled
    assert left <= 1.1 * 5e-4 * steady / math.expm1(30.0 / TAU_S)
    # and no longer than that needs: the first window the criterion allows, +- one reading
    start = abs(0.010 - steady)
    needed = TAU_S * math.log(start * math.expm1(30.0 / TAU_S) / (5e-4 * steady)) + 30.0
    assert done.waited_s <= needed + 6.0
    assert done.level == pytest.approx(steady, rel=2e-3)


def test_a_small_step_settles_sooner_than_a_large_one():
    """The point of settle detection: lab time follows the step, not the worst case."""
    def wait_for(heater_w):
        lab, fridge, _ = fridge_lab(heater_w)
        return settle(lab, fridge.mixing_chamber_k, rel=5e-4, max_s=3600, interval_s=6.0,
                      window=6)

    small, large = wait_for(1e-6), wait_for(75e-6)
    assert small.waited_s < large.waited_s


def test_running_out_of_time_is_reported_not_hidden():
    lab, fridge, clock = fridge_lab(75e-6)
    done = settle(lab, fridge.mixing_chamber_k, rel=5e-4, max_s=40.0, interval_s=6.0, window=6)
    assert not done.settled
    assert done.waited_s == pytest.approx(40.0)
    assert clock.now() == pytest.approx(40.0)


def test_every_reading_is_checked_and_a_check_stops_the_wait():
    lab, fridge, clock = fridge_lab(75e-6)
    seen = []

    def ceiling(value):
        seen.append(value)
        if value > 0.02:
            raise RuntimeError("too warm")

    with pytest.raises(RuntimeError, match="too warm"):
        settle(lab, fridge.mixing_chamber_k, rel=5e-4, max_s=3600, interval_s=6.0, window=6,
               check=ceiling)
    assert seen[-1] > 0.02 and all(v <= 0.02 for v in seen[:-1])


@pytest.mark.parametrize("kwargs", [{"window": 2}, {"interval_s": 0.0}, {"rel": -1.0}])
def test_bad_settings_are_refused(kwargs):
    lab, fridge, _ = fridge_lab(0.0)
    with pytest.raises(ValueError):
        settle(lab, fridge.mixing_chamber_k, max_s=10.0, **{"rel": 1e-3, **kwargs})
