"""What a fine-tuning job on a dataset will cost: tokens trained over n epochs and the time
that takes on a worker class, from measured throughput."""

from typing import Any

DEFAULT_N_EPOCHS = 3
DEFAULT_MAX_SEQ_LENGTH = 1024

# Training throughput (non-padding tokens per second) of the CPU recipe: SmolLM2-135M-Instruct,
# NF4 4-bit base (bitsandbytes), LoRA r=16 on all linear layers, batch 4, packed batches (the
# default), on a 2-core worker: 125-135 tokens/s measured on chat rows of 130-1,200 tokens
# (padded batches: 109-115), bench/training/cpu_recipe_rate.py, results in
# bench/results/cpu_recipe_rate.json. Other worker classes need their own figure.
CPU_RECIPE_TOKENS_PER_SECOND = 130.0
WORKER_CLASS = "cpu-2core (SmolLM2-135M-Instruct, nf4, LoRA r=16)"


def training_estimate(
    tokens_per_epoch: int,
    trainable_tokens_per_epoch: int,
    n_epochs: int = DEFAULT_N_EPOCHS,
    tokens_per_second: float = CPU_RECIPE_TOKENS_PER_SECOND,
    worker_class: str = WORKER_CLASS,
) -> dict[str, Any]:
    """`tokens_per_epoch` counts rows after truncation to max_seq_length, as training sees them."""
    total = tokens_per_epoch * n_epochs
    seconds = total / tokens_per_second
    return {
        "n_epochs": n_epochs,
        "tokens_per_epoch": tokens_per_epoch,
        "total_training_tokens": total,
        "trainable_tokens": trainable_tokens_per_epoch * n_epochs,
        "worker_class": worker_class,
        "tokens_per_second": tokens_per_second,
        "expected_duration_seconds": round(seconds),
        "expected_duration": _human_duration(seconds),
    }


def _human_duration(seconds: float) -> str:
    minutes, _ = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{max(minutes, 1)} min" if seconds >= 30 else f"{round(seconds)} s"
