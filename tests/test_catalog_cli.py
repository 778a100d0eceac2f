"""The catalog from the command line and the runner: metadata, `hil runs`, `hil runs trend`,
`hil status`, `hil catalog rebuild`, station names, legacy and damaged stores, a catalog that
fails during a run."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import h5py
import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from hil.calibration import CalibrationStore
from hil.catalog import open_catalog
from hil.cli import main
from hil.experiment import Experiment
from hil.runner import execute

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "stations" / "twin.yaml"


def hil(*args: str):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "240", "HIL_CATALOG": None})


def station(tmp_path: Path, file: str = "bench.yaml", **top) -> Path:
    data = yaml.safe_load(TWIN.read_text(encoding="utf-8"))
    path = tmp_path / file
    path.write_text(yaml.safe_dump({**top, **data}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """cryostat_check on a station with metadata, one key overridden by --meta."""
    folder = tmp_path_factory.mktemp("catalog_cli")
    path = station(folder, name="bench-1", metadata={"device": "D1", "cooldown": "CD1",
                                                     "operator": "ada", "sample": "S7"})
    result = hil("run", "cryostat_check", "--station", str(path), "--out",
                 str(folder / "runs" / "one.h5"), "--meta", "operator=grace",
                 "--meta", "notes=after the leak fix")
    assert result.exit_code == 0, result.output
    return folder, path


def test_metadata_goes_to_the_run_file_and_the_catalog(one_run) -> None:
    folder, _ = one_run
    expected = {"device": "D1", "cooldown": "CD1", "operator": "grace", "sample": "S7",
                "notes": "after the leak fix"}
    with h5py.File(folder / "runs" / "one.h5", "r") as f:
        assert json.loads(f.attrs["metadata"]) == expected
    listed = hil("runs", "--runs", str(folder / "runs"), "--device", "D1", "--json")
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output)
    assert run["metadata"] == expected and run["station"] == "bench-1"
    assert run["status"] == "completed" and run["experiment"] == "cryostat_check"
    assert run["results"]["cryostat_check"]["t_base_k"]["unit"] == "K"
    assert json.loads(hil("runs", "--runs", str(folder / "runs"), "--device", "D2",
                          "--json").output) == []
    table = hil("runs", "--runs", str(folder / "runs"), "--since", "2020-01-01")
    assert "one" in table.output and "grace" in table.output and "1 run(s)" in table.output


def test_trend_and_status_read_the_catalog(one_run) -> None:
    folder, path = one_run
    out = folder / "t_base.png"
    trend = hil("runs", "--runs", str(folder / "runs"), "trend", "t_base_k", "--device", "D1",
                "--out", str(out))
    assert trend.exit_code == 0, trend.output
    assert "1 run(s)" in trend.output and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = hil("status", "--station", str(path), "--runs", str(folder / "runs"))
    assert status.exit_code == 0, status.output
    assert "station bench-1, device D1" in status.output
    assert "t_base_k" in status.output and "fresh" in status.output


def test_renaming_the_station_file_keeps_its_calibrations(one_run, tmp_path) -> None:
    folder, path = one_run
    moved = tmp_path / "elsewhere" / "renamed.yaml"
    moved.parent.mkdir()
    shutil.copyfile(path, moved)
    status = hil("status", "--station", str(moved), "--runs", str(folder / "runs"))
    assert "t_base_k" in status.output and "fresh" in status.output, status.output


def test_unknown_metadata_is_refused_before_any_file(tmp_path) -> None:
    bad = station(tmp_path, metadata={"device": "D1", "fridge": "BF-3"})
    result = hil("run", "cryostat_check", "--station", str(bad), "--out", str(tmp_path / "a.h5"))
    assert result.exit_code == 2
    assert f"{bad}: metadata: unknown key(s) fridge; allowed: cooldown, device, notes, " \
           f"operator, sample" in result.output
    result = hil("run", "cryostat_check", "--station", str(TWIN), "--out",
                 str(tmp_path / "b.h5"), "--meta", "fridge=BF-3")
    assert result.exit_code == 2 and "--meta: unknown key(s) fridge" in result.output
    result = hil("run", "cryostat_check", "--out", str(tmp_path / "c.h5"), "--meta", "device")
    assert result.exit_code == 2 and "--meta device: expected KEY=VALUE" in result.output
    assert not list(tmp_path.glob("*.h5"))
    assert "Traceback" not in result.output


def test_a_failing_catalog_costs_the_run_nothing_and_rebuild_recovers_it(tmp_path) -> None:
    out = tmp_path / "runs" / "lost.h5"
    result = hil("run", "cryostat_check", "--out", str(out), "--meta", "device=D4",
                 "--catalog", "postgresql://hil@127.0.0.1:1/nowhere")
    assert result.exit_code == 0, result.output
    assert "warning: catalog postgresql+psycopg://hil@127.0.0.1:1/nowhere" in result.output
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "completed"
    rebuilt = hil("catalog", "rebuild", "--runs", str(tmp_path / "runs"))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 run(s) indexed" in rebuilt.output and "1 calibration(s) restored" in rebuilt.output
    (run,) = json.loads(hil("runs", "--runs", str(tmp_path / "runs"), "--json").output)
    assert (run["run_id"], run["device"], run["status"]) == ("lost", "D4", "completed")


def test_a_damaged_catalog_is_one_line_and_rebuild_moves_it_aside(tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "catalog.sqlite").write_bytes(b"garbage" * 100)
    for args in (["status", "--runs", str(runs)], ["runs", "--runs", str(runs)]):
        result = hil(*args)
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [
            f"error: catalog sqlite:///{runs / 'catalog.sqlite'}: file is not a database"]
    run = hil("run", "cryostat_check", "--out", str(runs / "during.h5"))
    assert run.exit_code == 0, run.output  # the run goes on, and says the catalog failed
    assert "warning: catalog sqlite:///" in run.output and "file is not a database" in run.output
    rebuilt = hil("catalog", "rebuild", "--runs", str(runs))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "moved aside" in rebuilt.output and "1 run(s) indexed" in rebuilt.output
    assert [p.name for p in runs.glob("catalog.sqlite.damaged-*")]
    (listed,) = json.loads(hil("runs", "--runs", str(runs), "--json").output)
    assert listed["run_id"] == "during"


def test_a_legacy_calibrations_json_is_imported_once(tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    twin = station(tmp_path, "twin.yaml")
    legacy = {str(twin.resolve()): {"optical_resonance": {
        "results": {"kappa_o_hz": {"value": 1.1e9, "unit": "Hz", "stderr": 2e6}},
        "run": "runs/old.h5", "finished": "2026-11-20T10:00:00+00:00", "valid_for_s": 3600,
        "call": "optical_resonance"}}}
    (runs / "calibrations.json").write_text(json.dumps(legacy), encoding="utf-8")
    first = hil("status", "--station", str(twin), "--runs", str(runs))
    assert "1 calibration(s) imported" in first.output and "kappa_o_hz" in first.output
    assert "stale" in first.output
    second = hil("status", "--station", str(twin), "--runs", str(runs))
    assert "imported" not in second.output
    history = CalibrationStore(open_catalog(None, runs), "twin", "").history()
    assert [(c.step, c.run, c.results["kappa_o_hz"].value) for c in history] == [
        ("optical_resonance", "runs/old.h5", 1.1e9)]


def test_a_malformed_legacy_store_is_a_note_not_a_traceback(tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "calibrations.json").write_text("{not json", encoding="utf-8")
    result = hil("status", "--runs", str(runs))
    assert result.exit_code == 0, result.output
    assert "calibrations.json: unreadable legacy calibration store (JSONDecodeError" \
        in result.output
    assert "ignored" in result.output and "Traceback" not in result.output


def test_bad_since_is_refused(tmp_path) -> None:
    result = hil("runs", "--runs", str(tmp_path), "--since", "last week")
    assert result.exit_code == 2 and "--since last week: expected a date" in result.output


def test_the_runner_indexes_a_run_as_running_when_it_starts(tmp_path, optical) -> None:
    seen = {}

    def look(lab, run) -> None:
        seen["during"] = open_catalog(None, tmp_path).runs()

    execute(Experiment("look", look), optical, tmp_path / "r.h5", {},
            console=Console(file=io.StringIO()), meta={"cooldown": "CD2"})
    (during,) = seen["during"]
    assert (during["status"], during["cooldown"], during["ended"]) == ("running", "CD2", None)
    (after,) = open_catalog(None, tmp_path).runs()
    assert after["status"] == "completed" and after["ended"]


def test_a_catalog_url_that_cannot_work_is_refused_before_the_run(tmp_path) -> None:
    result = hil("run", "cryostat_check", "--out", str(tmp_path / "a.h5"), "--catalog",
                 "not a url")
    assert result.exit_code == 2
    assert "error: catalog URL 'not a url': Could not parse" in result.output
    assert not (tmp_path / "a.h5").exists()


def test_a_station_name_must_be_text(tmp_path) -> None:
    bad = station(tmp_path, name=["a", "b"])
    result = hil("status", "--station", str(bad), "--runs", str(tmp_path))
    assert result.exit_code == 2
    assert f"{bad}: name: must be a non-empty string, got ['a', 'b']" in result.output


def test_runs_shows_how_a_run_indexed_as_running_really_ended(tmp_path) -> None:
    """A run killed before its end was indexed `running` only; `hil runs` reads its file."""
    from catalog_support import write_run

    from hil.catalog import entry_from_file
    from hil.store import RunWriter

    runs = tmp_path / "runs"
    writer = RunWriter(runs / "cut.h5", experiment="chain", station_yaml="", snapshot={})
    open_catalog(None, runs).index(entry_from_file(runs / "cut.h5"))
    write_run(runs / "done.h5")  # never indexed: `hil runs` lists only what is indexed
    writer.finish("aborted")
    listed = json.loads(hil("runs", "--runs", str(runs), "--json").output)
    assert [(r["run_id"], r["status"]) for r in listed] == [("cut", "aborted")]
