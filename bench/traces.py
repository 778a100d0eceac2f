"""Traces: 200 traces of 1,001 float64 (1.6 MB), one per setpoint, stored two ways.

* ``hil``: :class:`hil.store.RunWriter` with a trace column (an :class:`hil.store.Axis` of 1,001
  frequencies): dataset ``(200, 1001)``, timed from the writer's creation to ``finish``;
* ``qcodes_array``: QCoDeS ``Measurement`` into a temporary SQLite database, the trace a
  ``ParameterWithSetpoints`` on a 1,001-point axis registered with ``paramtype="array"`` against
  an index setpoint, one ``add_result`` per trace, timed from ``meas.run()`` entry to exit
  (database and experiment creation excluded).

Run: ``python bench/traces.py`` (``--n`` traces, ``--trials``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main  # noqa: E402

POINTS = 1001


def traces(n: int) -> np.ndarray:
    return np.random.default_rng(1).random((n, POINTS))


def hil_store(n: int, where: Path) -> float:
    from hil.store import Axis, Column, RunWriter

    where.mkdir(parents=True, exist_ok=True)
    data = traces(n)
    axis = Axis("frequency", "Hz", "frequency", np.linspace(4e9, 6e9, POINTS))
    start = time.perf_counter()
    run = RunWriter(where / "run.h5", experiment="bench", station_yaml="", snapshot={})
    step = run.begin_step("traces", [Column("index", "", "trace index")],
                          [Column("s21", "", "|S21|", axis)])
    for i, trace in enumerate(data):
        step.append(float(i), trace)
    step.close()
    run.finish("completed")
    seconds = time.perf_counter() - start
    assert step.written == n
    return seconds


def qcodes_array(n: int, where: Path) -> float:
    from qcodes.dataset import (
        Measurement,
        initialise_or_create_database_at,
        load_or_create_experiment,
    )
    from qcodes.parameters import ManualParameter, Parameter, ParameterWithSetpoints
    from qcodes.validators import Arrays

    where.mkdir(parents=True, exist_ok=True)
    initialise_or_create_database_at(where / "bench.db")
    experiment = load_or_create_experiment("bench", sample_name="none")
    data = traces(n)
    current = {"i": 0}
    frequency = Parameter("frequency", unit="Hz", get_cmd=lambda: np.linspace(4e9, 6e9, POINTS),
                          vals=Arrays(shape=(POINTS,)))
    s21 = ParameterWithSetpoints("s21", setpoints=(frequency,), vals=Arrays(shape=(POINTS,)),
                                 get_cmd=lambda: data[current["i"]])
    index = ManualParameter("trace_index")  # "index" is an SQL keyword
    meas = Measurement(exp=experiment)
    meas.register_parameter(index)
    meas.register_parameter(s21, setpoints=(index,), paramtype="array")
    start = time.perf_counter()
    with meas.run() as saver:
        for i in range(n):
            current["i"] = i
            saver.add_result((index, float(i)), (s21, s21.get()))  # the axis is added for it
    seconds = time.perf_counter() - start
    assert len(saver.dataset.get_parameter_data()["s21"]["s21"]) == n
    return seconds


CONTENDERS = {"hil": hil_store, "qcodes_array": qcodes_array}

if __name__ == "__main__":
    main(__file__, CONTENDERS, n=200, warmup=5, unit="MB/s",
         per_second=lambda n, seconds: n * POINTS * 8 / seconds / 1e6,
         ratios={"hil / qcodes_array": ("hil", "qcodes_array", ">= 5")})
