"""Inference: whole-video labels, timelines, smoothing and flicker, annotated copies, real
clips, bad input and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from vidclass import Classifier
from vidclass.cli import app
from vidclass.data.prepare import prepare
from vidclass.errors import UserError
from vidclass.predict.smoothing import RollingAverage, flicker_rate, label_changes, rolling_average
from vidclass.synth.clips import generate
from vidclass.train.loop import TrainConfig, train

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """An early_fusion and a single_frame run trained for one epoch on tiny synthetic data."""
    root = tmp_path_factory.mktemp("predict")
    generate(root / "videos", per_class=2, size=(64, 48), fps=8, seed=2, quiet=True)
    prepare(root / "videos", root / "prepared", frames=8, size=32, quiet=True)
    out = {}
    for name in ("early_fusion", "single_frame"):
        out[name] = root / name
        train(
            root / "prepared",
            out[name],
            TrainConfig(model=name, epochs=1, batch_size=4),
            quiet=True,
        )
    out["videos"] = root / "videos"
    return out


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_rolling_average_and_flicker():
    probs = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    sm = rolling_average(probs, 2)
    assert np.allclose(sm, [[1, 0], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    avg = RollingAverage(3)
    assert np.allclose(avg.update(np.array([0.0, 1.0])), [0, 1])
    assert label_changes([0, 1, 1, 0]) == 2
    assert flicker_rate([0, 1, 1, 0], duration_s=30) == pytest.approx(4.0)
    assert flicker_rate([3], duration_s=30) == 0.0


def test_predict_structure_on_a_clip(runs):
    video = next(runs["videos"].rglob("*.mp4"))
    clf = Classifier.load(runs["early_fusion"])
    result = clf.predict(video, smooth=3, top_k=3)
    assert result["label"] in clf.classes and 0 < result["score"] <= 1
    assert len(result["top_k"]) == 3
    assert result["top_k"][0]["label"] == result["label"]
    assert result["timeline"], "at least one window"
    for unit in result["timeline"]:
        assert unit["t_end"] > unit["t_start"] >= 0
        assert len(unit["probs"]) == 13 and abs(sum(unit["probs"]) - 1) < 1e-3
    mean = np.mean([u["probs"] for u in result["timeline"]], axis=0)
    assert result["label"] == clf.classes[int(np.argmax(mean))]
    assert set(result["flicker_rate"]) == {"raw", "smoothed"}
    json.dumps(result)  # the JSON the CLI writes


def test_single_frame_is_scored_per_frame_with_majority(runs):
    video = next(runs["videos"].rglob("*.mp4"))
    clf = Classifier.load(runs["single_frame"])
    result = clf.predict(video)
    assert result["unit"] == "frame" and "majority_label" in result
    n = len(result["timeline"])
    with av.open(str(video)) as c:
        duration = float(c.streams.video[0].duration * c.streams.video[0].time_base)
    assert abs(n - duration * clf.sample_fps) <= 2  # one unit per sampled frame
    labels = [u["label"] for u in result["timeline"]]
    assert labels.count(result["majority_label"]) == max(labels.count(x) for x in labels)


def test_stream_yields_the_same_timeline(runs):
    video = next(runs["videos"].rglob("*.mp4"))
    clf = Classifier.load(runs["early_fusion"])
    streamed = list(clf.stream(video, smooth=2))
    predicted = clf.predict(video, smooth=2)["timeline"]
    assert [u["t_start"] for u in streamed] == [u["t_start"] for u in predicted]
    assert np.allclose([u["probs"] for u in streamed], [u["probs"] for u in predicted])


def test_real_clips_predict_and_annotate(runs, realclips, tmp_path):
    clf = Classifier.load(runs["early_fusion"])
    for video in sorted(realclips.glob("*.*")):
        if video.suffix not in (".avi", ".mp4", ".mkv"):
            continue
        out = tmp_path / f"{video.stem}.mp4"
        result = clf.predict(video, smooth=3, annotate=out)
        assert result["label"] in clf.classes, video.name
        assert all(u["t_end"] <= result["duration_s"] + 1.0 for u in result["timeline"])
        assert frame_count(out) == frame_count(video), video.name
        with av.open(str(out)) as c, av.open(str(video)) as src:
            a, b = c.streams.video[0].codec_context, src.streams.video[0].codec_context
            assert a.name == "h264"
            assert (a.width, a.height) == (b.width + b.width % 2, b.height + b.height % 2)


def test_cli_bad_inputs_and_exit_codes(runs, tmp_path):
    good = next(runs["videos"].rglob("*.mp4"))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:300])
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "pred.json"
    cmd = [sys.executable, "-m", "vidclass", "predict", str(runs["early_fusion"])]
    batch = subprocess.run(
        [*cmd, str(good), str(text), str(corrupt), str(missing), "--json", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert batch.returncode == 2, batch.stderr
    assert len(json.loads(out.read_text())) == 1  # the good one is still predicted
    errors = [line for line in batch.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and any("not found" in e for e in errors)
    for bad in (text, corrupt, missing):
        single = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
        assert single.returncode == 1
        assert str(bad) in single.stderr and len(single.stderr.strip().splitlines()) == 1


def test_cli_incompatible_checkpoint(runs, tmp_path):
    broken = tmp_path / "run"
    broken.mkdir()
    config = json.loads((runs["early_fusion"] / "config.json").read_text())
    config["model"] = "slow_fusion"
    config["options"] = {}
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "model.safetensors").write_bytes(
        (runs["early_fusion"] / "model.safetensors").read_bytes()
    )
    video = next(runs["videos"].rglob("*.mp4"))
    proc = subprocess.run(
        [sys.executable, "-m", "vidclass", "predict", str(broken), str(video)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "does not fit model 'slow_fusion'" in proc.stderr


def test_cli_folder_with_plots(runs, tmp_path):
    folder = runs["videos"] / "open_door"
    result = runner.invoke(
        app,
        [
            "predict",
            str(runs["early_fusion"]),
            str(folder),
            "--plot",
            f"{tmp_path / 'plots'}/",
            "--json",
            str(tmp_path / "p.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "p.json").read_text())
    assert len(results) == 2
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2


def test_point10_folder_scan_takes_a_gif_and_names_skipped_files(runs, make_gif, tmp_path):
    """predict over a folder: the GIF is a video like any other; notes.txt beside it is
    reported as skipped (one line, on stderr), not dropped without a word."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    clip = next((runs["videos"] / "open_door").glob("*.mp4"))
    (folder / clip.name).write_bytes(clip.read_bytes())
    gif = make_gif("mixed/sub/wave.gif", n=16)
    (folder / "notes.txt").write_text("which take was best?")
    out = tmp_path / "p.json"
    result = runner.invoke(
        app, ["predict", str(runs["early_fusion"]), str(folder), "--json", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    predicted = {Path(r["video"]).name: r for r in json.loads(out.read_text())}
    assert set(predicted) == {clip.name, gif.name}
    assert predicted[gif.name]["duration_s"] == pytest.approx(1.6, abs=0.15)
    lines = [line for line in result.output.splitlines() if "skipped" in line]
    assert len(lines) == 1 and "skipped 1 file (1 .txt; e.g. notes.txt)" in lines[0], lines
    assert ".gif" in lines[0]  # the hint names the extensions taken as videos


def test_onnx_backend_matches_torch(runs, tmp_path):
    video = next(runs["videos"].rglob("*.mp4"))
    result = runner.invoke(
        app,
        [
            "export",
            str(runs["early_fusion"]),
            "--onnx",
            str(tmp_path / "m.onnx"),
            "--dynamic-batch",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").stat().st_size > 0
    a = Classifier.load(runs["early_fusion"]).predict(video)
    b = Classifier.load(runs["early_fusion"], backend="onnx").predict(video)
    assert b["backend"] == "onnx" and a["label"] == b["label"]
    pa = np.array([u["probs"] for u in a["timeline"]])
    pb = np.array([u["probs"] for u in b["timeline"]])
    assert np.abs(pa - pb).max() < 1e-4


def test_smoothing_halves_flicker_without_losing_accuracy_on_noisy_windows():
    """The mechanism on a controlled stream: 8 long actions of 20-40 windows each, and a
    window classifier that is right 85 % of the time and otherwise names a random class."""
    from vidclass.predict.smoothing import timeline_accuracy

    rng = np.random.default_rng(0)
    k, timeline, segments, t = 12, [], [], 0.0
    for _ in range(8):
        label, n = int(rng.integers(k)), int(rng.integers(20, 41))
        segments.append({"label": str(label), "t_start": t, "t_end": t + n})
        for _ in range(n):
            p = rng.dirichlet(np.ones(k)) * 0.5
            p[label if rng.random() < 0.85 else int(rng.integers(k))] += 1.0
            timeline.append({"t_start": t, "t_end": t + 1, "probs": p / p.sum()})
            t += 1
    probs = np.array([u["probs"] for u in timeline])
    smoothed = rolling_average(probs, 5, centred=True)
    for u, p, s in zip(timeline, probs, smoothed, strict=True):
        u["label"], u["smoothed_label"] = str(int(np.argmax(p))), str(int(np.argmax(s)))
    raw = flicker_rate([u["label"] for u in timeline], t)
    smooth = flicker_rate([u["smoothed_label"] for u in timeline], t)
    acc_raw = timeline_accuracy(timeline, segments)
    acc_smooth = timeline_accuracy(timeline, segments, "smoothed_label")
    assert smooth <= raw / 2, (raw, smooth)
    assert acc_smooth >= acc_raw - 0.02, (acc_raw, acc_smooth)
    # The causal average (live display) smooths as much but lags behind each change.
    causal = rolling_average(probs, 5)
    assert np.allclose(causal[4], probs[:5].mean(0), atol=1e-6)
    assert np.allclose(smoothed[10], probs[8:13].mean(0), atol=1e-6)


def test_synth_long_video_has_ground_truth(tmp_path):
    result = runner.invoke(
        app,
        [
            "synth",
            "--kind",
            "long",
            "--out",
            str(tmp_path),
            "--seconds",
            "20",
            "--size",
            "96x72",
            "--fps",
            "10",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "long_000.json").read_text())
    segments = truth["segments"]
    assert len(segments) >= 2 and truth["duration_s"] >= 20
    assert all(0 <= s["t_start"] < s["t_end"] <= truth["duration_s"] for s in segments)
    assert all(a["t_end"] <= b["t_start"] for a, b in zip(segments, segments[1:], strict=False))
    assert all(s["label"] != "background" for s in segments)
    assert frame_count(tmp_path / "long_000.mp4") == round(truth["duration_s"] * 10)


def test_live_source_path_prints_as_it_goes(runs):
    """A URL source takes the live path (frame timestamps, no duration): file:// stands in
    for a camera or network stream here."""
    video = next(runs["videos"].rglob("*.mp4"))
    url = f"file://{video}"
    units = list(Classifier.load(runs["early_fusion"]).stream(url, smooth=2))
    assert units and all(u["t_end"] > u["t_start"] for u in units)
    result = runner.invoke(app, ["predict", str(runs["early_fusion"]), url])
    assert result.exit_code == 0, result.output
    assert "live" in result.output and units[0]["smoothed_label"] in result.output


def test_decoder_core_is_restored_after_overlapping_jobs():
    """Two jobs overlapping in time (the HTTP worker pool): torch's process-wide thread count
    is lowered once and restored only when the last one ends."""
    import torch

    from vidclass.predict.threads import decoder_core

    before = torch.get_num_threads()
    first, second = decoder_core(), decoder_core()
    first.__enter__()
    second.__enter__()
    assert torch.get_num_threads() == max(1, before - 1)
    first.__exit__(None, None, None)
    assert torch.get_num_threads() == max(1, before - 1)
    second.__exit__(None, None, None)
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------- issue 12: no silent wrong results


def test_point9_predict_flags_a_video_cut_off_mid_stream(runs, truncated_video, make_video):
    clf = Classifier.load(runs["early_fusion"])
    result = clf.predict(truncated_video)
    # FFmpeg's frame-threaded decoder drops the error itself; the frames ending at 2.9 s of
    # the 6 s announced is what tells
    assert result["truncated"] is True and result["truncated_reason"]
    assert 1.0 <= result["decoded_duration_s"] <= 5.0 < result["duration_s"] == 6.0
    last_end = result["decoded_duration_s"] + 1 / result["sample_fps"]  # a sample's span
    assert max(u["t_end"] for u in result["timeline"]) <= last_end + 1e-3
    whole = clf.predict(make_video("whole.mp4", n=30, fps=10))
    assert whole["truncated"] is False and whole["decoded_duration_s"] == pytest.approx(3.0)
    # the CLI: one warning line per truncated video, the result still written
    res = runner.invoke(app, ["predict", str(runs["early_fusion"]), str(truncated_video), "-q"])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cut.mp4" in warnings[0] and "decoding stopped" in warnings[0]


def test_point9_a_file_that_just_ends_early_is_flagged(cut_video):
    """A cut-off AVI stops without any FFmpeg error, and FFmpeg re-estimates its duration
    from what is left: its header's frame count still tells it was cut off."""
    from vidclass.video.reader import iter_frames

    whole, cut = cut_video("avi", 0.7)
    info, frames = iter_frames(cut, 32, 5.0)
    n = sum(1 for _ in frames)
    assert info.frames_announced == 60 and 0 < n < 40
    assert info.truncated and info.decoded_duration_s < 5.0 and "header" in info.truncated_reason
    info, frames = iter_frames(whole, 32, 5.0)
    assert list(frames) and not info.truncated and info.decoded_duration_s == pytest.approx(6.0)


def test_an_error_before_the_first_frame_keeps_its_reason(cut_video, monkeypatch):
    """A decoder that fails at once reports FFmpeg's reason, not a generic 'no frame'."""
    from vidclass.errors import VideoError
    from vidclass.video import reader

    real_open = reader.open_source

    class FailingContainer:
        def __init__(self, container) -> None:
            self.real = container

        @property
        def streams(self):  # fails before the decode loop starts
            raise av.error.FFmpegError(1094995529, "Invalid data found when processing input")

        def __getattr__(self, name):
            return getattr(self.real, name)

    def open_failing(source):
        container, info = real_open(source)
        return FailingContainer(container), info

    monkeypatch.setattr(reader, "open_source", open_failing)
    whole, _ = cut_video("avi", 0.7)
    _, frames = reader.iter_frames(whole, 32, 5.0)
    with pytest.raises(VideoError, match="decoding failed.*Invalid data"):
        list(frames)


def test_point11_non_positive_window_and_stride_are_refused(runs):
    video = next(runs["videos"].rglob("*.mp4"))
    clf = Classifier.load(runs["early_fusion"])
    for kwargs in ({"window": 0}, {"stride": 0}, {"window": -1}, {"stride": -2}):
        with pytest.raises(UserError, match="--window|--stride"):
            clf.predict(video, **kwargs)
        with pytest.raises(UserError):
            list(clf.stream(video, **kwargs))
    with pytest.raises(UserError, match="--top-k"):
        clf.predict(video, top_k=0)
    assert clf.predict(video, window=4, stride=1)["stride"] == 1  # positive values still run


def test_point11_summary_of_an_empty_timeline_is_a_user_error(runs, monkeypatch):
    """No scored window (e.g. a source that gave no sampled frame): a clear error, not an
    IndexError from the mean of nothing."""
    from vidclass.predict import stream
    from vidclass.predict.options import PredictOptions
    from vidclass.predict.summary import Scored, summarize

    video = next(runs["videos"].rglob("*.mp4"))
    clf = Classifier.load(runs["early_fusion"])
    with pytest.raises(UserError, match="no window could be scored"):
        summarize(clf, Scored(video, None, [], np.zeros((0, 13)), 0.0), PredictOptions())

    def no_units(*args, **kwargs):
        yield "info", None, None

    monkeypatch.setattr(stream, "events", no_units)
    with pytest.raises(UserError, match=str(video.name)):
        clf.predict(video)


def test_point11_single_frame_onnx_gives_the_torch_timeline(runs):
    video = next(runs["videos"].rglob("*.mp4"))
    a = Classifier.load(runs["single_frame"]).predict(video)
    b = Classifier.load(runs["single_frame"], backend="onnx").predict(video)
    assert a["unit"] == b["unit"] == "frame" and len(a["timeline"]) == len(b["timeline"]) > 8
    assert [(u["t_start"], u["t_end"]) for u in a["timeline"]] == [
        (u["t_start"], u["t_end"]) for u in b["timeline"]
    ]
    pa = np.array([u["probs"] for u in a["timeline"]])
    pb = np.array([u["probs"] for u in b["timeline"]])
    assert np.abs(pa - pb).max() < 1e-4 and a["majority_label"] == b["majority_label"]


def test_point11_classifier_leaves_flush_denormal_as_it_was(runs):
    import torch

    def flushing() -> bool:
        return float((torch.tensor([1e-40]) * 1.0).item()) == 0.0

    video = next(runs["videos"].rglob("*.mp4"))
    torch.set_flush_denormal(False)
    try:
        assert not flushing()
        clf = Classifier.load(runs["early_fusion"])
        assert not flushing(), "constructing a Classifier changed the process's float mode"
        clf.predict(video)
        assert not flushing(), "predicting left denormals flushed"
    finally:
        torch.set_flush_denormal(False)


# ------------------------------------------------- issue 21 point 6: per-video outputs


def test_issue21_p6_predict_names_outputs_by_their_path_under_the_folder(
    runs, make_video, tmp_path
):
    """walk/p1.mp4 and run/p1.mp4, a.mp4 and a.avi: four JSON files and four plots, none
    overwriting another (8f927a1 named them by stem, and `--json preds/` wrote one file)."""
    expected = {
        "walk/p1": "walk/p1.mp4",
        "run/p1": "run/p1.mp4",
        "a.mp4": "a.mp4",
        "a.avi": "a.avi",
    }
    for i, rel in enumerate(expected.values()):
        make_video(f"videos/{rel}", n=16, seed=i)
    preds, plots = tmp_path / "preds", tmp_path / "plots"
    args = ["predict", str(runs["early_fusion"]), str(tmp_path / "videos"), "-q"]
    res = runner.invoke(app, [*args, "--json", f"{preds}/", "--plot", f"{plots}/"])
    assert res.exit_code == 0, res.output
    written = {p.relative_to(preds).as_posix(): p for p in preds.rglob("*.json")}
    assert sorted(written) == sorted(f"{name}.json" for name in expected)
    for name, rel in expected.items():
        video = json.loads(written[f"{name}.json"].read_text())["video"]
        assert video == str(tmp_path / "videos" / rel)
    assert sorted(p.relative_to(plots).as_posix() for p in plots.rglob("*.png")) == sorted(
        f"{name}.png" for name in expected
    )


def test_issue21_p6_predict_json_is_a_folder_only_with_a_slash(runs, make_video, tmp_path):
    clip = make_video("one/clip.mp4", n=16)
    make_video("two/x.mp4", n=16), make_video("two/y.mp4", n=16, seed=1)
    run = str(runs["early_fusion"])
    res = runner.invoke(app, ["predict", run, str(clip), "--json", f"{tmp_path / 'd'}/", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "d" / "clip.json").read_text())["video"] == str(clip)
    res = runner.invoke(
        app, ["predict", run, str(tmp_path / "two"), "--json", str(tmp_path / "all"), "-q"]
    )
    assert res.exit_code == 0, res.output
    assert [Path(r["video"]).name for r in json.loads((tmp_path / "all").read_text())] == [
        "x.mp4",
        "y.mp4",
    ]
    # two videos cannot share one PNG: refused before any runs, with the folder form to use
    res = runner.invoke(
        app, ["predict", run, str(tmp_path / "two"), "--plot", str(tmp_path / "p.png")]
    )
    assert isinstance(res.exception, UserError) and "--plot" in str(res.exception)
    assert f"--plot {tmp_path / 'p'}/" in str(res.exception) and not (tmp_path / "p.png").exists()


def test_issue21_p6_a_failed_video_leaves_no_stale_output(runs, make_video, tmp_path):
    """Run 1 writes every output of good.mp4 and bad.mp4; bad.mp4 is then damaged: run 2
    fails it and removes its outputs, so no earlier result passes for this run's."""
    make_video("v/good.mp4", n=16)
    bad = make_video("v/bad.mp4", n=16, seed=1)
    outs = {"--json": ".json", "--plot": ".png", "--annotate": ".mp4"}
    args = ["predict", str(runs["early_fusion"]), str(tmp_path / "v"), "-q"]
    for option, suffix in outs.items():
        args += [option, f"{tmp_path / suffix[1:]}/"]
    assert runner.invoke(app, args).exit_code == 0
    assert all((tmp_path / s[1:] / f"bad{s}").is_file() for s in outs.values())
    bad.write_bytes(b"damaged")
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    for suffix in outs.values():
        assert not (tmp_path / suffix[1:] / f"bad{suffix}").exists(), suffix
        assert (tmp_path / suffix[1:] / f"good{suffix}").is_file(), suffix
    # one video, one file: the failed video's file from the earlier run goes too
    single = tmp_path / "single.json"
    single.write_text(
        json.dumps({"video": str(bad), "model": "early_fusion", "label": "from an earlier run"})
    )
    res = runner.invoke(
        app, ["predict", str(runs["early_fusion"]), str(bad), "--json", str(single)]
    )
    assert res.exit_code == 1 and not single.exists()


def test_issue21_p6_predict_refuses_outputs_two_videos_would_share(runs, make_video, tmp_path):
    first = make_video("cam1/p1.mp4", n=16)
    make_video("cam2/p1.mp4", n=16, seed=1)
    run, cams = str(runs["early_fusion"]), [str(tmp_path / "cam1"), str(tmp_path / "cam2")]
    res = runner.invoke(app, ["predict", run, *cams, "--json", f"{tmp_path / 'preds'}/"])
    assert isinstance(res.exception, UserError) and "would both write" in str(res.exception)
    assert not (tmp_path / "preds").exists()  # refused before any video ran
    res = runner.invoke(app, ["predict", run, *cams, "--json", str(tmp_path / "all.json"), "-q"])
    assert res.exit_code == 0 and len(json.loads((tmp_path / "all.json").read_text())) == 2
    # an annotated copy written over the video itself is refused, the video kept
    before = first.read_bytes()
    res = runner.invoke(app, ["predict", run, cams[0], "--annotate", cams[0]])
    assert isinstance(res.exception, UserError) and "overwrite the video" in str(res.exception)
    assert first.read_bytes() == before
