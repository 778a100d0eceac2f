"""The resonance steps' errors, carried through the conversion fits that take them as given.

A conversion fit (:mod:`hil.analysis.conversion`) takes the optical and microwave linewidths,
f_m and the pump detuning as fixed numbers. An error in one of them moves every spectrum of a
sweep the same way: a common-mode error that no single fit's covariance and no chi-square
across the sweep can see. On the default station a 0.2 % error in kappa_o (1.4 of its
standard errors) moved the pumped kappa_m at C = 0.84 by 6.5 % of the pump's effect on it,
8 of that fit's own standard errors (docs/checks.md, "Error bars").

:func:`prior_shares` refits with each prior moved by its standard error, one at a time, and
keeps how far each fitted value moved: that prior's share of its error. The pump detuning is
worked out again from its own dip readings with each moved linewidth (it was computed from
them, so it moves with them), and its readings' scatter is a prior of its own. kappa_o and
kappa_o,ex come from one dip's width and depth, whose errors are correlated: they are moved
along two independent directions of that covariance (:func:`moved_dip`). The shares then add
in quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from experiments.transduction.priors import LINEWIDTHS, Priors
from hil.analysis.pump_detuning import PumpDetuning
from hil.results import FitError

#: The priors a conversion fit takes as given (Priors.rel_err keys), and the pump detuning's
#: readings, by the name their shares are reported under.
IN_FITS = (*LINEWIDTHS, "f_m_hz")
DETUNING = "pump_detuning_hz"

#: What a refit returns: its values by name.
Compute = Callable[[Priors, float], Mapping[str, float]]


@dataclass(frozen=True)
class Shares:
    """Each fitted value's error from each prior, by prior name then value name."""

    by_prior: dict[str, dict[str, float]]
    failed: dict[str, str] = field(default_factory=dict)  # prior -> why its refits failed

    def doubt(self) -> str | None:
        """Why the errors may be short: priors whose refits failed both ways (their share is
        then unknown, not counted)."""
        if not self.failed:
            return None
        return ("its error does not carry " + "; ".join(
            f"{name} (refits with it moved by its error failed: {why})"
            for name, why in self.failed.items()))

    def total(self, name: str) -> float:
        return math.sqrt(sum(shares.get(name, 0.0) ** 2 for shares in self.by_prior.values()))

    def widened(self, name: str, fit_err: float | None) -> float:
        """The fit's own error and every prior's share, in quadrature."""
        return math.hypot(fit_err or 0.0, self.total(name))

    def describe(self, name: str, value: float) -> str:
        """The shares of ``name`` as percentages of ``value``, largest first."""
        parts = sorted(((shares.get(name, 0.0), prior) for prior, shares in self.by_prior.items()),
                       reverse=True)
        return ", ".join(f"{prior} {100 * share / abs(value):.2g} %" for share, prior in parts
                         if share > 0 and value)


def moved(priors: Priors, name: str, sign: float) -> Priors:
    """``priors`` with ``name`` moved by ``sign`` of its standard error (ValueError where that
    leaves the linewidths impossible, e.g. kappa_ex above kappa). kappa_o and kappa_o,ex are
    moved as the optical dip's width and depth where the resonance step recorded the depth's
    error (:func:`moved_dip`)."""
    if name in ("kappa_o_hz", "kappa_o_ex_hz") and priors.dip_depth_err is not None:
        return moved_dip(priors, name == "kappa_o_hz", sign)
    factor = 1 + sign * priors.rel_err.get(name, 0.0)
    if name == "f_m_hz":
        return replace(priors, f_m_hz=priors.f_m_hz * factor)
    return replace(priors, rates=replace(priors.rates, **{name: getattr(priors.rates, name) * factor}))


def moved_dip(priors: Priors, width: bool, sign: float) -> Priors:
    """The optical linewidths from the dip's width w and depth A moved along independent
    directions of their covariance: the width by its error with the depth by rho of its error
    (``width``), or the depth alone by sqrt(1 - rho^2) of its error; then
    ``kappa_o = w`` and ``kappa_o,ex = w (1 -+ sqrt(1 - A)) / 2`` on the root the priors hold."""
    rates = priors.rates
    w, ex = rates.kappa_o_hz, rates.kappa_o_ex_hz
    root_sign = 1.0 if 2 * ex <= w else -1.0  # under- or over-coupled root
    depth = 1 - (1 - 2 * ex / w) ** 2
    rho, depth_err = priors.dip_width_depth_corr, priors.dip_depth_err or 0.0
    if width:
        w, depth = w * (1 + sign * priors.rel_err.get("kappa_o_hz", 0.0)), depth + sign * rho * depth_err
    else:
        depth += sign * math.sqrt(max(1 - rho ** 2, 0.0)) * depth_err
    if not 0 <= depth <= 1:
        raise ValueError(f"a dip depth of {depth:.4g} is outside [0, 1]")
    ex = w * (1 - root_sign * math.sqrt(1 - depth)) / 2
    return replace(priors, rates=replace(rates, kappa_o_hz=w, kappa_o_ex_hz=ex))


def prior_shares(compute: Compute, priors: Priors, pump: PumpDetuning,
                 nominal: Mapping[str, float],
                 extra: Mapping[str, Callable[[], Mapping[str, float]]] | None = None) -> Shares:
    """Each prior's share of the values ``compute(priors, detuning_hz)`` returns (``nominal``:
    what it returned with the priors as measured). One refit per prior, moved by +1 standard
    error (by -1 where +1 is impossible or the fit fails): the error is linear in so small a move.
    ``extra``: further priors by name, each a refit with that one moved by its error."""
    def detuning(rates) -> float:
        return pump.with_rates(rates).detuning_hz if pump.readings is not None else pump.detuning_hz

    # the detuning's own error: its readings' scatter (all of it without the readings)
    own_err = pump.with_rates(priors.rates).detuning_err if pump.readings is not None else pump.detuning_err
    base_detuning = detuning(priors.rates)
    trials: dict[str, list[Callable[[], Mapping[str, float]]]] = {}
    for name in IN_FITS:
        rel = priors.rel_err.get(name, 0.0)
        if rel > 0 and math.isfinite(rel):
            trials[name] = [_trial(compute, priors, name, sign, detuning) for sign in (1.0, -1.0)]
    if own_err > 0 and math.isfinite(own_err):
        trials[DETUNING] = [partial(compute, priors, base_detuning + sign * own_err)
                            for sign in (1.0, -1.0)]
    for name, trial in (extra or {}).items():
        trials[name] = [trial]
    by_prior: dict[str, dict[str, float]] = {}
    failed: dict[str, str] = {}
    for name, attempts in trials.items():
        why = ""
        for attempt in attempts:
            try:
                values = attempt()
            except (FitError, ValueError) as exc:
                why = str(exc)
                continue
            by_prior[name] = {key: abs(float(values[key]) - float(nominal[key])) for key in nominal}
            break
        else:
            failed[name] = why
    return Shares(by_prior, failed)


def _trial(compute: Compute, priors: Priors, name: str, sign: float,
           detuning: Callable) -> Callable[[], Mapping[str, float]]:
    def run() -> Mapping[str, float]:
        varied = moved(priors, name, sign)
        return compute(varied, detuning(varied.rates))
    return run
