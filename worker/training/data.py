"""Chat SFT data: JSONL conversations -> token ids with assistant-only labels -> padded batches.

Each row is `{"messages": [{"role": ..., "content": ...}, ...]}` (OpenAI's chat fine-tuning
format), or a prompt/completion or instruction row converted to those messages by
`worker.datasets.formats.to_chat_messages`; preference rows are refused (they are for DPO).
Rows are rendered with the tokenizer's own chat template, so training sees exactly
the text the served model will see. Only assistant turns are trained: their content and the
end-of-turn token that lets the model stop. An assistant message with `"weight": 0` is kept
as context but not trained.
"""

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from worker.datasets.formats import PreferenceRowError, RowFormat, detect_format, to_chat_messages
from worker.datasets.rows import check_row
from worker.datasets.source import open_stream

IGNORE_INDEX = -100  # label value that torch's cross-entropy (and HF models) skip
ROLES = frozenset({"system", "user", "assistant"})

Message = dict[str, str]
CharSpan = tuple[int, int]


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    line_number: int
    truncated: bool

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trainable_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass(frozen=True)
class ChatDataset:
    examples: list[TokenizedExample]
    # Rows left with no trainable token (every assistant turn weight 0, or truncated away).
    skipped_line_numbers: list[int]

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def total_tokens(self) -> int:
        return sum(len(example) for example in self.examples)

    @property
    def trainable_tokens(self) -> int:
        return sum(example.trainable_tokens for example in self.examples)

    @property
    def truncated_examples(self) -> int:
        return sum(example.truncated for example in self.examples)


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (batch, longest) int64, right-padded with the pad token
    attention_mask: torch.Tensor  # (batch, longest) int64, 1 for real tokens
    labels: torch.Tensor  # (batch, longest) int64, IGNORE_INDEX where nothing is trained
    non_pad_tokens: int
    trainable_tokens: int

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            labels=self.labels.to(device),
            non_pad_tokens=self.non_pad_tokens,
            trainable_tokens=self.trainable_tokens,
        )


