"""Safety (DESIGN.md): limits refuse before any byte is sent, serialized instrument access,
interlocks that trip within a poll period, latch with hysteresis, and resume or end the run."""

from __future__ import annotations

import io
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from qcodes.instrument import Instrument
from rich.console import Console
from station_support import OPTICAL_STATION

from hil.cli import main
from hil.experiment import Experiment
from hil.runner import RunInterlocked, execute, snapshot_value
from hil.safety import InstrumentGuard, RunAborted, parse_interlocks
from hil.station import StationError, load_lab, read_station_file
from hil.store import open_run
from instruments.santec_tsl570 import dbm_to_w

ROOT = Path(__file__).resolve().parent.parent


TOY_FRIDGE = '''
from qcodes.instrument import Instrument


class ToyFridge(Instrument):
    """A mixing-chamber thermometer whose temperature the test sets."""

    def __init__(self, name, address, **kwargs):
        super().__init__(name, **kwargs)
        self.mxc_temperature = self.add_parameter(
            "mxc_temperature", unit="K", label="MXC temperature", set_cmd=None,
            initial_value=0.010)
'''


@pytest.fixture
def toy_fridge(tmp_path, monkeypatch) -> str:
    """An importable module with a fake fridge (no VISA): returns its type for a station."""
    (tmp_path / "toy_fridge_mod.py").write_text(TOY_FRIDGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "toy_fridge_mod.ToyFridge"


def fridge_station(tmp_path: Path, fridge_type: str, laser_visalib: str, **interlock) -> Path:
    spec = {"name": "mxc_overheat", "watch": "fridge.mxc_temperature", "above": 0.050,
            "resume_below": 0.030, "poll_s": 0.05, "then": "resume", **interlock}
    lines = "\n".join(f"    {k}: {v}" for k, v in spec.items())
    station = tmp_path / "fridge.yaml"
    station.write_text(textwrap.dedent(f"""\
        instruments:
          laser:
            type: instruments.santec_tsl570.SantecTSL570
            address: TCPIP0::192.168.1.50::5000::SOCKET
            init: {{visalib: "{laser_visalib}"}}
          fridge:
            type: {fridge_type}
            address: toy
        roles:
          pump: laser
        interlocks:
          - action: {{safe_state: [pump]}}
        """) + lines + "\n")
    return station


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- station limits ----------------------------------------------------------------------------


def test_a_value_outside_the_station_limits_is_refused_before_any_byte_is_sent(optical):
    lab = load_lab(optical)  # laser power_dbm limits: [-15, 10] inside the driver's [-15, 13]
    try:
        laser = lab.pump
        sent: list[str] = []
        original = laser.visa_handle.write

        def spy(message, *args, **kwargs):
            sent.append(message)
            return original(message, *args, **kwargs)

        laser.visa_handle.write = spy
        with pytest.raises(ValueError, match=r"12.*-15.*10"):
            laser.power_dbm.set(12)
        with pytest.raises(ValueError, match=r"-15.*10"):
            laser.power.set(dbm_to_w(11))  # the W parameter goes through power_dbm's limits
        assert sent == []
        laser.power_dbm.set(9.5)  # inside: sent, then the error queue is read
        assert sent == [":POW 9.50", ":SYST:ERR?"]
    finally:
        lab.close()


def test_limits_never_widen_the_driver_range(tmp_path):
    station = tmp_path / "wide.yaml"
    station.write_text(OPTICAL_STATION.replace("limits: [-15, 10]", "limits: [-20, 10]"))
    with pytest.raises(StationError, match=r"widens the driver's range \[-15.0, 13.0\] dBm"):
        load_lab(station)


# -- interlock configuration ----------------------------------------------------------------


BASE = {"name": "hot", "watch": "fridge.t", "above": 0.05, "action": {"safe_state": ["pump"]}}


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": 1}, "unknown key(s) colour"),
    ({"watch": "fridge"}, "watch: required, INSTRUMENT.PARAMETER"),
    ({"watch": "oven.t"}, "no instrument named 'oven'"),
    ({"below": 0.01}, "exactly one of 'above'"),
    ({"resume_below": 0.06}, "resume_below: 0.06 must not be above the trip threshold"),
    ({"resume_above": 0.06}, "a ceiling ('above') releases with 'resume_below'"),
    ({"poll_s": 0}, "poll_s: must be > 0 s"),
    ({"action": {"safe_state": ["probe"]}}, "no role 'probe'"),
    ({"then": "panic"}, "then: must be 'resume' or 'end'"),
    ({"above": "hot"}, "above: must be a number"),
])
def test_interlock_mistakes_are_refused_with_the_key(change, message):
    with pytest.raises(ValueError, match=None) as info:
        parse_interlocks([{**BASE, **change}], where="lab.yaml",
                         instruments={"fridge": {}}, roles={"pump": "laser"})
    assert message in str(info.value)
    assert "lab.yaml: interlocks" in str(info.value)


