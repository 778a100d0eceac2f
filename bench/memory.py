"""Memory: 1,000,000 scalar points (one setpoint, two measured) through the run file.

The store buffers a bounded number of points and streams the rest to disk, so its peak RSS
must not grow with the number of points: target < 50 MiB growth over the process' peak before
the workload (after imports and a small warm-up run). The hand-written buffered h5py appender
of ``scalars.py`` runs alongside for reference.

Run: ``python bench/memory.py`` (``--n``, ``--trials``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main  # noqa: E402
from scalars import h5py_buffered, hil_store  # noqa: E402

CONTENDERS = {"hil": hil_store, "h5py_buffered": h5py_buffered}

if __name__ == "__main__":
    main(__file__, CONTENDERS, n=1_000_000, warmup=100, unit="pts/s",
         per_second=lambda n, seconds: n / seconds,
         ratios={"hil / h5py_buffered": ("hil", "h5py_buffered", "(reference)")}, trials=3,
         repeat=1, rss_target=("hil", 50))
