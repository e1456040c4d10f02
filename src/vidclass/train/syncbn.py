"""Synchronized BatchNorm for DistributedDataParallel on CPU (gloo).

With plain BatchNorm each process normalizes its own slice of the global batch, so N processes
train a different model than one process does; PyTorch's `nn.SyncBatchNorm` fixes that on GPUs
only. This module does the same on CPU: batch statistics, and in the backward pass the two
per-channel sums the input gradient needs, are all-reduced over the processes. The result
equals single-process training up to float rounding (tested).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _shape(x: torch.Tensor) -> list[int]:
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


class _SyncBatchNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, group):  # type: ignore[override]
        c, dims, shape = x.shape[1], _reduce_dims(x), _shape(x)
        count = torch.tensor([x.numel() / c], dtype=torch.float64)
        stats = torch.cat([x.sum(dims).double(), (x * x).sum(dims).double(), count])
        dist.all_reduce(stats, group=group)
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c : 2 * c] / total - mean * mean).clamp_min(0.0)
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        invstd = torch.rsqrt(var + eps)
        xhat = (x - mean.view(shape)) * invstd.view(shape)
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.total, ctx.group = float(total), group
        out = xhat * weight.view(shape) + bias.view(shape)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):  # type: ignore[override]
        xhat, weight, invstd = ctx.saved_tensors
        c, dims, shape = dy.shape[1], _reduce_dims(dy), _shape(dy)
        sum_dy = dy.sum(dims)
        sum_dy_xhat = (dy * xhat).sum(dims)
        both = torch.cat([sum_dy, sum_dy_xhat]).double()
        dist.all_reduce(both, group=ctx.group)
        g_dy, g_dy_xhat = both[:c].to(dy.dtype), both[c:].to(dy.dtype)
        n = ctx.total
        dx = (
            (weight * invstd).view(shape)
            / n
            * (n * dy - g_dy.view(shape) - xhat * g_dy_xhat.view(shape))
        )
        # Parameter gradients stay local: DDP averages them over the processes.
        return dx, sum_dy_xhat, sum_dy, None, None


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics span every process of the default group."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        weight = self.weight if self.weight is not None else x.new_ones(x.shape[1])
        bias = self.bias if self.bias is not None else x.new_zeros(x.shape[1])
        out, mean, var = _SyncBatchNormFn.apply(x, weight, bias, self.eps, None)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                n = x.numel() / x.shape[1] * dist.get_world_size()
                unbiased = var * n / max(n - 1, 1)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return out


def convert_to_cpu_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm{1,2,3}d in place (same parameter and buffer names)."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, CPUSyncBatchNorm):
            sync = CPUSyncBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            sync.load_state_dict(child.state_dict())
            sync.train(child.training)
            for p_new, p_old in zip(sync.parameters(), child.parameters(), strict=True):
                p_new.requires_grad_(p_old.requires_grad)
            setattr(module, name, sync)
        else:
            convert_to_cpu_sync_batchnorm(child)
    return module
