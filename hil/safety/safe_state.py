"""Safe states that are known to hold: applied, every parameter they set read back from the
instrument, retried; what did not hold is a :class:`SafeFailure` naming what may still be live."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qcodes.instrument import InstrumentBase
from qcodes.parameters import Parameter, ParameterBase

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
    for parameter in parameters_of(instrument):
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


def parameters_of(instrument: InstrumentBase) -> Iterator[ParameterBase]:
    """Every parameter of an instrument and of its channels and submodules."""
    yield from instrument.parameters.values()
    for sub in instrument.submodules.values():
        if isinstance(sub, InstrumentBase):
            yield from parameters_of(sub)
        else:  # a channel list
            for channel in sub:
                yield from parameters_of(channel)
