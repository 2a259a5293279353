"""How far bf16 results move through 32 layers when only kernel shapes change (CPU).

qlora_speed.py compares the packed fast path with the padded baseline. To read its parity
figures one needs the noise floor: the baseline against itself computed with other shapes.
Here, on a narrow 32-layer NF4 + LoRA model (hidden 256), the same six sequences are run
(a) as one padded batch, (b) one at a time without padding, (c) packed in one row with a
block-diagonal mask, and (a) is compared with (b) and (c).

    .venv/bin/python -m bench.training.parity_noise_floor        # a few minutes on 2 cores
"""

import json
import sys
from typing import Any

import torch

from bench.training import qlora_speed as bench


def main() -> int:
    bench.MODELS["narrow-32-layer"] = dict(bench.MODELS["tiny"], num_hidden_layers=32)
    device = torch.device("cpu")
    model, config = bench.build_model("narrow-32-layer", device, seed=0)
    peft_model = bench.add_lora(model)
    state = bench.perturbed(bench.snapshot(peft_model), seed=1)
    examples = bench.parity_examples(config.vocab_size, max_len=256, seed=0)

    padded = bench.parity_check(peft_model, bench.LADDER["baseline"], examples, state, device)
    alone = [
        bench.parity_check(peft_model, bench.LADDER["baseline"], [e], state, device)
        for e in examples
    ]
    packed_variant = bench.Variant("packed_sdpa", packed=True, attention="sdpa_mask")
    packed = bench.parity_check(peft_model, packed_variant, examples, state, device)

    # One at a time: the batch's gradient is the trainable-token-weighted mean of theirs.
    weights = [sum(label != bench.IGNORE_INDEX for label in e.labels[1:]) for e in examples]
    grads = sum(a["grads"].double() * w for a, w in zip(alone, weights, strict=True))
    one_at_a_time: dict[str, Any] = {
        "per_example_loss": [a["per_example_loss"][0] for a in alone],
        "hidden": torch.cat([a["hidden"] for a in alone]),
        "grads": grads / sum(weights),
        "loss": sum(a["loss"] * w for a, w in zip(alone, weights, strict=True)) / sum(weights),
    }
    report = {
        "padded_vs_one_at_a_time": _scalars(bench.compare(padded, one_at_a_time)),
        "padded_vs_packed": _scalars(bench.compare(padded, packed)),
    }
    print(json.dumps(report, indent=2))
    return 0


def _scalars(comparison: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comparison.items() if not isinstance(v, list)}


if __name__ == "__main__":
    sys.exit(main())
