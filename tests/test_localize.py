"""Temporal localization: the mAP metric on hand-computed cases, NMS, proposal grouping on
synthetic probability curves, and `localize` end to end on videos (synthetic and real)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidclass import Classifier
from vidclass.cli import app
from vidclass.data.prepare import prepare
from vidclass.errors import UserError
from vidclass.evaluation.ap import interpolated_ap, temporal_iou
from vidclass.evaluation.localization import average_precision, localization_map
from vidclass.localize.proposals import segments_from_probs, temporal_nms
from vidclass.predict.options import LocalizeOptions
from vidclass.synth.clips import generate
from vidclass.synth.long import generate_long
from vidclass.train.loop import TrainConfig, train

runner = CliRunner()


def seg(label: str, t0: float, t1: float, score: float | None = None) -> dict:
    s = {"label": label, "t_start": t0, "t_end": t1}
    if score is not None:
        s["score"] = score
    return s


# ---------------------------------------------------------------------- the metric


def test_temporal_iou() -> None:
    iou = temporal_iou((0.0, 10.0), np.array([[0, 10], [5, 15], [10, 20], [2, 4]]))
    assert np.allclose(iou, [1.0, 5 / 15, 0.0, 0.2])


def test_perfect_predictions_score_one() -> None:
    truth = {"v1": [seg("a", 1, 5), seg("b", 6, 9)], "v2": [seg("a", 0, 3)]}
    preds = {v: [{**s, "score": 0.9} for s in segs] for v, segs in truth.items()}
    result = localization_map(preds, truth)
    assert result["mAP"] == {"0.3": 1.0, "0.5": 1.0, "0.7": 1.0}
    assert result["average_mAP"] == 1.0


def test_duplicate_is_a_false_positive_by_hand() -> None:
    """Ranked: TP (gt1), duplicate of gt1 (FP), TP (gt2). Precision 1, 1/2, 2/3 at recall
    1/2, 1/2, 1. Monotone precision: 1 up to recall 1/2, 2/3 up to 1: AP = 1/2 + 1/3."""
    truth = {"v": [(0.0, 10.0), (20.0, 30.0)]}
    preds = [("v", 1.0, 10.0, 0.9), ("v", 0.0, 9.0, 0.8), ("v", 20.0, 29.0, 0.7)]
    assert average_precision(preds, truth, 0.5) == pytest.approx(0.5 + 1 / 3)


def test_threshold_and_video_matter() -> None:
    truth = {"v1": [(0.0, 10.0)]}
    # tIoU 4/10 with the truth: a hit at 0.3, a miss at 0.5; the same segment in another
    # video is never a hit.
    assert average_precision([("v1", 0.0, 4.0, 1.0)], truth, 0.3) == 1.0
    assert average_precision([("v1", 0.0, 4.0, 1.0)], truth, 0.5) == 0.0
    assert average_precision([("v2", 0.0, 10.0, 1.0)], truth, 0.3) == 0.0


def test_low_scored_miss_hurts_less_than_a_high_scored_one() -> None:
    truth = {"v": [(0.0, 10.0)]}
    hit, miss = ("v", 0.0, 10.0, 0.5), ("v", 50.0, 60.0, 0.1)
    assert average_precision([hit, miss], truth, 0.5) == 1.0
    # a false positive ranked first: precision 1/2 at recall 1
    assert average_precision([hit, (*miss[:3], 0.9)], truth, 0.5) == 0.5


def test_map_averages_classes_with_ground_truth() -> None:
    truth = {"v": [seg("a", 0, 10), seg("b", 20, 30)]}
    preds = {"v": [seg("a", 0, 10, 0.9), seg("c", 40, 50, 0.8)]}
    result = localization_map(preds, truth, tious=(0.5,))
    assert result["per_class_AP"]["a"]["0.5"] == 1.0
    assert result["per_class_AP"]["b"]["0.5"] == 0.0
    assert result["mAP"]["0.5"] == 0.5  # class c has no ground truth: not averaged
    assert result["num_ground_truth"] == 2 and result["num_predictions"] == 2


def test_interpolated_ap_by_hand() -> None:
    # precision 1/2 then 2/3 at recall 1/2, 1: the envelope is 2/3 everywhere
    assert interpolated_ap(np.array([0.5, 2 / 3]), np.array([0.5, 1.0])) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------- NMS


def test_nms_keeps_the_best_of_overlapping_same_label() -> None:
    segments = [
        seg("a", 0, 10, 0.9),
        seg("a", 1, 11, 0.8),  # IoU 9/11 with the first: suppressed
        seg("a", 8, 20, 0.7),  # IoU 2/20 with the first: kept
        seg("b", 0, 10, 0.6),  # other label: kept
    ]
    kept = temporal_nms(segments, iou=0.5)
    assert [(s["label"], s["score"]) for s in kept] == [("a", 0.9), ("a", 0.7), ("b", 0.6)]
    assert len(temporal_nms(segments, iou=1.0)) == 4
    assert segments[1]["score"] == 0.8  # the input is not modified


def test_soft_nms_decays_overlapping_scores_by_hand() -> None:
    segments = [seg("a", 0, 10, 0.9), seg("a", 1, 11, 0.8), seg("a", 20, 30, 0.5)]
    kept = temporal_nms(segments, iou=0.5, soft_sigma=0.5)
    # IoU 9/11 with the best: 0.8 * exp(-(9/11)^2 / 0.5) = 0.210; no overlap: unchanged
    assert [round(s["score"], 3) for s in kept] == [0.9, 0.5, 0.21]
    assert [s["t_start"] for s in kept] == [0, 20, 1]


# ---------------------------------------------------------------------- grouping


def _curves(truth: list[dict], classes: list[str], duration: float, seed: int = 0):
    """Probability curves a good model would give: each action's class rises over 0.4 s at
    its edges, background elsewhere, with noise; rows sum to one."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration, 0.1)
    act = np.zeros((len(t), len(classes)))
    for s in truth:
        ramp = np.clip(np.minimum(t - s["t_start"], s["t_end"] - t) / 0.4 + 0.5, 0, 1)
        act[:, classes.index(s["label"])] = np.maximum(act[:, classes.index(s["label"])], ramp)
    act[:, classes.index("background")] = np.clip(1 - act.sum(1), 0, 1)
    probs = act * 0.85 + rng.uniform(0, 0.1, act.shape)
    return t, probs / probs.sum(1, keepdims=True)


