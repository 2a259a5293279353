"""A job's config.json picks its recipe by `method`."""

from pathlib import Path
from typing import Any

import pytest

from tests.worker.training.test_recipe import RecordingReporter
from worker.training.distributed import World
from worker.training.dpo import DPORecipe
from worker.training.recipe import SFTRecipe, SilentReporter
from worker.training.recipes import make_recipe


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "base_model_id": "m",
        "base_model_path": str(tmp_path),
        "training_path": str(tmp_path / "train.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "dataset_sha256": "0" * 64,
        **extra,
    }


def test_no_method_means_supervised(tmp_path: Path) -> None:
    recipe = make_recipe(config(tmp_path), RecordingReporter())
    assert isinstance(recipe, SFTRecipe)


def test_dpo_gets_the_dpo_recipe_with_its_beta(tmp_path: Path) -> None:
    recipe = make_recipe(config(tmp_path, method="dpo", beta=0.3), RecordingReporter())
    assert isinstance(recipe, DPORecipe) and recipe.config.beta == 0.3


def test_under_torchrun_dpo_gets_a_recipe_of_its_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    recipe = make_recipe(config(tmp_path, method="dpo"), RecordingReporter())
    assert isinstance(recipe, DPORecipe)
    assert recipe.world == World(rank=1, world_size=2, local_rank=1)
    assert isinstance(recipe.reporter, SilentReporter)  # rank 0 alone reports


def test_beta_is_not_a_supervised_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown training config keys: \\['beta'\\]"):
        make_recipe(config(tmp_path, method="supervised", beta=0.3), RecordingReporter())


def test_an_unknown_method_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown training method 'ppo'"):
        make_recipe(config(tmp_path, method="ppo"), RecordingReporter())
