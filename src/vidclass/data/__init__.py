"""Users' videos → tensors: sample, prepare, split, and the Dataset over the result (probing
and decoding are `vidclass.video`'s, re-exported here as the public `vidclass.data.*`).

May import `vidclass.video` and the shared utilities (`errors`, `progress`, `parallel`); never
the synthetic renderer, models, training or inference. Torch is imported only by the Dataset,
so the decode workers of `prepare` start light.
"""

from __future__ import annotations

from vidclass.data.prepare import PrepareResult, merge_shards, prepare, read_manifest
from vidclass.data.sampling import pad_clip, sample_indices
from vidclass.data.splits import read_ucf101_splits, stratified_group_split
from vidclass.video.decode import IMAGENET_MEAN, IMAGENET_STD, read_frames
from vidclass.video.probe import VideoInfo, probe

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Augment",
    "PrepareResult",
    "VideoDataset",
    "VideoInfo",
    "merge_shards",
    "pad_clip",
    "prepare",
    "probe",
    "read_frames",
    "read_manifest",
    "read_ucf101_splits",
    "sample_indices",
    "stratified_group_split",
]


def __getattr__(name: str):
    if name in ("VideoDataset", "Augment"):
        from vidclass.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'vidclass.data' has no attribute {name!r}")
