"""The supervised QLoRA recipe sharded over two gloo processes (`parallelism: "fsdp"`, what
torchrun starts for n_gpus=2) against one process, on the real SmolLM2-135M in NF4: each rank
holds half of every weight, and the same global batches still give the same losses, the same
validation losses and the same adapter; only rank 0 reports and writes; a sharded run resumes
from its checkpoint (adapter and optimizer state gathered whole, put back into the shards).

In float32, as tests/worker/training/test_recipe_ddp.py and for the same reason."""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.distributed.tensor import DTensor

from tests.worker.training.ranks import (
    adapter,
    assert_rank_zero_alone_wrote,
    assert_same_adapter,
    finish_rank,
    join_world,
    run_ranks,
    stop_and_resume,
)
from tests.worker.training.test_recipe import RecordingReporter, make_config, shout, write_jsonl
from tests.worker.training.test_recipe_ddp import WORDS, float32_recipe
from worker.training.distributed import World

BATCH_SIZE = 4
STEPS = 3  # 9 examples in batches of 4: one rank trains on nothing in the last step


def build_config(values: dict[str, Any], parallelism: str) -> Any:
    return make_config(
        Path(values["model_dir"]),
        Path(values["data_dir"]),
        Path(values["output_dir"]),
        n_epochs=1,
        batch_size=BATCH_SIZE,
        quantization="nf4",
        lora_dropout=0.0,  # dropout draws differ per rank; without it the runs must agree
        checkpoint_every_steps=2,
        eval_every_steps=2,  # the validation file's one batch: rank 1 runs an empty forward
        parallelism=parallelism,
    )


def sharded_fraction(model: torch.nn.Module) -> float:
    """The share of the model's weights this rank holds."""
    local = total = 0
    for param in model.parameters():
        total += param.numel()
        local += param.to_local().numel() if isinstance(param, DTensor) else param.numel()
    return local / total


def rank_main(rank: int, port: int, values: dict[str, Any], stop_after: int | None) -> None:
    join_world(rank, port)
    reporter = RecordingReporter(stop_after_steps=stop_after)
    recipe = float32_recipe(build_config(values, "fsdp"), reporter)
    recipe.setup()
    fraction = sharded_fraction(recipe._model)
    result = recipe.train()
    record = {
        "status": result.status,
        "steps": result.steps,
        "losses": reporter.losses,
        "valid_losses": [m.get("valid_loss") for m in reporter.metrics_log],
        "events": len(reporter.events),
        "checkpoints": [step for step, _, _ in reporter.checkpoints],
        "manifest": result.manifest,
        "resumed_from_step": result.resumed_from_step,
        "sharded_fraction": fraction,
    }
    finish_rank(values["output_dir"], rank, record)


def run_two_ranks(values: dict[str, Any], stop_after: int | None = None) -> list[dict[str, Any]]:
    return run_ranks(rank_main, values["output_dir"], values, stop_after)


def config_values(model_dir: Path, data_dir: Path, output_dir: Path) -> dict[str, Any]:
    return {"model_dir": str(model_dir), "data_dir": str(data_dir), "output_dir": str(output_dir)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in ("banana", "guitar")])
    return directory


@pytest.fixture(scope="module")
def single(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    values = config_values(model_dir, data_dir, tmp_path_factory.mktemp("single"))
    reporter = RecordingReporter()
    # One process: parallelism has nothing to split and the model stays whole.
    recipe = float32_recipe(build_config(values, "fsdp"), reporter, World())
    recipe.setup()
    assert sharded_fraction(recipe._model) == 1.0
    return values, reporter, recipe.train()


@pytest.fixture(scope="module")
def sharded(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    values = config_values(model_dir, data_dir, tmp_path_factory.mktemp("sharded"))
    return values, run_two_ranks(values)


def test_each_rank_holds_half_of_the_model(sharded: Any) -> None:
    _, ranks = sharded
    # Every weight is split in two along its first dimension; odd sizes leave a few extra
    # elements on rank 0.
    for rank in ranks:
        assert rank["sharded_fraction"] == pytest.approx(0.5, abs=0.01)


def test_sharded_ranks_take_the_single_process_steps(single: Any, sharded: Any) -> None:
    _, reporter, result = single
    _, ranks = sharded
    assert result.steps == STEPS and [r["steps"] for r in ranks] == [STEPS, STEPS]
    assert [r["status"] for r in ranks] == ["succeeded", "succeeded"]
    assert ranks[0]["losses"] == pytest.approx(reporter.losses, rel=1e-4)
    expected_valid = [m.get("valid_loss") for m in reporter.metrics_log]
    got_valid = ranks[0]["valid_losses"]
    assert [v is not None for v in expected_valid] == [False, True, True]
    assert [v is not None for v in got_valid] == [False, True, True]
    assert got_valid[1:] == pytest.approx(expected_valid[1:], rel=1e-4)


def test_sharded_ranks_train_the_single_process_adapter(single: Any, sharded: Any) -> None:
    one = adapter(single[0])
    assert all(t.abs().max() > 0 for name, t in one.items() if "lora_B" in name)
    assert_same_adapter(adapter(sharded[0]), one)
    # A checkpoint holds the same servable adapter, gathered from the shards.
    assert_same_adapter(adapter(sharded[0], "checkpoints/step-3"), one)


def test_only_rank_zero_reports_and_writes(sharded: Any) -> None:
    values, ranks = sharded
    manifest = assert_rank_zero_alone_wrote(values, ranks, [2, 3], "losses")
    assert manifest["hyperparameters"]["parallelism"] == "fsdp"


def test_a_sharded_run_resumes_from_its_checkpoint(
    single: Any, model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    values = config_values(model_dir, data_dir, tmp_path)
    resumed = stop_and_resume(run_two_ranks, values, stop_after=2)
    # The adapter after step 3 needs the moments of steps 1-2 back in the optimizer shards.
    assert resumed[0]["losses"] == pytest.approx(single[1].losses[2:], rel=1e-4)
    assert_same_adapter(adapter(values), adapter(single[0]))
