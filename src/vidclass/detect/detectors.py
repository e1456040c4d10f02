"""Person detectors: a frame in, boxes with scores out. Pluggable by name (`build_detector`).

* `motion`: background subtraction for static cameras (OpenCV MOG2 + morphology + connected
  components), started from the median of frames spread over the video. Its core lives in
  `vidclass.data.motion`, where `prepare --crop person` uses the same code.
* `hog`: OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs): upright
  pedestrians in real videos, no downloaded weights. Its window is 64x128 pixels, so small
  frames are upscaled first. OpenCV 5 dropped it from the main module (`opencv-python-headless<5`).
* `person`: MediaPipe's pretrained BlazePose person detector (`vidclass.data.pose`; the
  optional extra `vidclass[pose]`): any pose, moving or still, any camera; the default of
  `vidclass detect` when it is installed. Each person's box is the upright body's extent
  about the hips, from the detector's whole-body circle.

Boxes are float `(N, 4)` `x1, y1, x2, y2` in frame pixels, scores `(N,)` in [0, 1].
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import numpy as np

from vidclass.data.motion import MotionDetector, median_background, no_boxes
from vidclass.errors import UserError
from vidclass.evaluation.ap import box_intersections, box_iou

__all__ = [
    "AUTO",
    "DETECTORS",
    "Detector",
    "HogDetector",
    "MotionDetector",
    "PersonDetector",
    "box_containment",
    "available_detectors",
    "build_detector",
    "default_detector",
    "evenly_spaced",
    "median_background",
    "nms",
]

DETECTORS = ("motion", "hog", "person")
AUTO = "auto"  # person when the pose extra is installed, else motion


class Detector(Protocol):
    """Anything that maps an RGB uint8 frame `(H, W, 3)` to `(boxes (N, 4), scores (N,))`."""

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def box_containment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box of `b` that lies inside each box of `a`: `(len(a), len(b))`."""
    a, b, inter = box_intersections(a, b)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_b, 1e-12)[None, :]


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou: float = 0.4, contained: float = 1.01
) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first. A box is
    also dropped when more than `contained` of it lies inside a better box (a limb found
    as a second person)."""
    order = np.argsort(-np.asarray(scores))
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ok = box_iou(boxes[i], boxes[rest])[0] <= iou
        ok &= box_containment(boxes[i], boxes[rest])[0] <= contained
        order = rest[ok]
    return np.array(keep, np.int64)


class HogDetector:
    """OpenCV's HOG people detector (pedestrians, upright, at least ~128 px tall after the
    upscaling of small frames; large frames are scaled down to `max_height` for speed)."""

    def __init__(
        self,
        min_height: int = 480,
        max_height: int = 480,
        hit_threshold: float = 0.0,
        scale: float = 1.05,
        nms_iou: float = 0.4,
    ) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise UserError(
                f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it out of "
                "the main module); install 'opencv-python-headless<5' or use --detector motion"
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_height, self.max_height = min_height, max_height
        self.hit_threshold = hit_threshold
        self.scale, self.nms_iou = scale, nms_iou

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = frame.shape[0]
        up = max(1.0, self.min_height / h) if h < self.min_height else min(1.0, self.max_height / h)
        image = frame if up == 1.0 else cv2.resize(frame, None, fx=up, fy=up)
        rects, weights = self.hog.detectMultiScale(
            image,
            hitThreshold=self.hit_threshold,
            winStride=(8, 8),
            padding=(8, 8),
            scale=self.scale,
        )
        if len(rects) == 0:
            return no_boxes()
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.stack(
            [rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1
        )
        boxes /= up
        # The SVM margin, squashed to (0, 1): 0.5 on the decision boundary.
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        keep = nms(boxes, scores, self.nms_iou)
        fh, fw = frame.shape[:2]
        boxes = np.clip(boxes[keep], 0, [fw, fh, fw, fh]).astype(np.float32)
        return boxes, scores[keep].astype(np.float32)


class PersonDetector:
    """MediaPipe's pretrained person detector (`vidclass.data.pose`): everyone in the frame,
    in any pose. The detector sees the frame letterboxed to 224x224, so it costs the same at
    any frame size (plus the one resize).

    A person's box is `width` x `height` times the diameter of the body circle the detector
    gives (centred on the hips, holding the whole body), centred on the hips: upright people
    are about half as wide as tall, so the box of one does not cover a neighbour."""

    def __init__(
        self, min_score: float = 0.5, width: float = 0.4, height: float = 1.0, nms_iou: float = 0.6
    ) -> None:
        from vidclass.data.pose import pose_model

        self.model = pose_model()  # a UserError naming the install command when missing
        self.min_score, self.width, self.height, self.nms_iou = min_score, width, height, nms_iou

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = self.model.people(frame, self.min_score)
        if not len(found.scores):
            return no_boxes()
        c, r = found.centres, found.radii[:, None]
        half = np.concatenate([self.width * r, self.height * r], 1)
        boxes = np.concatenate([c - half, c + half], 1)
        keep = nms(boxes, found.scores, self.nms_iou)
        fh, fw = frame.shape[:2]
        boxes = np.clip(boxes[keep], 0, [fw, fh, fw, fh]).astype(np.float32)
        return boxes, found.scores[keep].astype(np.float32)


def default_detector() -> str:
    """What `auto` means here: `person` when the pose extra is installed, else `motion`."""
    from vidclass.data.pose import available

    return "person" if available() else "motion"


def available_detectors() -> list[str]:
    """The built-in detectors that can run here (`person` needs the pose extra)."""
    return [name for name in DETECTORS if name != "person" or default_detector() == "person"]


def build_detector(name: str, **options) -> Detector:
    """A detector by name: `person`, `motion`, `hog`, or `auto` (see the module docstring)."""
    if name == AUTO:
        name = default_detector()
    if name == "person":
        return PersonDetector(**options)
    if name == "motion":
        return MotionDetector(**options)
    if name == "hog":
        return HogDetector(**options)
    raise UserError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}, {AUTO}")


def evenly_spaced(n_total: int, n: int) -> set[int]:
    """`n` frame indices spread over `n_total` frames (all of them when there are fewer)."""
    if n_total <= n:
        return set(range(n_total))
    return {math.floor((i + 0.5) * n_total / n) for i in range(n)}
