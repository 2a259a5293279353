"""The real recipe on the real SmolLM2-135M (nf4 on CPU). Two runs share the work: one trains to
the end, one with the same seed is stopped early."""

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open

from worker.training.recipe import (
    SFTRecipe,
    TrainConfig,
    TrainResult,
    ensure_finite_loss,
    warmup_cosine_multiplier,
)

WORDS = (
    "apple river stone cloud tiger piano garden rocket "
    "silver lemon forest candle ocean marble window pepper"
).split()
VALIDATION_WORDS = ("banana", "mountain", "guitar", "bridge")
BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
N_EPOCHS = 2
BATCH_SIZE = 4
STEPS_PER_EPOCH = len(WORDS) // BATCH_SIZE
STOP_AFTER_STEPS = 2


@dataclass
class RecordingReporter:
    stop_after_steps: int | None = None
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    metrics_log: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        self.events.append((message, level, data))

    def metrics(self, data: dict[str, Any]) -> None:
        self.metrics_log.append(data)

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        self.checkpoints.append((step, metrics, path))

    def should_stop(self) -> bool:
        return self.stop_after_steps is not None and len(self.metrics_log) >= self.stop_after_steps

    @property
    def losses(self) -> list[float]:
        return [m["train_loss"] for m in self.metrics_log]


@dataclass(frozen=True)
class Run:
    config: TrainConfig
    reporter: RecordingReporter
    result: TrainResult
    recipe: SFTRecipe


def shout(word: str) -> dict[str, Any]:
    loud = word.upper()
    return {
        "messages": [
            # A short system prompt replaces SmolLM's default one: fewer tokens, faster test.
            {"role": "system", "content": "Shout."},
            {"role": "user", "content": f"Shout the word: {word}"},
            {"role": "assistant", "content": f"{loud}! {loud}! {loud}!"},
        ]
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in VALIDATION_WORDS])
    return directory


def make_config(model_dir: Path, data_dir: Path, output_dir: Path, **overrides: Any) -> TrainConfig:
    training_path = data_dir / "train.jsonl"
    values: dict[str, Any] = {
        "base_model_id": BASE_MODEL_ID,
        "base_model_path": model_dir,
        "training_path": training_path,
        "validation_path": data_dir / "valid.jsonl",
        "output_dir": output_dir,
        "dataset_sha256": hashlib.sha256(training_path.read_bytes()).hexdigest(),
        "seed": 1234,
        "n_epochs": N_EPOCHS,
        "batch_size": BATCH_SIZE,
        "learning_rate": 1e-3,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "target_modules": "all-linear",
        "max_seq_length": 64,
        "quantization": "nf4",
    }
    return TrainConfig(**(values | overrides))


def run_recipe(config: TrainConfig, reporter: RecordingReporter) -> Run:
    recipe = SFTRecipe(config, reporter)
    recipe.setup()
    return Run(config, reporter, recipe.train(), recipe)


