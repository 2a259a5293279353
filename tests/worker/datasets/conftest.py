"""The dataset analyses are pure logic over files: they need neither Postgres nor Redis, so
the suite-wide fixture that resets them is overridden here."""

from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[3] / "var" / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture(scope="session", autouse=True)
def platform_state() -> Iterator[None]:
    yield


@pytest.fixture(scope="session")
def model_dir() -> Path:
    if not (MODEL_DIR / "tokenizer.json").exists():
        pytest.skip(f"base model not found at {MODEL_DIR} (run `make setup` to fetch it)")
    return MODEL_DIR
