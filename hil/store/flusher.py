"""The process' flusher thread: every point is on disk within a writer's flush interval.

One daemon thread per process, whatever the number of open run files; it asks each registered
:class:`~hil.store.writer.RunWriter` to flush when it is due and sleeps until the next one is.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.store.writer import RunWriter


def _flush_period(interval: float) -> float:
    return max(interval - _FlushThread.MARGIN, interval / 2)


class _FlushThread:
    """One daemon thread per process that flushes each registered writer when it is due.

    It sleeps until the earliest writer is due (about once per flush interval, so it costs the
    appending thread nothing in between). Writers are held by weak reference.
    """

    MARGIN = 0.1

    def __init__(self) -> None:
        self._writers: dict[int, weakref.ref[RunWriter]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, writer: RunWriter) -> None:
        with self._lock:
            writer._next_due = time.monotonic() + _flush_period(writer._flush_interval)
            self._writers[id(writer)] = weakref.ref(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hil.store flusher",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def unregister(self, writer: RunWriter) -> None:
        with self._lock:
            self._writers.pop(id(writer), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                refs = list(self._writers.items())
            next_wake = time.monotonic() + 1.0
            for key, ref in refs:
                writer = ref()
                if writer is None:
                    with self._lock:
                        self._writers.pop(key, None)
                    continue
                next_wake = min(next_wake, writer._flush_due(time.monotonic()))
                del writer
            self._wake.wait(max(0.005, next_wake - time.monotonic()))
            self._wake.clear()


_FLUSHER = _FlushThread()
