import pytest

from tests.app.test_files import upload

MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture
def training_file(client, tenant):
    return upload(client, tenant).json()["id"]


def create(client, headers, **body):
    return client.post("/v1/fine_tuning/jobs", headers=headers, json=body)


def test_create_resolves_hyperparameters_and_names_nothing_yet(client, tenant, training_file):
    r = create(
        client,
        tenant,
        model=MODEL,
        training_file=training_file,
        suffix="bot",
        seed=7,
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 2, "learning_rate_multiplier": 2.0, "lora_r": 8}
            },
        },
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["object"] == "fine_tuning.job" and job["status"] == "validating_files"
    assert job["seed"] == 7 and job["fine_tuned_model"] is None
    hp = job["hyperparameters"]
    assert (hp["n_epochs"], hp["batch_size"], hp["lora_r"], hp["lora_alpha"]) == (2, 4, 8, 16)
    assert hp["learning_rate"] == pytest.approx(4e-4)
    assert job["method"]["type"] == "supervised"


def test_legacy_top_level_hyperparameters(client, tenant, training_file):
    r = create(
        client,
        tenant,
        model=MODEL,
        training_file=training_file,
        hyperparameters={"n_epochs": 1, "batch_size": 2},
    )
    assert r.status_code == 200
    assert r.json()["hyperparameters"]["batch_size"] == 2


def test_both_hyperparameter_places_is_an_error(client, tenant, training_file):
    r = create(
        client,
        tenant,
        model=MODEL,
        training_file=training_file,
        hyperparameters={"n_epochs": 1},
        method={"type": "supervised", "supervised": {"hyperparameters": {}}},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "hyperparameters"


@pytest.mark.parametrize(
    "hp,param",
    [
        ({"n_epochs": 0}, "hyperparameters.n_epochs"),
        ({"lora_r": 128}, "hyperparameters.lora_r"),
        ({"quantization": "int3"}, "hyperparameters.quantization"),
        ({"bogus": 1}, "hyperparameters.bogus"),
        ({"packing": "sometimes"}, "hyperparameters.packing"),
        ({"packing": False, "max_tokens_per_batch": 4096}, "hyperparameters.max_tokens_per_batch"),
        ({"max_tokens_per_batch": 512}, "hyperparameters.max_tokens_per_batch"),  # < 1024
    ],
)
def test_invalid_hyperparameters_name_the_param(client, tenant, training_file, hp, param):
    r = create(client, tenant, model=MODEL, training_file=training_file, hyperparameters=hp)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_unknown_model_is_an_openai_error(client, tenant, training_file):
    r = create(client, tenant, model="gpt-9", training_file=training_file)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": r.json()["error"]["message"],
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_available",
    }


def test_other_tenants_file_is_404(client, tenant, other_tenant, training_file):
    r = create(client, other_tenant, model=MODEL, training_file=training_file)
    assert r.status_code == 404 and r.json()["error"]["param"] == "training_file"


def test_cancel_queued_job_then_cancel_again(client, tenant, training_file):
    job = create(client, tenant, model=MODEL, training_file=training_file).json()
    r = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=tenant)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=tenant)
    assert again.status_code == 400 and again.json()["error"]["code"] == "job_not_cancellable"
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=tenant).json()
    assert "Job cancelled by user." in [e["message"] for e in events["data"]]


def test_file_in_use_by_active_job_cannot_be_deleted(client, tenant, training_file):
    job = create(client, tenant, model=MODEL, training_file=training_file).json()
    r = client.delete(f"/v1/files/{training_file}", headers=tenant)
    assert r.status_code == 409 and r.json()["error"]["code"] == "file_in_use"
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=tenant)
    assert client.delete(f"/v1/files/{training_file}", headers=tenant).status_code == 200


def test_list_jobs_paginates(client, tenant, training_file):
    ids = [
        create(client, tenant, model=MODEL, training_file=training_file).json()["id"]
        for _ in range(3)
    ]
    page = client.get("/v1/fine_tuning/jobs?limit=2", headers=tenant).json()
    assert [j["id"] for j in page["data"]] == ids[::-1][:2] and page["has_more"]


