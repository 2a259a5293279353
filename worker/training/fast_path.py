"""Faster QLoRA training on packed batches (see packing.py), without changing what is trained.

Three pieces, each usable alone, each giving the same losses and gradients as the plain
transformers + peft path up to bf16 rounding (bench/training/qlora_speed.py checks this):

- `register_varlen_attention()`: an attention implementation for transformers models that
  reads the packed row's `cu_seqlens` and runs variable-length flash attention, so examples
  in one row never attend to each other (document masking) and no pad token is computed.
  Off CUDA it falls back to SDPA with a block-diagonal causal mask.
- `chunked_linear_cross_entropy()`: output projection + cross-entropy a few thousand tokens
  at a time, with the gradient for the hidden states computed on the way; the full
  (tokens x vocabulary) float32 logits (4 GiB for 8k tokens of Llama 3) never exist.
- `enable_fused_qlora()`: replaces the forward of peft's 4-bit LoRA layers by one autograd
  function: NF4 weight dequantized once per call, LoRA in the compute dtype, the LoRA
  product added in place, LoRA dropout as one fused dropout kernel each way, and only what
  the backward pass needs kept (peft casts the input to float32 and clones the output in
  every layer).

Usage on a peft model of a transformers causal LM:

    register_varlen_attention()
    use_varlen_attention(peft_model)
    enable_fused_qlora(peft_model)
    loss, _ = packed_causal_lm_loss(peft_model, pack_examples(examples).to(device))
    loss.backward()
"""

import inspect
import itertools
import math
from collections.abc import Callable
from functools import lru_cache
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F

from worker.training.data import IGNORE_INDEX
from worker.training.packing import PackedBatch, block_diagonal_causal_mask

VARLEN_ATTENTION = "loraplex_varlen"
DEFAULT_LOSS_CHUNK_TOKENS = 2048
# How the fused QLoRA layer applies LoRA dropout; both draw an independent mask per layer and
# element, so both are peft's estimator. "native": torch's fused dropout kernel (one kernel
# forward: mask and scaled output; one backward). "separate": a Bernoulli mask and two
# multiplies each way, kept only to measure against.
DROPOUT_KERNELS = ("native", "separate")

# --------------------------------------------------------------------------- attention


def register_varlen_attention(backend: str = "auto") -> str:
    """Register the packed-row attention with transformers under VARLEN_ATTENTION and return
    that name. `backend`: "flash" (CUDA), "sdpa_mask" (anywhere; dense block-diagonal mask),
    or "auto" (flash on CUDA tensors, sdpa_mask elsewhere)."""
    from transformers import AttentionInterface

    if backend not in ("auto", "flash", "sdpa_mask"):
        raise ValueError(f"unknown varlen attention backend {backend!r}")

    def attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        return varlen_attention_forward(
            module, query, key, value, attention_mask, backend=backend, **kwargs
        )

    AttentionInterface.register(VARLEN_ATTENTION, attention)
    return VARLEN_ATTENTION


