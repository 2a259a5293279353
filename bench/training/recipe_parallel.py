"""The platform's SFT recipe (worker/training/recipe.py, packing on) on one GPU and on
several, each configuration launched the way the worker launches a job (`python -m
torch.distributed.run --standalone --nproc-per-node N`), on the same random-weight model
read from disk and the same synthetic examples:

    1 GPU        the recipe as a one-GPU job runs it
    ddp N        data parallel: the whole model on every GPU (`parallelism: "ddp"`)
    fsdp N       every weight and optimizer state sharded (`parallelism: "fsdp"`)

Weak scaling: each GPU's share of a step is the one-GPU step's token budget
(`max_tokens_per_batch` = budget x N), so scaling efficiency = tokens/s with N GPUs over
N x tokens/s with one. Memory per GPU: torch's peak allocated and reserved on every rank,
and what a rank holds once the model is set up (the weights it keeps).

`--cap-gb G` runs DDP and FSDP again with every GPU limited to G GiB
(`torch.cuda.set_per_process_memory_fraction`): a smaller card's memory, to show which of
them trains the model there. `--cap-gb auto` takes the midpoint between FSDP's and DDP's
peak reserved memory of the uncapped runs.

    python -m bench.training.recipe_speed save --dir /tmp/m8b --tokenizer TOKENIZER_DIR
    python -m bench.training.recipe_parallel --dir /tmp/m8b --gpus 2 --cap-gb auto --out OUT

A CPU smoke run (gloo, a tiny model saved with `recipe_speed save --model tiny --device cpu`):
    python -m bench.training.recipe_parallel --dir /tmp/tiny --gpus 2 --device cpu \
        --budget 512 --max-len 256 --median-len 64 --steps 2 --warmup 1 --out /tmp/smoke
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from worker.training.distributed import TRAINING_CUDA_ALLOC_CONF

RUNS_DIRNAME = "runs"


# --------------------------------------------------------------------------- one rank


class TimingReporter:
    """Rank 0's step metrics with the wall time at which each step ended (the device
    synchronised first), and a stop request once enough steps are done."""

    def __init__(self, stop_after: int, device: torch.device):
        self.stop_after = stop_after
        self.device = device
        self.steps: list[dict[str, Any]] = []

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        print(f"  [event] {message}", flush=True)

    def metrics(self, data: dict[str, Any]) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.steps.append({**data, "ended_at": time.perf_counter()})
        print(
            f"  step {data['step']} loss {data['train_loss']:.4f} "
            f"{data['tokens_per_second']:.0f} tok/s",
            flush=True,
        )

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        pass

    def should_stop(self) -> bool:
        return len(self.steps) >= self.stop_after


def rank_main(args: argparse.Namespace) -> None:
    from bench.training import qlora_speed as qs
    from bench.training.recipe_speed import BASE_MODEL_ID, BenchRecipe
    from worker.training.distributed import exit_without_teardown, world_from_env
    from worker.training.lora import freeze_setup_objects
    from worker.training.recipe import TrainConfig

    world = world_from_env()
    device = world.device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        if args.cap_gb:
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(args.cap_gb * 2**30 / total, device)
    vocab = qs.MODELS[args.model]["vocab_size"]
    n_examples = args.examples_per_gpu * world.world_size
    BenchRecipe.examples = qs.make_examples(
        n_examples, vocab, args.min_len, args.max_len, args.median_len, 0.6, args.seed
    )
    work = Path(args.work)
    config = TrainConfig(
        base_model_id=BASE_MODEL_ID,
        base_model_path=Path(args.dir),
        training_path=work / "unused.jsonl",
        output_dir=work / f"out-{args.label}",
        dataset_sha256="",
        n_epochs=1,
        batch_size=8,
        lora_dropout=0.05,
        max_seq_length=args.max_len,
        resume=False,
        packing=True,
        max_tokens_per_batch=args.budget * world.world_size,
        checkpoint_every_steps=1_000_000,
        parallelism=args.parallelism,
    )
    reporter = TimingReporter(args.warmup + args.steps, device)
    record: dict[str, Any] = {"rank": world.rank, "world_size": world.world_size}
    started = time.perf_counter()
    try:
        recipe = BenchRecipe(config, reporter, world)
        recipe.setup()
        freeze_setup_objects()  # as the job runner does
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            record["after_setup_allocated_gb"] = torch.cuda.memory_allocated(device) / 1e9
        record["setup_s"] = time.perf_counter() - started
        result = recipe.train()
        record["status"] = result.status
    except torch.OutOfMemoryError as exc:
        record["status"] = "out_of_memory"
        record["error"] = str(exc).splitlines()[0]
    if device.type == "cuda":
        record["peak_allocated_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        record["peak_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 1e9
    record["steps"] = reporter.steps
    Path(args.record).with_suffix(f".rank{world.rank}.json").write_text(json.dumps(record))
    exit_without_teardown(0 if record["status"] != "out_of_memory" else 3)


# --------------------------------------------------------------------------- orchestrator


def launch(args: argparse.Namespace, label: str, gpus: int, parallelism: str, cap: float | None):
    runs = Path(args.out) / RUNS_DIRNAME
    runs.mkdir(parents=True, exist_ok=True)
    record = runs / f"{label}.json"
    for stale in runs.glob(f"{label}.rank*.json"):
        stale.unlink()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(gpus),
        "-m",
        "bench.training.recipe_parallel",
        "--rank",
        "--record",
        str(record),
        "--label",
        label,
        "--parallelism",
        parallelism,
        *(["--cap-gb", str(cap)] if cap else []),
        *forwarded(args),
    ]
    print(f"[{label}] {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    # The allocator setting the platform's launcher gives a training process.
    env = {"PYTORCH_CUDA_ALLOC_CONF": TRAINING_CUDA_ALLOC_CONF, **os.environ}
    process = subprocess.run(command, env={**env, "PYTHONUNBUFFERED": "1"})
    ranks = [json.loads(p.read_text()) for p in sorted(runs.glob(f"{label}.rank*.json"))]
    run = summarize(label, gpus, parallelism, cap, ranks, args.warmup)
    run.update(returncode=process.returncode, wall_s=time.perf_counter() - started)
    return run


def forwarded(args: argparse.Namespace) -> list[str]:
    names = (
        "dir", "work", "model", "device", "budget", "examples_per_gpu", "min_len", "max_len",
        "median_len", "steps", "warmup", "seed",
    )  # fmt: skip
    return [
        item for name in names for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))
    ]


def summarize(
    label: str,
    gpus: int,
    parallelism: str,
    cap: float | None,
    ranks: list[dict[str, Any]],
    warmup: int,
) -> dict[str, Any]:
    """One configuration's figures. Timed from the end of the last warm-up step (the
    reporter's synchronised wall clock) to the end of the last step."""
    out: dict[str, Any] = {
        "label": label,
        "gpus": gpus,
        "parallelism": parallelism if gpus > 1 else None,
        "cap_gb": cap,
        "statuses": [r.get("status") for r in ranks],
        "errors": [r["error"] for r in ranks if "error" in r],
    }
    for key in ("after_setup_allocated_gb", "peak_allocated_gb", "peak_reserved_gb"):
        values = [r[key] for r in ranks if key in r]
        if values:
            out[key] = max(values)
            out[f"{key}_per_rank"] = values
    main = next((r for r in ranks if r["rank"] == 0), None)
    if main is None:
        return out
    out["setup_s"] = main.get("setup_s")
    steps = main["steps"]
    out["losses"] = [s["train_loss"] for s in steps]
    timed = steps[max(0, warmup - 1) :]
    if len(timed) >= 2:
        tokens = timed[-1]["trained_tokens"] - timed[0]["trained_tokens"]
        seconds = timed[-1]["ended_at"] - timed[0]["ended_at"]
        out["timed_steps"] = len(timed) - 1
        out["timed_tokens"] = tokens
        out["tokens_per_s"] = tokens / seconds
        out["step_s"] = [b["ended_at"] - a["ended_at"] for a, b in itertools.pairwise(timed)]
    return out


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"settings": vars(args), "environment": environment()}
    runs = report["runs"] = []
    one = {} if args.skip_single else launch(args, "gpu1", 1, "ddp", None)
    if one:
        runs.append(one)
    for parallelism in args.parallelisms.split(","):
        runs.append(launch(args, f"{parallelism}{args.gpus}", args.gpus, parallelism, None))
    write(args, report)
    for run in runs:
        if run is not one and one.get("tokens_per_s") and run.get("tokens_per_s"):
            run["scaling_vs_1gpu"] = run["tokens_per_s"] / one["tokens_per_s"]
            run["efficiency"] = run["scaling_vs_1gpu"] / args.gpus
    cap = cap_gb(args.cap_gb, runs)
    if cap:
        for parallelism in args.parallelisms.split(","):
            label = f"{parallelism}{args.gpus}_cap{cap:g}"
            runs.append(launch(args, label, args.gpus, parallelism, cap))
    write(args, report)
    return report


