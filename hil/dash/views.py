"""What the pages show, as plain JSON-ready dicts built from a :class:`hil.store.RunRecord`.

Kept apart from HTTP so each view is tested on a run file directly.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import yaml

from hil.calibration import Calibration
from hil.dash.source import RunSummary, device_of, lab_time_s, suspects
from hil.formatting import format_value
from hil.store import RunRecord

#: Event kinds the page flags (the audit trail's safety entries).
ALERT_KINDS = frozenset({"interlock", "safe_state", "fault"})


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _seconds_between(start: str, end: str | None) -> float | None:
    try:
        t0 = datetime.fromisoformat(start)
        t1 = datetime.fromisoformat(end) if end else datetime.now(UTC)
    except ValueError:
        return None
    return (t1 - t0).total_seconds()


def active_step(record: RunRecord) -> str | None:
    """The step a running run is writing: its newest group (steps are created in order)."""
    if record.state != "running" or not record.points:
        return None
    return list(record.points)[-1]


def run_list(lines: list[RunSummary]) -> list[dict[str, Any]]:
    return [{"id": s.id, "experiment": s.experiment, "state": s.state, "started": s.started,
             "ended": s.ended, "steps": s.steps, "points": s.points, "suspect": s.suspect,
             "lab_time_s": s.lab_time_s, "duration_s": _seconds_between(s.started, s.ended)
             if s.started else None, "device": s.device, "error": s.error} for s in lines]


def run_view(run_id: str, record: RunRecord, *, figures: set[str]) -> dict[str, Any]:
    """Status, steps with progress, results, events, fridge and interlocks of one run.

    ``figures``: the steps that saved a PNG (their fit over their data).
    """
    active = active_step(record)
    suspect = suspects(record)
    steps = []
    for name, points in record.points.items():
        planned = record.planned.get(name)
        steps.append({"name": name, "points": points, "planned": planned,
                      "progress": None if not planned else min(1.0, points / planned),
                      "active": name == active, "results": len(record.results.get(name, {})),
                      "suspect": sum(1 for step, _ in suspect if step == name),
                      "figure": name in figures})
    results = []
    for step, named in record.results.items():
        for name, r in named.items():
            value, stderr = _number(r.value), _number(r.stderr)
            results.append({"step": step, "name": name, "value": value, "stderr": stderr,
                            "unit": r.unit, "suspect": suspect.get((step, name)),
                            "text": "failed" if value is None else format_value(value, stderr),
                            "stderr_text": "" if stderr is None else f"{stderr:.2g}"})
    return {"id": run_id, "experiment": record.experiment, "status": record.status,
            "state": record.state or record.status, "started": record.started,
            "ended": record.ended, "recovered": record.recovered, "device": device_of(record),
            "duration_s": _seconds_between(record.started, record.ended),
            "lab_time_s": lab_time_s(record), "params": record.params,
            "traceback": record.traceback, "active": active, "steps": steps,
            "results": results, "unreadable": record.unreadable,
            "events": [{"time": t, "kind": k, "message": m, "alert": k in ALERT_KINDS}
                       for t, k, m in record.events],
            "fridge": temperatures(record), "interlocks": interlocks(record)}


def temperatures(record: RunRecord) -> list[dict[str, Any]]:
    """The newest reading of every quantity in kelvin the run recorded, newest step first."""
    seen: dict[str, dict[str, Any]] = {}
    for step in reversed(list(record.steps)):
        data = record.steps[step]
        for key in data.data_vars:
            name, variable = str(key), data[key]
            if variable.attrs.get("units") != "K" or variable.ndim == 0:
                continue
            values = np.asarray(variable.values, dtype=float).ravel()  # in the order taken
            finite = np.flatnonzero(np.isfinite(values))
            if finite.size == 0 or name in seen:
                continue
            seen[name] = {"name": name, "label": variable.attrs.get("long_name") or name,
                          "value": float(values[finite[-1]]), "unit": "K", "step": step,
                          "point": int(finite[-1]) // max(1, values.size // variable.shape[0])}
    return list(seen.values())


@functools.lru_cache(maxsize=8)
def _declared_interlocks(station_yaml: str) -> tuple[Any, ...]:
    """The ``interlocks:`` list of a station YAML (parsed once per text: it is polled)."""
    try:
        station = yaml.safe_load(station_yaml) or {}
    except yaml.YAMLError:
        return ()
    specs = station.get("interlocks") if isinstance(station, dict) else None
    return tuple(specs) if isinstance(specs, list) else ()


def interlocks(record: RunRecord) -> list[dict[str, Any]]:
    """The station's interlocks (from the YAML the run recorded) and their last trip or release."""
    specs = _declared_interlocks(record.station_yaml or "")
    out = []
    for spec in specs or []:
        if not isinstance(spec, dict) or "name" not in spec:
            continue
        name = str(spec["name"])
        limits = [f"{key} {spec[key]:g}" for key in ("above", "below", "resume_below",
                                                      "resume_above")
                  if isinstance(spec.get(key), int | float)]
        state, last = "armed" if record.state == "running" else "idle", None
        for when, kind, message in record.events:
            if kind == "interlock" and message.startswith(f"{name}:"):
                last = {"time": when, "message": message}
                if "tripped" in message:
                    state = "tripped"
                elif "released" in message:
                    state = "released"
        out.append({"name": name, "watch": spec.get("watch", ""), "limits": ", ".join(limits),
                    "state": state, "last": last})
    return out


def calibration_view(entries: dict[str, dict[str, Calibration]],
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per calibrated result: value, age, validity and whether a chain would re-run it."""
    now = now or datetime.now(UTC)
    rows = []
    for station, steps in entries.items():
        for step, cal in steps.items():
            for name, r in cal.results.items():
                value, stderr = _number(r.value), _number(r.stderr)
                rows.append({"station": station, "step": step, "name": name, "unit": r.unit,
                             "text": "failed" if value is None else format_value(value, stderr),
                             "stderr_text": "" if stderr is None else f"{stderr:.2g}",
                             "age_s": cal.age_s(now), "valid_for_s": cal.valid_for_s,
                             "fresh": cal.fresh(now), "run": cal.run})
    return rows
