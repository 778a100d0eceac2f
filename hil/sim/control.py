"""The served twin's control port commands (``ping``, ``clock``, ``now``, ``sleep``, ``list``,
``reset``, ``inject``, ``reconnect``: see :mod:`hil.sim.server`), apart from the sockets that
carry them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hil.clock import VirtualClock
from hil.sim.device import FAULT_KINDS

if TYPE_CHECKING:
    from hil.sim.server import TwinServer


def control(server: TwinServer, line: str) -> str:
    """Run one control command on ``server`` (see :mod:`hil.sim.server`); returns the ``ok``
    payload."""
    words = line.split()
    if not words:
        raise ValueError("empty command; commands: ping, clock, now, sleep, list, reset, "
                         "inject, reconnect")
    command, args = words[0].lower(), words[1:]
    if command == "ping":
        return "pong"
    if command == "clock":
        return server.clock_kind()
    if command == "now":
        return repr(float(server.world.clock.now()))
    if command == "sleep":
        seconds = _number(args, 0, "sleep SECONDS")
        if not 0 <= seconds <= 1e9:
            raise ValueError(f"sleep: seconds must be in [0, 1e9], got {seconds}")
        if not isinstance(server.world.clock, VirtualClock):
            raise ValueError("sleep: the twin's clock is real; its time passes by itself")
        with server.lock:
            server.world.clock.sleep(seconds)
        return repr(float(server.world.clock.now()))
    if command == "list":
        return json.dumps(server.table())
    if command == "reset":
        with server.lock:
            server.library.reset()
        return ""
    if command == "reconnect":
        if len(args) != 1:
            raise ValueError("usage: reconnect RESOURCE")
        ep = server.endpoint(args[0])
        with server.lock:
            server.library.reconnect(ep.resource)
        return ""
    if command == "inject":
        usage = (f"usage: inject RESOURCE KIND [COUNT] [seconds=S] [after=N]; kinds: "
                 f"{', '.join(FAULT_KINDS)}")
        positional = [a for a in args if "=" not in a]
        options = dict(a.split("=", 1) for a in args if "=" in a)
        if not 2 <= len(positional) <= 3 or set(options) - {"seconds", "after"}:
            raise ValueError(usage)
        try:
            count = int(positional[2]) if len(positional) == 3 else 1
            fault_s = float(options["seconds"]) if "seconds" in options else None
            after = int(options.get("after", 0))
        except ValueError:
            raise ValueError(usage) from None
        server.inject(positional[0], positional[1], count=count, seconds=fault_s, after=after)
        return ""
    raise ValueError(f"unknown command {command!r}; commands: ping, clock, now, sleep, list, "
                     f"reset, inject, reconnect")


def _number(args: list[str], index: int, usage: str) -> float:
    try:
        return float(args[index])
    except (IndexError, ValueError):
        raise ValueError(f"usage: {usage}") from None
