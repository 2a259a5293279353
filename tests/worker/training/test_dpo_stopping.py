"""DPO validation every `eval_every_steps` and early stopping on the validation DPO loss, the
supervised recipe's way (test_stopping.py); real recipe, real SmolLM2-135M (nf4 on CPU)."""

import json
from pathlib import Path

import pytest

from tests.worker.training.test_dpo import (
    VALIDATION_WORDS,
    WORDS,
    Run,
    make_config,
    run,
    shout_preference,
)
from tests.worker.training.test_recipe import RecordingReporter, write_jsonl
from worker.training.dpo import DPORecipe
from worker.training.errors import LossDiverged

BATCH_SIZE = 2
STEPS_PER_EPOCH = len(WORDS) // BATCH_SIZE  # 4


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "pairs.jsonl", [shout_preference(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout_preference(w) for w in VALIDATION_WORDS])
    return directory


@pytest.fixture(scope="module")
def stopped_early(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    # No later evaluation can beat the first by 10 nats: patience 1 runs out at the second,
    # at step 2 of the epoch's 4 (validation at the end of the epoch alone would stop at 8).
    config = make_config(
        model_dir,
        data_dir / "pairs.jsonl",
        tmp_path_factory.mktemp("early"),
        batch_size=BATCH_SIZE,
        validation_path=data_dir / "valid.jsonl",
        eval_every_steps=1,
        early_stopping_patience=1,
        early_stopping_min_delta=10.0,
    )
    return run(config)


def test_validation_loss_is_measured_every_n_steps(stopped_early: Run) -> None:
    metrics = stopped_early.reporter.metrics_log
    assert [m["step"] for m in metrics] == [1, 2]
    assert all("valid_loss" in m and "valid_rewards/accuracies" in m for m in metrics)
    # Step 1 is not the end of an epoch: only eval_every_steps measured it. A fresh LoRA (B = 0)
    # scores the validation pairs as the reference does, before the first update.
    assert metrics[0]["epoch"] == 1 and metrics[0]["valid_loss"] > 0


def test_training_stops_early_when_the_validation_loss_stops_improving(
    stopped_early: Run,
) -> None:
    result = stopped_early.result
    assert result.status == "succeeded" and result.stop_reason == "early_stopping"
    assert result.steps == 2 < 2 * STEPS_PER_EPOCH
    first, last = stopped_early.reporter.metrics_log
    assert "stop_reason" not in first
    assert last["stop_reason"] == "early_stopping" and last["best_valid_step"] == 1
    assert last["best_valid_loss"] == first["valid_loss"]
    (message, data) = next(
        (m, d) for m, _, d in stopped_early.reporter.events if m.startswith("Early stopping")
    )
    assert "step 2" in message and "for 1 evaluation(s)" in message
    assert data is not None and data["patience"] == 1 and data["min_delta"] == 10.0
    complete = [d for m, _, d in stopped_early.reporter.events if m.startswith("Training complete")]
    assert complete and complete[0] is not None and complete[0]["stop_reason"] == "early_stopping"


def test_an_early_stopped_run_writes_its_adapter_and_manifest(stopped_early: Run) -> None:
    adapter_dir = stopped_early.config.adapter_dir
    manifest = json.loads((adapter_dir / "manifest.json").read_text())
    assert manifest == stopped_early.result.manifest
    assert manifest["method"] == "dpo" and manifest["stop_reason"] == "early_stopping"
    hyperparameters = manifest["hyperparameters"]
    assert hyperparameters["eval_every_steps"] == 1
    assert hyperparameters["early_stopping_patience"] == 1
    assert hyperparameters["early_stopping_min_delta"] == 10.0
    assert hyperparameters["n_gpus"] == 1
    assert (adapter_dir / "adapter_model.safetensors").is_file()


def test_an_injected_nan_loss_stops_before_the_update(
    model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    config = make_config(
        model_dir,
        data_dir / "pairs.jsonl",
        tmp_path,
        n_epochs=1,
        batch_size=BATCH_SIZE,
        fault_injection={"nan_loss_at_step": 2},
    )
    reporter = RecordingReporter()
    recipe = DPORecipe(config, reporter)
    recipe.setup()
    with pytest.raises(LossDiverged, match="diverged to nan at step 2"):
        recipe.train()
    assert [m["step"] for m in reporter.metrics_log] == [1]
