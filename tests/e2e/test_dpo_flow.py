"""Preference tuning through the whole platform, driven by the official openai SDK: the API, both
Celery workers, Postgres, Redis, the training child process and vLLM. A supervised job trains
an adapter; a DPO job starts from it; the DPO adapter is then served."""

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from openai import OpenAI

from app.db import session_scope
from app.kit.storage import get_storage
from app.models import Adapter
from app.stack import Stack
from app.tenants.service import create_tenant
from tests.e2e.conftest import _tail, all_events, wait_for_job

BASE = "SmolLM2-135M-Instruct"
WORDS = "apple river stone cloud tiger piano garden rocket".split()
BETA = 0.2


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def chat(word: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Say the word: {word}"},
            {"role": "assistant", "content": f"{word}."},
        ]
    }


def pair(word: str) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"Say the word: {word}"}]},
        "preferred_output": [{"role": "assistant", "content": f"{word.upper()}!"}],
        "non_preferred_output": [{"role": "assistant", "content": f"{word}."}],
    }


@pytest.fixture(scope="module")
def platform(stack: Stack) -> Stack:
    return stack


@pytest.fixture(scope="module")
def tenant() -> tuple[str, str]:
    with session_scope() as session:
        row, key = create_tenant(session, f"prefs-{secrets.token_hex(3)}")
    return row.name, key


@pytest.fixture(scope="module")
def client(sdk: Callable[[str], OpenAI], tenant: tuple[str, str]) -> OpenAI:
    return sdk(tenant[1])


@pytest.fixture(scope="module")
def sft_job(client: OpenAI, platform: Stack):  # type: ignore[no-untyped-def]
    uploaded = client.files.create(
        file=("chat.jsonl", jsonl([chat(w) for w in WORDS])), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=uploaded.id,
        suffix="sft",
        seed=1,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4, "lora_r": 8}},
        },
    )
    finished = wait_for_job(client, job.id)
    if finished.status != "succeeded":
        print(_tail(platform))
    return finished


@pytest.fixture(scope="module")
def dpo_job(client: OpenAI, platform: Stack, sft_job):  # type: ignore[no-untyped-def]
    assert sft_job.status == "succeeded", sft_job.error
    uploaded = client.files.create(
        file=("pairs.jsonl", jsonl([pair(w) for w in WORDS])), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model=sft_job.fine_tuned_model,
        training_file=uploaded.id,
        suffix="prefs",
        seed=1,
        method={
            "type": "dpo",
            "dpo": {"hyperparameters": {"beta": BETA, "n_epochs": 1, "batch_size": 4}},
        },
    )
    assert job.model == sft_job.fine_tuned_model
    finished = wait_for_job(client, job.id)
    if finished.status != "succeeded":
        print(_tail(platform))
    return finished


def test_dpo_job_on_a_fine_tuned_model_succeeds(dpo_job, sft_job, tenant) -> None:  # type: ignore[no-untyped-def]
    assert dpo_job.status == "succeeded", dpo_job.error
    assert dpo_job.method.type == "dpo"
    assert dpo_job.method.dpo.hyperparameters.beta == BETA
    assert dpo_job.model == sft_job.fine_tuned_model
    # The new adapter is a LoRA on the base model, named like any other.
    assert dpo_job.fine_tuned_model.startswith(f"ft:{BASE}:{tenant[0]}:prefs:")
    assert dpo_job.trained_tokens and dpo_job.result_files


def test_its_adapter_row_and_files_exist(dpo_job, sft_job) -> None:  # type: ignore[no-untyped-def]
    with session_scope() as session:
        adapter = session.query(Adapter).filter_by(name=dpo_job.fine_tuned_model).one()
        parent = session.query(Adapter).filter_by(name=sft_job.fine_tuned_model).one()
    assert adapter.base_model == BASE and adapter.status == "ready"
    assert adapter.job_id == dpo_job.id and adapter.id != parent.id
    manifest = adapter.manifest
    assert manifest["method"] == "dpo" and parent.manifest["method"] == "supervised"
    assert manifest["hyperparameters"]["beta"] == BETA
    assert manifest["hyperparameters"]["reference"] == "initial_adapter"
    assert manifest["init_adapter"] == sft_job.fine_tuned_model
    assert manifest["hyperparameters"]["lora_r"] == 8  # the SFT adapter's shape
    directory = get_storage().path(adapter.storage_key)
    assert (directory / "adapter_model.safetensors").is_file()
    on_disk = json.loads((directory / "adapter_config.json").read_text())
    assert on_disk["base_model_name_or_path"] == BASE


def test_events_report_rewards_every_step(client, dpo_job) -> None:  # type: ignore[no-untyped-def]
    events = all_events(client, dpo_job.id)
    metrics = sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert {
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "rewards/margins",
        } <= set(m)
    messages = [e.message for e in events]
    assert any("reward accuracy=" in message for message in messages)
    assert any("reference: the initial adapter" in message for message in messages)


def test_the_dpo_model_is_served(client, dpo_job) -> None:  # type: ignore[no-untyped-def]
    name = dpo_job.fine_tuned_model
    assert name in [m.id for m in client.models.list()]
    reply = client.chat.completions.create(
        model=name,
        max_tokens=8,
        temperature=0,
        messages=[{"role": "user", "content": "Say the word: apple"}],
    )
    assert reply.model == name
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
