"""Spatio-temporal action detection: every person found, tracked, and what each is doing when.

One decoding pass, bounded memory: each frame goes through the person detector and the
tracker; at the model's frame rate the frame also joins a ring buffer of the last T sampled
frames, and every live track collects its box. Whenever a track has T samples and `stride`
new ones, its tube (the window's frames cropped around the track's path, `video/tubes.py`) is
queued for the clip model, which classifies the queued tubes of all tracks in batches (as
`localize` does its windows). A track's window probabilities are smoothed (centred rolling
average) and grouped into action segments. The annotated copy is drawn in a second pass.

In code: tube builder (`_build_tubes`, the decoding pass) -> batched scorer (`_Scorer`) ->
track assembly (`_assemble_tracks`).

Output (the design's detection contract, plus what produced it):
`{"video", "fps", "width", "height", "duration_s", "truncated", "decoded_duration_s",
"detector", "classes", "tracks": [{"track_id",
"boxes": [[t, x1, y1, x2, y2]], "segments": [{"label", "t_start", "t_end", "score"}],
"action_scores": [[p per class] per box], "timeline": [{"t_start", "t_end", "probs"}]}]}`.
`action_scores` gives every box a probability per class (the order of `classes`), read off
the track's window probabilities at the box's time: what AVA-style evaluation ranks (each
box carries every action with a score), while `segments` are the grouped summary.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidclass.detect.detectors import (
    AUTO,
    DETECTORS,
    Detector,
    MotionDetector,
    build_detector,
    default_detector,
    evenly_spaced,
    median_background,
)
from vidclass.detect.tracking import Tracker
from vidclass.errors import UserError
from vidclass.localize.proposals import segments_from_probs
from vidclass.predict.options import DetectOptions, LocalizeOptions
from vidclass.predict.smoothing import rolling_average
from vidclass.predict.threads import decoder_core
from vidclass.synth.labels import BACKGROUND
from vidclass.video.reader import iter_frames
from vidclass.video.tubes import CONTEXT, MIN_CROP, tube_clip

BACKGROUND_FRAMES = 25  # frames spread over a file for the motion detector's empty scene
# Segments per track: the localization's proposals with two more thresholds (0.1, 0.9)
# (tuned on held-out scenes, seed 99, when frame-mAP was scored from segments: truth-box
# frame-mAP 0.772 -> 0.795; window stride 4 -> 2 samples: 0.751 -> 0.772; no smoothing),
# and hard temporal NMS: a person's summary should not list fragments of one action.
DETECT_OPTIONS = LocalizeOptions(
    thresholds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), soft_sigma=None
)


@dataclass
class _Tube:
    """A track's boxes at the sampled frames, and its scored windows."""

    samples: deque  # (sample number, t, box)
    since: int = 0  # samples since the last scored window
    scored: bool = False
    last_sample: int = -1
    timeline: list[dict] = field(default_factory=list)


def load_detector(detector: str | Detector) -> Detector:
    """`person`, `motion`, `hog`, `auto`, a folder holding a trained detector, or a ready
    `Detector`."""
    if not isinstance(detector, str):
        return detector
    if detector in DETECTORS or detector == AUTO:
        return build_detector(detector)
    if Path(detector).is_dir():
        from vidclass.detect.centernet.model import CenterNetDetector

        return CenterNetDetector(detector)
    raise UserError(
        f"unknown detector {detector!r}: use {', '.join(DETECTORS)}, {AUTO}, or a folder "
        "written by `vidclass train-detector`"
    )


def _prime_motion(detector: MotionDetector, video: str | os.PathLike) -> None:
    """Start the background model from the median of frames spread over the file."""
    info, frames = iter_frames(video, 8, 1.0, keep_frames=True, sample=False)
    total = round((info.duration_s or 0) * info.fps)
    if total <= 0:
        return  # unknown length: MOG2 learns the scene as it goes
    pick = evenly_spaced(total, BACKGROUND_FRAMES)
    kept = [f.image for f in frames if f.index in pick]
    if kept:
        detector.prime(median_background(kept))


