"""``hil run --speed X``: a realtime run whose lab clock runs X times faster than the wall.

Expected values come from the command line: the lab time a cryostat check waits
(``duration_s``) and the speed asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import hil.runner
from hil.cli import main
from hil.clock import RealClock
from hil.store import open_run

CHECK = ["--set", "cryostat_check.duration_s=60", "--set", "cryostat_check.interval_s=10"]


@pytest.mark.parametrize("speed", ["0", "-3", "inf", "nan"])
def test_a_speed_that_is_not_positive_and_finite_is_refused(tmp_path: Path, speed: str) -> None:
    out = tmp_path / "run.h5"
    result = CliRunner().invoke(main, ["run", "cryostat_check", f"--speed={speed}", "--out",
                                       str(out), *CHECK])
    assert result.exit_code == 2
    assert "--speed" in result.output and "positive finite" in result.output
    assert not out.exists()  # refused before any file or instrument


def test_speed_runs_the_lab_clock_faster_than_the_wall(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--speed implies --realtime: the twin runs on a RealClock at that speed; the check's
    60 s of lab time then take at least 60 / 100 s of wall time, and the file records >= 60 s."""
    made: list[float] = []

    def recording_clock(speed: float = 1.0) -> RealClock:
        made.append(speed)
        return RealClock(speed)

    monkeypatch.setattr(hil.runner, "RealClock", recording_clock)
    out = tmp_path / "fast.h5"
    start = time.monotonic()
    result = CliRunner().invoke(main, ["run", "cryostat_check", "--speed", "100", "--out",
                                       str(out), *CHECK])
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert made == [100.0]
    assert elapsed >= 60 / 100  # a lower bound the clock imposes, not a speed target
    record = open_run(out)
    assert record.status == "completed"
    assert record.lab_time_s >= 60.0


def test_realtime_without_speed_runs_at_wall_speed(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[float] = []
    monkeypatch.setattr(hil.runner, "RealClock",
                        lambda speed=1.0: made.append(speed) or RealClock(speed))
    result = CliRunner().invoke(main, ["run", "cryostat_check", "--realtime", "--out",
                                       str(tmp_path / "rt.h5"), "--set",
                                       "cryostat_check.duration_s=1.5", "--set",
                                       "cryostat_check.interval_s=0.5"])
    assert result.exit_code == 0, result.output
    assert made == [1.0]


def test_a_clock_speed_must_be_positive_and_finite() -> None:
    for speed in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive and finite"):
            RealClock(speed)
