"""The catalog database: tables and the queries the runner and the CLI need.

One schema for SQLite (the default, a file beside the runs) and PostgreSQL (a lab's shared
catalog), through SQLAlchemy Core. Every write is one transaction, so two runs writing at once
(two processes, two machines) each keep every row they wrote: calibrations are history rows that
are only ever inserted, and a run's index entry is replaced whole (delete + insert) in one
transaction.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

SCHEMA_VERSION = 1

_meta = sa.MetaData()

runs = sa.Table(
    "runs", _meta,
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False, index=True),
    sa.Column("experiment", sa.String(255), nullable=False, index=True),
    sa.Column("station", sa.String(255), nullable=False, index=True),
    sa.Column("device", sa.String(255), nullable=False, default="", index=True),
    sa.Column("sample", sa.String(255), nullable=False, default=""),
    sa.Column("cooldown", sa.String(255), nullable=False, default=""),
    sa.Column("operator", sa.String(255), nullable=False, default=""),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("started", sa.String(64), nullable=False, index=True),  # ISO 8601 UTC
    sa.Column("ended", sa.String(64)),
    sa.Column("lab_time_s", sa.Float),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),  # JSON, as in the run file
)

results = sa.Table(
    "results", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.String(1024), sa.ForeignKey("runs.path", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, index=True),
    sa.Column("value", sa.Float),  # NULL: not finite (a failed fit)
    sa.Column("unit", sa.String(64), nullable=False, default=""),
    sa.Column("stderr", sa.Float),
    sa.Column("suspect", sa.Text),  # the reason; NULL when the result passed its checks
)

calibrations = sa.Table(
    "calibrations", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station", sa.String(255), nullable=False),
    sa.Column("device", sa.String(255), nullable=False, default=""),
    sa.Column("step", sa.String(255), nullable=False),
    sa.Column("call", sa.String(255), nullable=False, default=""),
    sa.Column("run", sa.String(1024), nullable=False),
    sa.Column("finished", sa.String(64), nullable=False),  # ISO 8601 UTC
    sa.Column("valid_for_s", sa.Float, nullable=False),
    sa.Column("results", sa.Text, nullable=False),  # JSON {name: {value, unit, stderr}}
    sa.Index("calibrations_by_station", "station", "device"),
)

info = sa.Table(
    "catalog_info", _meta,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


class CatalogError(RuntimeError):
    """The catalog cannot be reached or read; the message is one line naming it."""


class CatalogURLError(CatalogError, ValueError):
    """The catalog URL itself is wrong (syntax, unknown database, driver not installed)."""


@dataclass
class RunEntry:
    """What the catalog holds about one run file."""

    path: str
    run_id: str
    experiment: str
    station: str
    status: str
    started: str
    ended: str | None = None
    lab_time_s: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: (step, name, value, unit, stderr, suspect reason or None)
    results: list[tuple[str, str, float, str, float | None, str | None]] = field(
        default_factory=list)


@dataclass(frozen=True)
class CalibrationRow:
    station: str
    device: str
    step: str
    call: str
    run: str
    finished: str
    valid_for_s: float
    results: dict[str, dict[str, Any]]


class Catalog:
    """A connection to one catalog (SQLAlchemy URL); creates its tables on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa_exc.ArgumentError as exc:
            raise CatalogURLError(f"catalog URL {url!r}: {exc}") from None
        if parsed.drivername == "postgresql":  # psycopg 3, whichever SQLAlchemy's default is
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.where = parsed.render_as_string(hide_password=True)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        if self._sqlite:
            # Wait for the other writer (up to 60 s) instead of failing at once.
            options["connect_args"] = {"timeout": 60}
        else:
            options["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(parsed, **options)
        except (sa_exc.SQLAlchemyError, ImportError) as exc:
            hint = ("; pip install 'qlink-hil[postgres]'" if isinstance(exc, ImportError)
                    and "psycopg" in str(exc) else "")
            raise CatalogURLError(f"catalog {self.where}: {_one_line(exc)}{hint}") from None
        if self._sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create()

    def _create(self) -> None:
        for attempt in range(3):  # two processes creating the tables at once: one wins
            try:
                with self.transaction() as conn:
                    _meta.create_all(conn, checkfirst=True)
                    found = conn.execute(sa.select(info.c.value).where(
                        info.c.key == "schema_version")).scalar()
                    if found is None:
                        conn.execute(info.insert().values(key="schema_version",
                                                          value=str(SCHEMA_VERSION)))
                    elif found != str(SCHEMA_VERSION):
                        raise CatalogError(f"catalog {self.where}: schema version {found}, "
                                           f"this hil reads {SCHEMA_VERSION}")
                return
            except CatalogError:
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction; any database error becomes a one-line :class:`CatalogError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.where}: {_one_line(exc)}") from None

    # -- runs ----------------------------------------------------------------------------------

    def index(self, entry: RunEntry) -> None:
        """Add a run or replace what the catalog held about it."""
        meta = entry.metadata
        row = {"path": entry.path, "run_id": entry.run_id, "experiment": entry.experiment,
               "station": entry.station, "status": entry.status, "started": entry.started,
               "ended": entry.ended, "lab_time_s": entry.lab_time_s,
               "metadata": json.dumps(meta, sort_keys=True),
               **{key: meta.get(key, "") for key in ("device", "sample", "cooldown", "operator",
                                                     "notes")}}
        rows = [{"path": entry.path, "step": step, "name": name, "value": _finite(value),
                 "unit": unit, "stderr": _finite(stderr), "suspect": suspect}
                for step, name, value, unit, stderr, suspect in entry.results]
        for attempt in range(3):  # two indexers inserting the same new run: retry the loser
            try:
                with self.transaction() as conn:
                    conn.execute(results.delete().where(results.c.path == entry.path))
                    conn.execute(runs.delete().where(runs.c.path == entry.path))
                    conn.execute(runs.insert().values(**row))
                    if rows:
                        conn.execute(results.insert(), rows)
                return
            except CatalogError:
                if attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def forget(self, paths: Sequence[str]) -> None:
        with self.transaction() as conn:
            for path in paths:
                conn.execute(results.delete().where(results.c.path == path))
                conn.execute(runs.delete().where(runs.c.path == path))

    def paths(self) -> list[str]:
        with self.transaction() as conn:
            return list(conn.execute(sa.select(runs.c.path)).scalars())

    def runs(self, *, device: str | None = None, experiment: str | None = None,
             status: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Runs matching every filter given, oldest first, each with its results."""
        query = sa.select(runs).order_by(runs.c.started, runs.c.path)
        for column, wanted in ((runs.c.device, device), (runs.c.experiment, experiment),
                               (runs.c.status, status)):
            if wanted is not None:
                query = query.where(column == wanted)
        if since is not None:
            query = query.where(runs.c.started >= since)
        with self.transaction() as conn:
            found = [dict(r._mapping) for r in conn.execute(query)]
            by_path = {r["path"]: r for r in found}
            for r in found:
                r["metadata"] = json.loads(r["metadata"] or "{}")
                r["results"] = {}
            if by_path:
                rows = conn.execute(sa.select(results).where(results.c.path.in_(list(by_path)))
                                    .order_by(results.c.id))
                for row in rows:
                    entry = {"value": row.value, "unit": row.unit, "stderr": row.stderr}
                    if row.suspect is not None:
                        entry["suspect"] = row.suspect
                    by_path[row.path]["results"].setdefault(row.step, {})[row.name] = entry
        return found

    def series(self, name: str, *, device: str | None = None) -> list[dict[str, Any]]:
        """One result over time: ``name`` is ``result`` or ``step.result``; oldest first."""
        step, _, result = name.rpartition(".")
        query = (sa.select(runs.c.path, runs.c.run_id, runs.c.started, runs.c.cooldown,
                           runs.c.device, runs.c.status, results.c.step, results.c.value,
                           results.c.unit, results.c.stderr, results.c.suspect)
                 .join(results, results.c.path == runs.c.path)
                 .where(results.c.name == result)
                 .order_by(runs.c.started, runs.c.path))
        if step:
            query = query.where(results.c.step == step)
        if device is not None:
            query = query.where(runs.c.device == device)
        with self.transaction() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- calibrations ------------------------------------------------------------------------

    def add_calibration(self, row: CalibrationRow) -> None:
        with self.transaction() as conn:
            conn.execute(calibrations.insert().values(
                station=row.station, device=row.device, step=row.step, call=row.call,
                run=row.run, finished=row.finished, valid_for_s=row.valid_for_s,
                results=json.dumps(row.results)))

    def calibration_history(self, station: str, device: str) -> list[CalibrationRow]:
        """Every calibration of a station and device, in the order they were recorded."""
        query = (sa.select(calibrations)
                 .where(calibrations.c.station == station, calibrations.c.device == device)
                 .order_by(calibrations.c.id))
        with self.transaction() as conn:
            return [CalibrationRow(r.station, r.device, r.step, r.call, r.run, r.finished,
                                   r.valid_for_s, json.loads(r.results))
                    for r in conn.execute(query)]

    def calibrated_runs(self) -> set[str]:
        with self.transaction() as conn:
            return set(conn.execute(sa.select(calibrations.c.run).distinct()).scalars())

    def import_once(self, key: str, rows: Sequence[CalibrationRow]) -> bool:
        """Insert ``rows`` unless ``key`` was imported before (atomically); True if inserted."""
        try:
            with self.transaction() as conn:
                if conn.execute(sa.select(info.c.key).where(info.c.key == key)).first():
                    return False
                conn.execute(info.insert().values(key=key, value=str(len(rows))))
                for row in rows:
                    conn.execute(calibrations.insert().values(
                        station=row.station, device=row.device, step=row.step, call=row.call,
                        run=row.run, finished=row.finished, valid_for_s=row.valid_for_s,
                        results=json.dumps(row.results)))
        except CatalogError:
            with self.transaction() as conn:  # another process imported it meanwhile
                if conn.execute(sa.select(info.c.key).where(info.c.key == key)).first():
                    return False
            raise
        return True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (hil runs, hil status) never block the run writing, and vice versa.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__