def test_other_tenant_gets_404_for_every_job_route(client, tenant, other_tenant, training_file):
    jid = create(client, tenant, model=MODEL, training_file=training_file).json()["id"]
    for method, path in [
        ("GET", f"/v1/fine_tuning/jobs/{jid}"),
        ("POST", f"/v1/fine_tuning/jobs/{jid}/cancel"),
        ("GET", f"/v1/fine_tuning/jobs/{jid}/events"),
        ("GET", f"/v1/fine_tuning/jobs/{jid}/checkpoints"),
    ]:
        r = client.request(method, path, headers=other_tenant)
        assert r.status_code == 404, (method, path)
    assert client.get("/v1/fine_tuning/jobs", headers=other_tenant).json()["data"] == []
    assert client.get(f"/v1/fine_tuning/jobs/{jid}", headers=tenant).json()["status"] != "cancelled"


def test_file_already_known_bad_is_refused_naming_the_line(client, tenant):
    from app.db import session_scope
    from app.models import File
    from worker.datasets.service import validate_stored_file

    body = b'{"messages": [{"role": "user", "content": "q"}, '
    body += b'{"role": "assistant", "content": "a"}]}\n'
    body += b"{oops\n"
    fid = upload(client, tenant, body=body).json()["id"]
    with session_scope() as session:  # what the cpu worker does after the upload
        validate_stored_file(session, session.get(File, fid))
    r = create(client, tenant, model=MODEL, training_file=fid)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_training_file" and err["param"] == "training_file"
    assert "line 2" in err["message"]


def test_checkpoint_and_early_stopping_hyperparameters_ride_along(client, tenant, training_file):
    validation = upload(client, tenant, name="valid.jsonl").json()["id"]
    hp = {"checkpoint_every_steps": 10, "eval_every_steps": 5, "early_stopping_patience": 3}
    r = create(
        client,
        tenant,
        model=MODEL,
        training_file=training_file,
        validation_file=validation,
        hyperparameters=hp | {"early_stopping_min_delta": 0.01},
    )
    assert r.status_code == 200, r.text
    resolved = r.json()["hyperparameters"]
    assert {k: resolved[k] for k in hp} == hp and resolved["early_stopping_min_delta"] == 0.01


def test_packing_is_on_by_default_and_takes_a_token_budget(client, tenant, training_file):
    resolved = create(client, tenant, model=MODEL, training_file=training_file).json()[
        "hyperparameters"
    ]
    assert resolved["packing"] is True and resolved["max_tokens_per_batch"] is None
    hp = {"packing": True, "max_tokens_per_batch": 8192, "max_seq_length": 2048}
    r = create(client, tenant, model=MODEL, training_file=training_file, hyperparameters=hp)
    assert r.status_code == 200, r.text
    assert {k: r.json()["hyperparameters"][k] for k in hp} == hp
    off = create(
        client, tenant, model=MODEL, training_file=training_file, hyperparameters={"packing": False}
    )
    assert off.json()["hyperparameters"]["packing"] is False


def test_defaults_checkpoint_regularly_and_never_stop_early(client, tenant, training_file):
    resolved = create(client, tenant, model=MODEL, training_file=training_file).json()[
        "hyperparameters"
    ]
    assert resolved["checkpoint_every_steps"] == 50
    assert resolved["early_stopping_patience"] is None and resolved["eval_every_steps"] is None


@pytest.mark.parametrize("name", ["early_stopping_patience", "eval_every_steps"])
def test_validation_knobs_without_a_validation_file_are_refused(
    client, tenant, training_file, name
):
    r = create(client, tenant, model=MODEL, training_file=training_file, hyperparameters={name: 2})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == f"hyperparameters.{name}"
    assert error["code"] == "validation_file_required"


@pytest.mark.parametrize(
    "hp", [{"checkpoint_every_steps": 0}, {"early_stopping_patience": 0}, {"eval_every_steps": -1}]
)
def test_out_of_range_training_knobs_name_the_param(client, tenant, training_file, hp):
    r = create(client, tenant, model=MODEL, training_file=training_file, hyperparameters=hp)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == f"hyperparameters.{next(iter(hp))}"


