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
from vidclass.data.dataset import INPUT_DEFAULTS, VideoDataset, load_prepared_config
from vidclass.data.views import TestTimeFlip, resolve_tta
from vidclass.errors import UserError
from vidclass.evaluation.classification import average_views, classification_metrics
from vidclass.models.blocks import channels_last_encoder
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


def _recorded_inputs(config: dict) -> dict:
    """The prepared options a run was trained on (runs older than ``config["prepared"]``
    recorded only these five)."""
    if "prepared" in config:
        recorded = dict(config["prepared"])
        for key, default in INPUT_DEFAULTS.items():
            recorded[key] = recorded.get(key) or default
        return recorded
    old = {k: config[k] for k in ("frames", "size", "pad", "mean", "std") if k in config}
    return {**old, "crop": config.get("crop") or INPUT_DEFAULTS["crop"]}


# The `vidclass prepare` option that sets each recorded one (mean and std are fixed).
_FLAGS = {
    "frames": "--frames",
    "interval": "--interval",
    "sample_fps": "--fps",
    "size": "--size",
    "pad": "--pad",
    "crop": "--crop",
}


def input_mismatches(config: dict, prepared: dict) -> dict[str, tuple]:
    """``{option: (run's value, data's value)}`` for each prepared option on which the data
    differs from what the run was trained on. ``frames`` counts only for spread sampling,
    where it sets the frame rate; with ``--interval``/``--fps`` it is only a cap, and a longer
    cache is what gives ``--views`` its temporal windows."""
    run = _recorded_inputs(config)
    prepared = {**INPUT_DEFAULTS, **prepared}
    spread = run.get("interval") is None and run.get("sample_fps") is None
    return {
        key: (value, prepared[key])
        for key, value in run.items()
        if key in prepared and prepared[key] != value and (key != "frames" or spread)
    }


def describe_mismatches(differ: dict[str, tuple]) -> list[str]:
    """``["size: run 224, data 112", ...]``."""
    return [f"{k}: run {_show(run)}, data {_show(data)}" for k, (run, data) in differ.items()]


def _show(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _prepare_again(differ: dict[str, tuple], data: str | Path) -> str:
    """The prepare command line that would make the data match the run."""
    flags = [f"{_FLAGS[k]} {run}" for k, (run, _) in differ.items() if k in _FLAGS and run]
    dropped = [_FLAGS[k] for k, (run, _) in differ.items() if k in _FLAGS and run is None]
    line = " ".join([f"`vidclass prepare SRC --out {data}", *flags]) + "`"
    return line + (f" (without {', '.join(dropped)})" if dropped else "")


def dataset_for_run(
    config: dict, data: str | Path, split: str | None, allow_mismatch: bool = False
) -> tuple[VideoDataset, dict[str, tuple]]:
    """The split of `data` fed the way the run's model was trained (frames, normalization,
    flow), and the prepared options on which `data` differs from the run's training data.
    Refuses data whose classes differ, or whose options do unless `allow_mismatch`."""
    prepared = load_prepared_config(data)
    if prepared["classes"] != config["classes"]:
        raise UserError(
            f"{data}: its classes {prepared['classes'][:4]}... differ from the model's "
            f"{config['classes'][:4]}...; evaluate on data prepared from the same classes"
        )
    differ = input_mismatches(config, prepared)
    if differ and not allow_mismatch:
        raise UserError(
            f"{data}: prepared otherwise than the data the run was trained on "
            f"({'; '.join(describe_mismatches(differ))}), so its figures would not be the "
            f"model's; prepare the videos again with {_prepare_again(differ, data)}, or pass "
            "--allow-mismatch to score them anyway"
        )
    ds = VideoDataset(
        data,
        split=split,
        frames=config["frames"],
        normalize=config["normalize"],
        with_flow=config.get("needs_flow", False),
        flow_method=config.get("flow_method", "farneback"),
        with_keypoints=config.get("needs_keypoints", False),
        with_video=not config.get("needs_keypoints", False),
    )
    return ds, differ


def evaluate(
    run: str | Path,
    data: str | Path,
    split: str = "test",
    views: int = 1,
    batch_size: int = 16,
    quiet: bool = False,
    allow_mismatch: bool = False,
    tta: str = "auto",
) -> dict:
    """Score the run's best checkpoint on `split`; write JSON + confusion PNG into the run.

    Data prepared with other options than the run's (size, pad, sampling) is refused; with
    `allow_mismatch` it is scored and ``metrics["input_mismatch"]`` lists the differences.
    `tta`: `flip` averages each clip with its mirror image, `none` does not, `auto` does
    what the run was trained for (see `data.views.resolve_tta`)."""
    if views < 1:
        raise UserError(f"--views must be at least 1, got {views}")
    run = Path(run)
    model, config = load_model(run)
    flip = resolve_tta(config, tta)
    ds, differ = dataset_for_run(config, data, split, allow_mismatch)
    items: Dataset = _Views(ds, views)
    loader = DataLoader(TestTimeFlip(items) if flip else items, batch_size=batch_size)
    start = time.perf_counter()
    with channels_last_encoder(model):
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
    if differ:
        metrics["input_mismatch"] = describe_mismatches(differ)
    from vidclass.report.plots import plot_confusion

    plot_confusion(
        metrics["confusion"],
        config["classes"],
        run / f"confusion-{split}.png",
        title=f"{config['model']} on {split} (top-1 {metrics['top1']:.1%})",
    )
    write_text(run / f"eval-{split}.json", json.dumps(metrics, indent=2))
    return metrics
