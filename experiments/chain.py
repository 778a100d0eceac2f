"""The characterization chain, the main job: from a cold fridge to efficiency and added noise.

The chain's steps run in the order their ``needs`` give (a topological order; among steps free
to go, the one listed first goes first: the cryostat gate); the runner reuses a step's stored
results while they are fresh and re-runs what went stale (see hil.calibration).
"""

from __future__ import annotations

from experiments.calibration.cryostat_check import cryostat_check
from experiments.calibration.fridge_load import fridge_load
from experiments.calibration.line_noise import line_noise
from experiments.calibration.microwave_resonance import microwave_resonance
from experiments.calibration.optical_resonance import optical_resonance
from experiments.calibration.pump_calibration import pump_calibration
from experiments.calibration.triple_resonance import triple_resonance
from experiments.transduction.added_noise import added_noise
from experiments.transduction.conversion_bandwidth import conversion_bandwidth
from experiments.transduction.efficiency_vs_pump import efficiency_vs_pump
from experiments.transduction.tuning import hold_bias
from hil.calibration import order


def chain(lab, run) -> None:
    """Characterize the transducer: fridge, resonances, pump, efficiency, bandwidth, noise."""
    for step in order(STEPS):
        run.call(step)
        if step is triple_resonance:
            hold_bias(lab, run)  # the transduction steps run at the tuned bias


STEPS = (
    cryostat_check,        # no pump before a stable base temperature
    fridge_load,
    optical_resonance,
    microwave_resonance,
    line_noise,            # the input line against the fridge's temperature, pump off
    pump_calibration,
    triple_resonance,      # the bias that nulls the mismatch, before any conversion is measured
    efficiency_vs_pump,    # also records the bidirectional calibration
    conversion_bandwidth,
    added_noise,
)
# What `hil run` and `hil list` read of an experiment (a function attribute, which mypy cannot
# declare).
chain.steps = STEPS  # type: ignore[attr-defined]
