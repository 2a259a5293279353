"""Checkpoints and resume on the real SmolLM2-135M (nf4 on CPU): a run stopped after a
checkpoint and resumed by a fresh recipe ends with the same adapter as a run never stopped."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.worker.training.test_recipe import (
    N_EPOCHS,
    STEPS_PER_EPOCH,
    VALIDATION_WORDS,
    WORDS,
    RecordingReporter,
    Run,
    make_config,
    run_recipe,
    shout,
    write_jsonl,
)
from worker.training.checkpoint import latest_checkpoint, list_checkpoints

TOTAL_STEPS = N_EPOCHS * STEPS_PER_EPOCH  # 8
CHECKPOINT_EVERY = 3  # checkpoints at 3, 4 (end of epoch 1), 6 and 8
INTERRUPTED_AFTER = 7  # the newest checkpoint is then step 6, in the middle of epoch 2
KEEP = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in VALIDATION_WORDS])
    return directory


@pytest.fixture(scope="module")
def uninterrupted(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = make_config(
        model_dir,
        data_dir,
        tmp_path_factory.mktemp("uninterrupted"),
        checkpoint_every_steps=CHECKPOINT_EVERY,
        keep_checkpoints=KEEP,
    )
    return run_recipe(config, RecordingReporter())


@pytest.fixture(scope="module")
def interrupted(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    config = make_config(
        model_dir,
        data_dir,
        tmp_path_factory.mktemp("interrupted"),
        checkpoint_every_steps=CHECKPOINT_EVERY,
        keep_checkpoints=KEEP,
    )
    return run_recipe(config, RecordingReporter(stop_after_steps=INTERRUPTED_AFTER))


@pytest.fixture(scope="module")
def resumed(interrupted: Run) -> Run:
    """A fresh recipe (new model, optimizer, RNG) on the interrupted run's output directory."""
    return run_recipe(interrupted.config, RecordingReporter())


def adapter_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(adapter_dir / "adapter_model.safetensors")


def test_checkpoints_are_written_every_n_steps_and_at_epoch_ends(uninterrupted: Run) -> None:
    reported = [step for step, _, _ in uninterrupted.reporter.checkpoints]
    assert reported == [3, 4, 6, 8]


def test_only_the_newest_checkpoints_are_kept(uninterrupted: Run) -> None:
    kept = list_checkpoints(uninterrupted.config.checkpoints_root)
    assert [checkpoint.step for checkpoint in kept] == [6, 8]
    assert not list(uninterrupted.config.checkpoints_root.glob(".*"))  # no temporary dirs


def test_a_checkpoint_holds_the_adapter_and_the_training_state(uninterrupted: Run) -> None:
    checkpoint = latest_checkpoint(uninterrupted.config.checkpoints_root)
    assert checkpoint is not None
    names = {p.relative_to(checkpoint.path).as_posix() for p in checkpoint.path.rglob("*")}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "trainer_state/optimizer.pt",
        "trainer_state/scheduler.pt",
        "trainer_state/rng.pt",
        "trainer_state/progress.json",
    } <= names
    progress = json.loads((checkpoint.path / "trainer_state" / "progress.json").read_text())
    assert progress["step"] == 8 and progress["data_seed"] == 1234
    assert progress["dataset_sha256"] == uninterrupted.config.dataset_sha256
    assert progress["total_steps"] == TOTAL_STEPS


def test_the_interrupted_run_left_a_mid_epoch_checkpoint(interrupted: Run) -> None:
    assert interrupted.result.status == "cancelled"
    checkpoint = latest_checkpoint(interrupted.config.checkpoints_root)
    assert checkpoint is not None and checkpoint.step == 6
    assert checkpoint.progress["epoch"] == 2 and checkpoint.progress["batches_done"] == 2


def test_resume_says_from_which_step(resumed: Run) -> None:
    (resume_event,) = [
        (message, data)
        for message, _, data in resumed.reporter.events
        if message.startswith("Resumed from checkpoint")
    ]
    assert resume_event[1] == {"resumed_from_step": 6, "epoch": 2, "batches_done_in_epoch": 2}
    assert resumed.result.resumed_from_step == 6


def test_resumed_run_trains_only_the_steps_after_the_checkpoint(
    uninterrupted: Run, resumed: Run
) -> None:
    assert [m["step"] for m in resumed.reporter.metrics_log] == [7, 8]
    assert resumed.result.status == "succeeded" and resumed.result.steps == TOTAL_STEPS
    assert resumed.result.trained_tokens == uninterrupted.result.trained_tokens
    expected = uninterrupted.reporter.losses[6:]
    assert resumed.reporter.losses == pytest.approx(expected, abs=1e-5)


def test_resumed_run_ends_with_the_same_adapter_weights(uninterrupted: Run, resumed: Run) -> None:
    expected = adapter_weights(uninterrupted.config.adapter_dir)
    actual = adapter_weights(resumed.config.adapter_dir)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    # and training moved them: the comparison is not between two untouched initialisations
    lora_b = [name for name in expected if "lora_B" in name]
    assert any(expected[name].abs().sum() > 0 for name in lora_b)


def test_a_checkpoint_of_another_configuration_is_not_resumed(interrupted: Run) -> None:
    """A checkpoint from another configuration is not resumed from: it would not fit."""
    config = make_config(
        interrupted.config.base_model_path,
        interrupted.config.training_path.parent,
        interrupted.config.output_dir,
        seed=99,
        n_epochs=1,
        checkpoint_every_steps=CHECKPOINT_EVERY,
        keep_checkpoints=KEEP,
    )
    reporter = RecordingReporter(stop_after_steps=1)
    run = run_recipe(config, reporter)
    assert run.result.steps == 1
    assert any("written by a different configuration" in m for m, _, _ in reporter.events)
    assert list_checkpoints(config.checkpoints_root) == []  # none left to resume from later
