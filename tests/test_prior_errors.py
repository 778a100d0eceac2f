"""The resonance steps' errors carried through fits that take them as given
(experiments/transduction/prior_errors.py): each prior moved by its error, the refit's change is
its share; kappa_o and kappa_o,ex moved as the optical dip's width and depth (physics.md §1.1:
kappa_o,ex = (kappa_o/2)(1 -+ sqrt(T_min)), A = 1 - T_min), the pump detuning worked out
again from its dip readings with the moved linewidths."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments.transduction.prior_errors import DETUNING, moved, prior_shares
from experiments.transduction.priors import Priors
from hil.analysis.pump_detuning import PumpDetuning, detuning_from_dip
from hil.analysis.transducer import Rates

KAPPA, KAPPA_EX = 25e6, 10e6  # Profile A's optical mode (physics.md §4)
REL = {"kappa_o_hz": 2e-3, "kappa_o_ex_hz": 3e-3, "kappa_m_hz": 1e-3, "kappa_m_ex_hz": 1e-3,
       "f_m_hz": 1e-7}


def priors(kappa_ex=KAPPA_EX, depth_err=None, corr=0.0) -> Priors:
    return Priors(1550e-9, Rates(KAPPA, kappa_ex, 10e6, 5e6), 8.8e9, 1.0, dict(REL),
                  dip_depth_err=depth_err, dip_width_depth_corr=corr)


def depth_of(rates: Rates) -> float:
    return 4 * rates.kappa_o_ex_hz * (rates.kappa_o_hz - rates.kappa_o_ex_hz) / rates.kappa_o_hz ** 2


@pytest.mark.parametrize("kappa_ex", [KAPPA_EX, KAPPA - KAPPA_EX])  # under- and over-coupled
def test_the_optical_linewidths_move_as_the_dips_width_and_depth(kappa_ex) -> None:
    base = priors(kappa_ex, depth_err=4e-3, corr=-0.5)
    depth = depth_of(base.rates)  # 1 - T_min = 4 kappa_ex kappa_0 / kappa^2
    width = moved(base, "kappa_o_hz", 1.0).rates
    assert width.kappa_o_hz == pytest.approx(KAPPA * 1.002, rel=1e-12)
    assert depth_of(width) == pytest.approx(depth - 0.5 * 4e-3, rel=1e-9)
    alone = moved(base, "kappa_o_ex_hz", 1.0).rates
    assert alone.kappa_o_hz == KAPPA
    assert depth_of(alone) == pytest.approx(depth + math.sqrt(0.75) * 4e-3, rel=1e-9)
    # the root stays the one the priors hold
    root = 1 - math.sqrt(1 - depth_of(alone))
    expected = KAPPA * (root if kappa_ex < KAPPA / 2 else 2 - root) / 2
    assert alone.kappa_o_ex_hz == pytest.approx(expected, rel=1e-9)
    # without the depth's error each linewidth moves alone by its own relative error
    plain = moved(priors(kappa_ex), "kappa_o_ex_hz", -1.0).rates
    assert (plain.kappa_o_hz, plain.kappa_o_ex_hz) == (KAPPA, pytest.approx(kappa_ex * 0.997))


def test_each_priors_share_is_how_far_its_error_moves_the_refit() -> None:
    """A refit that is linear in the priors: its shares are the coefficients times the priors'
    errors; the detuning, worked out from its dip readings, moves with kappa_o, and its own
    share is its readings' scatter."""
    rng = np.random.default_rng(2)
    offsets = np.array([-20 * KAPPA, 0.0, 20 * KAPPA])
    t = 1 - (KAPPA - KAPPA_EX) * KAPPA_EX / ((offsets + 4e6) ** 2 + KAPPA ** 2 / 4)
    power = 1e-3 * t[:, None] * (1 + 1e-4 * rng.standard_normal((3, 5)))
    base = priors()
    pump = detuning_from_dip(power, offsets + 1e5, base.rates, REL["kappa_o_hz"], REL["kappa_o_ex_hz"])

    def compute(pr: Priors, detuning: float) -> dict[str, float]:
        return {"a": 3.0 * pr.rates.kappa_o_hz + 5.0 * pr.f_m_hz, "b": detuning}

    shares = prior_shares(compute, base, pump, compute(base, pump.detuning_hz))
    assert shares.by_prior["kappa_o_hz"]["a"] == pytest.approx(3.0 * KAPPA * 2e-3, rel=1e-9)
    assert shares.by_prior["f_m_hz"]["a"] == pytest.approx(5.0 * 8.8e9 * 1e-7, rel=1e-6)
    assert shares.by_prior["kappa_m_hz"]["a"] == 0.0
    moved_detuning = detuning_from_dip(power, offsets + 1e5, moved(base, "kappa_o_hz", 1.0).rates, 0, 0)
    assert shares.by_prior["kappa_o_hz"]["b"] == pytest.approx(
        abs(moved_detuning.detuning_hz - pump.detuning_hz), rel=1e-9)
    scatter = detuning_from_dip(power, offsets + 1e5, base.rates, 0.0, 0.0).detuning_err
    assert shares.by_prior[DETUNING]["b"] == pytest.approx(scatter, rel=1e-9)
    assert 0 < scatter < pump.detuning_err  # the linewidths' part is no longer counted there
    assert shares.widened("a", 4.0) == pytest.approx(math.hypot(4.0, 3 * KAPPA * 2e-3, 5 * 880.0),
                                                     rel=1e-6)


