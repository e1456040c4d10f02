"""Is data loading ever the bottleneck? DataLoader batches/s against slow_fusion's training
steps/s on the same cores, measured in the same run. Target: ratio >= 5.

    .venv/bin/python benchmarks/bench_train.py [--per-class 10] [--batch-size 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from vidclass.data.dataset import VideoDataset
from vidclass.data.prepare import prepare
from vidclass.models import build
from vidclass.synth.clips import generate


def loader_rate(ds: VideoDataset, batch_size: int, workers: int, batches: int) -> float:
    """Batches per second the DataLoader alone delivers (read, normalize, pad, collate)."""
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
    done, start = 0, time.perf_counter()
    while done < batches:
        for _ in loader:
            done += 1
            if done == batches:
                break
    return batches / (time.perf_counter() - start)


def model_rate(ds: VideoDataset, batch_size: int, steps: int) -> float:
    """Training steps per second of slow_fusion on batches already in memory."""
    model = build("slow_fusion", len(ds.classes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = next(iter(DataLoader(ds, batch_size=batch_size, shuffle=True)))
    model.train()
    for i in range(steps + 2):
        if i == 2:  # warm-up steps excluded
            start = time.perf_counter()
        loss = F.cross_entropy(model(batch), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=0, help="DataLoader workers (train default: 0)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "videos", per_class=args.per_class, quiet=True)
        prepare(Path(tmp) / "videos", Path(tmp) / "prepared", quiet=True)  # defaults: 16x112
        ds = VideoDataset(Path(tmp) / "prepared", split="train", normalize="clip")
        loads, models = [], []
        for _ in range(args.rounds):
            loads.append(loader_rate(ds, args.batch_size, args.workers, batches=20))
            models.append(model_rate(ds, args.batch_size, steps=6))
    load, model = statistics.median(loads), statistics.median(models)
    print(
        f"{len(ds)} training clips, 16x112x112, batch {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads, DataLoader workers {args.workers}"
    )
    print(f"DataLoader alone:        {load:7.1f} batches/s ({load * args.batch_size:.0f} clips/s)")
    print(
        f"slow_fusion train steps: {model:7.2f} batches/s ({model * args.batch_size:.0f} clips/s)"
    )
    print(f"ratio loader / model: {load / model:.1f}  (target >= 5)")


if __name__ == "__main__":
    main()
