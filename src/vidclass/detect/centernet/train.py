"""Training the CenterNet person detector on rendered multi-actor scenes.

Why: background subtraction cannot see a person who stands still from the first frame,
leaves ghosts where people stood, and merges people who touch; the synthetic scenes give
exact boxes for free, so a ~60k-parameter net learns what a person looks like in a few CPU
minutes. It is for the synthetic world (or any domain with boxes to train on); real
pedestrians are `--detector hog`.

Targets: Gaussian centre heatmaps (focal loss), box sizes in log pixels and centre offsets
at the net's stride. `train_detector(out)` renders scenes (seed distinct from the
benchmark's), trains, and writes `out/detector.safetensors` + `out/detector.json`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import save_file

from vidclass.detect.centernet.model import (
    CONFIG,
    STRIDE,
    WEIGHTS,
    CenterNet,
    input_shape,
    normalise,
)
from vidclass.detect.config import DETECTOR_TRAIN


def _targets(boxes_per_image: list[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Gaussian centre heatmaps, size/offset targets and their masks at stride 4."""
    gh, gw = shape[0] // STRIDE, shape[1] // STRIDE
    n = len(boxes_per_image)
    heat = np.zeros((n, 1, gh, gw), np.float32)
    size = np.zeros((n, 2, gh, gw), np.float32)
    offset = np.zeros((n, 2, gh, gw), np.float32)
    mask = np.zeros((n, 1, gh, gw), np.float32)
    yy, xx = np.mgrid[0:gh, 0:gw]
    for i, boxes in enumerate(boxes_per_image):
        for x1, y1, x2, y2 in boxes:
            bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            if bw <= 0.5 or bh <= 0.5:
                continue
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
            sigma = max(0.5, 0.15 * math.sqrt(bw * bh))
            g = np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma**2))
            heat[i, 0] = np.maximum(heat[i, 0], g)
            size[i, :, iy, ix] = np.log([bw * STRIDE, bh * STRIDE])
            offset[i, :, iy, ix] = (cx - ix, cy - iy)
            mask[i, 0, iy, ix] = 1.0
    return heat, size, offset, mask


def _focal(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1.0)


def render_training_frames(
    scenes: int, seconds: float, seed: int, input_height: int, every: int = 2
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames of rendered multi-actor scenes at the net's input size, with their boxes."""
    from vidclass.synth.multi import render_multi

    images, boxes = [], []
    for i in range(scenes):
        frames, truth = render_multi(seed, i, fps=8, seconds=seconds)
        h, w = frames.shape[1:3]
        iw, ih = input_shape(h, w, input_height)
        sx, sy = iw / w, ih / h
        for entry in truth["frames"][::every]:
            images.append(
                cv2.resize(frames[entry["index"]], (iw, ih), interpolation=cv2.INTER_AREA)
            )
            b = np.array([o["box"] for o in entry["objects"]], np.float32).reshape(-1, 4)
            boxes.append(b * [sx, sy, sx, sy])
    return np.stack(images), boxes


def train_detector(
    out: str | Path,
    scenes: int = DETECTOR_TRAIN.scenes,
    seconds: float = DETECTOR_TRAIN.seconds,
    steps: int = DETECTOR_TRAIN.steps,
    batch_size: int = DETECTOR_TRAIN.batch_size,
    seed: int = DETECTOR_TRAIN.seed,
    input_height: int = DETECTOR_TRAIN.input_height,
    quiet: bool = False,
) -> dict:
    """Render scenes, train the CenterNet detector, write it to `out`. Returns a summary.

    The defaults (`vidclass.detect.config`) are the CLI's and the benchmark's."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    images, boxes = render_training_frames(scenes, seconds, seed, input_height)
    rendered = time.perf_counter() - start
    # Small convolutions gain little from intra-op threads, and on a shared 2-core machine
    # two threads fight: measured 0.6 s/step with one thread against 5 s with two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = CenterNet()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        rng = np.random.default_rng(seed)
        model.train()
        losses = []
        for step in range(steps):
            idx = rng.integers(0, len(images), batch_size)
            batch, bb = images[idx].copy(), [boxes[i].copy() for i in idx]
            w = batch.shape[2]
            for k in range(batch_size):  # horizontal flips
                if rng.random() < 0.5:
                    batch[k] = batch[k, :, ::-1]
                    bb[k] = np.stack(
                        [w - bb[k][:, 2], bb[k][:, 1], w - bb[k][:, 0], bb[k][:, 3]], 1
                    )
            heat, size, offset, mask = (torch.from_numpy(a) for a in _targets(bb, batch.shape[1:3]))
            ph, ps, po = model(normalise(batch))
            n = mask.sum().clamp_min(1.0)
            loss = (
                _focal(ph, heat)
                + 0.5 * ((ps - size).abs() * mask).sum() / n
                + ((torch.sigmoid(po) - offset).abs() * mask).sum() / n
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if not quiet and (step + 1) % 100 == 0:
                print(f"step {step + 1}/{steps}: loss {np.mean(losses[-100:]):.3f}", flush=True)
    finally:
        torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
    config = {
        "detector": "centernet",
        "input_height": input_height,
        "stride": STRIDE,
        "trained_on": {"scenes": scenes, "seconds": seconds, "seed": seed, "frames": len(images)},
        "steps": steps,
        "final_loss": float(np.mean(losses[-100:])),
        "render_s": round(rendered, 1),
        "train_s": round(time.perf_counter() - start - rendered, 1),
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2))
    return config
