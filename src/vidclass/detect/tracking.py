"""SORT-style multi-object tracking: a constant-velocity Kalman filter per track, Hungarian
assignment of detections to the tracks' predicted boxes (Bewley et al., 2016).

Two rounds of assignment: first by IoU with the predicted box (the SORT rule), then, for
what is left, by centre distance relative to the box size, which re-attaches a track after a
few missed frames or after two people merged into one blob and split again. A track lives
`max_age` frames without a detection (coasting on its velocity, so ids survive a crossing)
and is reported once it has `min_hits` detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from vidclass.evaluation.ap import box_iou


def _to_z(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float64)


def _to_box(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


class KalmanBox:
    """State (cx, cy, w, h, vx, vy, vw, vh), constant velocity; noise scaled by the box size
    (as in DeepSORT), so small and large people are tracked alike."""

    POS, VEL = 1 / 20, 1 / 160

    def __init__(self, box: np.ndarray) -> None:
        z = _to_z(box)
        self.x = np.concatenate([z, np.zeros(4)])
        s = max(z[2], z[3])
        self.P = np.diag(np.square([2 * self.POS * s] * 4 + [10 * self.VEL * s] * 4))
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def predict(self) -> np.ndarray:
        s = max(self.x[2], self.x[3], 1.0)
        Q = np.diag(np.square([self.POS * s] * 4 + [self.VEL * s] * 4))
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + Q
        return _to_box(self.x)

    def update(self, box: np.ndarray) -> None:
        z = _to_z(box)
        s = max(z[2], z[3], 1.0)
        R = np.diag(np.square([self.POS * s] * 4))
        y = z - self.H @ self.x
        S = self.H @ self.P @ self.H.T + R
        K = self.P @ self.H.T @ np.linalg.inv(S)
        self.x = self.x + K @ y
        self.P = (np.eye(8) - K @ self.H) @ self.P

    @property
    def box(self) -> np.ndarray:
        return _to_box(self.x)


@dataclass
class Track:
    """One tracked person."""

    track_id: int
    kf: KalmanBox
    score: float
    hits: int = 1
    misses: int = 0  # frames since the last detection
    confirmed: bool = False
    last_box: np.ndarray = field(default_factory=lambda: np.zeros(4))


@dataclass
class TrackedBox:
    """A track's box on the current frame: measured (`detected`) or predicted (coasting)."""

    track_id: int
    box: np.ndarray
    score: float
    detected: bool


class Tracker:
    """Associates per-frame detections into tracks with stable ids."""

    def __init__(
        self,
        iou_threshold: float = 0.2,
        max_age: int = 15,
        min_hits: int = 3,
        max_distance: float = 1.0,
    ) -> None:
        """`max_distance`: the second round's largest centre distance, in units of the
        track's box size (sqrt of its area)."""
        self.iou_threshold, self.max_age, self.min_hits = iou_threshold, max_age, min_hits
        self.max_distance = max_distance
        self.tracks: list[Track] = []
        self._next_id = 1

    def _assign(
        self, cost: np.ndarray, limit: float
    ) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        if cost.size == 0:
            return [], set(range(cost.shape[0])), set(range(cost.shape[1]))
        rows, cols = linear_sum_assignment(cost)
        pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= limit]
        return (
            pairs,
            set(range(cost.shape[0])) - {r for r, _ in pairs},
            set(range(cost.shape[1])) - {c for _, c in pairs},
        )

    def update(self, boxes: np.ndarray, scores: np.ndarray | None = None) -> list[TrackedBox]:
        """Feed one frame's detections; returns every confirmed live track's box, detected
        this frame or predicted (coasting through a miss)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
        predicted = np.array([t.kf.predict() for t in self.tracks]).reshape(-1, 4)

        # round 1: IoU with the predicted boxes
        cost = 1.0 - box_iou(predicted, boxes)
        pairs, free_t, free_d = self._assign(cost, 1.0 - self.iou_threshold)
        # round 2: centre distance / size, for tracks and detections left over
        ft, fd = sorted(free_t), sorted(free_d)
        if ft and fd:
            pc = (predicted[ft, :2] + predicted[ft, 2:]) / 2
            dc = (boxes[fd, :2] + boxes[fd, 2:]) / 2
            size = np.sqrt(np.prod(predicted[ft, 2:] - predicted[ft, :2], axis=1))
            dist = np.linalg.norm(pc[:, None] - dc[None], axis=2) / np.maximum(size, 1.0)[:, None]
            more, _, _ = self._assign(dist, self.max_distance)
            pairs += [(ft[r], fd[c]) for r, c in more]
        matched_t = {r for r, _ in pairs}
        matched_d = {c for _, c in pairs}

        for r, c in pairs:
            t = self.tracks[r]
            t.kf.update(boxes[c])
            t.hits, t.misses, t.score = t.hits + 1, 0, float(scores[c])
            t.last_box = boxes[c]
            t.confirmed = t.confirmed or t.hits >= self.min_hits
        for r, t in enumerate(self.tracks):
            if r not in matched_t:
                t.misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.max_age]
        for c in range(len(boxes)):
            if c not in matched_d:
                track = Track(self._next_id, KalmanBox(boxes[c]), float(scores[c]))
                track.last_box = boxes[c]
                track.confirmed = self.min_hits <= 1
                self.tracks.append(track)
                self._next_id += 1
        return [
            TrackedBox(
                t.track_id, t.last_box if t.misses == 0 else t.kf.box, t.score, t.misses == 0
            )
            for t in self.tracks
            if t.confirmed
        ]
