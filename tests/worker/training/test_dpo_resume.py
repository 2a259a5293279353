"""DPO checkpoints and resume on the real SmolLM2-135M (nf4 on CPU), starting from an existing
adapter (so the reference is a frozen copy of it, rebuilt at setup): a run stopped after a
checkpoint and resumed by a fresh recipe ends with the same adapter and step losses as a run
never stopped, and every checkpoint is a plain adapter peft can load."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from peft import PeftModel, get_peft_model
from safetensors.torch import load_file

from tests.worker.training.test_dpo import BASE_MODEL_ID, make_config, shout_preference
from tests.worker.training.test_recipe import RecordingReporter, write_jsonl
from worker.training.checkpoint import latest_checkpoint, list_checkpoints
from worker.training.dpo import DPOConfig, DPORecipe
from worker.training.lora import load_base_model, lora_config, save_adapter
from worker.training.recipe import TrainResult, choose_compute_dtype

WORDS = "apple river stone cloud tiger piano garden rocket".split()
BATCH_SIZE = 2
N_EPOCHS = 2
TOTAL_STEPS = N_EPOCHS * len(WORDS) // BATCH_SIZE  # 8
CHECKPOINT_EVERY = 3  # checkpoints at 3, 4 (end of epoch 1), 6 and 8
INTERRUPTED_AFTER = 7  # the newest checkpoint is then step 6, in the middle of epoch 2
KEEP = 2
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Run:
    config: DPOConfig
    reporter: RecordingReporter
    result: TrainResult


def run_dpo(config: DPOConfig, reporter: RecordingReporter) -> Run:
    recipe = DPORecipe(config, reporter)
    recipe.setup()
    return Run(config, reporter, recipe.train())


@pytest.fixture(scope="module")
def pairs_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    return write_jsonl(path, [shout_preference(word) for word in WORDS])


@pytest.fixture(scope="module")
def init_adapter(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with non-zero weights (B drawn at random): the policy starts from it
    and the reference is a frozen copy of it, so the reference is not the base model."""
    base, _ = load_base_model(model_dir, "nf4", choose_compute_dtype(CPU), CPU)
    base.name_or_path = base.config.name_or_path = BASE_MODEL_ID
    torch.manual_seed(0)
    model = get_peft_model(base, lora_config(8, 16, 0.05, "all-linear"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.02)
    path = tmp_path_factory.mktemp("init") / "adapter"
    save_adapter(model, path)
    return path


def config_for(model_dir: Path, pairs_path: Path, init_adapter: Path, output: Path) -> DPOConfig:
    return make_config(
        model_dir,
        pairs_path,
        output,
        n_epochs=N_EPOCHS,
        batch_size=BATCH_SIZE,
        init_adapter_path=init_adapter,
        init_adapter_id="ft:init",
        checkpoint_every_steps=CHECKPOINT_EVERY,
        keep_checkpoints=KEEP,
    )


@pytest.fixture(scope="module")
def uninterrupted(
    model_dir: Path, pairs_path: Path, init_adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    output = tmp_path_factory.mktemp("uninterrupted")
    return run_dpo(config_for(model_dir, pairs_path, init_adapter, output), RecordingReporter())


@pytest.fixture(scope="module")
def interrupted(
    model_dir: Path, pairs_path: Path, init_adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    output = tmp_path_factory.mktemp("interrupted")
    config = config_for(model_dir, pairs_path, init_adapter, output)
    return run_dpo(config, RecordingReporter(stop_after_steps=INTERRUPTED_AFTER))


@pytest.fixture(scope="module")
def resumed(interrupted: Run) -> Run:
    """A fresh recipe (new model, reference, optimizer, RNG) on the interrupted run's output."""
    return run_dpo(interrupted.config, RecordingReporter())


def test_checkpoints_are_written_every_n_steps_and_the_newest_kept(uninterrupted: Run) -> None:
    assert [step for step, _, _ in uninterrupted.reporter.checkpoints] == [3, 4, 6, 8]
    kept = list_checkpoints(uninterrupted.config.checkpoints_root)
    assert [checkpoint.step for checkpoint in kept] == [6, 8]
    assert not list(uninterrupted.config.checkpoints_root.glob(".*"))  # no temporary dirs
    _, metrics, path = uninterrupted.reporter.checkpoints[-1]
    assert metrics == uninterrupted.reporter.metrics_log[-1] and Path(path) == kept[-1].path


def test_a_checkpoint_holds_the_policy_adapter_and_the_training_state(uninterrupted: Run) -> None:
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
    # the trained adapter alone: the frozen reference copy is rebuilt at setup, not saved
    assert [p.name for p in checkpoint.path.iterdir() if p.is_dir()] == ["trainer_state"]
    progress = checkpoint.progress
    assert (progress["step"], progress["epoch"], progress["batches_done"]) == (8, 3, 0)
    assert progress["data_seed"] == uninterrupted.config.seed
    assert progress["dataset_sha256"] == uninterrupted.config.dataset_sha256
    assert progress["total_steps"] == TOTAL_STEPS
    assert progress["last_metrics"]["rewards/margins"] is not None


def test_a_checkpoint_loads_as_a_peft_adapter(model_dir: Path, uninterrupted: Run) -> None:
    checkpoint = latest_checkpoint(uninterrupted.config.checkpoints_root)
    assert checkpoint is not None
    adapter_config = json.loads((checkpoint.path / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == BASE_MODEL_ID
    assert adapter_config["peft_type"] == "LORA" and adapter_config["r"] == 8
    base, _ = load_base_model(model_dir, "nf4", choose_compute_dtype(CPU), CPU)
    model = PeftModel.from_pretrained(base, str(checkpoint.path))
    saved = load_file(checkpoint.path / "adapter_model.safetensors")
    loaded = {
        name: parameter
        for name, parameter in model.named_parameters()
        if "lora_A" in name or "lora_B" in name
    }
    assert len(loaded) == len(saved)
    for name, tensor in saved.items():
        weight = name.removesuffix(".weight") + ".default.weight"
        torch.testing.assert_close(loaded[weight], tensor, msg=name)
    # the final adapter is the last checkpoint's weights
    final = load_file(uninterrupted.config.adapter_dir / "adapter_model.safetensors")
    assert final.keys() == saved.keys()
    assert all(final[name].equal(saved[name]) for name in saved)


def test_the_interrupted_run_left_a_mid_epoch_checkpoint(interrupted: Run) -> None:
    assert interrupted.result.status == "cancelled" and interrupted.result.steps == 7
    checkpoint = latest_checkpoint(interrupted.config.checkpoints_root)
    assert checkpoint is not None and checkpoint.step == 6
    assert checkpoint.progress["epoch"] == 2 and checkpoint.progress["batches_done"] == 2


def test_the_resumed_run_reports_only_the_steps_after_the_checkpoint(resumed: Run) -> None:
    (resume_event,) = [
        data
        for message, _, data in resumed.reporter.events
        if message.startswith("Resumed from checkpoint at step 6 ")
    ]
    assert resume_event == {"resumed_from_step": 6, "epoch": 2, "batches_done_in_epoch": 2}
    assert [m["step"] for m in resumed.reporter.metrics_log] == [7, 8]
    assert [step for step, _, _ in resumed.reporter.checkpoints] == [8]
    assert resumed.result.status == "succeeded" and resumed.result.resumed_from_step == 6
    assert resumed.result.steps == TOTAL_STEPS


def test_the_resumed_run_matches_the_uninterrupted_one(uninterrupted: Run, resumed: Run) -> None:
    expected = uninterrupted.reporter.metrics_log[6:]
    for actual, wanted in zip(resumed.reporter.metrics_log, expected, strict=True):
        for key in ("train_loss", "rewards/chosen", "rewards/rejected", "learning_rate"):
            assert actual[key] == pytest.approx(wanted[key], abs=1e-5), key
        assert actual["trained_tokens"] == wanted["trained_tokens"]
    assert resumed.result.trained_tokens == uninterrupted.result.trained_tokens
    assert resumed.result.final_loss == pytest.approx(uninterrupted.result.final_loss, abs=1e-5)
    assert resumed.config.init_adapter_path is not None
    before = load_file(resumed.config.init_adapter_path / "adapter_model.safetensors")
    wanted_weights = load_file(uninterrupted.config.adapter_dir / "adapter_model.safetensors")
    actual_weights = load_file(resumed.config.adapter_dir / "adapter_model.safetensors")
    assert actual_weights.keys() == wanted_weights.keys() == before.keys()
    for name, tensor in wanted_weights.items():
        torch.testing.assert_close(actual_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    # and training moved them: the comparison is not between two copies of the initial adapter
    assert any(not torch.allclose(wanted_weights[n], before[n], atol=1e-4) for n in before)
