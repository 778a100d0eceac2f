"""The characterization chain, the main job: every calibration and transduction step in order."""

from __future__ import annotations

from experiments.calibration.optical_resonance import optical_resonance


def chain(lab, run) -> None:
    """Characterize the transducer from a cold start (today: the optical resonance)."""
    for step in chain.steps:
        run.call(step)


chain.steps = (optical_resonance,)
