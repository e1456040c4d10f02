"""Frame features shared by overlapping windows (vidclass.predict.features): the timeline is
the one of encoding every window whole, each sampled frame is encoded once, memory is bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidclass import Classifier
from vidclass.models import build
from vidclass.models.run import save_model
from vidclass.predict import features as frame_features

FRAMES, SIZE, CLASSES = 8, 64, 5


def calibrated(name: str, backbone: str, seed: int = 0) -> nn.Module:
    """An untrained model whose BatchNorm statistics come from random inputs, so features and
    probabilities vary from frame to frame (a fresh EfficientNet-Lite0 outputs ~1e-7
    everywhere, which would make any two timelines agree)."""
    torch.manual_seed(seed)
    model = build(name, CLASSES, backbone=backbone, pretrained=False)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    g = torch.Generator().manual_seed(seed)
    batch = {
        "video": torch.randn(4, 3, FRAMES, SIZE, SIZE, generator=g),
        "mask": torch.ones(4, FRAMES, dtype=torch.bool),
        "flow": torch.randn(4, 2, FRAMES - 1, SIZE, SIZE, generator=g) * 0.3,
    }
    model.train()
    with torch.no_grad():
        model(batch)
    return model.eval()


def config(name: str, normalize: str = "imagenet") -> dict:
    return {
        "model": name,
        "classes": [f"c{i}" for i in range(CLASSES)],
        "frames": FRAMES,
        "size": SIZE,
        "normalize": normalize,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "pad": "zeros",
        "needs_flow": name == "two_stream",
        "sample_fps": 8.0,
    }


def timeline(clf: Classifier, video, **kwargs) -> tuple[list, np.ndarray]:
    units = clf.predict(video, **kwargs)["timeline"]
    return [(u["t_start"], u["t_end"]) for u in units], np.array([u["probs"] for u in units])


def whole_windows(model: nn.Module, cfg: dict) -> Classifier:
    """The reference: every window encoded whole (the path before frame features)."""
    clf = Classifier(model, cfg)
    clf.reuse_features = False
    return clf


class CountingEncoder:
    def __init__(self, encode: frame_features.Encoder) -> None:
        self.encode, self.frames = encode, 0

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        self.frames += len(frames)
        return self.encode(frames)


@pytest.mark.parametrize(
    ("name", "backbone"),
    [
        ("single_frame", "efficientnet_lite0"),
        ("late_fusion", "efficientnet_lite0"),
        ("cnn_lstm", "efficientnet_lite0"),
        ("cnn_lstm", "small"),
        ("two_stream", "small"),
        ("tsn", "efficientnet_lite0"),
        ("temporal_conv", "small"),
    ],
)
def test_shared_features_give_the_whole_window_timeline(name, backbone, make_video):
    video = make_video("v.mp4", n=50, fps=10)  # 40 samples at 8 fps
    model, cfg = calibrated(name, backbone), config(name)
    clf = Classifier(model, cfg)
    assert clf.reuse_features
    clf.encoder = counting = CountingEncoder(clf.encoder)
    reference = whole_windows(model, cfg)
    # Default stride; a stride that leaves frames between windows; a window shorter than the
    # model's frames, so every window is padded and masked.
    for kwargs in ({}, {"stride": 3}, {"window": 5, "stride": 2}):
        times, probs = timeline(clf, video, **kwargs)
        ref_times, ref_probs = timeline(reference, video, **kwargs)
        assert times == ref_times and len(times) >= 9
        np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
        assert np.ptp(ref_probs, axis=0).max() > 1e-3  # windows differ: the check has teeth
    if name in ("single_frame", "cnn_lstm", "tsn", "temporal_conv"):  # each frame encoded once
        assert counting.frames == 3 * 40


def test_a_video_shorter_than_a_window_is_padded_the_same_way(make_video):
    video = make_video("short.mp4", n=6, fps=10)  # 5 samples < 8 frames
    model, cfg = calibrated("cnn_lstm", "efficientnet_lite0"), config("cnn_lstm")
    times, probs = timeline(Classifier(model, cfg), video)
    ref_times, ref_probs = timeline(whole_windows(model, cfg), video)
    assert times == ref_times and len(times) == 1
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)


def test_features_are_kept_for_one_window_only(make_video, monkeypatch):
    sizes: list[int] = []
    get = frame_features.FeatureRing.get

    def recording(self, indices, frames):
        out = get(self, indices, frames)
        sizes.append(len(self.rows))
        return out

    monkeypatch.setattr(frame_features.FeatureRing, "get", recording)
    video = make_video("long.mp4", n=200, fps=10)  # 160 samples, 39 windows
    model, cfg = calibrated("cnn_lstm", "small"), config("cnn_lstm")
    Classifier(model, cfg).predict(video)
    assert len(sizes) >= 39 and max(sizes) == FRAMES


def test_models_whose_frames_depend_on_the_window_keep_the_whole_window_path():
    model = calibrated("cnn_lstm", "small")
    per_clip = Classifier(model, config("cnn_lstm", normalize="clip"))
    assert not per_clip.reuse_features and per_clip.head is None
    assert "per clip" in frame_features.reuse_reason(model, config("cnn_lstm", "clip"))
    early = build("early_fusion", CLASSES).eval()
    assert not Classifier(early, config("early_fusion")).reuse_features


def test_onnx_backend_encodes_frames_in_onnxruntime(make_video, tmp_path):
    video = make_video("v.mp4", n=30, fps=10)
    model, cfg = calibrated("cnn_lstm", "efficientnet_lite0"), config("cnn_lstm")
    save_model(tmp_path / "run", model, {**cfg, "options": model.config})
    onnx = Classifier.load(tmp_path / "run", backend="onnx")
    assert onnx.reuse_features and (tmp_path / "run" / "encoder.onnx").is_file()
    times, probs = timeline(onnx, video)
    ref_times, ref_probs = timeline(Classifier.load(tmp_path / "run"), video)
    assert times == ref_times
    np.testing.assert_allclose(probs, ref_probs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode", ["imagenet", "none"])
def test_frames_are_normalized_from_a_table_exactly_as_the_clips_were(mode):
    """predict normalizes each frame from a per-channel table of the 256 grey levels: the
    numbers `normalize_clip` gives training, bit for bit, mirrored frames included."""
    from vidclass.data.dataset import normalize_clip
    from vidclass.predict.features import normalized_frames

    config = {"normalize": mode, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(3)]
    frames.append(frames[0][:, ::-1])  # a strided view, as the mirror ring passes
    expect = normalize_clip(np.stack(frames), mode, config["mean"], config["std"])
    np.testing.assert_array_equal(normalized_frames(config, frames), expect.transpose(0, 3, 1, 2))
