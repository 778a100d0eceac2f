"""The pump's detuning from the dip depth: T(Delta) = 1 - kappa_0 kappa_ex / (Delta^2 + kappa^2/4)
(physics.md §1.1), so (1 - T)/(1 - T_min) = 1/(1 + 4 Delta^2/kappa^2)."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.pump_detuning import detuning_from_dip
from hil.analysis.transducer import Rates

KAPPA, KAPPA_EX = 25e6, 10e6  # Profile A's optical mode (physics.md §4)


def transmission(detuning_hz):
    return 1 - (KAPPA - KAPPA_EX) * KAPPA_EX / (np.asarray(detuning_hz) ** 2 + KAPPA ** 2 / 4)


@pytest.mark.parametrize("delta_hz", [3e6, -5e6])
def test_the_dip_depth_gives_the_detuning_and_the_cooperativity_factor(delta_hz) -> None:
    rng = np.random.default_rng(1)
    offsets = np.array([-20 * KAPPA, 0.0, 20 * KAPPA])
    true = offsets + delta_hz  # where the three wavelengths really sit from the mode
    power = 1e-3 * transmission(true)[:, None] * (1 + 1e-6 * rng.standard_normal((3, 5)))
    nominal = offsets + np.sign(delta_hz) * 1e6  # the resonance step's centre is a bit off
    rates = Rates(KAPPA, KAPPA_EX, 1e6, 0.5e6)
    got = detuning_from_dip(power, nominal, rates, 0.0, 0.0)
    assert got.factor == pytest.approx(1 / (1 + 4 * delta_hz ** 2 / KAPPA ** 2), rel=1e-4)
    assert got.detuning_hz == pytest.approx(delta_hz, rel=1e-3)
    assert got.transmission == pytest.approx(float(transmission(delta_hz)), rel=1e-5)
    assert got.from_wavelengths_hz == nominal[1]
