"""Action tubes: the crop around one tracked person over a window of frames, as a clip for
the trained clip model. Here, below both its users, because `detect` crops its tubes this way
and `synth --kind tubes` cuts its training clips the same way.

One crop per window (not per frame): the union of the person's boxes over the window,
enlarged by `context` and made square, so the person's own motion stays visible inside the
crop (a crop that followed the person frame by frame would erase `move_left` vs
`move_right`). The square is moved inside the frame where it fits and padded (edge pixels
repeated) only where the frame is too small for it.

Scale matters: the clip model learned actions at the scale of its training clips, where the
whole 160x120 scene is centre-cropped to its 120x120 middle. There, the side of that crop is
about 1.1 times the extent of the actor's path while it acts (`vidclass synth` clips, median
per class 0.9-1.3), and about 2.5 times the actor when it holds still. A crop of 1.1 x the
path makes a still person fill the crop, which the model reads as an action (a large shape:
`grow`), so the side is also at least `min_crop` x the frame's short side (0.5: the actors of
`synth --kind multi` live in regions of half the frame, the size of a training clip).
"""

from __future__ import annotations

import cv2
import numpy as np

CONTEXT = 1.1
MIN_CROP = 0.5


def union_box(boxes: np.ndarray) -> np.ndarray:
    """The smallest box `(4,)` holding every xyxy box of `(N, 4)`."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.array([*boxes[:, :2].min(0), *boxes[:, 2:].max(0)])


def square_crop(
    box: np.ndarray, width: int, height: int, context: float = CONTEXT, min_side: float = 8.0
) -> np.ndarray:
    """A square `(x1, y1, x2, y2)` around `box`, `context` times its longer side (at least
    `min_side`), shifted to
    lie inside the `width` x `height` frame when it fits (it may extend past the frame when
    it is larger than the frame: `crop_resize` pads those parts)."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    side = max((x2 - x1) * context, (y2 - y1) * context, min_side)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    out = []
    for c, limit in ((cx, width), (cy, height)):
        lo = c - side / 2
        if side <= limit:
            lo = min(max(lo, 0.0), limit - side)
        else:
            lo = (limit - side) / 2  # centred on the frame, padded equally on both sides
        out.append(lo)
    return np.array([out[0], out[1], out[0] + side, out[1] + side])


def crop_resize(image: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """The `crop` region of an RGB image resized to `size` x `size`; parts outside the image
    are filled by repeating its edge pixels."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in crop)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    pad = (max(0, -y1), max(0, y2 - h), max(0, -x1), max(0, x2 - w))
    part = image[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if part.size == 0:  # entirely outside: the nearest edge pixel
        part = image[min(max(y1, 0), h - 1) : min(max(y1, 0), h - 1) + 1,
                     min(max(x1, 0), w - 1) : min(max(x1, 0), w - 1) + 1]  # fmt: skip
        pad = (0, y2 - y1 - 1, 0, x2 - x1 - 1)
    if any(pad):
        part = cv2.copyMakeBorder(part, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if part.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(part, (size, size), interpolation=interp)


def tube_clip(
    images: list[np.ndarray],
    boxes: np.ndarray,
    size: int,
    context: float = CONTEXT,
    min_crop: float = MIN_CROP,
) -> list[np.ndarray]:
    """The window's frames cropped to one square around the person's path: `size` x `size`
    uint8 RGB frames, ready for `Classifier.window_probs`."""
    h, w = images[0].shape[:2]
    crop = square_crop(union_box(boxes), w, h, context, min_side=min_crop * min(w, h))
    return [crop_resize(im, crop, size) for im in images]
