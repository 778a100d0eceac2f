"""Scalar sweep: 10,000 points of one setpoint and two measured values, stored three ways.

* ``hil``: :class:`hil.store.RunWriter`, as the runner uses it (a step, positional appends, the
  step closed, the run finished), timed from the writer's creation to ``finish``;
* ``qcodes``: QCoDeS ``Measurement`` into a temporary SQLite database with default settings
  (register ``x``, ``y1``/``y2`` against it, ``add_result`` per point), timed from
  ``meas.run()`` entry to exit, database and experiment creation excluded;
* ``h5py_buffered``: a hand-written appender: three chunked resizable datasets, a 4096-point
  numpy buffer written in blocks, a flush each second and at the end, timed from
  ``h5py.File(..., "w")`` to close. No SWMR, no dimension scales: the leanest baseline;
* ``h5py_contract``: the same appender made to keep the run-file contract by hand (SWMR
  streaming, the setpoint as dimension scale, units), for reference.

Run: ``python bench/scalars.py`` (``--n``, ``--trials``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main  # noqa: E402


def hil_store(n: int, where: Path) -> float:
    from hil.store import Column, RunWriter

    where.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run = RunWriter(where / "run.h5", experiment="bench", station_yaml="", snapshot={})
    step = run.begin_step("sweep", [Column("x", "V", "x")],
                          [Column("y1", "V", "y1"), Column("y2", "V", "y2")])
    append = step.append
    for i in range(n):  # values made as they come: memory measures the store, not the input
        x = float(i)
        append(x, x * 0.5, x * 2.0)
    step.close()
    run.finish("completed")
    seconds = time.perf_counter() - start
    assert step.written == n
    return seconds


def qcodes_measurement(n: int, where: Path) -> float:
    from qcodes.dataset import (
        Measurement,
        initialise_or_create_database_at,
        load_or_create_experiment,
    )
    from qcodes.parameters import ManualParameter

    where.mkdir(parents=True, exist_ok=True)
    initialise_or_create_database_at(where / "bench.db")
    experiment = load_or_create_experiment("bench", sample_name="none")
    x, y1, y2 = (ManualParameter(name, unit="V") for name in ("x", "y1", "y2"))
    meas = Measurement(exp=experiment)
    meas.register_parameter(x)
    meas.register_parameter(y1, setpoints=(x,))
    meas.register_parameter(y2, setpoints=(x,))
    start = time.perf_counter()
    with meas.run() as saver:
        for i in range(n):
            value = float(i)
            saver.add_result((x, value), (y1, value * 0.5), (y2, value * 2.0))
    seconds = time.perf_counter() - start
    assert len(saver.dataset.get_parameter_data()["y1"]["y1"]) == n
    return seconds


class HandAppender:
    """What one writes by hand: buffered block appends, a flush a second."""

    def __init__(self, path: Path, names: tuple[str, ...], *, contract: bool) -> None:
        import h5py

        self.file = h5py.File(path, "w", libver="latest")
        self.datasets = [self.file.create_dataset(name, shape=(0,), maxshape=(None,),
                                                  chunks=(4096,), dtype="f8") for name in names]
        if contract:
            scale = self.datasets[0]
            scale.make_scale(names[0])
            for ds in self.datasets:
                ds.attrs["units"] = "V"
                ds.attrs["long_name"] = ds.name
            for ds in self.datasets[1:]:
                ds.dims[0].attach_scale(scale)
            self.file.swmr_mode = True
        self.buffer = np.empty((4096, len(names)))
        self.count = 0
        self.written = 0
        self.last_flush = time.monotonic()

    def append(self, x: float, y1: float, y2: float) -> None:
        row = self.buffer[self.count]
        row[0] = x
        row[1] = y1
        row[2] = y2
        self.count += 1
        if self.count == 4096 or time.monotonic() - self.last_flush >= 1.0:
            self.flush()

    def flush(self) -> None:
        stop = self.written + self.count
        for i, ds in enumerate(self.datasets):
            ds.resize((stop,))
            ds[self.written:stop] = self.buffer[:self.count, i]
        self.written, self.count = stop, 0
        self.file.flush()
        self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.file.close()


def _hand(n: int, where: Path, contract: bool) -> float:
    where.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    appender = HandAppender(where / "hand.h5", ("x", "y1", "y2"), contract=contract)
    append = appender.append
    for i in range(n):
        x = float(i)
        append(x, x * 0.5, x * 2.0)
    appender.close()
    return time.perf_counter() - start


def h5py_buffered(n: int, where: Path) -> float:
    return _hand(n, where, contract=False)


def h5py_contract(n: int, where: Path) -> float:
    return _hand(n, where, contract=True)


CONTENDERS = {"hil": hil_store, "qcodes": qcodes_measurement, "h5py_buffered": h5py_buffered,
              "h5py_contract": h5py_contract}

if __name__ == "__main__":
    main(__file__, CONTENDERS, n=10_000, warmup=100, unit="pts/s",
         per_second=lambda n, seconds: n / seconds,
         ratios={"hil / qcodes": ("hil", "qcodes", ">= 10"),
                 "hil / h5py_buffered": ("hil", "h5py_buffered", ">= 0.5"),
                 "hil / h5py_contract": ("hil", "h5py_contract", "(reference)")})
