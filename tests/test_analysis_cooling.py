"""Fits of the calibration steps' simple models: mixing-chamber cooling (physics.md §1.6 item 6,
T = sqrt(T0^2 + P/a)), the pump path's ratio (physics.md §3 (d)) and a level over time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.analysis.cooling import fit_cooling
from hil.analysis.line import fit_line
from hil.analysis.pump_path import pump_path
from hil.analysis.stability import level
from hil.results import FitError
from hil.twin.fridge import mixing_chamber_steady_k
from hil.twin.lines import PumpPath


def test_cooling_fit_recovers_a_and_t0_from_the_physics_md_table() -> None:
    """physics.md §1.6 item 6: T0 = 10 mK, a = 0.05 W/K^2 -> 1 µW 10.95 mK, 10 µW 17.32 mK,
    100 µW 45.83 mK."""
    p = np.array([0, 1, 3, 10, 30, 100]) * 1e-6
    t = np.array([mixing_chamber_steady_k(x, 0.010, 0.05) for x in p])
    assert t[[1, 3, 5]] * 1e3 == pytest.approx([10.95, 17.32, 45.83], abs=0.005)
    rng = np.random.default_rng(0)
    fit = fit_cooling(p, t * (1 + 1e-3 * rng.standard_normal(p.size)))
    assert fit.a == pytest.approx(0.05, rel=0.01)
    assert fit.t0 == pytest.approx(0.010, rel=0.01)
    assert fit.cooling_power(0.020) == pytest.approx(0.05 * (0.02 ** 2 - 0.01 ** 2), rel=0.02)


def test_a_heat_maps_error_from_given_errors_is_its_scatter() -> None:
    """Four heater levels, five readings each with 3.5e-4 relative thermometer noise (physics.md
    §1.6 item 6: T0 = 10 mK, a = 0.05 W/K^2): with each point's error from the scatter pooled
    over the levels (16 degrees of freedom, scaled up where the line's scatter exceeds them) a's
    stated error is its scatter over 1000 maps (rms pull within 0.85-1.15); scaled by the line's
    own chi-square (2 degrees of freedom) it is not."""
    rng = np.random.default_rng(2)
    p = np.array([0, 1, 10, 100]) * 1e-6
    steady = np.array([mixing_chamber_steady_k(x, 0.010, 0.05) for x in p])
    pulls, scaled = [], []
    for _ in range(1000):
        temps = steady[:, None] * (1 + 3.5e-4 * rng.standard_normal((4, 5)))
        t = temps.mean(axis=1)
        pooled = t * np.sqrt(np.mean(temps.var(axis=1, ddof=1) / t ** 2)) / np.sqrt(5)
        fit = fit_cooling(p, t, pooled)
        pulls.append((fit.a - 0.05) / fit.a_err)
        bare = fit_cooling(p, t)  # no errors: scaled to the scatter about the line
        scaled.append((bare.a - 0.05) / bare.a_err)
    assert 0.85 < np.sqrt(np.mean(np.square(pulls))) < 1.15
    assert np.sqrt(np.mean(np.square(scaled))) > 1.3


def test_cooling_fit_refuses_a_flat_map() -> None:
    with pytest.raises(FitError, match="does not rise"):
        fit_cooling([0, 1e-6, 2e-6], [0.01, 0.0099, 0.0098])


def test_pump_path_split_inverts_the_twins_path() -> None:
    """through/monitor = (1 - r)/r eta_in T_dev eta_out; with eta_in = eta_out the split returns
    PumpPath.chip_per_monitor = (1 - r)/r eta_in."""
    path = PumpPath(gain_db=20.0, tap_ratio=0.01)
    laser = np.array([0.05, 0.1, 0.2, 0.5]) * 1e-3
    monitor = path.monitor_w(laser)
    through = path.through_port_w(laser, transmission=0.999)
    split = pump_path(fit_line(monitor, through), 0.01, device_transmission=0.999)
    assert split.chip_per_monitor == pytest.approx(path.chip_per_monitor, rel=1e-9)
    assert split.insertion_loss_db == pytest.approx(1.0 + 10 * math.log10(2.0), rel=1e-9)


def test_level_of_a_steady_and_of_a_drifting_record() -> None:
    t = np.arange(0, 61, 5.0)
    steady = level(t, np.full(t.size, 0.01) + 1e-6 * np.sin(t))
    assert steady.mean == pytest.approx(0.01, rel=1e-4)
    drifting = level(t, 0.01 + 1e-5 * t)
    assert drifting.drift == pytest.approx(1e-5, rel=1e-6)
