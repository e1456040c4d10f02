"""Temporal localization: mAP per method on held-out synthetic long videos, and its speed.

Trains every method on the default synthetic dataset (with its `background` class) through
`vidclass compare`, or reuses the runs of an earlier compare (`--runs`), renders held-out
long videos (a seed never used for training; scenes and action sequences unseen), localizes
every action with each method and scores the segments by mAP at temporal IoU 0.3/0.5/0.7
(ActivityNet definition; target: mAP@0.5 >= 0.80 with the best method).

Speed is a ratio measured in the same run: localization wall time over the time to only
decode and sample the same videos (the floor any method pays), and the real-time factor.

    .venv/bin/python benchmarks/bench_localize.py                    # trains, ~30 min on 2 cores
    .venv/bin/python benchmarks/bench_localize.py --runs demo-out/compare/runs --models slow_fusion
    .venv/bin/python benchmarks/bench_localize.py --runs RUNS --models early_fusion \
        --ensemble RUN_TRAINED_ON_WINDOWS          # curves of two models averaged
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vidclass.data.prepare import prepare
from vidclass.evaluation.localization import localization_map
from vidclass.localize.localize import read_truth
from vidclass.localize.windows import plan_sampling
from vidclass.models import RGB_MODELS
from vidclass.predict.classifier import Classifier
from vidclass.predict.options import LocalizeOptions
from vidclass.synth.clips import generate
from vidclass.synth.long import generate_long
from vidclass.train.compare import compare
from vidclass.train.loop import TrainConfig
from vidclass.video.reader import iter_frames, open_source


def decode_floor(videos: list[Path], sample_fps: float, size: int) -> float:
    """Seconds to decode and sample the videos as localize does, with no model."""
    start = time.perf_counter()
    for v in videos:
        _, frames = iter_frames(v, size, sample_fps)
        for _ in frames:
            pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-out/localize"))
    ap.add_argument("--runs", type=Path, help="Folder of trained runs (compare's runs/).")
    ap.add_argument("--models", default="all", help="Comma-separated methods, or all.")
    ap.add_argument("--epochs", type=int, default=12, help="Training epochs (without --runs).")
    ap.add_argument("--videos", type=int, default=20, help="Held-out long videos.")
    ap.add_argument("--seconds", type=float, default=60.0, help="Length of each long video.")
    ap.add_argument("--seed", type=int, default=202, help="Seed of the held-out long videos.")
    ap.add_argument(
        "--ensemble", type=Path, help="A run whose curves are averaged with each method's."
    )
    args = ap.parse_args()
    models = list(RGB_MODELS) if args.models == "all" else args.models.split(",")

    runs = args.runs
    if runs is None:
        videos_dir, prepared = args.out / "train-videos", args.out / "prepared"
        if not (videos_dir / "classes.json").exists():
            generate(videos_dir, seed=0, quiet=True)
        prepare(videos_dir, prepared, frames=16, size=112, seed=0, quiet=True)
        compare(prepared, models, args.out / "compare", TrainConfig(model="", epochs=args.epochs))
        runs = args.out / "compare" / "runs"

    long_dir = args.out / f"long-seed{args.seed}"
    if len(list(long_dir.glob("long_*.mp4"))) < args.videos:
        generate_long(long_dir, count=args.videos, seed=args.seed, seconds=args.seconds, quiet=True)
    videos = sorted(long_dir.glob("long_*.mp4"))[: args.videos]
    truth = {v.stem: read_truth(v) or [] for v in videos}
    total_s = sum(json.loads(v.with_suffix(".json").read_text())["duration_s"] for v in videos)

    rows = []
    for name in models:
        clf = Classifier.load(runs / name)
        others = [Classifier.load(args.ensemble)] if args.ensemble else []
        options = LocalizeOptions()
        container, info = open_source(videos[0])  # synth long videos share one frame rate
        container.close()
        floor = sum(
            decode_floor(videos, plan_sampling(m, options, info.fps).rate, m.size)
            for m in [clf, *others]
        )
        start = time.perf_counter()
        preds = {v.stem: clf.localize(v, ensemble=others)["segments"] for v in videos}
        if others:
            name = f"{name} + {args.ensemble.name}"
        wall = time.perf_counter() - start
        result = localization_map(preds, truth)
        rows.append((name, result, wall, floor))
        m = result["mAP"]
        print(
            f"{name:<14} mAP@0.3 {m['0.3']:.3f}  @0.5 {m['0.5']:.3f}  @0.7 {m['0.7']:.3f}  "
            f"avg {result['average_mAP']:.3f}   localize/decode {wall / floor:5.1f}x   "
            f"{total_s / wall:5.1f}x real time",
            flush=True,
        )
    print(
        f"\n{len(videos)} held-out videos, {total_s / 60:.1f} min, "
        f"{sum(len(t) for t in truth.values())} actions\n"
    )
    print("| method | mAP@0.3 | mAP@0.5 | mAP@0.7 | average | localize / decode | x real time |")
    print("|---|---|---|---|---|---|---|")
    for name, r, wall, floor in sorted(rows, key=lambda row: -row[1]["mAP"]["0.5"]):
        m = r["mAP"]
        print(
            f"| {name} | {m['0.3']:.3f} | {m['0.5']:.3f} | {m['0.7']:.3f} | "
            f"{r['average_mAP']:.3f} | {wall / floor:.1f} | {total_s / wall:.1f} |"
        )


if __name__ == "__main__":
    main()
