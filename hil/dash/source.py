"""Where the live view gets its runs and calibrations: one small interface, one implementation.

:class:`RunSource` is all the web app knows about storage. :class:`FolderSource` implements it
today by scanning a runs folder's ``*.h5`` files with the store's public reader (the same path
``hil show`` takes: a run being written is read in SWMR mode, a file whose writer was killed
through the lenient path) and the calibrations from the run catalog (:mod:`hil.catalog`: the
folder's ``catalog.sqlite``, or ``--catalog URL``), read with :class:`CalibrationStore`.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from hil.calibration import Calibration, CalibrationStore
from hil.store import RunFileError, RunRecord, open_run, run_state

#: A run id is the run file's name without ``.h5``: no path separators, no leading dot.
_RUN_ID = re.compile(r"^[^/\\.][^/\\]*$")
_SUSPECT = re.compile(r"^result\.(.+)\.suspect$")
#: After reading a file, wait at least this many times the read's duration before reading it
#: again (a 0.1 s read: 0.4 s), so the view never takes more than a fifth of a core.
IDLE_PER_READ = 4
#: The catalog's calibrations are asked again at most this often (seconds).
CALIBRATIONS_TTL_S = 5.0
#: The states of a file whose status is still ``running`` (see :func:`hil.store.run_state`).
_WRITING = frozenset({"running", "interrupted", "unknown"})


@dataclass(frozen=True)
class RunSummary:
    """One line of the runs list."""

    id: str
    experiment: str
    state: str  # running, completed, aborted, failed, interlocked, interrupted, unknown, unreadable
    started: str
    ended: str | None
    steps: int
    points: int
    suspect: int
    lab_time_s: float | None  # None until the run file records it
    device: str | None
    station: str = ""  # the station file the run used
    error: str | None = None  # why the file could not be read


class RunSource(Protocol):
    """What the live view reads. Implementations never write a run file."""

    def runs(self) -> list[RunSummary]:
        """Every run, newest first."""
        ...

    def has(self, run_id: str) -> bool:
        """Whether the run exists (cheap: nothing is read)."""
        ...

    def record(self, run_id: str) -> RunRecord | None:
        """The whole run, as :func:`hil.store.open_run` reads it; None for an unknown run."""
        ...

    def figure_path(self, run_id: str, step: str) -> Path | None:
        """The PNG a finished step saved (its fit over its data), if there is one."""
        ...

    def calibrations(self) -> dict[str, dict[str, Calibration]]:
        """The latest calibration of each step, per station (the key a run records)."""
        ...


def suspects(record: RunRecord) -> dict[tuple[str, str], str]:
    """``(step, result) -> reason`` for each result the step could not vouch for."""
    out = {}
    for step, data in record.steps.items():
        for key, value in data.attrs.items():
            match = _SUSPECT.match(key)
            if match:
                out[(step, match.group(1))] = str(value)
    return out


def lab_time_s(record: RunRecord) -> float | None:
    """The run's lab time when the file records it (root, else the sum over steps)."""
    value = getattr(record, "lab_time_s", None)
    if value is not None:
        return float(value)
    per_step = [d.attrs["lab_time_s"] for d in record.steps.values() if "lab_time_s" in d.attrs]
    return float(sum(per_step)) if per_step else None


def device_of(record: RunRecord) -> str | None:
    metadata = getattr(record, "metadata", None) or {}
    device = metadata.get("device") if isinstance(metadata, dict) else None
    return None if device is None else str(device)


def summarize(run_id: str, record: RunRecord) -> RunSummary:
    return RunSummary(id=run_id, experiment=record.experiment, state=record.state or record.status,
                      started=record.started, ended=record.ended, steps=len(record.points),
                      points=sum(record.points.values()), suspect=len(suspects(record)),
                      lab_time_s=lab_time_s(record), device=device_of(record),
                      station=record.station_path)


