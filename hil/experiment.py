"""Steps and experiments: declaring a step, finding experiments, checking what users give them.

A *step* is a function ``fn(lab, run, **params)`` declared with :func:`step`: its keyword-only
parameters (type annotation, default, and an ``Annotated`` :class:`hil.parameters.Param`) are
what ``--set STEP.PARAM=VALUE`` and the station's ``steps:`` may change. An *experiment* is what
``hil run`` runs: one step, or a function listing its steps in ``fn.steps`` (the chain), run in
the order their ``needs`` give (:func:`hil.calibration.order`). Experiments are registered as
entry points in the ``qlink_hil.experiments`` group, so a lab's own package can add its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from hil.calibration import DEFAULT_VALID_FOR_S, calibration, order
from hil.parameters import Capabilities, Check, check_experiment, check_step, declared

ENTRY_POINT_GROUP = "qlink_hil.experiments"


class ExperimentError(ValueError):
    """A user asked for an experiment or a parameter that does not exist, or a bad value."""


@dataclass(frozen=True)
class Experiment:
    name: str
    function: Callable[..., Any]

    @property
    def steps(self) -> tuple[Callable[..., Any], ...]:
        """The steps in the order they run: their ``needs`` first (ties in listed order)."""
        listed = getattr(self.function, "steps", None)
        return (self.function,) if listed is None else tuple(order(listed))

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


def step(*, needs: Sequence[str] = (), valid_for_s: float = DEFAULT_VALID_FOR_S,
         checks: Sequence[Check] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a step: what it needs (other steps' results), how long its results stay valid,
    and the relations between its parameters that must hold.

    The parameters themselves are declared in the signature (see :mod:`hil.parameters`). A step
    called directly (a test, a lab's script) checks its whole call against the declarations and
    the lab's station before it runs; ``hil run`` checks every step before the run starts.
    """
    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def checked(lab, run, **values: Any) -> Any:
            full = {d.name: d.default for d in declared(function).values()}
            full.update(values)
            check_step(checked, full, capabilities_of(lab))
            return function(lab, run, **values)

        checked.checks = tuple(checks)  # type: ignore[attr-defined]  # read by hil.parameters
        return calibration(needs=needs, valid_for_s=valid_for_s)(checked)

    return mark


def capabilities_of(lab) -> Capabilities:
    """The station capabilities of an opened lab (from its station file's text)."""
    text = getattr(lab, "yaml_text", "") or ""
    return Capabilities(yaml.safe_load(text) or {})


def step_parameters(step: Callable[..., Any]) -> dict[str, tuple[type, Any]]:
    """Keyword-only parameters of a step: name -> (type, default)."""
    return {name: (d.kind, d.default) for name, d in declared(step).items()}


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
                           params: Mapping[str, Mapping[str, Any]], where: str,
                           sources: dict[str, dict[str, str]] | None = None
                           ) -> dict[str, dict[str, Any]]:
    """The station's ``steps:`` defaults for this experiment's steps, under the user's --set.

    ``sources``, when given, is filled with where each value came from (for messages)."""
    steps = {s.__name__: s for s in experiment.steps}
    merged = {name: dict(params.get(name, {})) for name in steps}
    if sources is not None:
        for name in steps:
            sources.setdefault(name, {}).update(
                {param: f"--set {name}.{param}" for param in params.get(name, {})})
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
                value = _convert(value, kind, f"{where}: steps.{name}.{param}", "")
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not ok or (kind is not bool and isinstance(value, bool)):
                raise ExperimentError(f"{where}: steps.{name}.{param}: must be a "
                                      f"{kind.__name__}, got {value!r}")
            if param not in merged[name] and sources is not None:
                sources[name][param] = f"{where}: steps.{name}.{param}"
            merged[name].setdefault(param, kind(value))
    return merged


def check_parameters(experiment: Experiment, station: str | Path,
                     params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every parameter of every step of ``experiment`` (defaults, the station's ``steps:``,
    the user's ``--set``), checked from the station file alone: nothing is opened, no file is
    written. Returns the parameters the steps will run with (station values under --set)."""
    from hil.station import read_station_file, step_defaults

    path, _, data = read_station_file(station)
    sources: dict[str, dict[str, str]] = {}
    merged = merge_station_defaults(experiment, step_defaults(path, data), params, str(path),
                                    sources)
    check_experiment(experiment.steps, merged, Capabilities(data), sources)
    return merged


def _convert(raw: str, kind: type, text: str, flag: str = "--set ") -> Any:
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("true", "1", "yes", "on")
        if kind in (int, float, str):
            return kind(raw)
    except ValueError:
        raise ExperimentError(f"{flag}{text!r}: {raw!r} is not a valid {kind.__name__}") from None
    raise ExperimentError(f"{flag}{text!r}: parameters of type {kind} cannot be set from the "
                          "command line")


def defaults(step: Callable[..., Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a step will run with: its defaults updated by the user's --set values."""
    values = {name: default for name, (_, default) in step_parameters(step).items()}
    values.update(overrides)
    return values
