"""The client side of a twin served over TCP (``hil twin serve``, see hil.sim.server).

A station whose instruments are served by another process talks to them through pyvisa-py,
exactly as to a rack of LAN instruments, and to the twin itself through the server's control
port (a loopback line protocol) for two things only: its clock, so that an experiment's
``wait`` moves the served fridge's time as it does in-process, and fault injection, for tests.

* :class:`RemoteTwin` is what ``lab.world`` is for such a station: ``clock`` (``now``,
  ``sleep``), ``inject``, ``reconnect``, ``reset``. The twin's physics (``truth()``, states)
  stays in the server process.
* :class:`PyVisaLibrary` is pyvisa-py with two differences that matter on a socket: an
  instrument that closed the connection reads as ``VI_ERROR_CONN_LOST`` at once, instead of
  as a timeout after the full VISA timeout (pyvisa-py waits for bytes that will never come),
  and a write to it raises the same instead of a bare ``BrokenPipeError``; and sockets are
  opened with ``TCP_NODELAY``, VISA's default, which pyvisa-py does not set.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from typing import Any

from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from pyvisa_py import highlevel as pyvisa_py_highlevel

from hil.clock import interruptible_sleep

#: Control replies are one line; a line longer than this is a broken server.
MAX_REPLY = 1 << 20
#: A device clear on a raw socket drains until the line has been quiet this long (as pyvisa-py).
CLEAR_QUIET_S = 0.1


class TwinServerError(ConnectionError):
    """The twin server's control port cannot be reached or refused a request."""


def parse_host_port(text: str, where: str) -> tuple[str, int]:
    """``"127.0.0.1:5024"`` -> ("127.0.0.1", 5024); ``[::1]:5024`` for IPv6."""
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{where}: must be HOST:PORT, e.g. 127.0.0.1:5024, got {text!r}")
    return host, int(port)


class ControlClient:
    """One connection to the control port; requests are serialised (one line out, one in)."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, line: str, *, timeout: float | None = None) -> str:
        """Send one command, return the payload of its ``ok`` reply; raise on ``error``."""
        if "\n" in line or "\r" in line:
            raise ValueError(f"a control command is one line, got {line!r}")
        with self._lock:
            try:
                sock = self._connect()
                sock.settimeout(timeout or self.timeout)
                sock.sendall(line.encode("ascii") + b"\n")
                reply = self._read_line(sock)
            except (OSError, UnicodeEncodeError) as exc:
                self._drop()
                raise TwinServerError(f"twin server control {self.address}: {exc}; is "
                                      f"`hil twin serve` running?") from None
        status, _, payload = reply.partition(" ")
        if status != "ok":
            raise TwinServerError(f"twin server control {self.address}: {line.split(' ')[0]}: "
                                  f"{payload or reply}")
        return payload

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buffer.clear()
        return self._sock

    def _read_line(self, sock: socket.socket) -> str:
        while b"\n" not in self._buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY:
                raise ConnectionError("reply longer than 1 MiB")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return line.decode("utf-8", "replace").rstrip("\r")

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer.clear()


class RemoteClock:
    """The served twin's clock, seen from the experiment's process.

    ``now`` asks the server. ``sleep`` on a virtual clock asks the server to advance it (no wall
    time passes, as in-process); on a real clock it sleeps here, scaled by the clock's speed,
    so a long wait does not hold the control connection.
    """

    def __init__(self, control: ControlClient) -> None:
        self._control = control
        kind, _, speed = control.request("clock").partition(" ")
        self.virtual = kind == "virtual"
        self.speed = 1.0 if self.virtual else float(speed or 1.0)

    def now(self) -> float:
        return float(self._control.request("now"))

    def sleep(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"cannot sleep a negative time ({seconds} s)")
        if self.virtual:
            self._control.request(f"sleep {float(seconds)!r}")
        elif seconds > 0:
            interruptible_sleep(seconds / self.speed)  # a stop ends the wait early


class RemoteTwin:
    """``lab.world`` of a station served by ``hil twin serve``: its clock and its faults."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.control = ControlClient(host, port, timeout=timeout)
        try:
            self.clock = RemoteClock(self.control)
        except BaseException:
            self.control.close()
            raise

    @property
    def address(self) -> str:
        return self.control.address

    def inject(self, resource: str, kind: str, *, count: int = 1, seconds: float | None = None,
               after: int = 0) -> None:
        """As ``SimVisaLibrary.inject`` in the server; ``resource`` may be the station's
        instrument name. ``after``: let that many more messages to it pass first."""
        line = f"inject {resource} {kind} {int(count)}"
        if seconds is not None:
            line += f" seconds={float(seconds)!r}"
        if after:
            line += f" after={int(after)}"
        self.control.request(line)

    def reconnect(self, resource: str) -> None:
        self.control.request(f"reconnect {resource}")

    def reset(self) -> None:
        self.control.request("reset")

    def close(self) -> None:
        self.control.close()


