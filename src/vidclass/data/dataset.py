"""A prepared dataset (see `prepare`) as a torch Dataset of the design's clip dicts.

Each item: `{"video": float32 (C, T, H, W), "mask": bool (T,), "label": int, "video_id": str}`
and, when `with_flow`, `"flow": float32 (2, T-1, H, W)`; when `with_keypoints`, `"keypoints":
float32 (T, 33, 3)` (the person's pose, `vidclass.data.keypoints`; moved with every crop and
mirror the frames get, zeros on padding frames). Normalization happens here, not in
the cache, so one prepared folder serves every normalization; padding frames are added
here too and are exactly zero after normalization (or repeat the last real frame).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vidclass.atomic import save_array
from vidclass.data.derived import open_derived
from vidclass.data.prepare import read_manifest, video_signature
from vidclass.data.sampling import PAD_MODES, pad_clip
from vidclass.data.shard import find_shard_manifests
from vidclass.errors import UserError

NORMALIZATIONS = ("imagenet", "clip", "none")


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation; all off by default.

    `hflip` mirrors left and right: leave it off where direction is the label
    (move_left/move_right, rotate_cw/rotate_ccw).
    """

    crop_scale: float = 1.0  # random crop of this share of the side, resized back; 1 = off
    hflip: bool = False
    temporal_jitter: bool = False  # random window when the cache holds more frames than T

    @property
    def active(self) -> bool:
        return self.crop_scale < 1.0 or self.hflip or self.temporal_jitter


# The prepared.json options that decide what a model is fed; a run records them and
# `evaluate` refuses data prepared otherwise (workers, export_frames or the split do not count).
INPUT_OPTIONS = (
    "frames",
    "interval",
    "sample_fps",
    "size",
    "pad",
    "mean",
    "std",
    "crop",
    "person_boxes",
)
# What a prepared.json without the option means (centre crops predate `--crop` and keep
# their old caches, so they do not record it).
INPUT_DEFAULTS = {"crop": "center"}


def load_prepared_config(root: str | os.PathLike) -> dict:
    """The `prepared.json` of a prepared folder (a sharded one once merged)."""
    path = Path(root) / "prepared.json"
    if not path.is_file():
        if shards := find_shard_manifests(Path(root)):
            raise UserError(
                f"{path}: not found: {root} was prepared in shards that are not merged yet "
                f"({len(shards)} finished, manifest.shard-I-of-N.csv); once every shard has "
                f"finished, run `vidclass prepare {root} --merge`"
            )
        raise UserError(f"{path}: not found; run `vidclass prepare SRC --out {root}` first")
    return json.loads(path.read_text())


