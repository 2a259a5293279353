"""The training recipe for each fine-tuning method, chosen by the `method` key of a job's
config.json ("supervised" when absent)."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from worker.training.recipe import Reporter, TrainResult


class Recipe(Protocol):
    def setup(self) -> None: ...

    def train(self) -> "TrainResult": ...


# The recipes are imported only when chosen: each pulls in torch, transformers and peft.
def _supervised(config: dict[str, Any], reporter: "Reporter") -> Recipe:
    from worker.training.recipe import SFTRecipe, TrainConfig

    return SFTRecipe(TrainConfig.from_dict(config), reporter)


def _dpo(config: dict[str, Any], reporter: "Reporter") -> Recipe:
    from worker.training.dpo import DPOConfig, DPORecipe

    return DPORecipe(DPOConfig.from_dict(config), reporter)


RECIPES: dict[str, Callable[[dict[str, Any], "Reporter"], Recipe]] = {
    "supervised": _supervised,
    "dpo": _dpo,
}


def make_recipe(config: dict[str, Any], reporter: "Reporter") -> Recipe:
    """The recipe for `config["method"]` (supervised when absent), given the other keys."""
    fields = dict(config)
    method = fields.pop("method", "supervised")
    if method not in RECIPES:
        raise ValueError(f"unknown training method {method!r}; known: {sorted(RECIPES)}")
    return RECIPES[method](fields, reporter)
