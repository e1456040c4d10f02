"""`prepare` throughput, one process against 2 concurrent `--shard` processes (+ the merge).

Each configuration runs as real `vidclass prepare` processes, from a cold output folder, on the
same synthetic videos; they alternate, `--repeats` rounds, medians. The ratio is the 2-shard
throughput over the 1-process throughput of the same run, so a busy machine moves both. One
process with `--workers 2` (its own pool) is measured too, as what one machine already had.
The machine's load average is printed before and after: other work on it counts.

    .venv/bin/python benchmarks/bench_shard.py [--per-class 6] [--size 320x240] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vidclass.synth.clips import generate

OPTIONS = ["--frames", "16", "--size", "112", "-q"]


def run(commands: list[list[str]]) -> float:
    """Wall time of `commands` started together, until the last one ends."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in commands]
    codes = [p.wait() for p in procs]
    assert codes == [0] * len(codes), codes
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=6)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    vidclass = [sys.executable, "-m", "vidclass", "prepare"]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "videos"
        generate(src, per_class=args.per_class, seed=0, size=(w, h), fps=30, quiet=True)
        videos = sum(1 for p in src.rglob("*.mp4"))
        print(f"{videos} videos ({args.size}, 30 fps synthetic), 16 frames at 112 px each")
        out = Path(tmp) / "out"
        times: dict[str, list[float]] = {"one": [], "shards": [], "merge": [], "workers2": []}
        for _ in range(args.repeats):
            shutil.rmtree(out, ignore_errors=True)
            one = [*vidclass, str(src), "--out", str(out), "--workers", "1", *OPTIONS]
            times["one"].append(run([one]))
            shutil.rmtree(out)
            shards = [
                [*vidclass, str(src), "--out", str(out), "--workers", "1", "--shard", f"{i}/2"]
                + OPTIONS
                for i in range(2)
            ]
            times["shards"].append(run(shards))
            times["merge"].append(run([[*vidclass, str(out), "--merge"]]))
            shutil.rmtree(out)
            pool = [*vidclass, str(src), "--out", str(out), "--workers", "2", *OPTIONS]
            times["workers2"].append(run([pool]))

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"1 process, --workers 1:            {med['one']:.2f} s  {videos / med['one']:.2f} videos/s"
    )
    both = med["shards"] + med["merge"]
    print(
        f"2 shard processes, --workers 1 each: {med['shards']:.2f} s + merge {med['merge']:.2f} s"
        f"  {videos / both:.2f} videos/s"
    )
    print(
        f"1 process, --workers 2:            {med['workers2']:.2f} s  {videos / med['workers2']:.2f} videos/s"
    )
    print(f"ratio 2 shards (with merge) / 1 process: {med['one'] / both:.2f}x")
    print(f"ratio 2 shards / 1 process --workers 2:  {med['workers2'] / both:.2f}x")
    print(f"medians of {args.repeats}; every run: {times}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
