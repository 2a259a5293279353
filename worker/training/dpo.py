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

Output layout, checkpoints, resume, validation and early stopping are the SFT recipe's
(`StepSchedule`): `adapter/` (with manifest.json) and `checkpoints/step-N/` every
`checkpoint_every_steps` steps and at the end of each epoch, each the policy adapter plus its
optimizer, schedule, RNG and data position (worker/training/checkpoint.py). A run that finds one
resumes from the newest; the reference is not in it: setup rebuilds it as before (the base
model, or the initial adapter loaded again). The validation loss (every `eval_every_steps` and
at each epoch end) is the DPO loss over every validation pair; `early_stopping_patience` stops
on it as it does on the supervised loss.

Under torchrun (several GPUs) every rank holds the whole model, walks the same global batches
of `batch_size` pairs and scores every world_size-th pair of each; DDP sums the policy
adapter's gradients. The reference pass runs on the plain model, outside DDP and without
gradients. Rank 0 alone reports and writes checkpoints and the adapter.
"""

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from worker.training.data import IGNORE_INDEX
from worker.training.distributed import (
    World,
    all_sum,
    init_process_group,
    world_from_env,
)
from worker.training.lora import (
    load_base_model,
    load_tokenizer,
    lora_config,
    require_base_model,
)
from worker.training.manifest import build_manifest, sha256_of_file
from worker.training.preference_data import (
    PairBatch,
    PreferenceDataset,
    PreferencePair,
    iter_pair_batches,
    load_preference_dataset,
    pair_batch,
)
from worker.training.recipe import (
    MAX_GRAD_NORM,
    WEIGHT_DECAY,
    Reporter,
    StepSchedule,
    TrainConfig,
    dtype_name,
    refuse_embedding_targets,
    seed_everything,
    sort_target_modules,
)

POLICY_ADAPTER = "default"  # peft's name for the first adapter; the one that is saved
REFERENCE_ADAPTER = "reference"
PAIR_SUMS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


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
        if self.parallelism != "ddp":
            raise ValueError(
                "invalid training config: preference tuning (dpo) runs data parallel; "
                "parallelism must be 'ddp'"
            )


@dataclass(frozen=True)
class DPOLoss:
    losses: torch.Tensor  # (pairs,) each pair's loss; carries the gradient
    chosen_rewards: torch.Tensor  # (pairs,) beta * (log pi(y_w|x) - log pi_ref(y_w|x)), detached
    rejected_rewards: torch.Tensor  # (pairs,) the same for the rejected reply

    @property
    def loss(self) -> torch.Tensor:
        """The mean over the pairs."""
        return self.losses.mean()

    def sums(self) -> list[float]:
        """Loss, chosen and rejected rewards, correctly ordered pairs and margins, each summed
        over the pairs: what ranks add up into the means of a batch they share."""
        margins = self.chosen_rewards - self.rejected_rewards
        return [
            self.losses.detach().sum().item(),
            self.chosen_rewards.sum().item(),
            self.rejected_rewards.sum().item(),
            (margins > 0).sum().item(),
            margins.sum().item(),
        ]

    def metrics(self, prefix: str = "") -> dict[str, float]:
        return pair_metrics(self.sums(), len(self.losses), prefix)


def pair_metrics(sums: Sequence[float], pairs: int, prefix: str = "") -> dict[str, float]:
    """The means of `DPOLoss.sums()` over `pairs` pairs, named as reported: "train_loss"
    (prefix "") or "valid_loss" (prefix "valid_"), then the rewards."""
    loss, chosen, rejected, correct, margins = (value / pairs for value in sums)
    return {
        f"{prefix or 'train_'}loss": loss,
        f"{prefix}rewards/chosen": chosen,
        f"{prefix}rewards/rejected": rejected,
        f"{prefix}rewards/accuracies": correct,
        f"{prefix}rewards/margins": margins,
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
    return DPOLoss(losses, chosen_rewards.detach(), rejected_rewards.detach())


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
    """Under torchrun (world size > 1) every rank runs this recipe on its own device and its
    share of each global batch of pairs; rank 0 alone reports and writes checkpoints and the
    adapter."""

    config: DPOConfig

    def __init__(self, config: DPOConfig, reporter: Reporter, world: World | None = None):
        super().__init__(config, reporter, world or world_from_env())

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        init_process_group(self.world)
        # Seeding first: LoRA's A matrices are initialised randomly in _setup_model.
        seed_everything(self.config.seed)
        self._tokenizer = self._setup_tokenizer()
        self._model = self._setup_model()
        # The policy forward of a training step; the reference pass and validation go through
        # the plain model, without gradients.
        self._forward_model = self._data_parallel(self._model)
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

    def _train_batch(self, indices: list[int], step: int) -> tuple[dict[str, float], int]:
        pairs = [self._train_data.pairs[i] for i in indices]
        loss, metrics = self._loss(pairs)
        metrics["train_loss"] = self._update(loss, metrics["train_loss"], step)
        return metrics, sum(pair.total_tokens for pair in pairs)  # never padding

    def _loss(self, pairs: list[PreferencePair]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to backpropagate, and the global batch's mean loss and rewards. Each rank
        scores its pairs (every world_size-th one): their summed losses over the global
        batch's pair count, so the ranks' losses add up to the batch mean; DDP averages the
        gradients over the ranks, so scaled by the world size the gradient is the
        single-process one. A rank left without pairs (a last batch smaller than the world)
        scores the batch's first pair with weight zero: it adds nothing but still runs DDP's
        forward and takes part in the gradient all-reduce."""
        world = self.world
        local = pairs[world.rank :: world.world_size]
        weight = 1.0 if local else 0.0
        batch = pair_batch(local or pairs[:1], self._tokenizer.pad_token_id).to(self.device)
        out = self._pair_loss(batch, self._forward_model)
        loss = out.losses.sum() * (weight / len(pairs))
        sums = all_sum([value * weight for value in out.sums()], world, self.device)
        return loss * world.world_size, pair_metrics(sums, len(pairs))

    def _pair_loss(self, batch: PairBatch, policy: torch.nn.Module) -> DPOLoss:
        """The DPO loss of every pair of `batch`, its policy pass through `policy` (the model,
        or DDP around it)."""
        with torch.no_grad(), self._reference():
            reference = self._sequence_logps(batch, self._model)
        logps = self._sequence_logps(batch, policy)
        n = batch.n_pairs
        return dpo_loss(logps[:n], logps[n:], reference[:n], reference[n:], self.config.beta)

    @staticmethod
    def _sequence_logps(batch: PairBatch, model: torch.nn.Module) -> torch.Tensor:
        sequences = batch.sequences
        logits = model(
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
        """DPO loss and rewards over every validation pair. The batches are shared out among
        the ranks and their sums added up, so every rank takes the same early-stopping
        decision."""
        assert self._valid_data is not None
        sums = [0.0] * len(PAIR_SUMS)
        batches = iter_pair_batches(
            self._valid_data.pairs, self.config.batch_size, self._tokenizer.pad_token_id
        )
        with dropout_disabled(self._model):
            for index, batch in enumerate(batches):
                if index % self.world.world_size != self.world.rank:
                    continue  # another rank's share
                out = self._pair_loss(batch.to(self.device), self._model)
                sums = [total + value for total, value in zip(sums, out.sums(), strict=True)]
        sums = all_sum(sums, self.world, self.device)
        return pair_metrics(sums, len(self._valid_data), prefix="valid_")

    def _manifest(
        self, trained_tokens: int, final_loss: float, stop_reason: str | None
    ) -> dict[str, Any]:
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
            stop_reason=stop_reason,
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
            "n_gpus": self.world.world_size,
            "compute_dtype": dtype_name(self.compute_dtype),
            "optimizer": "adamw",
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
