"""Case 6 (and issue 14 item 5): `then: resume` interlocks used to cycle forever, `give_up_s`
restarted at each trip, a release restored nothing of the heater's settings, and on the twin's
virtual clock the watcher polled in wall time, so readings were taken far above the limit.

Each test uses stations/twin.yaml with its own interlock; the expected trip counts and
temperatures follow from the interlock's own settings (max_trips, give_up_s, poll_s)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from faults_support import experiment, quiet, twin_station_file

from hil.clock import wait
from hil.runner import execute
from hil.safety import LATCHED_WAIT_S, RunInterlocked
from hil.store import open_run

LIMIT_K = 0.050


def meter_ceiling(**extra) -> list[dict]:
    """Trips when the pump's light reaches the through-port meter (pump on), clears when off."""
    return [{"name": "meter_overload", "watch": "powermeter.power", "above": 1e-7,
             "resume_below": 1e-8, "poll_s": 0.02, "action": {"safe_state": ["pump"]},
             "then": "resume", **extra}]


def heater_and_pump(lab, run):
    """Heater on, pump on off resonance, then readings of the meter: each one trips."""
    lab.cryostat.sample_heater.current_range(1e-3)
    lab.pump.wavelength(1549.9e-9)
    lab.pump.power(1e-3)
    lab.pump.enable_output()
    run.sweep("hold", lab.pump.power, [1e-3] * 4000, {"power_read": lab.meter.power})


def trips(record) -> list[str]:
    return [m for _, k, m in record.events if k == "interlock" and ": tripped;" in m]


def test_a_cycling_interlock_ends_the_run_after_max_trips_and_restores_the_heater(tmp_path):
    station = twin_station_file(tmp_path, interlocks=meter_ceiling(max_trips=2),
                                interlock_safe_state=["cryostat"])
    out = tmp_path / "c.h5"
    with pytest.raises(RunInterlocked, match=r"tripped 3 times \(max_trips 2\)"):
        execute(experiment(heater_and_pump), station, out, {}, console=quiet())
    record = open_run(out)
    assert record.status == "interlocked"
    assert len(trips(record)) == 3  # max_trips resumable trips, then the one that ends it
    # The station's interlock_safe_state adds the cryostat to the entry's [pump].
    assert "safe state applied to pump (laser), cryostat (fridge)" in trips(record)[0]
    releases = [m for _, k, m in record.events if k == "interlock" and "released" in m]
    assert releases and "fridge_sample_heater_current_range=0.001" in releases[0]
    assert "laser_output=True" in releases[0]


def test_give_up_s_counts_from_the_first_trip(tmp_path):
    """A latched run lets lab time pass (LATCHED_WAIT_S per wait) until the trip clears; with
    give_up_s three such waits, the run ends soon after them, long before max_trips (which
    it would never reach if give_up_s restarted at each trip, as it used to)."""
    give_up = 3 * LATCHED_WAIT_S - 1
    station = twin_station_file(tmp_path, interlocks=meter_ceiling(max_trips=1000,
                                                                   give_up_s=give_up))
    out = tmp_path / "g.h5"
    with pytest.raises(RunInterlocked, match="counted from the first trip"):
        execute(experiment(heater_and_pump), station, out, {}, console=quiet())
    record = open_run(out)
    assert record.status == "interlocked"
    # How many trips fit in those waits depends on the watcher thread's wall-clock scheduling
    # (over a hundred on a loaded machine); what matters is that give_up_s, not max_trips,
    # ended the run (the message above) and that it did not run on to max_trips.
    assert 2 <= len(trips(record)) < 1000


def test_on_the_virtual_clock_the_interlock_trips_at_the_crossing_not_after_the_wait(tmp_path):
    """Heater at 1.2 mW: the mixing chamber crosses 50 mK about 10 s into a 30 min settle. The
    interlock (poll_s 0.5 s of lab time) must trip within a poll of the crossing and end the
    run before the reading after the settle is recorded (which would be ~0.15 K)."""
    station = twin_station_file(tmp_path, interlocks=[
        {"name": "mxc_overheat", "watch": "fridge.mxc_temperature", "above": LIMIT_K,
         "poll_s": 0.5, "action": {"safe_state": ["pump"]}, "then": "end"}],
        interlock_safe_state=["cryostat"])

    def heat_and_settle(lab, run):
        lab.cryostat.sample_heater.current_range(3.16e-3)
        lab.cryostat.sample_heater.manual_output(100)
        wait(lab, 1800)
        run.sweep("after_settle", lab.pump.power, [1e-4],
                  {"mxc": lab.cryostat.mxc_temperature})

    out = tmp_path / "v.h5"
    with pytest.raises(RunInterlocked):
        execute(experiment(heat_and_settle), station, out, {}, console=quiet())
    record = open_run(out)
    (trip,) = trips(record)
    seen = float(re.search(r"mxc_temperature = ([0-9.e-]+) K", trip).group(1))
    # 50 mK plus at most one poll's worth of warming (~3.2 mK/s near the crossing: 0.5 s).
    assert LIMIT_K < seen < LIMIT_K + 0.003
    assert "after_settle" not in record.points or record.points["after_settle"] == 0
    assert "cryostat (fridge)" in trip  # the heater made safe too
    assert np.isfinite(seen)
