"""Indexing run files into the catalog: one run (the runner's hook) or a whole folder (rebuild).

The run files are the truth: everything here is read back from them through :mod:`hil.store`,
so a catalog that was lost, damaged or never written is rebuilt from the files alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from hil.catalog.db import CalibrationRow, Catalog, CatalogError, RunEntry


class CatalogMissing(CatalogError):
    """No catalog exists yet where a reader looked."""

#: The catalog a lab shares (any SQLAlchemy URL); else a SQLite file beside the runs.
ENV_VAR = "HIL_CATALOG"
DEFAULT_NAME = "catalog.sqlite"
LEGACY_CALIBRATIONS = "calibrations.json"


def catalog_url(url: str | None, runs: Path) -> str:
    """``url``, else ``$HIL_CATALOG``, else ``sqlite:///RUNS/catalog.sqlite``."""
    chosen = url or os.environ.get(ENV_VAR)
    if chosen:
        return chosen
    return f"sqlite:///{(Path(runs) / DEFAULT_NAME).absolute()}"


def open_catalog(url: str | None = None, runs: Path = Path("runs"), *,
                 create: bool = True) -> Catalog:
    """The catalog (see :func:`catalog_url`). ``create=False`` (readers) refuses to create a
    SQLite catalog where there is none yet and nothing to import, with :class:`CatalogMissing`.
    """
    chosen = catalog_url(url, runs)
    file = sqlite_path(chosen)
    if file is not None and not file.exists():
        if not create and not (Path(runs) / LEGACY_CALIBRATIONS).is_file():
            raise CatalogMissing(f"no catalog at {file} yet: runs are indexed as they run; "
                                 f"`hil catalog rebuild --runs {runs}` indexes existing ones")
        file.parent.mkdir(parents=True, exist_ok=True)
    return Catalog(chosen)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite catalog URL (None for other databases and in-memory SQLite)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def station_name(station_yaml: str, station_path: str) -> str:
    """The name a run's station had (:func:`hil.station.station_identity` of its YAML text),
    else its file's stem."""
    from hil.station import StationError, station_identity

    try:
        data = yaml.safe_load(station_yaml) if station_yaml else None
        if isinstance(data, dict):
            return station_identity(station_path or "station", data)[0]
    except (yaml.YAMLError, StationError):
        pass
    return Path(station_path).stem if station_path else ""


def entry_from_file(path: Path) -> RunEntry:
    """What the catalog holds about one run file, read from the file (not its data)."""
    from hil.store import describe

    run = describe(path)
    found = [(step, name, r["value"], r["unit"], r["stderr"], r.get("suspect"))
             for step, content in run["steps"].items()
             for name, r in content["results"].items()]
    path = Path(path).absolute()
    lab_time = run.get("lab_time_s")
    return RunEntry(path=str(path), run_id=path.stem, experiment=run["experiment"],
                    station=station_name(run.get("station", ""), run.get("station_path", "")),
                    status=run["state"], started=run["started"], ended=run.get("ended"),
                    lab_time_s=None if lab_time is None else float(lab_time),
                    metadata={k: str(v) for k, v in run["metadata"].items()}, results=found)


def calibrations_from_file(path: Path) -> list[CalibrationRow]:
    """The calibrations a run produced (the steps it measured and finished, not those it
    copied in), for rebuilding a lost calibration history. Each is dated by the run's end."""
    from hil.calibration import DEFAULT_VALID_FOR_S, valid_for_of
    from hil.experiment import find
    from hil.store import describe

    run = describe(path)
    name = station_name(run.get("station", ""), run.get("station_path", ""))
    device = str(run["metadata"].get("device", ""))
    rows = []
    for step, content in run["steps"].items():
        attrs = content["attrs"]
        call = str(attrs.get("call", step))
        if not content["results"] or "copied_from" in attrs or call not in run["calls_done"]:
            continue
        try:
            valid_for_s = valid_for_of(find(call).function)
        except Exception:  # a step this installation does not know: keep the default
            valid_for_s = DEFAULT_VALID_FOR_S
        rows.append(CalibrationRow(
            station=name, device=device, step=step, call=call, run=str(Path(path).absolute()),
            finished=run.get("ended") or run["started"], valid_for_s=valid_for_s,
            results={n: {k: r[k] for k in ("value", "unit", "stderr")}
                     for n, r in content["results"].items()}))
    return rows


def refresh_running(catalog: Catalog) -> int:
    """Re-read the files of runs indexed as ``running`` that are on this machine: a run killed
    before its end was never indexed again, and its file says ``interrupted`` now. Returns how
    many entries changed."""
    changed = 0
    for run in catalog.runs(status="running"):
        path = Path(run["path"])
        if not path.is_file():
            continue
        try:
            entry = entry_from_file(path)
        except Exception:  # unreadable now: rebuild reports it
            continue
        if entry.status != "running":
            catalog.index(entry)
            changed += 1
    return changed


@dataclass
class Rebuilt:
    indexed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why
    forgotten: list[str] = field(default_factory=list)
    calibrations: int = 0


def rebuild(catalog: Catalog, folder: Path,
            progress: Callable[[Path], None] | None = None) -> Rebuilt:
    """Re-index every run file under ``folder``; forget entries whose file is gone; restore
    the calibrations of runs the catalog holds none of."""
    folder = Path(folder).absolute()
    done = Rebuilt()
    calibrated = catalog.calibrated_runs()
    for path in sorted(folder.rglob("*.h5")):
        if ".interrupted-" in path.name:
            continue  # what a resume kept of a damaged file; its run is the file beside it
        if progress is not None:
            progress(path)
        try:
            catalog.index(entry_from_file(path))
            if str(path) not in calibrated:
                for row in calibrations_from_file(path):
                    catalog.add_calibration(row)
                    done.calibrations += 1
        except CatalogError:
            raise
        except Exception as exc:  # not a run file, or damaged: say so, go on
            done.skipped[str(path)] = str(exc.args[0] if exc.args else exc).splitlines()[0]
            continue
        done.indexed.append(str(path))
    gone = [p for p in catalog.paths()
            if Path(p).is_relative_to(folder) and not Path(p).is_file()]
    if gone:
        catalog.forget(gone)
    done.forgotten = gone
    return done


def import_legacy(catalog: Catalog, runs: Path) -> str | None:
    """Bring ``RUNS/calibrations.json`` (the store before the catalog) in, once.

    Its entries were keyed by the station file's path and knew no device: they are imported
    under that file's stem and device "". Returns a one-line note, or None when there was
    nothing to do.
    """
    path = (Path(runs) / LEGACY_CALIBRATIONS).absolute()
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [CalibrationRow(station=Path(station).stem, device="", step=step,
                               call=entry.get("call") or step, run=entry["run"],
                               finished=entry["finished"], valid_for_s=float(entry["valid_for_s"]),
                               results={n: {"value": float(r["value"]), "unit": r.get("unit", ""),
                                            "stderr": r.get("stderr")}
                                        for n, r in entry["results"].items()})
                for station, steps in data.items() for step, entry in steps.items()]
        for row in rows:
            datetime.fromisoformat(row.finished).astimezone(UTC)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return (f"{path}: unreadable legacy calibration store ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); ignored")
    if catalog.import_once(f"legacy:{path}", rows):
        return f"{path}: {len(rows)} calibration(s) imported into the catalog (once)"
    return None
