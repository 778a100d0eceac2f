"""The twin on real sockets: one raw-SCPI TCP listener per instrument of the lab (``hil twin serve``).

A LAN instrument speaks SCPI over a plain TCP socket (Keysight's port 5025, Santec's 5000,
Lake Shore's 7777). :class:`TwinServer` serves each device of a simulated lab the same way, so
an experiment in another process drives the twin through pyvisa-py exactly as it would drive
the rack: a true hardware-in-the-loop stand-in.

Wire. Each listener speaks with its device's terminations from the profile's ``eom``: a client
message ends with the query termination (Santec ``\\r``, Lake Shore ``\\r\\n``, the others
``\\n``); the bytes before it go to the same :class:`~hil.sim.device.SimDevice` an in-process run
uses (one ``write`` per message, termination included), and every reply it produces goes back
with its response termination, binary blocks (``#<n><len><bytes>``) byte for byte.

Ports. Instrument ``i`` of the lab file (``sim_profiles/lab.yaml``, in its order) listens on
``port_base + i``: with the default 5025, laser 5025, power meter 5026, monitor 5027, microwave
source 5028, fridge 5029, VNA 5030, ESA 5031. ``port_base=0`` picks free ports. The control
port (below) defaults to ``port_base - 1``.

Concurrency. One thread per client; a lock around the twin world makes each device exchange
(message in, replies out) atomic, so two clients never interleave inside one. Replies are sent
outside the lock, so a slow client or a delayed reply holds up no one else.

Clock. The twin keeps the clock the station gives it: virtual by default, as in-process, so a
ten-minute fridge settle costs no wall time. The client advances it through the control port
(``sleep``), which a station with ``twin_server:`` does for every ``wait`` (hil.sim.remote). A
real clock (``clock="real"``) is for demos with humans watching.

Faults, driven by ``SimVisaLibrary.inject`` (directly, or through the control port):
``disconnect`` closes the instrument's connections (and refuses new ones until ``reconnect``),
``timeout`` swallows a reply, ``garbage`` replaces one, ``error`` queues an instrument error;
the wire faults ``delay`` (the reply ``seconds`` late, default 10 s: past QCoDeS' 5 s timeout)
and ``split`` (the reply in four TCP packets ``seconds`` apart, default 20 ms).

Control port: loopback only, whatever the instruments' host; one command per line, each
answered by one line ``ok [payload]`` or ``error <message>``::

    ping | clock | now | sleep SECONDS | list | reset
    inject RESOURCE KIND [COUNT] [seconds=S] [after=N]    (after: N more messages pass first)
    reconnect RESOURCE

RESOURCE is the station's instrument name (``fridge``), the lab's address or the served one.

Safety. Loopback unless ``allow_remote``; a line longer than ``max_line`` bytes (64 KiB) drops
that client; a client silent for ``idle_timeout`` seconds (10 min) is dropped; at most
``max_clients`` per instrument: a new client beyond it replaces the one idle longest (idle for
at least ``EVICT_IDLE_S``), so forgotten sockets never lock the others out. A client's bad
input (garbage, non-UTF-8, an exception inside the device) is answered as the instrument
answers an unknown command and never reaches another session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyvisa.rname import to_canonical_name
from pyvisa_sim.component import NoResponse

from hil.clock import VirtualClock
from hil.net import is_loopback
from hil.sim.backend import SimVisaLibrary
from hil.sim.control import control
from hil.sim.device import Fault, SimDevice

log = logging.getLogger("hil.sim.server")

DEFAULT_PORT_BASE = 5025
DEFAULT_MAX_LINE = 64 * 1024
DEFAULT_IDLE_TIMEOUT = 600.0
DEFAULT_MAX_CLIENTS = 8
DEFAULT_DELAY_S = 10.0
DEFAULT_SPLIT_PAUSE_S = 0.02
#: How often an idle session looks at the stop flag, its idle time and its device's connection.
POLL_S = 0.1
#: A client silent this long may be dropped to make room for a new one at ``max_clients``.
EVICT_IDLE_S = 1.0
#: How long a send may block on a client that does not read.
SEND_TIMEOUT_S = 30.0
#: Linux's TCP_QUICKACK (re-armed after every read): without it a client that leaves Nagle on
#: (plain pyvisa-py) waits ~40 ms for the ACK of each command that has no reply.
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class ServerError(ValueError):
    """The server cannot start as asked (host, ports); the message says what to change."""


@dataclass
class Endpoint:
    """One served instrument."""

    index: int
    name: str  # the station's instrument name, else the profile's device name
    model: str  # the profile's device name (TSL570)
    slot: str | None  # the twin slot it is bound to
    resource: str  # its address in the lab file (canonical)
    device: SimDevice
    port: int = 0
    listener: socket.socket | None = None
    clients: set[socket.socket] = field(default_factory=set)
    #: Faults waiting for ``after`` more messages: [messages left, fault].
    pending: list[list[Any]] = field(default_factory=list)

    @property
    def write_termination(self) -> bytes:
        """What ends a client's message (the profile's query eom)."""
        return self.device._query_eom

    @property
    def read_termination(self) -> bytes:
        """What ends each reply (the profile's response eom)."""
        return self.device._response_eom


def visa_address(host: str, port: int) -> str:
    return f"TCPIP0::{host}::{port}::SOCKET"


class TwinServer:
    """Serves every device of a twin-coupled sim library on TCP; see the module docs.

    Use as a context manager, or :meth:`start` then :meth:`stop`. ``names`` maps lab resource
    names to the station's instrument names (for messages and the control port).
    """

    def __init__(self, library: SimVisaLibrary, *, names: Mapping[str, str] | None = None,
                 host: str = "127.0.0.1", port_base: int = DEFAULT_PORT_BASE,
                 control_port: int | None = None, allow_remote: bool = False,
                 max_line: int = DEFAULT_MAX_LINE, idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                 max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        if not is_loopback(host) and not allow_remote:
            raise ServerError(f"refusing to listen on {host}: not a loopback address; the twin "
                              f"server has no authentication. Pass --allow-remote to serve "
                              f"other machines on a network you trust")
        resources = library.devices.list_resources()
        if port_base and not 1024 < port_base <= 65536 - len(resources):
            raise ServerError(f"port base {port_base}: must be 0 (free ports) or in 1025.."
                              f"{65536 - len(resources)} ({len(resources)} instruments)")
        if control_port is None:
            control_port = port_base - 1 if port_base else 0
        if not 0 <= control_port <= 65535:
            raise ServerError(f"control port {control_port}: must be in 0..65535")
        if max_line < 64:
            raise ServerError(f"max line {max_line}: must be at least 64 bytes")
        self.library = library
        self.world = library.world
        self.host = host
        self.port_base = port_base
        self.control_host = host if is_loopback(host) else (
            "::1" if ":" in host else "127.0.0.1")
        self.control_port = control_port
        self.max_line = max_line
        self.idle_timeout = idle_timeout or None
        self.max_clients = max_clients
        self.lock = threading.Lock()  # around the twin world: one device exchange at a time
        names = dict(names or {})
        self.endpoints = [
            Endpoint(index=i, name=names.get(resource, library.devices[resource].name),
                     model=library.devices[resource].name,
                     slot=_slot_of(library.devices[resource]), resource=resource,
                     device=library.devices[resource], port=port_base + i if port_base else 0)
            for i, resource in enumerate(resources)]
        self._control_listener: socket.socket | None = None
        self._control_clients: set[socket.socket] = set()
        self._last_seen: dict[socket.socket, float] = {}  # client -> when it last sent
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._acceptor: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> TwinServer:
        """Listen on every port (all or none), then accept clients in background threads."""
        try:
            for ep in self.endpoints:
                ep.listener = self._listen(self.host, self.port_base + ep.index if self.port_base
                                           else 0, f"instrument {ep.name}")
                ep.port = ep.listener.getsockname()[1]
            self._control_listener = self._listen(self.control_host, self.control_port,
                                                  "the control port")
            self.control_port = self._control_listener.getsockname()[1]
        except BaseException:
            self._close_listeners()
            raise
        self._acceptor = threading.Thread(target=self._accept_loop, name="twin-accept",
                                          daemon=True)
        self._acceptor.start()
        for ep in self.endpoints:
            log.info("%s (%s) on %s", ep.name, ep.model, visa_address(self.host, ep.port))
        log.info("control on %s:%d", self.control_host, self.control_port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every listener and connection and wait for the session threads."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        self._close_listeners()
        for sock in [*self._control_clients, *(c for ep in self.endpoints for c in ep.clients)]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- what clients need to know ----------------------------------------------------------
    def table(self) -> dict[str, Any]:
        """Where everything is served (the ``--ports-file`` JSON); before :meth:`start`, where
        it will be (ports 0 with ``port_base=0``)."""
        return {
            "host": self.host,
            "pid": os.getpid(),
            "clock": self.clock_kind(),
            "control": {"host": self.control_host, "port": self.control_port,
                        "address": f"{self.control_host}:{self.control_port}"},
            "instruments": [
                {"name": ep.name, "model": ep.model, "slot": ep.slot, "lab_address": ep.resource,
                 "port": ep.port, "address": visa_address(self.host, ep.port),
                 "write_termination": ep.write_termination.decode(),
                 "read_termination": ep.read_termination.decode()}
                for ep in self.endpoints],
        }

    def clock_kind(self) -> str:
        clock = self.world.clock
        if isinstance(clock, VirtualClock):
            return "virtual"
        return f"real {getattr(clock, 'speed', 1.0)!r}"

    def endpoint(self, key: str) -> Endpoint:
        """An instrument by station name, lab address, served address or port."""
        for ep in self.endpoints:
            if key in (ep.name, str(ep.port), visa_address(self.host, ep.port)):
                return ep
        with contextlib.suppress(Exception):
            canonical = to_canonical_name(key)
            for ep in self.endpoints:
                if ep.resource == canonical:
                    return ep
        raise KeyError(f"no instrument {key!r}; instruments: "
                       f"{', '.join(ep.name for ep in self.endpoints)}")

    def inject(self, key: str, kind: str, *, count: int = 1, seconds: float | None = None,
               after: int = 0) -> None:
        """``library.inject`` on an instrument, now or after ``after`` more messages to it."""
        ep = self.endpoint(key)
        fault = Fault(kind, count=count, seconds=seconds)  # checks kind, count and seconds
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        with self.lock:
            if after:
                ep.pending.append([after, fault])
            else:
                self.library.inject(ep.resource, kind, count=count, seconds=seconds)
        if kind == "disconnect" and not after:
            self._drop_clients(ep)

    # --- sockets ----------------------------------------------------------------------------
    def _listen(self, host: str, port: int, what: str) -> socket.socket:
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}: {exc}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(16)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ServerError(f"cannot listen on {host}:{port} for {what}: "
                              f"{exc.strerror or exc}; is another `hil twin serve` running? "
                              f"Choose another --port-base (0 picks free ports)") from None
        return sock

    def _close_listeners(self) -> None:
        for sock in [ep.listener for ep in self.endpoints] + [self._control_listener]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            listeners: dict[int, socket.socket] = {}
            for sock, data in [(ep.listener, ep) for ep in self.endpoints] + [
                    (self._control_listener, None)]:
                if sock is None:
                    raise ServerError("the server is not listening; start() opens its sockets")
                listeners[sock.fileno()] = sock
                selector.register(sock, selectors.EVENT_READ, data)
            while not self._stopping.is_set():
                for key, _ in selector.select(POLL_S):
                    try:
                        conn, peer = listeners[key.fd].accept()
                    except OSError:
                        continue
                    try:
                        self._admit(conn, peer, key.data)
                    except Exception:  # never let one client stop the acceptor
                        log.exception("while accepting %s", peer)
                        with contextlib.suppress(OSError):
                            conn.close()

    def _admit(self, conn: socket.socket, peer: Any, ep: Endpoint | None) -> None:
        conn.settimeout(POLL_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        who = _peer_text(peer)
        if ep is not None and not ep.device.connected:
            log.info("%s: refused %s: the instrument is disconnected (injected fault)",
                     ep.name, who)
            conn.close()
            return
        clients = self._control_clients if ep is None else ep.clients
        if len(clients) >= self.max_clients and not self._evict_idle(clients, ep):
            log.warning("%s: refused %s: %d clients already, none idle", ep.name if ep else
                        "control", who, len(clients))
            conn.close()
            return
        self._last_seen[conn] = time.monotonic()
        clients.add(conn)
        target = self._control_session if ep is None else self._instrument_session
        thread = threading.Thread(target=self._session, args=(target, conn, who, ep),
                                  name=f"twin-{ep.name if ep else 'control'}-{who}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _evict_idle(self, clients: set[socket.socket], ep: Endpoint | None) -> bool:
        """Drop the client idle longest (at least EVICT_IDLE_S); False if all are busy."""
        now = time.monotonic()
        idle = [(self._last_seen.get(c, now), c) for c in clients
                if now - self._last_seen.get(c, now) >= EVICT_IDLE_S]
        if not idle:
            return False
        since, oldest = min(idle, key=lambda item: item[0])
        log.warning("%s: dropping a client idle for %.0f s to admit a new one",
                    ep.name if ep else "control", now - since)
        clients.discard(oldest)
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)  # its session sees the end and closes it
        return True

    def _session(self, target, conn: socket.socket, who: str, ep: Endpoint | None) -> None:
        what = ep.name if ep is not None else "control"
        log.info("%s: %s connected", what, who)
        why = "closed by the client"
        try:
            why = target(conn, ep) or why
        except Exception as exc:  # a bug here must cost this client only
            log.exception("%s: %s: internal error", what, who)
            why = f"dropped after an internal error: {exc}"
        finally:
            (self._control_clients if ep is None else ep.clients).discard(conn)
            self._last_seen.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.close()
            bad = "longer than" in why or "internal error" in why
            log.log(logging.WARNING if bad else logging.INFO, "%s: %s %s", what, who, why)
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _lines(self, conn: socket.socket, terminator: bytes, alive=lambda: None):
        """Yield each message a client sends (without its terminator); return why it ended.

        ``alive()`` returns a reason to drop the client, or None; it is asked between reads.
        """
        buffer = bytearray()
        last = time.monotonic()
        while True:
            if self._stopping.is_set():
                return "dropped: the server stops"
            reason = alive()
            if reason:
                return reason
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                if self.idle_timeout and time.monotonic() - last > self.idle_timeout:
                    return f"dropped: idle for more than {self.idle_timeout:g} s"
                continue
            except OSError as exc:
                return f"connection error: {exc.strerror or exc}"
            if _QUICKACK is not None:  # ack at once: a client with Nagle on waits for it
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            if not chunk:
                if buffer:
                    return f"closed by the client amid a message ({len(buffer)} bytes unterminated)"
                return alive() or "closed by the client"
            last = self._last_seen[conn] = time.monotonic()
            buffer += chunk
            start = 0
            while True:
                end = buffer.find(terminator, start)
                if end < 0 or end - start > self.max_line:
                    break
                yield bytes(buffer[start:end])
                start = end + len(terminator)
                reason = alive()
                if reason:
                    return reason
            del buffer[:start]
            if len(buffer) > self.max_line:
                return f"dropped: it sent a line longer than {self.max_line} bytes"

    # --- instrument sessions ------------------------------------------------------------------
    def _instrument_session(self, conn: socket.socket, ep: Endpoint) -> str | None:
        def alive() -> str | None:
            if not ep.device.connected:
                return "dropped: the instrument is disconnected (injected fault)"
            return None

        # LF ends a message wherever the profile's termination ends in LF (CR is white space).
        terminator = b"\n" if ep.write_termination.endswith(b"\n") else ep.write_termination
        lines = self._lines(conn, terminator, alive)
        while True:
            try:
                message = next(lines)
            except StopIteration as end:
                return end.value
            reply, fault = self._exchange(ep, message)
            if reply is None:
                return "dropped: the instrument is disconnected (injected fault)"
            if reply and not self._send(conn, reply, fault):
                return "dropped: the client does not read its replies"
            self._last_seen[conn] = time.monotonic()  # busy until its reply went out

    def _exchange(self, ep: Endpoint, message: bytes) -> tuple[bytes | None, Fault | None]:
        """One message through the device, atomically; None if the device is disconnected."""
        with self.lock:
            for entry in list(ep.pending):
                if entry[0] == 0:
                    ep.pending.remove(entry)
                    fault = entry[1]
                    self.library.inject(ep.resource, fault.kind, count=fault.count,
                                        seconds=fault.seconds)
                    log.info("%s: injected %s", ep.name, fault.kind)
                else:
                    entry[0] -= 1
            device = ep.device
            if not device.connected:
                return None, None
            try:
                device.write(message + ep.write_termination)
            except Exception as exc:  # e.g. bytes that are not UTF-8: an unknown command
                log.info("%s: %r: %s: answered as a command error", ep.name, message[:80], exc)
                response = device.error_response("command_error")
                if response is not None and response is not NoResponse:
                    device._output_buffers.append(bytearray(response) + ep.read_termination)
            log.debug("%s <- %r", ep.name, message[:200])
            return device.take_output(), device.take_wire_fault()

    def _send(self, conn: socket.socket, data: bytes, fault: Fault | None) -> bool:
        """Send a reply, as the wire fault says; False if the client cannot take it."""
        try:
            conn.settimeout(SEND_TIMEOUT_S)
            if fault is None:
                conn.sendall(data)
            elif fault.kind == "delay":
                seconds = DEFAULT_DELAY_S if fault.seconds is None else fault.seconds
                if self._stopping.wait(seconds):
                    return True
                conn.sendall(data)
            else:  # split: first byte, up to the middle, up to the last byte, the last byte
                pause = DEFAULT_SPLIT_PAUSE_S if fault.seconds is None else fault.seconds
                cuts = sorted({0, *(c for c in (1, len(data) // 2, len(data) - 1)
                                    if 0 < c < len(data)), len(data)})
                for i, (a, b) in enumerate(zip(cuts, cuts[1:])):  # noqa: B905
                    if i and self._stopping.wait(pause):
                        return True
                    conn.sendall(data[a:b])
            return True
        except OSError as exc:
            log.info("send failed: %s", exc.strerror or exc)
            return False
        finally:
            with contextlib.suppress(OSError):
                conn.settimeout(POLL_S)

    def _drop_clients(self, ep: Endpoint) -> None:
        for conn in list(ep.clients):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # --- the control port -----------------------------------------------------------------------
    def control(self, line: str) -> str:
        """Run one control command (see the module docs); returns the ``ok`` payload."""
        return control(self, line)

    def _control_session(self, conn: socket.socket, ep: None) -> str | None:
        lines = self._lines(conn, b"\n")
        while True:
            try:
                line = next(lines)
            except StopIteration as end:
                return end.value
            try:
                reply = "ok " + self.control(line.decode("ascii").strip())
            except (ValueError, KeyError, UnicodeDecodeError) as exc:
                reply = "error " + str(exc.args[0] if exc.args else exc).replace("\n", " ")
            if not self._send(conn, reply.rstrip().encode() + b"\n", None):
                return "dropped: the client does not read its replies"


def _slot_of(device: SimDevice) -> str | None:
    for prop in device._properties.values():
        binding = getattr(prop, "binding", None)
        if binding is not None:
            return binding.slot
    return None


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


# --- stations ---------------------------------------------------------------------------------
def station_names(data: Mapping[str, Any]) -> dict[str, str]:
    """Lab resource (canonical) -> the station's instrument name, for a station's YAML data."""
    names = {}
    for name, spec in (data.get("instruments") or {}).items():
        with contextlib.suppress(Exception):
            names[to_canonical_name(spec["address"])] = name
    return names


def tcp_station(data: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, Any]:
    """The station that reaches a served twin: ``data`` (a sim station's YAML) with each address
    replaced by the served one, through pyvisa-py, its waits on the served clock.

    Everything else (instruments' types, init and parameters, roles, constants, interlocks...) is
    kept; ``sim:`` and ``twin:`` are the server's business and dropped.
    """
    served = {to_canonical_name(row["lab_address"]): row["address"] for row in table["instruments"]}
    out: dict[str, Any] = {"visalib": "@py", "twin_server": {"control": table["control"]["address"]}}
    for key, value in data.items():
        if key in ("sim", "twin", "visalib", "twin_server"):
            continue
        if key == "instruments":
            value = {name: dict(spec) for name, spec in value.items()}
            for name, spec in value.items():
                try:
                    spec["address"] = served[to_canonical_name(spec["address"])]
                except (KeyError, ValueError):
                    raise ServerError(f"instruments.{name}: {spec.get('address')} is not served; "
                                      f"served: {', '.join(served)}") from None
        out[key] = value
    return out


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so a reader never sees half a file (tests poll for it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
