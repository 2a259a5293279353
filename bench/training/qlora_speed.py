"""QLoRA training speed: transformers + peft + bitsandbytes baseline vs Loraplex's fast path.

One process, one random-weight model, one data set, one data order; every variant trains on
exactly the same examples per optimizer step (batch_size examples), so tokens per step and
the loss's denominator are the same everywhere. Per variant it reports non-padding training
tokens/s over `--steps` timed steps after `--warmup` steps, peak GPU memory (allocated and
reserved), time to the first optimizer step, MFU, and loss/gradient parity against the
baseline on fixed sequences.

    python -m bench.training.qlora_speed                      # Llama-3.1-8B shape, on CUDA
    python -m bench.training.qlora_speed --model tiny --device cpu --steps 2 --warmup 1

Variants (a ladder: each adds to the one before). liger's patches cannot be undone: a
variant run after one with liger also has liger's kernels (its result says so in
settings.liger_kernels_active), so list liger variants last.
    baseline    padded batches, SDPA (padding mask), peft LoRA layers, transformers' loss
                (full float32 logits), gradient checkpointing on every layer, AdamW
    packed_sdpa + padding-free packing, SDPA with a block-diagonal (document) mask,
                  chunked linear+cross-entropy (no full logits)
    packed      the same with varlen flash attention (cu_seqlens) instead of the dense mask
    fused       + fused NF4+LoRA linear (fast_path.enable_fused_qlora), fused AdamW; LoRA
                  dropout as a Bernoulli mask and two multiplies ("separate")
    liger       + liger-kernel RMSNorm, RoPE and SwiGLU kernels
    liger_dropout + LoRA dropout as torch's fused dropout kernel ("native", the default)
    sac         + checkpointing only as many layers as an activation budget requires
"""

import argparse
import gc
import json
import logging
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROCESS_START = time.perf_counter()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

import bitsandbytes as bnb  # noqa: E402
import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from worker.training import fast_path  # noqa: E402
from worker.training.data import IGNORE_INDEX, Batch, TokenizedExample, collate  # noqa: E402
from worker.training.packing import pack_examples  # noqa: E402

H200_DENSE_BF16_FLOPS = 989.4e12  # datasheet, SXM; the measured bf16 matmul ceiling is ~790e12
PAD_TOKEN_ID = 0
LEAKY_ATTENTION = "loraplex_leaky_causal"  # packed rows WITHOUT document masking (parity foil)

MODELS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": dict(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    ),
    "tiny": dict(
        vocab_size=2048,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    ),
}
# Llama-3.1-8B's layer 80 times (18.5 B parameters; NF4 weights about 11 GB): a model whose
# whole-model-per-GPU training needs more memory than a smaller card has (recipe_parallel.py's
# --cap-gb), for sharding.
MODELS["llama-8b-80l"] = {**MODELS["llama-3.1-8b"], "num_hidden_layers": 80}


@dataclass(frozen=True)
class Variant:
    name: str
    packed: bool = False
    attention: str = "auto"  # for packed rows: flash varlen on CUDA, or "sdpa_mask"
    fused_qlora: bool = False
    fused_adamw: bool = False
    liger: bool = False
    dropout_kernel: str = "separate"  # fast_path.DROPOUT_KERNELS, for fused_qlora
    # Layers left un-checkpointed per step = activation budget / (tokens * bytes per token-layer)
    activation_budget_gb: float = 0.0


LADDER = {
    "baseline": Variant("baseline"),
    "packed_sdpa": Variant("packed_sdpa", packed=True, attention="sdpa_mask"),
    "packed": Variant("packed", packed=True),
    "fused": Variant("fused", packed=True, fused_qlora=True, fused_adamw=True),
    "liger": Variant("liger", packed=True, fused_qlora=True, fused_adamw=True, liger=True),
    "liger_dropout": Variant(
        "liger_dropout",
        packed=True,
        fused_qlora=True,
        fused_adamw=True,
        liger=True,
        dropout_kernel="native",
    ),
    "sac": Variant(
        "sac",
        packed=True,
        fused_qlora=True,
        fused_adamw=True,
        liger=True,
        dropout_kernel="native",
        activation_budget_gb=6.0,
    ),
}


