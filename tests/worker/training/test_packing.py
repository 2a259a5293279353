"""Packing (worker/training/packing.py) and the packed fast path (worker/training/fast_path.py),
on the CPU: each fast piece must compute what the plain padded transformers + peft path does."""

import itertools
import logging
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from worker.training.data import IGNORE_INDEX, TokenizedExample, collate
from worker.training.packing import (
    block_diagonal_causal_mask,
    cu_seqlens_from_lengths,
    cu_seqlens_from_position_ids,
    document_causal_mask_mod,
    document_ids,
    pack_examples,
    plan_packed_rows,
    plan_token_budget_batches,
)

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def example(input_ids: list[int], labels: list[int] | None = None) -> TokenizedExample:
    return TokenizedExample(
        input_ids=input_ids,
        labels=list(input_ids) if labels is None else labels,
        line_number=0,
        truncated=False,
    )


def random_examples(lengths: list[int], vocab: int, seed: int = 0) -> list[TokenizedExample]:
    g = torch.Generator().manual_seed(seed)
    examples = []
    for length in lengths:
        ids = torch.randint(1, vocab, (length,), generator=g).tolist()
        prompt = max(1, length // 3)
        examples.append(example(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return examples


# --------------------------------------------------------------------------- packing


def test_pack_examples_concatenates_and_restarts_positions() -> None:
    batch = pack_examples([example([5, 6, 7]), example([8, 9])])

    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert batch.cu_seqlens.tolist() == [0, 3, 5]
    assert batch.cu_seqlens.dtype == torch.int32
    assert batch.max_seqlen == 3
    assert batch.num_examples == 2
    assert batch.non_pad_tokens == 5
    assert batch.lengths == [3, 2]


def test_pack_examples_never_trains_the_first_token_of_an_example() -> None:
    # Labels that (wrongly) train token 0 of the second example: after the shift it would be
    # predicted from the first example's last token.
    batch = pack_examples([example([5, 6, 7], [IGNORE_INDEX, 6, 7]), example([8, 9], [8, 9])])

    assert batch.labels.tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]]
    assert batch.trainable_tokens == 3


def test_pack_examples_counts_what_the_padded_batch_trains() -> None:
    examples = random_examples([7, 3, 12], vocab=50)

    assert pack_examples(examples).trainable_tokens == collate(examples, 0).trainable_tokens
    assert pack_examples(examples).non_pad_tokens == collate(examples, 0).non_pad_tokens


def test_pack_examples_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="empty list"):
        pack_examples([])
    with pytest.raises(ValueError, match="labels"):
        pack_examples([example([1, 2], [1])])
    with pytest.raises(ValueError, match="empty"):
        pack_examples([example([])])


def test_attention_kwargs_use_transformers_names() -> None:
    batch = pack_examples([example([1, 2, 3]), example([4])])

    kwargs = batch.attention_kwargs()

    assert set(kwargs) == {"cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"}
    assert kwargs["cu_seq_lens_q"] is batch.cu_seqlens
    assert kwargs["max_length_k"] == 3


def test_cu_seqlens_round_trip_through_position_ids() -> None:
    batch = pack_examples([example([1] * 4), example([2]), example([3] * 3)])

    assert cu_seqlens_from_position_ids(batch.position_ids).tolist() == [0, 4, 5, 8]
    assert cu_seqlens_from_lengths([4, 1, 3]).tolist() == [0, 4, 5, 8]
    with pytest.raises(ValueError, match="start at position 0"):
        cu_seqlens_from_position_ids(torch.tensor([1, 2]))


def test_document_ids() -> None:
    assert document_ids(torch.tensor([0, 2, 3, 6])).tolist() == [0, 0, 1, 2, 2, 2]


def test_block_diagonal_causal_mask() -> None:
    mask = block_diagonal_causal_mask(torch.tensor([0, 2, 5], dtype=torch.int32))

    expected = [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]
    assert mask.int().tolist() == expected


def test_flex_mask_mod_matches_the_dense_mask() -> None:
    cu_seqlens = torch.tensor([0, 3, 4, 9], dtype=torch.int32)
    mask_mod = document_causal_mask_mod(cu_seqlens)
    q = torch.arange(9)[:, None].expand(9, 9)
    kv = torch.arange(9)[None, :].expand(9, 9)
    zero = torch.zeros((), dtype=torch.long)

    assert torch.equal(mask_mod(zero, zero, q, kv), block_diagonal_causal_mask(cu_seqlens))


def test_token_budget_batches_keep_order_and_budget() -> None:
    lengths = [5, 3, 4, 8, 1, 1, 6]

    batches = plan_token_budget_batches(lengths, token_budget=9)

    assert batches == [[0, 1], [2], [3, 4], [5, 6]]
    assert [i for batch in batches for i in batch] == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in batch) <= 9 for batch in batches)


def test_token_budget_refuses_an_example_over_budget() -> None:
    with pytest.raises(ValueError, match="more than the budget"):
        plan_token_budget_batches([3, 10], token_budget=9)


def test_packed_rows_use_every_example_once_within_capacity() -> None:
    lengths = [7, 2, 5, 3, 3, 8, 1, 4]

    rows = plan_packed_rows(lengths, row_tokens=10)

    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) == 4  # 33 tokens: first-fit-decreasing reaches the bound ceil(33 / 10)
    with pytest.raises(ValueError, match="more than a row"):
        plan_packed_rows([11], row_tokens=10)


# --------------------------------------------------------------------------- attention


