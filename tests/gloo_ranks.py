"""Two data-parallel ranks in spawned processes on CPU (gloo, a file:// rendezvous)."""

from __future__ import annotations

import gc
import os
import sys

import torch
import torch.distributed as dist

from asr.train import DistInfo


def init_rank(rank: int, store: str, world_size: int = 2) -> DistInfo:
    """Join the process group of ``world_size`` ranks meeting at the file ``store``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=rank)


def finish_rank() -> None:
    """End a spawned rank that wrote its results: wait for the other ranks, free the DDP
    objects, leave the group and exit at once. Interpreter teardown while gloo's threads still
    hold work of a garbage-collected DDP reducer can abort the process (SIGABRT, "terminate
    called without an active exception"), which made a passing rank fail."""
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
