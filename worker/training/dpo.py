"""Direct preference optimisation (DPO) of a LoRA adapter on preference pairs (QLoRA when
quantization is "nf4"), in the same shape as the SFT recipe:

    recipe = DPORecipe(DPOConfig.from_dict(config), reporter)
    recipe.setup()
    result = recipe.train()

The policy is the base model plus a trainable LoRA adapter; the reference it is held against is
the same model as it was before training:

- from the base model, the policy with its adapter switched off (peft's `disable_adapter()`):
  no second model;
- from an existing adapter (`init_adapter_path`, e.g. an SFT result), that adapter is loaded
  twice into the one model: as the trainable "default" adapter and as a frozen "reference" copy
  that the reference pass switches to. The copy costs the adapter's few MB. Merging the adapter
  into the base weights for the reference was not chosen: merging into 4-bit weights
  re-quantizes them (the reference would drift from what was served), and the policy must stay
  base + adapter anyway so that vLLM can serve the result on the shared base model.

Output layout, checkpoints and resume are the SFT recipe's (`StepSchedule`): `adapter/` (with
manifest.json) and `checkpoints/step-N/` every `checkpoint_every_steps` steps and at the end of
each epoch, each the policy adapter plus its optimizer, schedule, RNG and data position
(worker/training/checkpoint.py). A run that finds one resumes from the newest; the reference is
not in it: setup rebuilds it as before (the base model, or the initial adapter loaded again).
"""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from worker.training.data import IGNORE_INDEX
from worker.training.distributed import World
from worker.training.lora import (
    load_base_model,
    load_tokenizer,
    lora_config,
    require_base_model,
    save_adapter,
)
from worker.training.manifest import build_manifest, sha256_of_file
from worker.training.preference_data import (
    PairBatch,
    PreferenceDataset,
    iter_pair_batches,
    load_preference_dataset,
    pair_batch,
)
from worker.training.recipe import (
    MAX_GRAD_NORM,
    WEIGHT_DECAY,
    Progress,
    Reporter,
    StepSchedule,
    TrainConfig,
    TrainResult,
    dtype_name,
    ensure_finite_loss,
    refuse_embedding_targets,
    seed_everything,
    sort_target_modules,
)

POLICY_ADAPTER = "default"  # peft's name for the first adapter; the one that is saved
REFERENCE_ADAPTER = "reference"


@dataclass
class DPOConfig(TrainConfig):
    beta: float = 0.1
    # Preference pairs train on padded batches, the plain transformers + peft way.
    packing: bool = False
    # Start from this adapter (peft format) instead of a fresh LoRA; its LoRA shape wins over
    # lora_r / lora_alpha / lora_dropout / target_modules.
    init_adapter_path: Path | None = None
    init_adapter_id: str | None = None  # the platform's name for it; recorded in the manifest

    def __post_init__(self) -> None:
        if self.init_adapter_path is not None:
            self.init_adapter_path = Path(self.init_adapter_path)
        super().__post_init__()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DPOConfig":
        config = super().from_dict(data)
        assert isinstance(config, DPOConfig)
        return config

    def _validate(self) -> None:
        super()._validate()
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise ValueError("invalid training config: beta must be a positive number")
        if self.packing or self.gradient_checkpointing:
            raise ValueError(
                "invalid training config: preference tuning (dpo) trains padded batches without "
                "gradient checkpointing; packing and gradient_checkpointing must be off"
            )


