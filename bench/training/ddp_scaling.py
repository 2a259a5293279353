"""QLoRA fast path under DDP: training tokens/s on 1 process vs N (one per GPU), the scaling
efficiency, peak memory per GPU, and whether every rank ends with the same LoRA weights.

The model, LoRA, fast-path setup and data generator are qlora_speed.py's. Each rank trains on
its own stream of examples (rank r's stream is seeded seed + r, so rank 0 sees the same
micro-batches whatever the process count); every rank takes one micro-batch per optimizer
step (`--batch-size` examples, or up to `--token-budget` tokens), so the per-GPU work is the
same at 1 and at N processes and N processes train N times the tokens per step. The LoRA
gradients are all-reduced by DistributedDataParallel (the frozen 4-bit base needs none);
activation checkpointing is the non-reentrant kind, which DDP supports. Every rank's loss is
scaled so that the averaged gradient is that of the mean over all ranks' trainable tokens.

    # driver: one torchrun launch per process count, then the comparison
    python -m bench.training.ddp_scaling --nprocs 1,2
    # CPU smoke test: tiny model, gloo backend, 2 processes
    python -m bench.training.ddp_scaling --model tiny --device cpu --variant fused \\
        --nprocs 1,2 --steps 2 --warmup 1 --max-len 256 --min-len 16 --median-len 64

With `--worker` the module is one rank of a torchrun launch (what the driver starts).
"""

import argparse
import datetime
import gc
import json
import math
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PROCESS_START = time.perf_counter()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from bench.training import qlora_speed  # noqa: E402
from worker.training import fast_path  # noqa: E402
from worker.training.data import TokenizedExample  # noqa: E402
from worker.training.packing import PackedBatch, pack_examples, plan_token_budget_batches  # noqa: E402

# NVLink multicast (NVLS) stays off: set by whoever launches, recorded with the results.
MULTICAST_VARIABLES = (
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS",
)


class PackedLoss(torch.nn.Module):
    """The packed causal-LM loss as a module's forward: DDP hooks the backward through its
    own forward, and the fast path's loss calls the decoder and the head directly."""

    def __init__(self, peft_model: torch.nn.Module) -> None:
        super().__init__()
        self.peft_model = peft_model

    def forward(self, batch: PackedBatch, loss_scale: float) -> torch.Tensor:
        loss, _ = fast_path.packed_causal_lm_loss(self.peft_model, batch)
        return loss * loss_scale


def global_mean_loss_scale(trainable_tokens: int, device: torch.device) -> float:
    """The factor for a rank's mean loss (over its own trainable tokens) that makes DDP's
    average of the ranks' gradients the gradient of the mean over all ranks' trainable
    tokens: world size x this rank's share of them."""
    total = torch.tensor([trainable_tokens], device=device)
    dist.all_reduce(total)
    return dist.get_world_size() * trainable_tokens / max(int(total.item()), 1)


class GcTimer:
    """Time spent in Python's garbage collector, per step (a `gc.callbacks` hook)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1


# --------------------------------------------------------------------------- data


def micro_batches(args: argparse.Namespace, rank: int, vocab: int) -> list[list[TokenizedExample]]:
    """Rank `rank`'s warmup + steps micro-batches, from its own seeded stream."""
    needed = args.warmup + args.steps
    seed = args.seed + rank
    if not args.token_budget:
        examples = qlora_speed.make_examples(
            needed * args.batch_size,
            vocab,
            args.min_len,
            args.max_len,
            args.median_len,
            args.len_sigma,
            seed,
        )
        return [examples[i * args.batch_size : (i + 1) * args.batch_size] for i in range(needed)]
    if args.token_budget < args.max_len:
        raise ValueError("--token-budget must be at least --max-len")
    pool = needed * max(1, math.ceil(args.token_budget / args.min_len))
    examples = qlora_speed.make_examples(
        pool, vocab, args.min_len, args.max_len, args.median_len, args.len_sigma, seed
    )
    plan = plan_token_budget_batches([len(e) for e in examples], args.token_budget)
    if len(plan) <= needed:  # the last batch of a plan may be short: never use it
        raise ValueError("example pool too small for the token budget")
    return [[examples[i] for i in indices] for indices in plan[:needed]]


# --------------------------------------------------------------------------- one rank


