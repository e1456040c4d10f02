"""Spatio-temporal detection: multi-actor ground truth, detectors, tracker, tubes, metrics,
`vidclass detect` and `vidclass evaluate-detection`."""

from __future__ import annotations

import json

import numpy as np

from vidclass.data.synthetic import ACTION_CLASSES, BACKGROUND
from vidclass.data.synthetic_multi import generate_multi, render_multi


def test_multi_scene_truth_is_complete_consistent_and_reproducible(tmp_path):
    frames, truth = render_multi(seed=5, index=0, size=(160, 120), fps=10, seconds=12)
    again, _ = render_multi(seed=5, index=0, size=(160, 120), fps=10, seconds=12)
    assert np.array_equal(frames, again)
    assert frames.shape == (120, 120, 160, 3) and truth["num_frames"] == 120
    ids = {t["track_id"] for t in truth["tracks"]}
    assert 2 <= len(ids) <= 4
    for entry in truth["frames"]:  # every actor in every frame, inside it, with a known label
        assert {o["track_id"] for o in entry["objects"]} == ids
        for o in entry["objects"]:
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120
            assert o["label"] in (*ACTION_CLASSES, BACKGROUND)
    # the per-track segments say the same as the per-frame labels
    for tr in truth["tracks"]:
        for entry in truth["frames"]:
            label = next(o["label"] for o in entry["objects"] if o["track_id"] == tr["track_id"])
            inside = [s["label"] for s in tr["segments"] if s["t_start"] <= entry["t"] < s["t_end"]]
            assert (inside or [BACKGROUND]) == [label]
    assert any(tr["segments"] for tr in truth["tracks"])


def test_actors_continue_where_they_stopped():
    """A new action starts on the actor's last position: no teleports a tracker can't follow."""
    _, truth = render_multi(seed=1, index=2, fps=15, seconds=20)
    jumps = []
    for a, b in zip(truth["frames"][:-1], truth["frames"][1:], strict=True):
        for oa, ob in zip(a["objects"], b["objects"], strict=True):
            ca = np.add(oa["box"][:2], oa["box"][2:]) / 2
            cb = np.add(ob["box"][:2], ob["box"][2:]) / 2
            jumps.append(np.hypot(*(cb - ca)))
    assert max(jumps) < 15  # pixels per frame at 320x240 (fast motions move ~10)


def test_generate_multi_writes_video_and_truth(tmp_path):
    summary = generate_multi(tmp_path, count=2, seed=0, size=(96, 72), fps=8, seconds=3, quiet=True)
    assert summary["num_videos"] == 2
    truth = json.loads((tmp_path / "multi_001.json").read_text())
    assert truth["video"] == "multi_001.mp4" and len(truth["frames"]) == 24
    assert (tmp_path / "multi_001.mp4").stat().st_size > 0
