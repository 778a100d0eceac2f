"""Safety while a run goes: serialized instrument access, stop requests, interlocks.

Three pieces, used by :mod:`hil.runner` for the length of a run:

* :class:`InstrumentGuard` wraps every instrument's ``write_raw`` and ``ask_raw`` (and its VISA
  handle's block reads, which some drivers call directly) so that (1)
  calls from different threads (the experiment and the interlock watchers) are serialized by a
  lock per instrument, (2) after a stop request (Ctrl-C, SIGTERM) the experiment's next
  instrument call raises :class:`RunAborted` before anything is sent, and (3) while an interlock
  is latched, the experiment's instrument calls wait (and raise :class:`RunInterlocked` if the
  interlock ends the run). Safe states are applied through :meth:`InstrumentGuard.bypass`.
* :class:`InterlockSpec` is one ``interlocks:`` entry of a station YAML (see
  :func:`parse_interlocks` for the keys); thresholds have hysteresis like Bluesky's suspenders:
  a ceiling trips above ``above`` and releases only below ``resume_below`` (a floor mirrored).
* :class:`Supervisor` watches each interlock in a thread of its own at its ``poll_s``,
  independently of the experiment code. A trip closes the gate first, then applies the safe
  state of the listed roles (from the watcher thread, so it does not wait for the experiment),
  records an event and latches. It releases when the condition clears past the resume threshold
  (and ``settle_s`` has passed): with ``then: resume`` the instrument settings the safe state
  changed are restored (last changed, first restored) and the gate opens again, so the
  experiment continues; the runner re-takes the point the trip interrupted. With ``then: end``
  the run ends as ``interlocked``. Every trip and release is an event in the run file. A watched
  parameter that cannot be read ``max_read_failures`` times in a row trips the interlock too.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qcodes.instrument import Instrument, InstrumentBase
from qcodes.parameters import Parameter, ParameterBase

__all__ = ["InstrumentGuard", "InterlockConfigError", "InterlockSpec", "RunAborted",
           "RunInterlocked", "SafeFailure", "Supervisor", "UnsafeLab", "exit_code", "make_safe",
           "parse_interlocks", "safe_all"]

INTERLOCK_KEYS = {"name", "watch", "above", "below", "resume_below", "resume_above", "poll_s",
                  "action", "then", "settle_s", "max_read_failures", "give_up_s", "max_trips"}
ACTION_KEYS = {"safe_state"}
THEN = ("resume", "end")
#: VISA resource methods drivers call directly (binary and ASCII block reads), guarded too.
_HANDLE_METHODS = ("query_binary_values", "query_ascii_values", "read_raw")


class RunAborted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C, SIGTERM); it ends as ``aborted``."""


class RunInterlocked(BaseException):
    """An interlock with ``then: end`` tripped; the run ends as ``interlocked``.

    A BaseException, like KeyboardInterrupt, so that experiment code catching ``Exception``
    cannot swallow it.
    """

    def __init__(self, interlock: str, message: str = "") -> None:
        super().__init__(message or f"interlock {interlock} tripped")
        self.interlock = interlock


class GarbledReply(RuntimeError):
    """An instrument answered bytes that are not text: the message names the instrument."""

    def __init__(self, instrument: str, error: UnicodeDecodeError) -> None:
        super().__init__(f"{instrument}: garbled reply (not {error.encoding} text): "
                         f"{bytes(error.object[:40])!r}")
        self.instrument = instrument

    def __str__(self) -> str:  # QCoDeS appends "getting <parameter>" to args
        return "; ".join(str(a) for a in self.args)


class InterlockConfigError(ValueError):
    """A mistake in a station's ``interlocks:`` section; the message names the key."""


#: Seconds of lab time that pass on the twin for each wall-clock wait of a latched experiment.
LATCHED_WAIT_S = 5.0


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


