"""Which region of each frame a model sees: one function decides it (`crop_clip`), run by
`prepare` on a clip's sampled frames and by `Classifier` on each window's, so training,
evaluation and prediction crop identically (the run records the mode; tests/test_crop.py
compares the tensors).

Modes (`prepare --crop`):

- `center`: short side to the size, the centre square (the default; what prepare always did,
  byte for byte).
- `full`: the whole frame, long side to the size, zero-padded (black) to a square.
- `person`: a square around the person, one side per clip, following the person's centre
  from frame to frame (smoothed), kept inside the frame where it fits and padded where it
  does not. The person is found by a box source chosen by name (`BOX_SOURCES`; `motion`, the
  motion detector of `vidclass detect`, for static cameras; `pose`, the pretrained person
  detector of `vidclass detect --detector person`, the optional pose extra, for any camera).
  A clip where none is found is shown whole, as `full` (status `full-fallback`, which the
  manifest's `crop` column says).
  Over a video longer than a clip (`predict`), each frame's square is decided from the
  clip-long stretch of frames around it (`FrameCrops`), not from the window that reads it,
  so overlapping windows share the frame's crop and its features; a clip is its own stretch.

`center` and `full` depend on the frame alone, so they are done while decoding (the fit of
`vidclass.video.decode`); `person` needs the clip, so its frames are decoded uncropped (fit
`source`) and cut here. Boxes are square `x1, y1, x2, y2` per frame, in pixels of the frames
given (`prepare` records them in the source video's pixels); they may reach past the frame,
where the crop is zero padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidclass.data.motion import MotionDetector, median_background
from vidclass.errors import UserError

CROP_MODES = ("center", "full", "person")
CROP_STATUSES = ("center", "full", "person", "full-fallback")
FIT = {"center": "center", "full": "full", "person": "source"}  # how each mode is decoded

# The person is looked for on frames at most this small (short side): fast, yet an arm a few
# pixels wide still survives the detector's 3x3 opening (at 96 px, 4 of Weizmann's 90 clips,
# all of waving, lost their moving arm and fell back to the whole frame; at 144, none).
DETECT_SHORT_SIDE = 160
KEEP_BLOB = 0.2  # a frame's blobs under this share of its largest are left out of its box
SIDE_QUANTILE = 0.8  # the person's size: this quantile of the per-frame boxes' long sides
MARGIN = 1.25  # the crop's side over the person's size
MIN_SIDE = 0.5  # ... and at least this share of the frame's short side (noise finds specks)
SMOOTH = 5  # sampled frames the box centres are averaged over (centred)
# OpenCV's area averaging was measured 6x slower than bilinear (16 crops of 320 px to 224:
# 22 vs 3.8 ms); below a 2x shrink bilinear differs from it by 0.2 grey levels on average.
# (The small copy the person is looked for on is bilinear too: 36 vs 5.6 ms for 16 frames.)
AREA_ABOVE = 2.0

# frames (T, H, W, 3) uint8 -> (T, 4) float32 box of the person per frame, NaN where none
BoxSource = Callable[[np.ndarray], np.ndarray]


@dataclass
class Crop:
    """What `crop_clip` made of a clip: the model's frames, the boxes, and what was done."""

    frames: np.ndarray  # uint8 (T, size, size, 3)
    boxes: np.ndarray  # float32 (T, 4) square x1, y1, x2, y2 per frame
    status: str  # one of CROP_STATUSES


def per_window(mode: str) -> bool:
    """Whether `crop_window` decides a frame's crop from the window around it (so windows
    sharing a frame may see it cropped differently, and must not share its features or optical
    flow). `localize` crops its multi-scale windows so; `predict` crops each frame once
    (`frame_crops`)."""
    return mode == "person"


def check_mode(mode: str) -> str:
    if mode not in CROP_MODES:
        raise UserError(f"--crop {mode!r}: choose one of {', '.join(CROP_MODES)}")
    return mode


