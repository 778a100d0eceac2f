"""The main job, `hil run chain`, on the two committed twin stations (issue acceptance), and
what a second run reuses."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
import yaml
from click.testing import CliRunner

from hil.cli import main
from hil.twin import TwinLab, TwinParams

ROOT = Path(__file__).resolve().parent.parent
STATIONS = {"A": ROOT / "stations" / "twin.yaml", "B": ROOT / "stations" / "twin_profile_b.yaml"}


def run_chain(station: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(station), "--out", str(out),
                                       *extra])
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(main, ["show", str(out), "--json"])
    return json.loads(shown.output)


@pytest.fixture(scope="module", params=["A", "B"])
def chain(request, tmp_path_factory):
    station = STATIONS[request.param]
    folder = tmp_path_factory.mktemp(f"profile_{request.param}")
    summary = run_chain(station, folder / "first.h5")
    twin = TwinLab(TwinParams.from_mapping(yaml.safe_load(station.read_text())["twin"]))
    return request.param, station, folder, summary, twin


def value(summary: dict, step: str, name: str) -> float:
    return summary["steps"][step]["results"][name]["value"]


def test_chain_recovers_the_twins_device(chain) -> None:
    """Issue acceptance: kappa_o, kappa_m, f_m, g0 and P_C1 within 5 % of the twin's truth."""
    _, _, _, summary, twin = chain
    truth = twin.truth()
    assert summary["status"] == "completed"
    for step, name, key in [("optical_resonance", "kappa_o_hz", "kappa_o_hz"),
                            ("microwave_resonance", "kappa_m_hz", "kappa_m_hz"),
                            ("microwave_resonance", "f_m_hz", "f_m_hz"),
                            ("efficiency_vs_pump", "g0_hz", "g0_hz"),
                            ("efficiency_vs_pump", "p_c1_w", "p_c1_w")]:
        assert value(summary, step, name) == pytest.approx(truth[key], rel=0.05), (step, name)
    assert value(summary, "fridge_load", "cooling_a_w_per_k2") == pytest.approx(
        truth["cooling_a_w_per_k2"], rel=0.05)


def test_efficiency_and_noise_match_the_model_at_the_chosen_pump_power(chain) -> None:
    """physics.md §1.3/§1.8: eta_total = eta_o eta_m 4C/(1+C)^2 at the operating point, within
    5 %; §1.5: n_add m->o = n_int (1 - eta_m)/eta_m, within 20 %."""
    _, _, _, summary, twin = chain
    physics = twin.physics
    detuning = value(summary, "efficiency_vs_pump_pump_detuning", "pump_detuning_hz")
    on_chip = value(summary, "bidirectional", "pump_power_w")
    model = physics.transducer.efficiency(on_chip, detuning)
    assert value(summary, "bidirectional", "eta_total") == pytest.approx(model, rel=0.05)
    noisy_power = value(summary, "added_noise", "pump_power_w")
    t_mc = value(summary, "added_noise", "mxc_temperature_k")
    n_add = physics.noise.added_noise("m->o", noisy_power, detuning, t_bath_k=t_mc)
    assert value(summary, "added_noise", "n_add") == pytest.approx(n_add, rel=0.2)


def test_the_run_file_holds_every_contract_result_with_units(chain) -> None:
    _, _, _, summary, _ = chain
    contract = {"optical_resonance": ["wavelength_m", "kappa_o_hz", "kappa_o_ex_hz"],
                "microwave_resonance": ["f_m_hz", "kappa_m_hz", "kappa_m_ex_hz"],
                "efficiency_vs_pump": ["g0_hz", "p_c1_w", "eta_max"],
                "bidirectional": ["eta_total"], "added_noise": ["n_add"],
                "conversion_bandwidth": ["bandwidth_hz"], "fridge_load": ["cooling_a_w_per_k2"]}
    for step, names in contract.items():
        for name in names:
            result = summary["steps"][step]["results"][name]
            assert result["stderr"] is not None and result["stderr"] > 0, (step, name)
    assert summary["steps"]["efficiency_vs_pump"]["results"]["p_c1_w"]["unit"] == "W"


def test_a_second_run_reuses_every_fresh_step_with_its_provenance(chain) -> None:
    profile, station, folder, first, _ = chain
    if profile == "B":
        pytest.skip("reuse is a property of the runner, checked once")
    second = run_chain(station, folder / "second.h5")
    assert second["status"] == "completed"
    for step in ("optical_resonance", "efficiency_vs_pump", "bidirectional", "added_noise"):
        assert second["steps"][step]["results"] == first["steps"][step]["results"]
        assert second["steps"][step]["points"] == 0  # copied, not measured again
    with h5py.File(folder / "second.h5", "r") as f:
        assert f["efficiency_vs_pump"].attrs["copied_from"] == str(folder / "first.h5")
    status = CliRunner().invoke(main, ["status", "--station", str(station), "--runs", str(folder)],
                                env={"COLUMNS": "240"})
    assert status.exit_code == 0
    assert "kappa_o_hz" in status.output and "fresh" in status.output


def test_force_re_runs_everything(chain, tmp_path) -> None:
    profile, station, folder, _, _ = chain
    if profile == "B":
        pytest.skip("checked once")
    forced = run_chain(station, folder / "forced.h5", "--force")
    assert forced["steps"]["optical_resonance"]["points"] > 0


def test_a_step_alone_without_its_prerequisites_says_what_to_run(tmp_path) -> None:
    out = tmp_path / "alone.h5"
    result = CliRunner().invoke(main, ["run", "efficiency_vs_pump", "--out", str(out)])
    assert result.exit_code == 1
    assert "needs optical_resonance.wavelength_m" in result.output
    assert "hil run optical_resonance" in result.output


def test_pump_power_above_the_station_limit_is_refused_before_any_write(tmp_path) -> None:
    out = tmp_path / "hot.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(STATIONS["B"]), "--out",
                                       str(out), "--set", "efficiency_vs_pump.power_max_w=0.05"])
    assert result.exit_code == 2, result.output
    assert "power_max_w must be in" in result.output
    assert not out.exists()  # refused before the run started, not when its step came
