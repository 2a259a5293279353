"""Preference (DPO) data: JSONL preference rows -> a chosen and a rejected token sequence per row,
labelled on the reply only -> padded batches of pairs.

Rows are OpenAI's `{"input": {"messages": [...]}, "preferred_output": [...],
"non_preferred_output": [...]}` or `{"prompt", "chosen", "rejected"}` (see
`worker.datasets.formats`). Each side is the prompt followed by its reply, rendered with the
tokenizer's own chat template by the same code as SFT (`data.tokenize_conversation`): the prompt
(assistant turns included) is context, the reply and its end-of-turn token are the labels.
"""

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from worker.datasets.formats import RowFormat
from worker.datasets.rows import check_row
from worker.datasets.source import open_stream
from worker.training.data import Batch, TokenizedExample, collate, tokenize_conversation

Message = dict[str, Any]


@dataclass(frozen=True)
class PreferenceRow:
    prompt: list[Message]
    chosen: list[Message]  # the preferred reply: assistant messages
    rejected: list[Message]


@dataclass(frozen=True)
class PreferencePair:
    chosen: TokenizedExample
    rejected: TokenizedExample
    line_number: int

    @property
    def total_tokens(self) -> int:
        return len(self.chosen) + len(self.rejected)

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated


@dataclass(frozen=True)
class PreferenceDataset:
    pairs: list[PreferencePair]
    # Rows whose chosen or rejected reply was truncated away entirely.
    skipped_line_numbers: list[int]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def total_tokens(self) -> int:
        return sum(pair.total_tokens for pair in self.pairs)

    @property
    def truncated_examples(self) -> int:
        return sum(pair.truncated for pair in self.pairs)


@dataclass(frozen=True)
class PairBatch:
    """`sequences` holds the chosen sides of `n_pairs` pairs, then their rejected sides in the
    same order: one forward pass scores both."""

    sequences: Batch
    n_pairs: int

    def to(self, device: torch.device) -> "PairBatch":
        return PairBatch(self.sequences.to(device), self.n_pairs)


def load_preference_dataset(
    path: str | Path, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> PreferenceDataset:
    pairs: list[PreferencePair] = []
    skipped: list[int] = []
    for line_number, row in read_preference_rows(path):
        pair = tokenize_pair(row, tokenizer, max_seq_length, line_number)
        if pair.chosen.trainable_tokens == 0 or pair.rejected.trainable_tokens == 0:
            skipped.append(line_number)
        else:
            pairs.append(pair)
    if not pairs:
        raise ValueError(
            f"{path}: no preference pair keeps a reply token after truncation to "
            f"{max_seq_length} tokens"
        )
    return PreferenceDataset(pairs=pairs, skipped_line_numbers=skipped)


def read_preference_rows(path: str | Path) -> Iterator[tuple[int, PreferenceRow]]:
    """Yield (1-based line number, row) for every non-blank line; any other format is refused."""
    with open_stream(Path(path)) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {line_number}: invalid JSON ({exc.msg})") from exc
            problem = check_row(row, RowFormat.PREFERENCE)
            if problem:
                raise ValueError(
                    f"line {line_number}: {problem[1]} [{problem[0]}]; preference training "
                    "needs preference rows"
                )
            yield line_number, preference_row(row)


def preference_row(row: dict[str, Any]) -> PreferenceRow:
    """The prompt and both replies of a valid preference row, as chat messages."""
    if "preferred_output" in row:
        return PreferenceRow(
            prompt=row["input"]["messages"],
            chosen=row["preferred_output"],
            rejected=row["non_preferred_output"],
        )
    return PreferenceRow(
        prompt=_as_messages(row["prompt"], "user"),
        chosen=_as_messages(row["chosen"], "assistant"),
        rejected=_as_messages(row["rejected"], "assistant"),
    )


def _as_messages(value: str | list[Message], role: str) -> list[Message]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def tokenize_pair(
    row: PreferenceRow,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    line_number: int = 0,
) -> PreferencePair:
    # weight 0: assistant turns inside the prompt are context, not what the pair compares.
    prompt = [{"role": m["role"], "content": m["content"], "weight": 0} for m in row.prompt]

    def side(reply: list[Message]) -> TokenizedExample:
        messages = prompt + [{"role": m["role"], "content": m["content"]} for m in reply]
        return tokenize_conversation(messages, tokenizer, max_seq_length, line_number)

    return PreferencePair(side(row.chosen), side(row.rejected), line_number)


def iter_pair_batches(
    pairs: Sequence[PreferencePair], batch_size: int, pad_token_id: int
) -> Iterator[PairBatch]:
    """`batch_size` pairs a batch, in file order. The last batch may be smaller."""
    for start in range(0, len(pairs), batch_size):
        yield pair_batch(pairs[start : start + batch_size], pad_token_id)


def pair_batch(pairs: Sequence[PreferencePair], pad_token_id: int) -> PairBatch:
    """The chosen sides of `pairs`, then their rejected sides, padded into one batch."""
    sequences = [pair.chosen for pair in pairs] + [pair.rejected for pair in pairs]
    return PairBatch(collate(sequences, pad_token_id), len(pairs))
