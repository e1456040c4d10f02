"""The run-folder format: what inference needs from a training run, nothing ever unpickled.

A run folder holds `model.safetensors` (the weights) and `config.json` (the method, its
options, the classes and the input the model was trained on). `vidclass.train.checkpoint`
adds what resuming needs (`state.safetensors`) on top of this format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vidclass.atomic import replacing, write_text
from vidclass.errors import UserError
from vidclass.models import build

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Tensors (moved to the CPU) plus string metadata as one safetensors file, atomically."""
    with replacing(path) as tmp:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata
        )


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or feature-head) wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return model


def save_model(run: Path, model: nn.Module, config: dict) -> None:
    """The inference checkpoint: weights and everything needed to rebuild and feed the model."""
    run.mkdir(parents=True, exist_ok=True)
    save_tensors(run / MODEL_FILE, dict(unwrap(model).state_dict()), {"format": "vidclass"})
    write_text(run / CONFIG_FILE, json.dumps(config, indent=2))


def read_config(run: str | os.PathLike) -> dict:
    """The `config.json` of a run folder, with a clear error when it is not one."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found; give a run folder written by `vidclass train`")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the run folder is damaged") from None
    for key in ("model", "options", "classes"):
        if key not in config:
            raise UserError(f"{path}: has no {key!r}; not a vidclass run folder")
    return config


def load_model(run: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model of a run folder and load its weights (eval mode)."""
    run = Path(run)
    config = read_config(run)
    model = build(config["model"], len(config["classes"]), **config["options"])
    load_weights(model, run / MODEL_FILE, config["model"])
    model.eval()
    return model, config


def load_weights(model: nn.Module, path: Path, name: str) -> None:
    """Load safetensors weights strictly; say exactly what does not fit."""
    if not path.is_file():
        raise UserError(f"{path}: not found; the run has no trained weights yet")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        details = []
        if wrong:
            k = wrong[0]
            details.append(
                f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(tensors[k].shape)}, "
                f"model {tuple(expected[k].shape)})"
            )
        if missing:
            details.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        raise UserError(
            f"{path}: does not fit model {name!r}: {'; '.join(details)}; the weights belong to "
            "another model or options, check config.json"
        )
    model.load_state_dict(tensors)
