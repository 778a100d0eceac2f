"""Case 10: eight idle sockets on one instrument port locked every new client of that instrument
out for up to the 1 h idle timeout. Now a new client beyond max_clients replaces the client idle
longest, and the idle timeout defaults to 10 min. Real sockets on loopback."""

from __future__ import annotations

import socket
import time

from faults_support import serving

from hil.sim import server as server_module
from hil.sim.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CLIENTS


def ask(sock: socket.socket, query: bytes, ep) -> bytes:
    sock.sendall(query + ep.write_termination)
    data = b""
    while not data.endswith(ep.read_termination):
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_idle_sockets_do_not_lock_out_a_new_client(monkeypatch):
    monkeypatch.setattr(server_module, "EVICT_IDLE_S", 0.2)
    with serving() as (server, _):
        ep = server.endpoint("fridge")
        idle = [socket.create_connection(("127.0.0.1", ep.port), timeout=5)
                for _ in range(DEFAULT_MAX_CLIENTS)]
        try:
            deadline = time.monotonic() + 5
            while len(ep.clients) < DEFAULT_MAX_CLIENTS and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(ep.clients) == DEFAULT_MAX_CLIENTS
            # The last of them keeps talking; the first is idle longest.
            time.sleep(0.3)
            assert ask(idle[-1], b"*IDN?", ep).startswith(b"LSCI")
            with socket.create_connection(("127.0.0.1", ep.port), timeout=5) as new:
                assert ask(new, b"*IDN?", ep).startswith(b"LSCI")
            assert closed(idle[0])  # the one idle longest made room
            assert ask(idle[-1], b"*IDN?", ep).startswith(b"LSCI")
        finally:
            for sock in idle:
                sock.close()


def test_clients_that_all_talk_are_not_dropped_for_a_newcomer(monkeypatch):
    monkeypatch.setattr(server_module, "EVICT_IDLE_S", 60.0)
    with serving(max_clients=2) as (server, _):
        ep = server.endpoint("laser")
        busy = [socket.create_connection(("127.0.0.1", ep.port), timeout=5) for _ in range(2)]
        try:
            for sock in busy:
                assert ask(sock, b"*IDN?", ep).startswith(b"SANTEC")
            with socket.create_connection(("127.0.0.1", ep.port), timeout=5) as new:
                assert closed(new)  # refused: nobody is idle long enough to make room
            for sock in busy:
                assert ask(sock, b"*IDN?", ep).startswith(b"SANTEC")
        finally:
            for sock in busy:
                sock.close()


def test_the_idle_timeout_default_is_minutes_not_an_hour():
    assert DEFAULT_IDLE_TIMEOUT <= 600.0
