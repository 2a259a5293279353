"""The supervised recipe (worker/training/recipe.py) on 1 process and under torchrun on N (one
per GPU, NCCL), on the same global batches: per-step losses and the final adapters must agree
to float rounding. A random-weight model with the base model's architecture and tokenizer
stands in for the real weights, so only the tokenizer files need to be on the machine.

    python -m bench.training.ddp_recipe_parity --tokenizer var/models/SmolLM2-135M-Instruct \\
        --nprocs 2 --out artifacts/ddp_recipe_parity

With `--rank-run DIR` the module is one rank of a torchrun launch (what the driver starts).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

WORDS = (
    "apple river stone cloud tiger piano garden rocket silver lemon forest candle ocean "
    "marble window pepper banana"
).split()  # 17 rows in batches of 4: the last batch has one row, some ranks train on none
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def make_model(tokenizer_dir: Path, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(target)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, target / name)


def write_data(path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Shout."},
                {"role": "user", "content": f"Shout the word: {w}"},
                {"role": "assistant", "content": f"{w.upper()}! {w.upper()}!"},
            ]
        }
        for w in WORDS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def rank_run(model_dir: Path, out: Path) -> None:
    from worker.training.manifest import sha256_of_file
    from worker.training.recipe import SFTRecipe, TrainConfig

    data = out.parent / "train.jsonl"
    losses: list[float] = []

    class Recorder:
        def event(self, message: str, level: str = "info", data: Any = None) -> None:
            print(message, flush=True)

        def metrics(self, data: dict[str, Any]) -> None:
            losses.append(data["train_loss"])

        def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
            pass

        def should_stop(self) -> bool:
            return False

    config = TrainConfig(
        base_model_id="random-smollm2",
        base_model_path=model_dir,
        training_path=data,
        output_dir=out,
        dataset_sha256=sha256_of_file(data),
        seed=7,
        n_epochs=2,
        batch_size=4,
        learning_rate=1e-3,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_seq_length=64,
        quantization="none",
        checkpoint_every_steps=3,
    )
    recipe = SFTRecipe(config, Recorder())
    recipe.setup()
    result = recipe.train()
    if int(os.environ.get("RANK", 0)) == 0:
        (out / "run.json").write_text(
            json.dumps({"losses": losses, "steps": result.steps, "manifest": result.manifest})
        )


def compare(one: Path, many: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    a = load_file(one / "adapter" / "adapter_model.safetensors")
    b = load_file(many / "adapter" / "adapter_model.safetensors")
    errors = {
        name: float((b[name].double() - t.double()).norm() / t.double().norm().clamp_min(1e-12))
        for name, t in a.items()
    }
    run_a = json.loads((one / "run.json").read_text())
    run_b = json.loads((many / "run.json").read_text())
    loss_diff = max(abs(x - y) for x, y in zip(run_a["losses"], run_b["losses"], strict=True))
    return {
        "steps": [run_a["steps"], run_b["steps"]],
        "losses_1": run_a["losses"],
        "losses_n": run_b["losses"],
        "max_abs_loss_diff": loss_diff,
        "max_rel_adapter_error": max(errors.values()),
        "median_rel_adapter_error": sorted(errors.values())[len(errors) // 2],
        "n_gpus_in_manifest": run_b["manifest"]["hyperparameters"]["n_gpus"],
        "compute_dtype": run_b["manifest"]["hyperparameters"]["compute_dtype"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("artifacts/ddp_recipe_parity"))
    parser.add_argument("--rank-run", type=Path)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    if args.rank_run:
        rank_run(args.model, args.rank_run)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.out / "model"
    make_model(args.tokenizer, model)
    write_data(args.out / "train.jsonl")
    runner = ["-m", "bench.training.ddp_recipe_parity", "--model", str(model), "--rank-run"]
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0"}
    subprocess.run([sys.executable, *runner, str(args.out / "one")], check=True, env=env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    torchrun += ["--nproc-per-node", str(args.nprocs)]
    many = args.out / f"n{args.nprocs}"
    subprocess.run([*torchrun, *runner, str(many)], check=True, env=env)
    report = {"nprocs": args.nprocs, **compare(args.out / "one", many)}
    print(json.dumps(report, indent=2))
    (args.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
