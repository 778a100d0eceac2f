"""microwave_resonance: S11 of the microwave mode, pump off, fitted with the complex reflection
model of physics.md §1.2, ``S11 = a e^{i alpha} e^{-2 pi i f tau} (2Q_L/Q_c - 1 + 2iQ_L(f_r - f)/f_r)
/ (1 - 2iQ_L(f_r - f)/f_r)``, against the twin's truth (physics.md §4 Profiles A and B)."""

from __future__ import annotations

import numpy as np
import pytest
from exp_support import STATION_A, bare_run, run_steps, station_b, traffic

from experiments.calibration.microwave_resonance import microwave_resonance
from hil.results import FitError
from hil.store import open_run

B_DELAYS = [2.0e-8, 3.5e-8, 0.0, 0.0]  # the lab's cables: 55 ns round trip on port 1


def check_against_truth(run) -> dict:
    truth = run.lab.world.truth()
    results = run.results["microwave_resonance"]
    for name in ("f_m_hz", "kappa_m_hz", "kappa_m_ex_hz"):
        assert results[name].value == pytest.approx(truth[name], rel=0.05), name
        assert results[name].unit == "Hz"
        assert 0 < results[name].stderr < 0.01 * truth[name]
    kappa_0 = truth["kappa_m_hz"] - truth["kappa_m_ex_hz"]
    assert results["kappa_m_0_hz"].value == pytest.approx(kappa_0, rel=0.05)
    assert results["eta_m"].value == pytest.approx(truth["eta_m"], rel=0.05)
    # VNA port 1 path: -60 dB in, +70 dB out (hil.twin.params LinesParams) -> |S11| off resonance
    assert results["line_gain_db"].value == pytest.approx(10.0, abs=0.05)
    assert run.plot_path("microwave_resonance").is_file()
    return results


def test_profile_a_critically_coupled_mode_needs_the_phase(tmp_path) -> None:
    """Profile A: kappa_m 10 MHz, kappa_ex 5 MHz. On resonance S11 = 2 kappa_ex/kappa - 1 = 0: the
    dip reaches the noise, and |S11| is the same for kappa_ex and kappa_0 swapped; only the
    complex fit places kappa_ex."""
    run = run_steps(STATION_A, tmp_path / "a.h5", microwave_resonance)
    results = check_against_truth(run)
    assert results["eta_m"].value == pytest.approx(0.5, abs=0.025)
    record = open_run(run.path)
    assert record.status == "completed"
    fine = record.steps["microwave_resonance"]
    s = fine["s11_real"].values + 1j * fine["s11_imag"].values
    assert s.shape == (4, 801)  # four sweeps of the fine window, every one on disk
    magnitude = np.abs(s.mean(axis=0))
    assert magnitude.min() < 0.01 * np.median(magnitude)  # the dip goes to ~0
    span = fine["frequency_axis"].values[-1] - fine["frequency_axis"].values[0]
    assert span == pytest.approx(15 * results["kappa_m_hz"].value, rel=0.02)
    assert "microwave_resonance_search" in record.steps
    assert record.results["microwave_resonance"]["f_m_hz"].value == results["f_m_hz"].value
    assert run.lab.world.laser_emitted_power() == 0.0  # pump off while the mode is measured


def test_profile_b_under_coupled_mode_behind_delayed_lines(tmp_path) -> None:
    """Profile B: f_m 7 GHz, kappa_m 3 MHz, kappa_ex 0.81 MHz (eta_m 0.27), seen through 55 ns of
    cable (e^{-2 pi i f tau} of the §1.2 environment)."""
    station = station_b(tmp_path, twin={"lines": {"vna_path_delays_s": B_DELAYS}})
    run = run_steps(station, tmp_path / "b.h5", microwave_resonance,
                    params={"microwave_resonance": {"design_frequency_hz": 7.0e9}})
    results = check_against_truth(run)
    assert results["eta_m"].value < 0.5 - 5 * results["eta_m"].stderr  # under-coupled
    assert results["delay_s"].value == pytest.approx(B_DELAYS[0] + B_DELAYS[1], rel=0.01)


def test_a_design_frequency_far_from_the_mode_says_what_to_change(tmp_path) -> None:
    with pytest.raises(FitError, match="no microwave resonance between 8.7000 and 8.9000 GHz.*"
                                       "move microwave_resonance.design_frequency_hz"):
        run_steps(station_b(tmp_path), tmp_path / "b.h5", microwave_resonance,
                  params={"microwave_resonance": {"max_widenings": 0}})


def test_the_search_widens_from_the_design_frequency_until_it_finds_the_mode(tmp_path) -> None:
    """Profile B's 7 GHz mode from the 8.8 GHz default: 0.2, 0.8, 3.2 GHz hold nothing, the
    12.8 GHz window (same step as far as the VNA's points allow) holds it."""
    run = run_steps(station_b(tmp_path), tmp_path / "b.h5", microwave_resonance)
    check_against_truth(run)
    searches = [m for _, kind, m in open_run(run.path).events if kind == "search"]
    assert len(searches) == 3 and "8.7000 .. 8.9000 GHz" in searches[0]


@pytest.mark.parametrize(("params", "message"), [
    # twin.yaml narrows the VNA source to [-60, 0] dBm: the device stays below -60 dBm
    ({"power_dbm": 5.0}, r"microwave_resonance: power_dbm must be in \[-60, 0\] dBm, got 5.0"),
    ({"power_dbm": -70.0}, r"\[-60, 0\] dBm"),
    ({"span_linewidths": 3.0}, r"microwave_resonance: span_linewidths must be in \[5, 50\], got 3.0"),
    ({"points": 10}, r"microwave_resonance: points must be an integer in \[51, 100003\], got 10"),
    ({"sweeps": 0}, r"microwave_resonance: sweeps must be an integer in \[1, 1000\]"),
    ({"if_bandwidth_hz": 1e6}, r"microwave_resonance: if_bandwidth_hz must be in \[1, 100000\] Hz"),
    ({"design_frequency_hz": 19.95e9}, r"design_frequency_hz \+ search_span_hz / 2 must be in "
                                       r"\[9000, 2e\+10\] Hz, got 20050000000.0"),
    ({"search_span_hz": 0.0}, r"microwave_resonance: search_span_hz must be in \[100000, 5e\+09\] Hz"),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message) -> None:
    with bare_run(STATION_A, tmp_path) as (lab, run), traffic(lab) as sent:
        with pytest.raises(ValueError, match=message):
            microwave_resonance(lab, run, **params)
        assert sent == []
        lab.vna.points()  # the spy does see traffic
        assert sent
