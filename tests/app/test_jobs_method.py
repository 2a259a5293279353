"""`method` on fine-tuning jobs: supervised and dpo as OpenAI shapes them, which files and
models each accepts, and the errors that name the offending parameter."""

import json
import secrets

import pytest
from openai import OpenAI

from app.db import session_scope
from app.kit.ids import new_id
from app.models import Adapter, File, FineTuningJob
from tests.app.test_files import upload
from worker.datasets.service import validate_stored_file

MODEL = "SmolLM2-135M-Instruct"
PAIR = {
    "input": {"messages": [{"role": "user", "content": "Capital of France?"}]},
    "preferred_output": [{"role": "assistant", "content": "Paris."}],
    "non_preferred_output": [{"role": "assistant", "content": "Lyon."}],
}
CHAT = {
    "messages": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}
PARENT_LORA = {"lora_r": 8, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["q_proj"]}


def jsonl(row: dict, n: int = 3) -> bytes:  # type: ignore[type-arg]
    return (json.dumps(row) + "\n").encode() * n


def validated_upload(client, headers, row) -> str:  # type: ignore[no-untyped-def]
    file_id = upload(client, headers, body=jsonl(row)).json()["id"]
    with session_scope() as session:  # what the cpu worker does after the upload
        validate_stored_file(session, session.get(File, file_id))
    return file_id


@pytest.fixture
def owner(make_tenant):  # type: ignore[no-untyped-def]
    tenant_id, key = make_tenant("owner")
    return tenant_id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def headers(owner):  # type: ignore[no-untyped-def]
    return owner[1]


@pytest.fixture
def pairs_file(client, headers) -> str:  # type: ignore[no-untyped-def]
    return validated_upload(client, headers, PAIR)


@pytest.fixture
def chat_file(client, headers) -> str:  # type: ignore[no-untyped-def]
    return validated_upload(client, headers, CHAT)


@pytest.fixture
def parent(owner) -> Adapter:  # type: ignore[no-untyped-def]
    """A ready adapter of the tenant, as a finished supervised job leaves it."""
    tenant_id, _ = owner
    with session_scope() as session:
        adapter = Adapter(
            id=new_id("adapter"),
            tenant_id=tenant_id,
            name=f"ft:{MODEL}:owner:sft:{secrets.token_hex(4)}",
            base_model=MODEL,
            storage_key="adapters/none",
            manifest={"method": "supervised", "hyperparameters": {**PARENT_LORA, "n_epochs": 3}},
        )
        session.add(adapter)
    return adapter


def create(client, headers, **body):  # type: ignore[no-untyped-def]
    return client.post("/v1/fine_tuning/jobs", headers=headers, json=body)


def dpo(**hyperparameters) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return {"type": "dpo", "dpo": {"hyperparameters": hyperparameters}}


def assert_error(response, status: int, param: str, code: str | None = None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


def test_the_openai_sdk_sends_a_dpo_job_unchanged(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    sdk = OpenAI(
        base_url=f"{client.base_url}/v1",
        api_key=headers["Authorization"].removeprefix("Bearer "),
        http_client=client,
        max_retries=0,
    )
    job = sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=pairs_file,
        method={
            "type": "dpo",
            "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 2, "batch_size": 1}},
        },
    )
    assert job.method is not None and job.method.type == "dpo"
    assert job.method.dpo is not None and job.method.dpo.hyperparameters is not None
    hp = job.method.dpo.hyperparameters
    assert (hp.beta, hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (0.2, 2, 1, 1.0)
    assert job.model == MODEL and job.status == "validating_files"
    assert sdk.fine_tuning.jobs.retrieve(job.id).method == job.method


def test_dpo_refuses_packing(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=pairs_file, method=dpo(packing=True))
    assert_error(r, 400, "method.dpo.hyperparameters.packing")
    budget = dpo(max_tokens_per_batch=4096)
    r = create(client, headers, model=MODEL, training_file=pairs_file, method=budget)
    assert_error(r, 400, "method.dpo.hyperparameters.max_tokens_per_batch", "invalid_value")


def test_dpo_auto_hyperparameters_resolve(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    r = create(
        client,
        headers,
        model=MODEL,
        training_file=pairs_file,
        method=dpo(beta="auto", learning_rate_multiplier=2),
    )
    assert r.status_code == 200, r.text
    job = r.json()
    hp = job["method"]["dpo"]["hyperparameters"]
    assert hp["beta"] == 0.1 and hp["n_epochs"] == 3 and hp["batch_size"] == 4
    assert hp["learning_rate"] == pytest.approx(1e-4)
    assert hp["lora_r"] == 16 and hp["lora_alpha"] == 32
    assert hp["packing"] is False  # preference pairs train padded
    assert job["hyperparameters"] == hp
    assert "supervised" not in job["method"]


def test_method_dpo_without_a_dpo_object_uses_defaults(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=pairs_file, method={"type": "dpo"})
    assert r.status_code == 200, r.text
    assert r.json()["method"]["dpo"]["hyperparameters"]["beta"] == 0.1


def test_supervised_method_is_returned(client, headers, chat_file) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=chat_file, hyperparameters={})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["method"]["type"] == "supervised"
    assert job["method"]["supervised"]["hyperparameters"] == job["hyperparameters"]
    assert job["hyperparameters"]["learning_rate"] == pytest.approx(2e-4)


@pytest.mark.parametrize("beta", [0, -0.5])
def test_beta_must_be_positive(client, headers, pairs_file, beta) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=pairs_file, method=dpo(beta=beta))
    error = assert_error(r, 400, "method.dpo.hyperparameters.beta", "invalid_value")
    assert "beta must be a number > 0" in error["message"]


def test_beta_is_not_a_supervised_hyperparameter(client, headers, chat_file) -> None:  # type: ignore[no-untyped-def]
    method = {"type": "supervised", "supervised": {"hyperparameters": {"beta": 0.1}}}
    r = create(client, headers, model=MODEL, training_file=chat_file, method=method)
    assert_error(r, 400, "method.supervised.hyperparameters.beta")


def test_dpo_refuses_a_chat_training_file(client, headers, chat_file) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=chat_file, method=dpo())
    error = assert_error(r, 400, "training_file", "invalid_file_format")
    assert chat_file in error["message"] and "preference rows" in error["message"]