def test_grouping_finds_each_action_adjacent_and_short_ones_included() -> None:
    classes = ["a", "b", "c", "background"]
    truth = [seg("a", 5, 15), seg("b", 15, 21), seg("c", 30, 31.5), seg("a", 40, 52)]
    t, probs = _curves(truth, classes, 60.0)
    # a dip of 0.2 s inside the last action: bridged, not two actions
    probs[(t > 45) & (t < 45.25)] = [0.3, 0.0, 0.0, 0.7]
    segments = segments_from_probs(t, probs, classes, end=60.0)
    best = sorted(segments, key=lambda s: -s["score"])[: len(truth)]
    for gt in truth:
        match = [s for s in best if s["label"] == gt["label"]]
        overlaps = temporal_iou(
            (gt["t_start"], gt["t_end"]), [[s["t_start"], s["t_end"]] for s in match]
        )
        assert overlaps.max() > 0.85, (gt, best)
    assert localization_map({"v": segments}, {"v": truth})["mAP"]["0.7"] == 1.0
    assert all(0 <= s["t_start"] < s["t_end"] <= 60.0 for s in segments)
    assert not any(s["label"] == "background" for s in segments)


def test_rescoring_prefers_the_proposal_on_the_action_edges() -> None:
    """Several thresholds give nested proposals; the one whose edges sit on the action's
    edges must outscore both a tighter and a wider one."""
    classes = ["a", "background"]
    t, probs = _curves([seg("a", 10, 20)], classes, 30.0, seed=1)
    from vidclass.localize.proposals import proposals

    cands = proposals(t, probs[:, 0], LocalizeOptions(nms_iou=1.0), end=30.0)
    best = max(cands, key=lambda c: c[2])
    assert abs(best[0] - 10) < 0.5 and abs(best[1] - 20) < 0.5
    assert len(cands) >= 2


