"""Saving a run's state at each epoch's end and restoring it for `--resume`.

The state holds the model, optimiser and every RNG, plus the run's identity (its options and
a digest of its data): a run resumed with other options or data is refused (`RunMismatch`)
rather than silently mixing two budgets in one model.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidclass.data.dataset import VideoDataset
from vidclass.errors import UserError
from vidclass.train import checkpoint as ckpt


class RunMismatch(UserError):
    """A saved run was trained with other options or data than asked now."""

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences


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


def save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict],
    best: dict,
    identity: dict,
) -> None:
    """Everything `restore_state` needs to continue after `epoch`, in one atomic file."""
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


def restore_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_name: str,
    identity: dict,
) -> tuple[int, list[dict], dict]:
    """Load the saved state into `model`, `optimizer` and the RNGs → (next epoch, history,
    best); `RunMismatch` when the saved run's identity differs from `identity`."""
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
            f"{path}: the saved state does not fit model {model_name!r} with these "
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
