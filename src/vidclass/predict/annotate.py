"""The annotated copy of a video: the current (smoothed) label, its score and a small bar
chart of the top classes drawn on every frame (encoded by `vidclass.video.writer`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from vidclass.predict.classifier import Classifier


def draw_label(
    image: np.ndarray,
    label: str | None,
    score: float,
    top: list[tuple[str, float]],
) -> np.ndarray:
    """Draw onto an RGB frame (in place): a banner with the label and a bar per top class."""
    h, w = image.shape[:2]
    scale = max(0.6, min(h, w) / 360)
    thick = max(1, round(scale * 1.5))
    line = int(22 * scale) + 4
    rows = 1 + len(top)
    panel_w = min(w, int(260 * scale) + 10)
    overlay = image[: line * rows + 8, :panel_w].copy()
    cv2.rectangle(overlay, (0, 0), (panel_w, line * rows + 8), (0, 0, 0), -1)
    cv2.addWeighted(
        overlay,
        0.55,
        image[: line * rows + 8, :panel_w],
        0.45,
        0,
        dst=image[: line * rows + 8, :panel_w],
    )
    text = "..." if label is None else f"{label} {score:.0%}"
    cv2.putText(
        image,
        text,
        (6, line - 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.7 * scale,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )
    bar_w = panel_w - int(110 * scale) - 12
    for i, (name, p) in enumerate(top, 1):
        y = line * i + 4
        cv2.putText(
            image,
            name[:14],
            (6, y + line - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45 * scale,
            (230, 230, 230),
            max(1, thick - 1),
            cv2.LINE_AA,
        )
        x0 = int(110 * scale)
        cv2.rectangle(image, (x0, y + 4), (x0 + bar_w, y + line - 6), (90, 90, 90), -1)
        cv2.rectangle(
            image,
            (x0, y + 4),
            (x0 + int(bar_w * float(p)), y + line - 6),
            (80, 200, 120) if i == 1 else (70, 140, 220),
            -1,
        )
    return image


def annotate_video(
    clf: Classifier,
    video: str | os.PathLike,
    timeline: list[dict],
    smoothed: np.ndarray,
    out: str | os.PathLike,
) -> None:
    """`predict --annotate`'s second pass: every frame of `video` with the smoothed label
    (`smoothed` `(n, K)`, one row per unit of `timeline`) of its moment, written to `out`."""
    from vidclass.video.reader import iter_frames
    from vidclass.video.writer import VideoWriter

    centres = np.array([(u["t_start"] + u["t_end"]) / 2 for u in timeline])
    info, frames = iter_frames(video, clf.size, clf.sample_fps, keep_frames=True, sample=False)
    writer = VideoWriter(out, info.fps, info.width, info.height)
    try:
        for f in frames:
            i = int(np.argmin(np.abs(centres - f.t))) if len(centres) else -1
            # Before the first window ends nothing is known yet: no label on those frames.
            if i < 0 or f.t < timeline[0]["t_start"]:
                draw_label(f.image, None, 0.0, [])
            else:
                sp = smoothed[i]
                top = [(clf.classes[j], float(sp[j])) for j in np.argsort(-sp)[:3]]
                draw_label(f.image, top[0][0], top[0][1], top)
            writer.write(f.image)
    except BaseException:
        writer.abort()
        raise
    writer.close()