@dataclass
class Result:
    variant: str
    settings: dict[str, Any]
    error: str | None = None
    first_step_s: float | None = None  # variant start (patching, kernel JIT) -> first step done
    timed_steps: int = 0
    timed_s: float | None = None
    step_s: list[float] = field(default_factory=list)
    non_pad_tokens: int = 0
    trainable_tokens: int = 0
    computed_tokens: int = 0  # incl. padding
    tokens_per_s: float | None = None
    trainable_tokens_per_s: float | None = None
    peak_allocated_gb: float | None = None
    peak_reserved_gb: float | None = None
    losses: list[float] = field(default_factory=list)
    mfu: float | None = None
    mfu_with_recompute: float | None = None
    uncheckpointed_layers: list[int] = field(default_factory=list)
    parity: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def make_examples(
    n: int, vocab: int, min_len: int, max_len: int, median: float, sigma: float, seed: int
) -> list[TokenizedExample]:
    """Synthetic chat SFT rows: log-normal lengths clipped to [min_len, max_len]; a prompt
    of 20-60% of the row is masked out of the loss, the rest is trained."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.exp(math.log(median) + sigma * torch.randn(n, generator=g))
    lengths = lengths.clamp(min_len, max_len).long().tolist()
    return [_example(length, vocab, g, i) for i, length in enumerate(lengths)]


def _example(length: int, vocab: int, g: torch.Generator, line: int) -> TokenizedExample:
    ids = torch.randint(3, vocab, (length,), generator=g).tolist()
    prompt = max(1, int(length * (0.2 + 0.4 * torch.rand(1, generator=g).item())))
    labels = [IGNORE_INDEX] * prompt + ids[prompt:]
    return TokenizedExample(input_ids=ids, labels=labels, line_number=line, truncated=False)


def parity_examples(vocab: int, max_len: int, seed: int) -> list[TokenizedExample]:
    g = torch.Generator().manual_seed(seed + 7)
    # 64, 256, 640, 1024, 1536 and 2048 tokens at the default max_len of 2048
    fractions = (1 / 32, 1 / 8, 5 / 16, 1 / 2, 3 / 4, 1)
    lengths = sorted({max(2, int(max_len * f)) for f in fractions})
    return [_example(n, vocab, g, i) for i, n in enumerate(lengths)]


# --------------------------------------------------------------------------- model


def build_model(name: str, device: torch.device, seed: int) -> tuple[Any, LlamaConfig]:
    """Random-weight Llama in bf16, every decoder linear layer quantized to NF4 with double
    quantization and bf16 compute: the modules transformers' BitsAndBytesConfig(load_in_4bit,
    nf4, double quant, bf16) loading produces, without needing a checkpoint on disk."""
    config = LlamaConfig(
        **MODELS[name],
        tie_word_embeddings=False,
        use_cache=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=PAD_TOKEN_ID,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    fast_path.quantize_decoder_linears_nf4(model, device)
    model.config.use_cache = False
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return model, config


def add_lora(model: Any) -> Any:
    # The recipe's LoRA: r=16, alpha=32, dropout 0.05 on every linear layer but the head.
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    peft_model.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    return peft_model


def trainable(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def snapshot(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable(model)}


def load(model: Any, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, p in trainable(model):
            p.copy_(state[n])
            p.grad = None


def perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """LoRA B starts at zero, so the adapter does nothing and its A gets no gradient; for the
    parity checks give B small random values so the LoRA path is exercised both ways."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, t in state.items():
        if "lora_B" in n:
            out[n] = (0.01 * torch.randn(t.shape, generator=g)).to(t.device, t.dtype)
        else:
            out[n] = t.clone()
    return out


def decoder_layers(peft_model: Any) -> list[Any]:
    return list(peft_model.get_base_model().model.layers)


# --------------------------------------------------------------------------- variants


_liger_applied = False


def configure(peft_model: Any, variant: Variant, attention_backend: str) -> None:
    model = peft_model.get_base_model()
    if variant.packed:
        backend = variant.attention if variant.attention != "auto" else attention_backend
        fast_path.register_varlen_attention(backend)
        fast_path.use_varlen_attention(peft_model)
    else:
        model.config._attn_implementation = "sdpa"
    fast_path.disable_fused_qlora(peft_model)
    if variant.fused_qlora:
        fast_path.enable_fused_qlora(peft_model, dropout_kernel=variant.dropout_kernel)
    if variant.liger:
        global _liger_applied
        _liger_applied = True
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama(
            rope=True,
            rms_norm=True,
            swiglu=True,
            cross_entropy=False,
            fused_linear_cross_entropy=False,
            model=model,
        )
    for layer in decoder_layers(peft_model):
        layer.gradient_checkpointing = True


