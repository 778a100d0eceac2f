"""The twin served over TCP (``hil twin serve``): bytes on the wire, faults on the wire, bad
clients, and the chain through pyvisa-py in another process against the chain in-process.

Every server here listens on loopback on free ports and is stopped by the test that started it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from qcodes.instrument import Instrument

from hil.cli import main
from hil.clock import RealClock
from hil.sim.remote import RemoteTwin, TwinServerError
from hil.sim.server import Endpoint, ServerError, TwinServer, station_names, tcp_station
from hil.station import SimTwin, StationError, load_lab, open_twin
from hil.store import open_run, summary
from hil.twin.params import TwinParams

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "stations" / "twin.yaml"
TWIN_TCP = ROOT / "stations" / "twin-tcp.yaml"
SERVER_LOG = "hil.sim.server"


# --- helpers ----------------------------------------------------------------------------------
@contextmanager
def serving(**options) -> Iterator[tuple[TwinServer, SimTwin]]:
    """stations/twin.yaml's twin served from a thread of this process, on free ports."""
    twin = open_twin(TWIN)
    options.setdefault("port_base", 0)
    with TwinServer(twin.library, names=station_names(twin.data), **options) as server:
        yield server, twin


@pytest.fixture
def served() -> Iterator[tuple[TwinServer, SimTwin]]:
    with serving() as pair:
        yield pair


def station_for(server: TwinServer, twin: SimTwin, folder: Path) -> Path:
    path = folder / "tcp.yaml"
    path.write_text(yaml.safe_dump(tcp_station(twin.data, server.table()), sort_keys=False))
    return path


@contextmanager
def tcp_lab(server: TwinServer, twin: SimTwin, folder: Path):
    lab = load_lab(station_for(server, twin, folder))
    try:
        yield lab
    finally:
        lab.close()


def connect(server: TwinServer, name: str) -> tuple[socket.socket, Endpoint]:
    ep = server.endpoint(name)
    sock = socket.create_connection(("127.0.0.1", ep.port), timeout=5)
    return sock, ep


