"""Fully sharded data parallelism (FSDP) for a QLoRA recipe started by torchrun: each rank
keeps 1/world_size of every weight (the frozen 4-bit base, the norms and embeddings, the LoRA
matrices and their AdamW moments) and gathers one decoder layer's weights at a time, just
before that layer runs; gradients are reduce-scattered so that each rank updates its own
shard. Where data parallelism (DDP) holds the whole model on every GPU, FSDP trains a model
whose weights and optimizer state do not fit one GPU beside the activations.

PyTorch's `fully_shard` (FSDP2) is applied to every decoder layer and then to the module the
training forward goes through (the root: the embeddings, final norm and head). bitsandbytes'
4-bit weights can be sharded when their storage dtype is a float one (`quant_storage` = the
compute dtype; lora.quantization_config); the gathered weight a layer runs with is then a
plain tensor, and its quantisation state is read from the layer, where bitsandbytes keeps a
copy (fast_path.quant_state_of, and bitsandbytes' own Linear4bit.forward).

The rules the recipe keeps under FSDP:

- every rank runs the same number of forwards through the sharded modules (each one
  all-gathers): a rank without work in a step or a validation round runs one on an example
  with nothing to predict;
- the adapter and the optimizer state are gathered from the shards by every rank (a
  collective) before rank 0 writes them, and put back from the full tensors on every rank.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

PARALLELISMS = ("ddp", "fsdp")


def shard_model(root: torch.nn.Module, blocks: Iterable[torch.nn.Module]) -> torch.nn.Module:
    """Shard each of `blocks` (the decoder layers) as its own unit, then `root` with what is
    left (embeddings, final norm, head). Modules are changed in place; returns `root`."""
    for block in blocks:
        fully_shard(block)
    fully_shard(root)
    return root


def full_trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter of `model` whole, on the CPU, keyed as in its state_dict. A
    collective: every rank must call it, in the same order of steps."""
    state = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        tensor = param.full_tensor() if isinstance(param, DTensor) else param
        state[name] = tensor.detach().cpu()
    return state


def load_full_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put whole tensors (keyed as in `model`'s state_dict) into `model`'s shards. Every rank
    calls it with the same tensors."""
    whole: dict[str, Any] = dict(state)
    set_model_state_dict(model, whole, options=StateDictOptions(full_state_dict=True, strict=False))


def full_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """The optimizer's state with whole tensors, keyed by parameter name: on rank 0; an empty
    dict on the others. A collective."""
    return get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def load_full_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path, is_main: bool
) -> None:
    """Rank 0 reads the whole optimizer state written by `full_optimizer_state` and every
    rank takes its shards of it (broadcast from rank 0)."""
    state = torch.load(path, weights_only=True) if is_main else {}
    set_optimizer_state_dict(
        model,
        optimizer,
        state,
        options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True),
    )
