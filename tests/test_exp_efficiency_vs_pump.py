"""efficiency_vs_pump (and its bidirectional calibration) on the twin, Profiles A and B.

Prerequisites (optical_resonance, microwave_resonance, pump_calibration) come from the twin's
truth (tests/transduction_support.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from transduction_support import Traffic, fill_priors, lab_and_run, station_file

from experiments.transduction.efficiency_vs_pump import efficiency_vs_pump
from hil.calibration import MissingCalibration
from hil.store import open_run


def model_eta_total(lab) -> float:
    """The twin's on-chip |S_oe|^2 at f_m for the laser's last power and wavelength."""
    physics = lab.world.physics
    laser_w = float(lab.world.state("pump_laser", "power_w"))
    wavelength = float(lab.world.state("pump_laser", "wavelength_m"))
    return float(physics.transducer.efficiency(physics.on_chip_pump_w(laser_w),
                                               physics.pump_detuning_hz(wavelength)))


@pytest.mark.parametrize("profile", ["A", "B"])
def test_recovers_g0_p_c1_eta_max_and_eta_total(tmp_path, profile):
    """physics.md §1.3: C = 4 g0^2 n_p/(kappa_o kappa_m), eta = eta_o eta_m 4C/(1+C)^2 (peak
    eta_o eta_m at P_C1); §1.8: eta_tot = |S21 S12|/|S11 S22|. Issue tolerances: g0 and P_C1
    within 5 % of truth, eta_total within 5 % of the model at the operating power."""
    with lab_and_run(tmp_path, profile) as (lab, run):
        truth = fill_priors(run, lab)
        results = efficiency_vs_pump(lab, run)
        eta_model = model_eta_total(lab)
        bidirectional = run.results["bidirectional"]
        assert not lab.world.laser_emitted_power()  # the pump is off after the step
    assert results["g0_hz"].value == pytest.approx(truth["g0_hz"], rel=0.05)
    assert results["p_c1_w"].value == pytest.approx(truth["p_c1_w"], rel=0.05)
    assert results["eta_max"].value == pytest.approx(truth["eta_max"], rel=1e-9)
    assert bidirectional["eta_total"].value == pytest.approx(eta_model, rel=0.05)
    # the numbers are in fact much closer, and their errors say so
    for name in ("g0_hz", "p_c1_w"):
        assert abs(results[name].value - truth[name]) < max(5 * results[name].stderr,
                                                           2e-3 * truth[name])
    assert bidirectional["eta_total"].value == pytest.approx(eta_model, rel=0.005)

    record = open_run(run.path)
    sweep = record.steps["efficiency_vs_pump"]
    assert sweep["s21"].dims == ("laser_power", "frequency")
    assert sweep["s11_ref"].dims == ("laser_power", "reference_frequency")
    assert sweep["s21"].shape == (12, 101)
    assert record.steps["bidirectional"]["s12"].shape == (1, 101)
    assert (tmp_path / "run_efficiency_vs_pump.png").is_file()
    assert (tmp_path / "run_bidirectional.png").is_file()


def test_an_operating_power_of_its_own(tmp_path):
    """eta_total at a chosen laser power (1 mW out of the laser, Profile A: C ~ 0.04)."""
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab)
        efficiency_vs_pump(lab, run, powers=3, points=51, operating_power_w=1e-3)
        eta_model = model_eta_total(lab)
        assert float(lab.world.state("pump_laser", "power_w")) == pytest.approx(1e-3, rel=1e-3)
        bidirectional = run.results["bidirectional"]
    assert bidirectional["eta_total"].value == pytest.approx(eta_model, rel=0.01)
    assert bidirectional["pump_power_w"].value == pytest.approx(
        lab.world.physics.on_chip_pump_w(1e-3), rel=0.01)


@pytest.mark.parametrize("params, message", [
    ({"power_max_w": 0.05}, r"efficiency_vs_pump: power_max_w must be in \[3.16\d*e-05, 0.0199\d*\] W"),
    ({"operating_power_w": 1.0}, r"efficiency_vs_pump: operating_power_w must be in"),
    ({"power_min_w": 1e-6}, r"efficiency_vs_pump: power_min_w must be in"),
    ({"powers": 0}, r"efficiency_vs_pump: powers must be an integer in \[1, 200\]"),
    ({"vna_power_dbm": 5.0}, r"efficiency_vs_pump: vna_power_dbm must be in \[-60, 0\] dBm"),
    ({"reference_offset_hz": 1e6}, r"efficiency_vs_pump: reference_offset_hz must be in"),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message):
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab)
        traffic = Traffic(lab)
        with pytest.raises(ValueError, match=message):
            efficiency_vs_pump(lab, run, **params)
        assert traffic.messages == []


def test_station_limits_on_the_laser_narrow_the_powers(tmp_path):
    """A station limit on the laser's power (dBm) caps the sweep and refuses more."""
    path = station_file(tmp_path, "A")
    data = yaml.safe_load(path.read_text())
    data["instruments"]["laser"]["parameters"] = {"power_dbm": {"limits": [-15, 10]}}
    path.write_text(yaml.safe_dump(data))
    with lab_and_run(tmp_path, "A", station=path) as (lab, run):
        fill_priors(run, lab)
        traffic = Traffic(lab)
        with pytest.raises(ValueError, match=r"power_max_w must be in \[3.16\d*e-05, 0.01\] W"):
            efficiency_vs_pump(lab, run, power_max_w=0.015)
        assert traffic.messages == []
        results = efficiency_vs_pump(lab, run, powers=2, points=31, reference_points=5)
        planned = open_run(run.path).steps["efficiency_vs_pump"]["laser_power"].values
        power = run.results["bidirectional"]["pump_power_w"]
    np.testing.assert_allclose(planned[-1], 0.01, rtol=1e-12)
    # two powers cannot show the monitor's noise: none is recorded as measured, and the on-chip
    # power's error, which lacks it, says so
    assert "monitor_sample_noise" not in results
    assert power.suspect is not None and "monitor meter's noise is not measured" in power.suspect


