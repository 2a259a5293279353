"""The platform's SFT recipe (worker/training/recipe.py, packing on) against the plain
transformers + peft + bitsandbytes QLoRA baseline of bench/training/qlora_speed.py, side by
side in one process, on the same random-weight model, the same examples per step and the
same token accounting; and job start -> first optimizer step of the real entry point
(`python -m worker.training CONFIG.json`) with the model's weights on local disk.

    # 1. random Llama-3.1-8B-shape weights (bf16 safetensors) + a chat tokenizer on disk
    python -m bench.training.recipe_speed save --dir /tmp/llama8b --tokenizer TOKENIZER_DIR
    # 2. job start -> first optimizer step: `python -m worker.training` on that directory
    python -m bench.training.recipe_speed first-step --dir /tmp/llama8b
    # 3. baseline and recipe, tokens/s, memory, MFU, loss parity
    python -m bench.training.recipe_speed speed --dir /tmp/llama8b

`--model tiny --device cpu` runs the same on a CPU with a two-layer model (a smoke test).
The recipe's model is loaded from the saved directory through the recipe's own loader
(AutoModelForCausalLM + BitsAndBytesConfig NF4, double quantisation); the baseline's is built
in memory from the same seed and quantized with the same settings, so both hold the same
NF4 weights. The recipe's data is injected (its `_setup_data`), and each timed step calls
the recipe's own `_train_step` (packed loss, NaN check, backward, clipping, AdamW, schedule)
on exactly the examples the baseline trains on in that step.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROCESS_START = time.perf_counter()

import torch  # noqa: E402

from bench.training import qlora_speed as qs  # noqa: E402
from worker.training.data import ChatDataset, TokenizedExample  # noqa: E402
from worker.training.recipe import SFTRecipe, SilentReporter, TrainConfig  # noqa: E402

BASE_MODEL_ID = "bench/random-llama"


# --------------------------------------------------------------------------- save


def save(args: argparse.Namespace) -> dict[str, Any]:
    """The random bf16 model qlora_speed.build_model starts from (same config and seed),
    saved as safetensors with a chat tokenizer beside it: a base model directory the
    recipe's loader accepts."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    device = torch.device(args.device)
    config = LlamaConfig(
        **qs.MODELS[args.model],
        tie_word_embeddings=False,
        use_cache=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=qs.PAD_TOKEN_ID,
    )
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    built = time.perf_counter()
    out = Path(args.dir)
    model.save_pretrained(out, max_shard_size="5GB")
    AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(out)
    os.sync()
    return {
        "build_s": built - started,
        "save_s": time.perf_counter() - built,
        "bytes_on_disk": sum(p.stat().st_size for p in out.glob("*.safetensors")),
    }


# --------------------------------------------------------------------------- first step


def chat_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Chat rows of random words, a few hundred to a couple of thousand tokens each."""
    g = torch.Generator().manual_seed(seed)
    words = "alpha river stone cloud tiger piano garden rocket silver lemon forest".split()

    def text(count: int) -> str:
        picks = torch.randint(0, len(words), (count,), generator=g).tolist()
        return " ".join(words[i] for i in picks)

    rows = []
    for _ in range(n):
        length = int(torch.randint(100, 900, (1,), generator=g))
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": text(length // 2)},
                    {"role": "assistant", "content": text(length - length // 2)},
                ]
            }
        )
    return rows


def first_step(args: argparse.Namespace) -> dict[str, Any]:
    """Wall time from starting `python -m worker.training CONFIG.json` (the recipe's real
    entry point: imports, tokenizer, weights read from disk and quantized, LoRA, data) to
    the first step's metrics line, which the recipe prints after the optimizer step."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in chat_rows(64, args.seed)))
    config = {
        "base_model_id": BASE_MODEL_ID,
        "base_model_path": str(args.dir),
        "training_path": str(data),
        "output_dir": str(work / "out"),
        "dataset_sha256": "",
        "n_epochs": 1,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_len,
        "resume": False,
        "packing": not args.padded,
    }
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.training", str(config_path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    events: list[dict[str, Any]] = []
    result: dict[str, Any] = {"packing": not args.padded}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            at = time.perf_counter() - started
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append({"at_s": round(at, 2), "message": record.get("message")})
            if record.get("type") == "metrics":
                result.update(
                    start_to_first_step_s=at,
                    first_step_loss=record["train_loss"],
                    first_step_tokens=record["trained_tokens"],
                )
                break
    finally:
        process.kill()  # this benchmark's own child: one step is all it is for
        process.wait()
    if "start_to_first_step_s" not in result:
        result["error"] = f"no step: the process exited with {process.returncode}"
    result["events"] = events
    return result


