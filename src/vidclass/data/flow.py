"""Dense optical flow for the two-stream model, computed with OpenCV on grayscale frames.

``compute_flow(frames)`` turns a clip ``(T, H, W, 3)`` uint8 RGB into ``(2, T-1, H, W)`` float16:
channel 0 is the x (rightward) and channel 1 the y (downward) displacement from frame ``t`` to
``t+1``, in pixels divided by ``bound`` (default :data:`FLOW_BOUND` = 8 px) and clipped to
[-1, 1] (the TSN/two-stream convention of a fixed bound, here scaled for ~112 px frames).
Flow after the last real frame is zero, so padded clips need no special handling.

Geometric augmentation must be applied to flow consistently with the frames: a horizontal flip
also negates channel 0; reversing time reverses the flow's time axis and negates it.
"""

from __future__ import annotations

import cv2
import numpy as np

from vidclass.errors import UserError

FLOW_BOUND = 8.0
FLOW_METHODS = ("farneback", "dis")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _make_flow_fn(method: str):
    if method == "farneback":

        def farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 9, 3, 5, 1.1, 0)

        return farneback
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

        def dis_flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return dis.calc(prev, nxt, None)

        return dis_flow
    raise UserError(f"unknown flow method {method!r}; valid: {', '.join(FLOW_METHODS)}")


def compute_flow(
    frames: np.ndarray,
    method: str = "farneback",
    num_real: int | None = None,
    bound: float = FLOW_BOUND,
) -> np.ndarray:
    """Optical flow of a clip: ``(T, H, W, 3) uint8 RGB`` → ``(2, T-1, H, W) float16``.

    Only the first ``num_real`` frames (default: all) are used; flow steps involving padding
    frames are zero. Values are pixels / ``bound``, clipped to [-1, 1].
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"compute_flow expects (T, H, W, 3) RGB frames, got {frames.shape}")
    t, h, w, _ = frames.shape
    n = t if num_real is None else max(0, min(int(num_real), t))
    out = np.zeros((2, max(t - 1, 0), h, w), dtype=np.float16)
    if n < 2:
        return out
    flow_fn = _make_flow_fn(method)
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames[:n]]
    for i in range(n - 1):
        f = flow_fn(gray[i], gray[i + 1])  # (H, W, 2) pixels
        np.clip(f / bound, -1.0, 1.0, out=f)
        out[:, i] = f.transpose(2, 0, 1)
    return out


def flow_from_video(video, mask, method: str = "farneback", bound: float = FLOW_BOUND):
    """Flow for a normalized clip batch: ``video (B, 3, T, H, W)`` ImageNet-normalized torch
    tensor, ``mask (B, T)`` → ``(B, 2, T-1, H, W)`` float32 tensor (for inference paths that did
    not precompute flow; training should cache :func:`compute_flow` output with the clip)."""
    import torch

    x = video.detach().float().cpu().permute(0, 2, 3, 4, 1).numpy()  # (B, T, H, W, 3)
    frames = np.clip((x * IMAGENET_STD + IMAGENET_MEAN) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    lengths = mask.long().sum(1).tolist()
    flows = [compute_flow(f, method, int(n), bound) for f, n in zip(frames, lengths, strict=True)]
    return torch.from_numpy(np.stack(flows).astype(np.float32)).to(video.device)
