"""A finished run as a notebook shows it: status, results with units, uncertainties and suspect
reasons, and the data of each step, all read back from the run file (the file is the truth)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import xarray

from hil.formatting import format_duration, format_value
from hil.results import Result
from hil.store import RunRecord, describe, open_run

__all__ = ["LabRun", "Results"]


class Results(dict[str, dict[str, Result]]):
    """A run's results, ``{group: {name: Result}}``, shown as a table in a notebook."""

    def suspect(self) -> dict[str, str]:
        """``{"group.name": reason}`` for every result the run could not vouch for."""
        return {f"{group}.{name}": r.suspect for group, named in self.items()
                for name, r in named.items() if r.suspect}

    def _repr_html_(self) -> str:
        if not any(self.values()):
            return "<p><i>no results</i></p>"
        rows = []
        for group, named in self.items():
            for name, r in named.items():
                stderr = "" if r.stderr is None else f"{r.stderr:.2g}"
                check = (f'<td style="color:#b36b00">suspect: {html.escape(r.suspect)}</td>'
                         if r.suspect else "<td>ok</td>")
                rows.append(f"<tr><td>{html.escape(group)}</td><td>{html.escape(name)}</td>"
                            f"<td>{format_value(r.value, r.stderr)}</td><td>{stderr}</td>"
                            f"<td>{html.escape(r.unit)}</td>{check}</tr>")
        head = ("<tr><th>step</th><th>result</th><th>value</th><th>stderr</th><th>unit</th>"
                "<th>check</th></tr>")
        return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


@dataclass(frozen=True)
class LabRun:
    """What :func:`hil.run_step` and :func:`hil.measure` leave: one run file, read back.

    ``status`` is how the run ended (``completed``, ``failed``, ...), ``results`` every step's
    results, ``lab_time_s`` the lab time it cost; :meth:`data` gives a step's points.
    """

    path: Path
    experiment: str
    status: str
    results: Results
    lab_time_s: float | None
    metadata: Mapping[str, str]

    @classmethod
    def read(cls, path: str | Path) -> LabRun:
        """The run in ``path`` (any run file, e.g. one of the catalog's)."""
        record = open_run(path)
        return cls(path=Path(path), experiment=record.experiment, status=record.state,
                   results=Results(record.results), lab_time_s=record.lab_time_s,
                   metadata=dict(describe(path).get("metadata") or {}))

    @property
    def steps(self) -> list[str]:
        """The groups of the run file, in the order they were written."""
        return list(self.record().steps)

    def record(self) -> RunRecord:
        """Everything in the file (:func:`hil.store.open_run`): data, events, problems."""
        return open_run(self.path)

    def data(self, group: str | None = None) -> xarray.Dataset:
        """A group's points as an ``xarray.Dataset`` (the only group when the run has one)."""
        steps = self.record().steps
        if group is None:
            if len(steps) != 1:
                raise KeyError(f"{self.path}: say which group: {', '.join(steps) or 'none'}")
            group = next(iter(steps))
        if group not in steps:
            raise KeyError(f"{self.path}: no group {group!r}; groups: {', '.join(steps) or 'none'}")
        return steps[group]

    def _repr_html_(self) -> str:
        color = {"completed": "green", "failed": "red"}.get(self.status, "#b36b00")
        meta = "".join(f", {html.escape(k)} {html.escape(str(v))}"
                       for k, v in self.metadata.items() if v)
        head = (f"<p><b>{html.escape(self.experiment)}</b> "
                f"<span style=\"color:{color}\">{html.escape(self.status)}</span>, lab time "
                f"{format_duration(self.lab_time_s)}{meta}<br><code>{html.escape(str(self.path))}"
                f"</code></p>")
        return head + self.results._repr_html_()

