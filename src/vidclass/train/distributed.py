"""DistributedDataParallel set-up from the environment `torchrun` provides.

One code path for one process and many: without `WORLD_SIZE` in the environment everything
here is a no-op, and the loop runs exactly as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: rank, world size, and whether it writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available() and self.enabled:
            return torch.device("cuda", self.local_rank)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def init_from_env() -> Dist:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return Dist(rank=rank, world_size=world, local_rank=local)


def all_sum(values: list[float], ctx: Dist) -> list[float]:
    """Sum scalars over all processes (identity for one process)."""
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: Dist) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: Dist) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
