"""Spatio-temporal detection: multi-actor ground truth, detectors, tracker, tubes, metrics,
`vidclass detect` and `vidclass evaluate-detection`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidclass.synth.labels import ACTION_CLASSES, BACKGROUND
from vidclass.synth.multi import generate_multi, render_multi


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


# ----------------------------------------------------------------------------- tracker


def _run_tracker(frames_boxes, **kw):
    from vidclass.detect.tracking import Tracker

    tracker = Tracker(**kw)
    return [tracker.update(np.array(b, float).reshape(-1, 4)) for b in frames_boxes]


def test_tracker_keeps_ids_through_a_crossing_and_a_miss():
    """Two people walk towards each other, overlap, part; one is missed for 3 frames."""
    frames = []
    for t in range(40):
        a = [10 + 5 * t, 40, 40 + 5 * t, 100]  # left to right
        b = [210 - 5 * t, 50, 240 - 5 * t, 110]  # right to left, a little lower
        frames.append([a] if 25 <= t < 28 else [a, b])  # b missed on frames 25-27
    out = _run_tracker(frames, min_hits=2, max_age=5)
    ids_a, ids_b = set(), set()
    for t, boxes in enumerate(out):
        for tb in boxes:
            x_centre = (tb.box[0] + tb.box[2]) / 2
            # whose box it is: a walks at y 40-100, b at y 50-110
            if abs(x_centre - (25 + 5 * t)) < 8 and abs(tb.box[1] - 40) < 4:
                ids_a.add(tb.track_id)
            elif abs(x_centre - (225 - 5 * t)) < 8 and abs(tb.box[1] - 50) < 4:
                ids_b.add(tb.track_id)
            else:
                raise AssertionError(f"frame {t}: box {tb.box} belongs to nobody")
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    # during the miss, b's track coasts on its velocity (a predicted box, not detected)
    coasting = [tb for tb in out[26] if not tb.detected]
    assert len(coasting) == 1 and abs((coasting[0].box[0] + coasting[0].box[2]) / 2 - 95) < 6


def test_tracker_drops_lost_tracks_and_waits_for_hits():
    frames = [[[10, 10, 30, 50]]] * 3 + [[]] * 6 + [[[10, 10, 30, 50]]] * 3
    out = _run_tracker(frames, min_hits=3, max_age=4)
    assert [len(b) for b in out[:3]] == [0, 0, 1]  # confirmed on the third hit
    assert len(out[8]) == 0  # gone after max_age misses
    ids = {tb.track_id for boxes in out for tb in boxes}
    assert len(ids) == 2  # the person coming back later is a new track


# ----------------------------------------------------------------------------- metrics


def test_average_precision_by_hand():
    from vidclass.evaluation.ap import average_precision

    # precisions 1, 1/2, 2/3 at recalls 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
    assert average_precision(np.array([True, False, True]), 2) == pytest.approx(5 / 6)
    assert average_precision(np.array([True, True]), 4) == pytest.approx(0.5)
    assert average_precision(np.array([], bool), 3) == 0.0
    assert np.isnan(average_precision(np.array([True]), 0))


def test_frame_map_matches_each_truth_once_and_ignores_background():
    from vidclass.evaluation.detection import frame_map

    box, other = np.array([0, 0, 10, 10]), np.array([50, 50, 60, 60])
    truths = [
        (("v", 0), "wave", box),
        (("v", 1), "wave", box),
        (("v", 1), "jump", other),
        (("v", 2), "background", box),  # not an action: never counted
    ]
    detections = [
        (("v", 0), "wave", 0.9, box + [0, 0, 1, 0]),  # TP (IoU 10/11)
        (("v", 0), "wave", 0.8, box),  # duplicate: FP
        (("v", 1), "wave", 0.7, box),  # TP
        (("v", 1), "jump", 0.6, box),  # wrong place: FP (IoU 0)
        (("v", 2), "wave", 0.95, box),  # on a background-only frame: FP
    ]
    result = frame_map(detections, truths)
    # wave: FP(.95) TP(.9) FP(.8) TP(.7) -> precisions 0, 1/2, 1/3, 1/2; recall 1/2 at 1/2,
    # 1 at 1/2 -> AP = 1/2 * 1/2 + 1/2 * 1/2
    assert result["ap"]["wave"] == pytest.approx(0.5)
    assert result["ap"]["jump"] == 0.0
    assert set(result["ap"]) == {"wave", "jump"} and result["num_gt"]["wave"] == 2
    assert result["frame_mAP"] == pytest.approx(0.25)


def test_tracking_metrics_count_switches_misses_and_idf1():
    from vidclass.evaluation.detection import tracking_metrics

    box = np.array([0, 0, 10, 10])
    truth = {("v", t): [(1, box)] for t in range(4)}
    predicted = {
        ("v", 0): [(7, box)],
        ("v", 1): [(7, box), (8, box + 40)],  # a false positive
        ("v", 2): [(9, box)],  # the same person now under another id: 1 switch
        # frame 3: missed
    }
    m = tracking_metrics(predicted, truth)
    assert (m["id_switches"], m["false_positives"], m["misses"], m["num_gt"]) == (1, 1, 1, 4)
    assert m["mota"] == pytest.approx(1 - (1 + 1 + 1) / 4)
    # best one-to-one pairing: person 1 <-> track 7 on 2 frames; 4 truth + 4 predicted boxes
    assert m["idf1"] == pytest.approx(2 * 2 / 8)


# ----------------------------------------------------------------------------- tubes


def test_tube_crop_is_square_inside_the_frame_near_borders():
    from vidclass.video.tubes import square_crop

    crop = square_crop(np.array([150, 100, 160, 120]), width=160, height=120, context=1.5)
    x1, y1, x2, y2 = crop
    assert x2 - x1 == pytest.approx(30) and y2 - y1 == pytest.approx(30)
    assert (x1, y1, x2, y2) == pytest.approx((130, 90, 160, 120))  # moved inside
    big = square_crop(np.array([0, 0, 150, 110]), width=160, height=120, context=1.25)
    assert big[2] - big[0] == pytest.approx(187.5)
    assert big[0] < 0 and big[2] > 160  # larger than the frame: centred, padded both sides


def test_tube_crop_pads_with_edge_pixels_and_keeps_the_motion_inside():
    from vidclass.video.tubes import crop_resize, tube_clip

    image = np.zeros((40, 60, 3), np.uint8)
    image[:, -1] = 200  # right edge column
    out = crop_resize(image, np.array([40, 10, 80, 50]), 20)  # half outside on the right
    assert out.shape == (20, 20, 3)
    assert out[5, -1, 0] == 200 and out[5, 2, 0] == 0  # outside = the edge pixel repeated

    frames, boxes = [], []
    for t in range(8):  # a white square moving right
        im = np.zeros((120, 160, 3), np.uint8)
        im[50:70, 20 + 10 * t : 40 + 10 * t] = 255
        frames.append(im)
        boxes.append([20 + 10 * t, 50, 40 + 10 * t, 70])
    clip = tube_clip(frames, np.array(boxes, float), size=32)
    assert len(clip) == 8 and clip[0].shape == (32, 32, 3)
    centres = [np.nonzero(c[..., 0].max(0) > 128)[0].mean() for c in clip]
    assert all(b > a for a, b in zip(centres[:-1], centres[1:], strict=True))  # still moves
    assert centres[0] < 12 and centres[-1] > 20  # from left to right inside one crop


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """An early_fusion run trained for one epoch on tiny synthetic clips (as test_predict)."""
    from vidclass.data.prepare import prepare
    from vidclass.synth.clips import generate
    from vidclass.train.loop import TrainConfig, train

    root = tmp_path_factory.mktemp("detect")
    generate(root / "videos", per_class=2, size=(64, 48), fps=8, seed=2, quiet=True)
    prepare(root / "videos", root / "prepared", frames=8, size=32, quiet=True)
    train(root / "prepared", root / "run", TrainConfig(model="early_fusion", epochs=1), quiet=True)
    return root / "run"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """One small multi-actor scene with its truth."""
    out = tmp_path_factory.mktemp("multi")
    generate_multi(out, count=1, seed=3, size=(160, 120), fps=10, seconds=6, quiet=True)
    return out / "multi_000.mp4"


def test_motion_detector_finds_the_moving_actors(scene):
    from vidclass.detect.detect import _prime_motion
    from vidclass.detect.detectors import MotionDetector
    from vidclass.evaluation.ap import box_iou
    from vidclass.video.reader import iter_frames

    truth = json.loads(scene.with_suffix(".json").read_text())
    detector = MotionDetector()
    _prime_motion(detector, scene)
    assert detector.primed
    _, frames = iter_frames(scene, 32, 1.0, keep_frames=True, sample=False)
    found = total = 0
    for f in frames:
        boxes, scores = detector(f.image)
        assert boxes.shape == (len(scores), 4) and np.all((scores > 0) & (scores <= 1))
        for o in truth["frames"][f.index]["objects"]:
            if o["label"] != BACKGROUND:
                total += 1
                found += len(boxes) and box_iou(np.array(o["box"]), boxes).max() >= 0.5
    # ghosts where actors stood in the median background and merged neighbours cost the rest
    assert total > 0 and found / total > 0.4


def test_detect_returns_tracks_segments_and_an_annotated_copy(tiny_run, scene, tmp_path):
    import av

    from vidclass import Classifier

    clf = Classifier.load(tiny_run)
    result = clf.detect(scene, detector="motion", annotate=tmp_path / "boxes.mp4")
    assert result["width"] == 160 and result["height"] == 120 and result["tracks"]
    assert len({t["track_id"] for t in result["tracks"]}) == len(result["tracks"])
    for tr in result["tracks"]:
        times = [row[0] for row in tr["boxes"]]
        assert times == sorted(times) and times[-1] <= result["duration_s"]
        for _, x1, y1, x2, y2 in tr["boxes"]:
            assert -1 <= x1 < x2 <= 161 and -1 <= y1 < y2 <= 121
        for s in tr["segments"]:
            assert s["label"] in clf.classes and s["label"] != BACKGROUND
            assert s["t_start"] < s["t_end"] and 0 <= s["score"] <= 1
        for unit in tr["timeline"]:
            assert len(unit["probs"]) == len(clf.classes)
        if tr["timeline"]:  # one probability per class for every box
            assert len(tr["action_scores"]) == len(tr["boxes"])
            assert np.allclose(np.sum(tr["action_scores"], axis=1), 1, atol=0.01)
    with av.open(str(tmp_path / "boxes.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == result["num_frames"] == 60


class _ScriptedBoxes:
    """The scene's true boxes, frame by frame, with the second actor seen only on frames
    20-29: a track shorter than a window, so its clip is padded (its own mask) while the
    other tracks' clips are whole."""

    def __init__(self, truth: dict) -> None:
        self.frames, self.i = truth["frames"], 0

    def __call__(self, frame):
        objs = self.frames[min(self.i, len(self.frames) - 1)]["objects"]
        if not 20 <= self.i < 30:
            objs = [o for o in objs if o["track_id"] != objs[-1]["track_id"]]
        self.i += 1
        boxes = np.array([o["box"] for o in objs], np.float32).reshape(-1, 4)
        return boxes, np.ones(len(boxes), np.float32)


