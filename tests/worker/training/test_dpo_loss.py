"""The DPO loss against its formula, and preference rows -> chosen/rejected token tensors."""

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from worker.training.data import IGNORE_INDEX
from worker.training.dpo import DPOConfig, dpo_loss, sequence_logps
from worker.training.preference_data import (
    iter_pair_batches,
    load_preference_dataset,
    preference_row,
    read_preference_rows,
    tokenize_pair,
)

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
]
OPENAI_ROW = {
    "input": {"messages": PROMPT},
    "preferred_output": [{"role": "assistant", "content": "Paris."}],
    "non_preferred_output": [{"role": "assistant", "content": "It might be Lyon, or Nice."}],
}


def test_loss_matches_the_formula() -> None:
    policy_chosen = torch.tensor([-10.0, -4.0, -7.5])
    policy_rejected = torch.tensor([-12.0, -3.0, -7.5])
    reference_chosen = torch.tensor([-11.0, -4.5, -8.0])
    reference_rejected = torch.tensor([-11.0, -3.5, -6.0])
    beta = 0.2

    out = dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)

    expected_losses = []
    for pc, pr, rc, rr in zip(
        policy_chosen.tolist(),
        policy_rejected.tolist(),
        reference_chosen.tolist(),
        reference_rejected.tolist(),
        strict=True,
    ):
        z = beta * ((pc - rc) - (pr - rr))
        expected_losses.append(-math.log(1 / (1 + math.exp(-z))))
    assert out.loss.item() == pytest.approx(sum(expected_losses) / 3, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.2, 0.1, 0.1])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.2, 0.1, -0.3])
    metrics = out.metrics()
    assert metrics["rewards/chosen"] == pytest.approx(0.4 / 3)
    assert metrics["rewards/rejected"] == pytest.approx(-0.4 / 3)
    # Margins 0.4, 0.0, 0.4: a tie is not a win.
    assert metrics["rewards/accuracies"] == pytest.approx(2 / 3)
    assert metrics["rewards/margins"] == pytest.approx(0.8 / 3)


def test_equal_policy_and_reference_give_log_2_and_gradients_push_apart() -> None:
    policy_chosen = torch.tensor([-5.0], requires_grad=True)
    policy_rejected = torch.tensor([-6.0], requires_grad=True)
    out = dpo_loss(
        policy_chosen, policy_rejected, torch.tensor([-5.0]), torch.tensor([-6.0]), beta=0.1
    )
    assert out.loss.item() == pytest.approx(math.log(2))
    out.loss.backward()
    assert policy_chosen.grad is not None and policy_rejected.grad is not None
    # d loss / d chosen = -beta * sigmoid(0) = -0.05: raising the chosen log-prob lowers the loss.
    assert policy_chosen.grad.item() == pytest.approx(-0.05)
    assert policy_rejected.grad.item() == pytest.approx(0.05)


def test_sequence_logps_sums_labelled_tokens_only() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor(
        [
            [IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX],
            [IGNORE_INDEX, 1, 2, 6, 0],
        ]
    )
    logps = torch.log_softmax(logits, dim=-1)
    # The logits at position t predict the token at t + 1.
    expected = [
        logps[0, 1, 3] + logps[0, 2, 4],
        logps[1, 0, 1] + logps[1, 1, 2] + logps[1, 2, 6] + logps[1, 3, 0],
    ]
    assert sequence_logps(logits, labels).tolist() == pytest.approx([e.item() for e in expected])


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def test_pair_masks_the_prompt_and_uses_the_chat_template(tokenizer) -> None:  # type: ignore[no-untyped-def]
    pair = tokenize_pair(preference_row(OPENAI_ROW), tokenizer, max_seq_length=512)
    for example, reply in (
        (pair.chosen, "Paris."),
        (pair.rejected, "It might be Lyon, or Nice."),
    ):
        conversation = [*PROMPT, {"role": "assistant", "content": reply}]
        rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
        assert tokenizer.decode(example.input_ids) == rendered
        prompt_text = tokenizer.apply_chat_template(
            PROMPT, tokenize=False, add_generation_prompt=True
        )
        n_prompt = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        assert all(label == IGNORE_INDEX for label in example.labels[:n_prompt])
        trained = [label for label in example.labels if label != IGNORE_INDEX]
        # The reply and the end-of-turn token that lets the model stop, nothing else.
        assert tokenizer.decode(trained) == reply + "<|im_end|>"
    # Both sides share the prompt token for token.
    assert pair.chosen.input_ids[:n_prompt] == pair.rejected.input_ids[:n_prompt]


