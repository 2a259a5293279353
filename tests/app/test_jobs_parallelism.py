"""`parallelism` on fine-tuning jobs: "ddp" by default, "fsdp" for a job on several GPUs,
refused where it cannot apply, and passed to the recipe's config."""

from app.models import FineTuningJob
from tests.app.test_jobs import MODEL, training_file  # noqa: F401  (fixture)
from tests.app.test_jobs_method import (  # noqa: F401  (fixtures)
    assert_error,
    create,
    dpo,
    headers,
    owner,
    pairs_file,
)


def supervised(**hyperparameters):  # type: ignore[no-untyped-def]
    return {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}


def test_a_job_is_data_parallel_by_default(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    r = create(client, tenant, model=MODEL, training_file=training_file)
    assert r.status_code == 200, r.text
    assert r.json()["method"]["supervised"]["hyperparameters"]["parallelism"] == "ddp"


def test_a_sharded_job_on_two_gpus_is_accepted(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    from app.db import session_scope

    method = supervised(n_gpus=2, parallelism="fsdp")
    r = create(client, tenant, model=MODEL, training_file=training_file, method=method)
    assert r.status_code == 200, r.text
    hyperparameters = r.json()["method"]["supervised"]["hyperparameters"]
    assert hyperparameters["parallelism"] == "fsdp" and hyperparameters["n_gpus"] == 2
    with session_scope() as session:
        job = session.get(FineTuningJob, r.json()["id"])
        assert job is not None
        assert job.method["supervised"]["hyperparameters"]["parallelism"] == "fsdp"


def test_sharding_needs_several_gpus(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    method = supervised(parallelism="fsdp")
    r = create(client, tenant, model=MODEL, training_file=training_file, method=method)
    error = assert_error(r, 400, "method.supervised.hyperparameters.parallelism", "invalid_value")
    assert "n_gpus must be at least 2" in error["message"]


def test_an_unknown_parallelism_names_the_param(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    method = supervised(n_gpus=2, parallelism="tensor")
    r = create(client, tenant, model=MODEL, training_file=training_file, method=method)
    assert_error(r, 400, "method.supervised.hyperparameters.parallelism")


def test_preference_tuning_is_not_sharded(client, headers, pairs_file):  # type: ignore[no-untyped-def]  # noqa: F811
    r = create(
        client,
        headers,
        model=MODEL,
        training_file=pairs_file,
        method=dpo(n_gpus=2, parallelism="fsdp"),
    )
    assert_error(r, 400, "method.dpo.hyperparameters.parallelism", "invalid_value")