def make_optimizer(peft_model: Any, variant: Variant, device: torch.device) -> Any:
    params = [p for _, p in trainable(peft_model)]
    fused = variant.fused_adamw and device.type == "cuda"
    return torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0, fused=fused or None)


def set_selective_checkpointing(
    peft_model: Any, variant: Variant, tokens: int, bytes_per_token_layer: float
) -> list[int]:
    """Leave the last k layers un-checkpointed, k as large as the activation budget allows
    for this step's token count; the rest are recomputed in the backward pass."""
    layers = decoder_layers(peft_model)
    k = 0
    if variant.activation_budget_gb > 0:
        k = int(variant.activation_budget_gb * 1e9 // (tokens * bytes_per_token_layer))
        k = max(0, min(k, len(layers)))
    for i, layer in enumerate(layers):
        layer.gradient_checkpointing = i < len(layers) - k
    return list(range(len(layers) - k, len(layers)))


def train_step(
    peft_model: Any,
    variant: Variant,
    examples: list[TokenizedExample],
    optimizer: Any,
    device: torch.device,
) -> tuple[float, int]:
    """One optimizer step on `examples`; returns (loss, tokens computed incl. padding)."""
    if variant.packed:
        batch = pack_examples(examples).to(device)
        loss, _ = fast_path.packed_causal_lm_loss(peft_model, batch)
        computed = batch.non_pad_tokens
    else:
        padded = collate(examples, PAD_TOKEN_ID).to(device)
        loss = peft_model(
            input_ids=padded.input_ids, attention_mask=padded.attention_mask, labels=padded.labels
        ).loss
        computed = padded.input_ids.numel()
    value = loss.item()  # the recipe checks for NaN before backward: same sync point here
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for _, p in trainable(peft_model)], 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return value, computed


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_variant(
    peft_model: Any,
    variant: Variant,
    steps: list[list[TokenizedExample]],
    warmup: int,
    init_state: dict[str, torch.Tensor],
    args: argparse.Namespace,
    device: torch.device,
    config: LlamaConfig,
    n_lora: int,
) -> Result:
    result = Result(variant=variant.name, settings=asdict(variant))
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    load(peft_model, init_state)
    peft_model.train()
    sync(device)
    start = time.perf_counter()
    configure(peft_model, variant, args.attention_backend)
    result.settings["liger_kernels_active"] = _liger_applied
    optimizer = make_optimizer(peft_model, variant, device)
    t_timed = None
    uncheckpointed: list[int] = []
    for i, examples in enumerate(steps):
        if i == warmup:
            sync(device)
            t_timed = time.perf_counter()
        tokens = sum(len(e) for e in examples)
        uncheckpointed = set_selective_checkpointing(
            peft_model, variant, tokens, args.bytes_per_token_layer
        )
        t0 = time.perf_counter()
        loss, computed = train_step(peft_model, variant, examples, optimizer, device)
        sync(device)
        t1 = time.perf_counter()
        if i == 0:
            result.first_step_s = t1 - start
        result.losses.append(loss)
        if i >= warmup:
            result.step_s.append(t1 - t0)
            result.non_pad_tokens += tokens
            result.trainable_tokens += sum(_trainable(e) for e in examples)
            result.computed_tokens += computed
            result.uncheckpointed_layers.append(len(uncheckpointed))
        print(
            f"  [{variant.name}] step {i + 1}/{len(steps)} loss {loss:.4f} "
            f"{tokens} tok {t1 - t0:.3f}s",
            flush=True,
        )
    assert t_timed is not None
    result.timed_s = time.perf_counter() - t_timed
    result.timed_steps = len(steps) - warmup
    result.tokens_per_s = result.non_pad_tokens / result.timed_s
    result.trainable_tokens_per_s = result.trainable_tokens / result.timed_s
    if device.type == "cuda":
        result.peak_allocated_gb = torch.cuda.max_memory_allocated() / 1e9
        result.peak_reserved_gb = torch.cuda.max_memory_reserved() / 1e9
    timed_examples = [e for s in steps[warmup:] for e in s]
    flops = step_flops([len(e) for e in timed_examples], config, n_lora)
    recompute_fraction = 1.0 - (
        sum(result.uncheckpointed_layers)
        / max(1, len(result.uncheckpointed_layers))
        / config.num_hidden_layers
    )
    peak = args.peak_flops
    result.mfu = flops["model"] / result.timed_s / peak
    result.mfu_with_recompute = (
        (flops["model"] + recompute_fraction * flops["recompute"]) / result.timed_s / peak
    )
    del optimizer
    for layer in decoder_layers(peft_model):
        layer.gradient_checkpointing = True
    return result


