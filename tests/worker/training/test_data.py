import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from worker.training.data import (
    IGNORE_INDEX,
    TokenizedExample,
    iter_batches,
    load_chat_dataset,
    tokenize_conversation,
)

END_OF_TURN = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def chat(*turns: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"role": role, "content": content} for role, content in turns]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def trained_spans(example: TokenizedExample, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Decode each run of consecutive trainable tokens."""
    spans: list[list[int]] = []
    previous_trainable = False
    for label in example.labels:
        trainable = label != IGNORE_INDEX
        if trainable and not previous_trainable:
            spans.append([])
        if trainable:
            spans[-1].append(label)
        previous_trainable = trainable
    return [tokenizer.decode(span) for span in spans]


def test_only_assistant_replies_and_their_end_token_are_trained(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    messages = chat(
        ("system", "You answer in French."),
        ("user", "Hello"),
        ("assistant", "Bonjour !"),
        ("user", "Thanks"),
        ("assistant", "De rien.\nÀ bientôt."),
    )

    example = tokenize_conversation(messages, tokenizer, max_seq_length=512)

    assert trained_spans(example, tokenizer) == [
        "Bonjour !" + END_OF_TURN,
        "De rien.\nÀ bientôt." + END_OF_TURN,
    ]
    assert example.labels[0] == IGNORE_INDEX
    trainable = [label for label in example.labels if label != IGNORE_INDEX]
    assert example.trainable_tokens == len(trainable)
    # Trained labels are the input ids themselves (the model shifts them internally).
    assert all(
        label in (IGNORE_INDEX, token)
        for label, token in zip(example.labels, example.input_ids, strict=True)
    )


def test_ids_are_those_of_the_rendered_conversation(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = chat(("user", "2+2?"), ("assistant", "4"))

    example = tokenize_conversation(messages, tokenizer, max_seq_length=512)

    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert example.input_ids == tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_assistant_message_with_weight_zero_is_context_only(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    messages = chat(("user", "a"), ("assistant", "first"), ("user", "b"), ("assistant", "second"))
    messages[1]["weight"] = 0

    example = tokenize_conversation(messages, tokenizer, max_seq_length=512)

    assert trained_spans(example, tokenizer) == ["second" + END_OF_TURN]


def test_truncation_keeps_the_first_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = chat(("user", "Count."), ("assistant", " ".join(str(n) for n in range(200))))
    full = tokenize_conversation(messages, tokenizer, max_seq_length=10_000)

    example = tokenize_conversation(messages, tokenizer, max_seq_length=64)

    assert example.truncated and not full.truncated
    assert example.input_ids == full.input_ids[:64]
    assert example.labels == full.labels[:64]
    assert example.trainable_tokens > 0


def test_template_that_is_not_prefix_consistent_is_refused(model_dir: Path, tmp_path: Path) -> None:
    inconsistent = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # The generation prompt opens a "bot" turn but replies are rendered as "assistant" turns.
    inconsistent.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>bot\n{% endif %}"
    )
    good = {"messages": chat(("user", "hi"), ("assistant", "hello"))}
    path = write_jsonl(tmp_path / "train.jsonl", [good, good, good])

    with pytest.raises(ValueError, match=r"line 1: .*not prefix-consistent"):
        load_chat_dataset(path, inconsistent, max_seq_length=512)


def test_rows_with_nothing_to_train_are_skipped(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path
) -> None:
    silent = chat(("user", "hi"), ("assistant", "ignored"))
    silent[1]["weight"] = 0
    rows = [
        {"messages": chat(("user", "hi"), ("assistant", "hello"))},
        {"messages": silent},
        {"messages": chat(("user", "hey"), ("assistant", "hello again"))},
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)

    dataset = load_chat_dataset(path, tokenizer, max_seq_length=512)

    assert [example.line_number for example in dataset.examples] == [1, 3]
    assert dataset.skipped_line_numbers == [2]
    assert dataset.total_tokens == sum(len(example) for example in dataset.examples)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("not json", "invalid JSON"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), "role must be one of"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}), "no assistant message"),
        (json.dumps({"messages": chat(("assistant", "x"))}), "first message cannot be"),
    ],
)
def test_malformed_rows_name_their_line(
    tokenizer: PreTrainedTokenizerBase, tmp_path: Path, line: str, error: str
) -> None:
    good = json.dumps({"messages": chat(("user", "hi"), ("assistant", "hello"))})
    path = tmp_path / "train.jsonl"
    path.write_text(f"{good}\n\n{line}\n")

    with pytest.raises(ValueError, match=f"line 3.*{error}"):
        load_chat_dataset(path, tokenizer, max_seq_length=512)


def make_example(length: int, line_number: int) -> TokenizedExample:
    input_ids = list(range(10, 10 + length))
    labels = [IGNORE_INDEX] * (length // 2) + input_ids[length // 2 :]
    return TokenizedExample(input_ids, labels, line_number, truncated=False)


def test_batches_pad_to_the_longest_and_mask_padding() -> None:
    examples = [make_example(3, 1), make_example(6, 2)]

    (batch,) = iter_batches(examples, batch_size=2, pad_token_id=0)

    assert batch.input_ids.tolist() == [[10, 11, 12, 0, 0, 0], [10, 11, 12, 13, 14, 15]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert batch.labels.tolist() == [
        [IGNORE_INDEX, 11, 12, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
        [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 13, 14, 15],
    ]
    assert batch.non_pad_tokens == 9
    assert batch.trainable_tokens == 5


def batch_orders(examples: list[TokenizedExample], seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        [len(row) - int((row == 0).sum()) for row in batch.input_ids]  # lengths identify rows
        for batch in iter_batches(examples, batch_size=3, pad_token_id=0, generator=generator)
    ]


def test_batch_order_depends_only_on_the_seed() -> None:
    examples = [make_example(length, line) for line, length in enumerate(range(1, 11), start=1)]

    first = batch_orders(examples, seed=7)

    assert batch_orders(examples, seed=7) == first
    assert batch_orders(examples, seed=8) != first
    assert [len(batch) for batch in first] == [3, 3, 3, 1]
    assert sorted(length for batch in first for length in batch) == list(range(1, 11))
