"""The training recipe needs neither Postgres nor Redis: override the suite-wide autouse
fixture that resets them, so these tests run (and run alongside other suites) without them."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

MODEL_DIR = Path(__file__).resolve().parents[3] / "var" / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture(scope="session", autouse=True)
def platform_state() -> Iterator[None]:
    yield


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread. With torch's default (one per core), a CPU shared with other
    suites, vLLM or a running job makes the OpenMP threads spin-wait on each other: a 2-core
    box ran these tests 10x slower with 2 threads than with 1."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    if not (MODEL_DIR / "config.json").exists():
        pytest.skip(f"base model not found at {MODEL_DIR} (run `make setup` to fetch it)")
    return MODEL_DIR
