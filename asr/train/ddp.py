"""Data-parallel training across processes started by ``torchrun`` (one per GPU, or several on
CPU with the gloo backend).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_distributed` reads
them and joins the process group. Every rank loads the data and builds the same model; the
batches are split by :class:`asr.train.sampler.BucketBatchSampler`; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """The ranks ``torchrun`` put in the environment (a single process when absent)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when started by ``torchrun`` with more than one process: NCCL on
    GPUs, gloo on CPU. Returns the rank information (world size 1 when not distributed)."""
    info = env_dist_info()
    if not info.enabled or dist.is_initialized():
        return info
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """The device of this rank: its own GPU (``LOCAL_RANK``) under DDP on CUDA."""
    if device.type == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return device


def rank_seed(seed: int, info: DistInfo) -> int:
    """The seed of this rank's random stream after the model is built: the same initial
    weights on every rank (built from ``seed``), different dropout masks."""
    return seed + 1000 * info.rank


def shutdown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a stop request), so that
    all ranks leave the loop at the same update."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def sum_across_ranks(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """The element-wise sum of ``values`` over all ranks (``values`` itself in one process)."""
    if not info.enabled:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def collective_device(info: DistInfo) -> torch.device:
    """Where this rank's collectives run: its GPU under NCCL, else the CPU."""
    if info.enabled and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
