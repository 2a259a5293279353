"""How much GPU memory a QLoRA job needs on each of its GPUs, estimated from the base model's
config.json and the job's hyperparameters, so that the job waits for a worker whose GPUs are
big enough instead of running out of memory on the first one that takes it.

Every GPU of a data-parallel job (DDP) holds the whole model, so the figure is per GPU:

    weights       decoder linear layers in 4-bit NF4 with double quantisation (~0.52 bytes
                  per parameter with the quantisation constants), or 2 bytes without
                  quantisation; embeddings (and an untied output layer) stay in bf16
    LoRA          r x (in + out) parameters per targeted layer, each with an fp32 value, an
                  fp32 gradient and AdamW's two fp32 moments: 16 bytes
    activations   gradient checkpointing keeps each layer's bf16 input (tokens x hidden x 2
                  bytes x layers) and recomputes one layer at a time; a layer's working set
                  is taken as tokens x (10 x hidden + 4 x intermediate) x 2 bytes
    logits        the output projection and loss run over chunks of 4,096 tokens
                  (fast_path.chunked_linear_cross_entropy): 4,096 x vocabulary x 4 bytes x 2
    overhead      1.5 GiB for the CUDA context, the allocator's fragmentation and kernels'
                  workspaces

with `tokens` = max_tokens_per_batch when the job sets a token budget, else batch_size x
max_seq_length: the most one micro-batch can hold. A job sharded over n GPUs
(`parallelism: "fsdp"`, worker/training/sharding.py) keeps 1/n of the weights and of the
LoRA state on each, plus what is gathered whole while it runs: two decoder layers' weights
(the one running and the one prefetched) and the embeddings and head; but every rank loads
and quantises the whole model on its GPU before sharding it, so the figure is at least the
whole model's weights plus the overhead (`load_bytes`). The sum is
rounded up by 15% as a margin. It is an estimate for routing, not a guarantee: measured on
one H200 (docs/benchmarks.md), the Llama-3.1-8B shape at 8 x 2,048 tokens peaked at about
12 GiB allocated (the baseline, padded and without
chunked logits, 29-50 GB); this estimate gives about 21 GiB for it.
"""

import json
import math
from pathlib import Path
from typing import Any

GIB = 2**30
NF4_BYTES_PER_PARAM = 0.52
BF16 = 2
LORA_BYTES_PER_PARAM = 16
LOSS_CHUNK_TOKENS = 4096
OVERHEAD_BYTES = int(1.5 * GIB)
MARGIN = 1.15

_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")


def linear_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear layer of one decoder block of a Llama-style model."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    intermediate = int(config["intermediate_size"])
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, intermediate),
        "up_proj": (hidden, intermediate),
        "down_proj": (intermediate, hidden),
    }


def _targeted(target_modules: Any) -> tuple[str, ...]:
    if target_modules in (None, "all-linear", "all_linear"):
        return _ATTENTION + _MLP
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    return tuple(name for name in _ATTENTION + _MLP if name in set(target_modules))


def estimate(config: dict[str, Any], hyperparameters: dict[str, Any]) -> dict[str, int]:
    """Bytes per GPU by component, and their sum with the margin (`per_gpu_bytes`)."""
    shapes = linear_shapes(config)
    layers = int(config["num_hidden_layers"])
    hidden = int(config["hidden_size"])
    vocab = int(config["vocab_size"])
    intermediate = int(config["intermediate_size"])
    linear_params = layers * sum(i * o for i, o in shapes.values())
    embedding_params = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    quantized = hyperparameters.get("quantization", "nf4") in ("nf4", "fp4", "int4")
    weights = linear_params * (NF4_BYTES_PER_PARAM if quantized else BF16)
    rank = int(hyperparameters.get("lora_r", 16))
    lora_params = (
        layers
        * rank
        * sum(sum(shapes[name]) for name in _targeted(hyperparameters.get("target_modules")))
    )
    budget = hyperparameters.get("max_tokens_per_batch")
    tokens = (
        int(budget)
        if budget
        else int(hyperparameters.get("batch_size", 1))
        * int(hyperparameters.get("max_seq_length", 2048))
    )
    activations = tokens * hidden * BF16 * layers + tokens * (10 * hidden + 4 * intermediate) * BF16
    logits = min(tokens, LOSS_CHUNK_TOKENS) * vocab * 4 * 2
    weights_bytes = weights + embedding_params * BF16
    lora_bytes = lora_params * LORA_BYTES_PER_PARAM
    load_bytes = weights_bytes + OVERHEAD_BYTES
    n_gpus = int(hyperparameters.get("n_gpus") or 1)
    if hyperparameters.get("parallelism") == "fsdp" and n_gpus > 1:
        gathered = 2 * weights / layers + embedding_params * BF16
        weights_bytes = weights_bytes / n_gpus + gathered
        lora_bytes = lora_bytes // n_gpus
    parts = {
        "weights_bytes": int(weights_bytes),
        "lora_bytes": lora_bytes,
        "activations_bytes": activations,
        "logits_bytes": logits,
        "overhead_bytes": OVERHEAD_BYTES,
    }
    parts["per_gpu_bytes"] = math.ceil(max(sum(parts.values()), load_bytes) * MARGIN)
    parts["load_bytes"] = int(load_bytes)
    return parts


def estimate_for_model(model_dir: Path, hyperparameters: dict[str, Any]) -> dict[str, int] | None:
    """The estimate for a base model on disk; None when its config cannot be read."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
        return estimate(config, hyperparameters)
    except (OSError, ValueError, KeyError, TypeError):
        return None
