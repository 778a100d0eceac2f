"""cryostat_check: the mixing chamber's base and its stability, the gate before any pump
(physics.md §3 (a): "no pump before stable base"), on the twin's fridge (§1.6 item 6: at no
load T_mc = T0)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from exp_support import STATION_A, bare_run, run_steps, station_b, station_variant, traffic

from experiments.calibration.cryostat_check import CryostatNotReady, cryostat_check
from hil.store import open_run


def check_base(run, tmp_path) -> None:
    world = run.lab.world
    results = run.results["cryostat_check"]
    t0 = world.params.fridge.t_base_k  # T_mc = sqrt(T0^2 + 0/a) = T0 with no load
    assert results["t_base_k"].value == pytest.approx(t0, rel=0.05)
    assert results["t_base_k"].unit == "K"
    assert 0 < results["t_base_k"].stderr < 1e-3 * t0
    # The thermometer scatters by thermometer_rel of the reading, nothing else moves.
    assert results["stability_k"].value == pytest.approx(world.params.noise.thermometer_rel * t0,
                                                         rel=0.5)
    assert abs(results["drift_k_per_s"].value) < 4 * results["drift_k_per_s"].stderr
    assert world.clock.now() == pytest.approx(60.0)  # a minute of virtual time
    record = open_run(run.path)
    assert record.status == "completed"
    step = record.steps["cryostat_check"]
    np.testing.assert_allclose(step["elapsed"].values, 5.0 * np.arange(13))
    assert step["mxc_temperature"].attrs["units"] == "K"
    assert record.results["cryostat_check"]["t_base_k"].value == results["t_base_k"].value
    assert run.plot_path("cryostat_check").is_file()


def test_profile_a_reads_the_base_temperature(tmp_path) -> None:
    check_base(run_steps(STATION_A, tmp_path / "a.h5", cryostat_check), tmp_path)


def test_profile_b_reads_the_base_temperature(tmp_path) -> None:
    check_base(run_steps(station_b(tmp_path), tmp_path / "b.h5", cryostat_check), tmp_path)


def test_a_warm_fridge_is_refused_after_its_readings_are_recorded(tmp_path) -> None:
    """The step's own refusal (the station's 50 mK interlock is taken out: with it, the warm
    fridge trips the interlock first and the run ends interlocked)."""
    warm = station_variant(tmp_path, "warm", {"fridge": {"t_base_k": 0.08}})
    data = yaml.safe_load(warm.read_text())
    data.pop("interlocks", None)
    warm.write_text(yaml.safe_dump(data))
    out = tmp_path / "warm.h5"
    refused = r"reads (79|80)\.\d+ ± [\d.]+ mK, above max_base_k = 50 mK: no pump"
    with pytest.raises(CryostatNotReady, match=refused):
        run_steps(warm, out, cryostat_check)
    record = open_run(out)
    assert record.status == "failed"
    assert record.results["cryostat_check"]["t_base_k"].value == pytest.approx(0.08, rel=0.01)


def test_max_base_k_is_the_threshold(tmp_path) -> None:
    with pytest.raises(CryostatNotReady, match="max_base_k = 9 mK"):
        run_steps(STATION_A, tmp_path / "r.h5", cryostat_check,
                  params={"cryostat_check": {"max_base_k": 0.009}})


@pytest.mark.parametrize(("params", "message"), [
    ({"duration_s": 0.0}, r"cryostat_check: duration_s must be in \[1, 3600\] s, got 0.0"),
    ({"interval_s": 30.0}, "cryostat_check: duration_s / interval_s must give at least 4 readings"),
    ({"interval_s": 0.0}, r"cryostat_check: interval_s must be in \[0.1, 600\] s"),
    ({"max_base_k": -1.0}, r"cryostat_check: max_base_k must be in \[0.001, 4\] K"),
    ({"max_stability_k": 0.0}, r"cryostat_check: max_stability_k must be in \[1e-06, 1\] K"),
])
def test_bad_parameters_are_refused_before_any_instrument_traffic(tmp_path, params, message) -> None:
    with bare_run(STATION_A, tmp_path) as (lab, run), traffic(lab) as sent:
        with pytest.raises(ValueError, match=message):
            cryostat_check(lab, run, **params)
        assert sent == []
        lab.cryostat.mxc_temperature()  # the spy does see traffic
        assert sent