def use_varlen_attention(model: torch.nn.Module) -> str:
    """Switch a (peft-wrapped) transformers model to the packed-row attention; returns the
    implementation it used before. transformers builds no attention mask for a name it has
    no mask function for, which is what packed rows need."""
    config = _transformers_model(model).config
    previous: str = config._attn_implementation
    config._attn_implementation = VARLEN_ATTENTION
    return previous


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    backend: str = "auto",
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query (1, heads, total, head_dim), key and value
    (1, kv_heads, total, head_dim); returns (1, total, heads, head_dim)."""
    if cu_seq_lens_q is None or max_length_q is None:
        raise ValueError(
            "packed-row attention needs cu_seq_lens_q and max_length_q: pass "
            "PackedBatch.attention_kwargs() to the model's forward"
        )
    if query.shape[0] != 1:
        raise ValueError(f"packed rows have batch size 1, got {query.shape[0]}")
    if dropout:
        raise ValueError("attention dropout is not supported on packed rows")
    if attention_mask is not None:
        raise ValueError("packed rows take no attention mask; document masking uses cu_seqlens")
    use_flash = backend == "flash" or (backend == "auto" and query.is_cuda)
    if use_flash:
        # (1, H, T, D) -> (T, H, D), the layout of the varlen kernels.
        q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))
        out = flash_varlen_causal(q, k, v, cu_seq_lens_q, max_length_q, scaling)
        return out.unsqueeze(0), None
    mask = _cached_block_mask(cu_seq_lens_q)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # as transformers does: SDPA's fused kernels with a mask want equal heads
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    return out.transpose(1, 2), None


_last_mask: tuple[torch.Tensor, torch.Tensor] | None = None


def _cached_block_mask(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Every layer of one forward gets the same cu_seqlens tensor: build its mask once. The
    tensor itself is kept, so its identity cannot be reused by a later batch."""
    global _last_mask
    if _last_mask is None or _last_mask[0] is not cu_seqlens:
        _last_mask = (cu_seqlens, block_diagonal_causal_mask(cu_seqlens))
    return _last_mask[1]


def flash_varlen_causal(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Causal flash attention over packed sequences, through PyTorch's own flash kernels:
    q (T, H, D), k and v (T, H_kv, D) with H a multiple of H_kv (grouped-query attention is
    native to the kernel). Differentiable."""
    public = _public_varlen_attn()
    if public is not None and k.shape[1] != q.shape[1] and "enable_gqa" not in public[1]:
        public = None  # older wrappers predate grouped-query attention; the kernel does not
    if public is not None:
        function, parameters = public
        kwargs: dict[str, Any] = {}
        if "is_causal" in parameters:
            kwargs["is_causal"] = True
        else:
            kwargs["window_size"] = (-1, 0)
        if "enable_gqa" in parameters:
            kwargs["enable_gqa"] = k.shape[1] != q.shape[1]
        if scale is not None and "scale" in parameters:
            kwargs["scale"] = scale
        elif scale is not None and not math.isclose(scale, q.shape[-1] ** -0.5):
            public = None  # this torch's varlen_attn cannot take the model's scale
        if public is not None:
            out: torch.Tensor = function(
                q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, **kwargs
            )
            return out
    result = torch.ops.aten._flash_attention_forward(
        q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, 0.0, True, False, scale=scale
    )
    return result[0]


@lru_cache(maxsize=1)
def _public_varlen_attn() -> tuple[Callable[..., torch.Tensor], frozenset[str]] | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    function: Callable[..., torch.Tensor] = varlen_attn  # type: ignore[assignment]
    return function, frozenset(inspect.signature(varlen_attn).parameters)


# --------------------------------------------------------------------------- loss


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """(1, total) labels -> (total,) targets: token i is trained to predict label i + 1.
    Packing made the first label of every example IGNORE_INDEX, so no target crosses from
    one example into the next."""
    flat = labels.reshape(-1)
    ignore = torch.full((1,), IGNORE_INDEX, dtype=flat.dtype, device=flat.device)
    return torch.cat([flat[1:], ignore])


def chunked_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_tokens: int = DEFAULT_LOSS_CHUNK_TOKENS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of `hidden @ weight.T` against `targets`, `chunk_tokens` rows at a time.

    hidden (T, H) in the compute dtype, weight (V, H), targets (T,) with IGNORE_INDEX where
    nothing is trained. Returns (sum of the token losses, differentiable; per-token losses
    (T,) float32, 0 where ignored, not differentiable). As in transformers, logits are the
    compute dtype's product upcast to float32 for the softmax. The gradient for `hidden`
    (and `weight`, if it requires one) is computed in the forward pass, chunk by chunk, so
    the float32 logits of one chunk are the most that exists at once."""
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError("hidden must be (tokens, features) and targets (tokens,)")
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    loss_sum, per_token = _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_tokens)
    return loss_sum, per_token


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk_tokens: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        need_hidden_grad, need_weight_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        tokens = hidden.shape[0]
        per_token = torch.zeros(tokens, dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_hidden_grad else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
            if need_weight_grad
            else None
        )
        for start in range(0, tokens, chunk_tokens):
            end = min(start + chunk_tokens, tokens)
            h, t = hidden[start:end], targets[start:end]
            logits = (h @ weight.t()).float()
            valid = t != IGNORE_INDEX
            safe_targets = torch.where(valid, t, torch.zeros_like(t))
            log_normalizer = torch.logsumexp(logits, dim=-1)
            target_logits = logits.gather(1, safe_targets[:, None]).squeeze(1)
            per_token[start:end] = torch.where(valid, log_normalizer - target_logits, 0.0)
            if grad_hidden is None and grad_weight is None:
                continue
            # d(loss)/d(logits) = softmax - one_hot(target), zero for ignored rows; built in
            # place in the logits' buffer.
            grad_logits = logits.sub_(log_normalizer[:, None]).exp_()
            grad_logits.scatter_add_(1, safe_targets[:, None], -valid[:, None].to(logits.dtype))
            grad_logits.mul_(valid[:, None])
            grad_logits_c = grad_logits.to(hidden.dtype)
            if grad_hidden is not None:
                grad_hidden[start:end] = grad_logits_c @ weight
            if grad_weight is not None:
                grad_weight.addmm_(grad_logits_c.t().float(), h.float())
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.mark_non_differentiable(per_token)
        return per_token.sum(), per_token

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_loss: torch.Tensor, _grad_per_token: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_hidden is not None:
            grad_hidden = grad_hidden * grad_loss.to(grad_hidden.dtype)
        if grad_weight is not None:
            grad_weight = grad_weight * grad_loss
        return grad_hidden, grad_weight, None, None


