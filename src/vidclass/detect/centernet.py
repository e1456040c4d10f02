"""A tiny trained person detector: CenterNet-style heatmap of box centres plus box sizes
(Zhou et al., "Objects as Points", 2019), in plain PyTorch, trained on rendered scenes.

Why: background subtraction cannot see a person who stands still from the first frame,
leaves ghosts where people stood, and merges people who touch; the synthetic scenes give
exact boxes for free, so a ~150k-parameter net learns what a person looks like in a few CPU
minutes. It is for the synthetic world (or any domain with boxes to train on); real
pedestrians are `--detector hog`.

The net sees the frame resized to `input_height` (aspect kept, sides multiples of 8), each
image normalised by its own mean and standard deviation (textured backgrounds of any colour),
and predicts at stride 4: a centre heatmap (focal loss on Gaussian targets), the box size in
log pixels, and the sub-cell offset of the centre.

`train_detector(out)` renders multi-actor scenes (seed distinct from the benchmark's), trains,
and writes `out/detector.safetensors` + `out/detector.json`; `CenterNetDetector(out)` loads it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from vidclass.detect.config import DETECTOR_TRAIN
from vidclass.detect.detectors import nms
from vidclass.errors import UserError

STRIDE = 4
WEIGHTS, CONFIG = "detector.safetensors", "detector.json"


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """Stride-4 heads over a small dilated encoder with one skip connection."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv(3, w // 2, 2), _conv(w // 2, w, 2), _conv(w, w))  # /4
        self.deep = nn.Sequential(
            _conv(w, 2 * w, 2),  # /8
            _conv(2 * w, 2 * w),
            _conv(2 * w, 2 * w, dilation=2),
            _conv(2 * w, 2 * w, dilation=4),
            _conv(2 * w, 2 * w, dilation=8),
        )
        self.fuse = _conv(3 * w, 2 * w)
        self.heat = nn.Conv2d(2 * w, 1, 1)
        self.size = nn.Conv2d(2 * w, 2, 1)
        self.offset = nn.Conv2d(2 * w, 2, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1: stable focal-loss start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        d = F.interpolate(self.deep(s), size=s.shape[-2:], mode="bilinear", align_corners=False)
        f = self.fuse(torch.cat([s, d], 1))
        return self.heat(f), self.size(f), self.offset(f)


def _input_shape(h: int, w: int, input_height: int) -> tuple[int, int]:
    scale = input_height / h
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)


def _normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, H, W), each image by its own mean and std."""
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
    return (x - mean) / std


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
        iw, ih = _input_shape(h, w, input_height)
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
            ph, ps, po = model(_normalise(batch))
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


class CenterNetDetector:
    """A trained CenterNet detector folder (`train_detector`) as a `Detector`."""

    def __init__(
        self,
        folder: str | Path,
        threshold: float = 0.3,
        max_people: int = 20,
        nms_iou: float = 0.25,
        nms_contained: float = 0.5,
    ) -> None:
        """`nms_*`: a second peak on one person (an arm, a door's frame) is dropped when it
        overlaps a better box by IoU > 0.25 or lies half inside it (tuned on held-out scenes:
        ID switches 25 -> 7 on 4 scenes)."""
        folder = Path(folder)
        if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
            raise UserError(
                f"{folder} holds no trained detector ({WEIGHTS} + {CONFIG}); "
                "train one with `vidclass train-detector --out FOLDER` or use --detector motion"
            )
        self.config = json.loads((folder / CONFIG).read_text())
        self.model = CenterNet()
        self.model.load_state_dict(load_file(str(folder / WEIGHTS)))
        self.model.eval()
        self.threshold, self.max_people = threshold, max_people
        self.nms_iou, self.nms_contained = nms_iou, nms_contained

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = frame.shape[:2]
        iw, ih = _input_shape(h, w, self.config["input_height"])
        image = cv2.resize(frame, (iw, ih), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            heat, size, offset = self.model(_normalise(image[None]))
            heat = torch.sigmoid(heat)
            peaks = heat == F.max_pool2d(heat, 3, 1, 1)
            scores = (heat * peaks)[0, 0].flatten()
            top = torch.topk(scores, min(self.max_people, scores.numel()))
        keep = top.values >= self.threshold
        idx, s = top.indices[keep].numpy(), top.values[keep].numpy()
        if not len(idx):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        gw = heat.shape[-1]
        iy, ix = idx // gw, idx % gw
        off = torch.sigmoid(offset[0]).numpy()[:, iy, ix]
        bw, bh = np.exp(size[0].numpy()[:, iy, ix])
        cx, cy = (ix + off[0]) * STRIDE, (iy + off[1]) * STRIDE
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        boxes *= [w / iw, h / ih, w / iw, h / ih]
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        keep = nms(boxes, s, self.nms_iou, self.nms_contained)
        return boxes[keep], s[keep].astype(np.float32)
