"""Pose keypoints as data: the main person's 33 keypoints in every cached frame of a prepared
clip (`prepare --pose`), for the skeleton method (`pose` in `vidclass models`).

They are computed from the frames the model sees (the prepared cache: cropped and resized by
`prepare`) and, at predict time, from the window's frames cropped the same way
(`Classifier`), by the one function `clip_keypoints`, so training and prediction read the
same keypoints. A clip's array is float32 `(T, 33, 3)`: x and y as shares of the frame's
width and height (0..1; a keypoint may lie a little outside), and visibility (0..1); a frame
where nobody is found is all zeros.

The cache is a derived cache (`vidclass.data.derived`): `DATA/keypoints/pose-<digest>/` keyed
by its spec (the model files' sha256, the layout), one `<video_id>.<signature>.npy` per clip,
the signature of the prepared video (`prepare.video_signature`), so a re-prepared clip or
other model files mean new keypoints, never stale ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidclass.atomic import save_array
from vidclass.data.cache import video_signature
from vidclass.data.derived import open_derived
from vidclass.data.pose import MODEL_FILES, NUM_KEYPOINTS, main_person, pose_model
from vidclass.progress import track

FOLDER, PREFIX = "keypoints", "pose"
LAYOUT = "T x 33 x (x, y as shares of the frame, visibility); zeros: nobody"


def keypoint_spec() -> dict:
    """Everything the keypoints depend on (besides each clip's frames, keyed per file)."""
    return {
        "models": {name: digest for name, (_, digest) in MODEL_FILES.items()},
        "person": "best-scored detection, landmarks in its rotated body region",
        "layout": LAYOUT,
        "dtype": "float32",
    }


def clip_keypoints(frames: np.ndarray) -> np.ndarray:
    """float32 `(T, 33, 3)` keypoints of the main person of each uint8 frame `(T, H, W, 3)`."""
    pose_model()  # the install hint first, before any frame
    out = np.zeros((len(frames), NUM_KEYPOINTS, 3), np.float32)
    for i, frame in enumerate(frames):
        _, kp = main_person(np.ascontiguousarray(frame))
        if kp is not None:
            h, w = frame.shape[:2]
            out[i] = kp / np.array([w, h, 1], np.float32)
    return out


def keypoint_folder(root: str | os.PathLike) -> Path:
    """`DATA/keypoints/pose-<digest>/`, created with its spec or checked against it (a stale
    folder is emptied)."""
    return open_derived(Path(root) / FOLDER, PREFIX, keypoint_spec())


def keypoint_path(root: str | os.PathLike, video_id: str, signature: str) -> Path:
    return keypoint_folder(root) / f"{video_id}.{signature}.npy"


def video_keypoints(root: str | os.PathLike, video_id: str) -> np.ndarray:
    """The cached clip's keypoints `(T_real, 33, 3)`, computed and stored if missing."""
    root = Path(root)
    path = keypoint_path(root, video_id, video_signature(root, video_id))
    if path.is_file():
        return np.load(path)
    kp = clip_keypoints(np.load(root / "cache" / f"{video_id}.npy", mmap_mode="r"))
    save_array(path, kp)
    return kp


def cache_keypoints(root: str | os.PathLike, quiet: bool = True) -> tuple[Path, int]:
    """Keypoints of every usable clip of a prepared folder (`prepare --pose`): (the folder,
    how many clips were computed rather than found)."""
    from vidclass.data.manifest import read_manifest

    root = Path(root)
    rows = [r for r in read_manifest(root) if r["status"] == "ok"]
    folder = keypoint_folder(root)
    computed = 0
    for row in track(rows, description="keypoints", quiet=quiet):
        vid = row["video_id"]
        computed += not keypoint_path(root, vid, video_signature(root, vid)).is_file()
        video_keypoints(root, vid)
    return folder, computed
