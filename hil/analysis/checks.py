"""Checks a step runs on what it reports, so a wrong number never leaves the lab looking right.

Each check returns ``None`` when the result passes, else the reason in words a physicist can act
on (what failed, by how much, the likely cause). :func:`flag` puts the reasons on a
:class:`~hil.results.Result` as its ``suspect``. The thresholds are set so that noise alone
fires a check about once in 10^4 runs (p < 1e-4, or 4 sigma): a check that fires means the
model does not describe the data, not bad luck. docs/checks.md lists where each one runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import chi2 as chi2_distribution

from hil.results import Result

#: Probability below which a fit's chi-square says the model does not describe the data.
P_LIMIT = 1e-4
#: Standard deviations beyond which two values that should agree are said to disagree.
SIGMAS = 4.0


def fit_quality(chi2_reduced: float, dof: int, what: str) -> str | None:
    """The reduced chi-square of a fit whose errors are known: too large means the model misses
    the data (wrong regime, drift, a wing point off)."""
    if dof < 1 or not math.isfinite(chi2_reduced):
        return None if math.isfinite(chi2_reduced) else f"{what}: the fit's chi-square is not finite"
    p = float(chi2_distribution.sf(chi2_reduced * dof, dof))
    if p < P_LIMIT:
        return (f"{what}: reduced chi-square {chi2_reduced:.3g} over {dof} degrees of freedom "
                f"(p = {p:.1e}); the model does not describe the data")
    return None


def runs_z(residuals: Sequence[float] | np.ndarray) -> float:
    """Wald-Wolfowitz runs test on the residuals' signs: z of the number of runs (about 0 for
    noise, strongly negative when same-sign stretches are long); 0 when too few points."""
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r) & (r != 0)]
    positive = int(np.sum(r > 0))
    negative = r.size - positive
    if positive < 2 or negative < 2 or r.size < 10:
        return 0.0
    runs = 1 + int(np.sum(np.signbit(r[1:]) != np.signbit(r[:-1])))
    mean = 2 * positive * negative / r.size + 1
    var = (mean - 1) * (mean - 2) / (r.size - 1)
    return (runs - mean) / math.sqrt(var) if var > 0 else 0.0


def residual_structure(residuals: Sequence[float] | np.ndarray, what: str) -> str | None:
    """Runs of same-sign residuals (:func:`runs_z`): far fewer runs than chance means the fit
    leaves a shape in the data (an asymmetric dip, a second mode, a drifting baseline)."""
    z = runs_z(residuals)
    if z < -SIGMAS:
        return (f"{what}: the residuals keep their sign over long stretches (runs-test "
                f"z = {z:.1f}); the line shape is not the model's")
    return None


def inside(value: float, low: float, high: float, what: str, unit: str = "") -> str | None:
    """A fitted position that lies outside the measured window is an extrapolation."""
    if low <= value <= high:
        return None
    return (f"{what} = {value:.6g} {unit} lies outside the measured window "
            f"[{low:.6g}, {high:.6g}] {unit}").replace("  ", " ")


def not_above(value: float, err: float | None, bound: float, bound_err: float | None,
              what: str, bound_what: str) -> str | None:
    """``value <= bound`` within the errors (e.g. eta_total <= eta_max)."""
    sigma = math.hypot(err or 0.0, bound_err or 0.0)
    excess = value - bound
    if excess > SIGMAS * sigma and excess > 1e-3 * abs(bound):
        return (f"{what} = {value:.4g} exceeds {bound_what} = {bound:.4g} by "
                f"{excess / sigma if sigma else math.inf:.1f} sigma; one of them is wrong")
    return None


def agree(measured: float, measured_err: float | None, expected: float,
          expected_err: float | None, what: str, *, rel_tol: float = 0.05) -> str | None:
    """Two determinations of one quantity agree within ``SIGMAS`` standard errors or
    ``rel_tol`` of the expected value, whichever is wider."""
    sigma = math.hypot(measured_err or 0.0, expected_err or 0.0)
    allowed = max(SIGMAS * sigma, rel_tol * abs(expected))
    if abs(measured - expected) <= allowed:
        return None
    return (f"{what}: measured {measured:.4g}, expected {expected:.4g} "
            f"({(measured / expected - 1) * 100 if expected else math.inf:+.0f} %)")


def precise(value: float, err: float | None, rel: float, what: str, remedy: str) -> str | None:
    """A result whose own standard error exceeds ``rel`` of its value cannot vouch for it at the
    accuracy the lab works to (a noise-limited reading at low signal)."""
    if err is None or not value or err <= rel * abs(value):
        return None
    return (f"{what} is known only to +-{err / abs(value):.0%} (standard error), more than the "
            f"{rel:.0%} it is used at; {remedy}")


def loss_plausible(loss_db: float, what: str, low_db: float = 0.0, high_db: float = 40.0
                   ) -> str | None:
    """A loss below 0 dB is a gain the path does not have; above ``high_db`` no light would be
    left to measure with: either way a calibration (tap ratio, meter wavelength) is wrong."""
    if low_db <= loss_db <= high_db:
        return None
    return (f"{what} = {loss_db:.3g} dB is not a plausible loss (expected {low_db:g} to "
            f"{high_db:g} dB); check constants: pump_tap_ratio and the meters' wavelength")


@dataclass(frozen=True)
class Verdict:
    """Which of several hypotheses the data choose, and how clearly."""

    chosen: str
    scores: dict[str, float]   # reduced chi-square (or any misfit) per hypothesis, lower better
    resolved: bool

    def reason(self, what: str) -> str | None:
        """Why the choice is not safe to build on, or None."""
        if self.resolved:
            return None
        scores = ", ".join(f"{k} {v:.3g}" for k, v in self.scores.items())
        return (f"{what}: the data do not tell the hypotheses apart (reduced chi-square {scores}); "
                f"'{self.chosen}' assumed")


def choose(scores: dict[str, float], *, dof: int, ratio: float = 3.0) -> Verdict:
    """The hypothesis with the smallest misfit, resolved when every other one both fails
    :func:`fit_quality` and is ``ratio`` times worse."""
    best = min(scores, key=lambda k: scores[k])
    resolved = all(fit_quality(v, dof, k) is not None and v > ratio * scores[best]
                   for k, v in scores.items() if k != best)
    return Verdict(best, dict(scores), resolved)


def flag(result: Result, *reasons: str | None) -> Result:
    """``result`` with every non-None reason added to its ``suspect`` (kept if already set)."""
    found = [r for r in ((result.suspect,) + reasons) if r]
    if not found:
        return result
    return replace(result, suspect="; ".join(dict.fromkeys(found)))


def flag_all(results: dict[str, Result], names: Iterable[str], *reasons: str | None
             ) -> dict[str, Result]:
    """:func:`flag` the named results of a step's result dict (in place and returned)."""
    for name in names:
        if name in results:
            results[name] = flag(results[name], *reasons)
    return results


def built_on(priors: dict[str, Result]) -> str | None:
    """The reason a result inherits from the suspect calibrations it was computed from."""
    bad = [f"{name} ({r.suspect})" for name, r in priors.items() if r.suspect]
    return ("built on suspect " + "; ".join(bad)) if bad else None
