"""Each test module and e2e stack starts with empty task queues: tasks other tests enqueued
(and nothing consumed) are dropped; kombu's exchange bindings are kept for running stacks."""

import os

import redis

from app.kit.queue import producer
from tests.conftest import empty_task_queues


def test_starting_a_stack_empties_the_queues_but_keeps_the_bindings():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    producer().send_task("worker.tasks.jobs.train_job", ["ftjob-left-behind"], queue="gpu")
    producer().send_task("worker.tasks.jobs.validate_job", ["ftjob-left-behind"], queue="cpu")
    assert client.llen("gpu") >= 1 and client.llen("cpu") >= 1
    bindings = sorted(client.scan_iter("_kombu.binding.*"))
    assert bindings

    empty_task_queues(os.environ["REDIS_URL"])

    assert client.llen("gpu") == 0 and client.llen("cpu") == 0
    assert sorted(client.scan_iter("_kombu.binding.*")) == bindings