def test_dpo_refuses_a_chat_validation_file(client, headers, pairs_file, chat_file) -> None:  # type: ignore[no-untyped-def]
    r = create(
        client,
        headers,
        model=MODEL,
        training_file=pairs_file,
        validation_file=chat_file,
        method=dpo(),
    )
    assert_error(r, 400, "validation_file", "invalid_file_format")


def test_supervised_refuses_a_preference_file(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=MODEL, training_file=pairs_file)
    error = assert_error(r, 400, "training_file", "invalid_file_format")
    assert "'dpo'" in error["message"]


def test_the_other_methods_object_is_refused(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    method = {**dpo(), "supervised": {"hyperparameters": {}}}
    r = create(client, headers, model=MODEL, training_file=pairs_file, method=method)
    assert_error(r, 400, "method.supervised", "invalid_value")


def test_an_unsupported_method_type_names_the_param(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    method = {"type": "reinforcement", "reinforcement": {}}
    r = create(client, headers, model=MODEL, training_file=pairs_file, method=method)
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("method")


def test_dpo_starts_from_the_tenants_fine_tuned_model(client, headers, pairs_file, parent) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=parent.name, training_file=pairs_file, method=dpo())
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["model"] == parent.name
    hp = job["method"]["dpo"]["hyperparameters"]
    assert {key: hp[key] for key in PARENT_LORA} == PARENT_LORA
    with session_scope() as session:
        row = session.get(FineTuningJob, job["id"])
        assert row is not None
        # The job trains on the adapter's base; its own adapter is named after that base.
        assert (row.model, row.parent_adapter_id) == (MODEL, parent.id)
    listed = client.get("/v1/fine_tuning/jobs", headers=headers).json()["data"]
    assert [j["model"] for j in listed if j["id"] == job["id"]] == [parent.name]


def test_a_fine_tuned_model_keeps_its_lora_shape(client, headers, pairs_file, parent) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=parent.name, training_file=pairs_file, method=dpo(lora_r=32))
    assert_error(r, 400, "method.dpo.hyperparameters.lora_r", "invalid_value")


def test_unknown_fine_tuned_model_is_404(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]
    r = create(
        client, headers, model=f"ft:{MODEL}:x::deadbeef", training_file=pairs_file, method=dpo()
    )
    assert_error(r, 404, "model", "model_not_found")


def test_another_tenants_fine_tuned_model_is_404(client, other_tenant, parent) -> None:  # type: ignore[no-untyped-def]
    their_pairs = validated_upload(client, other_tenant, PAIR)
    r = create(client, other_tenant, model=parent.name, training_file=their_pairs, method=dpo())
    assert_error(r, 404, "model", "model_not_found")


def test_supervised_does_not_start_from_a_fine_tuned_model(
    client, headers, chat_file, parent
) -> None:  # type: ignore[no-untyped-def]
    r = create(client, headers, model=parent.name, training_file=chat_file)
    error = assert_error(r, 400, "model", "model_not_available")
    assert "dpo" in error["message"]


def test_a_file_validated_after_creation_is_checked_against_the_method(client, headers) -> None:  # type: ignore[no-untyped-def]
    from worker.tasks.jobs import validate_job

    file_id = upload(client, headers, body=jsonl(CHAT)).json()["id"]  # no report yet
    job = create(client, headers, model=MODEL, training_file=file_id, method=dpo()).json()
    assert job["status"] == "validating_files"
    validate_job(job["id"])  # the cpu worker's task, run here on the same database
    failed = client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=headers).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "invalid_file_format"
    assert failed["error"]["param"] == "training_file"