def motion_person_boxes(frames: np.ndarray) -> np.ndarray:
    """The motion detector on a clip of a static camera: its background is the median of the
    clip's frames, each frame's box covers its main moving blobs (NaN rows: nothing moved)."""
    h, w = frames.shape[1:3]
    scale = min(1.0, DETECT_SHORT_SIDE / min(h, w))
    if scale < 1.0:
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        frames = np.stack([cv2.resize(f, small, interpolation=cv2.INTER_LINEAR) for f in frames])
    detector = MotionDetector()
    detector.prime(median_background(frames))
    out = np.full((len(frames), 4), np.nan, np.float32)
    for i, frame in enumerate(frames):
        boxes, _ = detector(frame)
        if len(boxes):
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            main = boxes[area >= KEEP_BLOB * area.max()]
            out[i] = [*main[:, :2].min(0), *main[:, 2:].max(0)]
    return out / np.float32(scale)


def pose_person_boxes(frames: np.ndarray) -> np.ndarray:
    """The pretrained person detector (`vidclass.data.pose`, the optional pose extra: a
    UserError naming its install command without it): the best-scored person per frame."""
    from vidclass.data.pose import pose_person_boxes as boxes

    return boxes(frames)


# The person's box per frame, by name; the name a clip was prepared with is recorded, so
# prediction uses the same one.
BOX_SOURCES: dict[str, BoxSource] = {"motion": motion_person_boxes, "pose": pose_person_boxes}
DEFAULT_BOX_SOURCE = "motion"


def fixed_box(width: float, height: float, mode: str) -> np.ndarray:
    """The square of a `center` (inside) or `full` (padded) crop of a width x height frame."""
    side = min(width, height) if mode == "center" else max(width, height)
    x, y = (width - side) / 2, (height - side) / 2
    return np.array([x, y, x + side, y + side], np.float32)


