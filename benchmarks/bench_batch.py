"""Per-clip time of one model call at batch sizes 1, 4, 8 and 16: what `localize` and `detect`
batch their windows / tube clips by (`LocalizeOptions.batch_size`).

Random-init models (speed does not depend on the weights), clips of 16 frames at 112 px, one
thread, the batch sizes interleaved and the best of `--repeat` rounds kept; the ratio is
against batch 1 measured in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_batch.py --methods early_fusion,slow_fusion
"""

from __future__ import annotations

import argparse
import time

import torch

from vidclass.models import build

BATCHES = (1, 4, 8, 16)


def per_clip_ms(
    model: torch.nn.Module, batch: int, frames: int, size: int, seconds: float
) -> float:
    clip = {
        "video": torch.randn(batch, 3, frames, size, size),
        "mask": torch.ones(batch, frames, dtype=torch.bool),
    }
    with torch.inference_mode():
        model(clip)  # warm-up
        start, clips = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            model(clip)
            clips += batch
        return (time.perf_counter() - start) / clips * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="early_fusion,slow_fusion,late_fusion")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per batch size and round")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| method | " + " | ".join(f"batch {b} ms/clip (× batch 1)" for b in BATCHES) + " |")
    print("|---|" + "---:|" * len(BATCHES))
    for name in args.methods.split(","):
        model = build(name, num_classes=12).eval()
        times: dict[int, list[float]] = {b: [] for b in BATCHES}
        for _ in range(args.repeat):
            for b in BATCHES:
                times[b].append(per_clip_ms(model, b, args.frames, args.size, args.seconds))
        base = min(times[1])
        cells = [f"{min(t):.1f} ({base / min(t):.2f})" for t in times.values()]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