@dataclass(frozen=True)
class DPOLoss:
    loss: torch.Tensor  # mean over the pairs; carries the gradient
    chosen_rewards: torch.Tensor  # (pairs,) beta * (log pi(y_w|x) - log pi_ref(y_w|x)), detached
    rejected_rewards: torch.Tensor  # (pairs,) the same for the rejected reply

    def metrics(self, prefix: str = "") -> dict[str, float]:
        margins = self.chosen_rewards - self.rejected_rewards
        return {
            f"{prefix}rewards/chosen": self.chosen_rewards.mean().item(),
            f"{prefix}rewards/rejected": self.rejected_rewards.mean().item(),
            f"{prefix}rewards/accuracies": (margins > 0).float().mean().item(),
            f"{prefix}rewards/margins": margins.mean().item(),
        }


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> DPOLoss:
    """The sigmoid DPO loss (Rafailov et al., 2023) from per-sequence log-probabilities:
    -log sigmoid(beta * ((log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))))."""
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
    return DPOLoss(losses.mean(), chosen_rewards.detach(), rejected_rewards.detach())


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sequence, the summed log-probability of its labelled tokens (IGNORE_INDEX skipped).
    logits (n, T, vocab) at position t predict labels at t + 1."""
    targets = labels[:, 1:]
    token_nll = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2),  # (n, vocab, T-1), computed in float32
        targets,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return -token_nll.sum(dim=-1)


class DPORecipe(StepSchedule):
    """One process on one device (rank 0 of 1)."""

    config: DPOConfig

    def __init__(self, config: DPOConfig, reporter: Reporter):
        super().__init__(config, reporter, World())

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        # Seeding first: LoRA's A matrices are initialised randomly in _setup_model.
        seed_everything(self.config.seed)
        self._tokenizer = self._setup_tokenizer()
        self._model = self._setup_model()
        self._train_data = self._setup_data(self.config.training_path, "training")
        self._valid_data = (
            self._setup_data(self.config.validation_path, "validation")
            if self.config.validation_path is not None
            else None
        )
        self._optimizer = self._setup_optimizer()
        self._lr_scheduler = self._setup_lr_scheduler()
        # After the model, optimizer and schedule exist: a checkpoint puts their state back.
        self._progress = self._setup_progress()
        self._is_set_up = True

    def _setup_tokenizer(self) -> PreTrainedTokenizerBase:
        require_base_model(self.config.base_model_path, self.config.base_model_id)
        return load_tokenizer(self.config.base_model_path)

    def _setup_model(self) -> PeftModel:
        cfg = self.config
        self.reporter.event(
            f"Loading base model {cfg.base_model_id} ({cfg.quantization}, "
            f"{dtype_name(self.compute_dtype)} compute on {self.device.type})…"
        )
        base, quantized_layers = load_base_model(
            cfg.base_model_path, cfg.quantization, self.compute_dtype, self.device
        )
        base.config.use_cache = False  # the KV cache is for generation; training would only fill it
        # The platform's id goes into adapter_config.json, not this machine's directory.
        base.name_or_path = base.config.name_or_path = cfg.base_model_id
        model = self._policy(base)
        trainable, total = model.get_nb_trainable_parameters()
        self.reporter.event(
            f"Model loaded ({trainable:,} trainable params of {total:,}); reference: "
            + ("the initial adapter, frozen" if self._has_reference_adapter else "the base model"),
            data={
                "trainable_params": trainable,
                "total_params": total,
                "quantized_layers": quantized_layers,
                "compute_dtype": dtype_name(self.compute_dtype),
                "device": self.device.type,
                "init_adapter": cfg.init_adapter_id,
            },
        )
        return model

    def _policy(self, base: PreTrainedModel) -> PeftModel:
        cfg = self.config
        if cfg.init_adapter_path is None:
            refuse_embedding_targets(base, cfg.target_modules)
            fresh: PeftModel = get_peft_model(
                base, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)
            )
            sort_target_modules(fresh)
            return fresh
        model = PeftModel.from_pretrained(
            base, str(cfg.init_adapter_path), adapter_name=POLICY_ADAPTER, is_trainable=True
        )
        model.load_adapter(
            str(cfg.init_adapter_path), adapter_name=REFERENCE_ADAPTER, is_trainable=False
        )
        model.set_adapter(POLICY_ADAPTER)
        sort_target_modules(model)
        return model

    @property
    def _has_reference_adapter(self) -> bool:
        return self.config.init_adapter_path is not None

    def _setup_data(self, path: Path, name: str) -> PreferenceDataset:
        dataset = load_preference_dataset(path, self._tokenizer, self.config.max_seq_length)
        self.reporter.event(
            f"Dataset: {len(dataset)} preference pairs, {dataset.total_tokens} tokens"
            + ("" if name == "training" else f" ({name})"),
            data={
                "dataset": name,
                "pairs": len(dataset),
                "tokens": dataset.total_tokens,
                "truncated_examples": dataset.truncated_examples,
                "skipped_lines": dataset.skipped_line_numbers,
            },
        )
        if dataset.skipped_line_numbers:
            self.reporter.event(
                f"Skipped {len(dataset.skipped_line_numbers)} {name} pairs with a reply "
                f"truncated away at {self.config.max_seq_length} tokens "
                f"(lines {dataset.skipped_line_numbers[:10]})",
                level="warn",
            )
        expected = (
            self.config.dataset_sha256 if name == "training" else self.config.validation_sha256
        )
        if expected and sha256_of_file(path) != expected:
            self.reporter.event(
                f"The {name} file's sha256 differs from the one given in the config; "
                "the manifest records the given one",
                level="warn",
            )
        return dataset

    # ------------------------------------------------------------------ training

    def train(self) -> TrainResult:
        if not self._is_set_up:
            raise RuntimeError("call setup() before train()")
        cfg = self.config
        progress = self._progress
        self._model.train()
        while progress.epoch <= cfg.n_epochs:
            if progress.batches_done == 0:
                self.reporter.event(f"Epoch {progress.epoch}/{cfg.n_epochs}")
            # The pair order depends on the seed and epoch alone, so a resumed epoch sees the
            # same one and goes on after the batches it had done.
            plan = self._epoch_plan(progress.epoch)
            for indices in plan[progress.batches_done :]:
                if self._stop_requested():
                    return self._cancelled(progress)
                metrics = self._step(indices, progress)
                end_of_epoch = progress.batches_done == len(plan)
                if end_of_epoch and self._valid_data is not None:
                    metrics.update(self._validation_metrics())
                self.reporter.metrics(metrics)
                progress.last_metrics = metrics
                if end_of_epoch:
                    progress.epoch, progress.batches_done = progress.epoch + 1, 0
                if end_of_epoch or progress.step % cfg.checkpoint_every_steps == 0:
                    self._save_checkpoint(progress)
        return self._finish(progress)

    def _step(self, indices: list[int], progress: Progress) -> dict[str, Any]:
        pairs = self._train_data.pairs
        batch = pair_batch([pairs[i] for i in indices], self._tokenizer.pad_token_id)
        learning_rate = self._optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        step_metrics = self._train_step(batch, progress.step + 1)
        elapsed = time.perf_counter() - started
        tokens = batch.sequences.non_pad_tokens
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

    def _train_step(self, batch: PairBatch, step: int) -> dict[str, float]:
        batch = batch.to(self.device)
        out = self._loss(batch)
        loss_value = out.loss.item()
        ensure_finite_loss(loss_value, step)  # before backward: no update from a NaN loss
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self._trainable_parameters(), MAX_GRAD_NORM)
        self._optimizer.step()
        self._lr_scheduler.step()
        self._optimizer.zero_grad(set_to_none=True)
        return {"train_loss": loss_value, **out.metrics()}

    def _loss(self, batch: PairBatch) -> DPOLoss:
        with torch.no_grad(), self._reference():
            reference = self._sequence_logps(batch)
        policy = self._sequence_logps(batch)
        n = batch.n_pairs
        return dpo_loss(policy[:n], policy[n:], reference[:n], reference[n:], self.config.beta)

    def _sequence_logps(self, batch: PairBatch) -> torch.Tensor:
        sequences = batch.sequences
        logits = self._model(
            input_ids=sequences.input_ids, attention_mask=sequences.attention_mask
        ).logits
        return sequence_logps(logits, sequences.labels)

    @contextmanager
    def _reference(self) -> Iterator[None]:
        """The model as the reference policy: without the training's LoRA updates, no dropout."""
        with dropout_disabled(self._model):
            if not self._has_reference_adapter:
                with self._model.disable_adapter():
                    yield
                return
            # inference_mode=True keeps both adapters frozen while the copy is active; switching
            # back makes the policy adapter trainable again (the optimizer holds its tensors).
            self._model.set_adapter(REFERENCE_ADAPTER, inference_mode=True)
            try:
                yield
            finally:
                self._model.set_adapter(POLICY_ADAPTER)

    @torch.no_grad()
    def _validation_metrics(self) -> dict[str, float]:
        """DPO loss and rewards over every validation pair."""
        assert self._valid_data is not None
        outputs = []
        with dropout_disabled(self._model):
            for batch in iter_pair_batches(
                self._valid_data.pairs, self.config.batch_size, self._tokenizer.pad_token_id
            ):
                outputs.append(self._loss(batch.to(self.device)))
        pooled = DPOLoss(
            loss=torch.stack([o.loss * len(o.chosen_rewards) for o in outputs]).sum()
            / len(self._valid_data),
            chosen_rewards=torch.cat([o.chosen_rewards for o in outputs]),
            rejected_rewards=torch.cat([o.rejected_rewards for o in outputs]),
        )
        return {"valid_loss": pooled.loss.item(), **pooled.metrics(prefix="valid_")}

    def _finish(self, progress: Progress) -> TrainResult:
        final_loss = progress.last_metrics["train_loss"]
        manifest = self._manifest(progress.trained_tokens, final_loss)
        save_adapter(self._model, self.config.adapter_dir, manifest, adapter_name=POLICY_ADAPTER)
        self.reporter.event(
            "Training complete",
            data={
                "steps": progress.step,
                "trained_tokens": progress.trained_tokens,
                "final_loss": final_loss,
            },
        )
        return TrainResult(
            status="succeeded",
            trained_tokens=progress.trained_tokens,
            steps=progress.step,
            adapter_dir=self.config.adapter_dir,
            manifest=manifest,
            final_loss=final_loss,
            resumed_from_step=self._resumed_from_step,
        )

    def _manifest(self, trained_tokens: int, final_loss: float) -> dict[str, Any]:
        cfg = self.config
        manifest = build_manifest(
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
            method="dpo",
        )
        manifest["init_adapter"] = cfg.init_adapter_id
        return manifest

    def _hyperparameters(self) -> dict[str, Any]:
        cfg = self.config
        # The LoRA shape as trained: an initial adapter brings its own.
        lora = self._model.peft_config[POLICY_ADAPTER]
        assert isinstance(lora, LoraConfig)
        return {
            "beta": cfg.beta,
            "loss": "sigmoid",
            "reference": "initial_adapter" if self._has_reference_adapter else "base_model",
            "n_epochs": cfg.n_epochs,
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "lora_r": lora.r,
            "lora_alpha": lora.lora_alpha,
            "lora_dropout": lora.lora_dropout,
            "target_modules": lora.target_modules,  # sorted by sort_target_modules
            "max_seq_length": cfg.max_seq_length,
            "quantization": cfg.quantization,
            "compute_dtype": dtype_name(self.compute_dtype),
            "optimizer": "adamw",
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_GRAD_NORM,
            "lr_schedule": "linear_warmup_cosine",
            "warmup_steps": self._warmup_steps,
            "total_steps": self._total_steps,
            "checkpoint_every_steps": cfg.checkpoint_every_steps,
        }


@contextmanager
def dropout_disabled(model: torch.nn.Module) -> Iterator[None]:
    """Dropout off, and nothing else: `model.eval()` would also put bitsandbytes' Linear4bit
    layers in eval mode, which on CPUs with AVX512-BF16 repacks the 4-bit weights for an
    inference kernel that has no backward (see SFTRecipe._validation_loss)."""
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.training]
    for module in dropouts:
        module.eval()
    try:
        yield
    finally:
        for module in dropouts:
            module.train()
