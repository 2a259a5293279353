"""Padding-free packing: several tokenized examples in one row, plus what attention needs to
keep them apart.

A padded batch spends compute on pad tokens (about half of it for chat data whose lengths
spread from tens to thousands of tokens). Packing concatenates the examples instead:

    row:          [a0 a1 a2 a3 | b0 b1 | c0 c1 c2]
    position_ids: [ 0  1  2  3 |  0  1 |  0  1  2]     restart per example (RoPE sees each alone)
    cu_seqlens:   [0, 4, 6, 9]                          where each example starts, and the end
    labels:       [-100 . . .  | -100 . | -100 . .]     no example is trained to predict the
                                                         first token of the next one

Attention must stay inside each example (document masking): a varlen kernel takes
`cu_seqlens`; a dense kernel takes `block_diagonal_causal_mask`; flex attention takes
`document_causal_mask_mod`. Without it, later examples attend to earlier ones and the loss
is that of a different, longer context.

Batches are planned by a token budget rather than an example count, so every optimizer step
carries about the same number of tokens and the memory peak is bounded by the budget.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from worker.training.data import IGNORE_INDEX


class Example(Protocol):
    """Anything with token ids and labels of the same length (e.g. data.TokenizedExample)."""

    @property
    def input_ids(self) -> Sequence[int]: ...

    @property
    def labels(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class PackedBatch:
    input_ids: torch.Tensor  # (1, total) int64, the examples back to back, no padding
    labels: torch.Tensor  # (1, total) int64, IGNORE_INDEX at the first token of every example
    position_ids: torch.Tensor  # (1, total) int64, 0.. within each example
    cu_seqlens: torch.Tensor  # (n_examples + 1,) int32, example boundaries: 0, len0, len0+len1, …
    max_seqlen: int  # the longest example
    trainable_tokens: int  # labels that are not IGNORE_INDEX: the loss's denominator

    @property
    def num_examples(self) -> int:
        return int(self.cu_seqlens.numel()) - 1

    @property
    def non_pad_tokens(self) -> int:
        return int(self.input_ids.shape[1])  # there is no padding

    @property
    def lengths(self) -> list[int]:
        return torch.diff(self.cu_seqlens).tolist()

    def to(self, device: torch.device | str) -> "PackedBatch":
        return PackedBatch(
            input_ids=self.input_ids.to(device, non_blocking=True),
            labels=self.labels.to(device, non_blocking=True),
            position_ids=self.position_ids.to(device, non_blocking=True),
            cu_seqlens=self.cu_seqlens.to(device, non_blocking=True),
            max_seqlen=self.max_seqlen,
            trainable_tokens=self.trainable_tokens,
        )

    def attention_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that transformers passes from the model's forward down to every
        attention call (its `FlashAttentionKwargs` names)."""
        return {
            "cu_seq_lens_q": self.cu_seqlens,
            "cu_seq_lens_k": self.cu_seqlens,
            "max_length_q": self.max_seqlen,
            "max_length_k": self.max_seqlen,
        }


def pack_examples(examples: Sequence[Example]) -> PackedBatch:
    """Concatenate `examples` into one row. The first label of each example is set to
    IGNORE_INDEX: after the usual shift by one it would be predicted from the previous
    example's last token."""
    if not examples:
        raise ValueError("cannot pack an empty list of examples")
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    lengths: list[int] = []
    for index, example in enumerate(examples):
        length = len(example.input_ids)
        if length == 0:
            raise ValueError(f"example {index} is empty")
        if len(example.labels) != length:
            raise ValueError(
                f"example {index}: {length} input ids but {len(example.labels)} labels"
            )
        input_ids.extend(example.input_ids)
        labels.append(IGNORE_INDEX)
        labels.extend(example.labels[1:])
        position_ids.extend(range(length))
        lengths.append(length)
    label_tensor = torch.tensor(labels, dtype=torch.long)
    return PackedBatch(
        input_ids=torch.tensor(input_ids, dtype=torch.long).unsqueeze(0),
        labels=label_tensor.unsqueeze(0),
        position_ids=torch.tensor(position_ids, dtype=torch.long).unsqueeze(0),
        cu_seqlens=cu_seqlens_from_lengths(lengths),
        max_seqlen=max(lengths),
        trainable_tokens=int((label_tensor != IGNORE_INDEX).sum()),
    )


def cu_seqlens_from_lengths(lengths: Sequence[int]) -> torch.Tensor:
    cu_seqlens = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu_seqlens[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0).to(torch.int32)
    return cu_seqlens


def cu_seqlens_from_position_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Boundaries of a packed row (1-D, or (1, total)) from position ids that restart at 0."""
    positions = position_ids.reshape(-1)
    if positions.numel() == 0:
        raise ValueError("position_ids is empty")
    if int(positions[0]) != 0:
        raise ValueError("a packed row must start at position 0")
    starts = torch.nonzero(positions == 0).reshape(-1)
    total = torch.tensor([positions.numel()], device=positions.device)
    return torch.cat([starts, total]).to(torch.int32)


def document_ids(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """(total,) int64: for every token, the index of the example it belongs to."""
    lengths = torch.diff(cu_seqlens.to(torch.int64))
    return torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)


def block_diagonal_causal_mask(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """(total, total) bool, True where query i may attend to key j: same example and j <= i.
    For dense attention (SDPA's `attn_mask`); quadratic in the row length, so meant for rows
    of a few thousand tokens or for checking the varlen kernels."""
    docs = document_ids(cu_seqlens)
    positions = torch.arange(docs.numel(), device=docs.device)
    same_document = docs[:, None] == docs[None, :]
    causal = positions[:, None] >= positions[None, :]
    return same_document & causal


MaskMod = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def document_causal_mask_mod(cu_seqlens: torch.Tensor) -> MaskMod:
    """A `mask_mod` for torch's flex attention (`create_block_mask`) with the same meaning as
    `block_diagonal_causal_mask`, without materialising the dense mask."""
    docs = document_ids(cu_seqlens)

    def mask_mod(
        batch: torch.Tensor, head: torch.Tensor, q_index: torch.Tensor, kv_index: torch.Tensor
    ) -> torch.Tensor:
        return (docs[q_index] == docs[kv_index]) & (q_index >= kv_index)

    return mask_mod


def plan_token_budget_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Split example indices, in the given order, into consecutive batches of at most
    `token_budget` tokens each. The order is kept (the data order stays the seed's alone);
    a batch closes when the next example would not fit."""
    if token_budget < 1:
        raise ValueError("token_budget must be at least 1")
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, length in enumerate(lengths):
        if length > token_budget:
            raise ValueError(
                f"example {index} has {length} tokens, more than the budget of {token_budget}; "
                "truncate examples to at most the budget first"
            )
        if current and used + length > token_budget:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += length
    if current:
        batches.append(current)
    return batches


def plan_packed_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """First-fit-decreasing bin packing of examples into rows of at most `row_tokens` tokens,
    for kernels that need fixed-width rows (the rest of each row is then padding). Returns
    example indices per row; fewer rows than `plan_token_budget_batches` would give, at the
    price of reordering."""
    if row_tokens < 1:
        raise ValueError("row_tokens must be at least 1")
    rows: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        if length > row_tokens:
            raise ValueError(f"example {index} has {length} tokens, more than a row ({row_tokens})")
        for row, space in enumerate(free):
            if length <= space:
                rows[row].append(index)
                free[row] -= length
                break
        else:
            rows.append([index])
            free.append(row_tokens - length)
    return rows