def read_reply(sock: socket.socket, ep: Endpoint, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(ep.read_termination):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data[: -len(ep.read_termination)]


def ask(sock: socket.socket, ep: Endpoint, message: bytes) -> bytes:
    sock.sendall(message + ep.write_termination)
    return read_reply(sock, ep)


def closed_by_server(sock: socket.socket, timeout: float = 3.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def in_process_reply(resource: str, message: bytes) -> bytes:
    """What the same device answers in-process (a fresh twin of the same station)."""
    device = open_twin(TWIN).library.device(resource)
    device.write(message + device._query_eom)
    return device.take_output()


def free_port_base(count: int) -> int:
    """A base with ``count`` free ports above it and one below (for the control port)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base - 1 <= 1024 or base + count > 65535:
            continue
        free = True
        for port in range(base - 1, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return base
    pytest.skip("no run of free loopback ports found")


# --- the wire ---------------------------------------------------------------------------------
def test_each_instrument_answers_on_its_port_with_its_profile_terminations(served) -> None:
    server, _ = served
    table = {row["name"]: row for row in server.table()["instruments"]}
    assert list(table) == ["laser", "powermeter", "monitor", "mwsource", "fridge", "vna", "esa",
                           "bias"]
    assert (table["laser"]["write_termination"], table["laser"]["read_termination"]) == ("\r", "\r")
    assert table["fridge"]["read_termination"] == "\r\n"
    assert table["vna"]["read_termination"] == "\n"
    for name, row in table.items():
        assert row["address"] == f"TCPIP0::127.0.0.1::{row['port']}::SOCKET"
        sock, ep = connect(server, name)
        with sock:
            sock.sendall(b"*IDN?" + ep.write_termination)
            raw = b""
            while not raw.endswith(ep.read_termination):
                raw += sock.recv(4096)
        # Byte for byte what the device answers in-process, termination included.
        assert raw == in_process_reply(row["lab_address"], b"*IDN?"), name
    assert raw.startswith(b"KEITHLEY INSTRUMENTS INC.,MODEL 2450")  # the last one served


def test_ports_follow_the_lab_file_from_the_port_base_and_control_sits_below() -> None:
    base = free_port_base(8)
    with serving(port_base=base) as (server, _):
        table = server.table()
        assert [row["port"] for row in table["instruments"]] == list(range(base, base + 8))
        assert table["control"] == {"host": "127.0.0.1", "port": base - 1,
                                    "address": f"127.0.0.1:{base - 1}"}
        # A second server on the same ports is refused with a message naming the port.
        with pytest.raises(ServerError, match=f"127.0.0.1:{base}.*--port-base"), serving(
                port_base=base):
            pass


def test_tcp_station_file_is_twin_yaml_on_the_default_ports() -> None:
    """stations/twin-tcp.yaml is what `hil twin serve --write-station` writes for port 5025."""
    twin = open_twin(TWIN)
    server = TwinServer(twin.library, names=station_names(twin.data))  # not started: the plan
    expected = tcp_station(twin.data, server.table())
    assert yaml.safe_load(TWIN_TCP.read_text()) == expected
    assert expected["instruments"]["laser"]["address"] == "TCPIP0::127.0.0.1::5025::SOCKET"
    assert expected["instruments"]["esa"]["address"] == "TCPIP0::127.0.0.1::5031::SOCKET"


def test_a_binary_block_trace_crosses_the_wire_byte_exact(served, tmp_path) -> None:
    """REAL,64 blocks hold 0x0A bytes; pyvisa-py reads the announced length, as in-process."""
    server, twin = served
    local = load_lab(TWIN)
    try:
        local.vna.points(401)
        local.vna.data_format("real64")
        local.vna.run_sweep()
        expected = local.vna.fetch_trace()
    finally:
        local.close()
    Instrument.close_all()
    with tcp_lab(server, twin, tmp_path) as lab:
        assert lab.vna.visabackend == "py"
        lab.vna.points(401)
        lab.vna.data_format("real64")
        lab.vna.run_sweep()
        trace = lab.vna.fetch_trace()
    assert trace.size == expected.size == 401
    np.testing.assert_array_equal(trace, expected)
    assert b"\n" in expected.view(np.float64).tobytes()  # so the block must be read by length


# --- faults on the wire -------------------------------------------------------------------------
def test_a_reply_split_across_packets_is_reassembled(served, tmp_path) -> None:
    server, twin = served
    with tcp_lab(server, twin, tmp_path) as lab:
        lab.vna.data_format("real32")
        lab.vna.run_sweep()
        power = lab.meter.power()
        server.inject("vna", "split", seconds=0.1)
        server.inject("powermeter", "split", seconds=0.1)
        start = time.monotonic()
        trace = lab.vna.fetch_trace()  # a binary block in four packets
        again = lab.meter.power()  # ASCII, the termination alone in the last packet
        elapsed = time.monotonic() - start
        assert elapsed >= 6 * 0.1  # three pauses per reply: the packets did come apart
        assert trace.size == lab.vna.points() and np.all(np.isfinite(trace))
        assert again == pytest.approx(power, rel=0.05)
        assert not server.endpoint("vna").device.wire_faults


def test_a_reply_delayed_past_the_timeout_is_a_timeout_and_a_device_clear_recovers(
        served, tmp_path) -> None:
    server, twin = served
    with tcp_lab(server, twin, tmp_path) as lab:
        lab.meter.timeout(0.3)
        server.inject("powermeter", "delay", seconds=1.5)
        start = time.monotonic()
        with pytest.raises(VisaIOError) as caught:
            lab.meter.power()
        assert caught.value.error_code == StatusCode.error_timeout
        assert 0.25 < time.monotonic() - start < 1.5
        # The late reply still comes, as from a real instrument; a device clear drains it
        # (without it, the next query would read that stale reply).
        time.sleep(1.5)
        lab.meter.device_clear()
        assert lab.meter.power() >= 0


def test_a_garbage_reply_is_a_parse_error_and_the_next_reading_is_sound(served, tmp_path) -> None:
    server, twin = served
    with tcp_lab(server, twin, tmp_path) as lab:
        server.inject("powermeter", "garbage")
        with pytest.raises(ValueError):
            lab.meter.power()
        assert lab.meter.power() >= 0


def test_a_dropped_connection_is_a_lost_connection_at_once_not_a_timeout(served, tmp_path) -> None:
    server, twin = served
    with tcp_lab(server, twin, tmp_path) as lab:
        assert lab.cryostat.timeout() >= 5
        lab.cryostat.mxc_temperature()
        twin.library.inject(server.endpoint("fridge").resource, "disconnect")  # the plain API
        start = time.monotonic()
        with pytest.raises(VisaIOError) as caught:
            lab.cryostat.mxc_temperature()
        assert caught.value.error_code == StatusCode.error_connection_lost
        assert time.monotonic() - start < 1.0
        with pytest.raises(VisaIOError) as caught:
            lab.cryostat.mxc_temperature()
        assert caught.value.error_code == StatusCode.error_connection_lost
        # Other instruments are untouched.
        assert lab.meter.power() >= 0
    # While disconnected the instrument refuses new connections; after reconnect it answers.
    sock, ep = connect(server, "fridge")
    with sock:
        assert closed_by_server(sock)
    server.control("reconnect fridge")
    sock, ep = connect(server, "fridge")
    with sock:
        assert ask(sock, ep, b"*IDN?").startswith(b"LSCI,MODEL372")


def test_faults_can_be_injected_through_the_control_port(served, tmp_path) -> None:
    server, twin = served
    with tcp_lab(server, twin, tmp_path) as lab:
        remote = lab.world
        assert isinstance(remote, RemoteTwin) and remote.clock.virtual
        before = remote.clock.now()
        remote.clock.sleep(600.0)  # ten minutes of fridge time, no wall time
        assert remote.clock.now() == before + 600.0 == twin.world.clock.now()
        remote.inject("powermeter", "garbage", after=2)  # two messages pass first
        assert lab.meter.power() >= 0 and lab.meter.power() >= 0
        with pytest.raises(ValueError):
            lab.meter.power()
        assert lab.meter.power() >= 0
        with pytest.raises(TwinServerError, match="unknown fault 'melt'"):
            remote.inject("powermeter", "melt")
        with pytest.raises(TwinServerError, match="no instrument 'toaster'.*laser, powermeter"):
            remote.inject("toaster", "garbage")


def test_a_real_clock_passes_by_itself_and_the_client_waits_on_the_wall() -> None:
    twin = open_twin(TWIN, clock=RealClock(speed=100.0))
    with TwinServer(twin.library, port_base=0) as server:
        remote = RemoteTwin(server.control_host, server.control_port)
        try:
            assert not remote.clock.virtual and remote.clock.speed == 100.0
            before, wall = remote.clock.now(), time.monotonic()
            remote.clock.sleep(20.0)  # 0.2 s of wall time at 100x
            assert 0.15 < time.monotonic() - wall < 2.0
            assert remote.clock.now() - before >= 20.0
            with pytest.raises(TwinServerError, match="the twin's clock is real"):
                remote.control.request("sleep 1")
        finally:
            remote.close()


def test_wire_faults_leave_an_in_process_reply_whole() -> None:
    library = open_twin(TWIN).library
    resource = "TCPIP0::192.168.1.50::5000::SOCKET"
    device = library.device(resource)
    for kind in ("delay", "split"):
        library.inject(resource, kind, seconds=0.5)
        device.write(b"*IDN?\r")
        assert device.take_output() == b"SANTEC,TSL-570,21020001,0001.0000.0001\r"
        assert device.take_wire_fault().kind == kind  # for a server, if one serves it
    assert device.take_wire_fault() is None and not device.faults


def test_a_run_interrupted_by_a_dropped_connection_ends_failed_with_data_and_safe_states(
        served, tmp_path) -> None:
    server, twin = served
    station = station_for(server, twin, tmp_path)
    out = tmp_path / "run.h5"
    server.inject("powermeter", "disconnect", after=400)  # mid-way through the coarse search
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(station),
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "run failed" in result.output and "VI_ERROR_CONN_LOST" in result.output
    record = open_run(out)
    assert record.status == "failed"
    assert "VI_ERROR_CONN_LOST" in record.traceback
    # Every point taken before the drop is on disk, complete and on the planned grid.
    step = record.steps["optical_resonance_search"]
    taken = record.points["optical_resonance_search"]
    assert 100 < taken < record.planned["optical_resonance_search"]
    power = next(v for k, v in step.data_vars.items() if "power" in k)
    assert np.all(np.isfinite(power.values[:taken]))
    # Safe states were applied to whatever could still be reached: the laser is off in the
    # served twin, and the power meter's failure is recorded.
    safe = [message for _, kind, message in record.events if kind == "safe_state"]
    assert safe and "powermeter" in safe[-1] and "laser" not in safe[-1]
    assert twin.world.state("pump_laser", "output") == 0.0
    assert twin.world.state("pump_laser", "shutter_closed") == 1.0


# --- bad clients --------------------------------------------------------------------------------
def test_garbage_bytes_are_an_unknown_command_and_the_session_goes_on(served) -> None:
    server, _ = served
    sock, ep = connect(server, "mwsource")
    with sock:
        sock.sendall(b"\x00\xff\xfe\x80garbage?\n:::;;;\n\xc3(\xc3(?\n")
        assert ask(sock, ep, b"*IDN?").startswith(b"Keysight Technologies,N5183B")
        # The instrument queued command errors, as a real one does.
        errors = [ask(sock, ep, b"SYST:ERR?") for _ in range(12)]
        assert errors[0] != b'+0,"No error"' and errors[-1] == b'+0,"No error"'


def test_an_over_long_line_drops_that_client_only(caplog) -> None:
    caplog.set_level(logging.INFO, logger=SERVER_LOG)
    with serving(max_line=1024) as (server, _):
        bystander, ep = connect(server, "laser")
        with bystander:
            assert ask(bystander, ep, b"*IDN?").startswith(b"SANTEC")
            rogue, _ = connect(server, "laser")
            with rogue:
                with contextlib.suppress(OSError):
                    rogue.sendall(b"A" * 4096)
                assert closed_by_server(rogue)
            assert ask(bystander, ep, b"*IDN?").startswith(b"SANTEC")
            # A terminated line over the limit is refused as well.
            rogue, _ = connect(server, "laser")
            with rogue:
                with contextlib.suppress(OSError):
                    rogue.sendall(b":WAV " + b"9" * 2000 + b"\r")
                assert closed_by_server(rogue)
            assert ask(bystander, ep, b"*IDN?").startswith(b"SANTEC")
    dropped = [r for r in caplog.records if "longer than 1024 bytes" in r.getMessage()]
    assert len(dropped) == 2 and all(r.levelno == logging.WARNING for r in dropped)
    assert all(r.getMessage().startswith("laser: 127.0.0.1:") for r in dropped)


def test_abrupt_clients_do_not_disturb_the_server(served) -> None:
    server, _ = served
    for _ in range(20):
        socket.create_connection(("127.0.0.1", server.endpoint("esa").port)).close()
    half, ep = connect(server, "esa")
    half.sendall(b"*ID")  # half a message, then gone
    half.close()
    reset, _ = connect(server, "esa")
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset.sendall(b"*IDN?\n")
    reset.close()  # RST, perhaps while the reply is on its way
    gone, _ = connect(server, "vna")
    gone.sendall(b"CALC:MEAS:DATA:SDAT?\n" * 50)  # replies nobody reads
    gone.close()
    sock, ep = connect(server, "esa")
    with sock:
        assert ask(sock, ep, b"*IDN?").startswith(b"Keysight Technologies,N9030B")
    assert server.control("ping") == "pong"


def test_two_clients_at_once_never_interleave_inside_an_exchange(served) -> None:
    server, _ = served
    expected = {}
    for name, query in (("laser", b"*IDN?"), ("laser", b":WAV?"), ("monitor", b"*IDN?")):
        sock, ep = connect(server, name)
        with sock:
            expected[name, query] = ask(sock, ep, query)
    failures: list[str] = []

    def client(name: str, query: bytes) -> None:
        sock, ep = connect(server, name)
        with sock:
            for i in range(300):
                reply = ask(sock, ep, query)
                if reply != expected[name, query]:
                    failures.append(f"{name} {query!r} #{i}: {reply!r}")
                    return

    def clock() -> None:
        for _ in range(300):
            server.control("sleep 0.001")

    threads = [threading.Thread(target=client, args=key) for key in expected]
    threads.append(threading.Thread(target=clock))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert not any(t.is_alive() for t in threads)


def test_an_idle_client_is_dropped(caplog) -> None:
    caplog.set_level(logging.INFO, logger=SERVER_LOG)
    with serving(idle_timeout=0.3) as (server, _):
        sock, ep = connect(server, "fridge")
        with sock:
            assert ask(sock, ep, b"*IDN?").startswith(b"LSCI")
            assert closed_by_server(sock, timeout=3.0)
    assert "idle for more than 0.3 s" in caplog.text


def test_the_control_port_answers_bad_commands_with_errors(served) -> None:
    server, _ = served
    host, port = server.control_host, server.control_port
    with socket.create_connection((host, port), timeout=5) as sock:
        replies = []
        for line in (b"now", b"ping", b"frobnicate", b"inject", b"inject laser timeout 0", b"sleep -1",
                     b"\xff\xfe", b"", b"inject laser delay 1 seconds=abc", b"now"):
            sock.sendall(line + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                data += sock.recv(4096)
            replies.append(data.decode().strip())
    start, replies = replies[0], replies[1:]
    assert start.startswith("ok ")
    assert replies[0] == "ok pong"
    assert replies[1].startswith("error unknown command 'frobnicate'")
    assert all(r.startswith("error ") for r in replies[2:8]), replies
    assert "count must be >= 1" in replies[3]
    assert replies[-1] == start  # no refused command moved the lab's clock
    assert server.table()["control"]["host"] == "127.0.0.1"


def test_a_host_that_is_not_loopback_is_refused_without_allow_remote() -> None:
    twin = open_twin(TWIN)
    with pytest.raises(ServerError, match="refusing to listen on 0.0.0.0.*--allow-remote"):
        TwinServer(twin.library, host="0.0.0.0")
    allowed = TwinServer(twin.library, host="0.0.0.0", allow_remote=True)  # not started
    assert allowed.control_host == "127.0.0.1"  # the control port stays on loopback
    result = CliRunner().invoke(main, ["twin", "serve", "--host", "0.0.0.0", "--port-base", "0"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    result = CliRunner().invoke(main, ["twin", "serve", "--station", str(TWIN_TCP)])
    assert result.exit_code == 2 and "has no 'sim:' section" in result.output


# --- stations -----------------------------------------------------------------------------------
def test_station_errors_name_the_key(tmp_path) -> None:
    data = yaml.safe_load(TWIN.read_text())

    def load(**changes) -> str:
        station = {**data, **changes}
        for key in [k for k, v in changes.items() if v is None]:
            del station[key]
        path = tmp_path / "station.yaml"
        path.write_text(yaml.safe_dump(station))
        with pytest.raises(StationError) as caught:
            load_lab(path)
        return str(caught.value)

    assert "visalib: cannot go with 'sim:'" in load(visalib="@py")
    tcp = yaml.safe_load(TWIN_TCP.read_text())
    path = tmp_path / "tcp.yaml"
    for change, message in (({"visalib": 5}, "visalib: must be a VISA library spec"),
                            ({"visalib": None}, "twin_server: needs visalib"),
                            ({"twin_server": {"control": "nowhere"}}, "must be HOST:PORT"),
                            ({"twin_server": "127.0.0.1:1"}, "must be {control: HOST:PORT}"),
                            ({"twin_server": {"control": "127.0.0.1:1"}},
                             "twin_server.control.*refused.*is `hil twin serve` running")):
        station = {**tcp, **change}
        station = {k: v for k, v in station.items() if v is not None}
        path.write_text(yaml.safe_dump(station))
        with pytest.raises(StationError, match=message):
            load_lab(path)
    # No server on the instruments' ports: one clear line, no traceback, exit 2.
    station = {k: v for k, v in tcp.items() if k != "twin_server"}
    station["instruments"] = {**tcp["instruments"]}
    station["instruments"]["laser"] = {**tcp["instruments"]["laser"],
                                       "address": "TCPIP0::127.0.0.1::1::SOCKET"}
    path.write_text(yaml.safe_dump(station, sort_keys=False))
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(path),
                                       "--out", str(tmp_path / "never.h5")])
    assert result.exit_code == 2, result.output
    assert "instruments.laser.address: cannot open TCPIP0::127.0.0.1::1::SOCKET" in result.output
    assert "Connection refused" in result.output
    assert not (tmp_path / "never.h5").exists()


# --- the whole chain, server in another process ----------------------------------------------------
def test_the_chain_through_a_served_twin_equals_the_chain_in_process(tmp_path) -> None:
    """`hil twin serve` in a subprocess, `hil run chain` through pyvisa-py against it.

    Same station, same seed, same commands in the same order: the noise is drawn in the same
    order, so the results are equal to the last bit, except those computed from the mixing-
    chamber thermometer (cryostat_check, fridge_load, added_noise's mxc_temperature_k). The
    station's interlock polls that thermometer every 0.5 s of wall time, from its own thread, so
    where its draws fall among the experiment's differs from run to run, in-process too: those
    agree within their noise (5 standard errors; a reading without one within 3x the
    thermometer's scatter; the scatter itself within half).
    """
    ports, written = tmp_path / "ports.json", tmp_path / "served.yaml"
    server = subprocess.Popen(
        [sys.executable, "-c", "from hil.cli import main; main()", "twin", "serve",
         "--station", str(TWIN), "--port-base", "0", "--ports-file", str(ports),
         "--write-station", str(written)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not ports.exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.1)
        table = json.loads(ports.read_text())
        assert [row["name"] for row in table["instruments"]][:2] == ["laser", "powermeter"]
        served_out = tmp_path / "served" / "chain.h5"
        served_out.parent.mkdir()
        start = time.monotonic()
        result = CliRunner().invoke(main, ["run", "chain", "--station", str(written),
                                           "--out", str(served_out)])
        served_s = time.monotonic() - start
        assert result.exit_code == 0, result.output
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            stdout, stderr = server.communicate()
    assert server.returncode == 0, stderr
    for row in table["instruments"]:  # printed once listening, with name and model
        assert f"{row['name']:<12} {row['model']:<8} {row['address']}" in stdout
    assert stdout.rstrip().endswith("stopped")
    assert not ports.exists()

    local_out = tmp_path / "local" / "chain.h5"
    local_out.parent.mkdir()
    start = time.monotonic()
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(TWIN), "--out",
                                       str(local_out)])
    local_s = time.monotonic() - start
    assert result.exit_code == 0, result.output
    print(f"chain: in-process {local_s:.1f} s, over TCP {served_s:.1f} s")

    local, served = summary(local_out), summary(served_out)
    assert served["status"] == local["status"] == "completed"
    assert list(served["steps"]) == list(local["steps"])
    thermometer_rel = TwinParams().noise.thermometer_rel
    thermometer = {"cryostat_check", "fridge_load", "fridge_load_probe",
                   ("added_noise", "mxc_temperature_k"), ("line_noise", "mxc_temperature_k"),
                   ("line_noise", "n_th_mxc")}
    exact = 0
    for step, want in local["steps"].items():
        got = served["steps"][step]
        assert got["points"] == want["points"], step
        assert list(got["results"]) == list(want["results"]), step
        for name, result in want["results"].items():
            value = got["results"][name]["value"]
            if step in thermometer or (step, name) in thermometer:
                if step == "fridge_load":
                    # Its heater ladder is scaled from a probe reading, so the two runs heat
                    # the fridge at different powers: equal within the fit's model, not its noise.
                    assert value == pytest.approx(result["value"], rel=0.005), (step, name)
                elif result["stderr"] is not None:
                    assert abs(value - result["value"]) <= 5 * result["stderr"], (step, name)
                elif name == "stability_k":
                    assert value == pytest.approx(result["value"], rel=0.5)
                else:
                    assert value == pytest.approx(result["value"], rel=3 * thermometer_rel)
                continue
            assert got["results"][name] == result, (step, name)
            exact += 1
    assert exact >= 48
