"""Finding experiments and checking the parameters a user gives them.

An experiment is a function ``fn(lab, run, **params)`` whose keyword-only parameters (with
defaults and type annotations) are what ``--set STEP.PARAM=VALUE`` may change. A multi-step
experiment (the chain) lists its step functions in ``fn.steps``. Experiments are registered as
entry points in the ``qlink_hil.experiments`` group, so a lab's own package can add its own.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "qlink_hil.experiments"


class ExperimentError(ValueError):
    """A user asked for an experiment or a parameter that does not exist, or a bad value."""


@dataclass(frozen=True)
class Experiment:
    name: str
    function: Callable[..., Any]

    @property
    def steps(self) -> tuple[Callable[..., Any], ...]:
        return tuple(getattr(self.function, "steps", (self.function,)))

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.function) or ""
        return doc.splitlines()[0] if doc else ""


def available() -> dict[str, Experiment]:
    """All registered experiments by name."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = Experiment(ep.name, ep.load())
    return dict(sorted(found.items()))


def find(name: str) -> Experiment:
    experiments = available()
    if name not in experiments:
        raise ExperimentError(f"unknown experiment {name!r}; available: "
                              f"{', '.join(experiments) or 'none (is qlink-hil installed?)'}")
    return experiments[name]


def step_parameters(step: Callable[..., Any]) -> dict[str, tuple[type, Any]]:
    """Keyword-only parameters of a step: name -> (type, default)."""
    hints = typing.get_type_hints(step)
    params = {}
    for p in inspect.signature(step).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            params[p.name] = (hints.get(p.name, str), p.default)
    return params


def parse_sets(experiment: Experiment, assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["step.param=value", ...]`` -> ``{step: {param: typed value}}``, refusing anything unknown."""
    steps = {s.__name__: s for s in experiment.steps}
    parsed: dict[str, dict[str, Any]] = {name: {} for name in steps}
    for text in assignments:
        target, sep, raw = text.partition("=")
        step_name, dot, param = target.strip().partition(".")
        if not sep or not dot or not param:
            raise ExperimentError(f"--set {text!r}: expected STEP.PARAM=VALUE")
        if step_name not in steps:
            raise ExperimentError(f"--set {text!r}: {experiment.name} has no step {step_name!r}; "
                                  f"steps: {', '.join(steps)}")
        known = step_parameters(steps[step_name])
        if param not in known:
            raise ExperimentError(f"--set {text!r}: step {step_name} has no parameter {param!r}; "
                                  f"parameters: {', '.join(known) or 'none'}")
        kind, _ = known[param]
        parsed[step_name][param] = _convert(raw.strip(), kind, text)
    return parsed


def merge_station_defaults(experiment: Experiment, station_defaults: Mapping[str, Mapping[str, Any]],
                           params: Mapping[str, Mapping[str, Any]], where: str
                           ) -> dict[str, dict[str, Any]]:
    """The station's ``steps:`` defaults for this experiment's steps, under the user's --set."""
    steps = {s.__name__: s for s in experiment.steps}
    merged = {name: dict(params.get(name, {})) for name in steps}
    for name, values in station_defaults.items():
        if name not in steps:
            continue  # a default for a step this experiment does not run
        known = step_parameters(steps[name])
        for param, value in values.items():
            if param not in known:
                raise ExperimentError(f"{where}: steps.{name}.{param}: step {name} has no such "
                                      f"parameter; parameters: {', '.join(known)}")
            kind, _ = known[param]
            if isinstance(value, str) and kind is not str:
                # YAML reads 7.0e9 (an exponent without sign) as text: take it as the number
                value = _convert(value, kind, f"steps.{name}.{param}")
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not ok or (kind is not bool and isinstance(value, bool)):
                raise ExperimentError(f"{where}: steps.{name}.{param}: must be a "
                                      f"{kind.__name__}, got {value!r}")
            merged[name].setdefault(param, kind(value))
    return merged


def _convert(raw: str, kind: type, text: str) -> Any:
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("true", "1", "yes", "on")
        if kind in (int, float, str):
            return kind(raw)
    except ValueError:
        raise ExperimentError(f"--set {text!r}: {raw!r} is not a valid {kind.__name__}") from None
    raise ExperimentError(f"--set {text!r}: parameters of type {kind} cannot be set from the "
                          "command line")


def defaults(step: Callable[..., Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a step will run with: its defaults updated by the user's --set values."""
    values = {name: default for name, (_, default) in step_parameters(step).items()}
    values.update(overrides)
    return values
