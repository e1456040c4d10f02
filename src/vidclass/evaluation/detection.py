"""Scoring spatio-temporal detection: frame-mAP (AVA-style) and tracking quality (CLEAR-MOT,
IDF1).

* **frame-mAP@IoU** (Gu et al., AVA, 2018): a detection is a (frame, box, action label, score).
  Per action class, the detections of all frames of all videos are ranked by score; going down
  the list, a detection is a true positive when its box overlaps a not yet matched
  ground-truth box of that class on that frame with IoU >= 0.5 (the best-overlapping one, as
  in PASCAL VOC), otherwise a false positive. AP is the area under the precision-recall curve
  with all-point interpolation (precision made monotone from the right, as in VOC 2010+ and
  the AVA evaluation code). frame-mAP is the mean over the classes that have ground truth.
  Ground-truth boxes labelled `background` (a person doing nothing) are not actions and are
  not scored.
* **Tracking** (Bernardin & Stiefelhagen 2008; Ristani et al. 2016), class-agnostic over every
  person box: per frame, ground truth and tracks are matched at IoU >= 0.5 (a pair matched on
  the previous frame is kept while it still overlaps, then the Hungarian assignment);
  an ID switch is a ground-truth person matched to a different track than last time it was
  matched. MOTA = 1 - (misses + false positives + ID switches) / ground-truth boxes. IDF1:
  tracks are paired one-to-one with people over the whole video to maximise the frames they
  agree on (IDTP); IDF1 = 2 IDTP / (ground-truth boxes + predicted boxes).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from vidclass.errors import UserError
from vidclass.evaluation.ap import average_precision, box_iou
from vidclass.outputs import json_files
from vidclass.synth.labels import BACKGROUND

Key = tuple[str, int]  # (video, frame index)


def frame_map(
    detections: list[tuple[Key, str, float, np.ndarray]],
    truths: list[tuple[Key, str, np.ndarray]],
    iou_threshold: float = 0.5,
) -> dict:
    """{"frame_mAP", "ap": {class: AP}, "num_gt": {class: n}} (see the module docstring).

    `detections`: (frame key, label, score, box xyxy); `truths`: (frame key, label, box)."""
    gt: dict[str, dict[Key, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for key, label, box in truths:
        if label and label != BACKGROUND:
            gt[label][key].append(np.asarray(box, np.float64))
    by_class: dict[str, list] = defaultdict(list)
    for key, label, score, box in detections:
        if label and label != BACKGROUND:
            by_class[label].append((float(score), key, np.asarray(box, np.float64)))
    ap, num_gt = {}, {}
    for label in sorted(gt):
        num_gt[label] = sum(len(v) for v in gt[label].values())
        used = {key: np.zeros(len(v), bool) for key, v in gt[label].items()}
        dets = sorted(by_class.get(label, []), key=lambda d: -d[0])
        is_tp = np.zeros(len(dets), bool)
        for i, (_, key, box) in enumerate(dets):
            boxes = gt[label].get(key)
            if not boxes:
                continue
            overlaps = box_iou(box, np.stack(boxes))[0]
            j = int(np.argmax(overlaps))
            if overlaps[j] >= iou_threshold and not used[key][j]:
                is_tp[i] = used[key][j] = True
        ap[label] = average_precision(is_tp, num_gt[label])
    return {
        "frame_mAP": float(np.mean(list(ap.values()))) if ap else float("nan"),
        "ap": ap,
        "num_gt": num_gt,
        "iou_threshold": iou_threshold,
    }


def tracking_metrics(
    predicted: dict[Key, list[tuple[int, np.ndarray]]],
    truth: dict[Key, list[tuple[int, np.ndarray]]],
    iou_threshold: float = 0.5,
) -> dict:
    """CLEAR-MOT (MOTA, ID switches) and IDF1 over frames keyed (video, index); every frame
    of the truth is scored, predictions on frames without truth are ignored.

    Track and person ids are taken per video (the key's first item)."""
    fp = fn = idsw = num_gt = num_pred = matches = 0
    last: dict[tuple[str, int], int] = {}  # (video, person) -> track matched last time
    agree: dict[tuple[str, int, int], int] = defaultdict(int)  # (video, person, track) -> frames
    gt_count: dict[tuple[str, int], int] = defaultdict(int)
    pred_count: dict[tuple[str, int], int] = defaultdict(int)
    for key in sorted(truth):
        video = key[0]
        g = truth[key]
        p = predicted.get(key, [])
        num_gt += len(g)
        num_pred += len(p)
        for gid, _ in g:
            gt_count[video, gid] += 1
        for pid, _ in p:
            pred_count[video, pid] += 1
        if not g or not p:
            fn += len(g)
            fp += len(p)
            continue
        iou = box_iou(np.stack([b for _, b in g]), np.stack([b for _, b in p]))
        gids, pids = [i for i, _ in g], [i for i, _ in p]
        pairs: list[tuple[int, int]] = []
        # keep last frame's correspondences that still hold
        for r, gid in enumerate(gids):
            prev = last.get((video, gid))
            if prev in pids:
                c = pids.index(prev)
                if iou[r, c] >= iou_threshold and c not in {pc for _, pc in pairs}:
                    pairs.append((r, c))
        free_r = [r for r in range(len(gids)) if r not in {pr for pr, _ in pairs}]
        free_c = [c for c in range(len(pids)) if c not in {pc for _, pc in pairs}]
        if free_r and free_c:
            sub = iou[np.ix_(free_r, free_c)]
            rows, cols = linear_sum_assignment(-sub)
            pairs += [
                (free_r[r], free_c[c])
                for r, c in zip(rows, cols, strict=True)
                if sub[r, c] >= iou_threshold
            ]
        for r, c in pairs:
            gid, pid = gids[r], pids[c]
            if (video, gid) in last and last[video, gid] != pid:
                idsw += 1
            last[video, gid] = pid
        matches += len(pairs)
        fn += len(gids) - len(pairs)
        fp += len(pids) - len(pairs)
        # IDF1 counts any overlapping pair, not only this frame's assignment
        for r, c in zip(*np.nonzero(iou >= iou_threshold), strict=True):
            agree[video, gids[r], pids[c]] += 1
    idtp = 0
    for video in {v for v, _ in gt_count}:
        people = [gid for v, gid in gt_count if v == video]
        tracks = [pid for v, pid in pred_count if v == video]
        if people and tracks:
            m = np.array([[agree.get((video, g, t), 0) for t in tracks] for g in people])
            rows, cols = linear_sum_assignment(-m)
            idtp += int(m[rows, cols].sum())
    total = num_gt + num_pred
    return {
        "mota": 1.0 - (fn + fp + idsw) / num_gt if num_gt else float("nan"),
        "id_switches": idsw,
        "idf1": 2 * idtp / total if total else float("nan"),
        "false_positives": fp,
        "misses": fn,
        "matches": matches,
        "num_gt": num_gt,
        "recall": matches / num_gt if num_gt else float("nan"),
        "precision": matches / num_pred if num_pred else float("nan"),
    }


# ----------------------------------------------------------------------------- files


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read JSON ({exc}); pass a file written by "
                        "`vidclass detect --json` or `vidclass synth --kind multi`") from None  # fmt: skip


