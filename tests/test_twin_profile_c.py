"""Profile C reproduces the published figures of Hease et al., PRX Quantum 1, 020315 (2020).

[V] in physics.md §2: 1.48 mW CW pump, total efficiency 0.03 % (internal 0.67 %), bandwidth
10.7 MHz, microwave-mode occupancy 0.025. Tolerances: 2 % on the efficiencies (the paper quotes
two digits), 1 % on the bandwidth, 1e-9 on the occupancy (set by construction).
"""

from __future__ import annotations

import pytest

from hil.twin import TwinLab
from hil.twin.noise import NoiseModel
from hil.twin.params import TwinParams
from hil.twin.transducer import EOTransducer, efficiency_on_resonance

HEASE_PUMP_W = 1.48e-3


@pytest.fixture
def device() -> EOTransducer:
    return EOTransducer.from_params(TwinParams.profile("C").transducer)


def test_efficiency_at_the_papers_pump_power(device: EOTransducer) -> None:
    c = float(device.cooperativity(HEASE_PUMP_W))
    assert efficiency_on_resonance(c) == pytest.approx(0.0067, rel=0.02)  # internal
    assert float(device.efficiency(HEASE_PUMP_W)) == pytest.approx(0.0003, rel=0.02)  # total, S-matrix


def test_conversion_bandwidth(device: EOTransducer) -> None:
    c = float(device.cooperativity(HEASE_PUMP_W))
    assert device.bandwidth_hz(c) == pytest.approx(10.7e6, rel=0.01)


def test_ground_state_occupancy_pump_off() -> None:
    params = TwinParams.profile("C")
    model = NoiseModel.from_params(params)
    _, n_m = model.mode_occupancies(0.0)
    assert n_m == pytest.approx(0.025, rel=1e-9)


def test_the_lab_reaches_the_papers_pump_power_cw() -> None:
    lab = TwinLab(TwinParams.profile("C"))
    laser_w = HEASE_PUMP_W / lab.physics.pump_path.chip_per_laser
    assert 0.04e-3 < laser_w < 20e-3  # within the TSL-570's -15..+13 dBm
    assert lab.params.lines.pump_duty_cycle == 1.0
