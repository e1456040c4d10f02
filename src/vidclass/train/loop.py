"""Train one method on a prepared dataset: one loop for every model, one process or many.

The run folder (`out`) gets `model.safetensors` + `config.json` (the best epoch on the `val`
split: highest accuracy, ties broken by lower loss; the test split never chooses anything),
`state.safetensors` (the last epoch, for `--resume`), `metrics.csv` and `curves.png`. Everything random is a function of (seed, epoch), and the state is saved at
each epoch's end, so a run killed mid-epoch and resumed ends with the same numbers as one that
never stopped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

import vidclass
from vidclass.atomic import write_text
from vidclass.data.dataset import Augment, VideoDataset, load_prepared_config
from vidclass.data.prepare import read_manifest
from vidclass.errors import UserError
from vidclass.models import build
from vidclass.models.run import MODEL_FILE, save_model
from vidclass.progress import make_progress
from vidclass.train import checkpoint as ckpt
from vidclass.train.config import RESUME_KEYS, TrainConfig, resolve_normalize
from vidclass.train.distributed import Dist, all_sum, barrier, init_from_env, shutdown
from vidclass.train.features import (
    FeatureDataset,
    FeatureHead,
    cache_features,
    feature_folder,
    uses_feature_cache,
)
from vidclass.train.syncbn import convert_to_cpu_sync_batchnorm

METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "epoch_time_s",
    "train_clips_per_s",
]


__all__ = ["TrainConfig", "TrainResult", "resolve_normalize", "train"]


@dataclass
class TrainResult:
    run: Path
    history: list[dict]
    best_epoch: int
    best_val_acc: float | None  # None when no validation split chose the epoch
    train_time_s: float
    selection: dict | None = None  # how the saved epoch was chosen (see `selection_rule`)
    resumed_from_epoch: int = 0  # epochs found done in the run folder (== epochs: reused)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up then cosine decay to 1 % of the base rate."""
    if step < warmup:
        return base * (0.1 + 0.9 * step / max(1, warmup))
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def predict_loader(model: nn.Module, loader: DataLoader, device: torch.device):
    """Run a model over a loader → (probs (N, K), labels (N,), video ids, seconds)."""
    was_training = model.training
    model.eval()
    probs, labels, ids = [], [], []
    start = time.perf_counter()
    for batch in loader:
        batch = _to_device(batch, device)
        probs.append(F.softmax(model(batch).float(), dim=1).cpu())
        labels.append(torch.as_tensor(batch["label"]).cpu())
        ids.extend(batch["video_id"])
    seconds = time.perf_counter() - start
    model.train(was_training)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), [], seconds
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), ids, seconds


