"""What the calibration-step tests share: the two twin stations, running steps, spying on traffic.

Profile A is ``stations/twin_ideal.yaml`` (every imperfection off: these tests compare each
step with the ideal formulas; the default station's effects are tested end to end in
tests/test_twin_realistic.py). Profile B (physics.md §4) is written beside the test: the
same instruments, ``twin: {profile: B, seed: 1}`` plus any extra twin keys, and the constants
that match Profile B's lines (CW pump: duty cycle 1; tap 1 %; HEMT 4 K).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import Progress

from hil.experiment import Experiment
from hil.runner import Run, execute
from hil.station import Lab, load_lab
from hil.store import RunWriter

ROOT = Path(__file__).resolve().parent.parent
STATION_A = ROOT / "stations" / "twin_ideal.yaml"


def station_b(tmp_path: Path, twin: Mapping[str, Any] | None = None,
              constants: Mapping[str, float] | None = None) -> Path:
    """A Profile B twin station in ``tmp_path`` (extra ``twin`` keys and ``constants`` merged)."""
    data = yaml.safe_load(STATION_A.read_text(encoding="utf-8"))
    data["twin"] = {"profile": "B", "seed": 1, **(twin or {})}
    data["constants"] = {"pump_duty_cycle": 1.0, "pump_tap_ratio": 0.01, "hemt_noise_temp_k": 4.0,
                         **(constants or {})}
    path = tmp_path / "twin_b.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def station_variant(tmp_path: Path, name: str, twin: Mapping[str, Any]) -> Path:
    """Profile A's station with other ``twin:`` keys (seed 1 unless given)."""
    data = yaml.safe_load(STATION_A.read_text(encoding="utf-8"))
    data["twin"] = {"seed": 1, **twin}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_steps(station: Path, out: Path, *steps: Callable[..., Any],
              params: Mapping[str, Mapping[str, Any]] | None = None) -> Run:
    """Run ``steps`` in order as one experiment (as the chain does) and return the Run."""
    if len(steps) == 1:
        experiment = Experiment(steps[0].__name__, steps[0])
    else:
        def sequence(lab, run) -> None:
            for step in sequence.steps:
                run.call(step)

        sequence.steps = steps
        experiment = Experiment("sequence", sequence)
    return execute(experiment, station, out, dict(params or {}),
                   console=Console(file=io.StringIO(), width=120))


@contextmanager
def bare_run(station: Path, tmp_path: Path) -> Iterator[tuple[Lab, Run]]:
    """A lab and a Run on it, for calling a step function directly."""
    lab = load_lab(station)
    writer = RunWriter(tmp_path / "direct.h5", experiment="direct", station_yaml=lab.yaml_text,
                       station_path=station, params={}, snapshot={})
    try:
        yield lab, Run(lab, writer, {}, Progress(disable=True))
    finally:
        writer.finish("failed")
        lab.close()


@contextmanager
def traffic(lab: Lab) -> Iterator[list[tuple[str, str]]]:
    """Record every command sent to any instrument of the lab (writes and queries)."""
    sent: list[tuple[str, str]] = []
    patched = []
    for name, instrument in lab.station.components.items():
        for method in ("write_raw", "ask_raw"):
            original = getattr(instrument, method, None)
            if original is None:
                continue

            def spy(cmd: str, _original=original, _name=name):
                sent.append((_name, cmd))
                return _original(cmd)

            setattr(instrument, method, spy)
            patched.append((instrument, method))
    try:
        yield sent
    finally:
        for instrument, method in patched:
            delattr(instrument, method)