def test_prompt_assistant_turns_are_context_not_labels(tokenizer) -> None:  # type: ignore[no-untyped-def]
    row = {
        "input": {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Capital of France?"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "Paris."}],
        "non_preferred_output": [{"role": "assistant", "content": "Lyon."}],
    }
    pair = tokenize_pair(preference_row(row), tokenizer, max_seq_length=512)
    trained = [label for label in pair.chosen.labels if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Paris.<|im_end|>"


def test_both_row_formats_give_the_same_tensors(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trl_row = {
        "prompt": PROMPT,
        "chosen": "Paris.",
        "rejected": [{"role": "assistant", "content": "It might be Lyon, or Nice."}],
    }
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(OPENAI_ROW) + "\n\n" + json.dumps(trl_row) + "\n")
    dataset = load_preference_dataset(path, tokenizer, max_seq_length=512)
    openai_pair, trl_pair = dataset.pairs
    assert (openai_pair.line_number, trl_pair.line_number) == (1, 3)
    assert openai_pair.chosen.input_ids == trl_pair.chosen.input_ids
    assert openai_pair.rejected.labels == trl_pair.rejected.labels


def test_batch_holds_chosen_sides_then_rejected_sides(tokenizer) -> None:  # type: ignore[no-untyped-def]
    rows = [OPENAI_ROW, {**OPENAI_ROW, "input": {"messages": PROMPT[1:]}}]
    pairs = [tokenize_pair(preference_row(r), tokenizer, 512, i) for i, r in enumerate(rows)]
    (batch,) = iter_pair_batches(pairs, batch_size=2, pad_token_id=0)
    assert batch.n_pairs == 2
    sequences = batch.sequences
    assert sequences.input_ids.shape[0] == 4
    order = [pairs[0].chosen, pairs[1].chosen, pairs[0].rejected, pairs[1].rejected]
    for row, example in enumerate(order):
        n = len(example)
        assert sequences.input_ids[row, :n].tolist() == example.input_ids
        assert sequences.labels[row, :n].tolist() == example.labels
        assert (sequences.labels[row, n:] == IGNORE_INDEX).all()
        assert int(sequences.attention_mask[row].sum()) == n


def test_a_pair_whose_reply_is_truncated_away_is_skipped(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    long_prompt = {"role": "user", "content": "word " * 200}
    rows = [OPENAI_ROW, {**OPENAI_ROW, "input": {"messages": [long_prompt]}}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = load_preference_dataset(path, tokenizer, max_seq_length=64)
    assert len(dataset) == 1 and dataset.skipped_line_numbers == [2]


def test_non_preference_rows_are_refused_naming_the_line(tmp_path: Path) -> None:
    chat = {"messages": [*PROMPT, {"role": "assistant", "content": "Paris."}]}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(OPENAI_ROW) + "\n" + json.dumps(chat) + "\n")
    with pytest.raises(ValueError, match=r"line 2: .*preference"):
        list(read_preference_rows(path))


@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan")])
def test_config_refuses_a_beta_that_is_not_positive(beta: float, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beta must be a positive number"):
        DPOConfig(
            base_model_id="m",
            base_model_path=tmp_path,
            training_path=tmp_path / "t.jsonl",
            output_dir=tmp_path,
            dataset_sha256="0" * 64,
            beta=beta,
        )
