"""Probing: good videos are measured, bad ones give a one-line reason, never a crash."""

from __future__ import annotations

import csv

import av
import numpy as np
import pytest

from vidclass.errors import VideoError
from vidclass.video.decode import read_frames
from vidclass.video.probe import probe


def write_audio_only(path, seconds: float = 1.0, rate: int = 16000) -> None:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = np.sin(np.linspace(0, 440 * seconds * 2 * np.pi, int(rate * seconds))) * 0.3
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32)[None], format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_probe_good_video(make_video):
    path = make_video("a.mp4", n=25, fps=10, width=64, height=48)
    info = probe(path)
    assert (info.width, info.height, info.num_frames) == (64, 48, 25)
    assert info.fps == pytest.approx(10)
    assert info.duration_s == pytest.approx(2.5, abs=0.15)
    assert info.codec == "h264"


def test_read_frames_resizes_and_crops(make_video):
    path = make_video("a.mp4", n=12, width=64, height=48)
    frames, seen = read_frames(path, [0, 5, 11], size=32)
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
    assert seen == 12


def test_read_frames_past_the_end_returns_what_exists(make_video):
    path = make_video("a.mp4", n=10)
    frames, seen = read_frames(path, [0, 4, 8, 12, 16], size=None)
    assert len(frames) == 3 and seen == 10
    assert frames.shape[1:] == (48, 64, 3)


def reason(path) -> str:
    with pytest.raises(VideoError) as info:
        probe(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return info.value.reason


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert "empty" in reason(p)


def test_missing_file(tmp_path):
    assert "not found" in reason(tmp_path / "nope.mp4")


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my notes, not a video\n" * 20)
    assert "not a readable video" in reason(p)


def test_truncated_mp4(make_video, tmp_path):
    good = make_video("good.mp4", n=40)
    data = good.read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) // 2])
    assert reason(p)


def test_audio_only_file(tmp_path):
    p = tmp_path / "speech.mp4"
    write_audio_only(p)
    assert "no video stream" in reason(p)


def test_folder_is_not_a_video(tmp_path):
    assert "folder" in reason(tmp_path)


def test_probe_real_clips(realclips):
    with open(realclips / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        info = probe(realclips / row["filename"])
        assert (info.width, info.height) == (int(row["width"]), int(row["height"]))
        assert info.fps == pytest.approx(float(row["fps"]), rel=0.01)
        assert info.duration_s == pytest.approx(float(row["duration_s"]), rel=0.03)
        expected = float(row["fps"]) * float(row["duration_s"])
        assert abs(info.num_frames - expected) <= 2, row["filename"]