def load_chat_dataset(
    path: str | Path, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> ChatDataset:
    examples: list[TokenizedExample] = []
    skipped: list[int] = []
    for line_number, messages in read_conversations(path):
        example = tokenize_conversation(messages, tokenizer, max_seq_length, line_number)
        if example.trainable_tokens == 0:
            skipped.append(line_number)
        else:
            examples.append(example)
    if not examples:
        raise ValueError(f"{path}: no example has any trainable assistant token")
    return ChatDataset(examples=examples, skipped_line_numbers=skipped)


def read_conversations(path: str | Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Yield (1-based line number, messages) for every non-blank line, validating the shape.

    Plain or gzip JSONL (told apart by magic bytes), UTF-8 with or without a BOM. Rows of any
    supervised format (chat, prompt/completion, instruction) become chat messages through the
    dataset code's `to_chat_messages`; the format of the first row is the file's format.
    """
    file_format: RowFormat | None = None
    with open_stream(Path(path)) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {line_number}: invalid JSON ({exc.msg})") from exc
            detected = detect_format(row) if isinstance(row, dict) else None
            file_format = file_format or detected or RowFormat.CHAT
            yield (
                line_number,
                _validated_messages(_as_chat(row, file_format, line_number), line_number),
            )


def _as_chat(row: Any, fmt: RowFormat, line_number: int) -> Any:
    """The row as `{"messages": [...]}`; chat rows are checked by `_validated_messages`."""
    if fmt is RowFormat.CHAT or not isinstance(row, dict):
        return row
    if fmt is not RowFormat.PREFERENCE:
        problem = check_row(row, fmt)
        if problem:
            raise ValueError(f"line {line_number}: {problem[1]} [{problem[0]}]")
    try:
        return {"messages": to_chat_messages(row, fmt)}
    except PreferenceRowError as exc:
        raise ValueError(f"line {line_number}: {exc}") from exc


def _validated_messages(row: Any, line_number: int) -> list[dict[str, Any]]:
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"line {line_number}: expected an object with a non-empty 'messages' list")
    for index, message in enumerate(messages):
        where = f"line {line_number}, message {index}"
        if not isinstance(message, dict):
            raise ValueError(f"{where}: expected an object")
        if message.get("role") not in ROLES:
            raise ValueError(f"{where}: role must be one of {sorted(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"{where}: content must be a string")
        if message.get("weight", 1) not in (0, 1):
            raise ValueError(f"{where}: weight must be 0 or 1")
    if not any(message["role"] == "assistant" for message in messages):
        raise ValueError(f"line {line_number}: no assistant message to train on")
    if messages[0]["role"] == "assistant":
        raise ValueError(f"line {line_number}: the first message cannot be an assistant message")
    return messages


def tokenize_conversation(
    messages: Sequence[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    line_number: int = 0,
) -> TokenizedExample:
    """Render with the chat template, tokenize once, and label the trainable assistant spans."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    text = _render(tokenizer, plain, add_generation_prompt=False)
    spans = [
        _assistant_span(tokenizer, plain, index, text, line_number)
        for index, message in enumerate(messages)
        if message["role"] == "assistant" and message.get("weight", 1) == 1
    ]
    # One tokenization of the whole conversation (not per piece): BPE merges and the ids
    # are then exactly those of the rendered text. Labels follow from character offsets.
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = encoding["input_ids"]
    labels = [
        token_id if _starts_inside(start, spans) else IGNORE_INDEX
        for token_id, (start, _end) in zip(input_ids, encoding["offset_mapping"], strict=True)
    ]
    if labels:
        labels[0] = IGNORE_INDEX  # nothing precedes the first token, so it is never predicted
    truncated = len(input_ids) > max_seq_length
    return TokenizedExample(
        input_ids=input_ids[:max_seq_length],
        labels=labels[:max_seq_length],
        line_number=line_number,
        truncated=truncated,
    )


def _assistant_span(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    index: int,
    full_text: str,
    line_number: int,
) -> CharSpan:
    """Character span of assistant message `index` in `full_text`: the text the template adds
    after the generation prompt, i.e. the reply and its end-of-turn marker.

    This only works if rendering is prefix-consistent: the prompt for turn i must be a prefix
    of the conversation up to turn i, which must be a prefix of the whole conversation.
    Templates that rewrite earlier turns (e.g. dropping past reasoning) are refused.
    """
    prompt = _render(tokenizer, messages[:index], add_generation_prompt=True)
    through_reply = _render(tokenizer, messages[: index + 1], add_generation_prompt=False)
    if not (through_reply.startswith(prompt) and full_text.startswith(through_reply)):
        raise ValueError(
            f"line {line_number}: the tokenizer's chat template is not prefix-consistent at "
            f"message {index} (rendering earlier turns changes when later turns are added), "
            "so assistant tokens cannot be located reliably"
        )
    # Whitespace the template puts after the end-of-turn token (ChatML's "\n") is never
    # generated, since generation stops at that token, so it is not trained either.
    return len(prompt), len(through_reply.rstrip())


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], add_generation_prompt: bool
) -> str:
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert isinstance(text, str)
    return text


def _starts_inside(position: int, spans: Sequence[CharSpan]) -> bool:
    return any(start <= position < end for start, end in spans)


def epoch_order_generator(seed: int, n_examples: int, epoch: int) -> torch.Generator:
    """The data-order generator as it stands at the start of `epoch` (1-based) of a run that
    draws one permutation of `n_examples` per epoch from a generator seeded with `seed`: the
    earlier epochs' draws are replayed, so a resumed run sees the same order."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epoch - 1):
        torch.randperm(n_examples, generator=generator)
    return generator


def iter_batches(
    examples: Sequence[TokenizedExample],
    batch_size: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    skip_batches: int = 0,
) -> Iterator[Batch]:
    """Batches in a random order drawn from `generator` (file order without one). Examples are
    not sorted by length: the order, and so the run, depends only on the seed. The last batch
    may be smaller. `skip_batches` leaves out the first batches of that order (a resumed
    epoch) without collating them."""
    if generator is None:
        order = list(range(len(examples)))
    else:
        order = torch.randperm(len(examples), generator=generator).tolist()
    for start in range(skip_batches * batch_size, len(order), batch_size):
        yield collate([examples[i] for i in order[start : start + batch_size]], pad_token_id)


def collate(examples: Sequence[TokenizedExample], pad_token_id: int) -> Batch:
    longest = max(len(example) for example in examples)
    shape = (len(examples), longest)
    input_ids = torch.full(shape, pad_token_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros(shape, dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example)
        input_ids[row, :length] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :length] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :length] = 1
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        non_pad_tokens=int(attention_mask.sum()),
        trainable_tokens=int((labels != IGNORE_INDEX).sum()),
    )
