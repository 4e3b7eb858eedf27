"""DDP through `torchrun`: process-group setup, samplers, collectives and cleanup.

`torchrun --nproc_per_node N -m astrobio.cli train ...` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; we init with `env://` (NCCL on GPU, gloo on CPU). Without those variables
everything degrades to a single process with the same code path (world size 1).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Sampler


@dataclass
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    """Global rank (0 logs and writes checkpoints)."""
    world_size: int = 1
    """Number of training processes."""
    local_rank: int = 0
    """Rank on this node (selects the CUDA device)."""
    device: torch.device = torch.device("cpu")
    """Device this process trains on."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistContext:
    """Join the `torchrun` process group when WORLD_SIZE > 1; pick the device.

    `device` None = CUDA (this node's local rank) when available, else CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device(device or "cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        # NCCL needs the device bound before the first collective to avoid every rank using GPU 0.
        kwargs = {"device_id": dev} if use_cuda else {}
        dist.init_process_group(backend, init_method="env://", timeout=timedelta(minutes=30), **kwargs)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup(ctx: DistContext, wait: bool = True) -> None:
    """Leave the process group; `wait=False` after an error (the other ranks may never reach a barrier)."""
    if ctx.is_distributed and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DDP-wrap for multi-process runs. find_unused_parameters=False: the system keeps every submodule
    in the graph (missing modalities are masked, not skipped), which avoids a per-step graph traversal."""
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=False)


def all_reduce(t: torch.Tensor, ctx: DistContext, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce ('sum' or 'max') across ranks; identity for one process."""
    if ctx.is_distributed:
        # gloo reduces CPU tensors only; NCCL needs them on the GPU.
        work = t.to(ctx.device) if ctx.device.type == "cuda" else t.cpu()
        dist.all_reduce(work, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        t.copy_(work.to(t.device))
    return t


class ResumableDistributedSampler(DistributedSampler):
    """`DistributedSampler` whose epoch order can be entered mid-way.

    The order of epoch e is a permutation seeded with `seed + e` (set by `set_epoch`), sharded across
    ranks; `set_epoch(e, skip)` drops the first `skip` indices of this rank's shard, so a resumed run
    sees exactly the batches the interrupted run had not consumed yet. Works with world size 1
    without a process group (num_replicas/rank are passed explicitly).
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank r gets indices r, r+W, r+2W, … (no padding, so metrics count each item once)."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0):
        self.indices = list(range(rank, n, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
