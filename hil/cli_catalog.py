"""The ``hil`` commands that read the run catalog: ``hil status`` (calibrations in force),
``hil runs`` (and ``hil runs trend``) and ``hil catalog rebuild``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hil.cli_common import (
    CATALOG_HELP,
    _fail,
    default_station,
    format_value,
)


@click.command("status")
@click.option("--station", type=click.Path(path_type=Path), default=None,
              help="Station YAML (default: stations/twin.yaml).")
@click.option("--runs", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of the run files (default: runs).")
@click.option("--device", default=None, help="Device (default: the station's metadata: device).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def status_command(station: Path | None, runs: Path, device: str | None,
                   catalog: str | None) -> None:
    """Each calibration of a station: value, age, and whether a chain would re-run it."""
    from hil.calibration import CalibrationStore
    from hil.catalog import CatalogError, CatalogMissing, import_legacy, open_catalog
    from hil.runner import run_metadata

    station = station or default_station()
    console = Console()
    try:
        name, metadata = run_metadata(station, None)
        device = metadata.get("device", "") if device is None else device
        index = open_catalog(catalog, runs, create=False)
        note = import_legacy(index, runs)
        if note:
            console.print(note, highlight=False, soft_wrap=True)
        entries = CalibrationStore(index, name, device).all()
    except CatalogMissing:
        entries = {}
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    of = f"station {name}" + (f", device {device}" if device else "")
    if not entries:
        console.print(f"no calibrations of {of} ({station}); run 'hil run chain'", highlight=False)
        return
    table = Table(title=f"calibrations of {of}", show_edge=False)
    for column in ("step", "result", "value", "± stderr", "unit", "age", "state", "from run"):
        table.add_column(column)
    for step, cal in entries.items():
        age = f"{cal.age_s() / 60:.0f} min"
        state = "[green]fresh[/]" if cal.fresh() else "[red]stale[/]"
        for result, r in cal.results.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            table.add_row(step, result, format_value(r.value, r.stderr), stderr, r.unit, age,
                          state, cal.run)
    console.print(table)


@click.group("runs", invoke_without_command=True)
@click.option("--runs", "folder", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of the run files, where the default catalog lives (default: runs).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
@click.option("--device", default=None, help="Only runs on this device.")
@click.option("--experiment", default=None, help="Only runs of this experiment.")
@click.option("--status", default=None,
              type=click.Choice(["running", "interrupted", "unknown", "completed", "aborted",
                                 "failed", "interlocked"]), help="Only runs that ended so.")
@click.option("--since", default=None, metavar="DATE",
              help="Only runs started at or after DATE (2026-12-01, or an ISO 8601 time; UTC "
                   "unless it says otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs and results as JSON.")
@click.pass_context
def runs_group(ctx: click.Context, folder: Path, catalog: str | None, device: str | None,
               experiment: str | None, status: str | None, since: str | None,
               as_json: bool) -> None:
    """List the runs in the catalog, oldest first (`hil runs trend` plots one result)."""
    ctx.obj = {"folder": folder, "catalog": catalog}
    if ctx.invoked_subcommand is not None:
        return
    from hil.catalog import CatalogError, CatalogMissing, open_catalog, refresh_running

    try:
        since = _since(since)  # a bad date is refused even where there is no catalog yet
        index = open_catalog(catalog, folder, create=False)
        refresh_running(index)
        found = index.runs(device=device, experiment=experiment, status=status, since=since)
    except CatalogMissing:
        found = []
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(title=f"{len(found)} run(s)", show_edge=False)
    for column in ("run", "experiment", "station", "device", "cooldown", "operator", "status",
                   "started", "lab time", "results"):
        table.add_column(column)
    for r in found:
        count = sum(len(named) for named in r["results"].values())
        suspect = sum("suspect" in v for named in r["results"].values() for v in named.values())
        lab_time = "" if r["lab_time_s"] is None else f"{r['lab_time_s']:.0f} s"
        table.add_row(r["run_id"], r["experiment"], r["station"], r["device"], r["cooldown"],
                      r["operator"], r["status"], r["started"][:19], lab_time,
                      f"{count}" + (f" ({suspect} suspect)" if suspect else ""))
    Console().print(table)


def _since(text: str | None) -> str | None:
    """``--since`` as the catalog's time text (ISO 8601 UTC), so it compares as text."""
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text}: expected a date (2026-12-01) or an ISO 8601 "
                         f"time") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")


@runs_group.command("trend")
@click.argument("result", metavar="RESULT")
@click.option("--device", default=None, help="Only runs on this device.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: RESULT_trend.png in the runs folder).")
@click.pass_context
def runs_trend_command(ctx: click.Context, result: str, device: str | None,
                       out: Path | None) -> None:
    """Plot RESULT (NAME or STEP.NAME) over time with error bars and cooldown boundaries."""
    from hil.catalog import CatalogError, open_catalog, trend

    folder, catalog = ctx.obj["folder"], ctx.obj["catalog"]
    out = out or folder / f"{result}_trend.png"
    try:
        points = trend(open_catalog(catalog, folder, create=False), result, out, device=device)
    except (CatalogError, ValueError) as exc:
        _fail(str(exc))
    Console().print(f"{len(points)} run(s) -> {out}", highlight=False)


@click.group("catalog")
def catalog_group() -> None:
    """The run catalog: the index of run files and the calibration history."""


@catalog_group.command("rebuild")
@click.option("--runs", "folder", type=click.Path(path_type=Path), default=Path("runs"),
              help="Folder of run files to index, subfolders included (default: runs).")
@click.option("--catalog", default=None, metavar="URL", help=CATALOG_HELP)
def catalog_rebuild_command(folder: Path, catalog: str | None) -> None:
    """Re-index every run file of a folder (the files are the truth); a damaged SQLite
    catalog is moved aside and built afresh."""
    from hil.catalog import CatalogError, catalog_url, open_catalog, rebuild, sqlite_path

    console = Console()
    if not folder.is_dir():
        _fail(f"--runs {folder}: no such folder")
    try:
        index = open_catalog(catalog, folder)
    except CatalogError as exc:
        file = sqlite_path(catalog_url(catalog, folder))
        if file is None or not file.is_file():
            _fail(str(exc))
        aside = file.with_name(f"{file.name}.damaged-{int(file.stat().st_mtime)}")
        file.replace(aside)
        for extra in ("-wal", "-shm"):
            file.with_name(file.name + extra).unlink(missing_ok=True)
        console.print(f"[yellow]{exc}: moved aside to {aside}; building it afresh[/]",
                      highlight=False, soft_wrap=True)
        try:
            index = open_catalog(catalog, folder)
        except CatalogError as again:
            _fail(str(again))
    try:
        done = rebuild(index, folder)
    except CatalogError as exc:
        _fail(str(exc))
    for path, why in done.skipped.items():
        console.print(f"[yellow]skipped {path}: {why}[/]", highlight=False, soft_wrap=True)
    console.print(f"{len(done.indexed)} run(s) indexed, {len(done.skipped)} skipped, "
                  f"{len(done.forgotten)} gone from the folder forgotten, {done.calibrations} "
                  f"calibration(s) restored from run files, in {index.where}", highlight=False,
                  soft_wrap=True)
