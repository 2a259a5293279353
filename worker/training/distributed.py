"""Data parallelism for a recipe started by torchrun (`--nproc-per-node k`): each rank holds
the whole model on its own device and trains on its share of every global batch; DDP sums
the LoRA gradients. NCCL on CUDA, gloo on the CPU."""

import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

from worker.training.data import IGNORE_INDEX, Batch

# The CUDA caching allocator's setting for a training process (the launcher sets it unless
# the operator did): expandable segments, so memory freed in one size can be reused in another.
TRAINING_CUDA_ALLOC_CONF = "expandable_segments:True"


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def device(self) -> torch.device:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", self.local_rank)


def world_from_env() -> World:
    """The rank and world size torchrun gives this process (one process: rank 0 of 1)."""
    return World(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_process_group(world: World) -> None:
    if not world.is_distributed or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl", device_id=world.device())
    else:
        dist.init_process_group("gloo")


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_without_teardown(code: int = 0) -> NoReturn:
    """End a training process without the interpreter's teardown. Freeing a
    DistributedDataParallel model's reducer joins gloo's worker thread while holding the GIL,
    and that thread may need the GIL to free its last work item: the rank then hangs at exit
    forever (seen with torch 2.13 on the CPU, a native stack of ~ProcessGroupGloo ->
    std::thread::join against the gil_scoped_acquire of AsyncWork's destructor). Everything
    the run produced is on disk or in the database by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def barrier(world: World) -> None:
    if world.is_distributed:
        dist.barrier()


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    if not world.is_distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.tolist()]


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when it is true on any: ranks must agree on when to stop."""
    return all_sum([float(flag)], world, device)[0] > 0


def predicted_tokens(batch: Batch) -> int:
    """Tokens the causal-LM loss is taken over: labels shifted by one, ignored ones left out."""
    return int((batch.labels[:, 1:] != IGNORE_INDEX).sum())


def balanced_shares(lengths: list[int], world_size: int) -> list[list[int]]:
    """The indices of a global batch's examples each rank trains on, balanced by tokens: the
    longest example first, each to the rank with the fewest tokens so far (ties: the lowest
    rank), each rank's indices in batch order. Every rank computes the same split. The step
    waits for the slowest rank, so balance is speed; the loss over the global batch does not
    depend on the split. (Every world_size-th example, the split before this one, left two
    ranks 12-14 % apart in tokens a step in docs/benchmarks.md's DDP runs.)"""
    shares: list[list[int]] = [[] for _ in range(world_size)]
    tokens = [0] * world_size
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        rank = min(range(world_size), key=lambda r: (tokens[r], r))
        shares[rank].append(index)
        tokens[rank] += lengths[index]
    return [sorted(share) for share in shares]


def shard(batch: Batch, world: World) -> Batch:
    """This rank's rows of a global batch (every world_size-th one), padding trimmed. A rank
    left without rows (a last batch smaller than the world) gets one row with nothing to
    predict: it adds zero to the loss but still takes part in the gradient all-reduce."""
    rows = list(range(world.rank, batch.input_ids.shape[0], world.world_size))
    labels = batch.labels[rows] if rows else torch.full_like(batch.labels[:1], IGNORE_INDEX)
    input_ids = batch.input_ids[rows] if rows else batch.input_ids[:1]
    attention_mask = batch.attention_mask[rows] if rows else batch.attention_mask[:1]
    longest = max(int(attention_mask.sum(dim=1).max()), 1)
    return Batch(
        input_ids=input_ids[:, :longest],
        attention_mask=attention_mask[:, :longest],
        labels=labels[:, :longest],
        non_pad_tokens=int(attention_mask.sum()) if rows else 0,
        trainable_tokens=int((labels != IGNORE_INDEX).sum()),
    )
