"""Train one method on a prepared dataset: one loop for every model, one process or many.

The run folder (`out`) gets `model.safetensors` + `config.json` (the best epoch on the `val`
split: highest accuracy, ties broken by lower loss; the test split never chooses anything),
`state.safetensors` (the last epoch, for `--resume`), `metrics.csv` and `curves.png`.
Everything random is a function of (seed, epoch), and the state is saved at each epoch's end,
so a run killed mid-epoch and resumed ends with the same numbers as one that never stopped.

This module sets a run up and drives its epochs; the steps live next door: `optim` (AdamW
groups, learning-rate schedule), `epoch` (one epoch of training, predictions on a split),
`selection` (which epoch is kept) and `resume` (the saved state and the run's identity).
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from vidclass.atomic import write_text
from vidclass.data.dataset import (
    Augment,
    VideoDataset,
    load_prepared_config,
)
from vidclass.data.views import TestTimeFlip, check_flip
from vidclass.errors import UserError
from vidclass.models import build
from vidclass.models.run import MODEL_FILE, save_model
from vidclass.train import checkpoint as ckpt
from vidclass.train.batchnorm import check_mode, hold_statistics, pretrained_batchnorms
from vidclass.train.config import RESUME_KEYS, TrainConfig, resolve_normalize, test_time_flip
from vidclass.train.distributed import Dist, all_sum, barrier, init_from_env, shutdown
from vidclass.train.epoch import predict_loader, val_scores
from vidclass.train.epoch import train_epoch as _train_epoch  # tests replace loop._train_epoch
from vidclass.train.features import (
    FeatureDataset,
    FeatureHead,
    cache_features,
    feature_folder,
    train_views,
    uses_feature_cache,
)
from vidclass.train.optim import Schedule, lr_at, make_optimizer, param_groups
from vidclass.train.resume import (
    RunMismatch,
    data_fingerprint,
    restore_state,
    run_differences,
    save_state,
)
from vidclass.train.run_config import (
    resolution_hint,
    run_config,
)
from vidclass.train.selection import (
    BY_VAL,
    LAST_EPOCH,
    describe_selection,
    is_better,
    selection_rule,
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
# Still importable from here, where they lived before the loop was split into steps.
__all__ += ["BY_VAL", "LAST_EPOCH", "RunMismatch", "data_fingerprint", "describe_selection"]
__all__ += ["is_better", "lr_at", "param_groups", "predict_loader", "run_differences"]
__all__ += ["selection_rule"]


@dataclass
class TrainResult:
    run: Path
    history: list[dict]
    best_epoch: int
    best_val_acc: float | None  # None when no validation split chose the epoch
    train_time_s: float
    selection: dict | None = None  # how the saved epoch was chosen (see `selection_rule`)
    resumed_from_epoch: int = 0  # epochs found done in the run folder (== epochs: reused)
    first_pass: TrainResult | None = None  # with refit: the pass that chose the epoch count


@dataclass
class _Run:
    """What a run trains with, set up once before its first epoch."""

    cfg: TrainConfig  # with `augment` resolved
    model: nn.Module  # what is saved
    net: nn.Module  # what is trained: the model or its feature head, maybe inside DDP
    feature_mode: bool  # the clips are a frozen backbone's cached features
    train_ds: VideoDataset | FeatureDataset
    sampler: DistributedSampler
    train_loader: DataLoader
    val_loader: DataLoader | None
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    last_epoch: int  # cfg.epochs, or with a refit the epoch count chosen on val
    selection: dict  # how the saved epoch is chosen (`selection_rule`)
    identity: dict  # what a resumed run must share with the saved one
    run_config: dict  # config.json, less the best epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    resume: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train `config.model` on the prepared folder `data`; write the run folder `out` (with
    `config.refit`, the pass that chooses the epoch count in `out/select`)."""
    ctx = init_from_env()
    try:
        if config.refit:
            from vidclass.train.refit import train_and_refit  # it drives this module's passes

            return train_and_refit(Path(data), Path(out), config, resume, quiet, ctx)
        return _train(Path(data), Path(out), config, resume, quiet, ctx)
    finally:
        shutdown(ctx)


