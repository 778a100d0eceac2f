"""Framework cost: a 1,000-point sweep on the twin station, through the runner or in a bare loop.

Both set the laser's wavelength and read the power meter at each of the same 1,000
wavelengths, through the same QCoDeS drivers on the twin-coupled simulation (``--station``,
default ``stations/twin.yaml``; it needs the roles ``pump`` and ``meter``):

* ``bare``: ``laser.wavelength.set(v); meter.power.get()`` in a Python loop on a station opened
  with :func:`hil.station.load_lab`, timed around the loop;
* ``bare_own_sigint``: the same loop with a SIGINT handler of its own installed. QCoDeS wraps
  every VISA call in ``DelayedKeyboardInterrupt``, which swaps the SIGINT handler twice per call
  when Python's default handler is installed and does nothing otherwise; the runner installs its
  own handler (Ctrl-C stops at the next instrument call), so this is the like-for-like baseline
  of what the runner itself adds;
* ``hil_sweep``: ``run.sweep(...)`` inside an experiment run by :func:`hil.runner.execute`, so
  with everything a run does per point (instrument guards and locks, stop and interlock checks,
  the store, the progress bar), timed around the ``run.sweep`` call (the step's creation and
  close included).

Single instrument round trips on this machine vary by tens of percent from one process to the
next, so the three contenders run interleaved in one process, ``--rounds`` times (each on a
freshly opened station, after a 200-point warm-up), in each of ``--trials`` fresh processes;
per trial the fastest round of each is kept, and the ratios' median over trials is printed.
Target: the sweep takes at most 1.15x the bare loop's time.

Run: ``python bench/framework.py`` (``--n``, ``--trials``, ``--rounds``, ``--station``).
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def grid(n: int) -> np.ndarray:
    return 1550.0e-9 + 0.1e-12 * np.arange(n)


def bare(station: Path, n: int, own_sigint: bool) -> float:
    from hil.station import load_lab

    previous = signal.signal(signal.SIGINT, lambda s, f: None) if own_sigint else None
    lab = load_lab(station)
    try:
        laser, meter = lab.pump, lab.meter
        laser.enable_output()
        wavelength, power = laser.wavelength, meter.power
        for value in grid(200):  # warm-up
            wavelength.set(value)
            power.get()
        start = time.perf_counter()
        for value in grid(n):
            wavelength.set(value)
            power.get()
        return time.perf_counter() - start
    finally:
        lab.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def hil_sweep(station: Path, n: int, where: Path) -> float:
    from rich.console import Console

    from hil.experiment import Experiment
    from hil.runner import execute

    timed = {}

    def sweep(lab, run):
        lab.pump.enable_output()
        run.sweep("warmup", lab.pump.wavelength, grid(200), {"power": lab.meter.power})
        start = time.perf_counter()
        run.sweep("sweep", lab.pump.wavelength, grid(n), {"power": lab.meter.power})
        timed["seconds"] = time.perf_counter() - start

    execute(Experiment("sweep", sweep), station, where, {}, console=Console(file=io.StringIO()))
    return timed["seconds"]


def worker(station: Path, n: int, rounds: int) -> dict:
    best = {"bare": np.inf, "bare_own_sigint": np.inf, "hil_sweep": np.inf}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for k in range(rounds):
            best["bare"] = min(best["bare"], bare(station, n, own_sigint=False))
            best["bare_own_sigint"] = min(best["bare_own_sigint"], bare(station, n, True))
            best["hil_sweep"] = min(best["hil_sweep"], hil_sweep(station, n,
                                                                 Path(tmp) / f"run{k}.h5"))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="Framework cost of a sweep vs a bare loop.")
    parser.add_argument("--n", type=int, default=1000, help="points (default 1000)")
    parser.add_argument("--trials", type=int, default=5, help="fresh processes (default 5)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds per process, the fastest kept (default 5)")
    parser.add_argument("--station", type=Path, default=ROOT / "stations" / "twin.yaml")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    station = args.station.absolute()
    if args.worker:
        print(json.dumps(worker(station, args.n, args.rounds)))
        return
    results = []
    for _ in range(args.trials):
        done = subprocess.run([sys.executable, __file__, "--worker", "--n", str(args.n),
                               "--rounds", str(args.rounds), "--station", str(station)],
                              capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"framework worker failed:\n{done.stderr}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"framework: n = {args.n}, {args.trials} trials x fastest of {args.rounds} interleaved "
          f"rounds, median (min-max)")
    for name in ("bare", "bare_own_sigint", "hil_sweep"):
        rates = [args.n / r[name] for r in results]
        print(f"  {name:<24} {statistics.median(rates):>14,.1f} pts/s "
              f"({min(rates):,.1f}-{max(rates):,.1f})")
    for label, base, target in (("hil_sweep time / bare time", "bare", "<= 1.15"),
                                ("hil_sweep time / bare_own_sigint time", "bare_own_sigint",
                                 "(like for like)")):
        ratios = [r["hil_sweep"] / r[base] for r in results]
        print(f"  {label:<40} {statistics.median(ratios):8.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f})   target {target}")


if __name__ == "__main__":
    main()