def packed_causal_lm_loss(
    model: torch.nn.Module,
    batch: PackedBatch,
    chunk_tokens: int = DEFAULT_LOSS_CHUNK_TOKENS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over the batch's trainable tokens (what transformers' causal-LM loss gives on
    the same examples padded), and the per-token losses aligned with the packed row (the loss
    at i is that of predicting token i + 1). The model must use the varlen attention."""
    causal_lm = _transformers_model(model)
    outputs = causal_lm.get_decoder()(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        use_cache=False,
        **batch.attention_kwargs(),
    )
    hidden = outputs.last_hidden_state[0]
    head = causal_lm.get_output_embeddings()
    if getattr(head, "bias", None) is not None:
        raise ValueError("output layers with a bias are not supported")
    loss_sum, per_token = chunked_linear_cross_entropy(
        hidden, head.weight, shift_labels(batch.labels), chunk_tokens
    )
    return loss_sum / max(batch.trainable_tokens, 1), per_token


def per_example_losses(per_token: torch.Tensor, batch: PackedBatch) -> list[float]:
    """Mean loss of each packed example over its own trainable tokens."""
    targets = shift_labels(batch.labels.to(per_token.device))
    valid = (targets != IGNORE_INDEX).to(per_token.dtype)
    bounds = batch.cu_seqlens.tolist()
    return [
        float(per_token[a:b].sum() / valid[a:b].sum().clamp(min=1))
        for a, b in itertools.pairwise(bounds)
    ]


def quantize_decoder_linears_nf4(model: Any, device: torch.device | str) -> None:
    """Swap every linear layer of a decoder's attention and MLP blocks for a bitsandbytes NF4
    `Linear4bit` (double quantisation, bf16 compute) — what loading with
    `BitsAndBytesConfig(load_in_4bit=True, …)` produces, for a model built in memory."""
    import bitsandbytes as bnb

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for child_name, child in list(parent.named_children()):
                if not isinstance(child, torch.nn.Linear):
                    continue
                quantized = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=False,
                    compute_dtype=torch.bfloat16,
                    compress_statistics=True,
                    quant_type="nf4",
                    device="meta",
                )
                quantized.weight = bnb.nn.Params4bit(
                    child.weight.data,
                    requires_grad=False,
                    compress_statistics=True,
                    quant_type="nf4",
                ).to(device)  # type: ignore[misc]
                setattr(parent, child_name, quantized)
    model.is_loaded_in_4bit = True  # what peft checks to wrap Linear4bit with its 4-bit LoRA


def _transformers_model(model: torch.nn.Module) -> Any:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


# --------------------------------------------------------------------------- fused QLoRA


def enable_fused_qlora(
    model: torch.nn.Module, save_dequantized_weight: bool = False, dropout_kernel: str = "native"
) -> int:
    """Route every peft 4-bit LoRA layer of `model` through `qlora_linear`; returns how many.
    Parameters, adapter names and saved adapters are unchanged. With
    `save_dequantized_weight`, the dequantized weight is kept from the forward for the
    backward instead of dequantizing again: use it only under activation checkpointing
    (which drops it after the first forward and keeps it for one layer's recompute).
    `dropout_kernel`: one of DROPOUT_KERNELS. `disable_fused_qlora` undoes it."""
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit

    _check_dropout_kernel(dropout_kernel)
    count = 0
    for module in model.modules():
        if not isinstance(module, LoraLinear4bit):
            continue
        adapters = module.active_adapters
        if len(adapters) != 1 or module.merged or module.disable_adapters:
            raise ValueError("fused QLoRA needs exactly one active, unmerged adapter")
        if module.use_dora.get(adapters[0], False):
            raise ValueError("fused QLoRA does not support DoRA")
        if module.get_base_layer().bias is not None:
            raise ValueError("fused QLoRA does not support a bias on the base layer")
        # Instance attributes: the class's forward comes back when they are deleted.
        setattr(module, "_loraplex_save_weight", save_dequantized_weight)  # noqa: B010
        setattr(module, "_loraplex_dropout_kernel", dropout_kernel)  # noqa: B010
        setattr(module, "forward", MethodType(_fused_qlora_forward, module))  # noqa: B010
        count += 1
    return count


def disable_fused_qlora(model: torch.nn.Module) -> int:
    count = 0
    for module in model.modules():
        if "forward" in vars(module) and hasattr(module, "_loraplex_save_weight"):
            del module.forward
            del module._loraplex_save_weight
            del module._loraplex_dropout_kernel
            count += 1
    return count


def _fused_qlora_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    base = self.get_base_layer()
    _undo_cpu_inference_packing(base.weight)
    adapter = self.active_adapters[0]
    dropout = self.lora_dropout[adapter]
    p = float(dropout.p) if isinstance(dropout, torch.nn.Dropout) and dropout.training else 0.0
    return qlora_linear(
        x,
        base.weight,
        self.lora_A[adapter].weight,
        self.lora_B[adapter].weight,
        float(self.scaling[adapter]),
        p,
        self._loraplex_save_weight,
        self._loraplex_dropout_kernel,
        quant_state=quant_state_of(base),
    )


def quant_state_of(layer: Any) -> Any:
    """A bitsandbytes 4-bit layer's quantisation state. It lives on the weight, a Params4bit,
    and bitsandbytes keeps a copy on the layer: under FSDP the weight the layer holds while
    it runs is a plain tensor gathered from the shards, which has none."""
    return getattr(layer.weight, "quant_state", None) or getattr(layer, "quant_state", None)


def qlora_linear(
    x: torch.Tensor,
    weight_4bit: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
    dropout_p: float = 0.0,
    save_dequantized_weight: bool = False,
    dropout_kernel: str = "native",
    quant_state: Any = None,
) -> torch.Tensor:
    """x @ W.T + scaling * dropout(x) @ A.T @ B.T, W a bitsandbytes 4-bit weight (frozen),
    A (r, in) and B (out, r) the LoRA matrices (float32 parameters, used in x's dtype).
    Dropout draws a fresh mask per call from torch's generator (checkpointing restores the
    generator for its recompute, so the recompute sees the same mask). `quant_state`: W's
    quantisation state when W does not carry it (see quant_state_of)."""
    quant_state = quant_state or getattr(weight_4bit, "quant_state", None)
    if quant_state is None:
        raise ValueError("weight_4bit must be a quantized bitsandbytes Params4bit")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    _check_dropout_kernel(dropout_kernel)
    return _QLoRALinear.apply(
        x,
        weight_4bit.data,
        quant_state,
        lora_a,
        lora_b,
        scaling,
        dropout_p,
        save_dequantized_weight,
        dropout_kernel == "native",
    )


def _check_dropout_kernel(dropout_kernel: str) -> None:
    if dropout_kernel not in DROPOUT_KERNELS:
        raise ValueError(
            f"unknown dropout_kernel {dropout_kernel!r}; expected one of {DROPOUT_KERNELS}"
        )


def _undo_cpu_inference_packing(weight: Any) -> None:
    """On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit weight into an inference-only
    layout the first time its layer runs in eval mode without gradients; dequantize_4bit
    cannot read that layout. Put the weight back (what bitsandbytes does before saving)."""
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is None or not getattr(quant_state, "packing_format_for_cpu", False):
        return
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(
        weight.data, quant_state
    )


def _dequantize(packed: torch.Tensor, quant_state: Any, dtype: torch.dtype) -> torch.Tensor:
    import bitsandbytes.functional as bnb_functional

    return bnb_functional.dequantize_4bit(packed, quant_state).to(dtype)


class _QLoRALinear(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        packed: torch.Tensor,
        quant_state: Any,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
        dropout_p: float,
        save_weight: bool,
        native_dropout: bool,
    ) -> torch.Tensor:
        dtype = x.dtype
        x2 = x.reshape(-1, x.shape[-1])
        weight = _dequantize(packed, quant_state, dtype)
        out = x2 @ weight.t()
        a, b = lora_a.to(dtype), lora_b.to(dtype)
        keep = None
        if dropout_p > 0 and native_dropout:
            x_dropped, keep = torch.native_dropout(x2, dropout_p, True)
        elif dropout_p > 0:
            keep = torch.empty_like(x2, dtype=torch.bool).bernoulli_(1.0 - dropout_p)
            x_dropped = x2 * keep * (1.0 / (1.0 - dropout_p))
        else:
            x_dropped = x2
        x_a = x_dropped @ a.t()
        out.addmm_(x_a, b.t(), alpha=scaling)
        ctx.save_for_backward(x_dropped, x_a, a, b, keep, weight if save_weight else None, packed)
        ctx.quant_state, ctx.scaling, ctx.dropout_p = quant_state, scaling, dropout_p
        ctx.native_dropout = native_dropout
        ctx.x_shape, ctx.param_dtypes = x.shape, (lora_a.dtype, lora_b.dtype)
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_out: torch.Tensor
    ) -> tuple[
        torch.Tensor | None,
        None,
        None,
        torch.Tensor | None,
        torch.Tensor | None,
        None,
        None,
        None,
        None,
    ]:
        x_dropped, x_a, a, b, keep, weight, packed = ctx.saved_tensors
        g = grad_out.reshape(-1, grad_out.shape[-1])
        g_a = (g @ b).mul_(ctx.scaling)  # gradient at x_a, (tokens, r)
        grad_a = grad_b = grad_x = None
        if ctx.needs_input_grad[3]:
            grad_a = (g_a.t() @ x_dropped).to(ctx.param_dtypes[0])
        if ctx.needs_input_grad[4]:
            grad_b = (g.t() @ x_a).mul_(ctx.scaling).to(ctx.param_dtypes[1])
        if ctx.needs_input_grad[0]:
            if weight is None:
                weight = _dequantize(packed, ctx.quant_state, g.dtype)
            if keep is None:
                grad_x = torch.addmm(g @ weight, g_a, a)
            elif ctx.native_dropout:
                grad_x = torch.ops.aten.native_dropout_backward(
                    g_a @ a, keep, 1.0 / (1.0 - ctx.dropout_p)
                )
                grad_x.addmm_(g, weight)
            else:
                grad_x = (g_a @ a).mul_(keep).mul_(1.0 / (1.0 - ctx.dropout_p))
                grad_x.addmm_(g, weight)
            grad_x = grad_x.view(ctx.x_shape)
        return grad_x, None, None, grad_a, grad_b, None, None, None, None


# --------------------------------------------------------------------------- recipe glue


class PackedLoss(torch.nn.Module):
    """The packed causal-LM loss as a module's forward: DistributedDataParallel hooks the
    backward through its own forward, and the packed loss calls the decoder and the head
    directly, so DDP must wrap this module rather than the model.

    Returns the batch's summed token losses divided by `denominator` (the trainable tokens
    of the whole global batch): summed over ranks, that is the global batch's mean loss."""

    def __init__(self, model: torch.nn.Module, chunk_tokens: int = DEFAULT_LOSS_CHUNK_TOKENS):
        super().__init__()
        self.model = model
        self.chunk_tokens = chunk_tokens

    def forward(self, batch: PackedBatch, denominator: float) -> torch.Tensor:
        loss, _ = packed_causal_lm_loss(self.model, batch, self.chunk_tokens)
        return loss * (max(batch.trainable_tokens, 1) / denominator)


