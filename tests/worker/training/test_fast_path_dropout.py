"""LoRA dropout in the fused NF4+LoRA layer (worker/training/fast_path.py), on the CPU: each
dropout kernel computes x @ W.T + s * dropout(x) @ A.T @ B.T and its exact gradients for the
mask it drew, the mask keeps 1 - p of the inputs, the layer is unbiased, and activation
checkpointing recomputes with the same masks."""

import logging
from typing import Any

import pytest
import torch

from tests.worker.training.test_packing import quantized_lora_model

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

KERNELS = ("native", "separate")


def lora_layer() -> tuple[Any, torch.Tensor, torch.Tensor]:
    """A quantized weight and its float32 LoRA matrices from the tiny model's up_proj
    (32 -> 64, r=4)."""
    model = quantized_lora_model(dropout=0.0)
    layer = model.base_model.model.model.layers[0].mlp.up_proj
    return (
        layer.get_base_layer().weight,
        layer.lora_A["default"].weight,
        layer.lora_B["default"].weight,
    )


def drawn_mask(kernel: str, x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """The mask the layer draws after torch.manual_seed(seed): the same primitive replayed."""
    x2 = x.detach().reshape(-1, x.shape[-1])
    torch.manual_seed(seed)
    if kernel == "native":
        return torch.native_dropout(x2, p, True)[1].reshape(x.shape)
    return torch.empty_like(x2, dtype=torch.bool).bernoulli_(1 - p).reshape(x.shape)


@pytest.mark.parametrize("kernel", KERNELS)
def test_dropout_output_and_gradients_match_the_reference(kernel: str) -> None:
    import bitsandbytes.functional as bnb_functional

    from worker.training.fast_path import qlora_linear

    weight, a, b = lora_layer()
    x = torch.randn(2, 5, 32, dtype=torch.bfloat16, requires_grad=True)
    p, scaling = 0.3, 2.0

    torch.manual_seed(3)
    out = qlora_linear(x, weight, a, b, scaling, dropout_p=p, dropout_kernel=kernel)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, a, b), grad_out)

    keep = drawn_mask(kernel, x, p, seed=3)
    assert 0 < int(keep.sum()) < keep.numel()  # the mask does something
    dense = bnb_functional.dequantize_4bit(weight.data, weight.quant_state).float()
    xf = x.detach().float().requires_grad_()
    af, bf = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    reference = xf @ dense.t() + scaling * ((xf * keep / (1 - p)) @ af.t()) @ bf.t()
    reference_grads = torch.autograd.grad(reference, (xf, af, bf), grad_out.float())

    assert out.shape == (2, 5, 64)
    assert float((out.detach().float() - reference.detach()).norm() / reference.norm()) < 0.02
    for g, ref in zip(grads, reference_grads, strict=True):
        assert g.dtype == (torch.bfloat16 if ref is reference_grads[0] else torch.float32)
        assert float((g.float() - ref).norm() / ref.norm()) < 0.02


@pytest.mark.parametrize("kernel", KERNELS)
def test_dropout_keeps_one_minus_p_and_draws_a_new_mask_per_call(kernel: str) -> None:
    from worker.training.fast_path import qlora_linear

    weight, a, b = lora_layer()
    x = torch.randn(400, 32, dtype=torch.bfloat16)
    p = 0.25

    keep = drawn_mask(kernel, x, p, seed=5)
    assert abs(float(keep.float().mean()) - (1 - p)) < 0.02  # 12,800 draws: sd 0.004

    torch.manual_seed(5)
    first = qlora_linear(x, weight, a, b, 2.0, dropout_p=p, dropout_kernel=kernel)
    second = qlora_linear(x, weight, a, b, 2.0, dropout_p=p, dropout_kernel=kernel)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("kernel", KERNELS)
def test_dropout_is_unbiased(kernel: str) -> None:
    """Averaged over masks, the layer's output and LoRA gradients are those without dropout
    (what both kernels, and peft's nn.Dropout, estimate)."""
    from worker.training.fast_path import qlora_linear

    weight, a, b = lora_layer()
    # Large B so that the LoRA branch, the only part dropout touches, dominates the output.
    b = (torch.randn(b.shape, generator=torch.Generator().manual_seed(8))).requires_grad_()
    x = torch.randn(6, 32, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    grad_out = torch.randn(6, 64, generator=torch.Generator().manual_seed(10)).to(torch.bfloat16)
    p, draws = 0.5, 1000

    def output_and_grad_a(dropout_p: float) -> tuple[torch.Tensor, torch.Tensor]:
        out = qlora_linear(x, weight, a, b, 2.0, dropout_p=dropout_p, dropout_kernel=kernel)
        (grad_a,) = torch.autograd.grad(out, (a,), grad_out)
        return out.detach().float(), grad_a

    exact_out, exact_grad = output_and_grad_a(0.0)
    torch.manual_seed(11)
    mean_out, mean_grad = torch.zeros_like(exact_out), torch.zeros_like(exact_grad)
    for _ in range(draws):
        out, grad_a = output_and_grad_a(p)
        mean_out += out / draws
        mean_grad += grad_a / draws
    single_out, _ = output_and_grad_a(p)

    # One draw is off by ~50 %; the mean of 1,000 by ~50 % / sqrt(1000) = 1.6 %.
    assert float((single_out - exact_out).norm() / exact_out.norm()) > 0.1
    assert float((mean_out - exact_out).norm() / exact_out.norm()) < 0.05
    assert float((mean_grad - exact_grad).norm() / exact_grad.norm()) < 0.05


def loss_and_lora_grads(model: Any, input_ids: torch.Tensor, seed: int) -> list[torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(seed)
    model(input_ids=input_ids, labels=input_ids).loss.backward()
    return [p.grad.float().clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("kernel", KERNELS)
def test_checkpoint_recompute_reuses_the_forward_masks(kernel: str) -> None:
    """Under non-reentrant activation checkpointing the backward recomputes each layer; if
    its dropout drew other masks than the forward, the gradients would not match the run
    without checkpointing."""
    from worker.training.fast_path import enable_fused_qlora

    model = quantized_lora_model(dropout=0.3)
    model.train()
    assert enable_fused_qlora(model, dropout_kernel=kernel) == 14
    input_ids = torch.randint(1, 64, (2, 11), generator=torch.Generator().manual_seed(2))

    plain = loss_and_lora_grads(model, input_ids, seed=4)
    other_masks = loss_and_lora_grads(model, input_ids, seed=5)
    model.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    checkpointed = loss_and_lora_grads(model, input_ids, seed=4)

    def rel(x: list[torch.Tensor], y: list[torch.Tensor]) -> float:
        diff = torch.cat([(u - v).reshape(-1) for u, v in zip(x, y, strict=True)])
        return float(diff.norm() / torch.cat([v.reshape(-1) for v in y]).norm())

    assert rel(other_masks, plain) > 0.05  # the masks matter
    assert rel(checkpointed, plain) < 1e-3


def test_fused_qlora_refuses_unknown_dropout_kernels_and_p() -> None:
    from worker.training.fast_path import enable_fused_qlora, qlora_linear

    model = quantized_lora_model(dropout=0.1)
    with pytest.raises(ValueError, match="dropout_kernel"):
        enable_fused_qlora(model, dropout_kernel="shared")
    weight, a, b = lora_layer()
    x = torch.randn(3, 32, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="dropout_p"):
        qlora_linear(x, weight, a, b, 2.0, dropout_p=1.0)
