"""Run every benchmark workload in turn (each script runs its baselines in the same invocation).

Run: ``python bench/all.py`` (extra arguments, e.g. ``--trials 9``, go to every script).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("scalars.py", "traces.py", "memory.py", "framework.py")

if __name__ == "__main__":
    failed = 0
    for script in WORKLOADS:
        done = subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=False)
        failed += done.returncode != 0
        print()
    sys.exit(1 if failed else 0)