def _trainable(example: TokenizedExample) -> int:
    return sum(label != IGNORE_INDEX for label in example.labels[1:])


# --------------------------------------------------------------------------- FLOPs


def step_flops(lengths: list[int], config: LlamaConfig, n_lora: int) -> dict[str, float]:
    """FLOPs for training on sequences of `lengths` with a frozen base:
    model = per token 4 * N (forward 2N + input-gradient 2N; no weight gradients for the
    frozen base) + 6 * N_lora + causal attention 6 * L^2 * d per layer per sequence
    (forward 2 L^2 d, backward twice that); recompute = one more forward of the decoder
    layers (2 * N_layers per token + 2 L^2 d per layer), what full checkpointing adds.
    N counts the matmul parameters of the decoder layers and the output head (not the
    embedding lookup); padding is never counted."""
    d = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q_out = config.num_attention_heads * head_dim
    kv_out = config.num_key_value_heads * head_dim
    per_layer = d * (q_out + 2 * kv_out) + q_out * d + 3 * d * config.intermediate_size
    n_layers = config.num_hidden_layers * per_layer
    n_head = config.vocab_size * d
    tokens = sum(lengths)
    attention = sum(2 * n * n * q_out for n in lengths) * config.num_hidden_layers
    model = tokens * (4 * (n_layers + n_head) + 6 * n_lora) + 3 * attention
    recompute = tokens * (2 * n_layers + 2 * n_lora) + attention
    return {"model": float(model), "recompute": float(recompute)}


# --------------------------------------------------------------------------- parity


def parity_check(
    peft_model: Any,
    variant: Variant,
    examples: list[TokenizedExample],
    state: dict[str, torch.Tensor],
    device: torch.device,
    extra_pad: int = 0,
) -> dict[str, Any]:
    """Per-sequence losses, final hidden states and LoRA gradients of the same sequences
    with the same weights. Train mode (so checkpointing runs as in training) with every
    dropout off, so both ways compute the same function."""
    load(peft_model, state)
    _train_without_dropout(peft_model)
    causal_lm = peft_model.get_base_model()
    try:
        if variant.packed:
            batch = pack_examples(examples).to(device)
            loss, per_token = fast_path.packed_causal_lm_loss(peft_model, batch)
            loss.backward()
            losses = fast_path.per_example_losses(per_token, batch)
            with torch.no_grad():
                hidden = (
                    causal_lm.get_decoder()(
                        input_ids=batch.input_ids,
                        position_ids=batch.position_ids,
                        **batch.attention_kwargs(),
                    )
                    .last_hidden_state[0]
                    .float()
                )
        else:
            padded = collate(examples, PAD_TOKEN_ID)
            if extra_pad:  # the same rows padded further: other kernel shapes, same function
                padded = Batch(
                    input_ids=F.pad(padded.input_ids, (0, extra_pad), value=PAD_TOKEN_ID),
                    attention_mask=F.pad(padded.attention_mask, (0, extra_pad), value=0),
                    labels=F.pad(padded.labels, (0, extra_pad), value=IGNORE_INDEX),
                    non_pad_tokens=padded.non_pad_tokens,
                    trainable_tokens=padded.trainable_tokens,
                )
            padded = padded.to(device)
            out = peft_model(
                input_ids=padded.input_ids,
                attention_mask=padded.attention_mask,
                labels=padded.labels,
            )
            loss = out.loss
            loss.backward()
            losses = padded_per_example_losses(out.logits.detach(), padded.labels)
            del out
            with torch.no_grad():
                h = causal_lm.get_decoder()(
                    input_ids=padded.input_ids, attention_mask=padded.attention_mask
                ).last_hidden_state
                hidden = h[padded.attention_mask.bool()].float()
        grads = torch.cat([p.grad.detach().float().reshape(-1) for _, p in trainable(peft_model)])
        return {
            "loss": loss.item(),
            "per_example_loss": losses,
            "hidden": hidden.cpu(),
            "grads": grads.cpu(),
        }
    finally:
        load(peft_model, state)
        peft_model.train()