# --------------------------------------------------------------------------- speed


class BenchRecipe(SFTRecipe):
    """The recipe with its training data handed in (the benchmark's synthetic examples)."""

    examples: list[TokenizedExample] = []

    def _setup_data(self, path: Path, name: str) -> ChatDataset:
        return ChatDataset(examples=list(self.examples), skipped_line_numbers=[])


def recipe_config(args: argparse.Namespace, packing: bool) -> TrainConfig:
    return TrainConfig(
        base_model_id=BASE_MODEL_ID,
        base_model_path=Path(args.dir),
        training_path=Path(args.work) / "unused.jsonl",
        output_dir=Path(args.work) / "speed_out",
        dataset_sha256="",
        n_epochs=1,
        batch_size=args.batch_size,
        learning_rate=2e-4,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        max_seq_length=args.max_len,
        resume=False,
        packing=packing,
    )


def run_recipe(
    args: argparse.Namespace,
    steps: list[list[TokenizedExample]],
    init_state: dict[str, torch.Tensor],
    parity_state: dict[str, torch.Tensor],
    parity_set: list[TokenizedExample],
    device: torch.device,
    config: Any,
    n_lora: int,
) -> dict[str, Any]:
    """Set the recipe up from the saved directory and time its own training step on the
    baseline's step examples; then the parity check with the baseline's LoRA weights."""
    qs.sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    BenchRecipe.examples = [e for s in steps for e in s]
    recipe = BenchRecipe(recipe_config(args, packing=True), SilentReporter())
    recipe.setup()
    qs.sync(device)
    out: dict[str, Any] = {"variant": "recipe", "setup_s": time.perf_counter() - t0}
    model = recipe._model
    qs.load(model, {k: v.to(device) for k, v in init_state.items()})
    model.train()
    step_s: list[float] = []
    losses: list[float] = []
    t_timed = None
    for i, examples in enumerate(steps):
        if i == args.warmup:
            qs.sync(device)
            t_timed = time.perf_counter()
        t_step = time.perf_counter()
        losses.append(recipe._train_step(examples, i + 1))
        qs.sync(device)
        elapsed = time.perf_counter() - t_step
        if i == 0:
            out["first_step_s"] = elapsed
        if i >= args.warmup:
            step_s.append(elapsed)
        print(f"  [recipe] step {i + 1}/{len(steps)} loss {losses[-1]:.4f} {elapsed:.3f}s")
    assert t_timed is not None
    timed_s = time.perf_counter() - t_timed
    timed = [e for s in steps[args.warmup :] for e in s]
    flops = qs.step_flops([len(e) for e in timed], config, n_lora)
    non_pad = sum(len(e) for e in timed)
    out.update(
        settings={
            "fast_path": recipe._fast_path,
            "gradient_checkpointing": recipe._gradient_checkpointing,
            "fused_adamw": recipe._fused_adamw,
            "compute_dtype": str(recipe.compute_dtype),
        },
        losses=losses,
        step_s=step_s,
        timed_s=timed_s,
        timed_steps=len(step_s),
        non_pad_tokens=non_pad,
        tokens_per_s=non_pad / timed_s,
        mfu=flops["model"] / timed_s / args.peak_flops,
        mfu_with_recompute=(flops["model"] + flops["recompute"]) / timed_s / args.peak_flops,
    )
    if device.type == "cuda":
        out["peak_allocated_gb"] = torch.cuda.max_memory_allocated() / 1e9
        out["peak_reserved_gb"] = torch.cuda.max_memory_reserved() / 1e9
    variant = qs.Variant("recipe", packed=True)  # parity_check's packed path: the recipe's loss
    out["parity_check"] = qs.parity_check(
        model, variant, parity_set, {k: v.to(device) for k, v in parity_state.items()}, device
    )
    return out


