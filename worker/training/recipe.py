"""Supervised fine-tuning of a LoRA adapter on chat data (QLoRA when quantization is "nf4").

    recipe = SFTRecipe(TrainConfig.from_dict(config), reporter)
    recipe.setup()
    result = recipe.train()

The recipe knows nothing about the platform: progress, checkpoints and cancellation go
through the `Reporter` it is given. Output layout under `output_dir`:

    adapter/                  the final adapter (peft format) and manifest.json
    checkpoints/step-N/       every `checkpoint_every_steps` steps and at the end of each epoch:
                              the adapter plus what resuming needs (worker/training/checkpoint.py)

When `resume` is on and `checkpoints/` holds a checkpoint, setup() continues from the newest
one: same weights, optimizer, schedule, RNG and data position as the run that wrote it.

With `packing` (the default), every step's examples are concatenated into one row without
padding and trained through worker/training/fast_path.py: attention kept inside each example
(document masking: varlen flash attention on CUDA, SDPA with a block-diagonal mask
elsewhere), the fused NF4 + LoRA layer, the chunked linear + cross-entropy loss, and on CUDA
liger's kernels where installed. The loss is the same mean over the same trainable tokens as
the padded path's (`packing: false`: plain transformers + peft, padded batches), which stays
for comparison and as a way out. `max_tokens_per_batch` turns the fixed `batch_size` into a
token budget per step.
"""

import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch.nn.parallel import DistributedDataParallel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from worker.training.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    remove_partial_checkpoints,
    save_checkpoint,
)
from worker.training.data import (
    IGNORE_INDEX,
    Batch,
    ChatDataset,
    TokenizedExample,
    collate,
    epoch_order_generator,
    load_chat_dataset,
)
from worker.training.distributed import (
    World,
    all_sum,
    any_rank,
    balanced_shares,
    barrier,
    destroy_process_group,
    init_process_group,
    predicted_tokens,
    shard,
    world_from_env,
)
from worker.training.errors import LossDiverged
from worker.training.fast_path import PackedLoss, enable_fast_path
from worker.training.lora import (
    load_base_model,
    load_tokenizer,
    lora_config,
    require_base_model,
    save_adapter,
)
from worker.training.manifest import build_manifest, sha256_of_file
from worker.training.packing import pack_examples, plan_token_budget_batches
from worker.training.sharding import (
    PARALLELISMS,
    full_optimizer_state,
    full_trainable_state,
    shard_model,
)

ALL_LINEAR = "all-linear"
MAX_GRAD_NORM = 1.0
WARMUP_FRACTION = 0.05
WEIGHT_DECAY = 0.0
ADAPTER_DIRNAME = "adapter"
CHECKPOINTS_DIRNAME = "checkpoints"
FAULTS = ("nan_loss_at_step", "out_of_memory_at_step")
EARLY_STOPPING = "early_stopping"


