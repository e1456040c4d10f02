"""Late fusion of two runs on the same test clips: the mean of their class probabilities.

For each fold, given as a prepared folder (or `A:B`, two folders of the same clips prepared
otherwise, e.g. a full-frame crop for the skeleton method and a person crop for an RGB
one), the runs of the two methods found under its `runs/` (or A's and B's; as
`bench_real.py --recipe real` names them: `<method>-real-<digest>`) score the test clips
as `vidclass evaluate` does (each with its own test-time flip); the fused prediction is the
unweighted mean of the two probability vectors (no weight is chosen, so nothing is chosen on
test). Prints top-1 of each run and of the fusion per fold, and the means.

    .venv/bin/python benchmarks/bench_fusion.py --methods pose,tsn \\
        /tmp/b23/real/16x224-full/fold0/prepared:/tmp/b23/real/16x224-person/fold0/prepared
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader


def test_probs(run: Path, data: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids, probabilities (N, K), labels (N,)) of the run on the test split."""
    from vidclass.data.views import TestTimeFlip, resolve_tta
    from vidclass.evaluation.classification import average_views
    from vidclass.models.run import load_model
    from vidclass.train.epoch import predict_loader
    from vidclass.train.evaluate import dataset_for_run

    model, config = load_model(run)
    ds, _ = dataset_for_run(config, data, "test", False)
    items = TestTimeFlip(ds) if resolve_tta(config, "auto") else ds
    probs, labels, ids, _ = predict_loader(
        model, DataLoader(items, batch_size=8), torch.device("cpu")
    )
    video_ids, video_probs = average_views(probs, ids)
    first = {vid: i for i, vid in reversed(list(enumerate(ids)))}
    return list(video_ids), np.asarray(video_probs), np.array([labels[first[v]] for v in video_ids])


def find_run(data: Path, method: str) -> Path:
    runs = sorted((data.parent / "runs").glob(f"{method}-real-*"))
    runs = [r for r in runs if (r / "result.json").exists()]
    if len(runs) != 1:
        raise SystemExit(
            f"{data.parent / 'runs'}: expected one finished {method} run, found {runs}"
        )
    return runs[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folds", nargs="+", help="prepared fold folders, each DIR or A:B")
    ap.add_argument("--methods", default="pose,tsn", help="the two methods, comma-separated")
    args = ap.parse_args()
    a, b = args.methods.split(",")
    rows = []
    print(f"| fold | {a} | {b} | mean of the two |\n|---|---:|---:|---:|")
    for fold in args.folds:
        data, _, other = fold.partition(":")
        data, other = Path(data), Path(other or data)
        ids_a, pa, la = test_probs(find_run(data, a), data)
        ids_b, pb, _ = test_probs(find_run(other, b), other)
        order = [ids_b.index(v) for v in ids_a]
        fused = (pa + pb[order]) / 2
        acc = [float((p.argmax(1) == la).mean()) for p in (pa, pb[order], fused)]
        rows.append(acc)
        print(f"| {data.parent.name} | " + " | ".join(f"{100 * x:.1f}" for x in acc) + " |")
    if len(rows) > 1:
        cells = []
        for col in zip(*rows, strict=True):
            cells.append(f"{100 * statistics.mean(col):.1f} ± {100 * statistics.pstdev(col):.1f}")
        print("| mean ± sd | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