def test_detect_scores_tubes_in_batches_as_it_would_one_by_one(tiny_run, scene):
    from vidclass import Classifier
    from vidclass.detect.detect import detect

    clf = Classifier.load(tiny_run)
    truth = json.loads(scene.with_suffix(".json").read_text())
    one, many = (
        detect(clf, scene, detector=_ScriptedBoxes(truth), min_track_s=0.3, batch_size=b)
        for b in (1, 16)
    )
    assert one["tracks"] and len(one["tracks"]) == len(many["tracks"])
    full = (clf.frames - 0.5) / clf.sample_fps
    spans = [u["t_end"] - u["t_start"] for tr in one["tracks"] for u in tr["timeline"]]
    assert min(spans) < full < max(spans)  # padded and whole clips were batched together
    for a, b in zip(one["tracks"], many["tracks"], strict=True):
        assert a["boxes"] == b["boxes"] and len(a["timeline"]) == len(b["timeline"])
        for ua, ub in zip(a["timeline"], b["timeline"], strict=True):
            assert (ua["t_start"], ua["t_end"]) == (ub["t_start"], ub["t_end"])
            assert np.allclose(ua["probs"], ub["probs"], atol=2e-5)
        assert [s["label"] for s in a["segments"]] == [s["label"] for s in b["segments"]]
        for sa, sb in zip(a["segments"], b["segments"], strict=True):
            assert sa["t_start"] == pytest.approx(sb["t_start"], abs=1e-3)
            assert sa["t_end"] == pytest.approx(sb["t_end"], abs=1e-3)
            assert sa["score"] == pytest.approx(sb["score"], abs=1e-4)
        assert np.allclose(a["action_scores"], b["action_scores"], atol=1e-4)