@dataclass
class TrainConfig:
    base_model_id: str  # the platform's name for the base model; recorded in the adapter
    base_model_path: Path  # local directory with safetensors weights and tokenizer
    training_path: Path  # JSONL chat conversations
    output_dir: Path
    dataset_sha256: str  # of the training file, recorded in the manifest
    validation_path: Path | None = None
    validation_sha256: str | None = None
    seed: int = 0
    n_epochs: int = 3
    batch_size: int = 4
    learning_rate: float = 2e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] | str = ALL_LINEAR
    max_seq_length: int = 1024
    quantization: Literal["nf4", "none"] = "nf4"
    # A checkpoint every this many optimizer steps and at the end of every epoch: a killed run
    # resumes losing at most this many steps. Only the newest `keep_checkpoints` are kept.
    checkpoint_every_steps: int = 50
    keep_checkpoints: int = 3
    resume: bool = True
    # Validation loss every this many steps (None: only at the end of each epoch).
    eval_every_steps: int | None = None
    # Stop when the validation loss has not fallen by more than `early_stopping_min_delta`
    # below its best for this many evaluations in a row (None: never stop early).
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    # For tests of the failure paths only; the platform never sets it from a request.
    fault_injection: dict[str, int] | None = None
    data_preparation: dict[str, Any] | None = None  # rows dropped, final sha256 (manifest)
    # Padding-free packed batches through the fast path (module docstring); False: padded
    # batches the plain transformers + peft way.
    packing: bool = True
    # With packing: each step takes the next examples of the epoch's order up to this many
    # tokens (batch_size is then not used for training). None: batch_size examples a step.
    max_tokens_per_batch: int | None = None
    # Recompute each decoder layer's activations in the backward pass instead of keeping
    # them: far less memory for some more compute. None: on CUDA yes, on the CPU no.
    gradient_checkpointing: bool | None = None
    # With several ranks: "ddp", the whole model on every GPU, or "fsdp", every weight and
    # optimizer state sharded over the GPUs (worker/training/sharding.py).
    parallelism: Literal["ddp", "fsdp"] = "ddp"

    def __post_init__(self) -> None:
        self.base_model_path = Path(self.base_model_path)
        self.training_path = Path(self.training_path)
        self.output_dir = Path(self.output_dir)
        if self.validation_path is not None:
            self.validation_path = Path(self.validation_path)
        self._validate()

    def _validate(self) -> None:
        problems = []
        if self.quantization not in ("nf4", "none"):
            problems.append("quantization must be 'nf4' or 'none'")
        if self.parallelism not in PARALLELISMS:
            problems.append(f"parallelism must be one of {list(PARALLELISMS)}")
        if isinstance(self.target_modules, str):
            if self.target_modules != ALL_LINEAR:
                problems.append(f"target_modules must be '{ALL_LINEAR}' or a list of names")
        elif not self.target_modules or not all(isinstance(m, str) for m in self.target_modules):
            problems.append("target_modules must be a non-empty list of module names")
        for name in (
            "n_epochs",
            "batch_size",
            "lora_r",
            "lora_alpha",
            "checkpoint_every_steps",
            "keep_checkpoints",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("eval_every_steps", "early_stopping_patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 or null")
        if not self.early_stopping_min_delta >= 0:
            problems.append("early_stopping_min_delta must be >= 0")
        unknown_faults = set(self.fault_injection or {}) - set(FAULTS)
        if unknown_faults:
            problems.append(f"unknown fault_injection keys: {sorted(unknown_faults)}")
        if self.max_seq_length < 2:
            problems.append("max_seq_length must be at least 2")
        if not self.learning_rate > 0:
            problems.append("learning_rate must be positive")
        if not 0 <= self.lora_dropout < 1:
            problems.append("lora_dropout must be in [0, 1)")
        if self.max_tokens_per_batch is not None:
            if not self.packing:
                problems.append("max_tokens_per_batch needs packing")
            elif self.max_tokens_per_batch < self.max_seq_length:
                problems.append("max_tokens_per_batch must be at least max_seq_length")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }

    @property
    def adapter_dir(self) -> Path:
        return self.output_dir / ADAPTER_DIRNAME

    @property
    def checkpoints_root(self) -> Path:
        return self.output_dir / CHECKPOINTS_DIRNAME

    def checkpoint_dir(self, step: int) -> Path:
        return checkpoint_path(self.checkpoints_root, step)


class Reporter(Protocol):
    """Where the recipe sends what happens. The platform's implementation writes job events,
    metrics and checkpoints to its database and turns a cancel request into should_stop()."""

    def event(
        self, message: str, level: str = "info", data: dict[str, Any] | None = None
    ) -> None: ...

    def metrics(self, data: dict[str, Any]) -> None:
        """Once per optimizer step: step, total_steps, epoch, train_loss, learning_rate,
        tokens_per_second, trained_tokens; valid_loss at the end of an epoch and every
        eval_every_steps when there is validation data; stop_reason on an early stop."""

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None: ...

    def should_stop(self) -> bool: ...


class SilentReporter:
    """What the ranks other than 0 of a several-GPU run report: nothing."""

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        pass

    def metrics(self, data: dict[str, Any]) -> None:
        pass

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class PrintReporter:
    """Prints one JSON object per line on stdout; never asks to stop."""

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        self._print({"type": "event", "level": level, "message": message, "data": data})

    def metrics(self, data: dict[str, Any]) -> None:
        self._print({"type": "metrics", **data})

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        self._print({"type": "checkpoint", "step": step, "path": path, "metrics": metrics})

    def should_stop(self) -> bool:
        return False

    @staticmethod
    def _print(record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)


@dataclass(frozen=True)
class TrainResult:
    status: Literal["succeeded", "cancelled"]
    trained_tokens: int  # non-pad tokens processed, summed over all epochs
    steps: int  # optimizer steps taken
    adapter_dir: Path | None = None  # None when cancelled: no adapter is written
    manifest: dict[str, Any] | None = None
    final_loss: float | None = None  # train loss of the last step
    stop_reason: str | None = None  # "early_stopping" when validation loss stopped improving
    resumed_from_step: int | None = None


@dataclass
class Progress:
    """Where a run stands between two steps; a checkpoint stores it to resume from."""

    step: int = 0  # optimizer steps taken
    epoch: int = 1  # the epoch in progress (1-based)
    batches_done: int = 0  # of that epoch
    trained_tokens: int = 0
    best_valid_loss: float | None = None
    best_valid_step: int | None = None
    evaluations_without_improvement: int = 0
    last_metrics: dict[str, Any] = field(default_factory=dict)


