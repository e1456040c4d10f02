"""Fine-tuning on small batches: the ImageNet layers' BatchNorm keeps its ImageNet statistics.

The statistics of a batch of 8 clips from one small dataset are a noisy, shifted estimate of
those the pretrained layers were trained with; re-estimating them is what made fine-tuning
underfit on Weizmann (train accuracy 46-68 %). TSN (Wang et al., 2016) holds them ("partial
BN"): each pretrained BatchNorm normalises with its running statistics, which stay as ImageNet
left them, while its scale and shift still train. Layers new to the task keep batch statistics.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vidclass.errors import UserError

PRETRAINED_BN = ("frozen", "train")


def pretrained_batchnorms(model: nn.Module) -> list[str]:
    """The names of the BatchNorm modules whose weights came from ImageNet."""
    pretrained = {id(p) for p in getattr(model, "pretrained_parameters", list)()}
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm) and m.weight is not None and id(m.weight) in pretrained
    ]


def check_mode(mode: str) -> None:
    if mode not in PRETRAINED_BN:
        raise UserError(f"--pretrained-bn {mode!r}: choose one of {', '.join(PRETRAINED_BN)}")


def _use_running_statistics(module: nn.Module, _inputs: tuple) -> None:
    module.training = False


def hold_statistics(model: nn.Module, names: list[str], mode: str) -> int:
    """With `mode` "frozen", make the named BatchNorms normalise with their running statistics
    in training too (a forward pre-hook, so `model.train()` cannot undo it); the count held.

    Call it on the model as it will train: after any SyncBatchNorm conversion, which replaces
    the modules (under the same names)."""
    check_mode(mode)
    if mode == "train":
        return 0
    for name in names:
        model.get_submodule(name).register_forward_pre_hook(_use_running_statistics)
    return len(names)