def test_sdpa_mask_attention_equals_attention_per_example() -> None:
    from worker.training.fast_path import varlen_attention_forward

    torch.manual_seed(0)
    lengths, heads, kv_heads, dim = [3, 6, 2], 4, 2, 8
    total = sum(lengths)
    q = torch.randn(1, heads, total, dim)
    k = torch.randn(1, kv_heads, total, dim)
    v = torch.randn(1, kv_heads, total, dim)
    cu = cu_seqlens_from_lengths(lengths)

    out, _ = varlen_attention_forward(
        torch.nn.Module(),
        q,
        k,
        v,
        None,
        backend="sdpa_mask",
        scaling=dim**-0.5,
        cu_seq_lens_q=cu,
        max_length_q=max(lengths),
    )

    bounds = cu.tolist()
    for a, b in itertools.pairwise(bounds):
        alone = F.scaled_dot_product_attention(
            q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], is_causal=True, enable_gqa=True
        )
        torch.testing.assert_close(out[:, a:b], alone.transpose(1, 2))


def test_varlen_attention_needs_cu_seqlens() -> None:
    from worker.training.fast_path import varlen_attention_forward

    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(ValueError, match="cu_seq_lens_q"):
        varlen_attention_forward(torch.nn.Module(), q, q, q, None)


# --------------------------------------------------------------------------- loss


@pytest.mark.parametrize("chunk_tokens", [1, 4, 7, 100])
def test_chunked_cross_entropy_equals_full_logits(chunk_tokens: int) -> None:
    from worker.training.fast_path import chunked_linear_cross_entropy

    torch.manual_seed(0)
    hidden = torch.randn(13, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(40, 16, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 40, (13,))
    targets[[0, 5, 12]] = IGNORE_INDEX

    loss_sum, per_token = chunked_linear_cross_entropy(hidden, weight, targets, chunk_tokens)
    (loss_sum / 10).backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    reference = F.cross_entropy(hidden @ weight.t(), targets, reduction="none")
    (reference.sum() / 10).backward()

    # The logits are upcast to float32 as transformers does: compare at float32 precision.
    torch.testing.assert_close(per_token.double(), reference.detach(), rtol=1e-5, atol=1e-5)
    assert per_token[[0, 5, 12]].tolist() == [0.0, 0.0, 0.0]
    torch.testing.assert_close(loss_sum.double(), reference.sum(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], hidden.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[1], weight.grad, rtol=1e-4, atol=1e-6)


def test_shift_labels_predicts_the_next_token() -> None:
    from worker.training.fast_path import shift_labels

    assert shift_labels(torch.tensor([[IGNORE_INDEX, 5, 6]])).tolist() == [5, 6, IGNORE_INDEX]


def tiny_llama(attn: str = "sdpa") -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        use_cache=False,
    )
    config._attn_implementation = attn
    torch.manual_seed(0)
    return LlamaForCausalLM(config).double()


def test_packed_loss_equals_the_padded_transformers_loss() -> None:
    from worker.training.fast_path import (
        packed_causal_lm_loss,
        per_example_losses,
        register_varlen_attention,
        use_varlen_attention,
    )

    model = tiny_llama()
    examples = random_examples([9, 4, 15], vocab=64)
    padded = collate(examples, pad_token_id=0)
    reference = model(
        input_ids=padded.input_ids, attention_mask=padded.attention_mask, labels=padded.labels
    )
    reference.loss.backward()
    reference_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    shift = padded.labels[:, 1:]
    token_loss = F.cross_entropy(
        reference.logits[:, :-1].float().transpose(1, 2),
        shift,
        reduction="none",
        ignore_index=IGNORE_INDEX,
    )
    reference_per_example = token_loss.sum(1) / (shift != IGNORE_INDEX).sum(1)

    register_varlen_attention("sdpa_mask")
    assert use_varlen_attention(model) == "sdpa"
    batch = pack_examples(examples)
    loss, per_token = packed_causal_lm_loss(model, batch, chunk_tokens=8)
    loss.backward()

    torch.testing.assert_close(loss.double(), reference.loss.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        torch.tensor(per_example_losses(per_token, batch), dtype=torch.float64),
        reference_per_example.detach().double(),
        rtol=1e-5,
        atol=1e-5,
    )
    for p, g in zip(model.parameters(), reference_grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- fused QLoRA


def quantized_lora_model(dropout: float) -> Any:
    from peft import LoraConfig, get_peft_model

    from worker.training.fast_path import quantize_decoder_linears_nf4

    model = tiny_llama().to(torch.bfloat16)
    quantize_decoder_linears_nf4(model, "cpu")
    config = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # zero at init: make the adapter do something
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return peft_model


def loss_and_grads(model: Any, input_ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    loss = model(input_ids=input_ids, labels=input_ids).loss
    loss.backward()
    return loss.detach(), [p.grad.float().clone() for p in model.parameters() if p.requires_grad]


def test_fused_qlora_matches_peft_layers() -> None:
    from worker.training.fast_path import disable_fused_qlora, enable_fused_qlora

    model = quantized_lora_model(dropout=0.0)
    model.train()
    input_ids = torch.randint(1, 64, (2, 11), generator=torch.Generator().manual_seed(2))
    reference_loss, reference_grads = loss_and_grads(model, input_ids)

    assert enable_fused_qlora(model) == 14  # 7 linear layers x 2 decoder layers
    loss, grads = loss_and_grads(model, input_ids)

    # peft computes LoRA in float32, the fused layer in bf16 (with float32 accumulation)
    torch.testing.assert_close(loss, reference_loss, rtol=2e-3, atol=2e-3)
    for g, ref in zip(grads, reference_grads, strict=True):
        assert float((g - ref).norm() / ref.norm()) < 0.05
    assert disable_fused_qlora(model) == 14
    assert loss_and_grads(model, input_ids)[0] == reference_loss