def truth_items(truth: dict, video: str):
    """(per-frame action truths, per-frame person boxes) of a `synth --kind multi` file."""
    if "frames" not in truth:
        raise UserError(f"{video}: ground truth has no 'frames'; expected `synth --kind multi`")
    actions, people = [], {}
    for entry in truth["frames"]:
        key = (video, int(entry["index"]))
        people[key] = [(int(o["track_id"]), np.asarray(o["box"], float)) for o in entry["objects"]]
        actions += [(key, o.get("label"), np.asarray(o["box"], float)) for o in entry["objects"]]
    return actions, people


def prediction_items(pred: dict, video: str, fps: float):
    """(per-frame action detections, per-frame track boxes) of a `vidclass detect` result.

    With `action_scores` (one probability per class per box), every box is a detection of
    every action class with that score, as AVA systems report them. Without, each box at
    time t is a detection of every label whose segments hold t, scored by the best such
    segment of that label."""
    if isinstance(pred, list):
        raise UserError(
            f"{video}: the prediction file holds several videos' results in one list; write one "
            "file per video with `vidclass detect RUN VIDEOS --json DIR/` and pass the folder"
        )
    if "tracks" not in pred:
        raise UserError(f"{video}: prediction has no 'tracks'; expected `vidclass detect --json`")
    classes = pred.get("classes", [])
    detections, tracks = [], defaultdict(list)
    for tr in pred["tracks"]:
        segments = tr.get("segments", [])
        per_box = tr.get("action_scores") or []
        use_scores = len(per_box) == len(tr["boxes"]) and bool(classes)
        for b, row in enumerate(tr["boxes"]):
            t, box = float(row[0]), np.asarray(row[1:5], float)
            key = (video, int(round(t * fps)))
            tracks[key].append((int(tr["track_id"]), box))
            if use_scores:
                detections += [
                    (key, label, float(p), box)
                    for label, p in zip(classes, per_box[b], strict=True)
                    if label != BACKGROUND
                ]
                continue
            best: dict[str, float] = {}  # overlapping segments of one label: one detection
            for s in segments:
                if s["t_start"] <= t < s["t_end"] + 1e-6:
                    best[s["label"]] = max(best.get(s["label"], -np.inf), float(s["score"]))
            detections += [(key, label, score, box) for label, score in best.items()]
    return detections, dict(tracks)