def test_no_action_no_segment() -> None:
    classes = ["a", "background"]
    t = np.arange(0, 20, 0.1)
    probs = np.tile([0.05, 0.95], (len(t), 1))
    assert segments_from_probs(t, probs, classes) == []


def test_bad_options_are_user_errors() -> None:
    with pytest.raises(UserError):
        LocalizeOptions(spans=())
    with pytest.raises(UserError):
        LocalizeOptions(thresholds=(0.5, 1.5))


# ---------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def run_and_long(tmp_path_factory) -> dict[str, Path]:
    """A one-epoch early_fusion run (with the background class) and two long videos."""
    root = tmp_path_factory.mktemp("localize")
    generate(root / "videos", per_class=2, size=(64, 48), fps=8, seed=4, quiet=True)
    prepare(root / "videos", root / "prepared", frames=8, size=32, quiet=True)
    train(
        root / "prepared",
        root / "run",
        TrainConfig(model="early_fusion", epochs=1, batch_size=4),
        quiet=True,
    )
    generate_long(root / "long", count=2, seed=9, size=(64, 48), fps=8, seconds=20, quiet=True)
    return {"run": root / "run", "long": root / "long"}


def test_localize_structure_on_a_long_video(run_and_long, tmp_path) -> None:
    clf = Classifier.load(run_and_long["run"])
    video = run_and_long["long"] / "long_000.mp4"
    truth = json.loads(video.with_suffix(".json").read_text())
    seen = []
    result = clf.localize(
        video, plot=tmp_path / "t.png", truth=truth["segments"], progress=seen.append
    )
    assert result["background"] == "background" and "background" not in result["classes"]
    assert result["duration_s"] == pytest.approx(truth["duration_s"], abs=0.2)
    for s in result["segments"]:
        assert 0 <= s["t_start"] < s["t_end"] <= result["duration_s"]
        assert s["label"] in result["classes"] and s["score"] >= 0.05
    a = result["actionness"]
    assert len(a["t"]) == len(a["p"]) > 50 and all(0 <= p <= 1 for p in a["p"])
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert (tmp_path / "t.png").stat().st_size > 5000
    json.dumps(result)


