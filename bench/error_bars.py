"""Are the chain's error bars honest? The chain on N seeds of a twin station, each result against
the twin's truth: per seed the error in % and the pull (error / stated standard error), and the
rms pull over the seeds (about 1 for an honest error bar; well above 1: the stated error misses
something, well below: it is too cautious).

    python bench/error_bars.py --seeds 12              # stations/twin.yaml, two at a time
    python bench/error_bars.py --station stations/twin_ideal.yaml --seeds 6

Not a speed benchmark and not a test: twelve seeds cost about 75 s on two cores. The truths
are the twin's input parameters and, for what the pump changes, the pumped device's model
(the same as tests/test_twin_realistic.py).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import yaml

from hil.twin import TwinLab, TwinParams

ROOT = Path(__file__).resolve().parent.parent
HIL = str(Path(sys.executable).parent / "hil")  # the console script of this environment


def run_seed(station: dict, seed: int, folder: Path) -> tuple[int, Path, int]:
    station = {**station, "twin": {**station.get("twin", {}), "seed": seed}}
    path = folder / f"s{seed}.yaml"
    path.write_text(yaml.safe_dump(station))
    out = folder / f"r{seed}.h5"
    done = subprocess.run([HIL, "run", "chain", "--force", "--station", str(path),
                           "--out", str(out)], capture_output=True, text=True, cwd=folder)
    return seed, out, done.returncode


def truths(station: dict, seed: int, results, path: Path) -> dict[str, tuple[float, float, float]]:
    """(value, stderr, truth) by result, for every result the twin can say the truth of."""
    twin = TwinLab(TwinParams.from_mapping({**station.get("twin", {}), "seed": seed}))
    truth, physics = twin.truth(), twin.physics
    q = twin.params.quasiparticle
    in_pulse = physics._qp_fractions()[0] if "quasiparticle" in physics.effects else 0.0

    def got(step: str, name: str) -> tuple[float, float]:
        r = results[step]["results"][name]
        return r["value"], r.get("stderr") or math.nan

    rows = {}
    for step, name in [("optical_resonance", "kappa_o_hz"), ("optical_resonance", "kappa_o_ex_hz"),
                       ("microwave_resonance", "kappa_m_hz"), ("microwave_resonance", "kappa_m_ex_hz"),
                       ("microwave_resonance", "f_m_hz"), ("pump_calibration", "chip_per_monitor"),
                       ("efficiency_vs_pump", "g0_hz"), ("efficiency_vs_pump", "p_c1_w"),
                       ("efficiency_vs_pump", "eta_max")]:
        rows[f"{step}.{name}"] = (*got(step, name), truth[name])
    rows["fridge_load.cooling_a_w_per_k2"] = (*got("fridge_load", "cooling_a_w_per_k2"),
                                              truth["cooling_a_w_per_k2"])
    if in_pulse:
        rows["efficiency_vs_pump.kappa_m_pump_loss_hz"] = (
            *got("efficiency_vs_pump", "kappa_m_pump_loss_hz"), in_pulse * q.loss_hz_per_w_gamma)
        rows["efficiency_vs_pump.f_m_pump_shift_hz"] = (
            *got("efficiency_vs_pump", "f_m_pump_shift_hz"), in_pulse * q.shift_hz_per_w_gamma)
    # the true on-chip peak pump at each step's laser power, and the true pump detuning at the
    # laser's wavelength (the middle one of the detuning readings), not the measured ones
    with h5py.File(path, "r") as f:
        lasers = {step: float(f[step]["laser_power"][0])
                  for step in ("bidirectional", "conversion_bandwidth")}
        pump_wavelength = float(f["efficiency_vs_pump_pump_detuning"]["planned_wavelength"][1])
    lasers["added_noise"] = got("added_noise", "laser_power_w")[0]
    chip = {step: physics.on_chip_pump_w(laser_w) for step, laser_w in lasers.items()}
    for step, power_w in chip.items():
        rows[f"{step}.pump_power_w"] = (*got(step, "pump_power_w"), power_w)
    detuning = physics.pump_detuning_hz(pump_wavelength)
    power = chip["bidirectional"]
    pumped = physics.transducer_at(power, in_pulse)
    rows["bidirectional.kappa_m_hz"] = (*got("bidirectional", "kappa_m_hz"), pumped.kappa_m_hz)
    rows["bidirectional.f_m_hz"] = (*got("bidirectional", "f_m_hz"), pumped.f_m_hz)
    rows["bidirectional.eta_total"] = (*got("bidirectional", "eta_total"),
                                       float(pumped.efficiency(power, detuning)))
    rows["bidirectional.cooperativity"] = (*got("bidirectional", "cooperativity"),
                                           float(pumped.cooperativity(power, detuning)))
    bw_power = chip["conversion_bandwidth"]
    at_bw = physics.transducer_at(bw_power, in_pulse)
    bandwidth = at_bw.bandwidth_hz(float(at_bw.cooperativity(bw_power, detuning)),
                                   float(at_bw.signal_detuning_hz(detuning)))
    rows["conversion_bandwidth.bandwidth_hz"] = (*got("conversion_bandwidth", "bandwidth_hz"), bandwidth)
    noise_power = chip["added_noise"]  # the noise of the mode as the pump leaves it
    noise = replace(physics.noise, transducer=physics.transducer_at(noise_power, in_pulse))
    rows["added_noise.n_add"] = (*got("added_noise", "n_add"), noise.added_noise(
        "m->o", noise_power, detuning, t_bath_k=got("added_noise", "mxc_temperature_k")[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", default=str(ROOT / "stations" / "twin.yaml"))
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="keep the run files in this folder (else a temporary one)")
    parser.add_argument("--per-seed", action="store_true", help="print each seed's pulls too")
    args = parser.parse_args()
    station = yaml.safe_load(Path(args.station).read_text())
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs = list(pool.map(lambda s: run_seed(station, s, folder), range(1, args.seeds + 1)))
        table: dict[str, list[tuple[float, float]]] = {}
        for seed, out, code in runs:
            if code not in (0, 3):  # 3: completed with suspect results
                print(f"seed {seed}: exit {code}, no results")
                continue
            shown = subprocess.run([HIL, "show", str(out), "--json"],
                                   capture_output=True, text=True)
            summary = json.loads(shown.stdout)
            suspects = [f"{s}.{n}" for s, d in summary["steps"].items() for n, r in d["results"].items()
                        if "suspect" in r]
            print(f"seed {seed}: exit {code}" + (f", suspect: {', '.join(suspects)}" if suspects else ""))
            for name, (value, err, truth) in truths(station, seed, summary["steps"], out).items():
                table.setdefault(name, []).append((100 * (value / truth - 1), (value - truth) / err))
    width = max(map(len, table))
    print(f"\n{'result':{width}}  {'mean err %':>10}  {'rms err %':>9}  {'rms pull':>8}  {'max |pull|':>10}")
    for name, rows in table.items():
        errors, pulls = np.array(rows).T
        print(f"{name:{width}}  {np.mean(errors):+10.3f}  {np.sqrt(np.mean(errors ** 2)):9.3f}  "
              f"{np.sqrt(np.nanmean(pulls ** 2)):8.2f}  {np.nanmax(np.abs(pulls)):10.1f}")
        if args.per_seed:
            print(f"{'':{width}}  pulls: " + " ".join(f"{p:+.1f}" for p in pulls))


if __name__ == "__main__":
    main()
