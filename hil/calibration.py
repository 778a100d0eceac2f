"""Calibration results that later steps build on, with provenance, age and a dependency graph.

Each step declares what it needs and how long its results stay good (``hil.experiment.step``
passes these on to :func:`calibration`)::

    @step(needs=("optical_resonance",), valid_for_s=4 * 3600)
    def pump_calibration(lab, run, *, ...): ...

After a step records results, the runner stores them in ``calibrations.json`` beside the run
files (one entry per station and step: values, the run file they came from, when). A chain
re-runs a step only when it is stale: never calibrated, older than its validity, a step it
needs is re-run, or ``--force``; a fresh step's results are copied into the new run file.
A step run alone that needs a result nobody produced says which step to run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.results import Result

DEFAULT_VALID_FOR_S = 3600.0
STORE_NAME = "calibrations.json"


class MissingCalibration(LookupError):
    """A step needs a result no earlier step has produced."""

    def __str__(self) -> str:
        return str(self.args[0])


def calibration(*, needs: Sequence[str] = (), valid_for_s: float = DEFAULT_VALID_FOR_S):
    """Declare a step's prerequisites (step names) and how long its results stay valid."""
    if valid_for_s <= 0:
        raise ValueError(f"valid_for_s must be > 0 s, got {valid_for_s}")

    def mark(step: Callable[..., Any]) -> Callable[..., Any]:
        step.needs = tuple(needs)
        step.valid_for_s = float(valid_for_s)
        return step

    return mark


