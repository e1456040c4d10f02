"""Frozen-backbone training: frame features computed once per video, then only the head trains.

With a frozen pretrained encoder the features of a frame never change, so encoding every
clip every epoch is wasted work; on a CPU it is nearly all the work. The features are cached
next to the prepared data (`DATA/features/<key>/<video_id>.npy`, float32 `(T, D)`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidclass.data.dataset import VideoDataset
from vidclass.models.blocks import FrameModel
from vidclass.progress import track


def uses_feature_cache(model: nn.Module) -> bool:
    """A frame model whose encoder is frozen: its features can be cached."""
    return isinstance(model, FrameModel) and bool(getattr(model.encoder, "frozen", False))


def feature_key(model: FrameModel, normalize: str, frames: int, seed: int) -> str:
    """Folder name that changes whenever the cached features would."""
    cfg = model.config
    spec = {
        "backbone": cfg.get("backbone"),
        "pretrained": cfg.get("pretrained"),
        "normalize": normalize,
        "frames": frames,
        # A frozen random encoder depends on the seed that initialized it.
        "seed": None if cfg.get("pretrained") else seed,
    }
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.get('backbone')}-{digest}"


class FeatureHead(nn.Module):
    """Adapter: a batch with "features" instead of "video" → the model's head."""

    def __init__(self, model: FrameModel) -> None:
        super().__init__()
        self.module = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module.forward_features(batch["features"], batch["mask"], batch.get("flow"))


class FeatureDataset(Dataset):
    """The items of a VideoDataset with cached `features (T, D)` in place of `video`."""

    def __init__(self, base: VideoDataset, folder: Path) -> None:
        self.base, self.folder = base, folder

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        row = self.base.rows[i]
        feats = torch.from_numpy(np.load(self.folder / f"{row['video_id']}.npy"))
        if self.base.with_flow:
            item = self.base[i]
            item.pop("video")
        else:
            mask = torch.zeros(self.base.frames, dtype=torch.bool)
            mask[: min(row["sampled_frames"], self.base.frames)] = True
            item = {"mask": mask, "label": row["label_index"], "video_id": row["video_id"]}
        item["features"] = feats
        return item


@torch.no_grad()
def cache_features(
    model: FrameModel,
    datasets: list[VideoDataset],
    folder: Path,
    batch_size: int = 16,
    quiet: bool = False,
) -> None:
    """Encode every clip of `datasets` not cached yet (atomic writes: safe to interrupt)."""
    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    for ds in datasets:
        todo = [i for i, r in enumerate(ds.rows) if not (folder / f"{r['video_id']}.npy").exists()]
        if not todo:
            continue
        plain = VideoDataset(
            ds.root, split=None, frames=ds.frames, pad=ds.pad, normalize=ds.normalize
        )
        index = {r["video_id"]: i for i, r in enumerate(plain.rows)}
        subset = torch.utils.data.Subset(plain, [index[ds.rows[i]["video_id"]] for i in todo])
        loader = DataLoader(subset, batch_size=batch_size)
        for batch in track(loader, description="features", quiet=quiet):
            feats = model.encode_frames(batch["video"], batch["mask"]).float().numpy()
            for vid, f in zip(batch["video_id"], feats, strict=True):
                path = folder / f"{vid}.npy"
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, f)
                os.replace(tmp, path)
    model.train(was_training)
