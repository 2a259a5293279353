"""The recipe's packed fast path on the real SmolLM2-135M (nf4 on CPU): the same losses as the
padded path on the same examples, no attention across packed examples, token-budget steps,
and resume from a checkpoint with token-budget steps."""

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AttentionInterface

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
from worker.training import recipe as recipe_module
from worker.training.recipe import SFTRecipe, predicted_tokens_of

# The parity runs compute in float32 (the recipe would pick bf16 on CPUs with native bf16):
# the two paths run other kernels in other orders and agree to rounding, not bit for bit, and
# bf16 rounding (0.2-1.5 % on a loss here), amplified by Adam's first steps, would leave a
# tolerance too wide to tell a small leak from noise.
LOSS_RTOL = 1e-4  # measured: 5e-6 (float32)
LEAKY_ATTENTION = "test_leaky_causal"
TOKEN_BUDGET = 128  # two max_seq_length (64) rows
CHECKPOINT_EVERY = 2
INTERRUPTED_AFTER = 5


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_jsonl(directory / "train.jsonl", [shout(word) for word in WORDS])
    write_jsonl(directory / "valid.jsonl", [shout(word) for word in VALIDATION_WORDS])
    return directory


def parity_run(model_dir: Path, data_dir: Path, output_dir: Path, packing: bool) -> Run:
    """One epoch without dropout (so both paths compute the same function), validation at
    the end of it."""
    config = make_config(
        model_dir, data_dir, output_dir, packing=packing, n_epochs=1, lora_dropout=0.0
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe_module, "choose_compute_dtype", lambda device: torch.float32)
        return run_recipe(config, RecordingReporter())