def train(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train `config.model` on the prepared folder `data`; write the run folder `out`."""
    ctx = init_from_env()
    try:
        return _train(Path(data), Path(out), config, resume, quiet, ctx)
    finally:
        shutdown(ctx)


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


def _train(
    data: Path, out: Path, cfg: TrainConfig, resume: bool, quiet: bool, ctx: Dist
) -> TrainResult:
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError("epochs and batch size must be at least 1 and the learning rate positive")
    if cfg.batch_size % ctx.world_size:
        raise UserError(
            f"--batch-size {cfg.batch_size} is the global batch and must divide evenly over "
            f"{ctx.world_size} processes"
        )
    state_path = out / ckpt.STATE_FILE
    if not resume and (state_path.exists() or (out / MODEL_FILE).exists()):
        raise UserError(
            f"{out}: already holds a training run; add --resume to continue it, or "
            "choose another --out"
        )
    if cfg.val_split == "test":
        raise UserError(
            "val_split='test' would choose the best epoch on the test split and then report "
            "on it (a biased score); choose on 'val' (`vidclass prepare --val-fraction`)"
        )
    prepared = load_prepared_config(data)
    classes = prepared["classes"]
    normalize = resolve_normalize(cfg)
    seed_everything(cfg.seed)
    model = build(cfg.model, len(classes), **cfg.options)
    device = ctx.device
    model.to(device)
    needs_flow = bool(getattr(model, "needs_flow", False))
    feature_mode = uses_feature_cache(model)
    if feature_mode and cfg.augment:
        raise UserError(
            "--augment cannot be combined with a frozen backbone: features are "
            "computed once per clip; drop one of the two"
        )
    # augment=None (auto): on wherever clips are encoded each epoch.
    cfg = replace(cfg, augment=not feature_mode if cfg.augment is None else cfg.augment)

    augment = Augment(crop_scale=0.85, temporal_jitter=True) if cfg.augment else None
    train_ds = VideoDataset(
        data,
        split="train",
        normalize=normalize,
        augment=augment,
        with_flow=needs_flow,
        flow_method=cfg.flow_method,
        seed=cfg.seed,
    )
    val_ds = _optional_split(data, cfg.val_split, normalize, needs_flow, cfg.flow_method)
    selection = selection_rule(train_ds, val_ds, cfg.val_split)
    # As JSON will give it back from the saved state (tuples become lists).
    identity = json.loads(
        json.dumps(
            {
                **{k: getattr(cfg, k) for k in RESUME_KEYS},
                "options": model.config,
                "data": data_fingerprint(train_ds, val_ds),
            }
        )
    )

    net: nn.Module = model
    if feature_mode:
        folder = feature_folder(model, train_ds)
        if ctx.is_main:
            cache_features(model, [d for d in (train_ds, val_ds) if d], folder, quiet=quiet)
        barrier(ctx)
        train_ds = FeatureDataset(train_ds, folder, model.feature_dim)
        val_ds = FeatureDataset(val_ds, folder, model.feature_dim) if val_ds else None
        net = FeatureHead(model)
    if ctx.enabled:
        if device.type == "cpu":
            # Statistics over the global batch, as one process would compute them.
            convert_to_cpu_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, find_unused_parameters=False)

    per_rank = cfg.batch_size // ctx.world_size
    # The same permutation of (seed, epoch) for one process or many: with N processes each
    # takes every N-th index, so global batch k holds the same clips either way.
    sampler = DistributedSampler(
        train_ds,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=False,
    )
    if len(sampler) < 2:
        raise UserError(
            f"{data}: {len(train_ds)} training clip(s); BatchNorm needs at least 2 per process"
        )
    # A last batch of one clip would stop BatchNorm in training mode: that one clip waits for
    # the next epoch's shuffle instead.
    single_tail = len(sampler) % per_rank == 1 and len(sampler) > per_rank
    train_loader = DataLoader(
        train_ds,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=cfg.workers,
        drop_last=single_tail,
    )
    val_loader = (
        DataLoader(val_ds, batch_size=per_rank, num_workers=cfg.workers) if val_ds else None
    )

    optimizer = torch.optim.AdamW(
        param_groups(net, model, cfg.pretrained_lr_scale), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    run_config = {
        "model": cfg.model,
        "options": model.config,
        "classes": classes,
        "frames": train_ds.base.frames if feature_mode else train_ds.frames,
        "size": prepared["size"],
        "normalize": normalize,
        "mean": prepared["mean"],
        "std": prepared["std"],
        "pad": prepared.get("pad", "zeros"),
        "needs_flow": needs_flow,
        "flow_method": cfg.flow_method,
        "pairs": prepared.get("pairs", []),
        "sample_fps": training_frame_rate(data, prepared),
        "train": asdict(cfg),
        "selection": selection,
        "data": str(data.resolve()),
        "vidclass_version": vidclass.__version__,
    }
    history: list[dict] = []
    best: dict = {"epoch": 0, "val_acc": None, "val_loss": None}
    start_epoch = 1
    if resume and state_path.exists():
        start_epoch, history, best = _restore(state_path, model, optimizer, cfg, identity)
    elif resume and not quiet and ctx.is_main:
        print(f"no saved state in {out}; starting from the first epoch")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not quiet and start_epoch <= cfg.epochs:
            print(describe_selection(selection))

    for epoch in range(start_epoch, cfg.epochs + 1):
        sampler.set_epoch(epoch)
        (train_ds.base if feature_mode else train_ds).set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum, correct, seen = _train_epoch(
            net,
            train_loader,
            optimizer,
            device,
            epoch,
            cfg,
            steps_per_epoch,
            total_steps,
            warmup,
            quiet or not ctx.is_main,
        )
        loss_sum, correct, seen = all_sum([loss_sum, correct, seen], ctx)
        epoch_time = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_loss": None,
            "val_acc": None,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_time_s": epoch_time,
            "train_clips_per_s": seen / epoch_time,
        }
        if val_loader is not None:
            probs, labels, _, _ = predict_loader(net, val_loader, device)
            row["val_acc"] = float((probs.argmax(1) == labels).mean())
            row["val_loss"] = float(
                F.nll_loss(
                    torch.log(torch.from_numpy(probs).clamp_min(1e-8)), torch.from_numpy(labels)
                )
            )
        history.append(row)
        if ctx.is_main:
            if is_better(row, best, selection):
                best = {"epoch": epoch, "val_acc": row["val_acc"], "val_loss": row["val_loss"]}
                save_model(out, model, {**run_config, "best": best})
            _save_state(state_path, model, optimizer, epoch, history, best, identity)
            _write_metrics(out / "metrics.csv", history)
            if not quiet:
                val = f", val acc {row['val_acc']:.3f}" if row["val_acc"] is not None else ""
                print(
                    f"epoch {epoch}/{cfg.epochs}: loss {row['train_loss']:.4f}, "
                    f"train acc {row['train_acc']:.3f}{val} ({epoch_time:.1f} s)"
                )
        barrier(ctx)

    if ctx.is_main:
        from vidclass.report.plots import plot_curves

        plot_curves(history, out / "curves.png", title=f"{cfg.model} on {data.name}")
    return TrainResult(
        run=out,
        history=history,
        best_epoch=best["epoch"],
        best_val_acc=best["val_acc"] if selection["rule"] == BY_VAL else None,
        train_time_s=sum(r["epoch_time_s"] for r in history),
        selection=selection,
        resumed_from_epoch=start_epoch - 1,
    )


BY_VAL = "val accuracy, ties broken by lower val loss"
LAST_EPOCH = "last epoch"


def selection_rule(train_ds: VideoDataset, val_ds: VideoDataset | None, split: str) -> dict:
    """How the saved epoch is chosen: on `val` when it holds a clip of every class the model
    trains on, else the last epoch (a val split missing classes would pick by luck)."""
    if val_ds is None:
        return {
            "split": None,
            "rule": LAST_EPOCH,
            "reason": f"no {split!r} split in the prepared data (prepare with --val-fraction > 0)",
        }
    missing = sorted(set(train_ds.labels) - set(val_ds.labels))
    if missing:
        names = [train_ds.classes[i] for i in missing]
        return {
            "split": split,
            "rule": LAST_EPOCH,
            "reason": f"the {split!r} split has no clip of {len(names)} classes "
            f"(e.g. {', '.join(names[:3])})",
        }
    return {"split": split, "rule": BY_VAL, "clips": len(val_ds)}


def describe_selection(selection: dict) -> str:
    if selection["rule"] == BY_VAL:
        return f"choosing the epoch on {selection['split']} ({selection['clips']} clips): {BY_VAL}"
    return f"warning: keeping the last epoch: {selection['reason']}"


def is_better(row: dict, best: dict, selection: dict) -> bool:
    """Accuracy first, then lower loss: an early epoch that already names every val clip
    right but with probabilities near uniform loses to a later, confident one."""
    if selection["rule"] != BY_VAL or best["epoch"] == 0:
        return True
    if row["val_acc"] != best["val_acc"]:
        return row["val_acc"] > best["val_acc"]
    return row["val_loss"] < best["val_loss"]


def data_fingerprint(train_ds: VideoDataset, val_ds: VideoDataset | None) -> str:
    """A digest of the clips a run trains and chooses on: which videos, their labels and
    splits, and what `prepare` did to each (so a re-prepared folder is other data)."""
    h = hashlib.sha1()
    for ds in (train_ds, val_ds):
        if ds is None:
            continue
        for i, r in enumerate(ds.rows):
            h.update(f"{r['split']}/{r['video_id']}/{r['label']}/{ds.signature(i)};".encode())
    h.update(str(train_ds.frames).encode())
    return h.hexdigest()[:16]


def training_frame_rate(data: Path, prepared: dict) -> float:
    """Frames per second of video that the training clips were sampled at (median over the
    training videos), so inference slides its windows over the same span of time."""
    if prepared.get("sample_fps"):
        return float(prepared["sample_fps"])
    rates = []
    for r in read_manifest(data):
        if r["status"] != "ok" or r["split"] != "train":
            continue
        fps, duration = float(r["fps"] or 0), float(r["duration_s"] or 0)
        if prepared.get("interval") and fps > 0:
            rates.append(fps / prepared["interval"])
        elif duration > 0 and r["sampled_frames"] > 1:
            # Spread sampling: the clip's frames cover the whole video.
            rates.append(r["sampled_frames"] / duration)
    return float(np.median(rates)) if rates else 8.0


def _optional_split(data, split, normalize, needs_flow, flow_method) -> VideoDataset | None:
    try:
        return VideoDataset(
            data, split=split, normalize=normalize, with_flow=needs_flow, flow_method=flow_method
        )
    except UserError:
        return None  # no validation split: `selection_rule` keeps the last epoch


def _train_epoch(
    net, loader, optimizer, device, epoch, cfg, steps_per_epoch, total_steps, warmup, quiet
) -> tuple[float, float, float]:
    net.train()
    loss_sum = correct = seen = 0.0
    with make_progress(quiet) as progress:
        bar = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps_per_epoch, status="")
        for i, batch in enumerate(loader):
            step = (epoch - 1) * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total_steps, warmup, cfg.lr) * group["lr_scale"]
            batch = _to_device(batch, device)
            labels = torch.as_tensor(batch["label"], device=device)
            logits = net(batch)
            loss = F.cross_entropy(logits, labels)
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


def _save_state(
    path: Path,
    model: nn.Module,
    optimizer,
    epoch: int,
    history: list[dict],
    best: dict,
    identity: dict,
) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = ckpt.optimizer_to_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    state = {
        "epoch": epoch,
        "history": history,
        "best": best,
        "identity": identity,
        "optimizer": opt_meta,
        "rng_python": _py_rng_to_json(random.getstate()),
        "rng_numpy": _np_rng_to_json(np.random.get_state()),
    }
    ckpt.save_state(path, tensors, state)


class RunMismatch(UserError):
    """A saved run was trained with other options or data than asked now."""

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences


def run_differences(saved: dict | None, now: dict) -> list[str]:
    """'key: saved X, now Y' for every option of the run that differs."""
    if saved is None:
        return ["the saved state records no options (written by an older vidclass)"]
    diffs = []
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            if key == "data":
                diffs.append("data: other clips, labels, splits or prepared frames")
            else:
                diffs.append(f"{key}: saved {saved.get(key)!r}, now {now.get(key)!r}")
    return diffs


def _restore(path: Path, model: nn.Module, optimizer, cfg: TrainConfig, identity: dict):
    tensors, state = ckpt.load_state(path)
    diffs = run_differences(state.get("identity"), identity)
    if diffs:
        raise RunMismatch(
            f"{path.parent}: --resume with other options than the saved run ("
            + "; ".join(diffs)
            + "); resume with the same options, or train into another --out",
            diffs,
        )
    model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_sd)
    except RuntimeError as exc:
        raise UserError(
            f"{path}: the saved state does not fit model {cfg.model!r} with these "
            f"options ({str(exc).splitlines()[0]}); resume with the same options"
        ) from None
    ckpt.optimizer_from_tensors(optimizer, tensors, state["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    random.setstate(_py_rng_from_json(state["rng_python"]))
    np.random.set_state(_np_rng_from_json(state["rng_numpy"]))
    return state["epoch"] + 1, state["history"], state["best"]


def _py_rng_to_json(s) -> list:
    return [s[0], list(s[1]), s[2]]


def _py_rng_from_json(s) -> tuple:
    return (s[0], tuple(s[1]), s[2])


def _np_rng_to_json(s) -> list:
    return [s[0], s[1].tolist(), s[2], s[3], s[4]]


def _np_rng_from_json(s) -> tuple:
    return (s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4])


def _write_metrics(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS})
    write_text(path, buf.getvalue())
