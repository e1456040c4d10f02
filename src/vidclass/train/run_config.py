"""What a run's config.json records about its data and model: everything inference needs to
read videos the way the model was trained on them, and the frame rate they were sampled at."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from torch import nn

import vidclass
from vidclass.data.dataset import INPUT_DEFAULTS, INPUT_OPTIONS
from vidclass.data.prepare import read_manifest
from vidclass.train.config import TrainConfig, test_time_flip

PRETRAINED_MIN_SIZE = 160


def resolution_hint(run_config: dict) -> str | None:
    """A line for a run that starts from ImageNet on frames much smaller than ImageNet's."""
    options, size = run_config["options"], run_config["size"]
    if not options.get("pretrained") or size >= PRETRAINED_MIN_SIZE:
        return None
    return (
        f"note: {options.get('backbone')} starts from ImageNet weights learnt at 224 px; these "
        f"frames are {size} px. On real footage 224 px measured +5 to +11 points for frozen "
        "frame models (Weizmann): prepare again with --size 224 if accuracy matters more than "
        "speed"
    )


def run_config(
    data: Path,
    cfg: TrainConfig,
    model: nn.Module,
    prepared: dict,
    frames: int,
    normalize: str,
    selection: dict,
) -> dict:
    """config.json of the run (the best epoch is added when it is saved): what inference
    needs to read videos the way the model was trained on them."""
    return {
        "model": cfg.model,
        "options": model.config,
        "classes": prepared["classes"],
        "frames": frames,
        "size": prepared["size"],
        "crop": prepared.get("crop", "center"),
        "person_boxes": prepared.get("person_boxes"),
        "normalize": normalize,
        "mean": prepared["mean"],
        "std": prepared["std"],
        "pad": prepared.get("pad", "zeros"),
        "needs_flow": bool(getattr(model, "needs_flow", False)),
        "needs_keypoints": bool(getattr(model, "needs_keypoints", False)),
        "flow_method": cfg.flow_method,
        "pairs": prepared.get("pairs", []),
        # What evaluate and predict do by default: average a clip with its mirror image
        # where the model was trained on both (the val split chose the epoch that way too).
        "tta": "flip" if test_time_flip(cfg) else "none",
        "sample_fps": training_frame_rate(data, prepared),
        "prepared": {k: prepared.get(k, INPUT_DEFAULTS.get(k)) for k in INPUT_OPTIONS},
        "train": asdict(cfg),
        "selection": selection,
        "data": str(data.resolve()),
        "vidclass_version": vidclass.__version__,
    }


def training_frame_rate(data: Path, prepared: dict) -> float:
    """Frames per second of video that the training clips were sampled at (median over the
    training videos), so inference slides its windows over the same span of time."""
    if prepared.get("sample_fps"):
        return float(prepared["sample_fps"])
    rates = []
    for r in read_manifest(data):
        if r["status"] != "ok" or r["split"] != "train":
            continue
        fps, duration = float(r["fps"] or 0), float(r["duration_s"] or 0)
        if prepared.get("interval") and fps > 0:
            rates.append(fps / prepared["interval"])
        elif duration > 0 and r["sampled_frames"] > 1:
            # Spread sampling: the clip's frames cover the whole video.
            rates.append(r["sampled_frames"] / duration)
    return float(np.median(rates)) if rates else 8.0