def test_a_floor_mirrors_a_ceiling():
    floor = {"name": "flow", "watch": "fridge.t", "below": 1.0, "resume_above": 2.0,
             "action": {"safe_state": ["pump"]}}
    (spec,) = parse_interlocks([floor], where="x", instruments={"fridge": {}},
                               roles={"pump": "l"})
    assert spec.trips(0.5) and not spec.trips(1.5)
    assert not spec.clears(1.5) and spec.clears(2.5)
    assert spec.then == "end" and spec.poll_s == 0.5  # the defaults


def test_a_station_with_an_unknown_watched_parameter_is_refused(tmp_path, toy_fridge,
                                                                profile_copy):
    station = fridge_station(tmp_path, toy_fridge, profile_copy("santec_tsl570.yaml"))
    station.write_text(station.read_text().replace("fridge.mxc_temperature",
                                                   "fridge.still_temperature"))
    read_station_file(station)  # the structure is fine ...
    with pytest.raises(StationError, match="fridge has no readable parameter "
                                           "'still_temperature'"):
        load_lab(station)  # ... but the instrument has no such parameter


# -- serialized access ---------------------------------------------------------------------


class Fake(Instrument):
    """Counts how many threads are inside ask_raw at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.inside = 0
        self.most = 0
        self.sent: list[str] = []

    def ask_raw(self, cmd: str) -> str:
        self.inside += 1
        self.most = max(self.most, self.inside)
        self.sent.append(cmd)
        time.sleep(0.001)
        self.inside -= 1
        return "1"

    def write_raw(self, cmd: str) -> None:
        self.sent.append(cmd)


def test_the_guard_serializes_threads_and_stops_the_experiment_thread():
    fake = Fake("fake")
    guard = InstrumentGuard({"fake": fake})
    with guard.installed():
        threads = [threading.Thread(target=lambda: [fake.ask("X?") for _ in range(20)])
                   for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(20):
            fake.ask("Y?")
        for t in threads:
            t.join()
        assert fake.most == 1  # never two threads inside the instrument at once
        sent = len(fake.sent)
        guard.request_stop("SIGINT")
        with pytest.raises(RunAborted):
            fake.write("OUTP ON")  # refused before anything is sent
        assert len(fake.sent) == sent
        with guard.bypass():
            fake.write("OUTP OFF")  # safe states go through
        assert fake.sent[-1] == "OUTP OFF"
    assert "ask_raw" not in vars(fake)  # uninstalled: the class methods again


# -- interlocks end to end -------------------------------------------------------------------


def test_an_interlock_trips_within_a_poll_period_latches_and_resumes(tmp_path, toy_fridge,
                                                                     profile_copy):
    """A fake fridge heats during point 5; the pump goes safe while the experiment is busy, the
    trip latches through 40 mK (between the thresholds) and releases below 30 mK; the pump is
    restored and point 5 is taken again."""
    poll = 0.05
    station = fridge_station(tmp_path, toy_fridge, profile_copy("santec_tsl570.yaml"),
                             poll_s=poll)
    seen: dict = {"calls": 0}

    def heat(lab, run):
        laser, fridge = lab.pump, lab.station.components["fridge"]
        laser.enable_output()

        def probe() -> float:
            seen["calls"] += 1
            call = seen["calls"]
            if call == 6:  # point 5: the pump heats the fridge
                seen["output_during_point"] = laser.output.cache.get(get_if_invalid=False)
                fridge.mxc_temperature.set(0.060)
                heated = time.monotonic()
                while laser.output.cache.get(get_if_invalid=False) and \
                        time.monotonic() - heated < 5:
                    time.sleep(0.002)  # busy with something else: no instrument calls
                seen["safe_after_s"] = time.monotonic() - heated
                threading.Thread(target=cool, args=(fridge, run.path), daemon=True).start()
            if call == 7:  # the retake, after the release
                seen["output_at_retake"] = laser.output.cache.get(get_if_invalid=False)
            return float(call)

        from qcodes.parameters import Parameter
        reading = Parameter("probe", get_cmd=probe)
        run.sweep("scan", laser.wavelength, 1550e-9 + 1e-12 * np.arange(10), {"probe": reading})

    def cool(fridge, path: Path) -> None:
        time.sleep(5 * poll)
        fridge.mxc_temperature.set(0.040)  # cooler, but not below resume_below
        time.sleep(5 * poll)
        seen["latched_at_40mK"] = not any("released" in e[2] for e in open_run(path).events)
        seen["cooled"] = time.time()
        fridge.mxc_temperature.set(0.020)

    run = execute(Experiment("heat", heat), station, tmp_path / "r.h5", {}, console=quiet())
    assert seen["output_during_point"] is True
    assert seen["safe_after_s"] < poll + 0.25  # within one poll period (+ scheduling slack)
    assert seen["latched_at_40mK"]
    assert seen["output_at_retake"] is True  # restored after the release
    record = open_run(run.path)
    assert record.status == "completed"
    interlock = [e for e in record.events if e[1] == "interlock"]
    assert len(interlock) == 2
    assert "mxc_overheat: fridge.mxc_temperature = 0.06 K" in interlock[0][2]
    assert "tripped; safe state applied to pump (laser); latched" in interlock[0][2]
    assert "released (fridge.mxc_temperature = 0.02 K)" in interlock[1][2]
    assert "laser_output=True" in interlock[1][2]
    assert utc(interlock[1][0]) >= seen["cooled"]
    retakes = [e for e in record.events if e[1] == "retake"]
    assert [e[2] for e in retakes] == ["scan: point 5 is taken again (an interlock tripped "
                                       "while it was measured)"]
    kinds = [e[1] for e in record.events]
    assert kinds.index("interlock") < kinds.index("retake")
    step = record.steps["scan"]
    # Ten points, none twice; point 5's first reading (call 6) was thrown away.
    assert step["probe"].values.tolist() == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
    assert len(np.unique(step["wavelength"].values)) == 10


def test_an_interlock_that_ends_the_run_marks_it_interlocked(tmp_path, optical):
    """On the twin: pump power up, the transmitted power crosses a ceiling, the run ends."""
    lab = load_lab(optical)
    try:  # the ceiling: what the meter reads off resonance with 1 mW out of the laser
        lab.pump.wavelength(1549.9e-9)
        lab.pump.power(1e-3)
        lab.pump.enable_output()
        ceiling = float(np.mean([lab.meter.power() for _ in range(5)]))
    finally:
        lab.close()
    station = tmp_path / "twin_ceiling.yaml"
    station.write_text(OPTICAL_STATION + textwrap.dedent(f"""\
        interlocks:
          - name: detector_overload
            watch: powermeter.power
            above: {ceiling!r}
            poll_s: 0.05
            action: {{safe_state: [pump]}}
            then: end
        """))

    def ramp(lab, run):
        lab.pump.wavelength(1549.9e-9)  # off resonance: transmission near 1
        lab.pump.enable_output()
        powers = np.linspace(1e-4, 2e-3, 40)
        for i, p in enumerate(powers):
            run.sweep(f"hold_{i}", lab.pump.power, [p] * 20, {"power_read": lab.meter.power})

    out = tmp_path / "r.h5"
    with pytest.raises(RunInterlocked, match="detector_overload"):
        execute(Experiment("ramp", ramp), station, out, {}, console=quiet())
    record = open_run(out)
    assert record.status == "interlocked"
    (trip,) = [e for e in record.events if e[1] == "interlock"]
    assert "detector_overload: powermeter.power = " in trip[2]
    assert "safe state applied to pump (laser); latched; run ends" in trip[2]
    assert snapshot_value(record.snapshot_end, "laser", "output") is False
    tripped_at = float(trip[2].split("powermeter.power = ")[1].split()[0])
    assert tripped_at > ceiling
    assert len(record.steps) < 40  # the ramp never finished
    # The same station from the command line: exit code 3 and one line saying why.
    cli_out = tmp_path / "cli.h5"
    result = CliRunner().invoke(main, ["run", "optical_resonance", "--station", str(station),
                                       "--out", str(cli_out),
                                       "--set", "optical_resonance.power_w=2e-3"])
    assert result.exit_code == 3, result.output
    assert "interlocked: " in result.output and "detector_overload" in result.output
    assert "Traceback" not in result.output
    assert open_run(cli_out).status == "interlocked"


def test_a_trip_on_the_twin_lets_virtual_time_pass_and_gives_up_on_a_fridge_that_stays_warm(
        tmp_path) -> None:
    """A latched run waits in the lab's time: on the twin a fridge that never cools ends the run
    as interlocked after give_up_s, instead of waiting forever on a clock nobody advances."""
    import io

    import yaml as _yaml
    from rich.console import Console

    from experiments.calibration.cryostat_check import cryostat_check
    from hil.experiment import Experiment
    from hil.runner import execute
    from hil.safety import RunInterlocked
    from hil.store import open_run

    root = Path(__file__).resolve().parent.parent
    data = _yaml.safe_load((root / "stations" / "twin.yaml").read_text())
    data["twin"]["fridge"] = {"t_base_k": 0.08}
    data["interlocks"][0]["give_up_s"] = 600
    station = tmp_path / "warm.yaml"
    station.write_text(_yaml.safe_dump(data))
    with pytest.raises(RunInterlocked, match="still beyond .* after 600 s"):
        execute(Experiment("cryostat_check", cryostat_check), station, tmp_path / "w.h5", {},
                console=Console(file=io.StringIO()))
    record = open_run(tmp_path / "w.h5")
    assert record.status == "interlocked"
    assert any("giving up" in message for _, kind, message in record.events if kind == "interlock")
