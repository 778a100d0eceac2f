"""The transduction steps after the real calibration steps, through the runner, Profiles A and B.

No prior is taken from the twin's truth here: optical_resonance, microwave_resonance and
pump_calibration run first, as the chain runs them, and the issue's acceptance is checked on
what the transduction steps make of their results.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from transduction_support import station_file

from experiments.calibration.microwave_resonance import microwave_resonance
from experiments.calibration.optical_resonance import optical_resonance
from experiments.calibration.pump_calibration import pump_calibration
from experiments.transduction.added_noise import added_noise
from experiments.transduction.conversion_bandwidth import conversion_bandwidth
from experiments.transduction.efficiency_vs_detuning import efficiency_vs_detuning
from experiments.transduction.efficiency_vs_pump import efficiency_vs_pump
from hil.experiment import Experiment
from hil.runner import execute
from hil.store import open_run

STEPS = (optical_resonance, microwave_resonance, pump_calibration, efficiency_vs_pump,
         efficiency_vs_detuning, conversion_bandwidth, added_noise)


def transduction(lab, run) -> None:
    """Calibration, then transduction."""
    for step in STEPS:
        run.call(step)


transduction.steps = STEPS


@pytest.mark.parametrize("profile, f_m", [("A", 8.8e9), ("B", 7.0e9)])
def test_issue_acceptance_after_the_calibration_steps(tmp_path, profile, f_m):
    """physics.md §1.3 (C = 4 g0^2 n_p/(kappa_o kappa_m), P_C1 = 1/(C per W)), §1.8 (eta_tot),
    §1.5 (N_add m->o). Issue acceptance: g0 and P_C1 within 5 % of the twin's truth, eta_total
    within 5 % of the model at the chosen pump power, n_add within 20 %."""
    params = {step.__name__: {} for step in STEPS}
    params["microwave_resonance"]["design_frequency_hz"] = f_m
    run = execute(Experiment("transduction", transduction), station_file(tmp_path, profile),
                  tmp_path / "run.h5", params, console=Console(file=io.StringIO()))
    world = run.lab.world
    truth, physics = world.truth(), world.physics
    results = run.results

    assert results["efficiency_vs_pump"]["g0_hz"].value == pytest.approx(truth["g0_hz"], rel=0.05)
    assert results["efficiency_vs_pump"]["p_c1_w"].value == pytest.approx(truth["p_c1_w"], rel=0.05)
    assert results["efficiency_vs_pump"]["eta_max"].value == pytest.approx(truth["eta_max"], rel=0.02)

    # eta_total at the operating point the step chose (C = 1 within the laser's and the fridge's
    # limits: the CW Profile B device at the laser's maximum would heat the mixing chamber past
    # the station's 50 mK interlock), at the pump wavelength the step measured the detuning at
    operating = results["bidirectional"]["laser_power_w"].value
    measured = results["efficiency_vs_pump_pump_detuning"]["pump_detuning_hz"]
    detuning = physics.pump_detuning_hz(world.state("pump_laser", "wavelength_m"))
    # from the dip depth: ~1 kHz in Profile A (kappa_o 25 MHz), ~50 kHz in B (200 MHz)
    assert abs(measured.value - detuning) < 5 * measured.stderr + 10e3
    eta_model = physics.transducer.efficiency(physics.on_chip_pump_w(operating), detuning)
    assert results["bidirectional"]["eta_total"].value == pytest.approx(eta_model, rel=0.05)

    noise = results["added_noise"]
    t_mc = noise["mxc_temperature_k"].value
    n_add_model = physics.noise.added_noise("m->o", noise["pump_power_w"].value, detuning,
                                            t_bath_k=t_mc)
    assert noise["n_add"].value == pytest.approx(n_add_model, rel=0.2)

    assert results["efficiency_vs_detuning"]["kappa_p_hz"].value == pytest.approx(
        truth["kappa_o_hz"], rel=0.05)
    c = physics.cooperativity(operating, world.state("pump_laser", "wavelength_m"))
    width = physics.transducer.bandwidth_hz(c, float(physics.transducer.signal_detuning_hz(detuning)))
    assert results["conversion_bandwidth"]["bandwidth_hz"].value == pytest.approx(width, rel=0.02)

    assert open_run(run.path).status == "completed"
    # Profiles A and B pass every check of hil.analysis.checks: no result is suspect
    assert {f"{g}.{n}": r.suspect for g, res in results.items() for n, r in res.items()
            if r.suspect} == {}
