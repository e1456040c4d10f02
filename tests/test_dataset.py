"""The prepared folder as the design's clip dicts: shapes, padding, normalization, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidclass.data import IMAGENET_MEAN, IMAGENET_STD, Augment, VideoDataset, prepare
from vidclass.errors import UserError


@pytest.fixture
def prepared(make_video, tmp_path):
    make_video("src/a/v_a_g01_c01.mp4", n=5)  # shorter than the clip: padded
    make_video("src/a/v_a_g02_c01.mp4", n=20, seed=1)
    make_video("src/b/v_b_g01_c01.mp4", n=20, seed=2)
    make_video("src/b/v_b_g02_c01.mp4", n=20, seed=3)
    prepare(
        tmp_path / "src",
        tmp_path / "prep",
        frames=8,
        size=32,
        test_fraction=0.0,
        val_fraction=0.0,
        quiet=True,
    )
    return tmp_path / "prep"


def item_of(ds: VideoDataset, video_id: str) -> dict:
    return ds[[r["video_id"] for r in ds.rows].index(video_id)]


def test_item_contract(prepared):
    ds = VideoDataset(prepared, split="train")
    assert len(ds) == 4 and ds.classes == ["a", "b"]
    item = item_of(ds, "v_b_g01_c01")
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["mask"].dtype == torch.bool and item["mask"].all()
    assert item["label"] == 1


def test_short_video_padded_with_zeros_after_normalization(prepared):
    item = item_of(VideoDataset(prepared, split=None), "v_a_g01_c01")
    assert item["mask"].tolist() == [True] * 5 + [False] * 3
    assert torch.all(item["video"][:, 5:] == 0)
    assert item["video"][:, :5].abs().sum() > 0


def test_repeat_padding(prepared):
    item = item_of(VideoDataset(prepared, split=None, pad="repeat"), "v_a_g01_c01")
    assert torch.equal(item["video"][:, 7], item["video"][:, 4])


def test_imagenet_normalization_matches_cache(prepared):
    ds = VideoDataset(prepared, split=None)
    i = [r["video_id"] for r in ds.rows].index("v_b_g01_c01")
    raw = np.asarray(ds.load_frames(i), np.float32) / 255.0
    expected = (raw - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    got = ds[i]["video"].permute(1, 2, 3, 0).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_clip_normalization_is_standardized(prepared):
    v = item_of(VideoDataset(prepared, split=None, normalize="clip"), "v_b_g01_c01")["video"]
    assert abs(float(v.mean())) < 1e-4 and abs(float(v.std()) - 1) < 1e-2


def test_augmentation_is_deterministic_per_seed_and_epoch(prepared):
    aug = Augment(crop_scale=0.7, hflip=True)
    a, b = (
        VideoDataset(prepared, split=None, augment=aug),
        VideoDataset(prepared, split=None, augment=aug),
    )
    assert torch.equal(a[1]["video"], b[1]["video"])
    plain = VideoDataset(prepared, split=None)[1]["video"]
    changed = [not torch.equal(a[1]["video"], plain)]
    for epoch in range(1, 4):
        a.set_epoch(epoch)
        changed.append(not torch.equal(a[1]["video"], b[1]["video"]))
    assert any(changed)


def test_unknown_split_and_normalization_rejected(prepared):
    with pytest.raises(UserError):
        VideoDataset(prepared, split="test")
    with pytest.raises(UserError):
        VideoDataset(prepared, split=None, normalize="zscore")


def test_missing_folder_rejected(tmp_path):
    with pytest.raises(UserError, match="vidclass prepare"):
        VideoDataset(tmp_path)


def test_works_in_a_dataloader(prepared):
    loader = torch.utils.data.DataLoader(VideoDataset(prepared, split=None), batch_size=2)
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 3, 8, 32, 32) and batch["mask"].shape == (2, 8)
