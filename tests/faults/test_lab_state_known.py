"""Case 2: the lab's state is never unknown. A safe state that fails (a laser whose connection
dropped, a heater that does not switch off) is retried, then reported loudly: an `error:` line
naming the instrument and what may still be on, a non-zero exit, a `hil show` banner. `hil safe`
makes a station safe and reads it back; `hil show` on a killed run points to it."""

from __future__ import annotations

import signal
import time

import pytest
from click.testing import CliRunner
from faults_support import (
    TWIN,
    experiment,
    hil_child,
    quiet,
    serving,
    tcp_station_file,
)

import hil.experiment
from hil.cli import main
from hil.runner import execute
from hil.safety import SAFE_STATE_ATTEMPTS, UnsafeLab
from hil.station import load_lab
from hil.store import open_run


def stick_heater(library, resource: str) -> list[str]:
    """The fridge's sample heater relay stays closed: `RANGE 0,0` no longer switches it off."""
    prop = library.devices[resource]._properties["sample_heater_range"]
    original, refused = prop.set_value, []

    def set_value(value):
        if int(float(value)) == 0:
            refused.append(value)
            return
        original(value)

    prop.set_value = set_value
    return refused


def heat(lab, run):
    lab.cryostat.sample_heater.current_range(1e-3)


def test_a_heater_that_does_not_switch_off_is_retried_then_reported(tmp_path):
    out = tmp_path / "h.h5"
    holder: list = []

    def heat_with_a_stuck_relay(lab, run):
        handle = lab.cryostat.visa_handle
        holder.append(stick_heater(handle.visalib, handle.resource_name))
        heat(lab, run)

    with pytest.raises(UnsafeLab) as caught:
        execute(experiment(heat_with_a_stuck_relay), TWIN, out, {}, console=quiet())
    (failure,) = caught.value.failures
    assert failure.instrument == "fridge"
    assert "heaters" in failure.may_be_on
    assert "sample_heater_current_range=0.001 (set 0.0)" in failure.detail
    assert len(holder[0]) == SAFE_STATE_ATTEMPTS  # tried again before giving up
    record = open_run(out)
    safe_events = [m for _, k, m in record.events if k == "safe_state"]
    assert safe_events[-1].startswith("FAILED: fridge: heaters")
    assert "safe state did not hold" in record.traceback
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert "the safe state did not hold" in shown.output and "hil safe" in shown.output


def test_a_laser_dropped_late_over_tcp_is_an_error_line_and_exit_1(tmp_path, monkeypatch):
    """`inject laser disconnect` late in the run: the end's safe state cannot reach the laser."""
    def pump_then_lose_the_laser(lab, run):
        lab.pump.power(1e-3)
        lab.pump.enable_output()
        lab.world.inject("laser", "disconnect")

    exp = experiment(pump_then_lose_the_laser)
    monkeypatch.setattr(hil.experiment, "find", lambda name: exp)
    out = tmp_path / "l.h5"
    with serving() as (server, twin):
        station = tcp_station_file(server, twin, tmp_path)
        result = CliRunner().invoke(main, ["run", "x", "--station", str(station), "--out",
                                           str(out)])
        assert result.exit_code == 1, result.output
        assert ("error: LAB MAY BE LIVE: laser: laser light (diode output, shutter) may still "
                "be on") in result.stderr
        assert "hil safe" in result.stderr
        laser = twin.library.devices[server.endpoint("laser").resource]
        assert laser._properties["output"].get_value() in (1, "1", True)  # really still on
        # Back online: `hil safe` switches it off and reads it back.
        twin.library.reconnect(server.endpoint("laser").resource)
        made_safe = CliRunner().invoke(main, ["safe", "--station", str(station)])
        assert made_safe.exit_code == 0, made_safe.output
        assert "read back" in made_safe.output and "laser" in made_safe.output
        assert laser._properties["output"].get_value() in (0, "0", False)
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert "laser light" in shown.output and "hil safe" in shown.output


def test_hil_safe_reports_a_heater_that_stays_on(tmp_path):
    with serving() as (server, twin):
        station = tcp_station_file(server, twin, tmp_path)
        lab = load_lab(station)
        try:
            lab.cryostat.sample_heater.current_range(1e-3)
        finally:
            lab.close()
        stick_heater(twin.library, server.endpoint("fridge").resource)
        result = CliRunner().invoke(main, ["safe", "--station", str(station)])
    assert result.exit_code == 1
    assert "error: LAB MAY BE LIVE: fridge: heaters" in result.stderr
    assert "safe state applied and read back: laser" in result.output


def test_hil_show_on_a_killed_run_warns_that_instruments_may_be_live(tmp_path, optical):
    out = tmp_path / "k.h5"
    child = hil_child("run", "optical_resonance", "--station", str(optical), "--out", str(out),
                      "--set", "optical_resonance.search_span_m=4e-9")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if open_run(out).points.get("optical_resonance_search", 0) > 100:
                    break
            except Exception:  # not created yet
                pass
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "instruments may be live" in shown.output
    assert f"hil safe --station {optical}" in shown.output
