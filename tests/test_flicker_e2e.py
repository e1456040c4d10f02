"""End to end (slow): a model trained on the default synthetic clips, applied to long
synthetic videos; smoothing must halve the flicker and keep frame-level accuracy.

Run with `make test-all` (or `pytest -m slow`); several minutes on 2 cores.
"""

from __future__ import annotations

import json

import pytest

from vidclass import Classifier
from vidclass.data.prepare import prepare
from vidclass.predict.smoothing import timeline_accuracy
from vidclass.synth.clips import generate
from vidclass.synth.long import generate_long
from vidclass.train.loop import TrainConfig, train


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoothing_on_long_videos(tmp_path):
    generate(tmp_path / "videos", quiet=True)
    prepare(tmp_path / "videos", tmp_path / "prepared", quiet=True)
    train(
        tmp_path / "prepared",
        tmp_path / "run",
        TrainConfig(model="early_fusion", epochs=12, augment=True),
        quiet=True,
    )
    generate_long(tmp_path / "long", count=2, seed=7, seconds=60, quiet=True, repeats=(1, 3))
    clf = Classifier.load(tmp_path / "run")
    for i in range(2):
        truth = json.loads((tmp_path / "long" / f"long_{i:03d}.json").read_text())
        r = clf.predict(tmp_path / "long" / f"long_{i:03d}.mp4", smooth=5)
        raw = timeline_accuracy(r["timeline"], truth["segments"])
        smoothed = timeline_accuracy(r["timeline"], truth["segments"], "smoothed_label")
        assert r["flicker_rate"]["smoothed"] <= r["flicker_rate"]["raw"] / 2, r["flicker_rate"]
        assert smoothed >= raw - 0.02, (raw, smoothed)
