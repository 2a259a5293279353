"""The real DPO recipe on the real SmolLM2-135M (nf4 on CPU): one run from the base model, and
one that starts from the first run's adapter."""

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from tests.worker.training.test_recipe import RecordingReporter, write_jsonl
from worker.training.dpo import DPOConfig, DPORecipe
from worker.training.recipe import TrainResult

WORDS = "apple river stone cloud tiger piano garden rocket".split()
VALIDATION_WORDS = ("banana", "mountain", "guitar")
BASE_MODEL_ID = "SmolLM2-135M-Instruct"
BETA = 0.1
BATCH_SIZE = 4
STEPS_PER_EPOCH = len(WORDS) // BATCH_SIZE


@dataclass(frozen=True)
class Run:
    config: DPOConfig
    reporter: RecordingReporter
    result: TrainResult


def shout_preference(word: str) -> dict[str, Any]:
    """Prefer the shouted word over a quiet one."""
    return {
        "input": {
            "messages": [
                {"role": "system", "content": "Shout."},
                {"role": "user", "content": f"Say the word: {word}"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": f"{word.upper()}!"}],
        "non_preferred_output": [{"role": "assistant", "content": f"{word}."}],
    }


@pytest.fixture(scope="module")
def pairs_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    return write_jsonl(path, [shout_preference(word) for word in WORDS])


@pytest.fixture(scope="module")
def validation_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "valid.jsonl"
    return write_jsonl(path, [shout_preference(word) for word in VALIDATION_WORDS])


def make_config(model_dir: Path, pairs_path: Path, output_dir: Path, **overrides: Any) -> DPOConfig:
    values: dict[str, Any] = {
        "base_model_id": BASE_MODEL_ID,
        "base_model_path": model_dir,
        "training_path": pairs_path,
        "output_dir": output_dir,
        "dataset_sha256": hashlib.sha256(pairs_path.read_bytes()).hexdigest(),
        "seed": 7,
        "n_epochs": 2,
        "batch_size": BATCH_SIZE,
        "learning_rate": 5e-4,
        "lora_r": 8,
        "lora_alpha": 16,
        "max_seq_length": 64,
        "beta": BETA,
    }
    return DPOConfig(**(values | overrides))


def run(config: DPOConfig) -> Run:
    reporter = RecordingReporter()
    recipe = DPORecipe(config, reporter)
    recipe.setup()
    return Run(config, reporter, recipe.train())


@pytest.fixture(scope="module")
def from_base(model_dir: Path, pairs_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(make_config(model_dir, pairs_path, tmp_path_factory.mktemp("from-base")))


@pytest.fixture(scope="module")
def from_adapter(
    from_base: Run,
    model_dir: Path,
    pairs_path: Path,
    validation_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    assert from_base.result.adapter_dir is not None
    config = make_config(
        model_dir,
        pairs_path,
        tmp_path_factory.mktemp("from-adapter"),
        n_epochs=1,
        lora_r=4,  # ignored: the initial adapter brings its own shape
        init_adapter_path=from_base.result.adapter_dir,
        init_adapter_id="ft:first",
        validation_path=validation_path,
    )
    return run(config)


def test_first_step_from_the_base_starts_at_log_2(from_base: Run) -> None:
    # A fresh LoRA adds nothing (B = 0), so policy and reference agree exactly on step 1.
    first = from_base.reporter.metrics_log[0]
    assert first["train_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-5)


def test_training_raises_reward_accuracy_and_margins(from_base: Run) -> None:
    metrics = from_base.reporter.metrics_log
    assert from_base.result.status == "succeeded"
    assert len(metrics) == 2 * STEPS_PER_EPOCH
    last = metrics[-1]
    assert last["rewards/accuracies"] > metrics[0]["rewards/accuracies"]
    assert last["rewards/accuracies"] == 1.0
    assert last["rewards/margins"] > metrics[0]["rewards/margins"] + 0.5
    assert last["rewards/chosen"] > last["rewards/rejected"]
    assert last["train_loss"] < math.log(2) - 0.2
    for step in metrics:
        assert step["rewards/margins"] == pytest.approx(
            step["rewards/chosen"] - step["rewards/rejected"], abs=1e-5
        )
        assert step["tokens_per_second"] > 0


def test_manifest_records_method_and_beta(from_base: Run) -> None:
    adapter_dir = from_base.result.adapter_dir
    assert adapter_dir is not None
    manifest = json.loads((adapter_dir / "manifest.json").read_text())
    assert manifest == from_base.result.manifest
    assert manifest["method"] == "dpo"
    assert manifest["hyperparameters"]["beta"] == BETA
    assert manifest["hyperparameters"]["reference"] == "base_model"
    assert manifest["dataset_sha256"] == from_base.config.dataset_sha256
    assert manifest["init_adapter"] is None


def test_adapter_is_plain_lora_on_the_base(from_base: Run) -> None:
    adapter_dir = from_base.result.adapter_dir
    assert adapter_dir is not None
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == BASE_MODEL_ID
    assert config["r"] == 8 and config["peft_type"] == "LORA"
    assert config["target_modules"] == sorted(config["target_modules"])
    keys = load_file(str(adapter_dir / "adapter_model.safetensors")).keys()
    assert keys and all("lora_A" in key or "lora_B" in key for key in keys)


def test_a_checkpoint_is_saved_each_epoch(from_base: Run) -> None:
    steps = [step for step, _, _ in from_base.reporter.checkpoints]
    assert steps == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    for _, _, path in from_base.reporter.checkpoints:
        assert (Path(path) / "adapter_model.safetensors").is_file()


def test_from_an_adapter_the_reference_is_that_adapter(from_base: Run, from_adapter: Run) -> None:
    first = from_adapter.reporter.metrics_log[0]
    # Against the base model this adapter already wins every pair by a wide margin
    # (test above); against itself it starts even. Only LoRA dropout in the policy pass
    # separates the two on step 1.
    assert from_base.reporter.metrics_log[-1]["rewards/margins"] > 1.0
    assert abs(first["rewards/margins"]) < 0.1
    assert first["train_loss"] == pytest.approx(math.log(2), abs=0.05)
    assert from_adapter.result.status == "succeeded"
    assert from_adapter.reporter.metrics_log[-1]["rewards/margins"] > first["rewards/margins"]


def test_from_an_adapter_only_the_trained_copy_is_saved(from_base: Run, from_adapter: Run) -> None:
    assert from_base.result.adapter_dir is not None and from_adapter.result.adapter_dir is not None
    initial = load_file(str(from_base.result.adapter_dir / "adapter_model.safetensors"))
    trained = load_file(str(from_adapter.result.adapter_dir / "adapter_model.safetensors"))
    assert initial.keys() == trained.keys()  # same LoRA shape, no second adapter inside
    assert any(not initial[key].equal(trained[key]) for key in initial)
    assert not any(p.is_dir() for p in from_adapter.result.adapter_dir.iterdir())
    manifest = from_adapter.result.manifest
    assert manifest is not None
    assert manifest["init_adapter"] == "ft:first"
    assert manifest["hyperparameters"]["reference"] == "initial_adapter"
    assert manifest["hyperparameters"]["lora_r"] == 8


def test_validation_pairs_are_scored_at_the_end_of_each_epoch(from_adapter: Run) -> None:
    *earlier, last = from_adapter.reporter.metrics_log
    assert all("valid_loss" not in step for step in earlier)
    assert 0 < last["valid_loss"] < 10
    assert 0 <= last["valid_rewards/accuracies"] <= 1
    assert last["valid_rewards/margins"] == pytest.approx(
        last["valid_rewards/chosen"] - last["valid_rewards/rejected"], abs=1e-5
    )
    datasets = [
        data["dataset"] for _, _, data in from_adapter.reporter.events if data and "dataset" in data
    ]
    assert datasets == ["training", "validation"]


def test_should_stop_is_honoured_before_the_next_step(
    model_dir: Path, pairs_path: Path, tmp_path: Path
) -> None:
    reporter = RecordingReporter(stop_after_steps=1)
    recipe = DPORecipe(make_config(model_dir, pairs_path, tmp_path, n_epochs=1), reporter)
    recipe.setup()
    result = recipe.train()
    assert (result.status, result.steps, result.adapter_dir) == ("cancelled", 1, None)
    assert result.final_loss == reporter.metrics_log[0]["train_loss"]
    assert not (tmp_path / "adapter").exists()
    assert reporter.events[-1][0] == "Training stopped on request before step 2"


@pytest.mark.parametrize(
    "overrides",
    [{"packing": True}, {"gradient_checkpointing": True}, {"parallelism": "fsdp"}],
)
def test_settings_preference_tuning_does_not_take_are_refused(
    model_dir: Path, pairs_path: Path, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    setting = next(iter(overrides))
    with pytest.raises(ValueError, match=setting):
        make_config(model_dir, pairs_path, tmp_path, **overrides)
