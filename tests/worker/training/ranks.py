"""Running a recipe on several gloo processes, as torchrun would start it for n_gpus > 1, and
comparing what they wrote with a single process's results (test_recipe_ddp.py,
test_recipe_fsdp.py, test_dpo_ddp.py).

A rank's entry point takes `(rank, port, *args)`: it calls `join_world`, trains, and ends with
`finish_rank`, which writes its record to `<output_dir>/rank<r>.json` and leaves without the
interpreter's teardown (freeing a DDP model at exit can deadlock gloo:
distributed.exit_without_teardown)."""

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from worker.training.distributed import exit_without_teardown

WORLD = 2
RANKS_TIMEOUT_S = 600
ADAPTER = "adapter_model.safetensors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def join_world(rank: int, port: int, world_size: int = WORLD) -> None:
    """The environment torchrun gives rank `rank`; one intra-op thread per rank."""
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "GLOO_SOCKET_IFNAME": "lo",
        }
    )
    torch.set_num_threads(1)


def finish_rank(output_dir: str | Path, rank: int, record: dict[str, Any]) -> NoReturn:
    Path(output_dir, f"rank{rank}.json").write_text(json.dumps(record))
    exit_without_teardown()


def run_ranks(
    target: Callable[..., None],
    output_dir: str | Path,
    *args: Any,
    world_size: int = WORLD,
) -> list[dict[str, Any]]:
    """`target(rank, port, *args)` on `world_size` processes, to the end; their records. A
    rank that hangs (a collective another rank skipped) fails the test instead of the run."""
    for stale in Path(output_dir).glob("rank*.json"):
        stale.unlink()
    context = mp.spawn(target, args=(free_port(), *args), nprocs=world_size, join=False)
    deadline = time.monotonic() + RANKS_TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {RANKS_TIMEOUT_S} s")
    return [
        json.loads(Path(output_dir, f"rank{rank}.json").read_text()) for rank in range(world_size)
    ]


def assert_rank_zero_alone_wrote(
    values: dict[str, Any], ranks: list[dict[str, Any]], checkpoints: list[int], reported: str
) -> dict[str, Any]:
    """Rank 0 alone reported (events, the `reported` list of step records, checkpoints) and
    wrote the checkpoints and the adapter's manifest; the manifest, for more checks."""
    main, *others = ranks
    assert main["events"] > 0 and main[reported] and main["checkpoints"] == checkpoints
    for other in others:
        assert other["events"] == 0 and other[reported] == [] and other["checkpoints"] == []
        assert other["manifest"] is None
    assert main["manifest"]["hyperparameters"]["n_gpus"] == len(ranks)
    steps = sorted(p.name for p in Path(values["output_dir"], "checkpoints").iterdir())
    assert steps == [f"step-{step}" for step in checkpoints]
    manifest: dict[str, Any] = main["manifest"]
    return manifest


def stop_and_resume(
    run: Callable[..., list[dict[str, Any]]], values: dict[str, Any], stop_after: int
) -> list[dict[str, Any]]:
    """The ranks stopped on request (rank 0's reporter) after `stop_after` steps, then run
    again on the same output directory: each resumes from that step's checkpoint."""
    stopped = run(values, stop_after=stop_after)
    assert [r["status"] for r in stopped] == ["cancelled"] * len(stopped)
    resumed = run(values)
    assert [r["resumed_from_step"] for r in resumed] == [stop_after] * len(resumed)
    return resumed


def adapter(values: dict[str, Any], sub: str = "adapter") -> dict[str, torch.Tensor]:
    """The adapter weights a run wrote under its output directory (`sub`: a checkpoint)."""
    return load_file(Path(values["output_dir"], sub, ADAPTER))


def assert_same_adapter(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal up to float summation order. Compared per tensor by norm: Adam divides by the
    gradient's magnitude, so a gradient element near zero can turn a 1e-9 difference into a
    visible one in that single weight."""
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        error = float((got[name] - tensor).norm() / tensor.norm().clamp_min(1e-12))
        assert error < 1e-3, (name, error)