def test_detect_and_evaluate_from_the_command_line(tiny_run, scene, tmp_path):
    from typer.testing import CliRunner

    from vidclass.cli import app

    runner = CliRunner()
    out = tmp_path / "preds"
    res = runner.invoke(app, ["detect", str(tiny_run), str(scene), "--json", f"{out}/", "-q"])
    assert res.exit_code == 0, res.output
    pred = out / "multi_000.json"
    assert json.loads(pred.read_text())["tracks"]
    res = runner.invoke(
        app, ["evaluate-detection", str(out), str(scene.parent), "--json", str(tmp_path / "s.json")]
    )
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert 0 <= scores["frame_mAP"] <= 1 and scores["tracking"]["num_gt"] > 0
    assert "frame-mAP" in res.output and "ID switches" in res.output
    # a missing video among good ones: partial failure; an unknown detector: user error
    res = runner.invoke(app, ["detect", str(tiny_run), str(scene), str(tmp_path / "nope.mp4")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["detect", str(tiny_run), str(scene), "--detector", "yolo"])
    assert res.exit_code == 1


def test_hog_detects_and_tracks_real_people(tiny_run, realclips, tmp_path):
    """Two people in a real 1080p clip: boxes inside the frame, a few stable tracks."""
    import cv2

    if not hasattr(cv2, "HOGDescriptor"):
        pytest.skip(f"OpenCV {cv2.__version__} has no HOG people detector (needs opencv<5)")
    from vidclass import Classifier

    video = realclips / "two_people_hugging_1080p.mp4"
    result = Classifier.load(tiny_run).detect(video, detector="hog", annotate=tmp_path / "a.mp4")
    w, h = result["width"], result["height"]
    assert result["tracks"] and (tmp_path / "a.mp4").stat().st_size > 0
    for tr in result["tracks"]:
        for _, x1, y1, x2, y2 in tr["boxes"]:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    lengths = sorted((len(tr["boxes"]) for tr in result["tracks"]), reverse=True)
    assert lengths[0] > 0.8 * result["num_frames"]  # someone tracked nearly all the way
    assert len(result["tracks"]) <= 4  # no id churn


# ----------------------------------------------------------------------------- detectors


def test_nms_drops_overlaps_and_boxes_inside_better_ones():
    from vidclass.detect.detectors import nms

    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 2, 5, 5], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert list(nms(boxes, scores, iou=0.5)) == [0, 2, 3]  # the shifted twin goes
    assert list(nms(boxes, scores, iou=0.5, contained=0.5)) == [0, 3]  # the limb goes too


