"""What the twin coupling costs: a computed reply against a stored pyvisa-sim property.

Run: ``python bench/sim_coupling.py``. Both paths query the same PM100D ``MEAS:POW?`` through
raw pyvisa, interleaved in blocks in one process (the machine is noisy, so only same-run
ratios mean anything): once on the plain profile (a stored value), once on the twin lab (the
through-port power computed from the laser and the cavity). Then a 1001-point VNA trace: one
sweep computed by the twin and transferred through the real driver, in ASCII and REAL,64.
Target (issue: the twin): computed / stored <= 1.2.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyvisa

from hil.sim.backend import open_lab
from hil.station import load_lab

ROOT = Path(__file__).resolve().parent.parent
METER = "USB0::0x1313::0x8078::P0012345::INSTR"
BLOCK, ROUNDS, WARMUP = 2000, 5, 200


def per_query_us(resource, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        resource.query("MEAS:POW?")
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    shutil.copyfile(ROOT / "sim_profiles" / "thorlabs_pm100d.yaml", folder / "pm.yaml")
    stored = pyvisa.ResourceManager(f"{folder / 'pm.yaml'}@sim").open_resource(METER)
    twin = pyvisa.ResourceManager(open_lab(ROOT / "sim_profiles" / "lab.yaml")).open_resource(METER)
    for r in (stored, twin):
        r.write_termination = r.read_termination = "\n"
        per_query_us(r, WARMUP)
    ratios, plain, computed = [], [], []
    for _ in range(ROUNDS):
        a = per_query_us(stored, BLOCK)
        b = per_query_us(twin, BLOCK)
        plain.append(a)
        computed.append(b)
        ratios.append(b / a)
    print(f"stored pyvisa-sim property : {statistics.median(plain):7.1f} us/query (median of {ROUNDS})")
    print(f"computed by the twin       : {statistics.median(computed):7.1f} us/query")
    print(f"ratio computed / stored    : {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target <= 1.2)")

    lab = load_lab(ROOT / "stations" / "twin.yaml")
    try:
        vna = lab.vna
        vna.points(1001)
        vna.enable_output()
        for fmt in ("ascii", "real64"):
            vna.data_format(fmt)
            times = []
            for _ in range(20):
                start = time.perf_counter()
                vna.run_sweep()
                vna.trace()
                times.append(time.perf_counter() - start)
            print(f"VNA 1001-point sweep + transfer, {fmt:6s}: {statistics.median(times) * 1e3:6.2f} ms "
                  "(median of 20)")
        start = time.perf_counter()
        for _ in range(20):
            lab.world.act("vna", "sweep")
        print(f"  of which the twin's computation          : "
              f"{(time.perf_counter() - start) / 20 * 1e3:6.2f} ms")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