class StepSchedule:
    """What the recipes share around their own forward and loss: the training loop (the steps
    of each epoch in the data order, validation every `eval_every_steps` and at each epoch
    end, early stopping, cancellation), the optimizer update and the warmup + cosine
    schedule, DDP over the trained weights, the resumable checkpoints
    (worker/training/checkpoint.py) with the `Progress` they resume from, and the final
    adapter. Each recipe has a `config` (a TrainConfig), its `_train_data` (a sized dataset),
    its `_valid_data` (or None), its `_model` (a peft model whose trained adapter is
    "default") and, once set up, its `_optimizer` and `_lr_scheduler`; it supplies
    `_train_batch` (the loss and update of one step), `_validation_metrics` and `_manifest`."""

    config: Any
    _train_data: Any
    _valid_data: Any
    _model: Any
    _optimizer: torch.optim.Optimizer
    _lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    _progress: Progress

    def __init__(self, config: Any, reporter: Reporter, world: World):
        self.config = config
        self.world = world
        self.reporter: Reporter = reporter if world.is_main else SilentReporter()
        self.device = world.device()
        self.compute_dtype = choose_compute_dtype(self.device)
        self._is_set_up = False
        self._resumed_from_step: int | None = None
        self._epoch_plans: dict[int, list[list[int]]] = {}

    # ------------------------------------------------------------------ steps

    def _epoch_plan(self, epoch: int) -> list[list[int]]:
        """The example indices of every step of `epoch` (1-based): the epoch's random order,
        which depends on the seed and the epoch alone (so a resumed run sees the same one),
        cut into steps by `_plan_batches`."""
        plan = self._epoch_plans.get(epoch)
        if plan is None:
            n = len(self._train_data)
            generator = epoch_order_generator(self.config.seed, n, epoch)
            plan = self._plan_batches(torch.randperm(n, generator=generator).tolist())
            self._epoch_plans[epoch] = plan
        return plan

    def _plan_batches(
        self, order: list[int], examples: Sequence[Any] | None = None
    ) -> list[list[int]]:
        """`order` (indices into `examples`, the training examples by default) cut into
        batch_size examples a step; the last step may hold fewer."""
        size = self.config.batch_size
        return [order[start : start + size] for start in range(0, len(order), size)]

    def _steps_in_epoch(self, epoch: int) -> int:
        return len(self._epoch_plan(epoch))

    @property
    def _total_steps(self) -> int:
        return sum(self._steps_in_epoch(epoch) for epoch in range(1, self.config.n_epochs + 1))

    @property
    def _warmup_steps(self) -> int:
        return max(1, round(WARMUP_FRACTION * self._total_steps))

    # ------------------------------------------------------------------ optimizer

    def _trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self._model.parameters() if p.requires_grad]

    def _setup_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self._trainable_parameters(), lr=self.config.learning_rate, weight_decay=WEIGHT_DECAY
        )

    def _setup_lr_scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        schedule = partial(
            warmup_cosine_multiplier,
            warmup_steps=self._warmup_steps,
            total_steps=self._total_steps,
        )
        return torch.optim.lr_scheduler.LambdaLR(self._optimizer, schedule)

    # ------------------------------------------------------------------ training

    def train(self) -> TrainResult:
        if not self._is_set_up:
            raise RuntimeError("call setup() before train()")
        try:
            return self._train()
        finally:
            destroy_process_group()

    def _train(self) -> TrainResult:
        cfg = self.config
        progress = self._progress
        stop_reason: str | None = None
        self._model.train()
        while progress.epoch <= cfg.n_epochs and stop_reason is None:
            if progress.batches_done == 0:
                self.reporter.event(f"Epoch {progress.epoch}/{cfg.n_epochs}")
            # The data order depends on the seed and epoch alone, not on how much randomness
            # model loading or dropout consumed, so a resumed epoch sees the same order.
            plan = self._epoch_plan(progress.epoch)
            for indices in plan[progress.batches_done :]:
                # Checked before every step, so a cancel costs at most the step in flight.
                if self._stop_requested():
                    return self._cancelled(progress)
                metrics = self._step(indices, progress)
                end_of_epoch = progress.batches_done == len(plan)
                if self._valid_data is not None and (
                    end_of_epoch
                    or (cfg.eval_every_steps and progress.step % cfg.eval_every_steps == 0)
                ):
                    metrics.update(self._validation_metrics())
                    stop_reason = self._record_validation(progress, metrics)
                self.reporter.metrics(metrics)
                progress.last_metrics = metrics
                if end_of_epoch:
                    progress.epoch, progress.batches_done = progress.epoch + 1, 0
                if stop_reason is not None:
                    break
                if end_of_epoch or progress.step % cfg.checkpoint_every_steps == 0:
                    self._save_checkpoint(progress)
        return self._finish(progress, stop_reason)

    def _step(self, indices: list[int], progress: Progress) -> dict[str, Any]:
        """One optimizer step on the training examples `indices` (the global batch), and the
        step's metrics."""
        learning_rate = self._optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        step_metrics, tokens = self._train_batch(indices, progress.step + 1)
        elapsed = time.perf_counter() - started
        progress.step += 1
        progress.batches_done += 1
        progress.trained_tokens += tokens
        return {
            "step": progress.step,
            "total_steps": self._total_steps,
            "epoch": progress.epoch,
            **step_metrics,
            "learning_rate": learning_rate,
            "tokens_per_second": tokens / elapsed,
            "trained_tokens": progress.trained_tokens,
        }

    def _train_batch(self, indices: list[int], step: int) -> tuple[dict[str, float], int]:
        """The recipe's step `step` (1-based) on the global batch of training examples
        `indices`: its metrics (train_loss, the global batch's mean, and any others) and the
        batch's non-pad tokens. Ends with `_update`."""
        raise NotImplementedError

    def _validation_metrics(self) -> dict[str, float]:
        """valid_loss (and any other metrics) over the whole validation set, the same on
        every rank."""
        raise NotImplementedError

    def _update(self, loss: torch.Tensor, loss_value: float, step: int) -> float:
        """Backpropagate `loss` (this rank's part) and take the optimizer and schedule step;
        `loss_value` is the global batch's mean loss, checked first: no update from a NaN
        loss. Returns that value (as a test's fault injection left it)."""
        loss_value = self._inject_fault(step, loss_value)
        ensure_finite_loss(loss_value, step)  # before backward: no update from a NaN loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._trainable_parameters(), MAX_GRAD_NORM)
        self._optimizer.step()
        self._lr_scheduler.step()
        self._optimizer.zero_grad(set_to_none=True)
        return loss_value

    def _inject_fault(self, step: int, loss: float) -> float:
        faults = self.config.fault_injection or {}
        if faults.get("out_of_memory_at_step") == step:
            raise torch.OutOfMemoryError(f"injected out-of-memory fault at step {step}")
        if faults.get("nan_loss_at_step") == step:
            return math.nan
        return loss

    def _record_validation(self, progress: Progress, metrics: dict[str, Any]) -> str | None:
        """Track the best validation loss; the stop reason once patience has run out."""
        cfg = self.config
        valid_loss = metrics["valid_loss"]
        best = progress.best_valid_loss
        if best is None or valid_loss < best - cfg.early_stopping_min_delta:
            progress.best_valid_loss, progress.best_valid_step = valid_loss, progress.step
            progress.evaluations_without_improvement = 0
            return None
        progress.evaluations_without_improvement += 1
        patience = cfg.early_stopping_patience
        if patience is None or progress.evaluations_without_improvement < patience:
            return None
        metrics["stop_reason"] = EARLY_STOPPING
        metrics["best_valid_loss"] = best
        metrics["best_valid_step"] = progress.best_valid_step
        self.reporter.event(
            f"Early stopping at step {progress.step}: the validation loss ({valid_loss:.4f}) has "
            f"not improved on its best ({best:.4f} at step {progress.best_valid_step}) by more "
            f"than {cfg.early_stopping_min_delta} for {patience} evaluation(s) in a row",
            data={
                "stop_reason": EARLY_STOPPING,
                "step": progress.step,
                "valid_loss": valid_loss,
                "best_valid_loss": best,
                "best_valid_step": progress.best_valid_step,
                "patience": patience,
                "min_delta": cfg.early_stopping_min_delta,
            },
        )
        return EARLY_STOPPING

    # ------------------------------------------------------------------ several ranks

    def _data_parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """`module` as the training forward goes through it: in DDP over the trained (LoRA)
        weights when there are several ranks. The frozen weights and the buffers are left out
        of DDP's start-up broadcast and gradient all-reduce: every rank loaded the same ones
        from disk."""
        if not self.world.is_distributed:
            return module
        frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
        frozen += [name for name, _ in module.named_buffers()]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, frozen)
        device_ids = [self.world.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)

    # ------------------------------------------------------------------ stop and resume

    def _stop_requested(self) -> bool:
        # Rank 0 asks; every rank must take the same decision or the others would hang.
        return any_rank(self.reporter.should_stop(), self.world, self.device)

    def _cancelled(self, progress: Progress) -> TrainResult:
        """A run stopped on request writes no adapter."""
        self.reporter.event(f"Training stopped on request before step {progress.step + 1}")
        return TrainResult(
            status="cancelled",
            trained_tokens=progress.trained_tokens,
            steps=progress.step,
            final_loss=progress.last_metrics.get("train_loss"),
        )

    def _setup_progress(self) -> Progress:
        """A fresh start, or the position of the newest checkpoint with everything it needs
        (weights, optimizer, schedule, RNG) put back."""
        progress = self._resume_progress()
        barrier(self.world)  # no rank starts before rank 0 is done cleaning up checkpoints/
        return progress

    def _resume_progress(self) -> Progress:
        root = self.config.checkpoints_root
        if self.world.is_main:
            remove_partial_checkpoints(root)
        checkpoint = latest_checkpoint(root) if self.config.resume else None
        if checkpoint is None:
            return Progress()
        saved = {"sharded": False, **checkpoint.progress}
        if {key: saved.get(key) for key in self._run_identity()} != self._run_identity():
            self.reporter.event(
                f"Checkpoint at step {checkpoint.step} was written by a different configuration "
                "(seed, data or batch size); training starts over.",
                level="warn",
            )
            if self.world.is_main:
                shutil.rmtree(root)
            return Progress()
        load_checkpoint(
            checkpoint,
            model=self._model,
            optimizer=self._optimizer,
            scheduler=self._lr_scheduler,
            sharded=self._sharded,
            is_main=self.world.is_main,
        )
        progress = Progress(**{f.name: saved[f.name] for f in fields(Progress)})
        self._resumed_from_step = progress.step
        self.reporter.event(
            f"Resumed from checkpoint at step {progress.step} (epoch {progress.epoch}, "
            f"{progress.batches_done} of {self._steps_in_epoch(progress.epoch)} batches done)",
            data={
                "resumed_from_step": progress.step,
                "epoch": progress.epoch,
                "batches_done_in_epoch": progress.batches_done,
            },
        )
        return progress

    def _run_identity(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed from (a sharded run
        writes its optimizer state in another layout)."""
        return {
            "data_seed": self.config.seed,
            "dataset_sha256": self.config.dataset_sha256,
            "total_steps": self._total_steps,
            "sharded": self._sharded,
        }

    @property
    def _sharded(self) -> bool:
        """The model is sharded over the ranks (FSDP): its adapter and optimizer state are
        gathered by every rank before rank 0 writes them."""
        return self.world.is_distributed and self.config.parallelism == "fsdp"

    def _save_checkpoint(self, progress: Progress) -> None:
        adapter_state = optimizer_state = None
        if self._sharded:  # gathered by every rank, written by rank 0
            adapter_state = full_trainable_state(self._model)
            optimizer_state = full_optimizer_state(self._model, self._optimizer)
        if self.world.is_main:
            self._write_checkpoint(progress, adapter_state, optimizer_state)
        barrier(self.world)  # every rank resumes from the same checkpoint

    def _write_checkpoint(
        self,
        progress: Progress,
        adapter_state: dict[str, torch.Tensor] | None = None,
        optimizer_state: dict[str, Any] | None = None,
    ) -> None:
        checkpoint = save_checkpoint(
            self.config.checkpoints_root,
            progress.step,
            model=self._model,
            optimizer=self._optimizer,
            scheduler=self._lr_scheduler,
            progress={**asdict(progress), **self._run_identity()},
            keep_last=self.config.keep_checkpoints,
            adapter_state=adapter_state,
            optimizer_state=optimizer_state,
        )
        self.reporter.checkpoint(progress.step, progress.last_metrics, str(checkpoint.path))

    # ------------------------------------------------------------------ the result

    def _finish(self, progress: Progress, stop_reason: str | None) -> TrainResult:
        final_loss = progress.last_metrics["train_loss"]
        manifest = None
        # Sharded: every rank gathers the adapter's weights, rank 0 writes them.
        adapter_state = full_trainable_state(self._model) if self._sharded else None
        if self.world.is_main:
            manifest = self._manifest(progress.trained_tokens, final_loss, stop_reason)
            self._save_adapter(self.config.adapter_dir, manifest, adapter_state)
        barrier(self.world)
        self.reporter.event(
            "Training complete"
            + (" (stopped early: validation loss stopped improving)" if stop_reason else ""),
            data={
                "steps": progress.step,
                "trained_tokens": progress.trained_tokens,
                "final_loss": final_loss,
                "stop_reason": stop_reason,
            },
        )
        return TrainResult(
            status="succeeded",
            trained_tokens=progress.trained_tokens,
            steps=progress.step,
            adapter_dir=self.config.adapter_dir,
            manifest=manifest,
            final_loss=final_loss,
            stop_reason=stop_reason,
            resumed_from_step=self._resumed_from_step,
        )

    def _save_adapter(
        self,
        target: Path,
        manifest: dict[str, Any] | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> None:
        save_adapter(self._model, target, manifest, state_dict=state_dict)

    def _manifest(
        self, trained_tokens: int, final_loss: float, stop_reason: str | None
    ) -> dict[str, Any]:
        raise NotImplementedError


class SFTRecipe(StepSchedule):
    """Under torchrun (world size > 1) every rank runs this recipe on its own device and its
    share of each global batch; rank 0 alone reports and writes checkpoints and the adapter."""

    config: TrainConfig

    def __init__(self, config: TrainConfig, reporter: Reporter, world: World | None = None):
        super().__init__(config, reporter, world or world_from_env())
        self._fast_path: dict[str, Any] | None = None  # what enable_fast_path chose

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        init_process_group(self.world)
        # Seeding first: LoRA's A matrices are initialised randomly in _setup_model.
        seed_everything(self.config.seed)
        self._tokenizer = self._setup_tokenizer()
        self._model = self._setup_model()
        self._forward_model = self._setup_data_parallel()
        self._train_data = self._setup_data(self.config.training_path, "training")
        self._valid_data = (
            self._setup_data(self.config.validation_path, "validation")
            if self.config.validation_path is not None
            else None
        )
        self._optimizer = self._setup_optimizer()
        self._lr_scheduler = self._setup_lr_scheduler()
        self._progress = self._setup_progress()
        self._is_set_up = True

    def _setup_tokenizer(self) -> PreTrainedTokenizerBase:
        require_base_model(self.config.base_model_path, self.config.base_model_id)
        return load_tokenizer(self.config.base_model_path)

    def _setup_model(self) -> PeftModel:
        cfg = self.config
        base, quantized_layers = self._load_base_model()
        refuse_embedding_targets(base, cfg.target_modules)
        base.config.use_cache = False  # the KV cache is for generation; training would only fill it
        # peft writes these into adapter_config.json and the model card: the platform's id is
        # portable, this machine's directory is not.
        base.name_or_path = base.config.name_or_path = cfg.base_model_id
        # Not peft.prepare_model_for_kbit_training: it upcasts every non-quantized weight to
        # float32 and turns on gradient checkpointing, both of which cost speed here and are
        # only needed to fit large models in little memory. Checkpointing is its own setting
        # (`gradient_checkpointing`): on by default on CUDA, where 8B-class models train.
        model = get_peft_model(base, self._lora_config())
        sort_target_modules(model)
        if self._gradient_checkpointing:
            base.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        if cfg.packing:
            self._fast_path = enable_fast_path(model, self.device, self.compute_dtype)
        trainable, total = model.get_nb_trainable_parameters()
        self.reporter.event(
            f"Model loaded ({trainable:,} trainable params of {total:,})",
            data={
                "trainable_params": trainable,
                "total_params": total,
                "quantized_layers": quantized_layers,
                "compute_dtype": dtype_name(self.compute_dtype),
                "device": self.device.type,
                "packing": cfg.packing,
                "fast_path": self._fast_path,
                "gradient_checkpointing": self._gradient_checkpointing,
            },
        )
        return model

    @property
    def _gradient_checkpointing(self) -> bool:
        setting = self.config.gradient_checkpointing
        return self.device.type == "cuda" if setting is None else setting

    def _setup_data_parallel(self) -> torch.nn.Module:
        """The model the training forward goes through: with several ranks, DDP over the LoRA
        weights (`_data_parallel`), or the whole model sharded (FSDP;
        worker/training/sharding.py)."""
        # The packed loss runs the decoder and head itself: DDP wraps it, not the model.
        module: torch.nn.Module = PackedLoss(self._model) if self.config.packing else self._model
        if self._sharded:
            return shard_model(module, self._decoder_layers())
        return self._data_parallel(module)

    def _decoder_layers(self) -> list[torch.nn.Module]:
        """The model's repeated blocks (what transformers never splits across devices)."""
        base = self._model.get_base_model()
        names = set(getattr(base, "_no_split_modules", None) or ())
        layers = [m for m in base.modules() if type(m).__name__ in names]
        if not layers:
            raise ValueError(f"{type(base).__name__} names no decoder layers to shard")
        return layers

    def _load_base_model(self) -> tuple[PreTrainedModel, int]:
        """The base model, and how many of its linear layers are 4-bit."""
        cfg = self.config
        self.reporter.event(
            f"Loading base model {cfg.base_model_id} ({cfg.quantization}, "
            f"{dtype_name(self.compute_dtype)} compute on {self.device.type})…"
        )
        return load_base_model(
            cfg.base_model_path,
            cfg.quantization,
            self.compute_dtype,
            self.device,
            shardable=self._sharded,
        )

    def _lora_config(self) -> LoraConfig:
        cfg = self.config
        return lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)

    def _setup_data(self, path: Path, name: str) -> ChatDataset:
        dataset = load_chat_dataset(path, self._tokenizer, self.config.max_seq_length)
        self.reporter.event(
            f"Dataset: {len(dataset)} examples, {dataset.total_tokens} tokens"
            + ("" if name == "training" else f" ({name})"),
            data={
                "dataset": name,
                "examples": len(dataset),
                "tokens": dataset.total_tokens,
                "trainable_tokens": dataset.trainable_tokens,
                "truncated_examples": dataset.truncated_examples,
                "skipped_lines": dataset.skipped_line_numbers,
            },
        )
        if dataset.skipped_line_numbers:
            self.reporter.event(
                f"Skipped {len(dataset.skipped_line_numbers)} {name} examples with nothing to "
                f"train on after truncation to {self.config.max_seq_length} tokens or weight 0 "
                f"(lines {dataset.skipped_line_numbers[:10]})",
                level="warn",
            )
        self._warn_if_sha256_differs(path, name)
        return dataset

    def _warn_if_sha256_differs(self, path: Path, name: str) -> None:
        expected = (
            self.config.dataset_sha256 if name == "training" else self.config.validation_sha256
        )
        if expected and sha256_of_file(path) != expected:
            self.reporter.event(
                f"The {name} file's sha256 differs from the one given in the config; "
                "the manifest records the given one",
                level="warn",
            )

    def _setup_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self._trainable_parameters(),
            lr=self.config.learning_rate,
            weight_decay=WEIGHT_DECAY,
            fused=self._fused_adamw or None,
        )

    @property
    def _fused_adamw(self) -> bool:
        """One kernel for the whole AdamW update instead of a dozen per parameter: the same
        arithmetic, part of the fast path on CUDA."""
        return self.config.packing and self.device.type == "cuda"

    def _plan_batches(
        self, order: list[int], examples: Sequence[Any] | None = None
    ) -> list[list[int]]:
        """batch_size examples a step, or as many as fit the token budget."""
        budget = self.config.max_tokens_per_batch
        if budget is None:
            return super()._plan_batches(order, examples)
        examples = self._train_data.examples if examples is None else examples
        lengths = [len(examples[i]) for i in order]
        return [[order[i] for i in step] for step in plan_token_budget_batches(lengths, budget)]

    # ------------------------------------------------------------------ training

    def _train_batch(self, indices: list[int], step: int) -> tuple[dict[str, float], int]:
        examples = [self._train_data.examples[i] for i in indices]
        tokens = sum(len(example) for example in examples)  # never padding
        return {"train_loss": self._train_step(examples, step)}, tokens

    def _train_step(self, examples: list[TokenizedExample], step: int) -> float:
        loss, loss_value = self._loss(examples)
        return self._update(loss, loss_value, step)

    def _loss(self, examples: list[TokenizedExample]) -> tuple[torch.Tensor, float]:
        """The loss to backpropagate, and the mean loss of the whole (global) batch."""
        if self.config.packing:
            return self._packed_loss(examples)
        return self._padded_loss(collate(examples, self._tokenizer.pad_token_id))

    def _packed_loss(self, examples: list[TokenizedExample]) -> tuple[torch.Tensor, float]:
        """This rank's examples packed into one row; its summed token losses over the global
        batch's trainable-token count, so the ranks' losses add up to the global mean (the
        padded path's loss, token for token). A rank left without examples (a last batch
        smaller than the world) trains on one with nothing to predict: it adds zero but
        still takes part in the gradient all-reduce."""
        denominator = max(sum(predicted_tokens_of(example) for example in examples), 1)
        share = balanced_shares([len(e) for e in examples], self.world.world_size)
        local = [examples[i] for i in share[self.world.rank]]
        batch = pack_examples(local or [without_targets(examples[0])]).to(self.device)
        loss = self._forward_model(batch, denominator)
        if not self.world.is_distributed:
            return loss, loss.item()
        [global_mean] = all_sum([loss.item()], self.world, self.device)
        # DDP averages the gradients over the ranks: scaled by the world size, the gradient
        # is the single-process one.
        return loss * self.world.world_size, global_mean

    def _padded_loss(self, batch: Batch) -> tuple[torch.Tensor, float]:
        if not self.world.is_distributed:
            batch = batch.to(self.device)
            # With labels, the model returns the mean cross-entropy over trainable (non -100)
            # tokens of the batch, computed in float32.
            loss = self._model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
            ).loss
            return loss, loss.item()
        local = shard(batch, self.world).to(self.device)
        # This rank's summed token losses over the global batch's token count: the ranks'
        # losses add up to the global mean. DDP averages the gradients over the ranks, so
        # scaling by the world size makes the gradient the single-process one.
        loss = self._forward_model(
            input_ids=local.input_ids,
            attention_mask=local.attention_mask,
            labels=local.labels,
            num_items_in_batch=predicted_tokens(batch),
        ).loss
        [global_mean] = all_sum([loss.item()], self.world, self.device)
        return loss * self.world.world_size, global_mean

    def _validation_metrics(self) -> dict[str, float]:
        return {"valid_loss": self._validation_loss()}

    @torch.no_grad()
    def _validation_loss(self) -> float:
        """Mean loss over every trainable validation token (not a mean of batch means)."""
        assert self._valid_data is not None
        # Only dropout is switched to eval. `model.eval()` would also put bitsandbytes'
        # Linear4bit layers in eval mode, and on CPUs with AVX512-BF16 their first no-grad
        # eval forward repacks the 4-bit weights for an inference kernel that has no backward:
        # training after the first validation would then get wrong gradients.
        dropouts = [m for m in self._model.modules() if isinstance(m, torch.nn.Dropout)]
        for module in dropouts:
            module.eval()
        total_loss, total_tokens = 0.0, 0
        examples = self._valid_data.examples
        plan = self._plan_batches(list(range(len(examples))), examples)
        world = self.world.world_size
        # Rank r takes batches r, r + world, ...; sharded, every rank must run as many
        # forwards as the others (each one gathers weights), so one short of a batch in the
        # last round runs one with nothing to predict.
        rounds = math.ceil(len(plan) / world) if self._sharded else None
        for index in range(self.world.rank, world * rounds if rounds else len(plan), world):
            if index >= len(plan):
                self._evaluation_loss([without_targets(examples[0])])
                continue
            loss, tokens = self._evaluation_loss([examples[i] for i in plan[index]])
            total_loss += loss * tokens
            total_tokens += tokens
        for module in dropouts:
            module.train()
        # Summed over the ranks, so every rank takes the same early-stopping decision.
        total_loss, all_tokens = all_sum([total_loss, total_tokens], self.world, self.device)
        return total_loss / all_tokens

    def _evaluation_loss(self, examples: list[TokenizedExample]) -> tuple[float, int]:
        """Mean loss of `examples` and the number of tokens it is taken over. Through the
        training forward's module: a sharded model gathers its weights there."""
        if self.config.packing:
            packed = pack_examples(examples).to(self.device)
            loss = self._forward_model(packed, max(packed.trainable_tokens, 1))
            return loss.item(), packed.trainable_tokens
        batch = collate(examples, self._tokenizer.pad_token_id).to(self.device)
        padded_loss = self._forward_model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
        ).loss
        return padded_loss.item(), batch.trainable_tokens

    def _manifest(
        self, trained_tokens: int, final_loss: float, stop_reason: str | None
    ) -> dict[str, Any]:
        cfg = self.config
        return build_manifest(
            seed=cfg.seed,
            base_model_id=cfg.base_model_id,
            base_model_path=cfg.base_model_path,
            dataset_sha256=cfg.dataset_sha256,
            validation_sha256=cfg.validation_sha256,
            data=cfg.data_preparation,
            hyperparameters=self._hyperparameters(),
            chat_template=self._tokenizer.chat_template,
            trained_tokens=trained_tokens,
            final_train_loss=final_loss,
            stop_reason=stop_reason,
        )

    def _hyperparameters(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "n_epochs": cfg.n_epochs,
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            "target_modules": cfg.target_modules,
            "max_seq_length": cfg.max_seq_length,
            "quantization": cfg.quantization,
            "n_gpus": self.world.world_size,
            "parallelism": cfg.parallelism if self.world.is_distributed else None,
            "compute_dtype": dtype_name(self.compute_dtype),
            "packing": cfg.packing,
            "max_tokens_per_batch": cfg.max_tokens_per_batch,
            "fast_path": self._fast_path,
            "gradient_checkpointing": self._gradient_checkpointing,
            "optimizer": "adamw_fused" if self._fused_adamw else "adamw",
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_GRAD_NORM,
            "lr_schedule": "linear_warmup_cosine",
            "warmup_steps": self._warmup_steps,
            "total_steps": self._total_steps,
            "checkpoint_every_steps": cfg.checkpoint_every_steps,
            "eval_every_steps": cfg.eval_every_steps,
            "early_stopping_patience": cfg.early_stopping_patience,
            "early_stopping_min_delta": cfg.early_stopping_min_delta,
        }