def test_trained_detector_round_trip_and_clear_error(tmp_path):
    from vidclass.detect.centernet import CenterNetDetector, train_detector
    from vidclass.detect.detect import load_detector
    from vidclass.errors import UserError

    summary = train_detector(tmp_path / "det", scenes=1, seconds=2, steps=3, batch_size=2,
                             quiet=True)  # fmt: skip
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    detector = load_detector(str(tmp_path / "det"))
    assert isinstance(detector, CenterNetDetector)
    detector.threshold = 0.0  # untrained: take whatever peaks there are
    boxes, scores = detector(np.full((120, 160, 3), 90, np.uint8))
    assert boxes.shape == (len(scores), 4) and len(scores) > 0
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 160) and np.all(boxes[:, 3] <= 120)
    with pytest.raises(UserError, match="train-detector"):
        CenterNetDetector(tmp_path)


def test_tube_clips_are_labelled_windows_ready_for_prepare(tmp_path):
    from vidclass.synth.labels import CLASSES
    from vidclass.synth.multi import TUBE_FRAMES, generate_tubes

    summary = generate_tubes(tmp_path, count=1, seed=4, seconds=4, every_s=1.0, quiet=True)
    assert summary["num_videos"] == sum(summary["per_class"].values()) > 0
    assert json.loads((tmp_path / "classes.json").read_text())["classes"] == CLASSES
    clip = next(tmp_path.glob("*/v_*_g01_c*.mp4"))
    assert clip.parent.name in CLASSES
    import av

    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == TUBE_FRAMES and frames[0].shape == (112, 112, 3)