def _peer_closed(sock: Any) -> bool:
    """True if the other end closed (or reset) the connection and nothing is left to read."""
    if not isinstance(sock, socket.socket):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # reset by the peer, or already closed here


class PyVisaLibrary(pyvisa_py_highlevel.PyVisaLibrary):
    """pyvisa-py that reports a socket closed by the instrument as a lost connection.

    Same class name on purpose: QCoDeS tells backends apart by it (``visabackend == "py"``).
    """

    def open(self, session, resource_name, *args, **kwargs):
        handle, status = super().open(session, resource_name, *args, **kwargs)
        sock = getattr(self.sessions.get(handle), "interface", None)
        if isinstance(sock, socket.socket):
            # pyvisa-py does not look at how its non-blocking connect ended: a refused one
            # "opens" and fails at the first read. Say so here.
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not error:
                try:
                    sock.getpeername()  # a connect refused at once leaves SO_ERROR clear
                except OSError:
                    error = errno.ECONNREFUSED
            if error:
                self.close(handle)
                raise ConnectionError(error, f"{os.strerror(error)} ({resource_name})")
            # VISA's default for VI_ATTR_TCPIP_NODELAY is true; pyvisa-py leaves Nagle on, and a
            # write followed by another (a set, then its error-queue check) then waits for the
            # instrument's delayed ACK: ~40 ms per command on Linux.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return handle, status

    def read(self, session, count):
        sess = self.sessions.get(session)
        sock = getattr(sess, "interface", None)
        if isinstance(sock, socket.socket) and not getattr(sess, "_pending_buffer", b""):
            # Wait for the first byte here, where an end of file can be told from silence.
            ready, _, _ = select.select([sock], [], [], getattr(sess, "timeout", None))
            if not ready:
                return b"", self.handle_return_value(session, StatusCode.error_timeout)
            if _peer_closed(sock):
                return b"", self.handle_return_value(session, StatusCode.error_connection_lost)
        try:
            return super().read(session, count)
        except VisaIOError as exc:  # closed in the middle of a reply
            if exc.error_code == StatusCode.error_timeout and _peer_closed(sock):
                return b"", self.handle_return_value(session, StatusCode.error_connection_lost)
            raise

    def write(self, session, data):
        sock = getattr(self.sessions.get(session), "interface", None)
        if _peer_closed(sock):
            return 0, self.handle_return_value(session, StatusCode.error_connection_lost)
        try:
            return super().write(session, data)
        except OSError:  # BrokenPipeError, ConnectionResetError: pyvisa-py lets them through
            return 0, self.handle_return_value(session, StatusCode.error_connection_lost)

    def clear(self, session):
        """pyvisa-py's socket clear (drain until 100 ms of quiet), but an end of file is a lost
        connection: pyvisa-py would read a closed socket's empty reads forever."""
        sess = self.sessions.get(session)
        sock = getattr(sess, "interface", None)
        if not isinstance(sock, socket.socket):
            return super().clear(session)
        pending = getattr(sess, "_pending_buffer", None)
        if pending is not None:
            pending.clear()
        try:
            while select.select([sock], [], [], CLEAR_QUIET_S)[0]:
                if not sock.recv(65536):
                    return self.handle_return_value(session, StatusCode.error_connection_lost)
        except OSError:
            return self.handle_return_value(session, StatusCode.error_connection_lost)
        return self.handle_return_value(session, StatusCode.success)


def pyvisa_py_library() -> PyVisaLibrary:
    """The process's one instance (pyvisa caches libraries by class and path)."""
    return PyVisaLibrary("unset")