class InstrumentGuard:
    """Serializes instrument access between threads and gates the experiment's calls.

    The thread that creates the guard is the experiment thread; only its calls are gated.
    """

    def __init__(self, instruments: Mapping[str, InstrumentBase]) -> None:
        self._instruments = dict(instruments)
        self._locks = {name: threading.RLock() for name in self._instruments}
        self._experiment_thread = threading.get_ident()
        self._cond = threading.Condition()
        #: Called while the experiment waits out a latched trip: on the twin it lets the lab's
        #: virtual time pass (a fridge only cools if time passes); None on real hardware.
        self.idle: Callable[[float], object] | None = None
        self._local = threading.local()
        self._stop: str | None = None
        self._latched: dict[str, str] = {}
        self._ended: tuple[str, str] | None = None
        self._alert = False  # any of the three above: the fast path checks only this
        self._installed: list[tuple[InstrumentBase, tuple[str, ...]]] = []

    # -- state ---------------------------------------------------------------------------------

    @property
    def stop_requested(self) -> str | None:
        return self._stop

    @property
    def latched(self) -> tuple[str, ...]:
        return tuple(self._latched)

    @property
    def ended_by(self) -> tuple[str, str] | None:
        """(interlock, reason) when an interlock ended the run."""
        return self._ended

    def request_stop(self, reason: str) -> None:
        with self._cond:
            if self._stop is None:
                self._stop = reason
            self._alert = True
            self._cond.notify_all()

    def latch(self, interlock: str, reason: str) -> None:
        with self._cond:
            self._latched[interlock] = reason
            self._alert = True

    def unlatch(self, interlock: str) -> None:
        with self._cond:
            self._latched.pop(interlock, None)
            self._alert = bool(self._stop or self._ended or self._latched)
            self._cond.notify_all()

    def end(self, interlock: str, reason: str) -> None:
        with self._cond:
            if self._ended is None:
                self._ended = (interlock, reason)
            self._alert = True
            self._cond.notify_all()

    def lock(self, instrument: str) -> threading.RLock:
        return self._locks[instrument]

    def check_stop(self) -> None:
        """Raise if the run must stop (a stop request, an interlock that ends it); never waits.

        A wait of the experiment asks this between slices (hil.clock.stop_check), so a stop
        does not wait for the wait to end.
        """
        if not self._alert or getattr(self._local, "bypass", False):
            return
        if self._stop is not None:
            raise RunAborted(self._stop)
        if self._ended is not None:
            raise RunInterlocked(*self._ended)

    @contextlib.contextmanager
    def bypass(self) -> Iterator[None]:
        """Let this thread's calls through the gates (safe states, restores)."""
        previous = getattr(self._local, "bypass", False)
        self._local.bypass = True
        try:
            yield
        finally:
            self._local.bypass = previous

    def checkpoint(self) -> None:
        """For the experiment thread: raise if stopping or ended, wait while latched."""
        if not self._alert:
            return
        if threading.get_ident() != self._experiment_thread or getattr(self._local, "bypass",
                                                                        False):
            return
        with self._cond:
            while True:
                if self._stop is not None:
                    raise RunAborted(self._stop)
                if self._ended is not None:
                    raise RunInterlocked(*self._ended)
                if not self._latched:
                    return
                self._cond.wait(0.1 if self.idle is None else 0.01)
                if (self.idle is not None and self._latched and self._stop is None
                        and self._ended is None):  # the twin's virtual clock: time passes
                    self.idle(LATCHED_WAIT_S)

    # -- wrapping ------------------------------------------------------------------------------

    def install(self) -> None:
        for name, instrument in self._instruments.items():
            targets: list[tuple[Any, tuple[str, ...]]] = [(instrument, ("write_raw", "ask_raw"))]
            handle = getattr(instrument, "visa_handle", None)
            if handle is not None:  # drivers reading binary blocks talk to it directly
                targets.append((handle, _HANDLE_METHODS))
            for target, methods in targets:
                wrapped = []
                for method in methods:
                    original = getattr(target, method, None)
                    if original is None or method in vars(target):
                        continue
                    try:
                        setattr(target, method, self._wrap(name, original))
                    except (AttributeError, TypeError):
                        continue
                    wrapped.append(method)
                if wrapped:
                    self._installed.append((target, tuple(wrapped)))

    def uninstall(self) -> None:
        while self._installed:
            instrument, methods = self._installed.pop()
            for method in methods:
                with contextlib.suppress(AttributeError):
                    delattr(instrument, method)

    @contextlib.contextmanager
    def installed(self) -> Iterator[InstrumentGuard]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        lock = self._locks[name]
        checkpoint = self.checkpoint

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._alert:
                checkpoint()
            with lock:
                try:
                    return original(*args, **kwargs)
                except UnicodeDecodeError as exc:  # name the instrument, not the codec
                    raise GarbledReply(name, exc) from exc

        guarded.__wrapped__ = original  # type: ignore[attr-defined]
        return guarded


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


def _parameters_of(instrument: InstrumentBase) -> Iterator[ParameterBase]:
    """Every parameter of an instrument and of its channels and submodules."""
    yield from instrument.parameters.values()
    for sub in instrument.submodules.values():
        if isinstance(sub, InstrumentBase):
            yield from _parameters_of(sub)
        else:  # a channel list
            for channel in sub:
                yield from _parameters_of(channel)


def _settings(instrument: InstrumentBase) -> dict[Parameter, tuple[Any, Any]]:
    """Settable parameters' cached values and when they were set (no instrument traffic),
    channels' and submodules' (the Lake Shore's heaters) included."""
    out: dict[Parameter, tuple[Any, Any]] = {}
    for parameter in _parameters_of(instrument):
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