def speed(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    report: dict[str, Any] = {"environment": qs.environment(device)}
    model, config = qs.build_model(args.model, device, args.seed)
    peft_model = qs.add_lora(model)
    n_lora = sum(p.numel() for _, p in qs.trainable(peft_model))
    init_state = {k: v.cpu() for k, v in qs.snapshot(peft_model).items()}
    parity_state = {k: v.cpu() for k, v in qs.perturbed(init_state, args.seed + 1).items()}
    n_steps = args.warmup + args.steps
    examples = qs.make_examples(
        n_steps * args.batch_size,
        config.vocab_size,
        args.min_len,
        args.max_len,
        args.median_len,
        args.len_sigma,
        args.seed,
    )
    steps = [examples[i * args.batch_size : (i + 1) * args.batch_size] for i in range(n_steps)]
    timed = steps[args.warmup :]
    padded = sum(max(len(e) for e in s) * len(s) for s in timed)
    report["data"] = {
        "timed_tokens_per_step": sum(len(e) for s in timed for e in s) / args.steps,
        "baseline_padding_fraction": 1 - sum(len(e) for s in timed for e in s) / padded,
    }
    parity_set = qs.parity_examples(config.vocab_size, args.max_len, args.seed)

    print("== baseline", flush=True)
    baseline = qs.run_variant(
        peft_model,
        qs.LADDER["baseline"],
        steps,
        args.warmup,
        {k: v.to(device) for k, v in init_state.items()},
        args,
        device,
        config,
        n_lora,
    )
    reference = qs.parity_check(
        peft_model,
        qs.LADDER["baseline"],
        parity_set,
        {k: v.to(device) for k, v in parity_state.items()},
        device,
    )
    del peft_model, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    print("== recipe", flush=True)
    recipe = run_recipe(args, steps, init_state, parity_state, parity_set, device, config, n_lora)
    check = recipe.pop("parity_check")
    recipe["parity"] = qs.compare(reference, check)
    base = {
        key: value
        for key, value in vars(baseline).items()
        if key not in ("parity", "uncheckpointed_layers")
    }
    base["parity_reference"] = {
        "per_example_loss": reference["per_example_loss"],
        "loss": reference["loss"],
    }
    report["results"] = [base, recipe]
    report["speedup"] = recipe["tokens_per_s"] / baseline.tokens_per_s
    if baseline.peak_allocated_gb:
        report["peak_allocated_vs_baseline"] = (
            recipe["peak_allocated_gb"] / baseline.peak_allocated_gb
        )
        report["peak_reserved_vs_baseline"] = recipe["peak_reserved_gb"] / baseline.peak_reserved_gb
    report["process_s"] = time.perf_counter() - PROCESS_START
    return report


def summary(report: dict[str, Any]) -> str:
    rows = []
    for r in report["results"]:
        p = r.get("parity") or {}
        rows.append(
            f"{r['variant']:<9} {r['tokens_per_s']:>8.0f} tok/s  alloc "
            f"{r.get('peak_allocated_gb') or 0:.1f} GB  reserved "
            f"{r.get('peak_reserved_gb') or 0:.1f} GB  MFU {100 * r['mfu']:.1f}% "
            f"({100 * r['mfu_with_recompute']:.1f}% w/ recompute)"
            f"  first step {r['first_step_s']:.1f}s  dloss {p.get('max_abs_loss_diff', 0):.3g}"
            f"  grad-rel {p.get('grad_rel_error', 0):.3g}"
        )
    rows.append(
        f"speed-up x{report['speedup']:.2f}, allocated "
        f"x{report.get('peak_allocated_vs_baseline', 0):.2f}, reserved "
        f"x{report.get('peak_reserved_vs_baseline', 0):.2f}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("phase", choices=["save", "first-step", "speed"])
    parser.add_argument("--dir", required=True, help="the base model directory")
    parser.add_argument("--tokenizer", default="var/models/SmolLM2-135M-Instruct")
    parser.add_argument("--work", default="/tmp/recipe_speed")
    parser.add_argument("--model", choices=sorted(qs.MODELS), default="llama-3.1-8b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--padded", action="store_true", help="first-step with packing off")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--min-len", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--median-len", type=float, default=512)
    parser.add_argument("--len-sigma", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attention-backend", default="auto")
    parser.add_argument("--bytes-per-token-layer", type=float, default=210e3)
    parser.add_argument("--peak-flops", type=float, default=qs.H200_DENSE_BF16_FLOPS)
    parser.add_argument("--out", default=os.environ.get("OUT") or "bench/training/results")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phases = {"save": save, "first-step": first_step, "speed": speed}
    report = {"phase": args.phase, "args": vars(args), **phases[args.phase](args)}
    path = out / f"recipe_speed_{args.phase}_{args.model}{args.tag}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    if args.phase == "speed":
        print(summary(report))
    else:
        print(json.dumps({k: v for k, v in report.items() if k != "events"}, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