def detect(
    clf,
    video: str | os.PathLike,
    detector: str | Detector = DetectOptions.detector,
    stride: int | None = DetectOptions.stride,
    smooth: int = DetectOptions.smooth,
    context: float = CONTEXT,
    min_crop: float = MIN_CROP,
    min_track_s: float = DetectOptions.min_track_s,
    annotate: str | os.PathLike | None = None,
    tracker: Tracker | None = None,
    options: LocalizeOptions | None = None,
    batch_size: int = LocalizeOptions.batch_size,
) -> dict:
    """Detect, track and label every person of `video` with the trained clip model `clf`.

    `detector`: `person`, `motion`, `hog`, `auto` (person when the pose extra is installed,
    else motion), a `train-detector` folder or any `Detector`; `stride`:
    sampled frames between a track's windows [default: an eighth of a window]; `smooth`:
    centred rolling average over that many windows; `context`, `min_crop`: the tube crop's
    side over the person's path, and its least share of the frame's short side (`video/tubes.py`);
    `min_track_s`: shorter tracks are dropped (detector flicker); `options`: how window
    probabilities become segments (`localize`); `batch_size`: tube clips classified per model
    call (the results do not depend on it). See the module docstring for the result.
    """
    start = time.perf_counter()
    if detector == AUTO:
        detector = default_detector()  # the result names the detector that ran
    window = clf.frames
    stride = max(1, window // 8) if stride is None else stride
    if stride < 1 or smooth < 1:
        raise UserError(f"--stride {stride}, --smooth {smooth}: both must be at least 1")
    if batch_size < 1:
        raise UserError(f"batch_size {batch_size}: must be at least 1")
    det = load_detector(detector)
    if isinstance(det, MotionDetector) and not det.primed:
        _prime_motion(det, video)
    scorer = _Scorer(clf, batch_size, context, min_crop)
    scan = _build_tubes(clf, video, det, tracker or Tracker(), scorer, stride)
    fps = scan.info.fps or (scan.n_frames / max(scan.last_t, 1e-6))
    decoded = scan.info.decoded_duration_s or (scan.last_t + 1.0 / max(fps, 1e-6))
    duration = scan.info.duration_s or decoded
    tracks = _assemble_tracks(scan, fps, min_track_s, smooth, clf, options or DETECT_OPTIONS)
    result = {
        "video": str(video),
        "fps": fps,
        "width": scan.info.width,
        "height": scan.info.height,
        "duration_s": round(float(duration), 3),
        "num_frames": scan.n_frames,
        **scan.info.result_fields(),
        "detector": detector if isinstance(detector, str) else type(detector).__name__,
        "model": clf.config.get("model"),
        "classes": clf.classes,
        "sample_fps": clf.sample_fps,
        "window": window,
        "stride": stride,
        "smooth": smooth,
        "tracks": tracks,
        "seconds": round(time.perf_counter() - start, 3),
        "annotated": str(annotate) if annotate else None,
    }
    if annotate is not None:
        annotate_video(video, result, annotate)
    return result


class _Scorer:
    """Tube clips queued as they are cut and classified `batch_size` at a time, like
    `localize`'s windows. A queued window's entry is on its tube's timeline at once (times
    filled in); its probabilities arrive at the next flush. Each clip carries its own padding
    mask through `Classifier.windows_probs`, so short tails batch with full windows."""

    def __init__(self, clf, batch_size: int, context: float, min_crop: float) -> None:
        self.clf, self.batch_size = clf, batch_size
        self.context, self.min_crop = context, min_crop
        self.step = 1.0 / clf.sample_fps
        self.pending: list[tuple[dict, list[np.ndarray]]] = []

    def add(self, tube: _Tube, buffer: deque[tuple[int, np.ndarray]]) -> None:
        """Cut the tube's clip from the frames still in `buffer` and queue it."""
        window = self.clf.frames
        images = dict(buffer)
        items = [s for s in tube.samples if s[0] in images][-window:]
        if len(items) < max(2, window // 2):
            return
        clip = tube_clip([images[n] for n, _, _ in items], np.stack([b for *_, b in items]),
                         self.clf.size, self.context, self.min_crop)  # fmt: skip
        entry = {
            "t_start": round(items[0][1], 4),
            "t_end": round(items[-1][1] + self.step, 4),
            "probs": None,
        }
        tube.timeline.append(entry)
        tube.since, tube.scored = 0, True
        self.pending.append((entry, clip))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Classify the queued clips in one model call."""
        if not self.pending:
            return
        probs = self.clf.windows_probs([clip for _, clip in self.pending])
        for (entry, _), p in zip(self.pending, probs, strict=True):
            entry["probs"] = [round(float(v), 5) for v in p]
        self.pending.clear()


@dataclass
class _Scan:
    """What the decoding pass found: every track's boxes (t, box, detected) and tube."""

    info: object
    boxes: dict[int, list[tuple[float, np.ndarray, bool]]]
    tubes: dict[int, _Tube]
    n_frames: int
    last_t: float


def _build_tubes(
    clf, video, det: Detector, tracker: Tracker, scorer: _Scorer, stride: int
) -> _Scan:
    """The one decoding pass: detect and track on every frame; at the model's rate, extend
    every live track's tube and queue a window each `stride` samples (and a track's tail
    when it ends), all classified by `scorer` before this returns."""
    window, step = clf.frames, 1.0 / clf.sample_fps
    buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=window + 1)  # (sample no., image)
    tubes: dict[int, _Tube] = {}
    boxes: dict[int, list[tuple[float, np.ndarray, bool]]] = {}
    info, frames = iter_frames(video, clf.size, clf.sample_fps, keep_frames=True, sample=False)
    next_t, sample_no, last_t, n_frames = 0.0, -1, 0.0, 0
    with decoder_core():  # one core stays with the decoder thread
        for f in frames:
            n_frames, last_t = n_frames + 1, f.t
            found, scores = det(f.image)
            tracked = tracker.update(found, scores)
            for tb in tracked:
                boxes.setdefault(tb.track_id, []).append((f.t, tb.box.copy(), tb.detected))
            if f.t + 1e-9 < next_t:
                continue
            next_t += step * max(1, int((f.t - next_t) // step) + 1)
            sample_no += 1
            buffer.append((sample_no, f.image))
            live = {tb.track_id for tb in tracked}
            for tid, tube in tubes.items():  # tracks that just ended: score their tail
                if tid not in live and tube.last_sample == sample_no - 1:
                    if tube.since or not tube.scored:
                        scorer.add(tube, buffer)
            for tb in tracked:
                tube = tubes.setdefault(tb.track_id, _Tube(deque(maxlen=window)))
                tube.samples.append((sample_no, f.t, tb.box.copy()))
                tube.since += 1
                tube.last_sample = sample_no
                if len(tube.samples) == window and (tube.since >= stride or not tube.scored):
                    scorer.add(tube, buffer)
        for tube in tubes.values():
            if tube.last_sample == sample_no and (tube.since or not tube.scored):
                scorer.add(tube, buffer)
        scorer.flush()
    return _Scan(info, boxes, tubes, n_frames, last_t)


def _assemble_tracks(
    scan: _Scan, fps: float, min_track_s: float, smooth: int, clf, options: LocalizeOptions
) -> list[dict]:
    """Each kept track's boxes, timeline, segments and per-box action scores; tracks shorter
    than `min_track_s` (after dropping the coasting tail) are left out."""
    tracks = []
    for tid in sorted(scan.boxes):
        rows = scan.boxes[tid]
        while rows and not rows[-1][2]:  # the coasting tail after the person was lost
            rows.pop()
        if not rows or rows[-1][0] - rows[0][0] < min_track_s:
            continue
        span = (rows[0][0], rows[-1][0] + 1.0 / fps)
        timeline = scan.tubes[tid].timeline if tid in scan.tubes else []
        track = {
            "track_id": len(tracks) + 1,
            "boxes": [[round(t, 4), *(round(float(v), 1) for v in b)] for t, b, _ in rows],
            "segments": [],
            "action_scores": [],
            "timeline": timeline,
        }
        if timeline:
            centres, probs = _curves(timeline, smooth)
            track["segments"] = _segments(centres, probs, span, clf, options)
            at = np.array([t for t, _, _ in rows])
            scores = np.stack(
                [np.interp(at, centres, probs[:, k]) for k in range(probs.shape[1])], 1
            )
            track["action_scores"] = [[round(float(v), 4) for v in row] for row in scores]
        tracks.append(track)
    return tracks


def _curves(timeline: list[dict], smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """Window centres (n,) and their class probabilities (n, K), centred rolling average."""
    probs = rolling_average(np.array([u["probs"] for u in timeline]), smooth, centred=True)
    return np.array([(u["t_start"] + u["t_end"]) / 2 for u in timeline]), probs


def _segments(
    centres: np.ndarray, probs: np.ndarray, span: tuple[float, float], clf, options
) -> list[dict]:
    """A track's action segments: its window probabilities on the track's sampled times,
    grouped by the localization's proposals (several thresholds, completeness scores,
    temporal NMS), clipped to the track's life."""
    grid = np.arange(span[0], span[1], 1.0 / clf.sample_fps)
    curves = np.stack([np.interp(grid, centres, probs[:, k]) for k in range(probs.shape[1])], 1)
    background = BACKGROUND if BACKGROUND in clf.classes else None
    found = segments_from_probs(grid, curves, clf.classes, background, options, end=span[1])
    segments = []
    for seg in found:
        t0, t1 = max(seg["t_start"], span[0]), min(seg["t_end"], span[1])
        if t1 > t0:
            segments.append(seg | {"t_start": round(t0, 4), "t_end": round(t1, 4)})
    return segments


_COLOURS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]  # fmt: skip


def label_at(track: dict, t: float) -> tuple[str | None, float]:
    """The track's best-scored action at time t (None when it does nothing)."""
    best = max(
        (s for s in track["segments"] if s["t_start"] <= t < s["t_end"]),
        key=lambda s: s["score"],
        default=None,
    )
    return (best["label"], best["score"]) if best else (None, 0.0)


MIN_ANNOTATED_HEIGHT = 480  # smaller videos are upscaled (whole times) in the annotated copy


def annotate_video(video: str | os.PathLike, result: dict, out: str | os.PathLike) -> Path:
    """A copy of the video with every track's box, id and current action drawn on it
    (videos under 480 px high are upscaled by a whole factor so the text can be read)."""
    import cv2

    from vidclass.video.writer import VideoWriter

    by_frame: dict[int, list[tuple[dict, list[float]]]] = {}
    fps = result["fps"]
    for tr in result["tracks"]:
        for row in tr["boxes"]:
            by_frame.setdefault(int(round(row[0] * fps)), []).append((tr, row))
    info, frames = iter_frames(video, 8, 1.0, keep_frames=True, sample=False)
    up = max(1, -(-MIN_ANNOTATED_HEIGHT // max(info.height, 1)))  # small videos: readable text
    writer = VideoWriter(out, info.fps or fps, info.width * up, info.height * up)
    try:
        for f in frames:
            image = f.image
            if up > 1:
                image = cv2.resize(image, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
            scale = max(0.45, min(image.shape[:2]) / 600)
            thick = max(1, round(scale * 2))
            for tr, row in by_frame.get(f.index, []):
                colour = _COLOURS[(tr["track_id"] - 1) % len(_COLOURS)]
                x1, y1, x2, y2 = (int(round(v * up)) for v in row[1:5])
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick)
                label, score = label_at(tr, row[0])
                text = f"#{tr['track_id']} " + (f"{label} {score:.0%}" if label else "-")
                (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
                ty = max(th + 2, y1 - 2)
                cv2.rectangle(image, (x1, ty - th - 2), (x1 + tw + 2, ty + 2), colour, -1)
                cv2.putText(image, text, (x1 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                            (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
            writer.write(image)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
