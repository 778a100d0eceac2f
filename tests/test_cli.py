"""The hil command as a user runs it: the main job on the twin, show, list, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
import yaml
from click.testing import CliRunner

from hil.cli import main
from hil.store import open_run
from hil.twin import TwinLab, TwinParams

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "stations" / "twin.yaml"


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("chain") / "chain.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(TWIN), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def twin_truth() -> dict[str, float]:
    return TwinLab(TwinParams.from_mapping(yaml.safe_load(TWIN.read_text())["twin"])).truth()


def test_run_chain_recovers_the_optical_resonance_of_the_twin(chain_run) -> None:
    """Issue acceptance: centre within a tenth of a linewidth, linewidth within 5 %."""
    out, output = chain_run
    truth = twin_truth()
    shown = CliRunner().invoke(main, ["show", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["status"] == "completed"
    results = summary["steps"]["optical_resonance"]["results"]
    kappa = truth["kappa_o_hz"]
    assert abs(results["frequency_hz"]["value"] - truth["optical_frequency_hz"]) < 0.1 * kappa
    wavelength_linewidth = truth["optical_wavelength_m"] ** 2 * kappa / 299_792_458.0
    assert abs(results["wavelength_m"]["value"] - truth["optical_wavelength_m"]) < 0.1 * wavelength_linewidth
    assert results["kappa_o_hz"]["value"] == pytest.approx(kappa, rel=0.05)
    assert results["kappa_o_ex_hz"]["value"] == pytest.approx(truth["kappa_o_ex_hz"], rel=0.05)
    for name in ("wavelength_m", "kappa_o_hz", "kappa_o_ex_hz"):
        assert results[name]["stderr"] > 0
    assert results["wavelength_m"]["unit"] == "m"
    assert "optical_resonance" in output and "kappa_o_hz" in output  # the results table


def test_run_writes_the_file_the_plot_and_instruments_end_safe(chain_run) -> None:
    out, _ = chain_run
    assert out.with_name("chain_optical_resonance.png").stat().st_size > 10_000
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "completed"
        assert f.attrs["experiment"] == "chain"
        snapshot = json.loads(f.attrs["snapshot"])
        assert "laser" in snapshot["instruments"]
        fine = f["optical_resonance"]
        assert fine["power"].attrs["units"] == "W"
        assert fine.attrs["result.kappa_o_hz.unit"] == "Hz"
    assert "safe_state" in [kind for _, kind, _ in open_run(out).events]


def test_show_prints_status_steps_and_results(chain_run) -> None:
    out, _ = chain_run
    result = CliRunner().invoke(main, ["show", str(out)])
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    assert "optical_resonance_search" in result.output
    assert "kappa_o_ex_hz" in result.output


def test_list_names_experiments_and_stations() -> None:
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    assert "chain" in result.output and "optical_resonance" in result.output
    assert "twin.yaml" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "calibrate_everything"], "unknown experiment 'calibrate_everything'; available:"),
        (["run", "chain", "--set", "optical_resonance.colour=3"],
         "step optical_resonance has no parameter 'colour'"),
        (["run", "chain", "--set", "optical_resonance.power_w=loud"], "'loud' is not a valid float"),
        (["run", "chain", "--set", "optical_resonance"], "expected STEP.PARAM=VALUE"),
        (["run", "chain", "--station", "no/such/station.yaml"], "station.yaml: station file not found"),
        (["show", "no/such/run.h5"], "no/such/run.h5: no such run file"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(tmp_path: Path, args, message) -> None:
    out = tmp_path / "run.h5"
    if args[0] == "run":
        args = [*args, "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_bad_yaml_station_is_a_user_error(tmp_path: Path) -> None:
    station = tmp_path / "lab.yaml"
    station.write_text("instruments: {laser: [\n")
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(station),
                                       "--out", str(tmp_path / "r.h5")])
    assert result.exit_code == 2
    assert "lab.yaml: not valid YAML" in result.output
    assert not (tmp_path / "r.h5").exists()


def test_an_existing_run_file_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    out.write_bytes(b"precious")
    result = CliRunner().invoke(main, ["run", "chain", "--out", str(out)])
    assert result.exit_code == 2
    assert "exists already" in result.output
    assert out.read_bytes() == b"precious"


def test_a_step_that_fails_mid_run_leaves_a_failed_file_with_its_traceback(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    # A search window far from the resonance: the sweep runs, then the fit finds no dip.
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--out", str(out),
                                       "--set", "optical_resonance.center_m=1545e-9",
                                       "--set", "optical_resonance.search_span_m=0.02e-9",
                                       "--set", "optical_resonance.max_widenings=0"])
    assert result.exit_code == 1
    assert "no optical resonance between 1544.9900 and 1545.0100 nm" in result.output
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "failed"
        assert "FitError" in f.attrs["traceback"]
        # 0.02 nm at the search's step, two of the laser's 0.1 pm grid steps
        assert f["optical_resonance_search"]["power"].shape == (101,)


def test_realtime_runs_the_twin_on_the_wall_clock(tmp_path: Path) -> None:
    """--realtime: waiting on the twin takes real time (a 2 s cryostat check takes >= 2 s)."""
    import time

    out = tmp_path / "rt.h5"
    start = time.monotonic()
    result = CliRunner().invoke(main, ["run", "cryostat_check", "--realtime", "--out", str(out),
                                       "--set", "cryostat_check.duration_s=2",
                                       "--set", "cryostat_check.interval_s=0.5"])
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert elapsed >= 2.0  # a lower bound the twin's physics imposes, not a speed target
    virtual = CliRunner().invoke(main, ["run", "cryostat_check", "--out", str(tmp_path / "v.h5"),
                                        "--set", "cryostat_check.duration_s=600",
                                        "--set", "cryostat_check.interval_s=60"])
    assert virtual.exit_code == 0, virtual.output
