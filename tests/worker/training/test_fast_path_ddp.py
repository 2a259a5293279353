"""The packed loss under DistributedDataParallel (bench/training/ddp_scaling.py's PackedLoss and
loss scaling), on the CPU with two gloo processes: the gradient every rank ends with is the
gradient of the mean loss over both ranks' examples packed into one batch in one process."""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytest import MonkeyPatch

from tests.worker.training.test_packing import random_examples, tiny_llama

WORLD = 2
LENGTHS = ([9, 4, 15, 30], [6])  # very unequal token counts per rank: the scaling matters


def lora_model() -> Any:
    from peft import LoraConfig, get_peft_model

    from worker.training.fast_path import register_varlen_attention, use_varlen_attention

    model = get_peft_model(
        tiny_llama(),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"),
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # zero at init: make the adapter do something
                p.copy_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    register_varlen_attention("sdpa_mask")
    use_varlen_attention(model)
    return model


def rank_examples(rank: int) -> list[Any]:
    return random_examples(LENGTHS[rank], vocab=64, seed=10 + rank)


def lora_grads(model: Any) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.requires_grad])


def ddp_rank(rank: int, store: str, out_dir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from bench.training.ddp_scaling import PackedLoss, global_mean_loss_scale
    from worker.training.distributed import exit_without_teardown
    from worker.training.packing import pack_examples

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        model = lora_model()
        ddp = DistributedDataParallel(PackedLoss(model))
        batch = pack_examples(rank_examples(rank))
        ddp(batch, global_mean_loss_scale(batch.trainable_tokens, torch.device("cpu"))).backward()
        torch.save(lora_grads(model), Path(out_dir) / f"grads{rank}.pt")
    finally:
        dist.destroy_process_group()
    exit_without_teardown()  # freeing `ddp` on return can deadlock gloo (see its docstring)


def mean_loss_grads(examples: list[Any]) -> torch.Tensor:
    from worker.training.fast_path import packed_causal_lm_loss
    from worker.training.packing import pack_examples

    model = lora_model()
    loss, _ = packed_causal_lm_loss(model, pack_examples(examples))
    loss.backward()
    return lora_grads(model)


def test_ddp_gradient_is_the_global_batch_gradient(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(ddp_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    grads = [torch.load(tmp_path / f"grads{rank}.pt") for rank in range(WORLD)]

    reference = mean_loss_grads(rank_examples(0) + rank_examples(1))
    # Unscaled, DDP would average the ranks' own means: a different gradient here.
    unscaled = (mean_loss_grads(rank_examples(0)) + mean_loss_grads(rank_examples(1))) / 2

    assert torch.equal(grads[0], grads[1])  # the all-reduce: one gradient on every rank
    torch.testing.assert_close(grads[0], reference, rtol=1e-9, atol=1e-12)
    assert float((unscaled - reference).norm() / reference.norm()) > 0.05