def test_missing_prerequisites_are_named_before_any_instrument_traffic(tmp_path):
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab, pump_calibration=False)
        traffic = Traffic(lab)
        with pytest.raises(MissingCalibration, match="pump_calibration.chip_per_monitor"):
            efficiency_vs_pump(lab, run)
        assert traffic.messages == []


def test_the_pump_powers_it_records_are_the_ones_set_and_measured(tmp_path):
    """The TSL-570 takes its power to 0.01 dBm (`:POW 6.23`): the sweep plans on that grid, so
    every recorded setpoint is exactly the power a `:POW` sent stands for, and the operating
    point's laser_power_w too. The operating point's on-chip power comes from one monitor
    reading: its error carries the meter's noise, which the step measures from its sweep's
    readings and records for the later steps. On the twin one sample scatters by
    ``noise.power_meter_rel`` (its input parameter), so 10 averages give that over sqrt(10);
    an estimate from 12 readings is good to about 30 % (the priors' ratio has no error here)."""
    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab)
        traffic = Traffic(lab)
        results = efficiency_vs_pump(lab, run)
        sent = {float(m.split(":POW ")[1]) for m in traffic.messages if ":POW " in m}
        operating = run.results["bidirectional"]["laser_power_w"].value
        power = run.results["bidirectional"]["pump_power_w"]
        single = lab.world.physics.params.noise.power_meter_rel
        record = open_run(run.path)
    recorded = list(record.steps["efficiency_vs_pump"]["laser_power"].values) + [operating]
    for watts in recorded:
        dbm = 10 * math.log10(watts / 1e-3)
        assert dbm == pytest.approx(round(dbm, 2), abs=1e-9)  # on the 0.01 dB grid
        assert round(dbm, 2) in sent
    assert results["monitor_sample_noise"].value == pytest.approx(single, rel=0.35)
    assert power.stderr / power.value == pytest.approx(single / math.sqrt(10), rel=0.35)


def test_a_seeded_refit_finds_what_a_full_one_does(tmp_path):
    """The priors' shares come from refits with one prior moved by its error. Seeded with the
    nominal points (one calibration pass from their C and mode instead of two from scratch),
    such a refit of a recorded sweep finds each power's C and pumped kappa_m as the full refit
    does, to 2 % of their standard errors (kappa_o moved by 0.2 %)."""
    from dataclasses import replace

    import h5py

    from hil.analysis.conversion import conversion_points
    from hil.analysis.transducer import Rates

    with lab_and_run(tmp_path, "A") as (lab, run):
        fill_priors(run, lab)
        efficiency_vs_pump(lab, run)
        rates = lab.world.physics.transducer
        f_m = run.results["microwave_resonance"]["f_m_hz"].value
        detuning = run.results["efficiency_vs_pump"]["pump_detuning_hz"].value
        base = Rates(rates.kappa_o_hz, run.results["efficiency_vs_pump"]["kappa_o_ex_hz"].value,
                     rates.kappa_m_hz, rates.kappa_m_ex_hz)
    with h5py.File(run.path, "r") as f:
        sweep, reflection = f["efficiency_vs_pump"], f["efficiency_vs_pump_reflection"]
        data = {k: sweep[k][()] for k in ("s21", "s12", "s11_ref", "s22_ref")}
        data["s11"] = reflection["s11"][()]
        x, x_ref = sweep["frequency"][()] - f_m, sweep["reference_frequency"][()] - f_m
    moved = replace(base, kappa_o_hz=base.kappa_o_hz * 1.002)
    nominal = conversion_points(data, x, x_ref, base, detuning)
    full = conversion_points(data, x, x_ref, moved, detuning)
    seeded = conversion_points(data, x, x_ref, moved, detuning, seeds=nominal)
    for a, b in zip(full, seeded, strict=True):
        assert abs(a.cooperativity - b.cooperativity) < 0.02 * a.cooperativity_err
        if a.mode is not None:
            assert b.mode is not None
            assert abs(a.mode.rates.kappa_m_hz - b.mode.rates.kappa_m_hz) < 0.02 * a.mode.kappa_m_err


def test_the_operating_power_on_the_laser_grid_stays_below_the_fridges_bound(tmp_path):
    """power_for_c1 snaps the operating power to the laser's 0.01 dBm grid without crossing the
    bound it was given (the fridge's), and a power only rounded to the grid is not reported as
    C = 1 being out of reach."""
    from types import SimpleNamespace

    from experiments.transduction.pump import power_for_c1

    events: list[str] = []
    run = SimpleNamespace(event=lambda kind, message: events.append(message))
    with lab_and_run(tmp_path, "A") as (lab, _):
        laser = lab.pump
        bound = 1e-3 * 10 ** (6.2361 / 10)  # the nearest grid point, 6.24 dBm, lies above it
        capped = power_for_c1(run, "s", laser, [1e-3], [1e-3], 1.0 / 0.1, highest_w=bound)
        inside = power_for_c1(run, "s", laser, [1e-3], [1e-3], 1.0 / 5.0e-3)  # 5 mW: within range
    assert capped <= bound and 10 * math.log10(capped / 1e-3) == pytest.approx(6.23, abs=1e-9)
    assert 10 * math.log10(inside / 1e-3) == pytest.approx(round(10 * math.log10(5.0), 2), abs=1e-9)
    assert len(events) == 1 and "outside the range" in events[0]
