"""Upload → fine-tune → serve → chat, through the official openai SDK."""

import hashlib
import json
import time
from pathlib import Path

import openai
import pytest

from app.db import session_scope
from app.kit.storage import get_storage
from app.models import Adapter
from tests.e2e.conftest import all_events, wait_for_job

BASE = "SmolLM2-135M-Instruct"
COLOURS = ["red", "green", "blue", "yellow", "purple"]


def chat_examples(n: int = 20) -> bytes:
    rows = []
    for i in range(n):
        colour = COLOURS[i % len(COLOURS)]
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Answer with a JSON object only."},
                    {"role": "user", "content": f"Item {i} is {colour}. What colour is it?"},
                    {"role": "assistant", "content": json.dumps({"item": i, "colour": colour})},
                ]
            }
        )
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def tenant_a(make_tenant_module):  # type: ignore[no-untyped-def]
    return make_tenant_module("alpha")


@pytest.fixture(scope="module")
def tenant_b(make_tenant_module):  # type: ignore[no-untyped-def]
    return make_tenant_module("beta")


@pytest.fixture(scope="module")
def make_tenant_module():  # type: ignore[no-untyped-def]
    import secrets

    from app.tenants.service import create_tenant

    def _make(prefix: str):  # type: ignore[no-untyped-def]
        with session_scope() as session:
            tenant, key = create_tenant(session, f"{prefix}-{secrets.token_hex(3)}")
        return tenant.name, key

    return _make


