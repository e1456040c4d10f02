"""One pass over the data: an epoch of training, or the model's predictions on a split."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vidclass.evaluation.classification import average_views
from vidclass.progress import make_progress
from vidclass.train.optim import Schedule


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def train_epoch(
    net: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    schedule: Schedule,
    quiet: bool,
    label_smoothing: float = 0.0,
) -> tuple[float, float, float]:
    """One epoch of optimiser steps → (summed loss, correct clips, clips) on this process; the
    loss is cross-entropy with `label_smoothing` (what the optimiser saw)."""
    net.train()
    loss_sum = correct = seen = 0.0
    with make_progress(quiet) as progress:
        bar = progress.add_task(
            f"epoch {epoch}/{schedule.epochs}", total=schedule.steps_per_epoch, status=""
        )
        for i, batch in enumerate(loader):
            schedule.set_lr(optimizer, epoch, i)
            batch = to_device(batch, device)
            labels = torch.as_tensor(batch["label"], device=device)
            logits = net(batch)
            loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(labels)
            loss_sum += float(loss.detach()) * n
            correct += float((logits.argmax(1) == labels).sum())
            seen += n
            progress.update(
                bar, advance=1, status=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}"
            )
    return loss_sum, correct, seen


@torch.no_grad()
def predict_loader(model: nn.Module, loader: DataLoader, device: torch.device):
    """Run a model over a loader → (probs (N, K), labels (N,), video ids, seconds)."""
    was_training = model.training
    model.eval()
    probs, labels, ids = [], [], []
    start = time.perf_counter()
    for batch in loader:
        batch = to_device(batch, device)
        probs.append(F.softmax(model(batch).float(), dim=1).cpu())
        labels.append(torch.as_tensor(batch["label"]).cpu())
        ids.extend(batch["video_id"])
    seconds = time.perf_counter() - start
    model.train(was_training)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), [], seconds
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), ids, seconds


def val_scores(net: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(accuracy, mean negative log-likelihood) of `net` on the validation loader; the views
    of one video (a clip and its mirror, with test-time flip) are averaged first."""
    probs, labels, ids, _ = predict_loader(net, loader, device)
    if len(set(ids)) < len(ids):
        first = {vid: i for i, vid in reversed(list(enumerate(ids)))}
        ids, probs = average_views(probs, ids)
        labels, probs = np.array([labels[first[v]] for v in ids]), probs.astype(np.float32)
    acc = float((probs.argmax(1) == labels).mean())
    loss = float(
        F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-8)), torch.from_numpy(labels))
    )
    return acc, loss