def liger_available() -> bool:
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception:  # ImportError, or Triton failing to start
        return False
    return True


def apply_liger_kernels(model: torch.nn.Module) -> bool:
    """liger-kernel's RMSNorm, RoPE and SwiGLU Triton kernels on a Llama-family model (CUDA
    only); its cross-entropy kernels stay off (the chunked loss here does that work).
    Returns whether they were applied: False where liger is not installed or the model is
    not a Llama."""
    causal_lm = _transformers_model(model)
    if getattr(causal_lm.config, "model_type", None) != "llama" or not liger_available():
        return False
    from liger_kernel.transformers import apply_liger_kernel_to_llama

    apply_liger_kernel_to_llama(
        rope=True,
        rms_norm=True,
        swiglu=True,
        cross_entropy=False,
        fused_linear_cross_entropy=False,
        model=causal_lm,
    )
    return True


def enable_fast_path(
    model: torch.nn.Module, device: torch.device, compute_dtype: torch.dtype
) -> dict[str, Any]:
    """Everything the packed training path uses, chosen by what `device` supports, on a peft
    model: the packed-row attention (varlen flash attention on CUDA in a half-precision
    compute dtype, SDPA with a block-diagonal mask otherwise), the fused NF4 + LoRA layer
    (when the base is 4-bit) and, on CUDA where installed, liger's kernels. Returns what was
    chosen, for the job's manifest: a run is reproduced by the same choices."""
    flash = device.type == "cuda" and compute_dtype in (torch.bfloat16, torch.float16)
    register_varlen_attention("flash" if flash else "sdpa_mask")
    use_varlen_attention(model)
    fused_layers = enable_fused_qlora(model)
    liger = device.type == "cuda" and apply_liger_kernels(model)
    return {
        "attention": "flash_varlen" if flash else "sdpa_block_diagonal_mask",
        "loss": "chunked_linear_cross_entropy",
        "loss_chunk_tokens": DEFAULT_LOSS_CHUNK_TOKENS,
        "fused_qlora_layers": fused_layers,
        "liger_kernels": liger,
    }