def _train_without_dropout(peft_model: Any) -> None:
    peft_model.train()
    for module in peft_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()


def padded_per_example_losses(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    shift_logits = logits[:, :-1].float()
    shift = labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(
        shift_logits.transpose(1, 2), shift, ignore_index=IGNORE_INDEX, reduction="none"
    )
    valid = (shift != IGNORE_INDEX).float()
    return (token_loss.sum(1) / valid.sum(1).clamp(min=1)).tolist()


def leaky_check(
    peft_model: Any,
    examples: list[TokenizedExample],
    state: dict[str, torch.Tensor],
    device: torch.device,
) -> dict[str, Any]:
    """The same packed row with plain causal attention (no document mask): what the parity
    check must be able to tell apart."""
    from transformers import AttentionInterface

    def leaky(
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: Any,
        scaling: float | None = None,
        **_: Any,
    ) -> Any:
        out = torch.nn.functional.scaled_dot_product_attention(
            query,
            key,
            value,
            is_causal=True,
            scale=scaling,
            enable_gqa=key.shape[1] != query.shape[1],
        )
        return out.transpose(1, 2), None

    AttentionInterface.register(LEAKY_ATTENTION, leaky)
    config = peft_model.get_base_model().config
    previous = config._attn_implementation
    config._attn_implementation = LEAKY_ATTENTION
    load(peft_model, state)
    # Train mode with dropout off rather than eval(): on CPUs with AVX512-BF16, bitsandbytes
    # repacks 4-bit weights for inference in eval mode, after which they train incorrectly.
    _train_without_dropout(peft_model)
    try:
        with torch.no_grad():
            batch = pack_examples(examples).to(device)
            _, per_token = fast_path.packed_causal_lm_loss(peft_model, batch)
            hidden = (
                peft_model.get_base_model()
                .get_decoder()(
                    input_ids=batch.input_ids,
                    position_ids=batch.position_ids,
                    **batch.attention_kwargs(),
                )
                .last_hidden_state[0]
                .float()
            )
        return {
            "per_example_loss": fast_path.per_example_losses(per_token, batch),
            "hidden": hidden.cpu(),
        }
    finally:
        config._attn_implementation = previous
        peft_model.train()


def compare(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    ref_losses, losses = reference["per_example_loss"], other["per_example_loss"]
    diffs = [abs(a - b) for a, b in zip(ref_losses, losses, strict=True)]
    h_ref, h = reference["hidden"], other["hidden"]
    out = {
        "per_example_loss_ref": ref_losses,
        "per_example_loss": losses,
        "max_abs_loss_diff": max(diffs),
        "max_rel_loss_diff": max(d / abs(r) for d, r in zip(diffs, ref_losses, strict=True)),
        "hidden_rel_error": float((h - h_ref).norm() / h_ref.norm()),
    }
    if "grads" in reference and "grads" in other:
        # float64: float32 sums over tens of millions of entries drift (cosines above 1)
        g_ref, g = reference["grads"].double(), other["grads"].double()
        out["grad_rel_error"] = float((g - g_ref).norm() / g_ref.norm())
        out["grad_cosine"] = float(torch.nn.functional.cosine_similarity(g, g_ref, dim=0))
        out["loss_diff"] = abs(reference["loss"] - other["loss"])
    return out


def attention_selftest(device: torch.device) -> dict[str, Any]:
    """The varlen flash path against SDPA with the block-diagonal mask, in float32."""
    if device.type != "cuda":
        return {"skipped": "not on CUDA"}
    from worker.training.packing import block_diagonal_causal_mask, cu_seqlens_from_lengths

    torch.manual_seed(0)
    lengths = [5, 130, 64, 301]
    cu = cu_seqlens_from_lengths(lengths).to(device)
    total, heads, kv_heads, dim = sum(lengths), 8, 2, 128
    q = torch.randn(total, heads, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(total, kv_heads, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(total, kv_heads, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
    out = fast_path.flash_varlen_causal(q, k, v, cu, max(lengths), dim**-0.5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), g)
    qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
    mask = block_diagonal_causal_mask(cu)
    ref = torch.nn.functional.scaled_dot_product_attention(
        qf.transpose(0, 1)[None],
        kf.transpose(0, 1)[None],
        vf.transpose(0, 1)[None],
        attn_mask=mask,
        enable_gqa=True,
    )[0].transpose(0, 1)
    ref_grads = torch.autograd.grad(ref, (qf, kf, vf), g.float())

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a.detach().float() - b.detach()).norm() / b.detach().norm())

    public = fast_path._public_varlen_attn()
    return {
        "impl": "torch.nn.attention.varlen.varlen_attn"
        if public
        else "aten._flash_attention_forward",
        "out_rel_error": rel(out, ref),
        "grad_rel_error": max(rel(a, b) for a, b in zip(grads, ref_grads, strict=True)),
    }


# --------------------------------------------------------------------------- profile


def profile_step(
    peft_model: Any,
    variant: Variant,
    examples: list[TokenizedExample],
    device: torch.device,
    out_dir: Path,
    args: argparse.Namespace,
) -> None:
    from torch.profiler import ProfilerActivity, profile

    configure(peft_model, variant, args.attention_backend)

    optimizer = make_optimizer(peft_model, variant, device)
    set_selective_checkpointing(
        peft_model, variant, sum(len(e) for e in examples), args.bytes_per_token_layer
    )
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_step(peft_model, variant, examples, optimizer, device)
        sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    try:
        table = prof.key_averages().table(sort_by=sort, row_limit=40)
    except Exception:
        table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=40)
    (out_dir / f"profile_{variant.name}.txt").write_text(table)
    print(table[:6000])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="llama-3.1-8b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", default="baseline,packed_sdpa,packed,fused,liger,sac")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--min-len", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--median-len", type=float, default=512)
    parser.add_argument("--len-sigma", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--attention-backend", default="auto", choices=["auto", "flash", "sdpa_mask"]
    )
    parser.add_argument(
        "--bytes-per-token-layer",
        type=float,
        default=210e3,
        help="activation bytes one token keeps per un-checkpointed layer",
    )
    parser.add_argument("--peak-flops", type=float, default=H200_DENSE_BF16_FLOPS)
    parser.add_argument("--profile", default="", help="profile one step of this variant at the end")
    parser.add_argument("--no-parity", action="store_true")
    parser.add_argument("--out", default=os.environ.get("OUT") or "bench/training/results")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = [LADDER[name] for name in args.variants.split(",")]
    report: dict[str, Any] = {"args": vars(args), "environment": environment(device)}
    path = out_dir / f"qlora_speed_{args.model}{args.tag}.json"

    def save() -> None:
        path.write_text(json.dumps(report, indent=2, default=str))

    try:
        report["attention_selftest"] = attention_selftest(device)
    except Exception as exc:  # fall back to the dense-mask attention
        traceback.print_exc()
        report["attention_selftest"] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        args.attention_backend = "sdpa_mask"
    print("attention self-test:", report["attention_selftest"], flush=True)

    t_build = time.perf_counter()
    model, config = build_model(args.model, device, args.seed)
    peft_model = add_lora(model)
    n_lora = sum(p.numel() for _, p in trainable(peft_model))
    init_state = snapshot(peft_model)
    parity_state = perturbed(init_state, args.seed + 1)
    sync(device)
    report["build_s"] = time.perf_counter() - t_build
    report["process_start_to_model_ready_s"] = time.perf_counter() - PROCESS_START
    report["lora_params"] = n_lora
    if device.type == "cuda":
        report["model_gpu_gb"] = torch.cuda.memory_allocated() / 1e9
    print(f"model ready in {report['build_s']:.1f}s ({n_lora:,} LoRA params)", flush=True)

    n_steps = args.warmup + args.steps
    examples = make_examples(
        n_steps * args.batch_size,
        config.vocab_size,
        args.min_len,
        args.max_len,
        args.median_len,
        args.len_sigma,
        args.seed,
    )
    steps = [examples[i * args.batch_size : (i + 1) * args.batch_size] for i in range(n_steps)]
    timed = [e for s in steps[args.warmup :] for e in s]
    padded = sum(max(len(e) for e in s) * len(s) for s in steps[args.warmup :])
    report["data"] = {
        "examples": len(examples),
        "length_min": min(len(e) for e in examples),
        "length_max": max(len(e) for e in examples),
        "length_mean": sum(len(e) for e in examples) / len(examples),
        "timed_tokens_per_step": sum(len(e) for e in timed) / args.steps,
        "baseline_padding_fraction": 1 - sum(len(e) for e in timed) / padded,
    }
    print("data:", report["data"], flush=True)

    parity_set = parity_examples(config.vocab_size, args.max_len, args.seed)
    reference: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    report["results"] = results
    for variant in variants:
        print(f"== {variant.name}", flush=True)
        try:
            result = run_variant(
                peft_model, variant, steps, args.warmup, init_state, args, device, config, n_lora
            )
            if not args.no_parity:
                check = parity_check(peft_model, variant, parity_set, parity_state, device)
                if variant.name == "baseline":
                    reference = check
                    result.parity = {
                        "per_example_loss": check["per_example_loss"],
                        "loss": check["loss"],
                    }
                    repadded = parity_check(
                        peft_model, variant, parity_set, parity_state, device, extra_pad=136
                    )
                    report["parity_noise_floor_baseline_repadded"] = compare(reference, repadded)
                    leaky = leaky_check(peft_model, parity_set, parity_state, device)
                    report["parity_without_document_mask"] = compare(reference, leaky)
                elif reference is not None:
                    result.parity = compare(reference, check)
        except Exception as exc:
            traceback.print_exc()
            result = Result(
                variant=variant.name,
                settings=asdict(variant),
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        results.append(asdict(result))
        save()
    if args.profile:
        try:
            profile_step(
                peft_model, LADDER[args.profile], steps[args.warmup], device, out_dir, args
            )
        except Exception:
            traceback.print_exc()
    summarize(report)
    save()
    print(f"wrote {path}")
    return 0


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bnb.__version__,
    }
    try:
        from importlib.metadata import version

        import liger_kernel  # noqa: F401

        env["liger_kernel"] = version("liger-kernel")
    except Exception:
        env["liger_kernel"] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_memory_gb"] = torch.cuda.get_device_properties(device).total_memory / 1e9
    return env