def test_the_pump_laws_errors_carry_each_priors_common_mode_share() -> None:
    """Every power's pumped-mode fit takes the priors as given, so an error in one moves all of
    them together: the law's errors add each prior's share. Synthetic modes on physics.md
    §1.2's law (kappa_m,0 + b P^0.5); a sweep refitted with kappa_o moved comes back 3 %
    stronger, with the detuning moved 1 % stronger."""
    from experiments.transduction.efficiency_vs_pump import _pump_law

    power = np.geomspace(1e-3, 0.8, 12)
    rise, fall = 2.1e5 * power ** 0.5, 3.2e5 * power ** 0.5
    noise = np.random.default_rng(3).normal(0, 500.0, power.size)

    def spectra(scale: float):
        return [SimpleNamespace(mode=SimpleNamespace(rates=SimpleNamespace(kappa_m_hz=10e6 + scale * r + e),
                                                     kappa_m_err=500.0, delta_m_hz=-scale * f,
                                                     delta_m_err=500.0))
                for r, f, e in zip(rise, fall, noise, strict=True)]

    base = priors()
    pump = PumpDetuning(4e6, 1e4, 0.9, 0.01, 0.5, 1e-3, 4e6)  # no readings: its whole error

    def refit(pr: Priors, detuning: float):
        return spectra(1.0 + 0.03 * (pr.rates.kappa_o_hz != KAPPA) + 0.01 * (detuning != 4e6))

    events: list[str] = []
    run = SimpleNamespace(event=lambda kind, message: events.append(message))
    alone, _ = _pump_law(run, power, spectra(1.0), lambda pr, d: spectra(1.0), base, pump)
    law, doubt = _pump_law(run, power, spectra(1.0), refit, base, pump)
    assert doubt is None
    assert law.loss_hz == alone.loss_hz
    # the refits scale the modes' pump-induced parts (2.1e5 and 3.2e5 Hz at 1 W), not their noise
    assert law.loss_err == pytest.approx(math.hypot(alone.loss_err, 0.03 * 2.1e5, 0.01 * 2.1e5), rel=5e-3)
    assert law.shift_err == pytest.approx(math.hypot(alone.shift_err, 0.03 * 3.2e5, 0.01 * 3.2e5), rel=5e-3)
    assert "kappa_o_hz 3 %" in events[-1] and "pump_detuning_hz 1 %" in events[-1]


def test_a_prior_whose_refits_fail_is_named_not_counted() -> None:
    """A refit that fails with kappa_m moved either way leaves that share unknown: it is not
    counted as zero silently nor as an infinite error; the doubt names the prior and why."""
    from hil.results import FitError

    base = priors()
    pump = PumpDetuning(4e6, 1e4, 0.9, 0.01, 0.5, 1e-3, 4e6)

    def compute(pr: Priors, detuning: float) -> dict[str, float]:
        if pr.rates.kappa_m_hz != base.rates.kappa_m_hz:
            raise FitError("no conversion peak")
        return {"a": 2.0 * pr.rates.kappa_o_hz}

    shares = prior_shares(compute, base, pump, compute(base, 4e6))
    assert "kappa_m_hz" not in shares.by_prior and shares.failed == {"kappa_m_hz": "no conversion peak"}
    assert shares.total("a") == pytest.approx(2.0 * KAPPA * 2e-3, rel=1e-9)
    assert shares.doubt() == ("its error does not carry kappa_m_hz (refits with it moved by its "
                              "error failed: no conversion peak)")