class FolderSource:
    """The runs of one folder (``hil run``'s ``runs/``), read with :mod:`hil.store`.

    A file is read again only when its size or modification time changed (a run being written
    changes at every flush, about once a second), and at most once per ``min_age_s`` or
    :data:`IDLE_PER_READ` times the last read's cost, whichever is longer (the page's requests
    of one poll share one read); a ``running`` file's state is re-checked on every request,
    since a killed writer changes nothing on disk.
    """

    def __init__(self, folder: Path, *, catalog: str | None = None, cache_size: int = 8,
                 min_age_s: float = 0.5) -> None:
        self.folder = Path(folder)
        self.catalog_url = catalog
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--runs {self.folder}: no such folder")
        self._lock = threading.Lock()  # the runs list's summaries
        self._reading = threading.Lock()  # the records: one open_run at a time
        # path -> ((mtime, size) read, when a changed file may be read again, the record)
        self._records: OrderedDict[Path, tuple[tuple[int, int], float, RunRecord]] = OrderedDict()
        self._min_age_s = min_age_s
        self._calibrations: tuple[float, dict[str, dict[str, Calibration]]] | None = None
        self._summaries: dict[Path, tuple[tuple[int, int], RunSummary]] = {}
        self._cache_size = cache_size

    def _path(self, run_id: str) -> Path | None:
        if not _RUN_ID.match(run_id):
            return None
        path = self.folder / f"{run_id}.h5"
        return path if path.is_file() else None

    def _read(self, path: Path) -> RunRecord:
        record = self._read_cached(path, fresh=False)
        if record.status == "running":
            state = run_state(path)
            if state not in _WRITING:
                # The writer finished since the cached read: show the final file, never the
                # last read relabelled (it would lack the last step's points and results).
                record = self._read_cached(path, fresh=True)
            elif state != record.state:
                record = dataclasses.replace(record, state=state)
        return record

    def _read_cached(self, path: Path, *, fresh: bool) -> RunRecord:
        # One read at a time: the requests of one poll (and of several tabs) share it.
        with self._reading:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._records.get(path)
            if not fresh and cached is not None and (cached[0] == key
                                                     or time.monotonic() < cached[1]):
                return cached[2]
            began = time.monotonic()
            try:
                record = open_run(path)
            except RunFileError:
                if cached is None or cached[2].status != "running":
                    raise
                # A read of a file being written can fail now and then (the writer moved on
                # under it): show the previous read; the next poll reads again.
                return cached[2]
            done = time.monotonic()
            # Not again before min_age_s, nor before IDLE_PER_READ times this read's cost:
            # reading a file being written takes at most a fraction of a core from its writer.
            due = done + max(self._min_age_s, IDLE_PER_READ * (done - began))
            self._records[path] = (key, due, record)
            self._records.move_to_end(path)
            while len(self._records) > self._cache_size:
                self._records.popitem(last=False)
            return record

    def runs(self) -> list[RunSummary]:
        found = []
        for path in self.folder.glob("*.h5"):
            if path.name.startswith("."):
                continue  # a resume's temporary file
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            with self._lock:
                cached = self._summaries.get(path)
            if cached is not None and cached[0] == key and cached[1].state != "running":
                found.append((stat.st_mtime, cached[1]))
                continue
            try:
                line = summarize(path.stem, self._read(path))
            except Exception as err:  # not a run file, or damaged: list it, say why
                line = RunSummary(id=path.stem, experiment="?", state="unreadable", started="",
                                  ended=None, steps=0, points=0, suspect=0, lab_time_s=None,
                                  device=None, error=str(err))
            with self._lock:
                self._summaries[path] = (key, line)
            found.append((stat.st_mtime, line))
        found.sort(key=lambda item: (_started_key(item[1].started), item[0]), reverse=True)
        return [line for _, line in found]

    def has(self, run_id: str) -> bool:
        return self._path(run_id) is not None

    def record(self, run_id: str) -> RunRecord | None:
        path = self._path(run_id)
        return None if path is None else self._read(path)

    def figure_path(self, run_id: str, step: str) -> Path | None:
        path = self._path(run_id)
        if path is None or not _RUN_ID.match(step):
            return None
        png = path.with_name(f"{path.stem}_{step}.png")  # where the runner saves a step's plot
        return png if png.is_file() else None

    def calibrations(self) -> dict[str, dict[str, Calibration]]:
        """The calibrations in force per station and device (``"station"`` or
        ``"station (device)"``), from the catalog; none when the folder has no catalog yet.
        Asked again at most every :data:`CALIBRATIONS_TTL_S` (the lab page polls every second;
        a calibration changes when a step finishes; ages are computed when shown)."""
        with self._lock:
            cached = self._calibrations
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        entries = self._read_calibrations()
        with self._lock:
            self._calibrations = (time.monotonic() + CALIBRATIONS_TTL_S, entries)
        return entries

    def _read_calibrations(self) -> dict[str, dict[str, Calibration]]:
        from hil.catalog import CatalogError, CatalogMissing, open_catalog

        try:
            catalog = open_catalog(self.catalog_url, self.folder, create=False)
        except (CatalogMissing, CatalogError):
            return {}
        try:
            keys = sorted({(r["station"], str(r["metadata"].get("device", "")))
                           for r in catalog.runs()})
            out: dict[str, dict[str, Calibration]] = {}
            for station, device in keys:
                entries = CalibrationStore(catalog, station, device).all()
                if entries:
                    out[f"{station} ({device})" if device else station] = entries
            return out
        finally:
            catalog.close()

def _started_key(started: str) -> Any:
    try:
        return datetime.fromisoformat(started).timestamp()
    except ValueError:
        return 0.0


def open_source(runs: Path, catalog: str | None = None) -> RunSource:
    """The source ``hil dash`` reads: the runs folder's files, and the calibrations from the
    run catalog (``catalog``: a SQLAlchemy URL; default the folder's ``catalog.sqlite``).
    A URL that cannot work (syntax, no driver) is refused here, before the page is served."""
    if catalog is not None:
        from hil.catalog import Catalog

        Catalog(catalog).close()  # parses the URL and loads its driver; connects to nothing
    return FolderSource(runs, catalog=catalog)
