"""The CPU recipe's training throughput, the figure the dataset report's time estimate uses
(worker/datasets/estimate.py CPU_RECIPE_TOKENS_PER_SECOND): the real entry point, `python -m
worker.training CONFIG.json`, on the platform's default base model (SmolLM2-135M-Instruct,
NF4, LoRA r=16 on all linear layers, batch 4, max_seq_length 1024), packed and padded, on chat
rows of about 130-1,200 tokens (recipe_speed.chat_rows). Non-padding tokens per second from
the recipe's own step metrics, the first step (start-up) left out.

    .venv/bin/python -m bench.training.cpu_recipe_rate --out bench/results
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.training.recipe_speed import chat_rows

MODEL_DIR = Path(__file__).resolve().parents[2] / "var" / "models" / "SmolLM2-135M-Instruct"


def run(work: Path, rows: int, packing: bool) -> dict[str, Any]:
    config = {
        "base_model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "base_model_path": str(MODEL_DIR),
        "training_path": str(work / "train.jsonl"),
        "output_dir": str(work / f"out-{packing}"),
        "dataset_sha256": "",
        "n_epochs": 1,
        "batch_size": 4,
        "max_seq_length": 1024,
        "lora_r": 16,
        "lora_alpha": 32,
        "resume": False,
        "packing": packing,
    }
    path = work / f"config-{packing}.json"
    path.write_text(json.dumps(config))
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-m", "worker.training", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - started
    steps = [
        record
        for record in map(json.loads, filter(None, output.splitlines()))
        if record.get("type") == "metrics" and "tokens_per_second" in record
    ]
    later = steps[1:]
    seconds = sum(
        (b["trained_tokens"] - a["trained_tokens"]) / b["tokens_per_second"]
        for a, b in zip(steps, later, strict=False)
    )
    tokens = steps[-1]["trained_tokens"] - steps[0]["trained_tokens"]
    return {
        "packing": packing,
        "rows": rows,
        "steps": len(steps),
        "trained_tokens": steps[-1]["trained_tokens"],
        "tokens_per_second_after_first_step": tokens / seconds,
        "per_step_tokens_per_second": [round(s["tokens_per_second"], 1) for s in steps],
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--work", default="/tmp/cpu_recipe_rate")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = chat_rows(args.rows, 0)
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = {"runs": [run(work, args.rows, packing) for packing in (True, False)]}
    out = Path(args.out) / "cpu_recipe_rate.json"
    out.write_text(json.dumps(report, indent=2))
    for r in report["runs"]:
        print(f"packing={r['packing']}: {r['tokens_per_second_after_first_step']:.0f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