def person_track(found: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """Square boxes `(T, 4)` (whole pixels) of one side following the person, from the
    per-frame boxes `found` (NaN rows: not found); None when no frame has a person.

    The side is MARGIN x the person's size: the larger of the per-frame boxes' long side
    (their SIDE_QUANTILE) and the height the boxes span over the clip (someone who waves
    moves only an arm, but from hip to above the head)."""
    ok = ~np.isnan(found[:, 0])
    if not ok.any():
        return None
    boxes = found[ok]
    long_side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    span = np.quantile(boxes[:, 3], 0.9) - np.quantile(boxes[:, 1], 0.1)
    size = max(float(np.quantile(long_side, SIDE_QUANTILE)), float(span))
    side = round(min(max(MARGIN * size, MIN_SIDE * min(width, height)), max(width, height)))
    t = np.arange(len(found))
    centres = []
    for lo, hi, limit in ((0, 2, width), (1, 3, height)):
        c = np.interp(t, t[ok], (boxes[:, lo] + boxes[:, hi]) / 2)  # nearest found at the ends
        k = min(SMOOTH, len(c))
        c = np.convolve(np.pad(c, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, "valid")
        start = np.clip(c - side / 2, min(0, limit - side), max(0, limit - side))
        centres.append(np.round(start))
    x1, y1 = centres
    return np.stack([x1, y1, x1 + side, y1 + side], 1).astype(np.float32)


def apply_crop(frames: Sequence[np.ndarray], boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 `(T, size, size, 3)`: each frame's square box (whole pixels; zero outside the
    frame) resized to `size`: bilinear, area-averaged when shrinking more than AREA_ABOVE x."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        x1, y1, x2, _ = (int(v) for v in np.round(box))
        side = x2 - x1
        y2 = y1 + side
        h, w = frame.shape[:2]
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
            region = frame[y1:y2, x1:x2]
        else:
            region = np.zeros((side, side, 3), np.uint8)
            sx, sy = max(0, x1), max(0, y1)
            ex, ey = min(w, x2), min(h, y2)
            if ex > sx and ey > sy:
                region[sy - y1 : ey - y1, sx - x1 : ex - x1] = frame[sy:ey, sx:ex]
        mode = cv2.INTER_AREA if side > AREA_ABOVE * size else cv2.INTER_LINEAR
        out[i] = cv2.resize(region, (size, size), interpolation=mode)
    return out


@dataclass
class FrameCrop:
    """One sampled frame as the model sees it, from `FrameCrops`."""

    frame: np.ndarray  # uint8 (size, size, 3)
    box: np.ndarray  # float32 (4,) square x1, y1, x2, y2 in the pixels of the frame given
    person: bool  # False: no person near this frame (`center`/`full`, or the whole frame)


class FrameCrops:
    """The crop of each frame of a stream of sampled frames, decided per frame: the one rule
    `prepare` (a clip) and `Classifier` (a video's stream) both run.

    `center` and `full` frames were fitted while decoding and pass at once. For `person`,
    with `span` T (the run's frames, the length of a training clip):

    - the person is looked for (`box_source`) block by block: frames `[kT, (k+1)T)` together
      (the motion detector's background is their median), the last, shorter block together
      with the frames before it that make it T long;
    - frame i's square is `person_track`'s over the T frames around it, `[i - T//2, i + T//2)`
      shifted to lie inside the stream, taken at frame i (its side from that neighbourhood, its
      centre smoothed over its neighbours), or the whole frame when none of them has a person.

    So a frame's crop depends on the stream, never on the window that reads it: windows that
    overlap share its crop, and so its features (each frame encoded once, flipped once). A
    clip of at most T frames is one block and every frame's neighbourhood is the whole clip:
    exactly what `prepare` always did to a clip (one side per clip, tests/test_crop.py).
    A frame is decided once the block holding frame i + T//2 - 1 is complete (at most about
    1.5 T frames after it arrives; at once for `center`/`full`) or the stream has ended.
    """

    def __init__(
        self, mode: str, size: int, span: int, box_source: str = DEFAULT_BOX_SOURCE
    ) -> None:
        self.mode, self.size, self.span = check_mode(mode), int(size), max(1, int(span))
        if mode == "person" and box_source not in BOX_SOURCES:
            raise UserError(
                f"person boxes from {box_source!r}: not available here; choose one of "
                f"{', '.join(BOX_SOURCES)}"
            )
        self.find = BOX_SOURCES.get(box_source)
        self.frames: dict[int, np.ndarray] = {}  # kept until cropped and a block cannot need it
        self.found: list[np.ndarray] = []  # the person's box found per frame (NaN: none)
        self.count = 0  # frames pushed
        self.done = 0  # frames handed out, cropped
        self.ended = False
        self._track: tuple[tuple[int, int], np.ndarray | None] | None = None

    def push(self, frame: np.ndarray) -> list[FrameCrop]:
        """Add the next sampled frame; returns the frames decided now, in order."""
        if self.mode != "person":
            h, w = frame.shape[:2]
            box = np.array([0, 0, w, h], np.float32)
            self.count += 1
            self.done += 1
            return [FrameCrop(frame, box, False)]
        self.frames[self.count] = frame
        self.count += 1
        if self.count % self.span == 0:
            self._detect(self.count - self.span, self.count)
        return self._ready()

    def finish(self) -> list[FrameCrop]:
        """The stream has ended: the frames still waiting, decided now."""
        self.ended = True
        if self.mode == "person" and len(self.found) < self.count:
            self._detect(len(self.found), self.count)
        return self._ready()

    def _detect(self, start: int, end: int) -> None:
        """The person's boxes of frames `[start, end)`, found together with the frames before
        them that make the block `span` long (only the last block of a stream is short)."""
        first = max(0, end - self.span)
        found = self.find(np.stack([self.frames[j] for j in range(first, end)]))
        self.found.extend(found[start - first :])

    def _ready(self) -> list[FrameCrop]:
        out: list[FrameCrop] = []
        half = self.span // 2
        while self.done < self.count:
            i = self.done
            start = max(0, i - half)
            if self.ended:
                start = min(start, max(0, self.count - self.span))
            end = min(start + self.span, self.count)
            if end > len(self.found) or (not self.ended and start + self.span > self.count):
                break
            out.append(self._crop(i, start, end))
            self.done += 1
        keep = min(self.done, len(self.found), self.count - self.span)
        for j in [j for j in self.frames if j < keep]:
            del self.frames[j]
        return out

    def _crop(self, i: int, start: int, end: int) -> FrameCrop:
        """Frame i cropped by the track of its neighbourhood `[start, end)`."""
        frame = self.frames[i]
        h, w = frame.shape[:2]
        if self._track is None or self._track[0] != (start, end):
            found = np.stack(self.found[start:end])
            self._track = ((start, end), person_track(found, w, h))
        track = self._track[1]
        if track is None:
            side = max(w, h)
            x, y = (w - side) // 2, (h - side) // 2
            box = np.array([x, y, x + side, y + side], np.float32)
        else:
            box = track[i - start]
        crop = apply_crop([frame], box[None], self.size)[0]
        return FrameCrop(crop, box, track is not None)


def crop_clip(
    frames: Sequence[np.ndarray] | np.ndarray,
    mode: str,
    size: int,
    box_source: str = DEFAULT_BOX_SOURCE,
) -> Crop:
    """The model's frames of one clip (or window) of frames decoded with `FIT[mode]`: the
    clip as a stream of its own (`FrameCrops` with a span of the whole clip).

    `center` and `full` frames were fitted while decoding and pass unchanged (their boxes
    then cover the square they are); `person` frames are cut around the person found by
    `box_source`, one side for the clip, or shown whole when none is found."""
    frames = np.stack(list(frames)) if not isinstance(frames, np.ndarray) else frames
    crops = FrameCrops(mode, size, len(frames), box_source)
    done = [c for f in frames for c in crops.push(f)] + crops.finish()
    status = mode
    if mode == "person" and not any(c.person for c in done):
        status = "full-fallback"
    return Crop(np.stack([c.frame for c in done]), np.stack([c.box for c in done]), status)


def frame_crops(config: dict) -> FrameCrops:
    """The crop of each sampled frame of a video or live source, as `prepare` cropped the
    run's training clips (`FrameCrops` with the run's clip length as the span)."""
    source = config.get("person_boxes") or DEFAULT_BOX_SOURCE
    return FrameCrops(run_crop(config), int(config["size"]), int(config["frames"]), source)


def run_crop(config: dict) -> str:
    """The crop mode a run's clips were prepared with (`center` for runs from before
    `--crop`): `Classifier` decodes with its fit and crops each window with `crop_window`."""
    mode = str(config.get("crop") or "center")
    if mode not in CROP_MODES:
        raise UserError(
            f"the run was trained on clips cropped {mode!r}, which this version of vidclass "
            f"does not know (it knows {', '.join(CROP_MODES)}); use the version that trained it"
        )
    return mode


def crop_window(frames: Sequence[np.ndarray], config: dict) -> list[np.ndarray]:
    """A window of sampled frames (decoded with the run's `FIT`) cropped for the model as
    `prepare` cropped the run's training clips: uint8 `(size, size, 3)` each."""
    source = config.get("person_boxes") or DEFAULT_BOX_SOURCE
    return list(crop_clip(frames, run_crop(config), int(config["size"]), source).frames)


def source_boxes(crop: Crop, frame_shape: tuple[int, ...], width: int, height: int) -> list:
    """The crop's boxes in the source video's pixels (`frame_shape`: the frames' (H, W) as
    decoded for the crop), rounded to 0.1 px, for the sidecar."""
    if crop.status in ("center", "full"):
        box = fixed_box(width, height, crop.status)
        return [[round(float(v), 1) for v in box]] * len(crop.boxes)
    sx, sy = width / frame_shape[1], height / frame_shape[0]
    scaled = crop.boxes * np.array([sx, sy, sx, sy], np.float32)
    return [[round(float(v), 1) for v in b] for b in scaled]