def summarize(report: dict[str, Any]) -> None:
    results = [r for r in report["results"] if r.get("tokens_per_s")]
    if not results:
        return
    base = next((r for r in results if r["variant"] == "baseline"), None)
    rows = []
    for r in results:
        speedup = r["tokens_per_s"] / base["tokens_per_s"] if base else None
        mem = (
            r["peak_allocated_gb"] / base["peak_allocated_gb"]
            if base and r.get("peak_allocated_gb") and base.get("peak_allocated_gb")
            else None
        )
        r["speedup_vs_baseline"] = speedup
        r["peak_memory_vs_baseline"] = mem
        p = r.get("parity") or {}
        rows.append(
            f"{r['variant']:<13} {r['tokens_per_s']:>9.0f} tok/s  x{speedup or 0:>5.2f}  "
            f"alloc {r.get('peak_allocated_gb') or 0:>6.1f} GB (x{mem or 0:.2f})  "
            f"reserved {r.get('peak_reserved_gb') or 0:>6.1f} GB  "
            f"MFU {100 * r['mfu']:.1f}% ({100 * r['mfu_with_recompute']:.1f}% w/ recompute)  "
            f"first step {r['first_step_s']:.1f}s  "
            f"dloss {p.get('max_abs_loss_diff', 0):.2e} grad-rel {p.get('grad_rel_error', 0):.2e}"
        )
    report["summary"] = rows
    print("\n".join(rows))
    leak = report.get("parity_without_document_mask")
    if leak:
        print(
            f"no document mask: max loss diff {leak['max_abs_loss_diff']:.2e}, hidden rel err "
            f"{leak['hidden_rel_error']:.2e}"
        )


if __name__ == "__main__":
    sys.exit(main())
