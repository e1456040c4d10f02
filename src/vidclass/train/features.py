"""Frozen-backbone training: frame features computed once per video, then only the head trains.

With a frozen pretrained encoder the features of a frame never change, so encoding every
clip every epoch is wasted work; on a CPU it is nearly all the work. The features are cached
next to the prepared data: `DATA/features/<backbone>-<digest>/<video_id>.<signature>.npy`,
float32 `(T, D)`. The digest covers everything that determines them (see `feature_spec`) and
the spec is kept and checked in the folder's `spec.json`; the signature is the prepared
video's, so a video that `prepare` redid is encoded again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidclass.atomic import save_array
from vidclass.data.dataset import VideoDataset
from vidclass.data.derived import open_derived
from vidclass.models.blocks import FrameModel
from vidclass.progress import track


def uses_feature_cache(model: nn.Module) -> bool:
    """A frame model whose encoder is frozen: its features can be cached."""
    return isinstance(model, FrameModel) and bool(getattr(model.encoder, "frozen", False))


def encoder_digest(model: FrameModel) -> str:
    """A digest of the encoder's weights and buffers: whatever the backbone, its pretrained
    weights or the seed that initialized a random one, other weights give other features."""
    h = hashlib.sha1()
    for name, t in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def feature_spec(model: FrameModel, dataset: VideoDataset) -> dict:
    """Everything that determines the cached features of a clip, besides the video itself."""
    prepared = dataset.config
    return {
        "model_class": type(model).__name__,
        # A subclass that transforms the features (cnn_lstm's deltas) overrides encode_frames.
        "encode_frames": type(model).encode_frames.__qualname__,
        "transform": model.feature_transform(),
        "feature_dim": model.feature_dim,
        "backbone": model.config.get("backbone"),
        "pretrained": model.config.get("pretrained"),
        "encoder": encoder_digest(model),
        "normalize": dataset.normalize,
        "mean": list(dataset.mean),
        "std": list(dataset.std),
        "frames": dataset.frames,
        "pad": dataset.pad,
        "prepared": {
            k: prepared.get(k) for k in ("size", "frames", "interval", "sample_fps", "source")
        },
    }


def feature_folder(model: FrameModel, dataset: VideoDataset) -> Path:
    """`DATA/features/<backbone>-<digest>/`, created or verified against its spec."""
    return open_derived(
        dataset.root / "features", str(model.config.get("backbone")), feature_spec(model, dataset)
    )


def feature_path(folder: Path, dataset: VideoDataset, i: int) -> Path:
    return folder / f"{dataset.rows[i]['video_id']}.{dataset.signature(i)}.npy"


class FeatureHead(nn.Module):
    """Adapter: a batch with "features" instead of "video" → the model's head."""

    def __init__(self, model: FrameModel) -> None:
        super().__init__()
        self.module = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module.forward_features(batch["features"], batch["mask"], batch.get("flow"))


class FeatureDataset(Dataset):
    """The items of a VideoDataset with cached `features (T, D)` in place of `video`."""

    def __init__(self, base: VideoDataset, folder: Path, feature_dim: int) -> None:
        self.base, self.folder, self.feature_dim = base, folder, feature_dim

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        row = self.base.rows[i]
        path = feature_path(self.folder, self.base, i)
        feats = torch.from_numpy(np.load(path))
        if tuple(feats.shape) != (self.base.frames, self.feature_dim):
            raise RuntimeError(
                f"{path}: features of shape {tuple(feats.shape)}, expected "
                f"{(self.base.frames, self.feature_dim)}; delete {self.folder} and train again"
            )
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
    was_training = model.training
    model.eval()
    for ds in datasets:
        todo = [i for i in range(len(ds)) if not feature_path(folder, ds, i).exists()]
        if not todo:
            continue
        plain = VideoDataset(
            ds.root, split=None, frames=ds.frames, pad=ds.pad, normalize=ds.normalize
        )
        index = {r["video_id"]: i for i, r in enumerate(plain.rows)}
        paths = {ds.rows[i]["video_id"]: feature_path(folder, ds, i) for i in todo}
        subset = torch.utils.data.Subset(plain, [index[ds.rows[i]["video_id"]] for i in todo])
        loader = DataLoader(subset, batch_size=batch_size)
        for batch in track(loader, description="features", quiet=quiet):
            feats = model.encode_frames(batch["video"], batch["mask"]).float().numpy()
            for vid, f in zip(batch["video_id"], feats, strict=True):
                save_array(paths[vid], f)
    model.train(was_training)
