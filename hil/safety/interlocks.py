"""A station's ``interlocks:`` section: each entry checked and turned into an
:class:`InterlockSpec` (what to watch, when to trip and release, what to do), and the watched
parameter found on the opened station. No threads here: :mod:`hil.safety.supervisor` runs them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qcodes.parameters import Parameter

from hil.safety.errors import InterlockConfigError

INTERLOCK_KEYS = {"name", "watch", "above", "below", "resume_below", "resume_above", "poll_s",
                  "action", "then", "settle_s", "max_read_failures", "give_up_s", "max_trips"}
ACTION_KEYS = {"safe_state"}
THEN = ("resume", "end")


@dataclass(frozen=True)
class InterlockSpec:
    """One interlock of a station: what to watch, when to trip and release, what to do."""

    name: str
    instrument: str
    parameter: str
    above: float | None
    below: float | None
    resume_below: float | None
    resume_above: float | None
    poll_s: float
    safe_state: tuple[str, ...]
    then: str
    settle_s: float = 0.0
    max_read_failures: int = 3
    give_up_s: float = 3600.0  # lab time from the first trip after which a trip ends the run
    max_trips: int = 5  # trips per run; the next one ends the run ``interlocked``

    @property
    def watch(self) -> str:
        return f"{self.instrument}.{self.parameter}"

    def trips(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below

    def clears(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.above is not None:
            return value < (self.above if self.resume_below is None else self.resume_below)
        limit = self.below if self.resume_above is None else self.resume_above
        assert limit is not None
        return value > limit

    def describe(self) -> str:
        if self.above is not None:
            release = self.above if self.resume_below is None else self.resume_below
            return f"{self.watch} > {self.above:g} (releases below {release:g})"
        resume = self.below if self.resume_above is None else self.resume_above
        return f"{self.watch} < {self.below:g} (releases above {resume:g})"


def parse_interlocks(data: Any, *, where: str, instruments: Mapping[str, Any],
                     roles: Mapping[str, Any], always: Any = None) -> list[InterlockSpec]:
    """Check a station's ``interlocks:`` list and turn it into specs.

    Each entry: ``name``; ``watch: INSTRUMENT.PARAMETER``; either ``above`` (a ceiling, with an
    optional lower ``resume_below``) or ``below`` (a floor, with an optional higher
    ``resume_above``); ``poll_s`` (default 0.5 s); ``action: {safe_state: [ROLE, ...]}``;
    ``then: resume | end`` (default end); ``settle_s`` (default 0: seconds the condition must
    stay clear before release); ``max_read_failures`` (default 3); ``give_up_s`` (default
    3600: lab seconds from the first trip after which a trip that has not cleared ends the
    run); ``max_trips`` (default 5: the trip after that many ends the run).

    ``always`` is the station's ``interlock_safe_state:`` list: roles every trip makes safe
    besides those an entry lists (the cryostat, so that a fridge over its limit never keeps
    heating whatever an entry says).
    """
    if data is None:
        return []
    extra: list[str] = []
    if always is not None:
        if not isinstance(always, list) or not all(isinstance(r, str) for r in always):
            raise InterlockConfigError(f"{where}: interlock_safe_state: a list of roles")
        for role in always:
            if role not in roles:
                raise InterlockConfigError(f"{where}: interlock_safe_state: no role {role!r}; "
                                           f"roles: {', '.join(roles) or 'none'}")
        extra = list(always)
    if not isinstance(data, list):
        raise InterlockConfigError(f"{where}: interlocks: must be a list of interlocks")
    specs: list[InterlockSpec] = []
    for i, entry in enumerate(data):
        here = f"{where}: interlocks[{i}]"
        if not isinstance(entry, Mapping):
            raise InterlockConfigError(f"{here}: must be a mapping with name, watch, above or "
                                       f"below, action")
        unknown = sorted(set(entry) - INTERLOCK_KEYS)
        if unknown:
            raise InterlockConfigError(f"{here}: unknown key(s) {', '.join(map(str, unknown))}; "
                                       f"allowed: {', '.join(sorted(INTERLOCK_KEYS))}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise InterlockConfigError(f"{here}.name: required, an identifier")
        if any(s.name == name for s in specs):
            raise InterlockConfigError(f"{here}.name: {name!r} is used twice")
        here = f"{where}: interlocks.{name}"
        watch = entry.get("watch")
        if not isinstance(watch, str) or watch.count(".") != 1:
            raise InterlockConfigError(f"{here}.watch: required, INSTRUMENT.PARAMETER, got "
                                       f"{watch!r}")
        instrument, parameter = watch.split(".")
        if instrument not in instruments:
            raise InterlockConfigError(f"{here}.watch: no instrument named {instrument!r}; "
                                       f"instruments: {', '.join(instruments)}")
        numbers = {}
        for key in ("above", "below", "resume_below", "resume_above", "poll_s", "settle_s",
                    "give_up_s"):
            if key in entry:
                value = entry[key]
                if (isinstance(value, bool) or not isinstance(value, int | float)
                        or not math.isfinite(value)):
                    raise InterlockConfigError(f"{here}.{key}: must be a number, got {value!r}")
                numbers[key] = float(value)
        above, below = numbers.get("above"), numbers.get("below")
        if (above is None) == (below is None):
            raise InterlockConfigError(f"{here}: give exactly one of 'above' (a ceiling) or "
                                       f"'below' (a floor)")
        resume_below, resume_above = numbers.get("resume_below"), numbers.get("resume_above")
        if above is not None:
            if resume_above is not None:
                raise InterlockConfigError(f"{here}.resume_above: a ceiling ('above') releases "
                                           f"with 'resume_below'")
            if resume_below is not None and resume_below > above:
                raise InterlockConfigError(f"{here}.resume_below: {resume_below:g} must not be "
                                           f"above the trip threshold above: {above:g}")
        else:
            if resume_below is not None:
                raise InterlockConfigError(f"{here}.resume_below: a floor ('below') releases "
                                           f"with 'resume_above'")
            if resume_above is not None and below is not None and resume_above < below:
                raise InterlockConfigError(f"{here}.resume_above: {resume_above:g} must not be "
                                           f"below the trip threshold below: {below:g}")
        poll_s = numbers.get("poll_s", 0.5)
        if not poll_s > 0:
            raise InterlockConfigError(f"{here}.poll_s: must be > 0 s, got {poll_s:g}")
        settle_s = numbers.get("settle_s", 0.0)
        if settle_s < 0:
            raise InterlockConfigError(f"{here}.settle_s: must be >= 0 s, got {settle_s:g}")
        give_up_s = numbers.get("give_up_s", 3600.0)
        if not give_up_s > 0:
            raise InterlockConfigError(f"{here}.give_up_s: must be > 0 s, got {give_up_s:g}")
        action = entry.get("action")
        if not isinstance(action, Mapping) or set(action) - ACTION_KEYS:
            raise InterlockConfigError(f"{here}.action: required, {{safe_state: [ROLE, ...]}}")
        safe = action.get("safe_state")
        if (not isinstance(safe, list) or not safe
                or not all(isinstance(r, str) for r in safe)):
            raise InterlockConfigError(f"{here}.action.safe_state: a non-empty list of roles")
        for role in safe:
            if role not in roles:
                raise InterlockConfigError(f"{here}.action.safe_state: no role {role!r}; "
                                           f"roles: {', '.join(roles) or 'none'}")
        then = entry.get("then", "end")
        if then not in THEN:
            raise InterlockConfigError(f"{here}.then: must be 'resume' or 'end', got {then!r}")
        counts = {}
        for key, default in (("max_read_failures", 3), ("max_trips", 5)):
            count = entry.get(key, default)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InterlockConfigError(f"{here}.{key}: an integer >= 1, got {count!r}")
            counts[key] = count
        safe = list(dict.fromkeys([*safe, *extra]))
        specs.append(InterlockSpec(name=name, instrument=instrument, parameter=parameter,
                                   above=above, below=below, resume_below=resume_below,
                                   resume_above=resume_above, poll_s=poll_s,
                                   safe_state=tuple(safe), then=then, settle_s=settle_s,
                                   max_read_failures=counts["max_read_failures"],
                                   give_up_s=give_up_s, max_trips=counts["max_trips"]))
    return specs


def resolve_parameter(components: Mapping[str, Any], spec: InterlockSpec) -> Parameter:
    """The watched parameter of an opened station; InterlockConfigError if it has none."""
    instrument = components.get(spec.instrument)
    parameters = getattr(instrument, "parameters", {})
    parameter = parameters.get(spec.parameter)
    if not isinstance(parameter, Parameter) or not parameter.gettable:
        raise InterlockConfigError(
            f"interlocks.{spec.name}.watch: {spec.instrument} has no readable parameter "
            f"{spec.parameter!r}; it has: {', '.join(parameters)}")
    return parameter
