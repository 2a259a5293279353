"""The per-GPU memory estimate that routes jobs to workers with big enough GPUs."""

from pathlib import Path

from worker.training.gpu_memory import GIB, estimate, estimate_for_model

LLAMA_8B = {
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
HP = {"batch_size": 8, "max_seq_length": 2048, "lora_r": 16, "target_modules": "all-linear"}
SMOLLM2 = Path(__file__).resolve().parents[3] / "var/models/SmolLM2-135M-Instruct"


def test_the_8b_shape_needs_about_twenty_gib_per_gpu() -> None:
    parts = estimate(LLAMA_8B, HP)
    # 4-bit decoder weights (~7B params at ~0.52 B) plus bf16 embeddings and output layer
    assert 5 * GIB < parts["weights_bytes"] < 6 * GIB
    # r=16 on all seven linears: 42M LoRA parameters at 16 bytes with AdamW
    assert parts["lora_bytes"] == 32 * 16 * 81920 * 16
    assert 16 * GIB < parts["per_gpu_bytes"] < 24 * GIB  # measured: ~12 GiB fast, 29-50 baseline


def test_the_estimate_grows_with_what_costs_memory() -> None:
    base = estimate(LLAMA_8B, HP)["per_gpu_bytes"]
    assert estimate(LLAMA_8B, HP | {"batch_size": 16})["per_gpu_bytes"] > base
    assert estimate(LLAMA_8B, HP | {"max_seq_length": 4096})["per_gpu_bytes"] > base
    budget = estimate(LLAMA_8B, HP | {"packing": True, "max_tokens_per_batch": 4096})
    assert (
        budget["activations_bytes"]
        == estimate(LLAMA_8B, HP | {"batch_size": 2})["activations_bytes"]
    )  # a token budget bounds the micro-batch, whatever batch_size says
    assert estimate(LLAMA_8B, HP | {"lora_r": 64})["per_gpu_bytes"] > base
    unquantized = estimate(LLAMA_8B, HP | {"quantization": "none"})
    assert unquantized["weights_bytes"] > 2.5 * estimate(LLAMA_8B, HP)["weights_bytes"]
    attention_only = estimate(LLAMA_8B, HP | {"target_modules": ["q_proj", "v_proj"]})
    assert attention_only["lora_bytes"] < base
    tied = estimate(LLAMA_8B | {"tie_word_embeddings": True}, HP)["weights_bytes"]
    assert tied < estimate(LLAMA_8B, HP)["weights_bytes"]


def test_a_model_on_disk_is_read_from_its_config(tmp_path: Path) -> None:
    small = estimate_for_model(SMOLLM2, {"batch_size": 4, "max_seq_length": 64, "lora_r": 8})
    assert small is not None and small["per_gpu_bytes"] < 8 * GIB  # every worker may take it
    assert estimate_for_model(tmp_path, HP) is None  # no config.json: unknown, not a crash
    (tmp_path / "config.json").write_text("{not json")
    assert estimate_for_model(tmp_path, HP) is None


def test_sharding_over_gpus_lowers_the_need_per_gpu() -> None:
    deep = LLAMA_8B | {"num_hidden_layers": 80}  # docs/benchmarks.md's 18.5 B "llama-8b-80l"
    whole = estimate(deep, HP | {"n_gpus": 2})
    two = estimate(deep, HP | {"n_gpus": 2, "parallelism": "fsdp"})
    four = estimate(deep, HP | {"n_gpus": 4, "parallelism": "fsdp"})
    assert whole == estimate(deep, HP)  # data parallel: every GPU holds the whole model
    assert four["per_gpu_bytes"] < two["per_gpu_bytes"] < whole["per_gpu_bytes"]
    assert two["lora_bytes"] == whole["lora_bytes"] // 2
    # Each rank keeps its half of the 4-bit weights plus what it gathers whole (two layers,
    # the embeddings and head); but it loads the whole model before sharding it.
    assert two["weights_bytes"] < whole["weights_bytes"] * 0.75
    assert two["per_gpu_bytes"] >= whole["load_bytes"]
