"""The interlock watchers (:class:`Supervisor`): a thread per interlock polling its parameter,
tripping (safe state, event, latch) and releasing (settings restored) independently of the
experiment code."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from qcodes.instrument import InstrumentBase
from qcodes.parameters import Parameter

from hil.safety.guard import InstrumentGuard
from hil.safety.interlocks import InterlockSpec, resolve_parameter
from hil.safety.safe_state import make_safe, parameters_of


class _Watch:
    """One interlock's state between polls: latched or not, since when, what to restore."""

    def __init__(self, spec: InterlockSpec) -> None:
        self.spec = spec
        self.latched = False
        self.failures = 0
        self.clear_since: float | None = None
        self.first_trip: float | None = None
        self.trips = 0
        self.gave_up = False
        self.restore: list[tuple[Parameter, Any]] = []
        self.lock = threading.Lock()  # one poll at a time (wall thread and lab-time ticks)


class Supervisor:
    """Watches a station's interlocks; see the module docs.

    Each interlock has a thread of its own polling every ``poll_s`` of wall time. On the twin's
    virtual clock (``clock`` a :class:`~hil.clock.VirtualClock`) the watchers also poll in the
    lab's time: the clock stops at each poll however far the experiment moves it, so a fridge
    that warms during a long settle is seen at the instant it crosses its limit, not whenever
    the wall-clock thread happens to run (by then the virtual clock may be minutes further).
    """

    def __init__(self, specs: Sequence[InterlockSpec], components: Mapping[str, Any],
                 roles: Mapping[str, InstrumentBase], guard: InstrumentGuard,
                 event: Callable[[str, str], None],
                 lab_time: Callable[[], float] = time.monotonic, clock: Any = None) -> None:
        self._lab_time = lab_time  # settle, give-up: in the lab's own time
        self._clock = clock if hasattr(clock, "every") else None
        self._specs = list(specs)
        self._components = components
        self._roles = roles
        self._guard = guard
        self._event = event
        self._parameters = {s.name: resolve_parameter(components, s) for s in self._specs}
        self._watches = {s.name: _Watch(s) for s in self._specs}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cancels: list[Callable[[], None]] = []
        self._count_lock = threading.Lock()
        self._trips = 0
        self.errors: list[BaseException] = []

    @property
    def trips(self) -> int:
        """Trips so far: a point during which this changed must be re-taken."""
        return self._trips

    def point_start(self) -> int:
        """Before a point: raise if stopping or ended, wait while latched; a token."""
        if self._guard._alert:
            self._guard.checkpoint()
        return self._trips

    def point_ok(self, token: int) -> bool:
        """After a point: True when no interlock tripped since :meth:`point_start`."""
        return self._trips == token and not self._guard._latched

    def start(self) -> None:
        for spec in self._specs:
            if self._clock is not None:
                self._cancels.append(self._clock.every(spec.poll_s, self._ticker(spec)))
            thread = threading.Thread(target=self._watch, args=(spec,), daemon=True,
                                      name=f"interlock {spec.name}")
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        while self._cancels:
            self._cancels.pop()()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[Supervisor]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- one watcher ---------------------------------------------------------------------------

    def _read(self, spec: InterlockSpec) -> float:
        parameter = self._parameters[spec.name]
        with self._guard.bypass(), self._guard.lock(spec.instrument):
            return float(parameter.get())

    def _ticker(self, spec: InterlockSpec) -> Callable[[], None]:
        watch = self._watches[spec.name]

        def tick() -> None:
            # Never wait for the wall-clock thread's poll (it may wait for an instrument this
            # thread holds): when it is polling, this instant is being looked at anyway.
            if not self._stop.is_set() and watch.lock.acquire(blocking=False):
                try:
                    self._poll(watch)
                finally:
                    watch.lock.release()
        return tick

    def _watch(self, spec: InterlockSpec) -> None:
        next_poll = time.monotonic()
        while not self._stop.is_set():
            self.poll(spec.name)
            next_poll += spec.poll_s
            delay = next_poll - time.monotonic()
            if delay < 0:
                next_poll = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def poll(self, name: str) -> None:
        """Read one interlock's parameter once and trip, release or give up as it says."""
        watch = self._watches[name]
        with watch.lock:
            self._poll(watch)

    def _poll(self, w: _Watch) -> None:
        spec = w.spec
        if w.gave_up or (w.latched and spec.then == "end"):
            return  # the run is ending: nothing to release, nothing more to read
        try:
            value = self._read(spec)
            w.failures = 0
        except Exception as err:
            w.failures += 1
            value = math.nan
            if w.failures == 1 or w.failures == spec.max_read_failures:
                self._safe_event("fault", f"interlock {spec.name}: cannot read {spec.watch} "
                                          f"({w.failures} in a row): {err}")
        unit = self._parameters[spec.name].unit
        try:
            now = self._lab_time()
            if not w.latched:
                unreadable = w.failures >= spec.max_read_failures
                if spec.trips(value) or unreadable:
                    why = (f"{spec.watch} unreadable {w.failures} times" if unreadable else
                           f"{spec.watch} = {value:g} {unit}")
                    w.first_trip = now if w.first_trip is None else w.first_trip
                    w.trips += 1
                    w.restore = self._trip(spec, why, w.trips)
                    w.latched = True
                    w.clear_since = None
                    self._give_up_if_due(w, value, unit, now)
            elif spec.clears(value):
                w.clear_since = now if w.clear_since is None else w.clear_since
                if now - w.clear_since >= spec.settle_s:
                    self._release(spec, f"{spec.watch} = {value:g} {unit}", w.restore)
                    w.latched = False
                    w.restore = []
            else:
                w.clear_since = None
                self._give_up_if_due(w, value, unit, now)
        except Exception as err:  # never let a watcher die silently
            self.errors.append(err)
            self._safe_event("fault", f"interlock {spec.name}: {type(err).__name__}: {err}")

    def _give_up_if_due(self, w: _Watch, value: float, unit: str, now: float) -> None:
        """A resumable interlock ends the run after ``max_trips`` trips, or when it has not
        cleared ``give_up_s`` after its first trip: a run never cycles forever."""
        spec = w.spec
        if spec.then != "resume" or w.first_trip is None:
            return
        if w.trips > spec.max_trips:
            why = f"tripped {w.trips} times (max_trips {spec.max_trips})"
        elif now - w.first_trip > spec.give_up_s:
            why = (f"{spec.watch} = {value:g} {unit} still beyond {spec.describe()} after "
                   f"{spec.give_up_s:g} s (give_up_s, counted from the first trip)")
        else:
            return
        reason = f"{spec.name}: {why}"
        self._safe_event("interlock", f"{reason}: giving up; run ends")
        self._guard.end(spec.name, reason)
        w.gave_up = True

    def _trip(self, spec: InterlockSpec, why: str, count: int) -> list[tuple[Parameter, Any]]:
        reason = f"{spec.name}: {why}, limit {spec.describe()}"
        self._guard.latch(spec.name, reason)  # first: the experiment sends nothing more
        with self._count_lock:
            self._trips += 1
        before = {role: _settings(self._roles[role]) for role in spec.safe_state}
        failures = []
        with self._guard.bypass():
            for role in spec.safe_state:
                instrument = self._roles[role]
                with self._guard.lock(instrument.name):
                    failure = make_safe(instrument, role=role)
                if failure is not None:
                    failures.append(failure.message())
        restore: list[tuple[Parameter, Any]] = []
        for role in spec.safe_state:
            restore += _changed(before[role], _settings(self._roles[role]))
        roles = ", ".join(f"{r} ({self._roles[r].name})" for r in spec.safe_state)
        outcome = (f"safe state applied to {roles}" if not failures else
                   f"safe state FAILED for {'; '.join(failures)}")
        then = "run resumes when it clears" if spec.then == "resume" else "run ends"
        self._safe_event("interlock", f"{reason}: tripped; {outcome}; latched; {then} (trip "
                                      f"{count}, max_trips {spec.max_trips})")
        if spec.then == "end":
            self._guard.end(spec.name, reason)
        return restore

    def _release(self, spec: InterlockSpec, why: str,
                 restore: list[tuple[Parameter, Any]]) -> None:
        restored, failures = [], []
        with self._guard.bypass():
            # Undo in reverse order of how the safe state changed things (shutter, then diode).
            for parameter, value in reversed(restore):
                try:
                    owner = parameter.root_instrument
                    lock = (self._guard.lock(owner.name) if owner is not None
                            and owner.name in self._components else contextlib.nullcontext())
                    with lock:
                        parameter.set(value)
                    restored.append(f"{parameter.full_name}={value!r}")
                except Exception as err:
                    failures.append(f"{parameter.full_name}: {err}")
        if failures:
            self._safe_event("interlock", f"{spec.name}: released ({why}) but restoring failed "
                                          f"({'; '.join(failures)}); the run ends")
            self._guard.end(spec.name, f"{spec.name}: could not restore after release")
            self._guard.unlatch(spec.name)
            return
        self._safe_event("interlock", f"{spec.name}: released ({why}); restored "
                                      f"{', '.join(restored) or 'nothing'}; run resumes")
        self._guard.unlatch(spec.name)

    def _safe_event(self, kind: str, message: str) -> None:
        try:
            self._event(kind, message)
        except Exception as err:  # the file may be finished: the watcher goes on regardless
            self.errors.append(err)


def _settings(instrument: InstrumentBase) -> dict[Parameter, tuple[Any, Any]]:
    """Settable parameters' cached values and when they were set (no instrument traffic),
    channels' and submodules' (the Lake Shore's heaters) included."""
    out: dict[Parameter, tuple[Any, Any]] = {}
    for parameter in parameters_of(instrument):
        if not isinstance(parameter, Parameter) or not parameter.settable:
            continue
        if not parameter.cache.valid:
            continue
        out[parameter] = (parameter.cache.get(get_if_invalid=False), parameter.cache.timestamp)
    return out


def _changed(before: Mapping[Parameter, tuple[Any, Any]],
             after: Mapping[Parameter, tuple[Any, Any]]) -> list[tuple[Parameter, Any]]:
    """Parameters the safe state set to another value, in the order it set them, with the old
    values."""
    changed: list[tuple[Any, int, Parameter, Any]] = []
    for parameter, (value, stamp) in after.items():
        if parameter in before and before[parameter][0] != value:
            changed.append((stamp, len(changed), parameter, before[parameter][0]))
    changed.sort(key=lambda item: (item[0] is None, item[0] or datetime.min, item[1]))
    return [(parameter, old) for _, _, parameter, old in changed]
