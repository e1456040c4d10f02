"""The headline claim at the defaults a user gets: every temporal method >= 95 % top-1 on unseen
synthetic scenes, the single-frame reference at chance inside time-reversed pairs.

For each seed: `vidclass synth --seed S` (defaults), `vidclass prepare` (defaults: 16 frames,
112 px, 80/20 train/test with 10 % val carved from train), `vidclass compare --models all`
(defaults: 12 epochs, augmentation on). The epoch of every run is chosen on val; every figure
is on test. The ratio printed is each method's pair accuracy over single_frame's, measured in
the same run (single_frame cannot tell a clip from its time-reversed twin: its pair accuracy is
the order-blind reference; n/a where single_frame was not run).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_accuracy.py     # seeds 0,1,2; hours
    .venv/bin/python benchmarks/bench_accuracy.py --seeds 123 --models early_fusion,single_frame

Runs are kept under --out (resumable: a killed run picks up where it stopped).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from vidclass.data.prepare import prepare
from vidclass.synth.clips import generate
from vidclass.train.compare import compare, parse_models
from vidclass.train.config import TrainConfig

TEMPORAL = ("early_fusion", "slow_fusion", "cnn_lstm", "two_stream", "slowfast")


def run_seed(seed: int, models: list[str], out: Path, epochs: int | None) -> dict:
    videos, prepared = out / f"seed{seed}" / "videos", out / f"seed{seed}" / "prepared"
    if not (videos / "classes.json").exists():
        generate(videos, seed=seed, quiet=True)
    prepare(videos, prepared, quiet=True)
    base = TrainConfig(model="") if epochs is None else TrainConfig(model="", epochs=epochs)
    name = "compare" if epochs is None else f"compare-{epochs}ep"
    return compare(prepared, models, out / f"seed{seed}" / name, base, quiet=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default="all")
    ap.add_argument("--out", type=Path, default=Path("bench-out/accuracy"))
    ap.add_argument("--epochs", type=int, help="Another budget than the default (12 epochs).")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    models = parse_models(args.models)
    results = {}
    for seed in seeds:
        print(f"seed {seed}", flush=True)
        comparison = run_seed(seed, models, args.out, args.epochs)
        results[seed] = {m["name"]: m for m in comparison["methods"]}
        ds = comparison["dataset"]
        print(
            f"  {ds['train_videos']} train / {ds['val_videos']} val / {ds['test_videos']} test",
            flush=True,
        )
        for m in comparison["methods"]:
            if m.get("error"):
                print(f"  {m['name']:13s} failed: {m['error']}", flush=True)
            else:
                print(
                    f"  {m['name']:13s} top-1 {m['top1']:.1%}  pair {m['pair_accuracy']:.1%}  "
                    f"best epoch {m['best_epoch']}  {m['train_time_s']:.0f} s  ({m['run']})",
                    flush=True,
                )

    print(
        "\nmethod         " + "".join(f"seed {s:<5d}" for s in seeds) + " mean    min    "
        "pair / single_frame"
    )
    summary = {}
    for name in models:
        top1 = [results[s][name].get("top1") for s in seeds]
        pair = [results[s][name].get("pair_accuracy") for s in seeds]
        if any(v is None for v in top1):
            print(f"{name:14s} (failed on a seed)")
            continue
        ref = [results[s].get("single_frame", {}).get("pair_accuracy") for s in seeds]
        ratios = [p / r for p, r in zip(pair, ref, strict=True) if r]
        ratio = f"{statistics.mean(ratios):5.2f}" if ratios else "  n/a"
        summary[name] = {
            "top1": top1,
            "pair_accuracy": pair,
            "mean": statistics.mean(top1),
            "min": min(top1),
        }
        print(
            f"{name:14s} "
            + "".join(f"{v:9.1%}  " for v in top1)
            + f"{statistics.mean(top1):6.1%} {min(top1):6.1%}  {ratio}"
        )
    below = [n for n in TEMPORAL if n in summary and summary[n]["min"] < 0.95]
    print(
        "\nclaim (every temporal method >= 95 % top-1 on every seed): "
        + ("met" if not below else f"NOT met by {', '.join(below)}")
    )
    tag = "" if args.epochs is None else f"-{args.epochs}ep"
    (args.out / f"summary{tag}.json").write_text(
        json.dumps({"seeds": seeds, "methods": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
