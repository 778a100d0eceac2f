"""Helpers of the transduction step tests: twin stations for Profiles A and B, a Run on a file,
earlier results filled from the twin's truth, and a spy on instrument traffic.

Prerequisites that other steps produce (optical_resonance, microwave_resonance,
pump_calibration) are filled here from ``lab.world.truth()`` (exact values, no stderr), so each
transduction step is tested on its own; the chain runs the real steps first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from qcodes.instrument import Instrument
from rich.progress import Progress

from hil.results import Result
from hil.runner import Run
from hil.station import Lab, load_lab
from hil.store import RunWriter

ROOT = Path(__file__).resolve().parent.parent
# the ideal lab: these tests compare each step with the ideal formulas (the default station's
# effects are tested end to end in tests/test_twin_realistic.py)
TWIN = ROOT / "stations" / "twin_ideal.yaml"


def station_file(tmp_path: Path, profile: str = "A", **twin_sections) -> Path:
    """stations/twin_ideal.yaml for ``profile`` (B: CW pump, ``pump_duty_cycle: 1.0``), with extra
    ``twin:`` sections merged in (e.g. ``noise={"n_line": 0.0}``)."""
    data = yaml.safe_load(TWIN.read_text())
    data["twin"] = {"seed": 1, "profile": profile, **data.get("twin", {})}
    data["twin"]["profile"] = profile
    for section, values in twin_sections.items():
        data["twin"].setdefault(section, {}).update(values)
    if profile == "B":
        data.setdefault("constants", {})["pump_duty_cycle"] = 1.0
    path = tmp_path / f"station_{profile}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fill_priors(run: Run, lab: Lab, *, pump_calibration: bool = True) -> dict[str, float]:
    """The results of the calibration steps, taken from the twin's truth."""
    truth = lab.world.truth()
    run.results["optical_resonance"] = {
        "wavelength_m": Result(truth["optical_wavelength_m"], "m"),
        "frequency_hz": Result(truth["optical_frequency_hz"], "Hz"),
        "kappa_o_hz": Result(truth["kappa_o_hz"], "Hz"),
        "kappa_o_ex_hz": Result(truth["kappa_o_ex_hz"], "Hz"),
    }
    run.results["microwave_resonance"] = {
        "f_m_hz": Result(truth["f_m_hz"], "Hz"),
        "kappa_m_hz": Result(truth["kappa_m_hz"], "Hz"),
        "kappa_m_ex_hz": Result(truth["kappa_m_ex_hz"], "Hz"),
    }
    if pump_calibration:
        # on-chip power per watt at the monitor tap (the path ratio; the duty cycle is the
        # station's constant)
        run.results["pump_calibration"] = {
            "chip_per_monitor": Result(truth["chip_per_monitor"], "W/W"),
        }
    return truth


@contextmanager
def lab_and_run(tmp_path: Path, profile: str = "A", station: Path | None = None,
                **twin_sections) -> Iterator[tuple[Lab, Run]]:
    """A twin lab of ``profile`` (or of ``station``) and a Run writing ``tmp_path/run.h5`` (no
    progress output)."""
    station = station or station_file(tmp_path, profile, **twin_sections)
    lab = load_lab(station)
    try:
        with RunWriter(tmp_path / "run.h5", experiment="test", station_yaml=lab.yaml_text,
                       station_path=station, snapshot={}) as writer:
            run = Run(lab, writer, {}, Progress(disable=True))
            yield lab, run
            run.close_steps()
    finally:
        lab.close()


class Traffic:
    """Every message a station's instruments send or are asked (``write_raw``/``ask_raw``)."""

    def __init__(self, lab: Lab) -> None:
        self.messages: list[str] = []
        for instrument in lab.station.components.values():
            if isinstance(instrument, Instrument):
                self._wrap(instrument)

    def _wrap(self, instrument: Instrument) -> None:
        write, ask = instrument.write_raw, instrument.ask_raw

        def write_raw(cmd: str) -> None:
            self.messages.append(f"{instrument.name}: {cmd}")
            write(cmd)

        def ask_raw(cmd: str) -> str:
            self.messages.append(f"{instrument.name}: {cmd}")
            return ask(cmd)

        instrument.write_raw = write_raw  # type: ignore[method-assign]
        instrument.ask_raw = ask_raw  # type: ignore[method-assign]