@pytest.fixture(scope="module")
def trained(sdk, tenant_a, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One real fine-tune shared by the tests of this module."""
    client = sdk(tenant_a[1])
    data = chat_examples()
    path: Path = tmp_path_factory.mktemp("data") / "colours.jsonl"
    path.write_bytes(data)
    with path.open("rb") as f:
        uploaded = client.files.create(file=f, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=uploaded.id,
        suffix="colours",
        seed=1234,
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 10}
            },
        },
        extra_body={"dedup": True},  # an extension field, sent unchanged by the SDK
    )
    finished = wait_for_job(client, job.id)
    return {
        "client": client,
        "file": uploaded,
        "job": finished,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_job_succeeds_with_an_ft_model_name(trained, tenant_a):
    job = trained["job"]
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model.startswith(f"ft:{BASE}:{tenant_a[0]}:colours:")
    assert job.trained_tokens and job.trained_tokens > 0
    assert job.result_files and job.finished_at


def test_events_show_decreasing_loss(trained):
    events = all_events(trained["client"], trained["job"].id)
    metrics = sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])
    assert len(metrics) >= 6, metrics
    losses = [m["train_loss"] for m in metrics]
    third = len(losses) // 3
    assert sum(losses[-third:]) / third < sum(losses[:third]) / third, losses
    assert all(m["tokens_per_second"] > 0 and m["learning_rate"] >= 0 for m in metrics)


def test_manifest_records_dataset_sha256_and_seed(trained):
    with session_scope() as session:
        adapter = session.query(Adapter).filter_by(name=trained["job"].fine_tuned_model).one()
        on_disk = json.loads(
            (get_storage().path(adapter.storage_key) / "manifest.json").read_text()
        )
    for manifest in (adapter.manifest, on_disk):
        assert manifest["dataset_sha256"] == trained["sha256"]
        assert manifest["data"]["final_dataset_sha256"] == trained["sha256"]
        assert manifest["data"]["dedup"] is True and manifest["data"]["dropped_duplicates"] == 0
        assert manifest["seed"] == 1234
        assert manifest["base_model_id"] == BASE
        assert len(manifest["chat_template_sha256"]) == 64
        assert len(manifest["base_weights_sha256"]) == 64


def test_checkpoints_and_result_file(trained):
    client = trained["client"]
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(trained["job"].id))
    assert checkpoints and checkpoints[0].fine_tuned_model_checkpoint.startswith("ft:")
    csv = client.files.content(trained["job"].result_files[0]).text
    assert csv.splitlines()[0].startswith("step,train_loss")
    assert len(csv.splitlines()) > 2


def test_chat_with_the_fine_tuned_model(trained):
    client, name = trained["client"], trained["job"].fine_tuned_model
    assert name in [m.id for m in client.models.list()]
    reply = client.chat.completions.create(
        model=name,
        max_tokens=24,
        temperature=0,
        messages=[
            {"role": "system", "content": "Answer with a JSON object only."},
            {"role": "user", "content": "Item 3 is blue. What colour is it?"},
        ],
    )
    assert reply.model == name
    text = reply.choices[0].message.content
    assert text and "colour" in text, text
    assert reply.usage.completion_tokens > 0


def test_streaming_chat_with_the_fine_tuned_model(trained):
    client, name = trained["client"], trained["job"].fine_tuned_model
    stream = client.chat.completions.create(
        model=name,
        max_tokens=16,
        stream=True,
        temperature=0,
        messages=[{"role": "user", "content": "Item 1 is red. What colour is it?"}],
    )
    chunks = list(stream)
    assert chunks and all(c.model == name for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_completions_route_serves_the_adapter(trained):
    client, name = trained["client"], trained["job"].fine_tuned_model
    out = client.completions.create(model=name, prompt="Item 2 is", max_tokens=5)
    assert out.model == name and out.choices[0].text is not None


def test_other_tenant_cannot_touch_anything(trained, sdk, tenant_b):
    other = sdk(tenant_b[1])
    job, file_id = trained["job"], trained["file"].id
    assert job.id not in [j.id for j in other.fine_tuning.jobs.list()]
    assert file_id not in [f.id for f in other.files.list()]
    assert job.fine_tuned_model not in [m.id for m in other.models.list()]
    for call in (
        lambda: other.files.retrieve(file_id),
        lambda: other.files.content(file_id),
        lambda: other.files.delete(file_id),
        lambda: other.fine_tuning.jobs.retrieve(job.id),
        lambda: other.fine_tuning.jobs.cancel(job.id),
        lambda: other.fine_tuning.jobs.list_events(job.id),
        lambda: other.models.retrieve(job.fine_tuned_model),
        lambda: other.chat.completions.create(
            model=job.fine_tuned_model, messages=[{"role": "user", "content": "hi"}]
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()


def test_base_model_chat_through_gateway(sdk, tenant_b):
    reply = sdk(tenant_b[1]).chat.completions.create(
        model=BASE, max_tokens=8, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert reply.model == BASE and reply.choices[0].message.content


def test_malformed_line_fails_the_job_naming_the_line(sdk, tenant_b, tmp_path):
    client = sdk(tenant_b[1])
    path = tmp_path / "broken.jsonl"
    path.write_bytes(chat_examples(3) + b'{"messages": [oops]}\n' + chat_examples(1))
    with path.open("rb") as f:
        uploaded = client.files.create(file=f, purpose="fine-tune")
    # The upload's own validation may finish first (then creation is refused at once) or
    # not (then the job's validating_files step fails it); either way the line is named.
    try:
        job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id)
    except openai.BadRequestError as refused:
        error = refused.body
        assert error["code"] == "invalid_training_file" and error["param"] == "training_file"
        assert "line 4" in error["message"]
        return
    failed = wait_for_job(client, job.id, timeout=300)
    assert failed.status == "failed"
    assert failed.error.code == "invalid_training_file"
    assert failed.error.param == "training_file"
    assert "line 4" in failed.error.message


def test_unknown_model_and_bad_key_are_openai_errors(sdk, tenant_b):
    client = sdk(tenant_b[1])
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.create(model="no-such-model", training_file="file-x")
    assert bad.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.AuthenticationError):
        sdk("lpx-wrong").models.list()


def test_cancel_stops_a_running_job_within_a_step(sdk, tenant_b, tmp_path):
    client = sdk(tenant_b[1])
    path = tmp_path / "long.jsonl"
    path.write_bytes(chat_examples(40))
    with path.open("rb") as f:
        uploaded = client.files.create(file=f, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=uploaded.id,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 20, "batch_size": 1}},
        },
    )
    deadline = time.monotonic() + 600
    while not [e for e in all_events(client, job.id) if e.type == "metrics"]:
        assert time.monotonic() < deadline, "training never reported a step"
        assert client.fine_tuning.jobs.retrieve(job.id).status in (
            "validating_files",
            "queued",
            "running",
        )
        time.sleep(0.5)
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    steps_at_cancel = len([e for e in all_events(client, job.id) if e.type == "metrics"])
    assert cancelled.status == "cancelled"
    workdir = get_storage().path(f"jobs/{cancelled.organization_id}/{job.id}")
    deadline = time.monotonic() + 120
    while workdir.exists():  # the launcher removes it once the recipe has stopped
        assert time.monotonic() < deadline, "recipe did not stop after cancel"
        time.sleep(0.5)
    steps_after = len([e for e in all_events(client, job.id) if e.type == "metrics"])
    assert steps_after - steps_at_cancel <= 1
    final = client.fine_tuning.jobs.retrieve(job.id)
    assert final.status == "cancelled" and final.fine_tuned_model is None
    with session_scope() as session:
        assert session.query(Adapter).filter_by(job_id=job.id).count() == 0
