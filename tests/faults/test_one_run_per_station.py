"""Case 4: two runs drove the same instruments at once (the second's safe state switched off the
first's pump). A station is held by one run, resume or `hil safe` at a time: the others are
refused with exit 2, naming the holder; the lock goes when its process dies, SIGKILL included;
readers (`hil show`, `hil status`) never take it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner
from faults_support import ROOT, experiment, hil_child, quiet, serving, tcp_station_file

from hil.cli import main
from hil.lock import StationBusy, station_lock
from hil.runner import execute


def hold_lock_in_child(station, run) -> subprocess.Popen[str]:
    code = ("import sys, time; from hil.lock import station_lock\n"
            f"with station_lock({str(station)!r}, purpose='run', run={str(run)!r}):\n"
            "    print('held', flush=True); time.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, env=dict(os.environ))
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_run_resume_or_safe_is_refused_and_names_the_holder(tmp_path):
    with serving() as (server, twin):
        station = tcp_station_file(server, twin, tmp_path)
        holder = hold_lock_in_child(station, tmp_path / "first.h5")
        try:
            second = tmp_path / "second.h5"
            child = hil_child("run", "optical_resonance", "--station", str(station), "--out",
                              str(second))
            _, stderr = child.communicate(timeout=60)
            assert child.returncode == 2, stderr
            assert "station busy" in stderr and f"pid {holder.pid}" in stderr
            assert "first.h5" in stderr
            assert not second.exists()  # refused before the file or any instrument byte
            safe = CliRunner().invoke(main, ["safe", "--station", str(station)])
            assert safe.exit_code == 2 and "station busy" in safe.stderr
            status = CliRunner().invoke(main, ["status", "--station", str(station), "--runs",
                                               str(tmp_path)])
            assert status.exit_code == 0  # readers never wait for or take the lock
        finally:
            holder.send_signal(signal.SIGKILL)  # the kernel releases the lock
            holder.wait(10)
        with station_lock(station, purpose="run"):
            pass


def test_a_run_holds_its_station_for_its_whole_length(tmp_path):
    """Inside a run, a second taker of the same station (a TCP rack) is refused."""
    seen = {}

    def try_a_second_taker(lab, run):
        try:
            with station_lock(station, purpose="run"):
                seen["second"] = "allowed"
        except StationBusy as exc:
            seen["second"] = str(exc)

    with serving() as (server, twin):
        station = tcp_station_file(server, twin, tmp_path)
        execute(experiment(try_a_second_taker), station, tmp_path / "r.h5", {}, console=quiet())
        with station_lock(station, purpose="run"):  # released at the end of the run
            pass
    assert "station busy" in seen["second"] and f"pid {os.getpid()}" in seen["second"]
    assert "r.h5" in seen["second"]


def test_two_station_files_that_reach_the_same_instruments_share_one_lock(tmp_path):
    with serving() as (server, twin):
        first = tcp_station_file(server, twin, tmp_path)
        copy = tmp_path / "copy" / "same-rack.yaml"
        copy.parent.mkdir()
        copy.write_text("# the same rack under another name\n" + first.read_text())
        with (station_lock(first, purpose="run"), pytest.raises(StationBusy),
              station_lock(copy, purpose="run")):
            pass
        with station_lock(copy, purpose="run"):  # free again once the first is released
            pass
