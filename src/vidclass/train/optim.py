"""The optimiser and its learning-rate schedule: AdamW in two groups, warm-up then cosine.

Every step's rate is a function of (epoch, batch index) only, so a resumed run sets the same
rates as one that never stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.train.config import TrainConfig


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up then cosine decay to 1 % of the base rate."""
    if step < warmup:
        return base * (0.1 + 0.9 * step / max(1, warmup))
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def param_groups(net: nn.Module, model: nn.Module, pretrained_scale: float) -> list[dict]:
    """The trainable parameters in two AdamW groups: new layers at the learning rate, layers
    that came from ImageNet (``model.pretrained_parameters()``) at ``pretrained_scale`` of it.
    The new layers come first, so ``param_groups[0]["lr"]`` is the rate the log reports."""
    if pretrained_scale <= 0:
        raise UserError(f"pretrained_lr_scale must be positive, got {pretrained_scale}")
    pretrained = {id(p) for p in getattr(model, "pretrained_parameters", list)()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in pretrained], "lr_scale": 1.0},
        {"params": [p for p in trainable if id(p) in pretrained], "lr_scale": pretrained_scale},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(net: nn.Module, model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over `net`'s trainable parameters (`model` names the pretrained ones)."""
    return torch.optim.AdamW(
        param_groups(net, model, cfg.pretrained_lr_scale), lr=cfg.lr, weight_decay=cfg.weight_decay
    )


@dataclass(frozen=True)
class Schedule:
    """The learning rate of every optimiser step of a run (`lr_at` over all its epochs)."""

    base_lr: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: float

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup_epochs * self.steps_per_epoch)

    def set_lr(self, optimizer: torch.optim.Optimizer, epoch: int, batch: int) -> None:
        """Each group's rate for batch `batch` (from 0) of `epoch` (from 1)."""
        step = (epoch - 1) * self.steps_per_epoch + batch
        lr = lr_at(step, self.total_steps, self.warmup_steps, self.base_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
