"""Issue 22, point 1: one function decides the region of every frame a model sees
(`vidclass.data.crop`): `prepare --crop` records it per video, training records the mode, and
`Classifier` crops each window the same way, so the model's input tensors are identical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import moving_square_frames
from test_predict_features import CLASSES, calibrated
from vidclass import Classifier
from vidclass.cli import app
from vidclass.data.crop import FrameCrops, apply_crop, crop_clip, fixed_box
from vidclass.data.dataset import VideoDataset, load_prepared_config
from vidclass.data.prepare import merge_shards, prepare, read_manifest
from vidclass.data.sampling import sample_indices
from vidclass.models import build
from vidclass.train.features import cache_features, feature_folder, feature_path
from vidclass.train.loop import TrainConfig, train
from vidclass.video.decode import read_frames
from vidclass.video.writer import write_video

FPS, N, W, H, SIDE = 10, 20, 64, 48, 12  # the conftest square: SIDE px, sliding right
ONE_SPLIT = dict(test_fraction=0.0, val_fraction=0.0, quiet=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two classes of two videos: a square sliding over a plain background, 20 frames."""
    root = tmp_path_factory.mktemp("crop") / "videos"
    for i, label in enumerate(("a", "a", "b", "b")):
        write_video(root / label / f"{label}{i}.mp4", moving_square_frames(N, W, H, seed=i), FPS)
    return root


def square_left(t: int) -> int:
    return int((W - SIDE) * t / (N - 1))


def sidecar(data: Path, row: dict) -> dict:
    return json.loads((data / "cache" / f"{row['video_id']}.json").read_text())


def test_person_boxes_follow_a_moving_figure_and_a_static_clip_is_shown_whole(tmp_path):
    src = tmp_path / "videos"
    write_video(src / "move" / "m.mp4", moving_square_frames(N, W, H, seed=3), FPS)
    still = np.full((N, H, W, 3), 90, np.uint8)
    still[:, 10:30, 20:40] = 200  # a figure that never moves: motion cannot see it
    write_video(src / "still" / "s.mp4", still, FPS)
    data = tmp_path / "prepared"
    prepare(src, data, frames=8, size=32, crop="person", **ONE_SPLIT)

    rows = {r["label"]: r for r in read_manifest(data)}
    assert rows["move"]["crop"] == "person"
    assert rows["still"]["crop"] == "full-fallback"
    prepared = load_prepared_config(data)
    assert (prepared["crop"], prepared["person_boxes"]) == ("person", "motion")

    boxes = np.array(sidecar(data, rows["move"])["crop"]["boxes"])
    assert boxes.shape == (8, 4)  # one per sampled frame, in the video's pixels
    for t, (x1, y1, x2, y2) in zip(sample_indices(N, 8), boxes, strict=True):
        assert x2 - x1 == y2 - y1 < H, "a square, tighter than the frame"
        left, top = square_left(t), H // 2 - SIDE // 2
        assert x1 - 1 <= left and left + SIDE <= x2 + 1, (t, left, (x1, x2))
        assert y1 - 1 <= top and top + SIDE <= y2 + 1, (t, top, (y1, y2))
    assert np.all(np.diff(boxes[:, 0]) >= 0) and boxes[-1, 0] > boxes[0, 0], "it follows"

    still_boxes = sidecar(data, rows["still"])["crop"]["boxes"]
    assert still_boxes == [[0.0, -8.0, 64.0, 56.0]] * 8  # the whole frame padded to a square
    cached = np.load(data / "cache" / f"{rows['still']['video_id']}.npy")
    assert cached.shape == (8, 32, 32, 3)
    assert cached[:, :4].max() == 0 and cached[:, -4:].max() == 0  # the padding
    assert cached[:, 4:-4].min() > 50  # the whole frame: no part of it cut off


@pytest.mark.parametrize("crop", ["center", "full", "person"])
def test_prepare_and_the_classifier_feed_the_model_identical_tensors(crop, clips, tmp_path):
    """Each video as one window sampled as prepare sampled it: the tensor the model gets from
    `Classifier.predict` is the prepared clip's, array for array."""
    data = tmp_path / "prepared"
    prepare(clips, data, frames=10, sample_fps=5, size=32, crop=crop, **ONE_SPLIT)
    run = tmp_path / "run"
    train(data, run, TrainConfig(model="early_fusion", epochs=1, batch_size=4), quiet=True)
    clf = Classifier.load(run)
    assert clf.config["crop"] == crop
    seen: list[np.ndarray] = []
    model = clf.model
    clf.model = lambda batch: (seen.append(batch["video"].numpy().copy()), model(batch))[1]
    ds = VideoDataset(data, split=None, normalize=clf.config["normalize"])
    for i, row in enumerate(ds.rows):
        seen.clear()
        clf.predict(row["path"], window=10, stride=10)
        assert len(seen) == 1, "one window: the whole video"
        np.testing.assert_array_equal(seen[0][0], ds[i]["video"].numpy())
    if crop == "person":
        assert {r["crop"] for r in ds.rows} == {"person"}
        seen.clear()
        clf.localize(ds.rows[0]["path"])  # localize's windows are cropped the same way
        assert seen and all(v.shape[-2:] == (32, 32) for v in seen)


