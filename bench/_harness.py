"""Shared machinery of the benchmarks: fresh processes, trials, medians, same-trial ratios.

Each workload script defines contenders (functions ``(n, workdir) -> seconds``) and calls
:func:`main`. Every (trial, contender) runs in a fresh Python process: the script re-runs itself
with ``--contender NAME``. In that process the contender first runs once on a small input
(untimed: imports, first-call caches, the run file's software versions), then ``--repeat`` times
on the real input, timed as the contender defines it, keeping the fastest (scheduling noise only
ever adds time); the process reports that time and the peak RSS growth of the first timed run
over its pre-workload peak. All contenders run once per trial in a fixed order; ratios are taken
within a trial and their median is reported (the machine is noisy: compare ratios, not times).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

Contender = Callable[[int, Path], float]


def peak_rss_kib() -> int:
    """Peak resident set size of this process so far (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worker(contenders: Mapping[str, Contender], name: str, n: int, warmup: int,
            repeat: int) -> None:
    function = contenders[name]
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        if warmup:
            function(warmup, Path(tmp) / "warmup")
        before = peak_rss_kib()
        seconds = function(n, Path(tmp) / "timed")
        after = peak_rss_kib()  # of the first timed run: repeats do not add to it
        for k in range(1, repeat):
            seconds = min(seconds, function(n, Path(tmp) / f"timed{k}"))
    print(json.dumps({"seconds": seconds, "rss_kib": after, "rss_growth_kib": after - before}))


def _spawn(script: Path, name: str, n: int, warmup: int, repeat: int) -> dict:
    done = subprocess.run([sys.executable, str(script), "--contender", name, "--n", str(n),
                           "--warmup", str(warmup), "--repeat", str(repeat)],
                          capture_output=True, text=True, check=False,
                          cwd=script.resolve().parent.parent)
    if done.returncode != 0:
        raise SystemExit(f"{script.name} {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(script: str, contenders: Mapping[str, Contender], *, n: int, warmup: int,
         unit: str, per_second: Callable[[int, float], float],
         ratios: Mapping[str, tuple[str, str, str]], trials: int = 5, repeat: int = 3,
         rss_target: tuple[str, float] | None = None) -> dict:
    """Run the workload; print a table and the ratios; return the medians.

    ``ratios`` maps a label to ``(numerator, denominator, target)``: the ratio of the two
    contenders' rates (``per_second(n, seconds)``), and the target printed beside it.
    ``rss_target`` = (contender, MiB) prints that contender's peak RSS growth against a ceiling.
    """
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "")
                                     .splitlines()[0])
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=n, help=f"workload size (default {n})")
    parser.add_argument("--warmup", type=int, default=warmup, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=trials,
                        help=f"fresh-process trials per contender (default {trials})")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"timed runs per process, the fastest kept (default {repeat})")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    if args.contender:
        _worker(contenders, args.contender, args.n, args.warmup, args.repeat)
        return {}
    path = Path(script)
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(args.trials):
        for name in contenders:
            runs[name].append(_spawn(path, name, args.n, args.warmup, args.repeat))
    summary: dict = {"n": args.n, "trials": args.trials, "contenders": {}, "ratios": {}}
    print(f"{path.stem}: n = {args.n}, {args.trials} trials x fastest of {args.repeat}, "
          f"median (min-max)")
    for name, results in runs.items():
        rates = [per_second(args.n, r["seconds"]) for r in results]
        growth = [r["rss_growth_kib"] / 1024 for r in results]
        summary["contenders"][name] = {"rate": statistics.median(rates),
                                       "rss_growth_mib": statistics.median(growth)}
        print(f"  {name:<24} {statistics.median(rates):>14,.1f} {unit} "
              f"({min(rates):,.1f}-{max(rates):,.1f})   peak RSS growth "
              f"{statistics.median(growth):.1f} MiB")
    for label, (top, bottom, target) in ratios.items():
        values = [per_second(args.n, a["seconds"]) / per_second(args.n, b["seconds"])
                  for a, b in zip(runs[top], runs[bottom], strict=True)]
        summary["ratios"][label] = statistics.median(values)
        print(f"  {label:<40} {statistics.median(values):8.2f}x "
              f"({min(values):.2f}-{max(values):.2f})   target {target}")
    if rss_target is not None:
        name, ceiling = rss_target
        growth = [r["rss_growth_kib"] / 1024 for r in runs[name]]
        summary["rss_growth_mib"] = max(growth)
        print(f"  {name + ' peak RSS growth (worst trial)':<40} {max(growth):8.1f} MiB   "
              f"target < {ceiling:g} MiB")
    if args.json:
        print(json.dumps(summary))
    return summary
