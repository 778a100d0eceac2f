"""The optical coupling regime from the conversion data, not assumed (physics.md §1.1, §1.3).

The through-port dip depth ``T_min = ((kappa_0 - kappa_ex) / kappa)^2`` is the same with
kappa_ex and kappa_0 swapped, so optical_resonance reports the under-coupled root. The
conversion spectra tell the two apart: at low C their amplitude fixes ``eta_o C``, near C = 1
their width fixes C alone, so only the right eta_o gives one straight line C = P / P_C1 through
every pump power. Both roots are fitted; the one whose line fits is kept. When the data cannot
tell (the sweep stays at C << 1), the results that depend on kappa_o_ex are marked suspect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from experiments.transduction.priors import Priors
from hil.analysis.checks import Verdict, choose, flag
from hil.analysis.transducer import Rates

UNDER = "under-coupled"
OVER = "over-coupled"


@dataclass(frozen=True)
class Regime:
    """The chosen regime, the priors with its kappa_o_ex, and the analysis done with them."""

    verdict: Verdict
    priors: Priors
    spectra: Any
    slope: Any
    assumed_ex_hz: float

    @property
    def changed(self) -> bool:
        return self.verdict.chosen != UNDER

    @property
    def note(self) -> str:
        return (f"the conversion data choose the {self.verdict.chosen} optical root "
                f"(reduced chi-square of C = P / P_C1: "
                + ", ".join(f"{k} {v:.3g}" for k, v in self.verdict.scores.items())
                + f"): kappa_o_ex = {self.priors.rates.kappa_o_ex_hz / 1e6:.4g} MHz, not the "
                f"{self.assumed_ex_hz / 1e6:.4g} MHz optical_resonance assumed")


def resolve_coupling(priors: Priors, analyse: Callable[[Priors], tuple[Any, Any]]) -> Regime:
    """Run ``analyse(priors) -> (spectra, slope fit)`` with either optical root; keep the one
    whose C = P / P_C1 line fits (:func:`hil.analysis.checks.choose`)."""
    rates = priors.rates
    swapped = Rates(rates.kappa_o_hz, rates.kappa_o_hz - rates.kappa_o_ex_hz, rates.kappa_m_hz,
                    rates.kappa_m_ex_hz)
    candidates = {UNDER: priors}
    # Near critical coupling the two roots agree within the errors: nothing to tell apart.
    if abs(swapped.kappa_o_ex_hz - rates.kappa_o_ex_hz) > 0.05 * rates.kappa_o_ex_hz:
        candidates[OVER] = replace(priors, rates=swapped)
    analysed = {name: analyse(p) for name, p in candidates.items()}
    scores = {name: float(slope.chi2_reduced) for name, (_, slope) in analysed.items()}
    dof = max(len(next(iter(analysed.values()))[0]) - 1, 1)
    verdict = choose(scores, dof=dof) if len(scores) > 1 else Verdict(UNDER, scores, True)
    spectra, slope = analysed[verdict.chosen]
    return Regime(verdict, candidates[verdict.chosen], spectra, slope, rates.kappa_o_ex_hz)


def correct_optical_resonance(run, regime: Regime) -> None:
    """Mark optical_resonance's kappa_o_ex_hz suspect, naming the regime the data chose, so the
    run file never shows the wrong root as a clean result."""
    results = dict(run.results.get("optical_resonance", {}))
    if "kappa_o_ex_hz" not in results:
        return
    results["kappa_o_ex_hz"] = flag(results["kappa_o_ex_hz"], (
        f"under-coupling assumed from the dip depth, but the conversion data show the mode "
        f"{regime.verdict.chosen}: kappa_o_ex = {regime.priors.rates.kappa_o_ex_hz / 1e6:.4g} MHz "
        f"(efficiency_vs_pump.kappa_o_ex_hz)"))
    run.record_results("optical_resonance", results)


def extrapolated(c_reached: float) -> float:
    """1 when eta_max (the efficiency at C = 1) lies beyond the highest C measured."""
    return 1.0 if c_reached < 1.0 else 0.0
