"""Time the README's main job: ``ssmred demo`` (and ``--quick``) end to end, as a user runs it.

Usage: ``python benchmarks/demo.py [--repeats K] [--skip-full]``. Prints wall and CPU time (children)
per run, their medians, and whether the budgets hold on 2 CPU cores (full demo <= 300 s, issue 14;
``--quick`` <= 60 s). Under load the wall time is the machine's, not the demo's: the CPU time of the
children is printed next to it and judged against the same budget (the demo's runs are single-threaded).
Each run writes to a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _ssmred() -> str:
    exe = Path(sys.executable).with_name("ssmred")
    return str(exe) if exe.exists() else (shutil.which("ssmred") or "ssmred")


def run_once(args: list[str]) -> tuple[float, float]:
    out = tempfile.mkdtemp(prefix="ssmred-demo-bench-")
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([_ssmred(), "demo", *args, "--out", out], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="time only --quick")
    args = parser.parse_args()
    print(f"ssmred demo timing; {os.cpu_count()} cores; load average at start {os.getloadavg()}")
    cases = [("demo --quick", ["--quick"], 60.0)] + ([] if args.skip_full else [("demo", [], 300.0)])
    for name, extra, budget in cases:
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu = run_once(extra)
            walls.append(wall)
            cpus.append(cpu)
            print(f"  {name:14s} wall {wall:7.1f} s   cpu {cpu:7.1f} s")
        med = statistics.median(walls)
        cpu_med = statistics.median(cpus)
        verdict = "PASS" if med <= budget else "MISS"
        cpu_verdict = "PASS" if cpu_med <= budget else "MISS"
        print(
            f"{name:16s} median wall {med:7.1f} s (budget {budget:.0f} s): {verdict}; "
            f"median cpu {cpu_med:.1f} s: {cpu_verdict}"
        )
    print(f"load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
