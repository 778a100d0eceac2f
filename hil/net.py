"""Network addresses the lab's servers agree on: what counts as loopback.

``hil twin serve`` and ``hil dash`` both refuse a non-loopback bind without ``--allow-remote``
(neither has authentication); one definition keeps them in step.
"""

from __future__ import annotations

import ipaddress
import socket


class HostError(ValueError):
    """A host name that does not resolve."""


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback one."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HostError(f"host {host!r} cannot be resolved: {exc.strerror}") from None
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)
