"""`--backend onnx-int8`: the frame encoder quantised to int8, calibrated on the run's own
training clips, made once and reused, visible in every result; refused with a reason where
it cannot be made."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import moving_square_frames
from vidclass import Classifier
from vidclass.data.prepare import prepare
from vidclass.errors import UserError
from vidclass.train.loop import TrainConfig, train
from vidclass.video.writer import write_video


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A prepared folder (person crop) and two runs on it: tsn (frame-based, ImageNet
    normalization, so frames can be encoded alone) and early_fusion (not frame-based)."""
    root = tmp_path_factory.mktemp("int8")
    for i, label in enumerate(("a", "a", "a", "b", "b", "b")):
        frames = moving_square_frames(30, 64, 48, seed=i)
        write_video(root / "videos" / label / f"{label}{i}.mp4", frames, 10)
    data = root / "prepared"
    prepare(root / "videos", data, frames=8, size=32, crop="person", test_fraction=0.0,
            val_fraction=0.0, quiet=True)  # fmt: skip
    for name in ("tsn", "early_fusion"):
        config = TrainConfig(model=name, epochs=1, batch_size=4, normalize="imagenet")
        train(data, root / name, config, quiet=True)
    return root


def test_the_int8_encoder_is_calibrated_once_and_predicts_like_fp32(runs, capsys):
    video = runs / "videos" / "a" / "a0.mp4"
    fp32 = Classifier.load(runs / "tsn", backend="onnx").predict(video, stride=2)
    capsys.readouterr()
    clf = Classifier.load(runs / "tsn", backend="onnx-int8")
    assert "encoder.int8.onnx" in capsys.readouterr().err  # made now, and said so
    assert (runs / "tsn" / "encoder.int8.onnx").is_file()
    result = clf.predict(video, stride=2)
    assert result["backend"] == "onnx-int8" and fp32["backend"] == "onnx"
    got = np.array([u["probs"] for u in result["timeline"]])
    want = np.array([u["probs"] for u in fp32["timeline"]])
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 0.1, "int8 features stay close to the fp32 ones"
    Classifier.load(runs / "tsn", backend="onnx-int8")
    assert "encoder.int8.onnx" not in capsys.readouterr().err, "reused, not made again"


def test_int8_is_refused_with_a_reason_where_it_cannot_be_made(runs, tmp_path):
    with pytest.raises(UserError, match="frame encoder of frame-based methods"):
        Classifier.load(runs / "early_fusion", backend="onnx-int8")
    moved = tmp_path / "tsn"
    shutil.copytree(runs / "tsn", moved)
    (moved / "encoder.int8.onnx").unlink()
    config = (moved / "config.json").read_text()
    (moved / "config.json").write_text(
        config.replace(str(runs / "prepared"), str(tmp_path / "gone"))
    )
    with pytest.raises(UserError, match="--backend onnx"):
        Classifier.load(moved, backend="onnx-int8")