def worker(args: argparse.Namespace) -> int:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if args.device == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device = torch.device(args.device)
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    try:
        result = train(args, rank, world, device)
        results: list[Any] = [None] * world
        dist.all_gather_object(results, result)
        if rank == 0:
            Path(args.result).write_text(json.dumps(summarize_run(results), indent=2))
    finally:
        dist.destroy_process_group()
    return 0


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    variant = qlora_speed.LADDER[args.variant]
    if not variant.packed:
        raise ValueError(f"variant {variant.name} is not a packed (fast-path) variant")
    t_build = time.perf_counter()
    model, config = qlora_speed.build_model(args.model, device, args.seed)
    peft_model = qlora_speed.add_lora(model)
    qlora_speed.configure(peft_model, variant, "auto")
    lora = [p for _, p in qlora_speed.trainable(peft_model)]
    n_lora = sum(p.numel() for p in lora)
    ddp = DistributedDataParallel(
        PackedLoss(peft_model),
        device_ids=[device.index] if device.type == "cuda" else None,
        static_graph=args.static_graph,
    )
    optimizer = qlora_speed.make_optimizer(peft_model, variant, device)
    qlora_speed.sync(device)
    model_ready_s = time.perf_counter() - PROCESS_START
    build_s = time.perf_counter() - t_build

    steps = micro_batches(args, rank, config.vocab_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if args.gc_freeze:  # what exists now lives to the end: keep it out of every collection
        gc.collect()
        gc.freeze()
    gc_timer = GcTimer()
    gc.callbacks.append(gc_timer)
    losses: list[float] = []
    step_s: list[float] = []
    gc_s: list[float] = []
    tokens: list[int] = []
    first_step_s = None
    t_timed = time.perf_counter()
    for i, examples in enumerate(steps):
        if i == args.warmup:
            qlora_speed.sync(device)
            dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)
            t_timed = time.perf_counter()
        t0 = time.perf_counter()
        gc_before = gc_timer.seconds
        batch = pack_examples(examples).to(device)
        loss_scale = global_mean_loss_scale(batch.trainable_tokens, device)
        loss = ddp(batch, loss_scale)
        losses.append(loss.item() / loss_scale if loss_scale else 0.0)  # the recipe's sync
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        qlora_speed.sync(device)
        t1 = time.perf_counter()
        if i == 0:
            first_step_s = t1 - t0
        if i >= args.warmup:
            step_s.append(t1 - t0)
            gc_s.append(gc_timer.seconds - gc_before)
            tokens.append(batch.non_pad_tokens)
        if rank == 0:
            print(
                f"  [world {world} rank 0] step {i + 1}/{len(steps)} loss {losses[-1]:.4f} "
                f"{batch.non_pad_tokens} tok {t1 - t0:.3f}s",
                flush=True,
            )
    qlora_speed.sync(device)
    timed_s = time.perf_counter() - t_timed
    gc.callbacks.remove(gc_timer)

    flat = torch.cat([p.detach().float().reshape(-1) for p in lora])
    rank0 = flat.clone()
    dist.broadcast(rank0, 0)
    max_diff = (flat - rank0).abs().max().reshape(1)
    dist.all_reduce(max_diff, op=dist.ReduceOp.MAX)
    timed_lengths = [len(e) for s in steps[args.warmup :] for e in s]
    return {
        "rank": rank,
        "device": str(device),
        "timed_s": timed_s,
        "step_s": step_s,
        "gc_s_per_step": gc_s,
        "gc_collections": gc_timer.collections,
        "gc_frozen_objects": gc.get_freeze_count(),
        "tokens_per_step": tokens,
        "timed_tokens": sum(tokens),
        "model_flops": qlora_speed.step_flops(timed_lengths, config, n_lora)["model"],
        "losses": losses,
        "first_step_s": first_step_s,
        "build_s": build_s,
        "process_start_to_model_ready_s": model_ready_s,
        "peak_allocated_gb": torch.cuda.max_memory_allocated(device) / 1e9
        if device.type == "cuda"
        else None,
        "peak_reserved_gb": torch.cuda.max_memory_reserved(device) / 1e9
        if device.type == "cuda"
        else None,
        "lora_params": n_lora,
        # allocator events during the whole run: cudaMalloc calls, and retries after a
        # failed one (which free the cache and synchronize)
        "allocator": {
            key: torch.cuda.memory_stats(device).get(key)
            for key in ("num_device_alloc", "num_device_free", "num_alloc_retries")
        }
        if device.type == "cuda"
        else None,
        "lora_checksum": float(flat.double().sum()),
        "lora_max_abs_diff_vs_rank0": float(max_diff.item()),
        "environment": qlora_speed.environment(device) if rank == 0 else None,
    }