def _train(
    data: Path,
    out: Path,
    cfg: TrainConfig,
    resume: bool,
    quiet: bool,
    ctx: Dist,
    refit: dict | None = None,
) -> TrainResult:
    """One pass; with `refit` ({"epochs", "schedule_epochs", "selection"} from train/refit.py)
    on train + val for that many epochs, keeping the last."""
    state_path = out / ckpt.STATE_FILE
    _check_request(out, cfg, resume, ctx)
    run = _set_up(data, cfg, ctx, quiet, refit)
    history: list[dict] = []
    best: dict = {"epoch": 0, "val_acc": None, "val_loss": None}
    start_epoch = 1
    if resume and state_path.exists():
        start_epoch, history, best = restore_state(
            state_path, run.model, run.optimizer, cfg.model, run.identity
        )
    elif resume and not quiet and ctx.is_main:
        print(f"no saved state in {out}; starting from the first epoch")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not quiet and start_epoch <= run.last_epoch:
            print(describe_selection(run.selection))
            if refit is None and (hint := resolution_hint(run.run_config)):
                print(hint)

    for epoch in range(start_epoch, run.last_epoch + 1):
        row = _run_epoch(run, epoch, ctx, quiet)
        history.append(row)
        if ctx.is_main:
            best = _end_epoch(out, run, row, history, best, quiet)
        barrier(ctx)

    if ctx.is_main:
        from vidclass.report.plots import plot_curves

        plot_curves(history, out / "curves.png", title=f"{cfg.model} on {data.name}")
    return TrainResult(
        run=out,
        history=history,
        best_epoch=best["epoch"],
        best_val_acc=best["val_acc"] if run.selection["rule"] == BY_VAL else None,
        train_time_s=sum(r["epoch_time_s"] for r in history),
        selection=run.selection,
        resumed_from_epoch=start_epoch - 1,
    )


