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

The package: :mod:`~hil.safety.errors` (exceptions and exit codes), :mod:`~hil.safety.interlocks`
(the station's ``interlocks:``), :mod:`~hil.safety.guard` (instrument access),
:mod:`~hil.safety.supervisor` (the watchers) and :mod:`~hil.safety.safe_state` (safe states read
back); every name is importable from ``hil.safety`` as well.
"""

from __future__ import annotations

from hil.safety.errors import (
    GarbledReply,
    InterlockConfigError,
    RunAborted,
    RunInterlocked,
    UnsafeLab,
    exit_code,
)
from hil.safety.guard import LATCHED_WAIT_S, InstrumentGuard, lab_instruments
from hil.safety.interlocks import (
    ACTION_KEYS,
    INTERLOCK_KEYS,
    THEN,
    InterlockSpec,
    parse_interlocks,
    resolve_parameter,
)
from hil.safety.safe_state import (
    SAFE_STATE_ATTEMPTS,
    SAFE_STATE_RETRY_S,
    SafeFailure,
    make_safe,
    may_be_on,
    safe_all,
)
from hil.safety.supervisor import Supervisor

__all__ = ["ACTION_KEYS", "INTERLOCK_KEYS", "LATCHED_WAIT_S", "SAFE_STATE_ATTEMPTS",
           "SAFE_STATE_RETRY_S", "THEN", "GarbledReply", "InstrumentGuard", "InterlockConfigError",
           "InterlockSpec", "RunAborted", "RunInterlocked", "SafeFailure", "Supervisor",
           "UnsafeLab", "exit_code", "lab_instruments", "make_safe", "may_be_on",
           "parse_interlocks", "resolve_parameter", "safe_all"]