def test_localize_and_evaluate_cli(run_and_long, tmp_path) -> None:
    long = run_and_long["long"]
    out = tmp_path / "pred"
    result = runner.invoke(
        app,
        [
            "localize",
            str(run_and_long["run"]),
            str(long),
            "--json",
            f"{out}/",
            "--plot",
            f"{tmp_path / 'plots'}/",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.json")) == ["long_000.json", "long_001.json"]
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
    report = tmp_path / "map.json"
    result = runner.invoke(
        app, ["evaluate-localization", str(out), str(long), "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())
    assert set(metrics["mAP"]) == {"0.3", "0.5", "0.7"} and metrics["num_videos"] == 2
    assert "mAP@0.5" in result.output
    # ground truth without any prediction file: a user error naming the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["evaluate-localization", str(empty), str(long)])
    assert isinstance(result.exception, UserError) and "no prediction" in str(result.exception)


def test_localize_real_clips(run_and_long, realclips) -> None:
    clf = Classifier.load(run_and_long["run"])
    videos = sorted(
        p
        for p in realclips.iterdir()
        if p.suffix.lower() in {".mp4", ".avi", ".mkv", ".webm", ".mov"}
    )
    assert videos
    for video in videos:
        result = clf.localize(video)
        assert result["duration_s"] > 0
        for s in result["segments"]:
            assert 0 <= s["t_start"] < s["t_end"] <= result["duration_s"] + 1e-6


def test_localize_a_video_shorter_than_a_window(run_and_long, make_video) -> None:
    clf = Classifier.load(run_and_long["run"])
    result = clf.localize(make_video("short.mp4", n=6, width=64, height=48))
    assert result["duration_s"] > 0 and len(result["actionness"]["t"]) >= 1


def test_flow_cache_equals_flow_of_each_window() -> None:
    """Overlapping two-stream windows reuse the flow of shared frame pairs, exactly."""
    from vidclass.data.flow import compute_flow
    from vidclass.predict.features import FlowCache

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    frames = [np.roll(base, 2 * i, axis=1) for i in range(12)]
    cache = FlowCache("farneback")
    for start in (0, 2, 4):
        idx = list(range(start, start + 8))
        got = cache.clip(idx, [frames[j] for j in idx])
        want = compute_flow(np.stack([frames[j] for j in idx]))
        assert got.shape == want.shape == (2, 7, 48, 48)
        np.testing.assert_array_equal(got, want)
    assert len(cache.pairs) == 11  # 7 + 2 + 2 pairs, each computed once
    cache.forget_before(4)
    assert min(k[0] for k in cache.pairs) == 4


def test_window_labels() -> None:
    from vidclass.synth.long import window_label

    segments = [seg("a", 10, 14), seg("b", 14, 16)]
    assert window_label(segments, 10.5, 13.5) == "a"  # inside one action
    assert window_label(segments, 9.0, 12.0) == "a"  # 2/3 of it
    assert window_label(segments, 12.0, 16.0) is None  # half a, half b: ambiguous, skipped
    assert window_label(segments, 0.0, 3.0) == "background"
    assert window_label(segments, 7.0, 10.2) == "background"  # barely touches a


def test_synth_windows_cli(tmp_path) -> None:
    out = tmp_path / "w"
    result = runner.invoke(
        app,
        [
            "synth",
            "--kind",
            "windows",
            "--out",
            str(out),
            "--count",
            "2",
            "--seconds",
            "20",
            "--size",
            "64x48",
            "--fps",
            "8",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = (out / "metadata.csv").read_text().splitlines()[1:]
    assert 10 <= len(rows) <= 60 and (out / "classes.json").is_file()
    groups = {r.split(",")[2] for r in rows}
    assert groups == {"g01", "g02"}  # a group is one long video: splits keep it on one side
    prepared = prepare(out, tmp_path / "p", frames=8, size=32, quiet=True)
    assert not prepared.failed


def test_ensemble_averages_curves_of_models_with_the_same_classes(run_and_long) -> None:
    from types import SimpleNamespace

    clf = Classifier.load(run_and_long["run"])
    video = run_and_long["long"] / "long_001.mp4"
    alone = clf.localize(video)
    twice = clf.localize(video, ensemble=[Classifier.load(run_and_long["run"])])
    assert twice["models"] == ["early_fusion", "early_fusion"]
    assert twice["segments"] == alone["segments"]  # the mean of two equal curves
    other = SimpleNamespace(classes=list(reversed(clf.classes)))
    with pytest.raises(UserError, match="same classes"):
        clf.localize(video, ensemble=[other])


def test_an_empty_folder_is_a_user_error(run_and_long, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    for command in ("localize", "predict"):
        result = runner.invoke(app, [command, str(run_and_long["run"]), str(tmp_path / "empty")])
        assert isinstance(result.exception, UserError), command
        assert "no video files" in str(result.exception)


# ----------------------------------------------------------------- issue 12: no silent wrong results


def test_point6_soft_nms_decays_only_overlaps_above_nms_iou() -> None:
    segments = [seg("a", 0, 10, 0.9), seg("a", 1, 11, 0.8), seg("a", 5, 15, 0.6)]
    # IoU with the best: 9/11 (above 0.5: decays to 0.21) and 5/15 (below: kept as it is)
    kept = temporal_nms(segments, iou=0.5, soft_sigma=0.5)
    assert [round(s["score"], 3) for s in kept] == [0.9, 0.6, 0.21]
    # the default soft NMS decays every overlap; the option reaches the NMS through the options
    assert LocalizeOptions().iou_threshold == 0.0 and LocalizeOptions(nms_iou=0.5).nms == "soft"
    assert LocalizeOptions(nms_iou=0.5).iou_threshold == 0.5
    assert LocalizeOptions(soft_sigma=None).iou_threshold == 0.4
    classes = ["a", "background"]
    t, probs = _curves([seg("a", 10, 20)], classes, 30.0, seed=1)
    every = segments_from_probs(t, probs, classes, options=LocalizeOptions(min_score=0))
    above = segments_from_probs(t, probs, classes, options=LocalizeOptions(nms_iou=0.9))
    assert sorted(s["score"] for s in above) > sorted(s["score"] for s in every)
    with pytest.raises(UserError, match="nms_iou"):
        LocalizeOptions(nms_iou=0.0, soft_sigma=None)  # hard NMS at 0 would keep one segment
    with pytest.raises(UserError, match="nms_iou"):
        LocalizeOptions(nms_iou=1.5)


def test_point6_spans_that_cannot_run_are_refused_not_rounded() -> None:
    from types import SimpleNamespace

    from vidclass.localize.windows import plan_sampling

    with pytest.raises(UserError, match=r"spans 0.4,1.*0.4,0.8"):
        LocalizeOptions(spans=(0.4, 1.0))  # 1.0 ran as 0.8
    clf = SimpleNamespace(sample_fps=8.0, frames=8)
    # 30 fps: the fine rate is 8 / 0.4 = 20 fps; windows of 8 samples span 0.4 s and 0.8 s
    plan = plan_sampling(clf, LocalizeOptions(spans=(0.4, 0.8)), 30.0)
    assert (plan.rate, plan.steps, plan.spans, plan.span_s) == (
        20.0,
        (1, 2),
        (0.4, 0.8),
        (0.4, 0.8),
    )
    # 10 fps: no 20 fps sampling; 0.8 of a clip is the shortest span its frames allow
    with pytest.raises(UserError, match=r"10 fps.*0\.8,1\.6"):
        plan_sampling(clf, LocalizeOptions(spans=(0.4, 0.8)), 10.0, "v.mp4")
    plan = plan_sampling(clf, LocalizeOptions(), 10.0)  # the default spans are raised to fit
    assert (plan.rate, plan.steps) == (10.0, (1, 2))
    assert plan.spans == pytest.approx((0.8, 1.6)) and plan.span_s == pytest.approx((0.8, 1.6))


def test_point6_options_report_what_ran(run_and_long, make_video) -> None:
    clf = Classifier.load(run_and_long["run"])
    video = make_video("ten.mp4", n=40, fps=10)
    result = clf.localize(video)
    o = result["options"]
    assert o["sample_fps"] <= 10 and o["spans_requested"] is None
    steps = o["window_step"]
    assert o["span_s"] == pytest.approx([clf.frames * k / o["sample_fps"] for k in steps], abs=1e-3)
    assert o["spans"] == pytest.approx(
        [s * clf.sample_fps / clf.frames for s in o["span_s"]], abs=1e-3
    )
    assert (o["nms"], o["nms_iou"], o["soft_sigma"]) == ("soft", 0.0, 0.5)
    t = result["actionness"]["t"]
    assert np.diff(t).min() >= 1 / 10 - 1e-3  # never sampled faster than the video's frames
    hard = clf.localize(video, nms="hard", nms_iou=0.5)["options"]
    assert (hard["nms"], hard["nms_iou"], hard["soft_sigma"]) == ("hard", 0.5, None)
    with pytest.raises(UserError, match="soft, hard"):
        clf.localize(video, nms="greedy")
    res = runner.invoke(app, ["localize", str(run_and_long["run"]), str(video), "--spans", "0.4,1"])
    assert isinstance(res.exception, UserError) and "--spans" in str(res.exception)


def test_point9_localize_takes_the_duration_from_what_decoded(run_and_long, truncated_video):
    clf = Classifier.load(run_and_long["run"])
    result = clf.localize(truncated_video)
    assert result["truncated"] is True and result["truncated_reason"]
    assert result["duration_s"] == result["decoded_duration_s"] == pytest.approx(2.9, abs=0.2)
    assert all(s["t_end"] <= result["duration_s"] for s in result["segments"])
    res = runner.invoke(app, ["localize", str(run_and_long["run"]), str(truncated_video), "-q"])
    assert res.exit_code == 0, res.output
    assert (
        [line for line in res.output.splitlines() if line.startswith("warning:")]
        == [line for line in res.output.splitlines() if "cut.mp4: decoding stopped" in line]
        != []
    )


def test_point11_localize_json_to_a_folder_path(run_and_long, make_video, tmp_path) -> None:
    video = make_video("clip.mp4", n=30, fps=10)
    for target, where in (
        (f"{tmp_path / 'preds'}/", tmp_path / "preds"),
        (str(tmp_path), tmp_path),
    ):
        res = runner.invoke(
            app, ["localize", str(run_and_long["run"]), str(video), "--json", target, "-q"]
        )
        assert res.exit_code == 0, res.output
        assert json.loads((where / "clip.json").read_text())["video"] == str(video)
    assert (tmp_path / "preds").is_dir()


def test_issue21_p6_localize_sub_folders_and_a_failed_video_are_scored_right(
    run_and_long, tmp_path
) -> None:
    """walk/p.mp4 and run/p.mp4 (same stem, ground truth beside each); run/p.mp4 is damaged
    and an earlier run's prediction of it is still there. It is removed, not scored: the
    evaluation counts run/p as missed (8f927a1 wrote both to preds/p.json and kept the stale
    run/p.json)."""
    import shutil

    data, preds = tmp_path / "data", tmp_path / "preds"
    for sub, name in (("walk", "long_000"), ("run", "long_001")):
        (data / sub).mkdir(parents=True)
        for ext in (".mp4", ".json"):
            shutil.copy(run_and_long["long"] / f"{name}{ext}", data / sub / f"p{ext}")
    truth = json.loads((data / "run" / "p.json").read_text())
    (preds / "run").mkdir(parents=True)
    stale = {"model": "x", "segments": [{**s, "score": 1.0} for s in truth["segments"]]}
    (preds / "run" / "p.json").write_text(json.dumps(stale))
    (data / "run" / "p.mp4").write_bytes(b"damaged")
    res = runner.invoke(
        app, ["localize", str(run_and_long["run"]), str(data), "--json", f"{preds}/", "-q"]
    )
    assert res.exit_code == 2, res.output
    assert [p.relative_to(preds).as_posix() for p in preds.rglob("*.json")] == ["walk/p.json"]
    assert json.loads((preds / "walk" / "p.json").read_text())["video"] == str(data / "walk/p.mp4")
    report = tmp_path / "map.json"
    res = runner.invoke(
        app, ["evaluate-localization", str(preds), str(data), "--json", str(report)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(report.read_text())
    assert metrics["num_videos"] == 2 and metrics["missing_predictions"] == ["run/p"]
    assert "no prediction for 1 videos (counted as missed): run/p" in res.output


def test_issue21_p6_localize_json_never_overwrites_the_ground_truth_beside_the_videos(
    run_and_long, tmp_path
) -> None:
    """`localize data/long/ --json data/long/` would write long_000.json over the ground
    truth `vidclass synth` put there: refused before any video runs, the truth intact."""
    import shutil

    data = tmp_path / "long"
    data.mkdir()
    for ext in (".mp4", ".json"):
        shutil.copy(run_and_long["long"] / f"long_000{ext}", data / f"long_000{ext}")
    truth = (data / "long_000.json").read_bytes()
    for target in (f"{data}/", str(data / "long_000.json")):
        res = runner.invoke(
            app, ["localize", str(run_and_long["run"]), str(data), "--json", target]
        )
        assert "not a vidclass result" in str(res.exception), res.output
        assert (data / "long_000.json").read_bytes() == truth


def test_issue21_p6_localize_json_without_a_slash_is_one_file(run_and_long, make_video, tmp_path):
    """Several videos and `--json preds.json`: one file holding a list (8f927a1 made a folder
    named preds.json)."""
    clips = [make_video("clips/a.mp4", n=30), make_video("clips/b.mp4", n=30, seed=1)]
    out = tmp_path / "preds.json"
    res = runner.invoke(
        app,
        ["localize", str(run_and_long["run"]), str(tmp_path / "clips"), "--json", str(out), "-q"],
    )
    assert res.exit_code == 0, res.output
    assert out.is_file() and [r["video"] for r in json.loads(out.read_text())] == list(
        map(str, clips)
    )


def test_issue21_p6_evaluate_localization_matches_sub_folders_by_path_not_stem(tmp_path):
    """walk/p1 and run/p1 hold different actions; the predictions are right for each. Matched
    by stem (8f927a1: only the top folder, p1 <-> p1) they could not be told apart."""
    gt, pred = tmp_path / "data", tmp_path / "preds"
    truth = {"walk/p1": [seg("walk", 0, 10)], "run/p1": [seg("run", 5, 15)], "top": []}
    for key, segments in truth.items():
        for folder, segs in ((gt, segments), (pred, [{**s, "score": 0.9} for s in segments])):
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{key}.json").write_text(json.dumps({"segments": segs}))
    (pred / "run/p1.json").unlink()
    (pred / "extra").mkdir()
    (pred / "extra/z.json").write_text(json.dumps({"segments": []}))
    res = runner.invoke(
        app, ["evaluate-localization", str(pred), str(gt), "--json", str(tmp_path / "m.json")]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["num_videos"] == 3 and m["missing_predictions"] == ["run/p1"]
    assert m["unmatched_predictions"] == ["extra/z"]
    assert m["per_class_AP"]["walk"]["0.5"] == 1.0 and m["per_class_AP"]["run"]["0.5"] == 0.0
    (pred / "run/p1.json").write_text(json.dumps({"segments": [seg("run", 5, 15, 0.8)]}))
    res = runner.invoke(
        app, ["evaluate-localization", str(pred), str(gt), "--json", str(tmp_path / "m.json")]
    )
    assert json.loads((tmp_path / "m.json").read_text())["average_mAP"] == 1.0
    # predictions kept inside the ground-truth folder are not taken for ground truth
    inside = gt / "preds"
    inside.mkdir()
    for key in truth:
        (inside / key).parent.mkdir(parents=True, exist_ok=True)
        (inside / f"{key}.json").write_text((pred / f"{key}.json").read_text())
    res = runner.invoke(
        app, ["evaluate-localization", str(inside), str(gt), "--json", str(tmp_path / "m.json")]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["num_videos"] == 3
    # one list file (`--json preds.json` over several videos) is not a folder: say how to get one
    listed = tmp_path / "preds.json"
    listed.write_text(json.dumps([{"segments": []}, {"segments": []}]))
    res = runner.invoke(app, ["evaluate-localization", str(listed), str(gt)])
    assert isinstance(res.exception, UserError) and "--json DIR/" in str(res.exception)


def test_point11_evaluate_localization_takes_tious(tmp_path) -> None:
    truth = {"segments": [seg("a", 0, 10), seg("b", 20, 30)]}
    pred = {"segments": [seg("a", 0, 8, 0.9), seg("b", 20, 30, 0.8)]}  # tIoU 0.8 and 1
    for folder, data in (("gt", truth), ("pred", pred)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "v.json").write_text(json.dumps(data))
    out = tmp_path / "m.json"
    args = ["evaluate-localization", str(tmp_path / "pred"), str(tmp_path / "gt"), "--json"]
    res = runner.invoke(app, [*args, str(out), "--tious", "0.5,0.9"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())
    assert metrics["mAP"] == {"0.5": 1.0, "0.9": 0.5} and metrics["tious"] == [0.5, 0.9]
    assert "mAP@0.9: 0.500" in res.output
    for bad in ("0,0.5", "0.5,1.5", "half"):
        res = runner.invoke(app, [*args, str(out), "--tious", bad])
        assert isinstance(res.exception, UserError) and "--tious" in str(res.exception), bad
