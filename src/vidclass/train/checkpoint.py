"""Training state for `--resume` as safetensors + JSON: nothing is ever unpickled.

What inference needs (`model.safetensors` + `config.json`) is the run-folder format of
`vidclass.models.run`; this module adds what resuming needs (`state.safetensors`: model,
optimizer and RNG tensors, with the rest of the training state as JSON in the file's
metadata, so one atomic rename saves it all).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open

from vidclass.errors import UserError
from vidclass.models.run import save_tensors

STATE_FILE = "state.safetensors"


def save_state(path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Training state for `--resume`: tensors plus JSON metadata, one atomic file."""
    save_tensors(path, tensors, {"state": json.dumps(state)})


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Inverse of `save_state`."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError) as exc:
        raise UserError(
            f"{path}: unreadable training state ({exc}); start without --resume"
        ) from None
    if "state" not in meta:
        raise UserError(f"{path}: not a vidclass training state; start without --resume")
    return tensors, json.loads(meta["state"])


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors and JSON (param groups, scalar entries)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    """Inverse of `optimizer_to_tensors`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
