"""The whole platform, for real: Postgres, Redis, the vLLM CPU server, both Celery workers and
the API, started by the same code as `loraplex up`."""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from openai import OpenAI

from app.config import Settings
from app.stack import Stack
from tests.conftest import LIVE_STACKS, empty_task_queues

TERMINAL = {"succeeded", "failed", "cancelled"}


def _tail(stack: Stack) -> str:
    out = []
    for log in sorted(stack.log_dir.glob("*.log")):
        out.append(
            f"==> {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        )
    return "\n".join(out)


@contextmanager
def running_stack(overrides: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start every process of `loraplex up` with these settings; stop them all afterwards."""
    env = {**os.environ, **(overrides or {})}
    s = Stack(Settings(**(overrides or {})), env=env)  # type: ignore[arg-type]
    empty_task_queues(s.settings.redis_url)
    try:
        s.start_vllm()
        s.start_workers()
        s.start_api()
        s.wait_ready(vllm_timeout=900)
    except BaseException:
        # BaseException: Ctrl-C during the long start must not leave the stack running.
        print(_tail(s))
        s.stop()
        raise
    LIVE_STACKS.append(s)
    try:
        yield s
    finally:
        LIVE_STACKS.remove(s)
        s.stop()


# Package scope: the stack stops when the e2e tests are done, before tests/worker starts
# workers of its own on the same queues and database.
@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    with running_stack() as s:
        yield s


@pytest.fixture(scope="package")
def sdk(stack: Stack) -> Callable[[str], OpenAI]:
    def _client(api_key: str) -> OpenAI:
        return OpenAI(base_url=stack.api_url + "/v1", api_key=api_key, max_retries=0, timeout=300)

    return _client


def wait_for_job(client: OpenAI, job_id: str, timeout: float = 900, until=TERMINAL):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in until:
            return job
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still {job.status} after {timeout}s")


def all_events(client: OpenAI, job_id: str) -> list:  # type: ignore[type-arg]
    return list(client.fine_tuning.jobs.list_events(job_id, limit=100))
