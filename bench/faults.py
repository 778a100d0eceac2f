"""The fault campaign: every test in tests/faults, as a table of cases tried and held.

Each test file in tests/faults is one fault case (the first line of its docstring names it);
each test in it provokes the fault one way (in process, over TCP, from the CLI). A test passes
only when nothing was lost and the lab was safe at the end, so "held" counts passing tests.
Files added to tests/faults later appear here without any change.

    python bench/faults.py            # the whole campaign (under a minute)
    python bench/faults.py -k tcp     # pytest's -k, to run a part of it
    python bench/faults.py --stop-latency   # seconds from a signal to the safe state
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ROOT / "tests" / "faults"


def case_title(path: Path) -> str:
    """The first line of a test file's docstring: its case, in a few words."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or path.stem
    first = doc.strip().splitlines()[0]
    return first if len(first) <= 70 else first[:67] + "..."


def run_campaign(extra: list[str]) -> tuple[dict[str, list[tuple[str, str]]], float]:
    """Run pytest on tests/faults; per file, (test, outcome) pairs and the wall time."""
    with tempfile.TemporaryDirectory(prefix="hil-faults-") as tmp:
        report = Path(tmp) / "report.xml"
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={report}", str(FAULTS), *extra], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL)
        took = time.monotonic() - started
        if not report.exists():
            raise SystemExit("pytest wrote no report; run `pytest tests/faults` to see why")
        tree = ET.parse(report)
    cases: dict[str, list[tuple[str, str]]] = {}
    for test in tree.iter("testcase"):
        module = test.get("classname", "").rsplit(".", 1)[-1]
        outcome = "held"
        for child in test:
            if child.tag in ("failure", "error"):
                outcome = "FAILED"
            elif child.tag == "skipped":
                outcome = "skipped"
        cases.setdefault(module, []).append((test.get("name", "?"), outcome))
    return cases, took


def stop_latency() -> None:
    """`hil run cryostat_check --realtime` in a 600 s wait between readings, signalled: the
    time from the signal to the run file's safe_state event, and the exit code."""
    from hil.store import open_run

    for signum in (signal.SIGTERM, signal.SIGINT):
        with tempfile.TemporaryDirectory(prefix="hil-stop-") as tmp:
            out = Path(tmp) / "c.h5"
            child = subprocess.Popen(
                [sys.executable, "-c", "from hil.cli import main; main()", "run",
                 "cryostat_check", "--realtime", "--out", str(out),
                 "--set", "cryostat_check.interval_s=600",
                 "--set", "cryostat_check.duration_s=1800"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "HIL_LOCK_DIR": tmp})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if open_run(out).points.get("cryostat_check", 0) >= 1:
                        break
                except (OSError, ValueError):  # not written yet
                    pass
                time.sleep(0.05)
            time.sleep(1.0)  # well inside the wait
            sent = datetime.now().astimezone()
            child.send_signal(signum)
            child.wait(60)
            when = open_run(out).events[-1][0]
            took = (datetime.fromisoformat(when) - sent).total_seconds()
            print(f"{signum.name}: exit {child.returncode}, safe state {took:.3f} s after the "
                  f"signal (in a 600 s wait)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="pytest -k expression")
    parser.add_argument("--stop-latency", action="store_true",
                        help="measure the time from SIGTERM/SIGINT to the safe state instead")
    args = parser.parse_args()
    if args.stop_latency:
        stop_latency()
        return
    cases, took = run_campaign(["-k", args.k] if args.k else [])
    rows = []
    for module, tests in sorted(cases.items()):
        path = FAULTS / f"{module}.py"
        title = case_title(path) if path.exists() else module
        tried = sum(outcome != "skipped" for _, outcome in tests)
        held = sum(outcome == "held" for _, outcome in tests)
        rows.append((module, title, tried, held))
    rows.sort(key=lambda r: (int(m.group(1)) if (m := re.match(r"Case (\d+)", r[1])) else 999,
                             r[0]))
    width = max([len(r[1]) for r in rows] + [4])
    print(f"{'case':<{width}}  {'tried':>5}  {'held':>5}")
    for _, title, tried, held in rows:
        mark = "" if held == tried else "   <- NOT HELD"
        print(f"{title:<{width}}  {tried:>5}  {held:>5}{mark}")
    total_tried = sum(r[2] for r in rows)
    total_held = sum(r[3] for r in rows)
    print(f"{'all cases':<{width}}  {total_tried:>5}  {total_held:>5}")
    print(f"({len(rows)} case files, {took:.0f} s; held = nothing lost, lab safe at the end)")
    for module, tests in sorted(cases.items()):
        for name, outcome in tests:
            if outcome == "FAILED":
                print(f"  not held: {module}::{name}  (pytest {FAULTS / module}.py -k {name})")
    sys.exit(0 if total_held == total_tried else 1)


if __name__ == "__main__":
    main()