def needs_of(step: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(getattr(step, "needs", ()))


def valid_for_of(step: Callable[..., Any]) -> float:
    return float(getattr(step, "valid_for_s", DEFAULT_VALID_FOR_S))


@dataclass(frozen=True)
class Calibration:
    """One step's stored results and where they came from."""

    step: str  # the run-file group the results belong to
    results: dict[str, Result]
    run: str
    finished: str  # ISO 8601 UTC
    valid_for_s: float
    call: str = ""  # the experiment step that produced it (a step may record several groups)

    @property
    def producer(self) -> str:
        return self.call or self.step

    def age_s(self, now: datetime | None = None) -> float:
        now = now or datetime.now(UTC)
        return (now - datetime.fromisoformat(self.finished)).total_seconds()

    def fresh(self, now: datetime | None = None) -> bool:
        return self.age_s(now) <= self.valid_for_s


class CalibrationStore:
    """``calibrations.json``: the latest results of each step, per station. Written atomically."""

    def __init__(self, folder: Path, station: str) -> None:
        self.path = Path(folder) / STORE_NAME
        self.station = station

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: unreadable calibration store ({exc}); move it "
                             "aside to start afresh") from None

    def all(self) -> dict[str, Calibration]:
        entries = self._load().get(self.station, {})
        return {step: _from_json(step, entry) for step, entry in entries.items()}

    def latest(self, step: str) -> Calibration | None:
        return self.all().get(step)

    def produced_by(self, call: str) -> list[Calibration]:
        """Every group the experiment step ``call`` recorded last time."""
        return [c for c in self.all().values() if c.producer == call]

    def record(self, step: str, results: dict[str, Result], *, run: str, valid_for_s: float,
               finished: datetime | None = None, call: str = "") -> Calibration:
        entry = Calibration(step=step, results=dict(results), run=run,
                            finished=(finished or datetime.now(UTC)).isoformat(),
                            valid_for_s=valid_for_s, call=call)
        data = self._load()
        data.setdefault(self.station, {})[step] = _to_json(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".calibrations.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
        os.replace(temporary, self.path)  # a crash leaves the old file or the new, never half
        return entry


@dataclass(frozen=True)
class Decision:
    step: Callable[..., Any]
    run: bool
    reason: str
    calibration: Calibration | None = None

    @property
    def name(self) -> str:
        return self.step.__name__


def plan(steps: Sequence[Callable[..., Any]], store: CalibrationStore | None, *,
         force: bool = False, now: datetime | None = None) -> list[Decision]:
    """Decide, in dependency order, which steps run and which reuse fresh results."""
    ordered = order(steps)
    stored = store.all() if store is not None else {}
    decisions: list[Decision] = []
    rerun: set[str] = set()
    for step in ordered:
        name = step.__name__
        cal = stored.get(name)
        if force:
            reason = "forced"
        elif cal is None:
            reason = "never calibrated on this station"
        elif not cal.fresh(now):
            reason = f"stale: {cal.age_s(now) / 60:.0f} min old, valid {cal.valid_for_s / 60:.0f} min"
        elif any(need in rerun for need in needs_of(step)):
            reason = "a step it needs is re-run: " + ", ".join(n for n in needs_of(step) if n in rerun)
        elif any(stored.get(need) is not None and stored[need].finished > cal.finished
                 for need in needs_of(step)):
            reason = "a step it needs was re-calibrated since"
        else:
            decisions.append(Decision(step, False, f"fresh ({cal.age_s(now) / 60:.0f} min old)", cal))
            continue
        rerun.add(name)
        decisions.append(Decision(step, True, reason, cal))
    return decisions


def order(steps: Sequence[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """The steps in an order where each runs after every step it ``needs`` (a topological
    order); among steps free to go, the one listed first goes first, so the order is the same
    every time. A cycle, or a need that is not among ``steps``, is an error naming it."""
    by_name = {s.__name__: s for s in steps}
    for s in steps:
        for need in needs_of(s):
            if need not in by_name:
                raise ValueError(f"step {s.__name__} needs {need!r}, which is not among the "
                                 f"steps: {', '.join(by_name)}")
    done: list[Callable[..., Any]] = []
    placed: set[str] = set()
    while len(done) < len(by_name):
        ready = next((s for s in by_name.values() if s.__name__ not in placed
                      and all(n in placed for n in needs_of(s))), None)
        if ready is None:
            raise ValueError("steps depend on each other in a cycle: "
                             + " -> ".join(_cycle(by_name, placed)))
        done.append(ready)
        placed.add(ready.__name__)
    return done


def _cycle(by_name: dict[str, Callable[..., Any]], placed: set[str]) -> list[str]:
    """One cycle among the steps not yet placed, as a path that ends where it starts."""
    path = [next(name for name in by_name if name not in placed)]
    while True:
        following = next(n for n in needs_of(by_name[path[-1]]) if n not in placed)
        if following in path:
            return [*path[path.index(following):], following]
        path.append(following)


def require(run, step: str, name: str) -> Result:
    """The result ``step.name``: from this run, else a fresh stored calibration (copied into
    this run with its provenance), else a clear error saying what to run first."""
    results = getattr(run, "results", {}).get(step, {})
    if name not in results and hasattr(run, "reuse_calibration"):
        run.reuse_calibration(step)
        results = run.results.get(step, {})
    if name in results:
        return results[name]
    raise MissingCalibration(
        f"needs {step}.{name}, which no earlier step of this run produced and no fresh "
        f"calibration holds; run 'hil run chain' (or 'hil run {step}' first)")


def _to_json(cal: Calibration) -> dict[str, Any]:
    return {"results": {n: {"value": r.value, "unit": r.unit, "stderr": r.stderr,
                            **({"suspect": r.suspect} if r.suspect else {})}
                        for n, r in cal.results.items()},
            "run": cal.run, "finished": cal.finished, "valid_for_s": cal.valid_for_s,
            "call": cal.producer}


def _from_json(step: str, entry: dict[str, Any]) -> Calibration:
    return Calibration(step=step,
                       results={n: Result(r["value"], r["unit"], r.get("stderr"),
                                          r.get("suspect"))
                                for n, r in entry["results"].items()},
                       run=entry["run"], finished=entry["finished"],
                       valid_for_s=float(entry["valid_for_s"]), call=entry.get("call", ""))
