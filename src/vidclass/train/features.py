"""Frozen-backbone training: frame features computed once per video, then only the head trains.

With a frozen pretrained encoder the features of a frame never change, so encoding every
clip every epoch is wasted work; on a CPU it is nearly all the work. The features are cached
next to the prepared data: `DATA/features/<backbone>-<digest>/<video_id>.<signature>.npy`,
float32 `(T, D)`. The digest covers everything that determines them (see `feature_spec`) and
the spec is kept and checked in the folder's `spec.json`; the signature is the prepared
video's, so a video that `prepare` redid is encoded again. Each view of the clips
(`data.views`: as prepared, mirrored) has its own folder, its spec naming the view, so adding
a view encodes only that view and no view is ever read for another.

`train` fills the cache before its first epoch; `fill_features` (`vidclass features`) fills
it ahead, whole or one shard of the videos at a time, so a large set's encoding spreads over
machines.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from vidclass.atomic import save_array
from vidclass.data.dataset import VideoDataset, load_prepared_config
from vidclass.data.derived import open_derived
from vidclass.data.shard import parse_shard, shard_of
from vidclass.data.views import HFLIP, ORIG, VIEWS, apply_view, check_flip
from vidclass.errors import UserError
from vidclass.models import build
from vidclass.models.blocks import FrameModel, channels_last_encoder
from vidclass.progress import track
from vidclass.train.config import TrainConfig, resolve_normalize
from vidclass.train.distributed import Dist


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


def feature_spec(model: FrameModel, dataset: VideoDataset, view: str = ORIG) -> dict:
    """Everything that determines the cached features of a clip, besides the video itself."""
    prepared = dataset.config
    spec = {
        "view": {"name": view, "means": VIEWS[view]},
        # No model class: heads that read the encoder's plain output (tsn, temporal_conv,
        # single_frame, late_fusion, two_stream's RGB stream) share one cache. A subclass that
        # transforms the features (cnn_lstm's deltas) overrides encode_frames, named here.
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
    grid = getattr(model.encoder.net, "grid", 1)
    if grid != 1:  # the weights are the same; the pooling of their last map is not
        spec["grid"] = grid
    if prepared.get("crop", "center") != "center":  # centre crops keep their old caches
        spec["prepared"].update(crop=prepared["crop"], person_boxes=prepared.get("person_boxes"))
    return spec


def feature_folder(model: FrameModel, dataset: VideoDataset, view: str = ORIG) -> Path:
    """`DATA/features/<backbone>-<digest>/` of one view, created or verified against its spec."""
    spec = feature_spec(model, dataset, view)
    return open_derived(dataset.root / "features", str(model.config.get("backbone")), spec)


def train_views(config: TrainConfig) -> tuple[str, ...]:
    """The views a run trains on: the clips as prepared, and their mirror images with hflip."""
    return (ORIG, HFLIP) if config.hflip else (ORIG,)


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
    """The items of a VideoDataset with cached `features (T, D)` in place of `video`.

    `folders`: the feature folder of each view; an item is one of `views`, drawn per (seed,
    epoch, item) like `VideoDataset`'s augmentation, so a resumed run draws what an
    uninterrupted one draws. `mirrored(i)` is item i's `hflip` view (test-time flip)."""

    def __init__(
        self,
        base: VideoDataset,
        folders: Path | dict[str, Path],
        feature_dim: int,
        views: Sequence[str] = (ORIG,),
    ) -> None:
        self.base, self.feature_dim, self.views = base, feature_dim, tuple(views)
        self.folders = folders if isinstance(folders, dict) else {ORIG: folders}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        if len(self.views) == 1:
            return self.item(i, self.views[0])
        rng = random.Random(f"{self.base.seed}/{self.base.epoch}/{i}/view")
        return self.item(i, self.views[rng.randrange(len(self.views))])

    def mirrored(self, i: int) -> dict:
        return self.item(i, HFLIP)

    def item(self, i: int, view: str) -> dict:
        """Item i seen through `view`: that view's cached features (and flow, mirrored too)."""
        row = self.base.rows[i]
        folder = self.folders[view]
        path = feature_path(folder, self.base, i)
        feats = torch.from_numpy(np.load(path))
        if tuple(feats.shape) != (self.base.frames, self.feature_dim):
            raise RuntimeError(
                f"{path}: features of shape {tuple(feats.shape)}, expected "
                f"{(self.base.frames, self.feature_dim)}; delete {folder} and train again"
            )
        if self.base.with_flow:
            item = self.base[i]
            item.pop("video")
            item = apply_view(item, view)
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
    quiet: bool = False,
    keep: Callable[[str], bool] | None = None,
    view: str = ORIG,
) -> int:
    """Encode `view` of every clip of `datasets` not cached in `folder` yet (or, with `keep`,
    those of the video ids it keeps); return how many were encoded. Atomic writes: safe to
    interrupt, and safe for several processes filling one folder with different videos.

    Each video is encoded alone, in one forward pass of its own frames: its features are then a
    function of that video only, the same bytes whichever other videos share the run (a
    batch's make-up can change a convolution's rounding), so a fill split into shards gives
    what one fill gives."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = 0
    for ds in datasets:
        todo = [
            i
            for i in range(len(ds))
            if (keep is None or keep(ds.rows[i]["video_id"]))
            and not feature_path(folder, ds, i).exists()
        ]
        if not todo:
            continue
        plain = VideoDataset(
            ds.root, split=None, frames=ds.frames, pad=ds.pad, normalize=ds.normalize
        )
        index = {r["video_id"]: i for i, r in enumerate(plain.rows)}
        with channels_last_encoder(model):
            for i in track(todo, description=f"features ({view})", quiet=quiet):
                item = apply_view(plain[index[ds.rows[i]["video_id"]]], view)
                video, mask = item["video"][None].to(device), item["mask"][None].to(device)
                feats = model.encode_frames(video, mask)[0].float().cpu().numpy()
                save_array(feature_path(folder, ds, i), feats)
                encoded += 1
    model.train(was_training)
    return encoded


@dataclass
class FeatureFill:
    """What `fill_features` did."""

    folder: Path  # of the clips as prepared
    encoded: int  # computed now, over every view
    videos: int  # this shard's videos (all of them without a shard)
    folders: dict[str, Path] | None = None  # of each view


def fill_features(
    data: str | Path,
    config: TrainConfig,
    shard: tuple[int, int] | str | None = None,
    quiet: bool = False,
) -> FeatureFill:
    """Fill the frozen-feature cache that `train(data, out, config)` would fill and then read,
    ahead of training: all of it, or with `shard=(I, N)` (or `"I/N"`) the I-th of N shards of
    the videos (by a stable hash of the video id), so that N processes or machines share the
    work; training then finds every clip encoded. The model is built as `train` builds it
    (same seed, same options), so its features are the ones training would compute."""
    from vidclass.train.loop import seed_everything  # loop imports this module

    data = Path(data)
    index, count = (0, 1) if shard is None else parse_shard(_shard_text(shard))
    classes = load_prepared_config(data)["classes"]
    normalize = resolve_normalize(config)
    seed_everything(config.seed)
    model = build(config.model, len(classes), **config.options)
    if not uses_feature_cache(model):
        raise UserError(
            f"--model {config.model} with these options encodes its clips each epoch, so "
            "there are no features to cache: a frame model with --freeze-backbone has them"
        )
    model.to(Dist().device)
    train_ds = VideoDataset(data, split="train", normalize=normalize)
    datasets = [train_ds]
    try:
        datasets.append(VideoDataset(data, split=config.val_split, normalize=normalize))
    except UserError:
        pass  # no validation split: training encodes none either
    if config.hflip:
        check_flip(classes, "--hflip")
    folders = {v: feature_folder(model, train_ds, v) for v in train_views(config)}

    def keep(video_id: str) -> bool:
        return shard_of(video_id, count) == index

    encoded = sum(
        cache_features(model, datasets, folder, quiet=quiet, keep=keep, view=view)
        for view, folder in folders.items()
    )
    mine = {r["video_id"] for d in datasets for r in d.rows if keep(r["video_id"])}
    return FeatureFill(folder=folders[ORIG], encoded=encoded, videos=len(mine), folders=folders)


def _shard_text(shard: tuple[int, int] | str) -> str:
    return shard if isinstance(shard, str) else f"{shard[0]}/{shard[1]}"
