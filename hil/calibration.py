"""Calibration results that later steps build on, with provenance, age and a dependency graph.

Each step declares what it needs and how long its results stay good (``hil.experiment.step``
passes these on to :func:`calibration`)::

    @step(needs=("optical_resonance",), valid_for_s=4 * 3600)
    def pump_calibration(lab, run, *, ...): ...

After a step records results, the runner adds them to the run catalog (:mod:`hil.catalog`),
keyed by station name and device, with their whole history: values, the run file they came
from, when. The latest entry of each step is the one in force. A chain
re-runs a step only when it is stale: never calibrated, older than its validity, a step it
needs is re-run, or ``--force``; a fresh step's results are copied into the new run file.
A step run alone that needs a result nobody produced says which step to run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from hil.results import Result

if TYPE_CHECKING:
    from hil.catalog import Catalog

DEFAULT_VALID_FOR_S = 3600.0


class _Declared(Protocol):
    """A step function carrying its declaration as attributes (read back with ``getattr``)."""

    needs: tuple[str, ...]
    valid_for_s: float


class MissingCalibration(LookupError):
    """A step needs a result no earlier step has produced."""

    def __str__(self) -> str:
        return str(self.args[0])


def calibration(*, needs: Sequence[str] = (), valid_for_s: float = DEFAULT_VALID_FOR_S):
    """Declare a step's prerequisites (step names) and how long its results stay valid."""
    if valid_for_s <= 0:
        raise ValueError(f"valid_for_s must be > 0 s, got {valid_for_s}")

    def mark(step: Callable[..., Any]) -> Callable[..., Any]:
        declared = cast(_Declared, step)
        declared.needs = tuple(needs)
        declared.valid_for_s = float(valid_for_s)
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

    def fresh(self, now: datetime | None = None, *, current_run: Path | None = None) -> bool:
        """Young enough, and its run file (if still there) holds it; ``current_run`` is the run
        asking, whose file may have replaced the one this calibration came from."""
        return self.age_s(now) <= self.valid_for_s and self.run_readable(current_run)

    def run_readable(self, current_run: Path | None = None) -> bool:
        """False when the run file is there but no longer holds these results readably (a
        full disk or a damaged copy); a file moved away, or replaced by the run now asking
        (its name reused), is judged by age alone."""
        from hil.store import summary

        path = Path(self.run)
        if not path.is_file() or (current_run is not None
                                  and path.resolve() == Path(current_run).resolve()):
            return True
        try:
            step = summary(path)["steps"].get(self.step, {})
        except (OSError, ValueError):
            return False
        return not step.get("problems") and set(self.results) <= set(step.get("results", {}))


class CalibrationStore:
    """The calibrations of one station and device, kept in the catalog with their history.

    Every record is a row of its own, inserted in one transaction: two runs recording at once
    both keep everything they wrote, and the latest row of a step is the one in force.
    """

    def __init__(self, catalog: Catalog, station: str, device: str = "") -> None:
        self.catalog = catalog
        self.station = station
        self.device = device

    def history(self, step: str | None = None) -> list[Calibration]:
        """Every calibration recorded (of ``step``, if given), oldest first."""
        rows = self.catalog.calibration_history(self.station, self.device)
        found = [_from_row(r) for r in rows if step is None or r.step == step]
        return sorted(found, key=lambda c: datetime.fromisoformat(c.finished))  # stable

    def all(self) -> dict[str, Calibration]:
        """The calibration in force for each step: its latest record."""
        return {cal.step: cal for cal in self.history()}

    def latest(self, step: str) -> Calibration | None:
        return self.all().get(step)

    def produced_by(self, call: str) -> list[Calibration]:
        """Every group the experiment step ``call`` recorded last time."""
        return [c for c in self.all().values() if c.producer == call]

    def record(self, step: str, results: dict[str, Result], *, run: str, valid_for_s: float,
               finished: datetime | None = None, call: str = "") -> Calibration:
        from hil.catalog import CalibrationRow

        entry = Calibration(step=step, results=dict(results), run=run,
                            finished=(finished or datetime.now(UTC)).isoformat(),
                            valid_for_s=valid_for_s, call=call)
        self.catalog.add_calibration(CalibrationRow(
            station=self.station, device=self.device, step=step, call=entry.producer, run=run,
            finished=entry.finished, valid_for_s=valid_for_s,
            results={n: {"value": r.value, "unit": r.unit, "stderr": r.stderr,
                         **({"suspect": r.suspect} if r.suspect else {})}
                     for n, r in entry.results.items()}))
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
        elif not cal.run_readable():
            reason = f"stale: its run file {cal.run} is unreadable"
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


def _from_row(row) -> Calibration:
    return Calibration(step=row.step,
                       results={n: Result(r["value"], r["unit"], r.get("stderr"), r.get("suspect"))
                                for n, r in row.results.items()},
                       run=row.run, finished=row.finished, valid_for_s=float(row.valid_for_s),
                       call=row.call)