@pytest.mark.parametrize(("name", "tta"), [("cnn_lstm", "flip"), ("two_stream", "none")])
def test_person_windows_share_frame_features_and_score_as_whole_windows(name, tta, make_video):
    """A person crop is decided per frame (`frame_crops`), so overlapping windows share a
    frame's features (and flow): each sampled frame is encoded once, and once mirrored with
    test-time flip, and the fast path (encoder, then head) gives the timeline of running every
    window whole."""
    video = make_video("v.mp4", n=50, fps=10)  # 40 samples at 8 fps
    model = calibrated(name, "small")  # BatchNorm statistics that make windows differ
    config = {
        "model": name,
        "classes": [f"c{i}" for i in range(CLASSES)],
        "frames": 8,
        "size": 32,
        "crop": "person",
        "normalize": "imagenet",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "needs_flow": name == "two_stream",
        "sample_fps": 8.0,
    }
    clf = Classifier(model, config, tta=tta)
    assert clf.reuse_features
    encode, encoded = clf.encoder, []
    clf.encoder = lambda frames: (encoded.append(len(frames)), encode(frames))[1]
    reference = Classifier(model, config, tta=tta)
    reference.reuse_features = False
    units = clf.predict(video)["timeline"]
    expect = reference.predict(video)["timeline"]
    assert [(u["t_start"], u["t_end"]) for u in units] == [
        (u["t_start"], u["t_end"]) for u in expect
    ]
    probs = np.array([u["probs"] for u in units])
    np.testing.assert_allclose(probs, np.array([u["probs"] for u in expect]), atol=1e-5)
    assert len(units) == 9 and np.ptp(probs, axis=0).max() > 1e-3
    if name == "cnn_lstm":  # (two_stream encodes one frame of each window)
        assert sum(encoded) == 40 * 2, "every sampled frame encoded once, and once mirrored"


def stream_crops(frames: np.ndarray, span: int, size: int = 16) -> tuple[list, list[int]]:
    """`FrameCrops` over `frames` one at a time: (the crops in order, how many frames had been
    pushed when each was handed out)."""
    crops = FrameCrops("person", size, span)
    out, when = [], []
    for n, frame in enumerate(frames, 1):
        got = crops.push(frame)
        out += got
        when += [n] * len(got)
    last = crops.finish()
    return out + last, when + [len(frames)] * len(last)