def normalize_clip(
    frames: np.ndarray, mode: str, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """uint8 `(T, H, W, 3)` → float32 `(T, H, W, 3)`.

    `imagenet`: the ImageNet mean/std (what pretrained backbones expect); `clip`: each clip by
    its own mean and std, which small nets trained from scratch need when the background
    colour would otherwise dominate (DESIGN.md); `none`: 0–1.
    """
    x = frames.astype(np.float32) / 255.0
    if mode == "imagenet":
        return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    if mode == "clip":
        return (x - x.mean()) / (x.std() + 1e-6)
    if mode == "none":
        return x
    raise UserError(f"unknown normalization {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")


class VideoDataset(Dataset):
    """Clips of one split of a prepared folder (or of several, e.g. ``("train", "val")`` for
    a refit), padded to a common length with a mask."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | tuple[str, ...] | None = "train",
        frames: int | None = None,
        pad: str | None = None,
        normalize: str = "imagenet",
        augment: Augment | None = None,
        with_flow: bool = False,
        flow_method: str = "farneback",
        seed: int = 0,
        with_keypoints: bool = False,
        with_video: bool = True,
    ) -> None:
        self.root = Path(root)
        self.config = load_prepared_config(self.root)
        rows = [r for r in read_manifest(self.root) if r["status"] == "ok"]
        if split is not None:
            splits = (split,) if isinstance(split, str) else tuple(split)
            rows = [r for r in rows if r["split"] in splits]
        if not rows:
            raise UserError(f"{self.root}: no usable videos in split {split!r}")
        self.rows = rows
        self.classes: list[str] = list(self.config["classes"])
        self.frames = int(frames or self.config["frames"])
        self.pad = pad or self.config.get("pad", "zeros")
        if self.pad not in PAD_MODES:
            raise UserError(f"unknown pad mode {self.pad!r}; choose one of {', '.join(PAD_MODES)}")
        if normalize not in NORMALIZATIONS:
            raise UserError(
                f"unknown normalization {normalize!r}; choose one of {', '.join(NORMALIZATIONS)}"
            )
        self.normalize = normalize
        self.mean = tuple(self.config.get("mean", (0.485, 0.456, 0.406)))
        self.std = tuple(self.config.get("std", (0.229, 0.224, 0.225)))
        self.augment = augment or Augment()
        self.with_flow = with_flow
        self.flow_method = flow_method
        self.with_keypoints = with_keypoints
        # False for a model that reads no pixels (the skeleton method): "video" is then a
        # (C, T, 1, 1) zero stand-in, which saves normalising every frame each epoch.
        self.with_video = with_video
        self.seed = seed
        self.epoch = 0
        self._signatures: dict[str, str] = {}
        self._flow_dir: Path | None = None

    def signature(self, i: int) -> str:
        """What derived data of item i is keyed by (see `prepare.video_signature`)."""
        vid = self.rows[i]["video_id"]
        if vid not in self._signatures:
            self._signatures[vid] = video_signature(self.root, vid)
        return self._signatures[vid]

    def flow_dir(self) -> Path:
        """`DATA/flow/<method>-<digest>/`: the flow cache of this method and clip length."""
        if self._flow_dir is None:
            from vidclass.data.flow import FLOW_BOUND

            spec = {
                "method": self.flow_method,
                "frames": self.frames,
                "bound": FLOW_BOUND,
                "dtype": "float16",
            }
            self._flow_dir = open_derived(self.root / "flow", self.flow_method, spec)
        return self._flow_dir

    def set_epoch(self, epoch: int) -> None:
        """New random augmentations each epoch, the same ones for the same (seed, epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> list[int]:
        return [r["label_index"] for r in self.rows]

    def load_frames(self, i: int) -> np.ndarray:
        """The cached uint8 frames `(T_real, H, W, 3)` of item i (memory-mapped)."""
        return np.load(self.root / "cache" / f"{self.rows[i]['video_id']}.npy", mmap_mode="r")

    def __getitem__(self, i: int) -> dict:
        # Seeded per (seed, epoch, item): the same clip whatever the DataLoader workers.
        rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
        frames, start = self._window(self.load_frames(i), rng)
        frames, region, flipped = self._spatial_augment(np.asarray(frames), rng)
        return self._item(i, frames, start, region=region, flipped=flipped)

    def view(self, i: int, v: int, views: int) -> dict:
        """View `v` of `views` of item i, for multi-view evaluation as the field does it:
        evenly spaced temporal windows when the cache holds more frames than a clip, else
        crops of 7/8 of the side along the diagonal, resized back."""
        frames = np.asarray(self.load_frames(i))
        extra = len(frames) - self.frames
        if extra > 0:
            start = round(v * extra / max(1, views - 1))
            return self._item(i, frames[start : start + self.frames], start, cache_flow=False)
        if views == 1:
            return self._item(i, frames, 0)
        t, h, w, _ = frames.shape
        ch, cw = round(h * 7 / 8), round(w * 7 / 8)
        y, x = round(v * (h - ch) / (views - 1)), round(v * (w - cw) / (views - 1))
        crops = np.stack(
            [
                cv2.resize(f[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
                for f in frames
            ]
        )
        region = (x / w, y / h, cw / w, ch / h)
        return self._item(i, crops, 0, cache_flow=False, region=region)

    def _item(
        self,
        i: int,
        frames: np.ndarray,
        start: int,
        cache_flow: bool = True,
        region: tuple[float, float, float, float] | None = None,
        flipped: bool = False,
    ) -> dict:
        """`frames`: the real frames of the clip, from frame `start` of the cached video
        (`region`: the share x, y, w, h of the cached frames they were cropped to; `flipped`:
        then mirrored), which the keypoints follow."""
        row = self.rows[i]
        real = len(frames)
        cache_flow = cache_flow and not self.augment.active
        flow = self._flow(i, frames, start, cache_flow) if self.with_flow else None
        if self.with_video:
            x = normalize_clip(frames, self.normalize, self.mean, self.std)
        else:
            x = np.zeros((len(frames), 1, 1, frames.shape[-1]), np.float32)
        x, mask = pad_clip(x, self.frames, self.pad)
        item = {
            "video": torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 1, 2))),
            "mask": torch.from_numpy(mask),
            "label": row["label_index"],
            "video_id": row["video_id"],
        }
        if flow is not None:
            full = np.zeros((2, self.frames - 1, *flow.shape[2:]), dtype=np.float32)
            n = min(real - 1, self.frames - 1)
            full[:, :n] = flow[:, :n]
            item["flow"] = torch.from_numpy(full)
        if self.with_keypoints:
            item["keypoints"] = torch.from_numpy(self._keypoints(i, start, real, region, flipped))
        return item

    def _keypoints(self, i, start, real, region, flipped) -> np.ndarray:
        """The clip's keypoints `(T, 33, 3)` for its frames as augmented (zeros: padding)."""
        from vidclass.data.keypoints import video_keypoints
        from vidclass.data.views import flip_keypoints

        kp = np.array(video_keypoints(self.root, self.rows[i]["video_id"])[start : start + real])
        if region is not None:
            x, y, w, h = region
            seen = kp[..., 2:] > 0
            kp[..., :2] = np.where(seen, (kp[..., :2] - [x, y]) / [w, h], 0.0)
        if flipped:
            kp = flip_keypoints(kp)
        out = np.zeros((self.frames, *kp.shape[1:]), np.float32)
        out[: min(real, self.frames)] = kp[: self.frames]
        return out

    def _window(self, frames: np.ndarray, rng: random.Random) -> tuple[np.ndarray, int]:
        extra = len(frames) - self.frames
        if extra <= 0:
            return frames, 0
        start = rng.randint(0, extra) if self.augment.temporal_jitter else extra // 2
        return frames[start : start + self.frames], start

    def _spatial_augment(self, frames: np.ndarray, rng: random.Random) -> tuple:
        """(frames, the share x, y, w, h they were cropped to or None, mirrored or not)."""
        aug = self.augment
        region = None
        if aug.crop_scale < 1.0:
            t, h, w, _ = frames.shape
            ch, cw = max(1, round(h * aug.crop_scale)), max(1, round(w * aug.crop_scale))
            y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
            frames = np.stack(
                [
                    cv2.resize(f[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
                    for f in frames
                ]
            )
            region = (x / w, y / h, cw / w, ch / h)
        flipped = aug.hflip and rng.random() < 0.5
        if flipped:
            frames = frames[:, :, ::-1]
        return frames, region, flipped

    def _flow(self, i: int, frames: np.ndarray, start: int, cache: bool) -> np.ndarray:
        """Optical flow of the real frames; cached, when not augmented, under the method, the
        clip length, the exact window (first frame, count) and the video's signature."""
        from vidclass.data.flow import compute_flow

        path = None
        if cache:
            name = f"{self.rows[i]['video_id']}.{self.signature(i)}.{start}-{len(frames)}.npy"
            path = self.flow_dir() / name
            if path.exists():
                return np.load(path).astype(np.float32)
        flow = compute_flow(np.ascontiguousarray(frames), method=self.flow_method)
        if path is not None:
            save_array(path, flow.astype(np.float16))
        return flow.astype(np.float32)