def store_checkpoint(job_id: str, step: int, files: bool = True) -> str:
    """What the training worker leaves: the adapter files in storage and the row."""
    from app.db import session_scope
    from app.jobs.service import planned_model_name
    from app.kit.ids import new_id
    from app.kit.storage import get_storage
    from app.models import FineTuningJob, JobCheckpoint, Tenant

    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        tenant = session.get(Tenant, job.tenant_id)
        key = f"jobs/{job.tenant_id}/{job.id}/checkpoints/step-{step}"
        if files:
            directory = get_storage().path(key)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "adapter_config.json").write_text('{"r": 8}')
            (directory / "adapter_model.safetensors").write_bytes(b"weights")
        name = f"{planned_model_name(job, tenant)}:ckpt-step-{step}"
        session.add(
            JobCheckpoint(
                id=new_id("ftckpt"),
                job_id=job.id,
                tenant_id=job.tenant_id,
                step_number=step,
                metrics={"step": step, "train_loss": 1.5, "valid_loss": 1.7},
                storage_key=key,
                fine_tuned_model_checkpoint=name,
            )
        )
    return name


def test_checkpoints_are_listed_as_openai_objects(client, tenant, training_file):
    job = create(client, tenant, model=MODEL, training_file=training_file, suffix="ck").json()
    name = store_checkpoint(job["id"], 10)
    page = client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints", headers=tenant).json()
    (checkpoint,) = page["data"]
    assert checkpoint["object"] == "fine_tuning.job.checkpoint"
    assert checkpoint["fine_tuning_job_id"] == job["id"] and checkpoint["step_number"] == 10
    assert checkpoint["metrics"]["train_loss"] == 1.5 and checkpoint["metrics"]["valid_loss"] == 1.7
    assert checkpoint["fine_tuned_model_checkpoint"] == name
    assert name.startswith(f"ft:{MODEL}:") and name.endswith(
        ":ck:" + job["id"][-8:] + ":ckpt-step-10"
    )


def test_a_checkpoint_name_resolves_to_its_stored_adapter(client, tenant, training_file):
    from app.db import session_scope
    from app.inference.service import resolve
    from app.kit.storage import get_storage
    from app.models import JobCheckpoint, Tenant

    job = create(client, tenant, model=MODEL, training_file=training_file).json()
    name = store_checkpoint(job["id"], 20)
    with session_scope() as session:
        target = resolve(session, session.get(Tenant, job["organization_id"]), {"model": name})
        row = session.query(JobCheckpoint).filter_by(fine_tuned_model_checkpoint=name).one()
        assert target.kind == "checkpoint" and target.served_name == row.id
        assert target.base_model == MODEL and target.public_name == name
        assert target.adapter_path == str(get_storage().path(row.storage_key))
    stored = get_storage().path(row.storage_key)
    assert (stored / "adapter_model.safetensors").read_bytes() == b"weights"


def test_a_checkpoint_name_is_invisible_to_other_tenants(
    client, tenant, other_tenant, training_file
):
    from app.db import session_scope
    from app.errors import NotFound
    from app.inference.service import resolve
    from app.models import Tenant

    job = create(client, tenant, model=MODEL, training_file=training_file).json()
    name = store_checkpoint(job["id"], 30)
    stranger = client.get("/v1/fine_tuning/jobs", headers=other_tenant)
    assert stranger.status_code == 200
    with session_scope() as session:
        other = session.query(Tenant).filter(Tenant.id != job["organization_id"]).first()
        with pytest.raises(NotFound):
            resolve(session, other, {"model": name})


def test_a_pruned_checkpoint_answers_a_clear_409(client, tenant, training_file):
    job = create(client, tenant, model=MODEL, training_file=training_file).json()
    name = store_checkpoint(job["id"], 40, files=False)
    r = client.post(
        "/v1/chat/completions",
        headers=tenant,
        json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "checkpoint_unavailable"