def lab_instruments(components: Mapping[str, Any]) -> dict[str, InstrumentBase]:
    """The instruments of a station's components (what a guard wraps)."""
    return {name: c for name, c in components.items() if isinstance(c, Instrument)}


# -- safe states that are known to hold --------------------------------------------------------

#: How many times a failing safe state is tried before it is reported as failed.
SAFE_STATE_ATTEMPTS = 3
#: Seconds between attempts (a dropped connection may come back; a relay may need a moment).
SAFE_STATE_RETRY_S = 0.2

#: What an instrument of each role kind may leave on when its safe state does not hold.
_MAY_BE_ON = {"Laser": "laser light (diode output, shutter)",
              "MicrowaveSource": "microwave output",
              "Cryostat": "heaters (sample, warm-up, still)",
              "NetworkAnalyzer": "VNA source power",
              "SpectrumAnalyzer": "input protection (preamp on, low attenuation)",
              "PowerMeter": "a fixed range (readings may saturate)"}


@dataclass(frozen=True)
class SafeFailure:
    """An instrument whose safe state could not be applied or does not read back as set."""

    instrument: str
    may_be_on: str
    detail: str

    def message(self) -> str:
        return f"{self.instrument}: {self.may_be_on} may still be on ({self.detail})"


def may_be_on(instrument: Any) -> str:
    """What this instrument can leave live, from the role kinds it provides."""
    from hil.roles import ROLE_KINDS  # roles import nothing of ours; kept local all the same

    for kind in dict.fromkeys(ROLE_KINDS.values()):
        if isinstance(instrument, kind) and kind.__name__ in _MAY_BE_ON:
            return _MAY_BE_ON[kind.__name__]
    return "its outputs"


def make_safe(instrument: Any, *, role: str | None = None,
              attempts: int = SAFE_STATE_ATTEMPTS) -> SafeFailure | None:
    """Apply an instrument's safe state and read back that it holds; retry; None when it does.

    Every parameter the safe state set is read again from the instrument and compared with the
    value sent: a heater relay that stays closed, or a laser that dropped its connection, is a
    failure (after ``attempts`` tries), never a silent success.
    """
    name = getattr(instrument, "name", str(instrument)) + (f" (role {role})" if role else "")
    detail = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(SAFE_STATE_RETRY_S)
        started = datetime.now()
        try:
            instrument.safe_state()
        except Exception as exc:
            detail = f"safe state failed: {_first_line(exc)}"
            continue
        try:
            wrong = _readback(instrument, started)
        except Exception as exc:
            detail = f"cannot read it back: {_first_line(exc)}"
            continue
        if not wrong:
            return None
        detail = "reads back " + ", ".join(wrong)
    return SafeFailure(name, may_be_on(instrument), f"{detail}; tried {attempts} times")


def _readback(instrument: Any, since: datetime) -> list[str]:
    """Parameters set since ``since`` whose value read from the instrument differs."""
    wrong = []
    for parameter in _parameters_of(instrument):
        if not isinstance(parameter, Parameter) or not parameter.gettable:
            continue
        stamp = parameter.cache.timestamp
        if not parameter.cache.valid or stamp is None or stamp < since:
            continue
        sent = parameter.cache.get(get_if_invalid=False)
        got = parameter.get()
        same = (math.isclose(got, sent, rel_tol=1e-6, abs_tol=1e-12)
                if isinstance(got, float | int) and isinstance(sent, float | int)
                and not isinstance(got, bool) else got == sent)
        if not same:
            wrong.append(f"{parameter.full_name}={got!r} (set {sent!r})")
    return wrong


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def safe_all(components: Mapping[str, Any]) -> list[SafeFailure]:
    """Every instrument with a safe state made safe and checked; what did not hold (never
    raises: one stuck instrument must not leave the others live)."""
    failures = []
    for component in components.values():
        if callable(getattr(component, "safe_state", None)):
            failure = make_safe(component)
            if failure is not None:
                failures.append(failure)
    return failures


class UnsafeLab(RuntimeError):
    """The run ended but some instrument's safe state did not hold: the lab may be live."""

    def __init__(self, failures: Sequence[SafeFailure]) -> None:
        super().__init__("safe state did not hold: " + "; ".join(f.message() for f in failures))
        self.failures = list(failures)


def exit_code(exc: BaseException) -> int:
    """The ``hil`` exit code of a run that ended with ``exc`` (the DESIGN contract)."""
    if isinstance(exc, RunInterlocked):
        return 3
    if isinstance(exc, KeyboardInterrupt):
        return 143 if str(exc).startswith("SIGTERM") else 130
    return 1
