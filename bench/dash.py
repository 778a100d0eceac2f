"""Does watching a run slow it down? The run's speed with the live page open vs without.

Workload: ``hil run chain`` on the twin at full speed (virtual clock: no waits, every point as
fast as the simulated instruments answer; ~2,200 points). One ``hil dash`` serves the runs
folder throughout, warmed up by a short watched run (a server started cold during a run pays its
imports and first figures there). Two contenders, in pairs, the order alternating from pair to
pair (alone-watched, watched-alone, ...: a drift of the machine's load hits both alike):

* ``alone``: the run, with ``hil dash`` serving the same folder and no page open;
* ``watched``: the same while a client polls what the run page polls, once a second (the run's
  JSON, and the active step's figure when its point count changed).

Each run is a child forked from this process after ``hil`` is imported, so a run costs its own
time, not an interpreter start. Its time is what the file records (``ended - started``); its CPU
time comes from the kernel (``wait4``), which other load on a shared machine does not change.

Printed: every run; per contender the median time and CPU; the ratio watched / alone as the
ratio of the medians and as the median of the pairs' ratios with their range (target <= 1.10);
the server's CPU per second of watched run; the page's response times while the run wrote.

    python bench/dash.py              # 3 pairs of chains, ~1.5 min on a quiet 2-core machine
    python bench/dash.py --pairs 8    # a tighter median
    python bench/dash.py --experiment optical_resonance --pairs 4   # a shorter workload
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HIL = [sys.executable, "-c", "from hil.cli import main; main()"]
POLL_S = 1.0  # the run page's poll period while a run is being written (static/dash.js)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, parse: bool = True) -> tuple[float, dict | None]:
    """Response time and JSON body of a GET (``parse=False``: the body is read, not parsed)."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            raw = response.read()
        seconds = time.perf_counter() - start
        body = json.loads(raw) if parse else {}
    except (urllib.error.HTTPError, urllib.error.URLError, OSError):
        seconds, body = time.perf_counter() - start, None
    return seconds, body


class Watcher(threading.Thread):
    """Polls like the run page does, and keeps each response time."""

    def __init__(self, base: str, run_file: Path) -> None:
        super().__init__(daemon=True)
        self.base, self.run_file = base, run_file
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.run_file.exists() and not self.stopping.wait(0.05):
            pass
        drawn = (None, -1)
        while not self.stopping.is_set():
            began = time.monotonic()
            seconds, view = _get(f"{self.base}/api/runs/{self.run_file.stem}")
            self.latencies.append(seconds)
            if view and view.get("active"):
                step = view["active"]
                points = next(s["points"] for s in view["steps"] if s["name"] == step)
                if (step, points) != drawn:
                    # Read, not parsed: drawing it is the browser's load, not the server's.
                    seconds, _ = _get(f"{self.base}/api/runs/{self.run_file.stem}/steps/{step}"
                                      f"/figure", parse=False)
                    self.latencies.append(seconds)
                    drawn = (step, points)
            self.stopping.wait(max(0.0, POLL_S - (time.monotonic() - began)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _forked_run(experiment: str, run_file: Path) -> int:
    """Start ``hil run`` in a child of this process (``hil`` already imported); its pid."""
    from hil.cli import main

    pid = os.fork()
    if pid == 0:  # the child: the run, then out without running the parent's cleanups
        code = 1
        try:
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the child exits)
            # --force: each run takes every step (a fresh calibration would otherwise be reused).
            main(["run", experiment, "--out", str(run_file), "--force"], standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def one_run(base: str, runs: Path, name: str, dash_pid: int, watched: bool,
            experiment: str) -> tuple[float, float, list[float], float]:
    """One run into ``runs``, watched or not: its time, its CPU, page latencies, server CPU/s."""
    from hil.store import open_run

    run_file = runs / f"{name}.h5"
    cpu_before = cpu_seconds(dash_pid)
    pid = _forked_run(experiment, run_file)  # before the watcher: no thread runs at the fork
    watcher = Watcher(base, run_file) if watched else None
    if watcher:
        watcher.start()
    _, status, usage = os.wait4(pid, 0)
    if watcher:
        watcher.stopping.set()
        watcher.join()
    dash_cpu = cpu_seconds(dash_pid) - cpu_before
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"hil run {experiment} failed (exit "
                         f"{os.waitstatus_to_exitcode(status)}); see {run_file}")
    record = open_run(run_file)
    seconds = (datetime.fromisoformat(record.ended)
               - datetime.fromisoformat(record.started)).total_seconds()
    return seconds, usage.ru_utime + usage.ru_stime, watcher.latencies if watcher else [], \
        dash_cpu / seconds


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, range {min(values):.3f}-{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", "--trials", dest="pairs", type=int, default=3,
                        help="Pairs of runs (default 3; --trials as in the other benchmarks).")
    parser.add_argument("--experiment", default="chain", help="What each run runs (chain).")
    parser.add_argument("--nice", type=int, default=10, help="hil dash --nice (default 10).")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs: at least 1")
    os.chdir(REPO)
    import hil.cli  # noqa: F401  (imported once, here: every forked run starts warm)

    times: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    latencies, shares = [], []
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="hil-bench-dash-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        port = _free_port()
        # One server for the whole benchmark, as in the lab (it runs all day); warmed up by a
        # short watched run first (its first reads and figures import and cache code).
        dash = subprocess.Popen([*HIL, "dash", "--runs", str(runs), "--port", str(port),
                                 "--nice", str(args.nice)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while _get(f"{base}/api/runs")[1] is None:
                if time.monotonic() > deadline:
                    raise SystemExit("hil dash did not answer within 60 s")
                time.sleep(0.1)
            one_run(base, runs, "warmup", dash.pid, True, "cryostat_check")
            for pair in range(args.pairs):
                order = (False, True) if pair % 2 == 0 else (True, False)
                for watched in order:
                    seconds, cpu, polled, share = one_run(
                        base, runs, f"p{pair}_{'watched' if watched else 'alone'}", dash.pid,
                        watched, args.experiment)
                    times[watched].append(seconds)
                    cpus[watched].append(cpu)
                    if watched:
                        latencies += polled
                        shares.append(share)
                    print(f"pair {pair + 1} {'watched' if watched else 'alone  '}: "
                          f"{seconds:6.2f} s, CPU {cpu:6.2f} s"
                          + (f", {len(polled)} page requests, server CPU {share:.3f} s/s"
                             if watched else ""), flush=True)
        finally:
            dash.send_signal(signal.SIGINT)
            try:
                dash.wait(10)
            except subprocess.TimeoutExpired:
                dash.kill()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    for label, values in (("time", times), ("CPU", cpus)):
        ratios = [w / a for a, w in zip(values[False], values[True], strict=True)]
        of_medians = statistics.median(values[True]) / statistics.median(values[False])
        print(f"run {label}: alone median {statistics.median(values[False]):.2f} s, watched "
              f"median {statistics.median(values[True]):.2f} s; watched / alone: ratio of "
              f"medians {of_medians:.3f}; per pair {_spread(ratios)} (target <= 1.10)")
    print(f"server CPU while watched: {_spread(shares)} s per second of run")
    if latencies:
        latencies.sort()
        print(f"page response while the run wrote: median {statistics.median(latencies) * 1e3:.0f}"
              f" ms, 90th percentile {latencies[int(0.9 * (len(latencies) - 1))] * 1e3:.0f} ms, "
              f"worst {latencies[-1] * 1e3:.0f} ms over {len(latencies)} requests")


if __name__ == "__main__":
    main()