def cap_gb(setting: str | None, runs: list[dict[str, Any]]) -> float | None:
    if not setting:
        return None
    if setting != "auto":
        return float(setting)
    peaks = {r["parallelism"]: r.get("peak_reserved_gb") for r in runs if r["gpus"] > 1}
    if not peaks.get("ddp") or not peaks.get("fsdp"):
        return None
    return round((peaks["ddp"] + peaks["fsdp"]) / 2 * 1e9 / 2**30, 1)


def write(args: argparse.Namespace, report: dict[str, Any]) -> None:
    path = Path(args.out) / f"recipe_parallel{args.tag}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {path}", flush=True)


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for name in ("transformers", "peft", "bitsandbytes", "liger_kernel"):
        try:
            info[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            info[name] = None
    return info


def print_table(report: dict[str, Any]) -> None:
    print(
        "label | tok/s | scaling | efficiency | after setup | peak alloc | peak reserved | status"
    )
    for r in report["runs"]:
        print(
            f"{r['label']} | {r.get('tokens_per_s', 0):,.0f} | {r.get('scaling_vs_1gpu', 0):.2f} | "
            f"{r.get('efficiency', 0):.3f} | {r.get('after_setup_allocated_gb', 0):.2f} | "
            f"{r.get('peak_allocated_gb', 0):.2f} | {r.get('peak_reserved_gb', 0):.2f} | "
            f"{r['statuses']} {r['errors'][:1]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="model directory (recipe_speed save)")
    parser.add_argument("--work", default="/tmp/recipe_parallel")
    parser.add_argument("--out", default="bench/training/results")
    parser.add_argument("--tag", default="")
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--parallelisms", default="ddp,fsdp")
    parser.add_argument("--budget", type=int, default=8192, help="tokens per GPU per step")
    parser.add_argument("--examples-per-gpu", type=int, default=400)
    parser.add_argument("--min-len", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--median-len", type=float, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap-gb", default=None)
    parser.add_argument("--skip-single", action="store_true", help="no one-GPU run")
    # set by the orchestrator for each rank
    parser.add_argument("--rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="run", help=argparse.SUPPRESS)
    parser.add_argument("--parallelism", default="ddp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank:
        args.cap_gb = float(args.cap_gb) if args.cap_gb else None
        rank_main(args)
        return 0
    Path(args.work).mkdir(parents=True, exist_ok=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    report = orchestrate(args)
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
