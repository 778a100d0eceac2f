"""Our drivers on a rack that misbehaves: what an earlier client left, late and garbled replies.

Faults come from the twin's injection, in process and over TCP (``hil twin serve``'s server in
a thread, reached through pyvisa-py). The guarantee under test: a value is recorded only from
the reply to its own query; a fault costs at most the exchange it hit.
"""

from __future__ import annotations

import pytest
import pyvisa
from click.testing import CliRunner
from pyvisa.errors import VisaIOError
from test_twin_server import TWIN, serving, station_for, tcp_lab

from hil.cli import main
from hil.station import load_lab
from instruments._scpi import StaleErrorWarning
from instruments.keysight_n5183b import KeysightN5183B
from instruments.lakeshore_372 import LakeShore372

MXG = "TCPIP0::192.168.1.60::inst0::INSTR"
FRIDGE = "TCPIP0::192.168.1.70::7777::SOCKET"


def earlier_client(manager: pyvisa.ResourceManager, address: str, command: str, eom: str) -> None:
    """Another script that sent a bad command and went away without reading the queue."""
    resource = manager.open_resource(address, write_termination=eom, read_termination=eom)
    resource.write(command)
    resource.close()


@pytest.fixture
def lab():
    lab = load_lab(TWIN)
    yield lab
    lab.close()


def test_an_earlier_clients_error_is_a_warning_at_connect_not_a_failure(lab) -> None:
    manager = pyvisa.ResourceManager(lab.mw_source.visa_handle.visalib)
    earlier_client(manager, MXG, "SOUR:POW 99", "\n")  # -222 left in the queue
    with pytest.warns(StaleErrorWarning, match=r'-222,"Data out of range"'):
        mw = KeysightN5183B("mw_again", resource=manager.open_resource(MXG))
    mw.power(-15)  # the stale error is not blamed on this set
    assert mw.power() == pytest.approx(-15)
    assert mw.ask("SYST:ERR?") == '+0,"No error"'


def test_lake_shore_event_bits_left_at_connect_are_a_warning(lab) -> None:
    manager = pyvisa.ResourceManager(lab.cryostat.visa_handle.visalib)
    earlier_client(manager, FRIDGE, "BOGUS 1", "\r\n")  # CME in *ESR?
    with pytest.warns(StaleErrorWarning, match=r"\*ESR\? was 32 \(command error\)"):
        fridge = LakeShore372("fridge_again", resource=manager.open_resource(FRIDGE))
    fridge.sample_heater.current_range(0.0)  # no error raised for the earlier client's command


@pytest.mark.parametrize("kind", ["timeout", "garbage"])
def test_a_lost_or_garbled_reply_costs_that_reading_only_in_process(lab, kind) -> None:
    lab.mw_source.timeout(0.2)
    lab.mw_source.frequency(6.0e9)
    lab.mw_source.visa_handle.visalib.inject(MXG, kind)
    with pytest.raises((VisaIOError, ValueError)):
        lab.mw_source.frequency.get()
    lab.mw_source.frequency(6.1e9)
    assert lab.mw_source.frequency.get() == pytest.approx(6.1e9)


@pytest.mark.parametrize("after", [0, 1], ids=["on-a-get", "on-a-set's-error-check"])
def test_a_reply_delayed_past_the_timeout_mid_sweep_is_never_recorded_as_the_next(
        tmp_path, after) -> None:
    with serving() as (server, twin), tcp_lab(server, twin, tmp_path) as lab:
        mw = lab.mw_source
        mw.timeout(0.3)
        setpoints = [6.0e9 + k * 10e6 for k in range(8)]
        recorded, lost = [], []
        for k, frequency in enumerate(setpoints):
            if k == 3:  # mid-sweep: the next reply comes 0.8 s late, past the 0.3 s timeout
                server.inject("mwsource", "delay", seconds=0.8, after=after)
            try:
                mw.frequency(frequency)
                mw.frequency.cache.invalidate()
                recorded.append((frequency, mw.frequency()))
            except (VisaIOError, RuntimeError) as exc:  # the point it hit, reported
                lost.append((frequency, exc))
        assert len(lost) == 1 and lost[0][0] == setpoints[3], lost
        assert [f for f, _ in recorded] == setpoints[:3] + setpoints[4:]
        for frequency, reading in recorded:  # each value is the answer to its own query
            assert reading == pytest.approx(frequency)
        assert twin.world.state("mw_source", "frequency_hz") == pytest.approx(setpoints[-1])


def test_a_garbled_reply_over_tcp_costs_that_reading_only(tmp_path) -> None:
    with serving() as (server, twin), tcp_lab(server, twin, tmp_path) as lab:
        lab.mw_source.frequency(7.0e9)
        server.inject("mwsource", "garbage")
        with pytest.raises(ValueError):
            lab.mw_source.frequency.get()
        lab.mw_source.frequency(7.2e9)
        assert lab.mw_source.frequency.get() == pytest.approx(7.2e9)


def test_hil_run_with_an_unreachable_instrument_is_one_error_line_and_exit_2(tmp_path) -> None:
    with serving() as (server, twin):
        station = station_for(server, twin, tmp_path)
        server.inject("laser", "disconnect")
        result = CliRunner().invoke(main, ["run", "cryostat_check", "--station", str(station),
                                           "--out", str(tmp_path / "run.h5")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert not (tmp_path / "run.h5").exists()


def test_hil_run_after_an_earlier_clients_error_goes_on(tmp_path) -> None:
    with serving() as (server, twin):
        station = station_for(server, twin, tmp_path)
        port = server.endpoint("mwsource").port
        earlier_client(pyvisa.ResourceManager("@py"), f"TCPIP0::127.0.0.1::{port}::SOCKET",
                       "SOUR:POW 99", "\n")
        result = CliRunner().invoke(main, ["run", "cryostat_check", "--station", str(station),
                                           "--out", str(tmp_path / "run.h5")])
    assert result.exit_code == 0, result.output
