"""The supervised recipe on two gloo processes (what torchrun starts for n_gpus=2) against one
process, on the real SmolLM2-135M: the same global batches give the same losses and the same
adapter, only rank 0 reports and writes, and a several-GPU run resumes from its checkpoint.

Computed in float32 (the recipe would pick bf16 on CPUs with native bf16): packing puts other
examples side by side in a rank's row than in the single process's, and bf16 matrix products
of other shapes round differently (0.15 % on a loss here), which the tolerances below, meant
for summation order alone, would not allow. In float32 the two agree to 2e-7."""

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.worker.training.ranks import (
    adapter,
    assert_rank_zero_alone_wrote,
    assert_same_adapter,
    finish_rank,
    join_world,
    run_ranks,
    stop_and_resume,
)
from tests.worker.training.test_recipe import (
    RecordingReporter,
    make_config,
    shout,
    write_jsonl,
)
from worker.training import recipe as recipe_module
from worker.training.distributed import World
from worker.training.recipe import SFTRecipe, TrainConfig

# 9 examples in batches of 4: the last batch has one row, so one rank trains on nothing there.
WORDS = "apple river stone cloud tiger piano garden rocket silver".split()
BATCH_SIZE = 4
STEPS = 3


def config_values(
    model_dir: Path, data_dir: Path, output_dir: Path, packing: bool = True
) -> dict[str, Any]:
    return {
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "output_dir": str(output_dir),
        "packing": packing,
    }


def float32_recipe(config: TrainConfig, reporter: Any, world: World | None = None) -> SFTRecipe:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe_module, "choose_compute_dtype", lambda device: torch.float32)
        return SFTRecipe(config, reporter, world)


def build_config(values: dict[str, Any], **overrides: Any) -> Any:
    return make_config(
        Path(values["model_dir"]),
        Path(values["data_dir"]),
        Path(values["output_dir"]),
        n_epochs=1,
        batch_size=BATCH_SIZE,
        quantization="none",
        lora_dropout=0.0,  # dropout draws differ per rank; without it the runs must agree
        checkpoint_every_steps=2,
        packing=values["packing"],
        **overrides,
    )


def rank_main(rank: int, port: int, values: dict[str, Any], stop_after: int | None) -> None:
    join_world(rank, port)
    reporter = RecordingReporter(stop_after_steps=stop_after)
    recipe = float32_recipe(build_config(values), reporter)
    recipe.setup()
    result = recipe.train()
    record = {
        "status": result.status,
        "steps": result.steps,
        "losses": reporter.losses,
        "events": len(reporter.events),
        "checkpoints": [step for step, _, _ in reporter.checkpoints],
        "manifest": result.manifest,
        "resumed_from_step": result.resumed_from_step,
    }
    finish_rank(values["output_dir"], rank, record)


def run_two_ranks(values: dict[str, Any], stop_after: int | None = None) -> list[dict[str, Any]]:
    return run_ranks(rank_main, values["output_dir"], values, stop_after)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in ("banana", "guitar")])
    return directory


def run_single(values: dict[str, Any]) -> Any:
    reporter = RecordingReporter()
    recipe = float32_recipe(build_config(values), reporter, World())
    recipe.setup()
    return values, reporter, recipe.train()


@pytest.fixture(scope="module")
def single(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_single(config_values(model_dir, data_dir, tmp_path_factory.mktemp("single")))


@pytest.fixture(scope="module")
def double(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    values = config_values(model_dir, data_dir, tmp_path_factory.mktemp("double"))
    return values, run_two_ranks(values)


def test_two_ranks_take_the_single_process_steps(single: Any, double: Any) -> None:
    _, reporter, result = single
    _, ranks = double
    assert result.steps == STEPS and [r["steps"] for r in ranks] == [STEPS, STEPS]
    assert all(r["status"] == "succeeded" for r in ranks)
    torch.testing.assert_close(
        torch.tensor(ranks[0]["losses"]), torch.tensor(reporter.losses), rtol=1e-4, atol=1e-5
    )


def test_two_ranks_train_the_single_process_adapter(single: Any, double: Any) -> None:
    one = adapter(single[0])
    lora_b = [tensor for name, tensor in one.items() if "lora_B" in name]
    assert all(tensor.abs().max() > 0 for tensor in lora_b), "B starts at zero: it must move"
    assert_same_adapter(adapter(double[0]), one)


def test_only_rank_zero_reports_and_writes(double: Any) -> None:
    values, ranks = double
    assert_rank_zero_alone_wrote(values, ranks, [2, 3], "losses")


def test_a_two_rank_run_resumes_from_its_checkpoint(
    single: Any, model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    values = config_values(model_dir, data_dir, tmp_path)
    resumed = stop_and_resume(run_two_ranks, values, stop_after=2)
    assert resumed[0]["losses"] == pytest.approx(single[1].losses[2:], rel=1e-4)
    assert_same_adapter(adapter(values), adapter(single[0]))


def test_padded_two_rank_steps_are_the_single_process_steps(
    model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """The same with packing off: each rank trains its rows of the padded global batch."""
    one = config_values(model_dir, data_dir, tmp_path / "one", packing=False)
    two = config_values(model_dir, data_dir, tmp_path / "two", packing=False)
    _, reporter, result = run_single(one)
    ranks = run_two_ranks(two)
    assert result.steps == STEPS and [r["status"] for r in ranks] == ["succeeded"] * 2
    assert ranks[0]["losses"] == pytest.approx(reporter.losses, rel=1e-4)
    assert_same_adapter(adapter(two), adapter(one))
    assert ranks[0]["manifest"]["hyperparameters"]["packing"] is False
