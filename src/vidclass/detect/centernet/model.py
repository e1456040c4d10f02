"""The CenterNet person detector's net and its inference: a heatmap of box centres plus box
sizes (Zhou et al., "Objects as Points", 2019), in plain PyTorch.

The net sees the frame resized to `input_height` (aspect kept, sides multiples of 8), each
image normalised by its own mean and standard deviation (textured backgrounds of any colour),
and predicts at stride 4: a centre heatmap, the box size in log pixels, and the sub-cell
offset of the centre. `CenterNetDetector(folder)` loads what `train.train_detector` wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

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


def input_shape(h: int, w: int, input_height: int) -> tuple[int, int]:
    """The net's input (width, height) for an h x w frame: `input_height` high, sides multiples of 8."""
    scale = input_height / h
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, H, W), each image by its own mean and std."""
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
    return (x - mean) / std


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
        iw, ih = input_shape(h, w, self.config["input_height"])
        image = cv2.resize(frame, (iw, ih), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            heat, size, offset = self.model(normalise(image[None]))
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
