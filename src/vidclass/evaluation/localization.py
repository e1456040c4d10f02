"""Mean average precision of temporal action localization (ActivityNet / THUMOS definition).

For each class, the predicted segments of all videos are ranked by score; going down the
ranking, a prediction is a true positive when it overlaps a not yet matched ground-truth
segment of its class in the same video by at least the temporal IoU threshold (the
best-overlapping unmatched one is taken), otherwise a false positive; so each ground truth
is matched at most once and duplicates count against the method. AP is the area under the
precision-recall curve with precision made monotone (the ActivityNet evaluation code's
`interpolated_prec_rec`); mAP averages AP over the classes that have ground truth.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from vidclass.errors import UserError
from vidclass.evaluation import ap
from vidclass.outputs import json_files

DEFAULT_TIOUS = (0.3, 0.5, 0.7)


def average_precision(
    predictions: list[tuple[str, float, float, float]],
    truth: dict[str, list[tuple[float, float]]],
    tiou: float,
) -> float:
    """AP of one class. `predictions`: (video, t_start, t_end, score); `truth`: video →
    ground-truth (t_start, t_end) of this class. Matches segments in time, then scores the
    ranking with the one :func:`vidclass.evaluation.ap.average_precision`."""
    n_truth = sum(len(v) for v in truth.values())
    if n_truth == 0:
        return float("nan")
    order = sorted(predictions, key=lambda p: -p[3])
    gts = {v: np.asarray(s, dtype=np.float64).reshape(-1, 2) for v, s in truth.items()}
    used = {v: np.zeros(len(s), bool) for v, s in gts.items()}
    tp = np.zeros(len(order), bool)
    for i, (video, t0, t1, _) in enumerate(order):
        if video not in gts or not len(gts[video]):
            continue
        overlap = ap.temporal_iou((t0, t1), gts[video])
        for j in np.argsort(-overlap, kind="stable"):
            if overlap[j] < tiou:
                break
            if not used[video][j]:
                used[video][j] = True
                tp[i] = True
                break
    return ap.average_precision(tp, n_truth)


def localization_map(
    predictions: dict[str, list[dict]],
    truth: dict[str, list[dict]],
    tious: tuple[float, ...] = DEFAULT_TIOUS,
) -> dict:
    """mAP at each temporal IoU threshold and their average, plus per-class AP.

    `predictions` / `truth`: video → segments `{label, t_start, t_end[, score]}`. Videos
    without predictions count as all missed.
    """
    by_class_pred: dict[str, list[tuple[str, float, float, float]]] = defaultdict(list)
    by_class_truth: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for video, segs in truth.items():
        for s in segs:
            by_class_truth[s["label"]][video].append((float(s["t_start"]), float(s["t_end"])))
    for video, segs in predictions.items():
        for s in segs:
            by_class_pred[s["label"]].append(
                (video, float(s["t_start"]), float(s["t_end"]), float(s.get("score", 1.0)))
            )
    classes = sorted(by_class_truth)
    per_class: dict[str, dict[str, float]] = {}
    maps: dict[str, float] = {}
    for t in tious:
        aps = {
            c: average_precision(by_class_pred.get(c, []), by_class_truth[c], t) for c in classes
        }
        for c, value in aps.items():
            per_class.setdefault(c, {})[f"{t:g}"] = value
        maps[f"{t:g}"] = float(np.mean(list(aps.values()))) if aps else 0.0
    return {
        "mAP": maps,
        "average_mAP": float(np.mean(list(maps.values()))) if maps else 0.0,
        "per_class_AP": per_class,
        "num_videos": len(truth),
        "num_ground_truth": sum(len(s) for s in truth.values()),
        "num_predictions": sum(len(s) for s in predictions.values()),
        "tious": list(tious),
    }


def read_segments(path: Path) -> list[dict]:
    """The `segments` of a localization JSON (a prediction or a ground truth file)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable JSON file ({exc})") from None
    segments = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segments, list):
        raise UserError(
            f'{path}: no \'segments\' list; expected {{"segments": [{{"label", "t_start", '
            '"t_end"[, "score"]}]}} as written by `vidclass localize --json` or `synth --kind long`'
        )
    for s in segments:
        if not {"label", "t_start", "t_end"} <= set(s):
            raise UserError(f"{path}: a segment lacks label, t_start or t_end: {s}")
    return segments


def evaluate_folders(
    pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, tious: tuple[float, ...] = DEFAULT_TIOUS
) -> dict:
    """mAP of the prediction files in `pred_dir` against the ground truth in `gt_dir`, matched
    by their path under each folder (`preds/walk/p1.json` <-> `data/long/walk/p1.json`, the
    names `localize --json DIR/` gives; `vidclass.outputs`). A ground truth without a
    prediction counts as all missed; a prediction without ground truth is reported and
    ignored."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for folder in (pred_dir, gt_dir):
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder of .json files{_one_file_hint(folder)}")
    truth = {
        key: read_segments(p)
        for key, p in json_files(gt_dir, exclude=pred_dir).items()
        if _has_segments(p)
    }
    if not truth:
        raise UserError(f"{gt_dir}: no ground-truth .json with 'segments' found")
    found = json_files(pred_dir, exclude=gt_dir)
    preds = {key: read_segments(p) for key, p in found.items() if key in truth}
    if not preds:
        raise UserError(
            f"{pred_dir}: no prediction .json matching a ground-truth file of {gt_dir} "
            "(write them with `vidclass localize RUN VIDEOS --json DIR/`)"
        )
    result = localization_map(preds, truth, tious)
    result["missing_predictions"] = sorted(set(truth) - set(preds))
    result["unmatched_predictions"] = sorted(set(found) - set(truth))
    return result


def _one_file_hint(path: Path) -> str:
    """For a `--json FILE` holding several videos' results: how to get one file per video."""
    try:
        several = isinstance(json.loads(path.read_text()), list)
    except (OSError, ValueError):
        return ""
    return (
        "; it holds several videos' results in one list: write one file per video with "
        "`vidclass localize RUN VIDEOS --json DIR/` (the trailing / means a folder)"
        if several
        else ""
    )


def _has_segments(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("segments"), list)
    except (OSError, json.JSONDecodeError, AttributeError):
        return False
