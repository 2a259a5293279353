"""The DPO recipe on two gloo processes (what torchrun starts for n_gpus=2) against one process,
on the real SmolLM2-135M in float32 (see test_recipe_ddp.py for why): the same global batches
of pairs give the same losses, rewards, validation metrics, gradients and adapter, and only
rank 0 reports and writes.

5 pairs in batches of 2: the last batch holds one pair, so rank 1 scores none there and must
still take part in DDP's gradient all-reduce (a rank that skipped it would hang the other).
3 validation pairs in batches of 2: rank 0 scores the first batch, rank 1 the second."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.worker.training.ranks import (
    WORLD,
    adapter,
    assert_rank_zero_alone_wrote,
    assert_same_adapter,
    finish_rank,
    join_world,
    run_ranks,
)
from tests.worker.training.test_dpo import make_config, shout_preference
from tests.worker.training.test_recipe import RecordingReporter, write_jsonl
from worker.training import recipe as recipe_module
from worker.training.distributed import World
from worker.training.dpo import DPOConfig, DPORecipe

WORDS = "apple river stone cloud tiger".split()
VALIDATION_WORDS = ("banana", "mountain", "guitar")
BATCH_SIZE = 2
STEPS = 3
EVAL_EVERY = 2  # validation at step 2 and at the end of the epoch (step 3)
REPORTED = ("train_loss", "rewards/chosen", "rewards/rejected", "rewards/margins")


def build_config(values: dict[str, Any]) -> DPOConfig:
    data_dir = Path(values["data_dir"])
    return make_config(
        Path(values["model_dir"]),
        data_dir / "pairs.jsonl",
        Path(values["output_dir"]),
        n_epochs=1,
        batch_size=BATCH_SIZE,
        quantization="none",
        lora_dropout=0.0,  # dropout draws differ per rank; without it the runs must agree
        checkpoint_every_steps=2,
        validation_path=data_dir / "valid.jsonl",
        eval_every_steps=EVAL_EVERY,
        init_adapter_path=values.get("init_adapter"),
    )


def gradient_norm_recorder(norms: list[float]) -> Callable[..., torch.Tensor]:
    """torch's clip_grad_norm_, also noting each step's gradient norm before clipping. Adam's
    update hardly depends on the gradient's scale, so a gradient summed instead of averaged
    over the ranks would still train about the same adapter: the norm tells them apart."""
    clip = torch.nn.utils.clip_grad_norm_

    def clip_and_record(*args: Any, **kwargs: Any) -> torch.Tensor:
        norm = clip(*args, **kwargs)
        norms.append(float(norm))
        return norm

    return clip_and_record


def run_recipe(values: dict[str, Any], world: World | None) -> tuple[Any, dict[str, Any]]:
    """Train in float32 (the recipe would pick bf16 on CPUs with native bf16); the result and
    what the run reported."""
    reporter = RecordingReporter()
    norms: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe_module, "choose_compute_dtype", lambda device: torch.float32)
        patch.setattr(torch.nn.utils, "clip_grad_norm_", gradient_norm_recorder(norms))
        recipe = DPORecipe(build_config(values), reporter, world)
        recipe.setup()
        result = recipe.train()
    return result, {
        "status": result.status,
        "steps": result.steps,
        "metrics": reporter.metrics_log,
        "gradient_norms": norms,
        "events": len(reporter.events),
        "checkpoints": [step for step, _, _ in reporter.checkpoints],
        "manifest": result.manifest,
    }


def rank_main(rank: int, port: int, values: dict[str, Any]) -> None:
    join_world(rank, port)
    _, record = run_recipe(values, None)  # the world from the environment, as under torchrun
    finish_rank(values["output_dir"], rank, record)


def run_two_ranks(values: dict[str, Any]) -> list[dict[str, Any]]:
    return run_ranks(rank_main, values["output_dir"], values)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "pairs.jsonl", [shout_preference(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout_preference(w) for w in VALIDATION_WORDS])
    return directory


def values_for(
    model_dir: Path, data_dir: Path, output_dir: Path, init_adapter: Path | None = None
) -> dict[str, Any]:
    return {
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "output_dir": str(output_dir),
        "init_adapter": str(init_adapter) if init_adapter else None,
    }


@pytest.fixture(scope="module")
def single(
    model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    values = values_for(model_dir, data_dir, tmp_path_factory.mktemp("single"))
    _, record = run_recipe(values, World())
    return values, record


@pytest.fixture(scope="module")
def double(
    model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = values_for(model_dir, data_dir, tmp_path_factory.mktemp("double"))
    return values, run_two_ranks(values)


def column(metrics: list[dict[str, Any]], key: str) -> torch.Tensor:
    return torch.tensor([step[key] for step in metrics if key in step], dtype=torch.float64)


def test_two_ranks_take_the_single_process_steps(single: Any, double: Any) -> None:
    _, one = single
    _, ranks = double
    assert one["steps"] == STEPS and [r["steps"] for r in ranks] == [STEPS, STEPS]
    assert [r["status"] for r in ranks] == ["succeeded"] * WORLD
    main = ranks[0]["metrics"]
    assert [step["step"] for step in main] == [1, 2, 3]
    for key in REPORTED:
        torch.testing.assert_close(
            column(main, key), column(one["metrics"], key), rtol=1e-4, atol=1e-6, msg=key
        )
    accuracies = column(main, "rewards/accuracies")
    assert torch.equal(accuracies, column(one["metrics"], "rewards/accuracies"))
    # Global means, not rank 0's share: step 3's single pair is rank 0's, steps 1 and 2 are
    # means over both ranks' pairs (a rank's own mean would differ from the single process).
    assert main[0]["train_loss"] == pytest.approx(0.6931472, abs=1e-5)  # log 2: B starts at 0
    assert main[-1]["rewards/margins"] > main[0]["rewards/margins"]


def test_two_ranks_take_the_single_process_gradients(single: Any, double: Any) -> None:
    _, one = single
    _, ranks = double
    assert len(one["gradient_norms"]) == STEPS and all(n > 0 for n in one["gradient_norms"])
    for record in ranks:  # DDP leaves every rank with the same, whole-batch gradient
        torch.testing.assert_close(
            torch.tensor(record["gradient_norms"]),
            torch.tensor(one["gradient_norms"]),
            rtol=1e-4,
            atol=0.0,
        )


def test_validation_pairs_are_shared_out_and_summed(single: Any, double: Any) -> None:
    _, one = single
    _, ranks = double
    evaluated = [step["step"] for step in ranks[0]["metrics"] if "valid_loss" in step]
    assert evaluated == [2, 3]  # every EVAL_EVERY steps and at the end of the epoch
    for key in ("valid_loss", "valid_rewards/chosen", "valid_rewards/margins"):
        torch.testing.assert_close(
            column(ranks[0]["metrics"], key),
            column(one["metrics"], key),
            rtol=1e-4,
            atol=1e-6,
            msg=key,
        )


def test_two_ranks_train_the_single_process_adapter(single: Any, double: Any) -> None:
    one = adapter(single[0])
    lora_b = [tensor for name, tensor in one.items() if "lora_B" in name]
    assert all(tensor.abs().max() > 0 for tensor in lora_b), "B starts at zero: it must move"
    assert_same_adapter(adapter(double[0]), one)
    assert_same_adapter(
        adapter(double[0], "checkpoints/step-2"), adapter(single[0], "checkpoints/step-2")
    )


def test_only_rank_zero_reports_and_writes(double: Any) -> None:
    values, ranks = double
    manifest = assert_rank_zero_alone_wrote(values, ranks, [2, 3], "metrics")
    assert manifest["method"] == "dpo"


def test_from_an_adapter_two_ranks_take_the_single_process_steps(
    single: Any, model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """The reference is then a frozen copy of the adapter, switched to for the reference pass
    and back (peft turns the policy's requires_grad off and on again): DDP must still reduce
    the policy's gradients."""
    init_adapter = Path(single[0]["output_dir"], "adapter")
    one = values_for(model_dir, data_dir, tmp_path / "one", init_adapter)
    two = values_for(model_dir, data_dir, tmp_path / "two", init_adapter)
    _, record = run_recipe(one, World())
    ranks = run_two_ranks(two)
    assert [r["status"] for r in ranks] == ["succeeded"] * WORLD
    assert ranks[0]["manifest"]["hyperparameters"]["reference"] == "initial_adapter"
    for key in (*REPORTED, "valid_loss"):
        torch.testing.assert_close(
            column(ranks[0]["metrics"], key), column(record["metrics"], key), rtol=1e-4, atol=1e-6
        )
    torch.testing.assert_close(
        torch.tensor(ranks[1]["gradient_norms"]),
        torch.tensor(record["gradient_norms"]),
        rtol=1e-4,
        atol=0.0,
    )
    assert_same_adapter(adapter(two), adapter(one))
