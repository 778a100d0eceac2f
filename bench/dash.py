"""Does watching a run slow it down? The run's speed with the live page open vs without.

Workload: ``hil run chain`` on the twin at full speed (virtual clock: no waits, every point as
fast as the simulated instruments answer; ~2,200 points and ~15 MB of traces). One ``hil dash``
serves the runs folder throughout, warmed up by a short watched run (a server started cold
during a run pays its imports and first figures there). Contenders, interleaved within each
trial, alternating which goes first:

* ``alone``: the run, with ``hil dash`` serving the same folder and no page open;
* ``watched``: the same while a client polls what the run page polls, once a second (the run's
  JSON, and the active step's figure when its point count changed), starting when the file
  appears.

The run's time is what the file records (``ended - started``: station setup and process start
excluded). Printed: the ratio watched / alone per trial and its median (target <= 1.10); the
same ratio of the run process' CPU time (process start included), which other load on a
shared machine does not change; the CPU the server used per second of the watched run (what
it can take from the run on a machine with no core to spare, whatever else runs there); the
page's response times while the run wrote (median and worst): the page answers under load.
A browser is not used here: its rendering would compete for the same two cores as the run,
which is the machine's load, not the view's.

    python bench/dash.py            # one trial, under a minute
    python bench/dash.py --trials 3 # a median over three
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _get(url: str) -> tuple[float, dict | None]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
    except (urllib.error.HTTPError, urllib.error.URLError, OSError):
        body = None
    return time.perf_counter() - start, body


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
                    seconds, _ = _get(f"{self.base}/api/runs/{self.run_file.stem}/steps/{step}"
                                      f"/figure")
                    self.latencies.append(seconds)
                    drawn = (step, points)
            self.stopping.wait(max(0.0, POLL_S - (time.monotonic() - began)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(base: str, runs: Path, name: str, dash_pid: int, watched: bool,
            experiment: str = "chain") -> tuple[float, float, list[float], float]:
    """One run into ``runs``, watched or not: its time, its CPU, page latencies, server CPU/s."""
    from hil.store import open_run

    run_file = runs / f"{name}.h5"
    watcher = Watcher(base, run_file) if watched else None
    if watcher:
        watcher.start()
    cpu_before, run_cpu = cpu_seconds(dash_pid), children_cpu()
    # --force: each run takes every step (a fresh calibration would otherwise be reused).
    done = subprocess.run([*HIL, "run", experiment, "--out", str(run_file), "--force"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    run_cpu = children_cpu() - run_cpu
    if watcher:
        watcher.stopping.set()
        watcher.join()
    dash_cpu = cpu_seconds(dash_pid) - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"hil run {experiment} failed:\n{done.stdout}\n{done.stderr}")
    record = open_run(run_file)
    seconds = (datetime.fromisoformat(record.ended)
               - datetime.fromisoformat(record.started)).total_seconds()
    return seconds, run_cpu, watcher.latencies if watcher else [], dash_cpu / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--nice", type=int, default=10, help="hil dash --nice (default 10).")
    parser.add_argument("--watched-first", dest="first_watched", action="store_const", const=1,
                        default=0, help="Start each pair with the watched run.")
    args = parser.parse_args()
    os.chdir(REPO)
    ratios, cpu_ratios, latencies, shares = [], [], [], []
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
            deadline = time.monotonic() + 30
            while _get(f"{base}/api/runs")[1] is None:
                if time.monotonic() > deadline:
                    raise SystemExit("hil dash did not answer within 30 s")
                time.sleep(0.1)
            one_run(base, runs, "warmup", dash.pid, True, experiment="cryostat_check")
            for trial in range(args.trials):
                # Alternate the order: on a shared machine the load drifts within a trial.
                order = (False, True) if trial % 2 == args.first_watched else (True, False)
                out = {w: one_run(base, runs, f"t{trial}_{'watched' if w else 'alone'}",
                                  dash.pid, w) for w in order}
                (alone, alone_cpu, _, _), (watched, watched_cpu, polled, share) = (
                    out[False], out[True])
                ratios.append(watched / alone)
                cpu_ratios.append(watched_cpu / alone_cpu)
                latencies += polled
                shares.append(share)
                print(f"trial {trial + 1}: run alone {alone:.2f} s, watched {watched:.2f} s, "
                      f"ratio {watched / alone:.3f}; the run's CPU {alone_cpu:.2f} s vs "
                      f"{watched_cpu:.2f} s ({len(polled)} page requests; the server used "
                      f"{share:.2f} s of CPU per second of the run)", flush=True)
        finally:
            dash.send_signal(signal.SIGINT)
            try:
                dash.wait(10)
            except subprocess.TimeoutExpired:
                dash.kill()
    print(f"watched / alone: median {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}; target <= 1.10)")
    print(f"the run's CPU time, watched / alone: median {statistics.median(cpu_ratios):.3f} "
          f"(unlike wall time, not changed by other load on the machine)")
    print(f"server CPU while watched: median {statistics.median(shares):.2f} s per second of run "
          f"(what it takes from a core the run might want; machine-independent)")
    if latencies:
        print(f"page response while the run wrote: median {statistics.median(latencies) * 1e3:.0f} ms, "
              f"worst {max(latencies) * 1e3:.0f} ms over {len(latencies)} requests")


if __name__ == "__main__":
    main()
