"""The run catalog on SQLite and on a real PostgreSQL server: indexing, queries, calibration
history under two concurrent writers (issue 12 case 8), trend, rebuild from run files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.image
import pytest
from catalog_support import Unavailable, fresh_database, postgres_server, write_run

from hil.calibration import CalibrationStore
from hil.catalog import Catalog, cooldown_boundaries, entry_from_file, rebuild, trend
from hil.results import Result

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres():
    """One server for the module; each test gets a database of its own."""
    try:
        with postgres_server() as url:
            yield url
    except Unavailable as why:
        yield why


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    server = request.getfixturevalue("postgres")
    if isinstance(server, Unavailable):
        pytest.skip(f"PostgreSQL server unavailable: {server}")
    return fresh_database(server)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat(timespec="milliseconds")


def three_cooldowns(folder: Path) -> list[Path]:
    """Five runs of device D1 over cooldowns CD1, CD1, CD2, CD3, CD3 and one of device D2."""
    spec = [("CD1", 0.30, 0.01, None), ("CD1", 0.32, 0.02, None), ("CD2", 0.41, 0.01, None),
            ("CD3", 0.38, None, "fit residuals above 3 sigma"), ("CD3", 0.40, 0.015, None)]
    paths = []
    for i, (cooldown, eta, err, suspect) in enumerate(spec):
        paths.append(write_run(
            folder / f"r{i}.h5", metadata={"device": "D1", "cooldown": cooldown,
                                           "operator": "ada"},
            results={"bidirectional": {"eta_total": Result(eta, "", err)},
                     "optical_resonance": {"kappa_o_hz": Result(1e9 + i, "Hz", 1e6)}},
            suspect={("bidirectional", "eta_total"): suspect} if suspect else None,
            lab_time_s=100.0 * (i + 1), started=at(24 * i)))
    paths.append(write_run(folder / "other.h5", metadata={"device": "D2", "cooldown": "CD9"},
                           results={"bidirectional": {"eta_total": Result(0.9, "", 0.1)}},
                           experiment="bidirectional", status="failed", started=at(30)))
    return paths


def test_a_run_is_indexed_with_its_metadata_lab_time_and_results(url, tmp_path) -> None:
    catalog = Catalog(url)
    for path in three_cooldowns(tmp_path):
        catalog.index(entry_from_file(path))
    found = catalog.runs(device="D1")
    assert [r["run_id"] for r in found] == ["r0", "r1", "r2", "r3", "r4"]  # oldest first
    first = found[0]
    assert first["path"] == str(tmp_path / "r0.h5")
    assert (first["experiment"], first["station"], first["status"]) == ("chain", "bench",
                                                                         "completed")
    assert (first["device"], first["cooldown"], first["operator"]) == ("D1", "CD1", "ada")
    assert first["metadata"] == {"device": "D1", "cooldown": "CD1", "operator": "ada"}
    assert first["lab_time_s"] == 100.0 and first["started"] == at(0) and first["ended"]
    assert first["results"]["optical_resonance"]["kappa_o_hz"] == {
        "value": 1e9, "unit": "Hz", "stderr": 1e6}
    assert found[3]["results"]["bidirectional"]["eta_total"] == {
        "value": 0.38, "unit": "", "stderr": None, "suspect": "fit residuals above 3 sigma"}
    assert [r["run_id"] for r in catalog.runs(status="failed")] == ["other"]
    assert [r["run_id"] for r in catalog.runs(experiment="bidirectional")] == ["other"]
    assert [r["run_id"] for r in catalog.runs(since=at(30))] == ["other", "r2", "r3", "r4"]
    catalog.index(entry_from_file(tmp_path / "r0.h5"))  # indexing again replaces, not adds
    assert len(catalog.runs()) == 6
    assert len(catalog.series("eta_total", device="D1")) == 5


def test_two_processes_recording_300_calibrations_each_keep_all_600(url, tmp_path) -> None:
    """Issue 12 case 8: the JSON store kept 137 and 172 of 300 + 300."""
    writer = textwrap.dedent("""
        import sys
        from hil.calibration import CalibrationStore
        from hil.catalog import Catalog
        from hil.results import Result
        store = CalibrationStore(Catalog(sys.argv[1]), "bench", "D1")
        for i in range(300):
            store.record("optical", {"x": Result(float(i), "Hz", 0.1)},
                         run=f"{sys.argv[2]}-{i}.h5", valid_for_s=3600)
    """)
    Catalog(url).close()  # tables exist before the race; creating them at once is tested below
    writers = [subprocess.Popen([sys.executable, "-c", writer, url, name], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in writers:
        assert p.wait(timeout=240) == 0, p.stderr.read()
    history = CalibrationStore(Catalog(url), "bench", "D1").history("optical")
    assert len(history) == 600
    for name in ("a", "b"):
        assert sorted(c.results["x"].value for c in history if c.run.startswith(name)) == \
            [float(i) for i in range(300)]


def test_two_processes_opening_a_new_catalog_at_once_both_work(url) -> None:
    opener = "import sys; from hil.catalog import Catalog; Catalog(sys.argv[1]).runs()"
    openers = [subprocess.Popen([sys.executable, "-c", opener, url], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in openers:
        assert p.wait(timeout=120) == 0, p.stderr.read()


def test_calibration_history_is_kept_and_the_latest_is_in_force(url) -> None:
    store = CalibrationStore(Catalog(url), "bench", "D1")
    for minutes, value in ((30, 1.0), (20, 2.0), (10, 3.0)):
        store.record("optical", {"x": Result(value, "Hz", 0.1)}, run=f"r{value}.h5",
                     valid_for_s=3600, finished=T0 - timedelta(minutes=minutes), call="optical")
    store.record("microwave", {"f": Result(5e9, "Hz")}, run="m.h5", valid_for_s=600,
                 finished=T0)
    assert [c.results["x"].value for c in store.history("optical")] == [1.0, 2.0, 3.0]
    latest = store.latest("optical")
    assert (latest.run, latest.results["x"]) == ("r3.0.h5", Result(3.0, "Hz", 0.1))
    assert latest.age_s(T0) == pytest.approx(600)
    assert set(store.all()) == {"optical", "microwave"}
    assert CalibrationStore(store.catalog, "bench", "D2").all() == {}  # keyed by device
    assert CalibrationStore(store.catalog, "lab2", "D1").all() == {}  # and by station name


def test_trend_plots_every_run_of_the_device_with_cooldown_boundaries(url, tmp_path) -> None:
    catalog = Catalog(url)
    for path in three_cooldowns(tmp_path):
        catalog.index(entry_from_file(path))
    out = tmp_path / "eta.png"
    points = trend(catalog, "bidirectional.eta_total", out, device="D1")
    assert [p["value"] for p in points] == [0.30, 0.32, 0.41, 0.38, 0.40]
    assert [p["stderr"] for p in points] == [0.01, 0.02, 0.01, None, 0.015]
    assert [p["suspect"] for p in points][3] == "fit residuals above 3 sigma"
    assert cooldown_boundaries(points) == [2, 3]  # CD1 -> CD2 -> CD3
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (450, 800)  # the 8 x 4.5 in figure at 100 dpi
    assert image[..., :3].std() > 0.05  # something was drawn
    with pytest.raises(ValueError, match="no run of device D3 .* has a result 'eta_total'"):
        trend(catalog, "eta_total", out, device="D3")


def test_rebuild_from_the_files_gives_back_the_live_index(url, tmp_path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    live = Catalog(f"sqlite:///{tmp_path / 'live.sqlite'}")
    for path in three_cooldowns(folder):
        live.index(entry_from_file(path))
    (folder / "notes.h5").write_text("not a run file")
    catalog = Catalog(url)
    done = rebuild(catalog, folder)
    assert len(done.indexed) == 6 and list(done.skipped) == [str(folder / "notes.h5")]
    assert catalog.runs() == live.runs()
    # Each run's measured steps come back as calibrations of station 'bench', device D1.
    history = CalibrationStore(catalog, "bench", "D1").history("bidirectional")
    assert [c.results["eta_total"].value for c in history] == [0.30, 0.32, 0.41, 0.38, 0.40]
    again = rebuild(catalog, folder)  # idempotent: nothing doubled
    assert len(CalibrationStore(catalog, "bench", "D1").history()) == 10 and not again.calibrations
    (folder / "r1.h5").unlink()
    assert rebuild(catalog, folder).forgotten == [str(folder / "r1.h5")]
    assert [r["run_id"] for r in catalog.runs(device="D1")] == ["r0", "r2", "r3", "r4"]


def test_two_concurrent_runs_on_the_twin_are_both_indexed(url, tmp_path) -> None:
    station = (ROOT / "stations" / "twin.yaml").read_text(encoding="utf-8")
    procs = []
    for name in ("north", "south"):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\nmetadata: {{device: D1}}\n"
                                               + station, encoding="utf-8")
        procs.append(subprocess.Popen(
            [str(Path(sys.executable).parent / "hil"), "run", "cryostat_check", "--station",
             str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / f"{name}.h5"),
             "--catalog", url, "--meta", f"operator={name}"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        out = p.communicate(timeout=240)[0]
        assert p.returncode == 0, out
        assert "warning" not in out, out
    catalog = Catalog(url)
    found = {r["station"]: r for r in catalog.runs()}
    assert set(found) == {"north", "south"}
    for name, r in found.items():
        assert (r["status"], r["operator"], r["device"]) == ("completed", name, "D1")
        assert r["results"]["cryostat_check"]["t_base_k"]["unit"] == "K"
        assert set(CalibrationStore(catalog, name, "D1").all()) == {"cryostat_check"}
    assert json.loads(json.dumps(catalog.runs()))  # the --json output is plain JSON


def test_without_server_binaries_the_postgres_tests_say_why(monkeypatch, tmp_path) -> None:
    import catalog_support

    monkeypatch.setattr(catalog_support.shutil, "which", lambda name: None)
    monkeypatch.setattr(catalog_support, "SERVER_ROOT", tmp_path)
    with pytest.raises(Unavailable, match=r"no PostgreSQL server binaries \(initdb\) on PATH"):
        catalog_support.bin_dir()
    (tmp_path / "15" / "bin").mkdir(parents=True)
    (tmp_path / "15" / "bin" / "initdb").touch()
    (tmp_path / "9" / "bin").mkdir(parents=True)
    (tmp_path / "9" / "bin" / "initdb").touch()
    assert catalog_support.bin_dir() == tmp_path / "15" / "bin"  # the newest major version