def _check_request(out: Path, cfg: TrainConfig, resume: bool, ctx: Dist) -> None:
    """Refuse a run that cannot be trained as asked, before anything is loaded."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError("epochs and batch size must be at least 1 and the learning rate positive")
    if not 0 <= cfg.label_smoothing < 1:
        raise UserError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if cfg.refit_epochs not in ("chosen", "all") or (
        cfg.refit_epochs != "chosen" and not cfg.refit
    ):
        raise UserError(f"--refit-epochs {cfg.refit_epochs!r}: chosen or all, with --refit")
    if cfg.tta not in ("auto", "flip", "none"):
        raise UserError(f"--tta {cfg.tta!r}: choose auto, flip or none")
    if cfg.batch_size % ctx.world_size:
        raise UserError(
            f"--batch-size {cfg.batch_size} is the global batch and must divide evenly over "
            f"{ctx.world_size} processes"
        )
    if not resume and ((out / ckpt.STATE_FILE).exists() or (out / MODEL_FILE).exists()):
        raise UserError(
            f"{out}: already holds a training run; add --resume to continue it, or "
            "choose another --out"
        )
    if cfg.val_split == "test":
        raise UserError(
            "val_split='test' would choose the best epoch on the test split and then report "
            "on it (a biased score); choose on 'val' (`vidclass prepare --val-fraction`)"
        )


# ImageNet weights saw 224 px images; below this the pretrained methods lose accuracy that a
# larger `prepare --size` gives back (docs/benchmarks.md, "Real people").
def _set_up(data: Path, cfg: TrainConfig, ctx: Dist, quiet: bool, refit: dict | None) -> _Run:
    """The model, data, loaders and optimiser of a run, in the order that fixes its RNG (a
    refit starts from the same initial weights as the pass that chose its epoch count)."""
    prepared = load_prepared_config(data)
    normalize = resolve_normalize(cfg)
    check_mode(cfg.pretrained_bn)
    seed_everything(cfg.seed)
    model = build(cfg.model, len(prepared["classes"]), **cfg.options)
    model.to(ctx.device)
    needs_flow = bool(getattr(model, "needs_flow", False))
    needs_keypoints = bool(getattr(model, "needs_keypoints", False))  # the pose method
    feature_mode = uses_feature_cache(model)
    if feature_mode and cfg.augment:
        raise UserError(
            "--augment cannot be combined with a frozen backbone: features are "
            "computed once per clip; drop one of the two"
        )
    # augment=None (auto): on wherever clips are encoded each epoch.
    cfg = replace(cfg, augment=not feature_mode if cfg.augment is None else cfg.augment)
    if cfg.hflip or cfg.tta == "flip":
        option = "--hflip" if cfg.hflip else "--tta flip"
        for warning in check_flip(prepared["classes"], option):
            if not quiet and ctx.is_main:
                print(f"warning: {warning}")
    augment = Augment(crop_scale=0.85, temporal_jitter=True) if cfg.augment else Augment()
    # A frozen backbone sees mirrored clips through their cached `hflip` view instead.
    augment = replace(augment, hflip=cfg.hflip and not feature_mode)
    train_ds = VideoDataset(
        data,
        split="train" if refit is None else ("train", cfg.val_split),
        normalize=normalize,
        augment=augment,
        with_flow=needs_flow,
        flow_method=cfg.flow_method,
        seed=cfg.seed,
        with_keypoints=needs_keypoints,
        with_video=not needs_keypoints,
    )
    if refit is None:
        val_ds = _optional_split(
            data, cfg.val_split, normalize, needs_flow, cfg.flow_method, needs_keypoints
        )
        selection = selection_rule(train_ds, val_ds, cfg.val_split)
    else:  # val trains too: nothing is left to choose on
        val_ds, selection = None, refit["selection"]
    # As JSON will give it back from the saved state (tuples become lists).
    identity = json.loads(
        json.dumps(
            {
                **{k: getattr(cfg, k) for k in RESUME_KEYS},
                "options": model.config,
                "data": data_fingerprint(train_ds, val_ds),
                **({"refit_pass_epochs": refit["epochs"]} if refit else {}),
            }
        )
    )
    frames = train_ds.frames
    held = pretrained_batchnorms(model)  # named before SyncBatchNorm replaces the modules
    net, train_ds, val_ds = _network(model, train_ds, val_ds, cfg, ctx, quiet)
    hold_statistics(model, held, cfg.pretrained_bn)
    sampler, train_loader, val_loader = _loaders(data, train_ds, val_ds, cfg, ctx)
    optimizer = make_optimizer(net, model, cfg)
    schedule_epochs = cfg.epochs if refit is None else refit["schedule_epochs"]
    schedule = Schedule(cfg.lr, schedule_epochs, len(train_loader), cfg.warmup_epochs)
    return _Run(
        cfg=cfg,
        model=model,
        net=net,
        feature_mode=feature_mode,
        train_ds=train_ds,
        sampler=sampler,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        schedule=schedule,
        last_epoch=cfg.epochs if refit is None else refit["epochs"],
        selection=selection,
        identity=identity,
        run_config=run_config(data, cfg, model, prepared, frames, normalize, selection),
    )


def _network(
    model: nn.Module,
    train_ds: VideoDataset,
    val_ds: VideoDataset | None,
    cfg: TrainConfig,
    ctx: Dist,
    quiet: bool,
) -> tuple[nn.Module, VideoDataset | FeatureDataset, Dataset | None]:
    """What is trained, and on what: a frozen backbone's features are cached once per view
    and only its head trains on them; with several processes the net is wrapped in DDP.
    With test-time flip (hflip's default) val scores each clip with its mirror, as evaluate will."""
    net: nn.Module = model
    if uses_feature_cache(model):
        views = train_views(cfg)
        folders = {v: feature_folder(model, train_ds, v) for v in views}
        if ctx.is_main:
            for view, folder in folders.items():
                datasets = [d for d in (train_ds, val_ds) if d]
                cache_features(model, datasets, folder, quiet=quiet, view=view)
        barrier(ctx)
        train_ds = FeatureDataset(train_ds, folders, model.feature_dim, views)
        val_ds = FeatureDataset(val_ds, folders, model.feature_dim) if val_ds else None
        net = FeatureHead(model)
    if test_time_flip(cfg) and val_ds is not None:
        val_ds = TestTimeFlip(val_ds)
    if ctx.enabled:
        if ctx.device.type == "cpu":
            # Statistics over the global batch, as one process would compute them.
            convert_to_cpu_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, find_unused_parameters=False)
    return net, train_ds, val_ds