def summarize_run(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    world = len(ranks)
    timed_s = max(r["timed_s"] for r in ranks)
    tokens = sum(r["timed_tokens"] for r in ranks)
    per_step = list(zip(*(r["tokens_per_step"] for r in ranks), strict=True))
    imbalance = [max(s) / (sum(s) / world) for s in per_step]
    return {
        "world_size": world,
        "timed_s": timed_s,
        "timed_tokens": tokens,
        "tokens_per_s": tokens / timed_s,
        "tokens_per_s_per_gpu": tokens / timed_s / world,
        "model_flops_per_s": sum(r["model_flops"] for r in ranks) / timed_s,
        # the slowest rank sets the pace: max over ranks / mean over ranks of tokens per step
        "mean_token_imbalance": sum(imbalance) / len(imbalance),
        "identical_lora_weights": all(r["lora_max_abs_diff_vs_rank0"] == 0.0 for r in ranks),
        "lora_max_abs_diff_vs_rank0": max(r["lora_max_abs_diff_vs_rank0"] for r in ranks),
        "peak_allocated_gb": [r["peak_allocated_gb"] for r in ranks],
        "peak_reserved_gb": [r["peak_reserved_gb"] for r in ranks],
        "environment": ranks[0]["environment"],
        "ranks": ranks,
    }


# --------------------------------------------------------------------------- driver


def launch(args: argparse.Namespace, worker_argv: list[str], nprocs: int, result: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nprocs}",
        "-m",
        "bench.training.ddp_scaling",
        "--worker",
        "--result",
        str(result),
        *worker_argv,
    ]
    # torchrun sets one OpenMP thread per process only for more than one process: the same
    # for every count, so that 1 and N processes differ in nothing else.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, timeout=args.launch_timeout, env=env)


def drive(args: argparse.Namespace, worker_argv: list[str]) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.nprocs.split(",")]
    report: dict[str, Any] = {
        "args": vars(args),
        "multicast_environment": {name: os.environ.get(name) for name in MULTICAST_VARIABLES},
        "runs": [],
    }
    path = out_dir / f"ddp_scaling_{args.model}{args.tag}.json"
    for n in counts:
        result = out_dir / f"ddp_scaling_{args.model}{args.tag}_world{n}.json"
        result.unlink(missing_ok=True)
        try:
            launch(args, worker_argv, n, result)
            run = json.loads(result.read_text())
            result.unlink()
        except Exception as exc:
            traceback.print_exc()
            run = {"world_size": n, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        report["runs"].append(run)
        path.write_text(json.dumps(report, indent=2))
    rows = compare(report["runs"])
    report["summary"] = rows
    path.write_text(json.dumps(report, indent=2))
    print("\n".join(rows))
    print(f"wrote {path}")
    ok = [r for r in report["runs"] if "error" not in r]
    return 0 if len(ok) == len(counts) and all(r["identical_lora_weights"] for r in ok) else 1


def compare(runs: list[dict[str, Any]]) -> list[str]:
    """Each run against the latest 1-process run before it (`--nprocs 1,2,1,2` gives two
    pairs: the second runs with every kernel already compiled, as in a long job)."""
    one = None
    rows = []
    for r in runs:
        if "error" in r:
            rows.append(f"world {r['world_size']}: failed: {r['error'][:200]}")
            continue
        if r["world_size"] == 1:
            one = r
        if one:
            r["speedup_vs_1"] = r["tokens_per_s"] / one["tokens_per_s"]
            r["efficiency_per_gpu"] = r["speedup_vs_1"] / r["world_size"]
        alloc = "/".join(f"{g:.1f}" for g in r["peak_allocated_gb"] if g is not None) or "-"
        reserved = "/".join(f"{g:.1f}" for g in r["peak_reserved_gb"] if g is not None) or "-"
        rows.append(
            f"world {r['world_size']}: {r['tokens_per_s']:>9.0f} tok/s "
            f"({r['tokens_per_s_per_gpu']:.0f} per GPU)  x{r.get('speedup_vs_1', 0):.2f} vs 1 "
            f"(efficiency {100 * r.get('efficiency_per_gpu', 0):.1f} %)  "
            f"token imbalance {r['mean_token_imbalance']:.3f}  peak alloc {alloc} GB  "
            f"reserved {reserved} GB  identical LoRA weights: {r['identical_lora_weights']} "
            f"(max diff {r['lora_max_abs_diff_vs_rank0']:.1e})"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true", help="run as one torchrun rank")
    parser.add_argument("--result", default="", help="(worker) where rank 0 writes the run")
    parser.add_argument("--nprocs", default="1,2", help="(driver) process counts to compare")
    parser.add_argument("--launch-timeout", type=float, default=1800)
    parser.add_argument("--out", default=os.environ.get("OUT") or "bench/training/results")
    parser.add_argument("--tag", default="")
    parser.add_argument("--model", choices=sorted(qlora_speed.MODELS), default="llama-3.1-8b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variant", default="liger_dropout", choices=sorted(qlora_speed.LADDER))
    parser.add_argument("--static-graph", action="store_true")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after setup, so that collections skip the model's Python objects",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--token-budget",
        type=int,
        default=0,
        help="micro-batches of up to this many tokens instead of --batch-size examples",
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--min-len", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--median-len", type=float, default=512)
    parser.add_argument("--len-sigma", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    driver_only = {"--nprocs", "--launch-timeout", "--out", "--tag"}
    worker_argv = _without(argv, driver_only)
    return drive(args, worker_argv)


def _without(argv: list[str], options: set[str]) -> list[str]:
    """argv without the given options and their values (as `--opt value` or `--opt=value`)."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in options:
            skip = "=" not in item
            continue
        kept.append(item)
    return kept


if __name__ == "__main__":
    sys.exit(main())
