"""Serialized, gated instrument access for the length of a run (:class:`InstrumentGuard`): one
lock per instrument across threads, a stop request honoured before the next byte, and the
experiment held while an interlock is latched."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from qcodes.instrument import Instrument, InstrumentBase

from hil.safety.errors import GarbledReply, RunAborted, RunInterlocked

#: VISA resource methods drivers call directly (binary and ASCII block reads), guarded too.
_HANDLE_METHODS = ("query_binary_values", "query_ascii_values", "read_raw")

#: Seconds of lab time that pass on the twin for each wall-clock wait of a latched experiment.
LATCHED_WAIT_S = 5.0


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


def lab_instruments(components: Mapping[str, Any]) -> dict[str, InstrumentBase]:
    """The instruments of a station's components (what a guard wraps)."""
    return {name: c for name, c in components.items() if isinstance(c, Instrument)}