def _loaders(
    data: Path, train_ds, val_ds, cfg: TrainConfig, ctx: Dist
) -> tuple[DistributedSampler, DataLoader, DataLoader | None]:
    """(the training sampler, the training loader, the validation loader or None)."""
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
    return sampler, train_loader, val_loader


def _run_epoch(run: _Run, epoch: int, ctx: Dist, quiet: bool) -> dict:
    """Train one epoch, then score it on the validation split → its row of metrics.csv."""
    run.sampler.set_epoch(epoch)
    (run.train_ds.base if run.feature_mode else run.train_ds).set_epoch(epoch)
    t0 = time.perf_counter()
    loss_sum, correct, seen = _train_epoch(
        run.net,
        run.train_loader,
        run.optimizer,
        ctx.device,
        epoch,
        run.schedule,
        quiet or not ctx.is_main,
        run.cfg.label_smoothing,
    )
    loss_sum, correct, seen = all_sum([loss_sum, correct, seen], ctx)
    epoch_time = time.perf_counter() - t0
    row = {
        "epoch": epoch,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "val_loss": None,
        "val_acc": None,
        "lr": run.optimizer.param_groups[0]["lr"],
        "epoch_time_s": epoch_time,
        "train_clips_per_s": seen / epoch_time,
    }
    if run.val_loader is not None:
        row["val_acc"], row["val_loss"] = val_scores(run.net, run.val_loader, ctx.device)
    return row


def _end_epoch(
    out: Path, run: _Run, row: dict, history: list[dict], best: dict, quiet: bool
) -> dict:
    """On the main process: keep the epoch if it is the best so far, save the state for
    `--resume`, write metrics.csv and log the epoch → the best epoch now."""
    if is_better(row, best, run.selection):
        best = {"epoch": row["epoch"], "val_acc": row["val_acc"], "val_loss": row["val_loss"]}
        save_model(out, run.model, {**run.run_config, "best": best})
    save_state(
        out / ckpt.STATE_FILE, run.model, run.optimizer, row["epoch"], history, best, run.identity
    )
    _write_metrics(out / "metrics.csv", history)
    if not quiet:
        val = f", val acc {row['val_acc']:.3f}" if row["val_acc"] is not None else ""
        print(
            f"epoch {row['epoch']}/{run.last_epoch}: loss {row['train_loss']:.4f}, "
            f"train acc {row['train_acc']:.3f}{val} ({row['epoch_time_s']:.1f} s)"
        )
    return best


def _optional_split(
    data, split, normalize, needs_flow, flow_method, needs_keypoints=False
) -> VideoDataset | None:
    try:
        return VideoDataset(
            data,
            split=split,
            normalize=normalize,
            with_flow=needs_flow,
            flow_method=flow_method,
            with_keypoints=needs_keypoints,
            with_video=not needs_keypoints,
        )
    except UserError:
        return None  # no validation split: `selection_rule` keeps the last epoch


def _write_metrics(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS})
    write_text(path, buf.getvalue())
