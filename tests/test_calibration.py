"""Calibration store and the chain's plan: what runs, what is reused, in which order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hil.calibration import CalibrationStore, MissingCalibration, calibration, plan, require
from hil.catalog import CatalogError, open_catalog
from hil.results import Result


@calibration(valid_for_s=3600)
def optical(lab, run): ...


@calibration(needs=("optical",), valid_for_s=600)
def microwave(lab, run): ...


@calibration(needs=("optical", "microwave"), valid_for_s=600)
def efficiency(lab, run): ...


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def store_with(tmp_path: Path, ages_min: dict[str, float]) -> CalibrationStore:
    store = CalibrationStore(open_catalog(None, tmp_path), "twin")
    for step, age in ages_min.items():
        valid = {"optical": 3600, "microwave": 600, "efficiency": 600}[step]
        store.record(step, {"x": Result(1.0, "Hz", 0.1)}, run=f"runs/{step}.h5", valid_for_s=valid,
                     finished=NOW - timedelta(minutes=age))
    return store


def decisions(steps, store, **kw) -> dict[str, tuple[bool, str]]:
    return {d.name: (d.run, d.reason) for d in plan(steps, store, now=NOW, **kw)}


def test_store_round_trip_keeps_results_and_provenance(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"optical": 5})
    again = CalibrationStore(open_catalog(None, tmp_path), "twin").latest("optical")
    assert again.results == {"x": Result(1.0, "Hz", 0.1)}
    assert again.run == "runs/optical.h5"
    assert again.age_s(NOW) == pytest.approx(300)
    assert (tmp_path / "catalog.sqlite").is_file()
    assert CalibrationStore(store.catalog, "other").latest("optical") is None  # per station
    assert CalibrationStore(store.catalog, "twin", "D2").latest("optical") is None  # per device


def test_everything_runs_on_a_new_station(tmp_path: Path) -> None:
    got = decisions([efficiency, microwave, optical],
                    CalibrationStore(open_catalog(None, tmp_path), "s"))
    assert list(got) == ["optical", "microwave", "efficiency"]  # dependency order
    assert all(run for run, _ in got.values())


def test_fresh_steps_are_reused_and_stale_ones_re_run(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"optical": 10, "microwave": 5, "efficiency": 30})
    got = decisions([optical, microwave, efficiency], store)
    assert got["optical"][0] is False and got["microwave"][0] is False
    assert got["efficiency"] == (True, "stale: 30 min old, valid 10 min")


def test_a_re_run_step_makes_what_needs_it_re_run(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"optical": 70, "microwave": 5, "efficiency": 5})
    got = decisions([optical, microwave, efficiency], store)
    assert got["optical"][0] is True
    assert got["microwave"] == (True, "a step it needs is re-run: optical")
    assert got["efficiency"][0] is True


def test_a_prerequisite_recalibrated_later_makes_the_dependent_stale(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"optical": 2, "microwave": 5})
    got = decisions([optical, microwave], store)
    assert got["microwave"] == (True, "a step it needs was re-calibrated since")


def test_force_re_runs_everything(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"optical": 1, "microwave": 1})
    assert all(run for run, _ in decisions([optical, microwave], store, force=True).values())


def test_missing_and_cyclic_dependencies_are_named() -> None:
    with pytest.raises(ValueError, match="microwave needs 'optical', which is not among the steps"):
        plan([microwave], None)

    @calibration(needs=("b",))
    def a(lab, run): ...

    @calibration(needs=("a",))
    def b(lab, run): ...

    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        plan([a, b], None)


def test_require_names_what_to_run() -> None:
    class FakeRun:
        results = {"optical": {"x": Result(2.0, "Hz")}}

    assert require(FakeRun(), "optical", "x").value == 2.0
    with pytest.raises(MissingCalibration, match="needs microwave.f_m_hz.*hil run microwave"):
        require(FakeRun(), "microwave", "f_m_hz")


def test_unreadable_store_is_reported_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "catalog.sqlite").write_text("{not a database")
    with pytest.raises(CatalogError, match="catalog sqlite:///.*catalog.sqlite: file is not a "
                                           "database$"):
        open_catalog(None, tmp_path)
    assert (tmp_path / "catalog.sqlite").read_text() == "{not a database"


def test_a_run_reusing_a_deleted_runs_file_name_still_reuses_its_calibrations(tmp_path: Path
                                                                               ) -> None:
    """The file an optical_resonance calibration came from is deleted and a new run takes its
    name: the plan reuses the calibration, and the step that needs it must find it fresh then
    too, not judge it by the new run's own (still empty) file."""
    from click.testing import CliRunner

    from hil.cli import main
    from hil.store import open_run

    station = Path(__file__).resolve().parent.parent / "stations" / "twin.yaml"
    out = tmp_path / "run.h5"
    first = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(station),
                                      "--out", str(out)])
    assert first.exit_code == 0, first.output
    out.unlink()
    again = CliRunner().invoke(main, ["run", "pump_calibration", "--station", str(station),
                                      "--out", str(out)])
    assert again.exit_code == 0, again.output
    record = open_run(out)
    assert record.steps["optical_resonance"].attrs["copied_from"] == str(out)
    assert "pump_calibration" in record.results
