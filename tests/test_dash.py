"""hil dash without a browser: the JSON and pages it serves for run files written here.

Every expected value is what the test wrote with :class:`hil.store.RunWriter` (points, results,
events) or :class:`CalibrationStore` (ages), read back through the app's HTTP interface.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from hil.calibration import CalibrationStore
from hil.catalog import entry_from_file, open_catalog, station_name
from hil.cli import main
from hil.dash.app import create_app
from hil.dash.source import FolderSource
from hil.results import Result
from hil.store import Column, RunWriter

STATION_YAML = """\
interlocks:
  - name: mxc_overheat
    watch: fridge.mxc_temperature
    above: 0.050
    resume_below: 0.030
"""
TEMPERATURES_K = np.array([0.0101, 0.0102, 0.0104, 0.0107])


def write_run(folder: Path, name: str, *, trip: bool = False, station: Path | None = None) -> Path:
    """A finished run: a 1-D sweep with results, a 2-D sweep (grid), and an interlock event."""
    path = folder / f"{name}.h5"
    with RunWriter(path, experiment="chain", station_yaml=STATION_YAML, snapshot={},
                   station_path=station) as run:
        t = Column("elapsed", "s", "Time since the first reading")
        temp = Column("mxc_temperature", "K", "Mixing chamber temperature")
        with run.begin_step("cryostat_check", [t], [temp],
                            plan={"elapsed": np.arange(6.0)}) as step:
            for i, value in enumerate(TEMPERATURES_K):
                step.append(float(i), value)
        run.set_results("cryostat_check", {"t_base_k": Result(0.0103, "K", 0.0001),
                                           "drift_k_per_s": Result(2e-4, "K/s")})
        power = Column("pump_power", "W", "Pump power")
        freq = Column("frequency", "Hz", "Probe frequency")
        s21 = Column("s21_db", "dB", "Conversion |S21|")
        with run.begin_step("efficiency_map", [power, freq], [s21],
                            plan={"pump_power": [1e-4, 2e-4, 3e-4],
                                  "frequency": [1e9, 2e9]}) as grid:
            for i, (p, f) in enumerate([(1e-4, 1e9), (1e-4, 2e9), (2e-4, 1e9)]):
                grid.append(p, f, -30.0 + i)
        if trip:
            run.event("interlock", "mxc_overheat: fridge.mxc_temperature = 0.06 K, limit above "
                                   "0.05: tripped; safe state applied to pump; latched")
    return path


@pytest.fixture
def client(tmp_path):
    write_run(tmp_path, "20260101T000000Z_chain", trip=True)
    with TestClient(create_app(FolderSource(tmp_path))) as test_client:
        yield test_client


def test_runs_list_reads_each_run_file(client):
    runs = client.get("/api/runs").json()["runs"]
    assert [(r["id"], r["experiment"], r["state"], r["steps"], r["points"]) for r in runs] == [
        ("20260101T000000Z_chain", "chain", "completed", 2, len(TEMPERATURES_K) + 3)]
    page = client.get("/")
    assert page.status_code == 200 and 'data-page="index"' in page.text


def test_run_view_has_progress_results_events_fridge_and_interlocks(client):
    view = client.get("/api/runs/20260101T000000Z_chain").json()
    assert view["state"] == "completed" and view["active"] is None
    steps = {s["name"]: s for s in view["steps"]}
    assert (steps["cryostat_check"]["points"], steps["cryostat_check"]["planned"]) == (4, 6)
    assert (steps["efficiency_map"]["points"], steps["efficiency_map"]["planned"]) == (3, 6)
    results = {(r["step"], r["name"]): r for r in view["results"]}
    assert results[("cryostat_check", "t_base_k")]["value"] == pytest.approx(0.0103)
    assert results[("cryostat_check", "t_base_k")]["stderr"] == pytest.approx(0.0001)
    assert results[("cryostat_check", "t_base_k")]["unit"] == "K"
    assert results[("cryostat_check", "drift_k_per_s")]["stderr"] is None
    # The fridge: the newest reading in kelvin the run recorded.
    assert view["fridge"] == [{"name": "mxc_temperature", "label": "Mixing chamber temperature",
                               "value": pytest.approx(TEMPERATURES_K[-1]), "unit": "K",
                               "step": "cryostat_check", "point": len(TEMPERATURES_K) - 1}]
    (interlock,) = view["interlocks"]
    assert (interlock["name"], interlock["state"]) == ("mxc_overheat", "tripped")
    assert interlock["limits"] == "above 0.05, resume_below 0.03"
    assert any(e["kind"] == "interlock" and e["alert"] for e in view["events"])


def test_step_figures_plot_every_point_and_grids_as_maps(client):
    line = client.get("/api/runs/20260101T000000Z_chain/steps/cryostat_check/figure").json()
    assert line["points"] == len(TEMPERATURES_K)
    (trace,) = line["figure"]["data"]
    assert trace["type"] == "scatter"
    assert trace["y"] == pytest.approx(TEMPERATURES_K)
    assert line["figure"]["layout"]["xaxis"]["title"]["text"] == "Time since the first reading (s)"
    grid = client.get("/api/runs/20260101T000000Z_chain/steps/efficiency_map/figure").json()
    (heatmap,) = grid["figure"]["data"]
    assert heatmap["type"] == "heatmap"
    # Rows are pump powers with data (2 of 3 taken); the point not taken yet is empty.
    assert heatmap["z"] == [[-30.0, -29.0], [-28.0, None]]
    assert grid["newest"]["data"][0]["y"] == [-28.0, None]


def test_unknown_runs_and_steps_give_404_pages(client):
    page = client.get("/runs/no_such_run")
    assert page.status_code == 404
    assert "404" in page.text and "no_such_run" in page.text
    assert client.get("/api/runs/no_such_run").status_code == 404
    assert client.get("/api/runs/20260101T000000Z_chain/steps/nope/figure").status_code == 404
    assert client.get("/runs/20260101T000000Z_chain/steps/nope.png").status_code == 404
    # A run id never leaves the runs folder.
    assert client.get("/api/runs/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/runs/.hidden").status_code == 404


def test_html_in_a_run_id_is_escaped_on_the_404_page(client):
    page = client.get("/runs/<img src=x onerror=alert(1)>")
    assert page.status_code == 404
    assert "<img" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_calibrations_show_age_and_staleness(tmp_path):
    station = tmp_path / "twin.yaml"
    station.write_text(STATION_YAML)
    write_run(tmp_path, "run1", station=station)
    catalog = open_catalog(None, tmp_path)
    catalog.index(entry_from_file(tmp_path / "run1.h5"))
    store = CalibrationStore(catalog, station_name(STATION_YAML, str(station)))
    now = datetime.now(UTC)
    store.record("optical_resonance", {"wavelength_m": Result(1550e-9, "m", 1e-13)}, run="run1.h5",
                 valid_for_s=3600, finished=now - timedelta(hours=2))
    store.record("cryostat_check", {"t_base_k": Result(0.0103, "K", 1e-4)}, run="run1.h5",
                 valid_for_s=600, finished=now - timedelta(minutes=1))
    with TestClient(create_app(FolderSource(tmp_path))) as test_client:
        rows = {r["step"]: r for r in test_client.get("/api/lab").json()["calibrations"]}
    assert rows["optical_resonance"]["fresh"] is False
    assert rows["optical_resonance"]["age_s"] == pytest.approx(7200, abs=60)
    assert rows["cryostat_check"]["fresh"] is True
    assert rows["cryostat_check"]["age_s"] == pytest.approx(60, abs=60)


def test_a_file_that_is_not_a_run_is_listed_as_unreadable(tmp_path):
    write_run(tmp_path, "good")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    runs = {r.id: r for r in FolderSource(tmp_path).runs()}
    assert runs["good"].state == "completed"
    assert runs["junk"].state == "unreadable" and "not an HDF5 file" in runs["junk"].error


def test_non_loopback_host_is_refused_with_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["dash", "--runs", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--allow-remote" in result.output


def test_a_catalog_url_that_cannot_work_is_refused_before_serving(tmp_path):
    result = CliRunner().invoke(main, ["dash", "--runs", str(tmp_path),
                                       "--catalog", "nosuchdb://host/lab"])
    assert result.exit_code == 2 and "nosuchdb://host/lab" in result.output


def test_missing_runs_folder_is_a_user_error(tmp_path):
    result = CliRunner().invoke(main, ["dash", "--runs", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such folder" in result.output


def test_lab_shows_the_latest_runs_fridge_and_interlocks_when_none_runs(client):
    lab = client.get("/api/lab").json()
    assert lab["running"] == [] and lab["from"] == "20260101T000000Z_chain"
    assert [(i["name"], i["state"]) for i in lab["interlocks"]] == [("mxc_overheat", "tripped")]
    assert lab["fridge"][0]["value"] == pytest.approx(TEMPERATURES_K[-1])


def test_a_failed_read_of_a_running_file_shows_the_previous_read(tmp_path, monkeypatch):
    """Reading a file while it is written can fail once (seen: HDF5's "len not positive after
    adjustment for EOA"); the page keeps the last good read instead of an error."""
    import dataclasses
    import os

    import hil.dash.source as source_module
    from hil.store import RunFileError, open_run

    path = write_run(tmp_path, "live")
    running = dataclasses.replace(open_run(path), status="running", state="running")
    reads = iter([running])

    def flaky_open_run(p):
        try:
            return next(reads)
        except StopIteration:
            raise RunFileError(f"cannot read run file {p}: len not positive") from None

    monkeypatch.setattr(source_module, "open_run", flaky_open_run)
    monkeypatch.setattr(source_module, "run_state", lambda p: "running")
    source = FolderSource(tmp_path, min_age_s=0)
    assert source.record("live") is running
    os.utime(path, ns=(1, 1))  # the file changed: read again, which fails
    assert source.record("live") is running
    # A finished file that cannot be read is an error, not a stale view.
    finished = FolderSource(tmp_path, min_age_s=0)
    with pytest.raises(RunFileError):
        finished.record("live")


def test_a_run_that_ends_between_two_polls_shows_its_final_file(tmp_path, monkeypatch):
    """The writer finishing is seen by the state check before the next full read is due: the
    page must then show the final file (its last results), not the last read relabelled."""
    import dataclasses

    import hil.dash.source as source_module
    from hil.store import open_run

    path = write_run(tmp_path, "live")
    final = open_run(path)
    running = dataclasses.replace(final, status="running", state="running", results={})
    reads = iter([running, final])
    states = iter(["running", "completed"])
    monkeypatch.setattr(source_module, "open_run", lambda p: next(reads))
    monkeypatch.setattr(source_module, "run_state", lambda p: next(states))
    source = FolderSource(tmp_path, min_age_s=60)  # the next poll comes before a read is due
    assert source.record("live").results == {}
    record = source.record("live")
    assert record.state == "completed" and record.results == final.results


def test_after_the_warm_up_a_poll_imports_nothing(tmp_path):
    """The server pays its first-use costs at start (xarray's array backends, dask among them,
    and Plotly's figures: seconds of CPU), not inside the first run someone watches: after
    ``warm_up()``, reading a run and building its figures imports no module."""
    import subprocess
    import sys

    write_run(tmp_path, "done")
    script = f"""
import sys
from pathlib import Path
from hil.dash.app import create_app
from hil.dash.server import warm_up
from hil.dash.source import FolderSource
from hil.dash import figures, views
warm_up()
before = set(sys.modules)
source = FolderSource(Path({str(tmp_path)!r}))
record = source.record("done")
views.run_view("done", record, figures=set())
for step, data in record.steps.items():
    figures.step_figure(data, title=step)
    for name in data.data_vars:
        figures.newest_row(data, name)
print(sorted(set(sys.modules) - before))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_slow_read_is_not_repeated_before_four_times_its_cost(tmp_path, monkeypatch):
    """A file being written is read again when it changed, but never sooner than
    IDLE_PER_READ (4) times the last read's duration: the view takes at most a fifth of a
    core from the writer however big the file grows."""
    import dataclasses
    import os
    from types import SimpleNamespace

    import hil.dash.source as source_module
    from hil.store import open_run

    path = write_run(tmp_path, "live")
    running = dataclasses.replace(open_run(path), status="running", state="running")
    now = [100.0]
    reads = []

    def slow_open_run(p):  # each read costs 1 s of the (fake) monotonic clock
        reads.append(now[0])
        now[0] += 1.0
        return running

    monkeypatch.setattr(source_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(source_module, "open_run", slow_open_run)
    monkeypatch.setattr(source_module, "run_state", lambda p: "running")
    source = FolderSource(tmp_path, min_age_s=0.5)
    source.record("live")  # read at 100 s, done at 101 s: not again before 105 s
    for step, stamp in enumerate((1, 2, 3)):
        os.utime(path, ns=(stamp, stamp))  # the writer flushed: the file changed
        now[0] = 101.0 + step * 1.3
        source.record("live")
    assert reads == [100.0]
    now[0] = 105.1
    source.record("live")
    assert reads == [100.0, 105.1]


def test_a_run_whose_writer_was_killed_shows_interrupted_with_its_points(tmp_path):
    """A writer killed mid-step leaves status ``running`` on disk: the list, the run page and
    the lab must say ``interrupted`` (no process writes it), with the points it flushed."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "killed.h5"
    script = f"""
import os, signal
from hil.store import Column, RunWriter
run = RunWriter({str(path)!r}, experiment="chain", station_yaml={STATION_YAML!r}, snapshot={{}})
step = run.begin_step("cryostat_check", [Column("elapsed", "s", "Time")],
                      [Column("mxc_temperature", "K", "Mixing chamber temperature")],
                      plan={{"elapsed": list(range(6))}})
for i, value in enumerate({TEMPERATURES_K.tolist()!r}):
    step.append(float(i), value)
run.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with TestClient(create_app(FolderSource(tmp_path))) as client:
        [line] = client.get("/api/runs").json()["runs"]
        assert (line["state"], line["points"]) == ("interrupted", len(TEMPERATURES_K))
        view = client.get("/api/runs/killed").json()
        assert view["state"] == "interrupted" and view["active"] is None
        assert view["steps"][0]["points"] == len(TEMPERATURES_K)
        lab = client.get("/api/lab").json()
        assert lab["running"] == [] and lab["from"] == "killed"
        assert lab["fridge"][0]["value"] == pytest.approx(TEMPERATURES_K[-1])


def test_the_catalog_is_asked_for_calibrations_at_most_every_5_s(tmp_path, monkeypatch):
    """The lab page polls every second; the catalog is queried again only after
    CALIBRATIONS_TTL_S (5 s), so a calibration recorded meanwhile shows up then."""
    from types import SimpleNamespace

    import hil.dash.source as source_module

    now = [100.0]
    monkeypatch.setattr(source_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    source = FolderSource(tmp_path)
    queries = []
    monkeypatch.setattr(source, "_read_calibrations",
                        lambda: queries.append(now[0]) or {"station": {}})
    for t in (100.0, 101.0, 104.9):
        now[0] = t
        assert source.calibrations() == {"station": {}}
    assert queries == [100.0]
    now[0] = 105.1
    source.calibrations()
    assert queries == [100.0, 105.1]