# ---------------------------------------------------------------------- helpers


def choose_compute_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the hardware does bfloat16 math natively, else float32. On CPU, bfloat16
    without AVX512-BF16/AMX is emulated and slower than float32; with them, QLoRA on
    SmolLM2-135M measured 1.3-1.6x more tokens per CPU-second than float32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_native_bfloat16() else torch.float32


def cpu_has_native_bfloat16() -> bool:
    # Private torch helpers (stable since 2.2); treat their absence as "no".
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(seed % 2**32)


def predicted_tokens_of(example: TokenizedExample) -> int:
    """Tokens of `example` the causal-LM loss is taken over: its labels but the first (no
    token precedes it), less the ignored ones."""
    return sum(label != IGNORE_INDEX for label in example.labels[1:])


def without_targets(example: TokenizedExample) -> TokenizedExample:
    """The same tokens with nothing to predict."""
    return TokenizedExample(
        input_ids=example.input_ids,
        labels=[IGNORE_INDEX] * len(example.labels),
        line_number=example.line_number,
        truncated=example.truncated,
    )


def warmup_cosine_multiplier(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier for optimizer step `step` (0-based): linear warmup to 1 over
    `warmup_steps`, then cosine decay towards 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def ensure_finite_loss(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise LossDiverged(
            f"The training loss diverged to {loss} at step {step}; try a lower "
            "learning_rate_multiplier or check the data."
        )


def sort_target_modules(model: PeftModel) -> None:
    """peft resolves "all-linear" to a set, which adapter_config.json would list in a different
    order on every run; sorted, the same training gives the same file."""
    config = model.peft_config["default"]
    if isinstance(config, LoraConfig) and isinstance(config.target_modules, set):
        config.target_modules = sorted(config.target_modules)


def refuse_embedding_targets(model: PreTrainedModel, target_modules: list[str] | str) -> None:
    """vLLM serves adapters on linear layers only; refuse LoRA on the (tied) embeddings."""
    if isinstance(target_modules, str):
        return  # peft's "all-linear" already leaves the output layer out
    embeddings = {model.get_input_embeddings(), model.get_output_embeddings()}
    embedding_names = {
        name.rsplit(".", 1)[-1] for name, module in model.named_modules() if module in embeddings
    }
    refused = sorted(embedding_names & set(target_modules))
    if refused:
        raise ValueError(f"target_modules may not include embedding layers: {refused}")
