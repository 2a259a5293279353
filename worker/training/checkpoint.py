"""Resumable training checkpoints, for any recipe that trains a peft model with a torch
optimizer and learning-rate scheduler.

A checkpoint is one directory, `<root>/step-<N>/`:

    adapter_config.json, adapter_model.safetensors   the adapter, loadable by peft and vLLM
    trainer_state/optimizer.pt, scheduler.pt         optimizer and scheduler state dicts
    trainer_state/rng.pt                             python, numpy, torch (and CUDA) RNG states
    trainer_state/progress.json                      the recipe's own position (step, epoch,
                                                     batch within the epoch, data seed, ...)

It is written under a hidden temporary name, every file and the directory are fsynced, and
only then is it renamed into place: a directory named `step-<N>` is always complete, whatever
killed the process while it was writing. Only the newest `keep_last` are kept.

The adapter saved and loaded is the model's trained one, peft's "default": a model may hold
others (DPO's frozen reference copy) that are rebuilt at setup, never checkpointed.
"""

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

STATE_DIRNAME = "trainer_state"
PROGRESS_FILENAME = "progress.json"
ADAPTER_WEIGHTS_FILENAME = "adapter_model.safetensors"
OPTIMIZER_FILENAME = "optimizer.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def progress(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            (self.path / STATE_DIRNAME / PROGRESS_FILENAME).read_text()
        )
        return loaded


def checkpoint_path(root: Path, step: int) -> Path:
    return root / f"step-{step}"


def list_checkpoints(root: Path) -> list[Checkpoint]:
    """Complete checkpoints under `root`, oldest first. Temporary directories of an
    interrupted write never match."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append(Checkpoint(int(match.group(1)), child))
    return sorted(found, key=lambda checkpoint: checkpoint.step)


def latest_checkpoint(root: Path) -> Checkpoint | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(
    root: Path,
    step: int,
    *,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: dict[str, Any],
    keep_last: int,
    adapter_name: str = "default",
    adapter_state: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Checkpoint:
    """Write the checkpoint of optimizer step `step` atomically, then drop all but the newest
    `keep_last`. Call it between steps: the RNG states are captured as they are now. A
    sharded model (worker/training/sharding.py) passes its adapter and optimizer state
    gathered whole (`adapter_state` keyed as in the model's state_dict)."""
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1")
    root.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(root, step)
    partial = root / f".step-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    # save_embedding_layers=False: the adapter must hold LoRA weights only (vLLM); only the
    # trained adapter, so that the directory is one servable adapter.
    model.save_pretrained(
        str(partial),
        save_embedding_layers=False,
        selected_adapters=[adapter_name],
        state_dict=adapter_state,  # None: the model's own
    )
    state_dir = partial / STATE_DIRNAME
    state_dir.mkdir()
    torch.save(
        optimizer.state_dict() if optimizer_state is None else optimizer_state,
        state_dir / OPTIMIZER_FILENAME,
    )
    torch.save(scheduler.state_dict(), state_dir / "scheduler.pt")
    torch.save(capture_rng_state(), state_dir / "rng.pt")
    (state_dir / PROGRESS_FILENAME).write_text(json.dumps({"step": step, **progress}, indent=2))
    fsync_tree(partial)
    shutil.rmtree(target, ignore_errors=True)  # a re-run of the same step replaces it
    partial.rename(target)
    fsync_path(root)
    prune_checkpoints(root, keep_last)
    return Checkpoint(step, target)


def load_checkpoint(
    checkpoint: Checkpoint,
    *,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    adapter_name: str = "default",
    sharded: bool = False,
    is_main: bool = True,
) -> dict[str, Any]:
    """Put the adapter weights, optimizer, scheduler and RNG states of `checkpoint` back into
    place; returns the recipe's progress record. `sharded`: the model is sharded over the
    ranks (worker/training/sharding.py); every rank calls this, `is_main` on rank 0."""
    weights = load_file(checkpoint.path / ADAPTER_WEIGHTS_FILENAME)
    state_dir = checkpoint.path / STATE_DIRNAME
    if sharded:
        from worker.training import sharding

        sharding.load_full_trainable_state(model, model_keyed(model, weights, adapter_name))
        sharding.load_full_optimizer_state(
            model, optimizer, state_dir / OPTIMIZER_FILENAME, is_main
        )
    else:
        result = set_peft_model_state_dict(model, weights, adapter_name)
        unexpected: list[str] = result.unexpected_keys  # type: ignore[attr-defined]
        if unexpected:
            raise RuntimeError(
                f"checkpoint {checkpoint.path} does not fit the model: {unexpected[:3]}"
            )
        # Our own files, written by save_checkpoint: the python RNG state is a plain tuple.
        optimizer.load_state_dict(torch.load(state_dir / OPTIMIZER_FILENAME, weights_only=True))
    scheduler.load_state_dict(torch.load(state_dir / "scheduler.pt", weights_only=False))
    restore_rng_state(torch.load(state_dir / "rng.pt", weights_only=False))
    return checkpoint.progress


def model_keyed(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], adapter_name: str
) -> dict[str, torch.Tensor]:
    """Saved adapter weights (peft's keys, without the adapter's name) keyed as the model's
    trainable parameters are; every one of them must be there."""
    keyed, missing = {}, []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        saved = name.replace(f".{adapter_name}", "")
        if saved in weights:
            keyed[name] = weights[saved]
        else:
            missing.append(saved)
    if missing or len(keyed) != len(weights):
        raise RuntimeError(f"the checkpoint's adapter does not fit the model: {missing[:3]}")
    return keyed


def prune_checkpoints(root: Path, keep_last: int) -> None:
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old.path, ignore_errors=True)


def remove_partial_checkpoints(root: Path) -> None:
    """Temporary directories left by a process killed while writing a checkpoint."""
    if root.is_dir():
        for child in root.glob(".step-*.partial"):
            shutil.rmtree(child, ignore_errors=True)


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy
    except ImportError:
        return state
    state["numpy"] = numpy.random.get_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])


def fsync_tree(directory: Path) -> None:
    """fsync every file under `directory`, then every directory bottom-up, so that after the
    rename the checkpoint's bytes and names are on disk, not only in the page cache."""
    for current, _dirnames, filenames in os.walk(directory, topdown=False):
        for name in filenames:
            fsync_path(Path(current) / name)
        fsync_path(Path(current))


def fsync_path(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
