"""What the transduction steps carry from the two tuning calibrations before them.

``triple_resonance`` leaves the bias that nulls the mismatch (and says when it could not);
``line_noise`` leaves a bound on the microwave input line's occupancy. The steps that follow read
them from the run here, by result name, so no step imports another step's module.
"""

from __future__ import annotations

from hil.analysis.checks import SIGMAS


def hold_bias(lab, run) -> None:
    """Put this run's tuned bias on the crystal: a calibration reused from an earlier run finds
    the source in its end-of-run safe state (off, 0 V)."""
    bias = lab.roles.get("bias")
    tuned = run.results.get("triple_resonance", {}).get("bias_v")
    if bias is None or tuned is None or tuned.value == 0:
        return
    bias.voltage(tuned.value)
    bias.enable_output()


def untuned_mismatch(run) -> str | None:
    """Why this run's results carry a triple-resonance mismatch (None: nulled, or not measured)."""
    residual = run.results.get("triple_resonance", {}).get("residual_mismatch_hz")
    return residual.suspect if residual is not None else None


def line_occupancy(run) -> tuple[float, str | None]:
    """The line's occupancy added_noise assumes (line_noise's bound, 0 without it) and, when
    the bound shows a warm line, why what it computes is then a lower bound."""
    found = run.results.get("line_noise", {}).get("n_line_min")
    if found is None:
        return 0.0, None
    n_line, err = found.value, found.stderr or 0.0
    if n_line <= SIGMAS * err:
        return 0.0, None
    return n_line, (f"microwave input line warmer than the mode's bath: n_line >= {n_line:.3f} "
                    f"+- {err:.3f} from the pump-off noise dip (line_noise); corrected for that "
                    f"bound, a lower bound if the mode's pump-off bath is above the fridge's")
