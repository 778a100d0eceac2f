"""Calibration results that later steps build on.

A step that needs an earlier result (the microwave resonance needs nothing; efficiency vs pump
needs the optical and microwave linewidths and the pump calibration) asks for it with
:func:`require`, which names what to run when it is missing.
"""

from __future__ import annotations

from hil.store import Result


class MissingCalibration(LookupError):
    """A step needs a result no earlier step has produced."""

    def __str__(self) -> str:
        return str(self.args[0])


def require(run, step: str, name: str) -> Result:
    """The result ``step.name`` from this run, or a clear error saying what to run first."""
    results = getattr(run, "results", {}).get(step, {})
    if name in results:
        return results[name]
    raise MissingCalibration(
        f"needs {step}.{name}, which no earlier step of this run produced; run "
        f"'hil run chain' (or 'hil run {step}' first)")
