"""conversion_bandwidth on the twin, Profiles A and B (prerequisites from the twin's truth)."""

from __future__ import annotations

import pytest
from transduction_support import Traffic, fill_priors, lab_and_run

from experiments.transduction.conversion_bandwidth import conversion_bandwidth


def model_bandwidth(lab) -> tuple[float, float]:
    """The twin's FWHM of |S_oe|^2 (transducer.bandwidth_hz) and C for the laser's last state."""
    physics = lab.world.physics
    laser_w = float(lab.world.state("pump_laser", "power_w"))
    wavelength = float(lab.world.state("pump_laser", "wavelength_m"))
    c = physics.cooperativity(laser_w, wavelength)
    delta_o = physics.transducer.signal_detuning_hz(physics.pump_detuning_hz(wavelength))
    return physics.transducer.bandwidth_hz(c, float(delta_o)), c


@pytest.mark.parametrize("profile, laser_w", [("A", 0.0), ("A", 1e-4), ("B", 0.0)])
def test_fwhm_matches_the_twin(tmp_path, profile, laser_w):
    """physics.md §1.3 spectrum: FWHM of |S_oe|^2, which is kappa_m (1 + C) only for
    kappa_o >> kappa_m (Profile B); Profile A (kappa_o/kappa_m = 2.5) is compared with the twin's
    numerical FWHM, within 2 %."""
    with lab_and_run(tmp_path, profile) as (lab, run):
        truth = fill_priors(run, lab)
        results = conversion_bandwidth(lab, run, pump_power_w=laser_w)
        expected, c = model_bandwidth(lab)
    width = results["bandwidth_hz"]
    assert width.value == pytest.approx(expected, rel=0.02)
    assert abs(width.value - expected) < 5 * width.stderr
    if profile == "B":  # kappa_o/kappa_m = 67: the Lorentzian limit holds to ~0.5 %
        assert width.value == pytest.approx(truth["kappa_m_hz"] * (1 + c), rel=0.01)
    assert (tmp_path / "run_conversion_bandwidth.png").is_file()
    # these priors carry no monitor noise from efficiency_vs_pump: the on-chip power says so
    assert "monitor meter's noise is not measured" in (results["pump_power_w"].suspect or "")


@pytest.mark.parametrize("params, message", [
    ({"pump_power_w": 1.0}, r"conversion_bandwidth: pump_power_w must be in \[3.16\d*e-05, 0.0199"),
    ({"fine_span_widths": 1.0}, r"conversion_bandwidth: fine_span_widths must be in \[1.5, 50\]"),
    ({"averages": 0}, r"conversion_bandwidth: averages must be an integer in \[1, "),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message):
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab)
        traffic = Traffic(lab)
        with pytest.raises(ValueError, match=message):
            conversion_bandwidth(lab, run, **params)
        assert traffic.messages == []
