"""How a run ends other than by finishing: early stopping on validation loss, a diverging loss,
running out of memory, a missing base model. Real recipe, real SmolLM2-135M on CPU."""

import json
from pathlib import Path

import pytest
import torch

from tests.worker.training.test_recipe import (
    VALIDATION_WORDS,
    WORDS,
    RecordingReporter,
    Run,
    make_config,
    run_recipe,
    shout,
    write_jsonl,
)
from worker.training.errors import (
    BaseModelUnavailable,
    LossDiverged,
    TrainingFailure,
    error_object,
)
from worker.training.recipe import SFTRecipe, TrainConfig


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in VALIDATION_WORDS])
    return directory


@pytest.fixture(scope="module")
def stopped_early(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    # No later evaluation can beat the first by 10 nats: patience 2 runs out at the third.
    config = make_config(
        model_dir,
        data_dir,
        tmp_path_factory.mktemp("early"),
        eval_every_steps=1,
        early_stopping_patience=2,
        early_stopping_min_delta=10.0,
    )
    return run_recipe(config, RecordingReporter())


def test_validation_loss_is_measured_every_n_steps(stopped_early: Run) -> None:
    assert ["valid_loss" in m for m in stopped_early.reporter.metrics_log] == [True] * 3


def test_training_stops_early_when_validation_loss_stops_improving(stopped_early: Run) -> None:
    result = stopped_early.result
    assert result.status == "succeeded" and result.stop_reason == "early_stopping"
    assert result.steps == 3
    last = stopped_early.reporter.metrics_log[-1]
    assert last["stop_reason"] == "early_stopping" and last["best_valid_step"] == 1
    first_loss = stopped_early.reporter.metrics_log[0]["valid_loss"]
    assert last["best_valid_loss"] == first_loss
    (message, data) = next(
        (m, d) for m, _, d in stopped_early.reporter.events if m.startswith("Early stopping")
    )
    assert "step 3" in message and "for 2 evaluation(s)" in message
    assert data is not None and data["patience"] == 2 and data["best_valid_step"] == 1


def test_an_early_stopped_run_still_writes_its_adapter(stopped_early: Run) -> None:
    adapter_dir = stopped_early.config.adapter_dir
    manifest = json.loads((adapter_dir / "manifest.json").read_text())
    assert manifest["stop_reason"] == "early_stopping"
    assert manifest["hyperparameters"]["early_stopping_patience"] == 2
    assert (adapter_dir / "adapter_model.safetensors").is_file()


def test_flat_validation_without_patience_never_stops(
    model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    config = make_config(
        model_dir, data_dir, tmp_path, n_epochs=1, eval_every_steps=1, early_stopping_min_delta=10.0
    )
    run = run_recipe(config, RecordingReporter())
    assert run.result.stop_reason is None and run.result.steps == 4


def test_an_injected_nan_loss_stops_before_the_update(
    model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    config = make_config(
        model_dir, data_dir, tmp_path, n_epochs=1, fault_injection={"nan_loss_at_step": 2}
    )
    reporter = RecordingReporter()
    with pytest.raises(LossDiverged, match="diverged to nan at step 2"):
        run_recipe(config, reporter)
    assert [m["step"] for m in reporter.metrics_log] == [1]


def test_an_out_of_memory_error_becomes_an_out_of_memory_job_error(
    model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    config = make_config(
        model_dir, data_dir, tmp_path, n_epochs=1, fault_injection={"out_of_memory_at_step": 1}
    )
    with pytest.raises(torch.OutOfMemoryError) as raised:
        run_recipe(config, RecordingReporter())
    error = error_object(raised.value)
    assert error["code"] == "out_of_memory"
    assert "batch_size" in error["message"]
    assert error_object(MemoryError())["code"] == "out_of_memory"


def test_a_missing_base_model_fails_before_loading(data_dir: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path / "no-such-model", data_dir, tmp_path / "out")
    with pytest.raises(BaseModelUnavailable, match="no-such-model") as raised:
        SFTRecipe(config, RecordingReporter()).setup()
    assert error_object(raised.value)["code"] == "base_model_unavailable"


def test_an_unexpected_exception_keeps_its_type_in_the_message() -> None:
    assert error_object(KeyError("x")) == {
        "code": "training_failed",
        "message": "KeyError: 'x'",
        "param": None,
    }
    assert isinstance(LossDiverged("x"), TrainingFailure)


def test_unknown_faults_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fault_injection"):
        TrainConfig(
            base_model_id="m",
            base_model_path=tmp_path,
            training_path=tmp_path / "t.jsonl",
            output_dir=tmp_path,
            dataset_sha256="0" * 64,
            fault_injection={"segfault_at_step": 1},
        )
