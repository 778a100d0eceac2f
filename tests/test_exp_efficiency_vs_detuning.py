"""efficiency_vs_detuning on the twin, Profiles A and B (prerequisites from the twin's truth)."""

from __future__ import annotations

import pytest
from transduction_support import Traffic, fill_priors, lab_and_run

from experiments.transduction.efficiency_vs_detuning import efficiency_vs_detuning
from hil.store import open_run


@pytest.mark.parametrize("profile, points", [("A", 11), ("B", 19)])
def test_recovers_the_pump_linewidth(tmp_path, profile, points):
    """physics.md §1.3: C(Delta_p) = C(0)/(1 + 4 Delta_p^2/kappa_p^2), kappa_p the pump mode's
    linewidth (the twin's kappa_o); C(0) is the twin's C at the laser's power on resonance.
    Profile A: the laser's 0.1 pm grid (12.5 MHz) gives only 11 points over +-2 kappa_p."""
    with lab_and_run(tmp_path, profile) as (lab, run):
        truth = fill_priors(run, lab, pump_calibration=False)
        results = efficiency_vs_detuning(lab, run)
        physics = lab.world.physics
        laser_w = float(lab.world.state("pump_laser", "power_w"))
        c0 = float(physics.transducer.cooperativity(physics.on_chip_pump_w(laser_w), 0.0))
    assert results["detuning_points"].value == points
    assert results["kappa_p_hz"].value == pytest.approx(truth["kappa_o_hz"], rel=0.02)
    assert abs(results["kappa_p_hz"].value - truth["kappa_o_hz"]) < 5 * results["kappa_p_hz"].stderr
    assert results["c0"].value == pytest.approx(c0, rel=0.02)
    assert abs(results["pump_offset_hz"].value) < 0.01 * truth["kappa_o_hz"]
    grid = open_run(run.path).steps["efficiency_vs_detuning"]
    assert grid["s21"].dims == ("wavelength", "frequency")
    assert (tmp_path / "run_efficiency_vs_detuning.png").is_file()


@pytest.mark.parametrize("params, message", [
    ({"pump_power_w": 0.03}, r"efficiency_vs_detuning: pump_power_w must be in \[3.16\d*e-05, 0.0199"),
    ({"half_span_linewidths": 0.1}, r"efficiency_vs_detuning: half_span_linewidths must be in \[0.5, 20\]"),
    ({"max_points": 3}, r"efficiency_vs_detuning: max_points must be an integer in \[5, 401\]"),
    ({"if_bandwidth_hz": 0.1}, r"efficiency_vs_detuning: if_bandwidth_hz must be in \[1, 1.5e\+07\] Hz"),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message):
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        traffic = Traffic(lab)
        with pytest.raises(ValueError, match=message):
            efficiency_vs_detuning(lab, run, **params)
        assert traffic.messages == []
