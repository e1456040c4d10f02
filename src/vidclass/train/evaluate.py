"""Evaluate a trained run on a split of a prepared dataset: the numbers and the pictures.

Writes `RUN/eval-<split>.json` (top-1, top-5, per-class precision/recall/F1, confusion, pair
accuracy, throughput) and `RUN/confusion-<split>.png`. With `views > 1` each video is scored
as the mean of several views (temporal windows, or crops), as the field reports results; with
test-time flip (`tta`, by default on for a run trained with mirrored clips) each view is
averaged with its mirror image too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidclass.atomic import write_text
from vidclass.data.dataset import VideoDataset, load_prepared_config
from vidclass.data.views import TestTimeFlip, resolve_tta
from vidclass.errors import UserError
from vidclass.evaluation.classification import average_views, classification_metrics
from vidclass.models.run import load_model
from vidclass.progress import track
from vidclass.train.epoch import predict_loader


class _Views(Dataset):
    """Every (video, view) pair of a dataset as one item."""

    def __init__(self, base: VideoDataset, views: int) -> None:
        self.base, self.views = base, views

    def __len__(self) -> int:
        return len(self.base) * self.views

    def __getitem__(self, j: int) -> dict:
        return self.base.view(j // self.views, j % self.views, self.views)


def dataset_for_run(config: dict, data: str | Path, split: str | None) -> VideoDataset:
    """The split of `data` fed the way the run's model was trained (frames, normalization,
    flow); refuses data whose classes differ from the model's."""
    prepared = load_prepared_config(data)
    if prepared["classes"] != config["classes"]:
        raise UserError(
            f"{data}: its classes {prepared['classes'][:4]}... differ from the model's "
            f"{config['classes'][:4]}...; evaluate on data prepared from the same classes"
        )
    return VideoDataset(
        data,
        split=split,
        frames=config["frames"],
        normalize=config["normalize"],
        with_flow=config.get("needs_flow", False),
        flow_method=config.get("flow_method", "farneback"),
    )


def evaluate(
    run: str | Path,
    data: str | Path,
    split: str = "test",
    views: int = 1,
    batch_size: int = 16,
    quiet: bool = False,
    tta: str = "auto",
) -> dict:
    """Score the run's best checkpoint on `split`; write JSON + confusion PNG into the run.
    `tta`: `flip` averages each clip with its mirror image, `none` does not, `auto` does
    what the run was trained for (see `data.views.resolve_tta`)."""
    if views < 1:
        raise UserError(f"--views must be at least 1, got {views}")
    run = Path(run)
    model, config = load_model(run)
    flip = resolve_tta(config, tta)
    ds = dataset_for_run(config, data, split)
    items: Dataset = _Views(ds, views)
    loader = DataLoader(TestTimeFlip(items) if flip else items, batch_size=batch_size)
    start = time.perf_counter()
    probs, labels, ids, _ = predict_loader(
        model, track(loader, description=f"evaluate {split}", quiet=quiet), torch.device("cpu")
    )
    seconds = time.perf_counter() - start
    video_ids, video_probs = average_views(probs, ids)
    first = {vid: i for i, vid in reversed(list(enumerate(ids)))}
    video_labels = np.array([labels[first[v]] for v in video_ids])
    metrics = classification_metrics(
        video_probs, video_labels, config["classes"], [tuple(p) for p in config.get("pairs", [])]
    )
    metrics.update(
        {
            "run": str(run),
            "model": config["model"],
            "data": str(Path(data).resolve()),
            "split": split,
            "views": views,
            "tta": "flip" if flip else "none",
            "num_videos": len(video_ids),
            "clips_per_s": len(ids) / seconds if seconds > 0 else None,
        }
    )
    from vidclass.report.plots import plot_confusion

    plot_confusion(
        metrics["confusion"],
        config["classes"],
        run / f"confusion-{split}.png",
        title=f"{config['model']} on {split} (top-1 {metrics['top1']:.1%})",
    )
    write_text(run / f"eval-{split}.json", json.dumps(metrics, indent=2))
    return metrics
