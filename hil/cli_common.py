"""What every ``hil`` command shares: the shipped stations and the default one, the catalog
option's help, how a command fails (one ``error:`` line, an exit code) and how results and
durations are printed."""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hil.formatting import format_duration, format_value
from hil.results import Result

#: The station files installed with the package (editable or not): see stations/__init__.py.
SHIPPED_STATIONS = Path(str(importlib.resources.files("stations")))

CATALOG_HELP = ("Catalog database, a SQLAlchemy URL, e.g. postgresql://host/lab (default: "
                "$HIL_CATALOG, else catalog.sqlite beside the runs).")

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError)


def default_station() -> Path:
    """``stations/twin.yaml`` of the working folder, else the one shipped with the project."""
    local = Path("stations/twin.yaml")
    return local if local.is_file() else SHIPPED_STATIONS / "twin.yaml"


def _fail(message: str, code: int = 2) -> NoReturn:
    _error(message)
    sys.exit(code)


def _error(message: str) -> None:
    """One ``error:`` line; the message is printed as is (``[low, high]`` is not markup)."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False,
                               soft_wrap=True)


def results_table(results: dict[str, dict[str, Result]],
                  lab_times: dict[str, float] | None = None,
                  lab_time_s: float | None = None) -> Table:
    """Results by step, each step's lab time, and a suspect result marked with its reason."""
    lab_times = lab_times or {}
    caption = None if lab_time_s is None else f"lab time of the run: {format_duration(lab_time_s)}"
    table = Table(title="results", show_edge=False, caption=caption)
    flagged = any(r.suspect for named in results.values() for r in named.values())
    columns = ["step", "result", "value", "± stderr", "unit", "lab time"]
    if flagged:
        columns.append("check")
    for column in columns:
        table.add_column(column, justify="right" if column in ("value", "± stderr", "lab time")
                         else "left")
    for step in [*results, *(s for s in lab_times if s not in results)]:
        named = results.get(step) or {}
        time_text = format_duration(lab_times.get(step)) if step in lab_times else ""
        if not named:
            table.add_row(step, "", "", "", "", time_text, *([""] if flagged else []))
        for name, r in named.items():
            stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
            value = format_value(r.value, r.stderr)
            check = []
            if flagged:
                check = [f"[bold yellow]suspect: {escape(r.suspect)}[/]" if r.suspect else "ok"]
            if r.suspect:
                value = f"[bold yellow]{value} ![/]"
            table.add_row(escape(step), escape(name), value, stderr, escape(r.unit), time_text,
                          *check)
            time_text = ""
    return table