def test_predictions_become_per_box_detections():
    from vidclass.evaluation.detection import prediction_items

    track = {
        "track_id": 5,
        "boxes": [[0.0, 0, 0, 10, 10], [0.1, 1, 0, 11, 10]],
        "segments": [{"label": "wave", "t_start": 0.05, "t_end": 1.0, "score": 0.7}],
    }
    pred = {"classes": ["wave", "jump", "background"], "tracks": [track]}
    dets, boxes = prediction_items(pred, "v", fps=10)
    assert [(k, lab, s) for k, lab, s, _ in dets] == [(("v", 1), "wave", 0.7)]  # segments
    assert boxes[("v", 0)][0][0] == 5 and len(boxes) == 2
    track["action_scores"] = [[0.6, 0.1, 0.3], [0.2, 0.5, 0.3]]  # every action, every box
    dets, _ = prediction_items(pred, "v", fps=10)
    assert [(k, lab, s) for k, lab, s, _ in dets] == [
        (("v", 0), "wave", 0.6),
        (("v", 0), "jump", 0.1),
        (("v", 1), "wave", 0.2),
        (("v", 1), "jump", 0.5),
    ]


# ----------------------------------------------------------------- issue 12: no silent wrong results


def test_point5_evaluate_detection_counts_missing_prediction_files(tmp_path):
    """Two scenes of truth, a perfect prediction for one: the other scene is missed (its
    boxes count against frame-mAP, MOTA and IDF1) and listed, not dropped."""
    from typer.testing import CliRunner

    from vidclass.cli import app
    from vidclass.evaluation.detection import evaluate_detection

    box = [10.0, 10.0, 40.0, 60.0]
    truth = {
        "fps": 10,
        "frames": [
            {"index": i, "objects": [{"track_id": 1, "box": box, "label": "wave"}]}
            for i in range(10)
        ],
    }
    perfect = {
        "classes": ["wave", BACKGROUND],
        "tracks": [
            {
                "track_id": 1,
                "boxes": [[i / 10, *box] for i in range(10)],
                "segments": [{"label": "wave", "t_start": 0.0, "t_end": 1.0, "score": 0.9}],
            }
        ],
    }
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    for name in ("multi_000", "multi_001"):
        (gt / f"{name}.json").write_text(json.dumps(truth))
    (gt / "classes.json").write_text(json.dumps({"classes": ["wave"]}))  # not a truth file
    (pred / "multi_000.json").write_text(json.dumps(perfect))
    result = evaluate_detection(pred, gt)
    assert result["missing_predictions"] == ["multi_001"] and result["videos"] == 2
    assert result["ap"]["wave"] == pytest.approx(0.5) and result["num_gt"]["wave"] == 20
    t = result["tracking"]
    assert t["misses"] == 10 and t["num_gt"] == 20 and t["mota"] == pytest.approx(0.5)
    assert t["idf1"] == pytest.approx(2 * 10 / 30)
    # with both predictions everything is perfect, and nothing is listed
    (pred / "multi_001.json").write_text(json.dumps(perfect))
    result = evaluate_detection(pred, gt)
    assert result["frame_mAP"] == 1.0 and result["tracking"]["mota"] == 1.0
    assert result["missing_predictions"] == []
    (pred / "multi_001.json").unlink()
    res = CliRunner().invoke(app, ["evaluate-detection", str(pred), str(gt)])
    assert res.exit_code == 0, res.output
    assert "no prediction for 1 videos (counted as missed): multi_001" in res.output