def _is_truth(path: Path) -> bool:
    """A `synth --kind multi` truth file (not e.g. a classes.json in the same folder)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "frames" in data


def _pairs(pred: Path, gt: Path) -> tuple[list[tuple[str, Path | None, Path]], list[str]]:
    """(video key, prediction or None, truth) per ground-truth video, and the prediction
    files that have no truth. A truth without a prediction is kept (None): scored as missed."""
    pred, gt = Path(pred), Path(gt)
    if pred.is_file() and gt.is_file():
        return [(gt.stem, pred, gt)], []
    if pred.is_dir() and gt.is_dir():
        truths = {k: p for k, p in json_files(gt, exclude=pred).items() if _is_truth(p)}
        preds = json_files(pred, exclude=gt)
        if not set(truths) & set(preds):
            raise UserError(
                f"no prediction in {pred} has a ground-truth file at the same path in {gt}; "
                "write them with `vidclass detect RUN VIDEOS --json DIR/` (multi_000.json in both)"
            )
        unmatched = sorted(set(preds) - set(truths))
        return [(key, preds.get(key), truths[key]) for key in sorted(truths)], unmatched
    raise UserError(
        f"pass two files or two folders (predictions, ground truth); got {pred} and {gt}"
    )


def evaluate_detection(pred: str | Path, gt: str | Path, iou_threshold: float = 0.5) -> dict:
    """Score `vidclass detect` JSON against `synth --kind multi` truth: two files, or two
    folders matched by the path under each (`vidclass.outputs.json_files`). Frames of all videos are pooled. A ground-truth video with no
    prediction file counts as missed (all its boxes, every frame) and is listed in
    `missing_predictions`, as `evaluate-localization` does: dropping it would inflate every
    score; prediction files with no truth are listed in `unmatched_predictions`."""
    detections, truths, pred_boxes, gt_boxes = [], [], {}, {}
    pairs, unmatched = _pairs(Path(pred), Path(gt))
    missing = []
    for video, p, g in pairs:
        truth = _read(g)
        a, people = truth_items(truth, video)
        truths += a
        gt_boxes.update(people)
        if p is None:
            missing.append(video)
            continue
        d, tracks = prediction_items(_read(p), video, float(truth["fps"]))
        detections += d
        pred_boxes.update(tracks)
    result = frame_map(detections, truths, iou_threshold)
    result["tracking"] = tracking_metrics(pred_boxes, gt_boxes, iou_threshold)
    result["videos"] = len(pairs)
    result["missing_predictions"] = missing
    result["unmatched_predictions"] = unmatched
    return result
