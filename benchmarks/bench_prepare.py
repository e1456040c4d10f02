"""`prepare` wall time against the decode floor, measured in the same run.

Floor: decoding every frame of the same videos with PyAV (frame threading on, as in
`prepare`), two processes in parallel, nothing else. Ratio = prepare / floor; target <= 1.2.

    .venv/bin/python benchmarks/bench_prepare.py [--per-class 9] [--size 320x240] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av

from vidclass.data.prepare import prepare
from vidclass.synth.clips import generate

REALCLIPS = Path(__file__).resolve().parents[2] / "shared" / "realclips"


def decode_all(path: str) -> int:
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def decode_floor(paths: list[str], workers: int) -> float:
    start = time.perf_counter()
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        frames = sum(pool.map(decode_all, paths, chunksize=1))
    assert frames > 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=9)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "videos"
        generate(src, per_class=args.per_class, seed=0, size=(w, h), fps=30, quiet=True)
        if REALCLIPS.is_dir():
            real = src / "real"
            real.mkdir()
            for f in sorted(REALCLIPS.iterdir()):
                if f.suffix in (".avi", ".mp4", ".mkv"):
                    shutil.copy(f, real / f.name)
        paths = sorted(str(p) for p in src.rglob("*") if p.suffix in (".avi", ".mp4", ".mkv"))
        frames = sum(decode_all(p) for p in paths)  # also warms the page cache
        print(f"{len(paths)} videos, {frames} frames ({args.size} synthetic + real clips)")

        floors, runs = [], []
        for r in range(args.repeats):
            floors.append(decode_floor(paths, args.workers))
            out = Path(tmp) / f"prepared{r}"
            start = time.perf_counter()
            result = prepare(src, out, frames=16, size=112, workers=args.workers, quiet=True)
            runs.append(time.perf_counter() - start)
            assert not result.failed, result.failed
        start = time.perf_counter()
        again = prepare(src, out, frames=16, size=112, workers=args.workers, quiet=True)
        rerun = time.perf_counter() - start
        assert again.reused == len(paths)

    floor, run = statistics.median(floors), statistics.median(runs)
    print(f"decode floor ({args.workers} processes): {floor:.2f} s  (median of {args.repeats})")
    print(f"prepare ({args.workers} workers):        {run:.2f} s  (median of {args.repeats})")
    print(f"ratio prepare / floor: {run / floor:.2f}  (target <= 1.2)")
    print(f"re-run on the unchanged folder: {rerun:.2f} s ({rerun / run:.1%} of a full run)")


if __name__ == "__main__":
    main()