def test_issue21_p6_detect_and_evaluate_match_scenes_of_sub_folders_by_path(
    tiny_run, scene, tmp_path
):
    """cam1/multi_000 and cam2/multi_000 (one scene twice, truth beside each): two prediction
    files at the same paths, both scored (8f927a1 wrote both to preds/multi_000.json and the
    evaluation looked for truth only at the top of the folder)."""
    import shutil

    from typer.testing import CliRunner

    from vidclass.cli import app
    from vidclass.errors import UserError

    runner = CliRunner()
    data, preds = tmp_path / "multi", tmp_path / "preds"
    for cam in ("cam1", "cam2"):
        (data / cam).mkdir(parents=True)
        for ext in (".mp4", ".json"):
            shutil.copy(scene.with_suffix(ext), data / cam / f"multi_000{ext}")
    res = runner.invoke(app, ["detect", str(tiny_run), str(data), "--json", f"{preds}/", "-q"])
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(preds).as_posix() for p in preds.rglob("*.json"))
    assert written == ["cam1/multi_000.json", "cam2/multi_000.json"]
    res = runner.invoke(
        app, ["evaluate-detection", str(preds), str(data), "--json", str(tmp_path / "s.json")]
    )
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["videos"] == 2 and scores["missing_predictions"] == []
    one = json.loads((preds / "cam1" / "multi_000.json").read_text())
    assert scores["tracking"]["num_gt"] == 2 * sum(len(f["objects"]) for f in json.loads(
        scene.with_suffix(".json").read_text())["frames"])  # fmt: skip
    # a list of several videos' results is not one video's: say how to write one per video
    listed = tmp_path / "all.json"
    listed.write_text(json.dumps([one, one]))
    res = runner.invoke(app, ["evaluate-detection", str(listed), str(scene.with_suffix(".json"))])
    assert isinstance(res.exception, UserError) and "--json DIR/" in str(res.exception)


def test_point9_detect_flags_a_truncated_video(tiny_run, truncated_video):
    from typer.testing import CliRunner

    from vidclass import Classifier
    from vidclass.cli import app

    result = Classifier.load(tiny_run).detect(truncated_video)
    assert result["truncated"] is True and result["truncated_reason"]
    assert result["decoded_duration_s"] == pytest.approx(2.9, abs=0.2)
    assert result["duration_s"] == 6.0 and result["num_frames"] < 40
    res = CliRunner().invoke(app, ["detect", str(tiny_run), str(truncated_video), "-q"])
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "decoding stopped" in warnings[0]


def test_point11_detect_refuses_a_non_positive_stride(tiny_run, make_video):
    from vidclass import Classifier
    from vidclass.errors import UserError

    clf = Classifier.load(tiny_run)
    video = make_video("v.mp4", n=10)
    for kwargs in ({"stride": 0}, {"smooth": 0}):
        with pytest.raises(UserError, match="at least 1"):
            clf.detect(video, **kwargs)