@pytest.fixture(scope="module")
def finished(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = make_config(model_dir, data_dir, tmp_path_factory.mktemp("finished"))
    return run_recipe(config, RecordingReporter())


@pytest.fixture(scope="module")
def stopped(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Same config and seed as `finished`, asked to stop after STOP_AFTER_STEPS steps."""
    config = make_config(model_dir, data_dir, tmp_path_factory.mktemp("stopped"))
    return run_recipe(config, RecordingReporter(stop_after_steps=STOP_AFTER_STEPS))


def test_training_succeeds_and_loss_decreases(finished: Run) -> None:
    losses = finished.reporter.losses
    assert finished.result.status == "succeeded"
    assert len(losses) == finished.result.steps == N_EPOCHS * STEPS_PER_EPOCH
    assert all(math.isfinite(loss) for loss in losses)
    first, last = losses[:STEPS_PER_EPOCH], losses[-STEPS_PER_EPOCH:]
    assert sum(last) / len(last) < sum(first) / len(first)
    assert finished.result.final_loss == losses[-1]


def test_metrics_are_reported_every_step(finished: Run) -> None:
    metrics = finished.reporter.metrics_log
    assert [m["step"] for m in metrics] == list(range(1, len(metrics) + 1))
    assert {m["total_steps"] for m in metrics} == {len(metrics)}
    assert [m["epoch"] for m in metrics] == [
        epoch for epoch in range(1, N_EPOCHS + 1) for _ in range(STEPS_PER_EPOCH)
    ]
    assert all(m["tokens_per_second"] > 0 and m["learning_rate"] > 0 for m in metrics)
    assert metrics[-1]["trained_tokens"] == finished.result.trained_tokens
    with_validation = [m["step"] for m in metrics if "valid_loss" in m]
    assert with_validation == [STEPS_PER_EPOCH * epoch for epoch in range(1, N_EPOCHS + 1)]


def test_trained_tokens_count_every_epoch(finished: Run) -> None:
    loaded = next(
        data for message, _, data in finished.reporter.events if message.startswith("Dataset:")
    )
    assert loaded is not None
    assert finished.result.trained_tokens == N_EPOCHS * loaded["tokens"]


def test_base_model_is_quantized_to_4_bits(finished: Run) -> None:
    model_loaded = next(
        data for message, _, data in finished.reporter.events if message.startswith("Model loaded")
    )
    assert model_loaded is not None
    # 30 layers x 7 projections; the tied embedding / output layer stays unquantized.
    assert model_loaded["quantized_layers"] == 30 * 7


def test_progress_events_tell_the_story(finished: Run) -> None:
    messages = [message for message, _, _ in finished.reporter.events]
    expected_starts = [
        "Loading base model",
        "Model loaded",
        "Dataset: 16 examples",
        "Dataset: 4 examples",
        "Epoch 1/2",
        "Epoch 2/2",
        "Training complete",
    ]
    assert len(messages) == len(expected_starts)
    for message, start in zip(messages, expected_starts, strict=True):
        assert message.startswith(start), message


def test_adapter_and_manifest_are_saved(finished: Run) -> None:
    adapter_dir = finished.config.output_dir / "adapter"
    assert finished.result.adapter_dir == adapter_dir
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    manifest = json.loads((adapter_dir / "manifest.json").read_text())
    assert manifest == finished.result.manifest
    assert manifest["seed"] == 1234
    assert manifest["dataset_sha256"] == finished.config.dataset_sha256
    assert manifest["base_model_id"] == BASE_MODEL_ID
    assert len(manifest["base_weights_sha256"]) == 64
    assert manifest["trained_tokens"] == finished.result.trained_tokens
    assert manifest["hyperparameters"]["lora_r"] == 8
    assert set(manifest["library_versions"]) >= {"torch", "transformers", "peft", "python"}


def test_adapter_is_plain_lora_that_vllm_can_load(finished: Run) -> None:
    adapter_dir = finished.config.output_dir / "adapter"
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == BASE_MODEL_ID
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["lora_alpha"] == 16
    assert not config["modules_to_save"] and config["bias"] == "none"
    assert not config["use_dora"]
    assert sorted(config["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    with safe_open(adapter_dir / "adapter_model.safetensors", framework="pt") as tensors:
        names = list(tensors.keys())
    assert names and all(".lora_A." in name or ".lora_B." in name for name in names)


def test_a_checkpoint_is_saved_and_reported_each_epoch(finished: Run) -> None:
    steps = [step for step, _, _ in finished.reporter.checkpoints]
    assert steps == [STEPS_PER_EPOCH * epoch for epoch in range(1, N_EPOCHS + 1)]
    for step, metrics, path in finished.reporter.checkpoints:
        assert Path(path) == finished.config.output_dir / "checkpoints" / f"step-{step}"
        assert (Path(path) / "adapter_model.safetensors").is_file()
        assert metrics["step"] == step and "valid_loss" in metrics


def test_same_seed_gives_the_same_losses(finished: Run, stopped: Run) -> None:
    for loss, again in zip(finished.reporter.losses, stopped.reporter.losses, strict=False):
        assert loss == pytest.approx(again, abs=1e-5)


def test_should_stop_is_honoured_before_the_next_step(stopped: Run) -> None:
    assert stopped.result.status == "cancelled"
    assert stopped.result.steps == len(stopped.reporter.metrics_log) == STOP_AFTER_STEPS
    assert stopped.result.adapter_dir is None and stopped.result.manifest is None
    assert not (stopped.config.output_dir / "adapter").exists()


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_a_non_finite_loss_stops_training_with_a_clear_error(loss: float) -> None:
    with pytest.raises(RuntimeError, match=r"diverged to .* at step 7"):
        ensure_finite_loss(loss, step=7)
    ensure_finite_loss(0.5, step=7)


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = TrainConfig(
        base_model_id=BASE_MODEL_ID,
        base_model_path=tmp_path / "model",
        training_path=tmp_path / "train.jsonl",
        output_dir=tmp_path / "out",
        dataset_sha256="0" * 64,
        target_modules=["q_proj", "v_proj"],
    )

    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"quantization": "int8"}, "quantization"),
        ({"target_modules": "everything"}, "target_modules"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"unexpected": 1}, "unknown training config keys"),
    ],
)
def test_invalid_config_is_refused(overrides: dict[str, Any], error: str) -> None:
    values = {
        "base_model_id": "m",
        "base_model_path": "m",
        "training_path": "t.jsonl",
        "output_dir": "out",
        "dataset_sha256": "0" * 64,
    }
    with pytest.raises(ValueError, match=error):
        TrainConfig.from_dict(values | overrides)


def test_learning_rate_warms_up_then_decays_along_a_cosine() -> None:
    schedule = [warmup_cosine_multiplier(s, warmup_steps=2, total_steps=10) for s in range(10)]

    assert schedule[:3] == [0.5, 1.0, 1.0]
    assert all(later < earlier for earlier, later in itertools.pairwise(schedule[2:]))
    assert 0 < schedule[-1] < 0.05


def test_validation_never_puts_4bit_layers_in_eval_mode(finished: Run) -> None:
    """In eval mode and without grad, bitsandbytes' 4-bit layers on CPUs with AVX512-BF16
    repack their weights for an inference kernel that has no backward, so every step after
    the first validation would train on wrong gradients. Validation may only turn dropout off."""
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit

    # Hooked on peft's LoRA layers, whose forward runs on both paths (the packed path's fused
    # layer reads the 4-bit weight without calling the bitsandbytes layer's forward).
    layers = [m for m in finished.recipe._model.modules() if isinstance(m, LoraLinear4bit)]
    assert len(layers) == 30 * 7
    modes_seen: set[bool] = set()
    hooks = [
        layer.register_forward_pre_hook(lambda m, _: modes_seen.add(m.get_base_layer().training))
        for layer in layers
    ]
    try:
        finished.recipe._validation_loss()
    finally:
        for hook in hooks:
            hook.remove()
    assert modes_seen == {True}