@pytest.fixture(scope="module")
def padded(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return parity_run(model_dir, data_dir, tmp_path_factory.mktemp("padded"), packing=False)


@pytest.fixture(scope="module")
def packed(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return parity_run(model_dir, data_dir, tmp_path_factory.mktemp("packed"), packing=True)


def test_packed_training_takes_the_padded_losses_step_by_step(padded: Run, packed: Run) -> None:
    assert len(packed.reporter.losses) == len(padded.reporter.losses) == len(WORDS) // 4
    # Same steps, same examples, same weights after each update: every step's loss matches.
    assert packed.recipe.compute_dtype == torch.float32
    assert packed.reporter.losses == pytest.approx(padded.reporter.losses, rel=LOSS_RTOL)
    valid = [run.reporter.metrics_log[-1]["valid_loss"] for run in (padded, packed)]
    assert valid[1] == pytest.approx(valid[0], rel=LOSS_RTOL)
    # Training moved the loss by far more than the tolerance: the comparison can tell.
    losses = padded.reporter.losses
    assert abs(losses[-1] - losses[0]) > 5 * LOSS_RTOL * losses[0]


def test_packed_training_counts_the_same_tokens(padded: Run, packed: Run) -> None:
    for field in ("trained_tokens", "total_steps"):
        assert [m[field] for m in packed.reporter.metrics_log] == [
            m[field] for m in padded.reporter.metrics_log
        ]
    assert packed.result.trained_tokens == padded.result.trained_tokens


def test_packed_training_ends_with_the_padded_adapter(padded: Run, packed: Run) -> None:
    ours = load_file(packed.config.adapter_dir / "adapter_model.safetensors")
    theirs = load_file(padded.config.adapter_dir / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    diff = torch.cat([(ours[k] - theirs[k]).flatten() for k in ours]).norm()
    norm = torch.cat([theirs[k].flatten() for k in theirs]).norm()
    assert diff / norm < 0.01


def test_the_manifest_records_the_path_taken(padded: Run, packed: Run) -> None:
    assert packed.result.manifest is not None and padded.result.manifest is not None
    ours = packed.result.manifest["hyperparameters"]
    theirs = padded.result.manifest["hyperparameters"]
    assert ours["packing"] is True and theirs["packing"] is False
    assert theirs["fast_path"] is None
    assert ours["fast_path"]["attention"] == "sdpa_block_diagonal_mask"  # CPU
    assert ours["fast_path"]["fused_qlora_layers"] == 30 * 7  # every nf4 LoRA layer
    assert ours["fast_path"]["liger_kernels"] is False
    assert ours["gradient_checkpointing"] is False  # off by default on the CPU
    assert ours["optimizer"] == "adamw"  # fused AdamW is CUDA's


def leaky_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    """Plain causal attention over the whole packed row: no document mask."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, is_causal=True, scale=scaling
    )
    return out.transpose(1, 2), None


@torch.no_grad()
def test_packed_examples_do_not_attend_to_each_other(packed: Run) -> None:
    """The recipe's loss on one packed step equals the padded transformers loss on the same
    examples with the same (trained) weights; the same row without document masking does
    not, by far more than the tolerance."""
    recipe: SFTRecipe = packed.recipe
    examples = recipe._train_data.examples[:4]
    config = recipe._model.get_base_model().config
    fast_attention = config._attn_implementation
    try:
        _, packed_loss = recipe._loss(examples)
        config._attn_implementation = "sdpa"
        from worker.training.data import collate

        batch = collate(examples, recipe._tokenizer.pad_token_id)
        padded_loss = recipe._model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
        ).loss.item()
        AttentionInterface.register(LEAKY_ATTENTION, leaky_attention)
        config._attn_implementation = LEAKY_ATTENTION
        _, leaky_loss = recipe._loss(examples)
    finally:
        config._attn_implementation = fast_attention
    assert packed_loss == pytest.approx(padded_loss, rel=LOSS_RTOL)
    assert abs(leaky_loss - padded_loss) > 100 * LOSS_RTOL * padded_loss  # measured: 100 %


# ----------------------------------------------------------------------- token budget


def budget_run(
    model_dir: Path, output_dir: Path, data_dir: Path, stop_after: int | None = None
) -> Run:
    config = make_config(
        model_dir,
        data_dir,
        output_dir,
        max_tokens_per_batch=TOKEN_BUDGET,
        checkpoint_every_steps=CHECKPOINT_EVERY,
    )
    return run_recipe(config, RecordingReporter(stop_after_steps=stop_after))


@pytest.fixture(scope="module")
def budget(model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return budget_run(model_dir, tmp_path_factory.mktemp("budget"), data_dir)


@pytest.fixture(scope="module")
def budget_resumed(
    model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """Stopped after INTERRUPTED_AFTER steps (newest checkpoint mid-epoch), then resumed by a
    fresh recipe on the same output directory."""
    output_dir = tmp_path_factory.mktemp("budget_interrupted")
    budget_run(model_dir, output_dir, data_dir, stop_after=INTERRUPTED_AFTER)
    return budget_run(model_dir, output_dir, data_dir)


def test_token_budget_steps_stay_within_the_budget(budget: Run) -> None:
    recipe = budget.recipe
    examples = recipe._train_data.examples
    for epoch in (1, 2):
        plan = recipe._epoch_plan(epoch)
        assert sorted(i for step in plan for i in step) == list(range(len(examples)))
        for step in plan:
            assert sum(len(examples[i]) for i in step) <= TOKEN_BUDGET
    tokens = [m["trained_tokens"] for m in budget.reporter.metrics_log]
    per_step = [b - a for a, b in zip([0, *tokens], tokens, strict=False)]
    assert max(per_step) <= TOKEN_BUDGET
    assert budget.result.trained_tokens == 2 * sum(len(example) for example in examples)
    # The budget, not batch_size (4), decides how many examples a step takes.
    assert budget.result.steps == recipe._total_steps != 2 * len(WORDS) // 4
    assert budget.result.manifest is not None
    assert budget.result.manifest["hyperparameters"]["max_tokens_per_batch"] == TOKEN_BUDGET


def test_token_budget_resume_continues_at_the_saved_position(
    budget: Run, budget_resumed: Run
) -> None:
    resumed_from = budget_resumed.result.resumed_from_step
    assert resumed_from is not None and resumed_from < INTERRUPTED_AFTER
    steps = [m["step"] for m in budget_resumed.reporter.metrics_log]
    assert steps == list(range(resumed_from + 1, budget.result.steps + 1))
    expected = [m["train_loss"] for m in budget.reporter.metrics_log[resumed_from:]]
    assert budget_resumed.reporter.losses == pytest.approx(expected, rel=1e-4)
    ours = load_file(budget_resumed.config.adapter_dir / "adapter_model.safetensors")
    theirs = load_file(budget.config.adapter_dir / "adapter_model.safetensors")
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-6)


def test_predicted_tokens_leave_out_the_first_label() -> None:
    from worker.training.data import IGNORE_INDEX, TokenizedExample

    example = TokenizedExample(
        input_ids=[5, 6, 7, 8], labels=[5, IGNORE_INDEX, 7, 8], line_number=1, truncated=False
    )
    assert predicted_tokens_of(example) == 2


def test_token_budget_validation_plans_the_validation_examples(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Validation batches are planned from the validation examples' own lengths: a validation
    file longer than the training file must not index past the training examples."""
    data = tmp_path_factory.mktemp("long_validation")
    write_jsonl(data / "train.jsonl", [shout(word) for word in WORDS[:4]])
    write_jsonl(data / "valid.jsonl", [shout(word) for word in WORDS])  # 16 rows > 4
    config = make_config(
        model_dir,
        data,
        tmp_path_factory.mktemp("out"),
        max_tokens_per_batch=TOKEN_BUDGET,
        n_epochs=1,
    )
    run = run_recipe(config, RecordingReporter())
    losses = [m["valid_loss"] for m in run.reporter.metrics_log if m.get("valid_loss") is not None]
    assert losses and all(loss == loss and loss > 0 for loss in losses)  # finite, not NaN