def test_a_frames_person_crop_follows_the_stream_not_the_window():
    """Over a stream longer than a clip, every frame is cropped once, in order, at most about
    1.5 clips after it arrives; its box comes from the clip-long stretch around it (the square
    follows the figure across the whole stream), and a clip of at most `span` frames is
    cropped exactly as `crop_clip` crops it (what prepare writes)."""
    n, span = 60, 8
    frames = moving_square_frames(n, W, H, seed=5)
    out, when = stream_crops(frames, span)
    assert len(out) == n and all(c.person for c in out)
    assert all(w - i <= span + span // 2 for i, w in enumerate(when[: n - span])), when
    boxes = np.stack([c.box for c in out])
    for t, (x1, y1, x2, y2) in enumerate(boxes):
        left = int((W - SIDE) * t / (n - 1))
        assert x1 - 1 <= left and left + SIDE <= x2 + 1, (t, left, (x1, x2))
        assert y2 - y1 == x2 - x1
    assert np.all(np.diff(boxes[:, 0]) >= 0) and boxes[-1, 0] > boxes[0, 0] + 30
    again, _ = stream_crops(frames, span)  # decided by the stream alone: the same every time
    assert all(np.array_equal(a.frame, b.frame) for a, b in zip(out, again, strict=True))

    clip = frames[:span]
    whole = crop_clip(clip, "person", 16)
    alone, _ = stream_crops(clip, span)
    np.testing.assert_array_equal(whole.frames, np.stack([c.frame for c in alone]))
    np.testing.assert_array_equal(whole.boxes, np.stack([c.box for c in alone]))
    assert whole.status == "person"
    # A frame's crop does not change when the stream goes on, once it has been handed out.
    longer, _ = stream_crops(frames[: span + 3 * span // 2 + 1], span)
    np.testing.assert_array_equal(longer[0].frame, out[0].frame)


def test_a_stream_where_nothing_moves_is_shown_whole_frame_by_frame():
    still = np.full((20, H, W, 3), 90, np.uint8)
    out, _ = stream_crops(still, 8)
    assert len(out) == 20 and not any(c.person for c in out)
    assert all(c.box.tolist() == [0.0, -8.0, 64.0, 56.0] for c in out)


def test_changing_the_crop_rebuilds_the_frozen_features(clips, tmp_path):
    data = tmp_path / "prepared"
    model = build("single_frame", 2, backbone="small", freeze_backbone=True)
    folders, files = [], []
    for crop in ("center", "person", "full", "center"):
        prepare(clips, data, frames=8, size=32, crop=crop, **ONE_SPLIT)
        ds = VideoDataset(data, split=None, normalize="clip")
        folder = feature_folder(model, ds)
        cache_features(model, [ds], folder, quiet=True)
        path = feature_path(folder, ds, 0)
        with torch.no_grad():
            expect = model.encode_frames(ds[0]["video"][None], ds[0]["mask"][None])[0].numpy()
        np.testing.assert_allclose(np.load(path), expect, atol=1e-5)
        folders.append(folder)
        files.append(path)
    assert len(set(folders[:3])) == 3, "each crop has its own feature cache"
    assert len(set(files)) == 4, "never a file of another crop (back to center: re-encoded)"
    spec = json.loads((folders[1] / "spec.json").read_text())
    assert spec["prepared"]["crop"] == "person"


def test_the_centre_crop_is_what_prepare_always_wrote(clips, tmp_path):
    """The default changes nothing: the decoder's centre square, byte for byte, and the
    options of a cache made before --crop existed, which is reused as it is."""
    data = tmp_path / "prepared"
    prepare(clips, data, frames=8, size=32, **ONE_SPLIT)
    rows = read_manifest(data)
    assert {r["crop"] for r in rows} == {"center"}
    assert load_prepared_config(data)["crop"] == "center"
    for row in rows:
        record = sidecar(data, row)
        assert record["params"] == {"frames": 8, "interval": None, "sample_fps": None, "size": 32}
        old, _ = read_frames(row["path"], sample_indices(N, 8), 32)
        np.testing.assert_array_equal(np.load(data / "cache" / f"{row['video_id']}.npy"), old)
        del record["crop"]  # as 8f927a1 wrote it
        (data / "cache" / f"{row['video_id']}.json").write_text(json.dumps(record))
    again = prepare(clips, data, frames=8, size=32, **ONE_SPLIT)
    assert again.reused == len(rows)
    assert {r["crop"] for r in read_manifest(data)} == {"center"}


def test_full_pads_the_frame_and_a_box_past_the_border_is_zero_padding():
    assert fixed_box(64, 48, "center").tolist() == [8, 0, 56, 48]
    assert fixed_box(64, 48, "full").tolist() == [0, -8, 64, 56]
    frames = np.full((2, 48, 64, 3), 200, np.uint8)
    out = apply_crop(frames, np.array([[0, -8, 64, 56], [-16, -16, 16, 16]], np.float32), 32)
    assert out.shape == (2, 32, 32, 3)
    assert out[0, :4].max() == 0 and out[0, 28:].max() == 0 and out[0, 4:28].min() == 200
    assert out[1, :16, :16].max() == 0 and out[1, 16:, 16:].min() == 200


def test_cli_crop_option_and_its_summary(clips, tmp_path):
    runner = CliRunner()
    out = tmp_path / "p"
    args = ["prepare", str(clips), "--out", str(out), "--frames", "8", "--size", "32"]
    result = runner.invoke(app, [*args, "--crop", "person", "-q"])
    assert result.exit_code == 0, result.output
    assert "crops: 4 person" in result.output
    bad = subprocess.run(
        [sys.executable, "-m", "vidclass", *args, "--crop", "middle", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "--crop 'middle'" in bad.stderr and "center, full, person" in bad.stderr


def test_shards_merge_with_their_crops(clips, tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    options = dict(frames=8, size=32, crop="person", seed=0, quiet=True)
    prepare(clips, whole, **options)
    for i in range(2):
        prepare(clips, sharded, shard=(i, 2), **options)
    merge_shards(sharded)
    assert read_manifest(sharded) == read_manifest(whole)
    assert load_prepared_config(sharded)["crop"] == "person"


@pytest.mark.parametrize("n", [1, 2, 7, 16, 65])
def test_the_median_background_is_numpys_median_rounded_down(n):
    """The person search's background (a partial sort of uint8 values) is exactly what
    `np.median(...).astype(np.uint8)` gave, so prepared crops stay byte for byte the same."""
    from vidclass.data.motion import median_background

    frames = np.random.default_rng(n).integers(0, 256, (n, 12, 16, 3), dtype=np.uint8)
    expect = np.median(frames, axis=0).astype(np.uint8)
    np.testing.assert_array_equal(median_background(list(frames)), expect)
