"""triple_resonance: the mismatch measured, and nulled with the bias source (imperfections.md §5).

The analysis is checked on the model it inverts; the step on the twin, whose input parameters
(``transducer.fsr_mismatch_hz`` and ``bias.mismatch_hz_per_v``) are the truth. Resonances come
from the twin's truth (tests/transduction_support.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from transduction_support import fill_priors, lab_and_run

from experiments.calibration.triple_resonance import triple_resonance
from experiments.transduction.tuning import hold_bias
from hil.analysis.mismatch import bias_line, lorentzian, mismatch_from_scan
from hil.results import Result
from hil.store import open_run

KAPPA_O = 25e6


def test_the_mismatch_is_the_distance_between_the_conversion_and_dip_centres():
    """Low C (physics.md §1.3): |S21|^2 ∝ L(Delta) L(delta - Delta); the dip depth ∝ L(Delta)
    (§1.1). A laser offset eps shifts both on the nominal axis; delta comes back to 1 kHz."""
    nominal = np.arange(-3, 4) * 12.5e6
    eps, delta = 3e6, 4e6
    true = nominal + eps
    depth = 0.84 * lorentzian(true, 0.0, KAPPA_O)
    conversion = 1e-9 * lorentzian(true, 0.0, KAPPA_O) * lorentzian(delta - true, 0.0, KAPPA_O)
    fit = mismatch_from_scan(nominal, depth, conversion, KAPPA_O)
    assert fit.mismatch_hz == pytest.approx(delta, abs=1e3)
    assert fit.pump_center_hz == pytest.approx(-eps, abs=1e3)


def test_the_bias_line_nulls_a_linear_mismatch():
    """delta(V) = delta_0 + k V (Pockels, imperfections.md §5): V_0 = -delta_0 / k."""
    line = bias_line([0.0, 10.0, 18.0], [5e6, 2.5e6, 0.5e6], [1e5, 1e5, 1e5])
    assert line.slope_hz_per_v == pytest.approx(-2.5e5, rel=1e-9)
    assert line.null_v == pytest.approx(20.0, rel=1e-9)


def _bias_state(lab) -> tuple[float, float]:
    return (float(lab.world.state("bias_source", "output")),
            float(lab.world.state("bias_source", "voltage_v")))


def test_a_5_mhz_mismatch_is_nulled_and_the_bias_stays_on(tmp_path):
    """Twin: +5 MHz, -0.25 MHz/V, so +20 V nulls it. The step's voltage leaves the twin's
    mismatch within the tolerance (kappa_o/20), and the source stays on at it."""
    with lab_and_run(tmp_path, transducer={"fsr_mismatch_hz": 5e6},
                     bias={"mismatch_hz_per_v": -2.5e5}) as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        results = triple_resonance(lab, run)
        output, volts = _bias_state(lab)
        assert not lab.world.laser_emitted_power()  # the pump is off after the step
    assert results["mismatch_hz"].value == pytest.approx(5e6, abs=4 * results["mismatch_hz"].stderr)
    tolerance = results["tolerance_hz"].value
    assert tolerance == pytest.approx(KAPPA_O / 20)
    assert abs(5e6 - 2.5e5 * results["bias_v"].value) < tolerance
    assert abs(results["residual_mismatch_hz"].value) < tolerance
    assert results["tuning_hz_per_v"].value == pytest.approx(-2.5e5, rel=0.2)
    assert all(r.suspect is None for r in results.values())
    assert output == 1.0 and volts == results["bias_v"].value
    assert (tmp_path / "run_triple_resonance.png").is_file()


def test_a_null_outside_the_bias_limits_is_reported_not_forced(tmp_path):
    """-0.05 MHz/V needs +100 V; the station allows +-50 V: the step stops at the limit and
    marks the residual suspect, naming the limits."""
    with lab_and_run(tmp_path, transducer={"fsr_mismatch_hz": 5e6},
                     bias={"mismatch_hz_per_v": -5e4}) as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        results = triple_resonance(lab, run)
        output, volts = _bias_state(lab)
    residual = results["residual_mismatch_hz"]
    assert residual.value == pytest.approx(5e6 - 5e4 * 50, abs=4 * residual.stderr)
    assert "triple-resonance mismatch" in residual.suspect and "limits [-50, 50] V" in residual.suspect
    assert results["bias_v"].value == 50.0 and (output, volts) == (1.0, 50.0)


def test_no_mismatch_costs_one_scan_and_leaves_the_bias_off(tmp_path):
    """The default station (no mismatch): one scan at 0 V, the source left off at 0 V."""
    with lab_and_run(tmp_path) as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        results = triple_resonance(lab, run)
        state = _bias_state(lab)
    mismatch = results["mismatch_hz"]
    assert abs(mismatch.value) < 4 * mismatch.stderr < results["tolerance_hz"].value
    assert results["bias_v"].value == 0.0 and state == (0.0, 0.0)
    assert all(r.suspect is None for r in results.values())
    steps = open_run(run.path).steps
    assert "triple_resonance" in steps and "triple_resonance_scan1" not in steps


def test_a_reused_bias_is_put_back_on_the_crystal(tmp_path):
    """A triple_resonance calibration reused from an earlier run finds the source off at 0 V
    (that run's end); the chain puts its bias_v back before the transduction steps."""
    with lab_and_run(tmp_path) as (lab, run):
        assert _bias_state(lab) == (0.0, 0.0)
        run.results["triple_resonance"] = {"bias_v": Result(12.5, "V")}
        hold_bias(lab, run)
        assert _bias_state(lab) == (1.0, 12.5)
