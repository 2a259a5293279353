"""The Celery application of the worker. Start one process per queue:

celery -A worker.celery_app worker -Q cpu --concurrency 1   # dataset work
celery -A worker.celery_app worker -Q gpu --concurrency 1   # training (one job at a time)

A training worker (one consuming `gpu`) also consumes `gpu.2` … `gpu.N` for the N GPUs of its
host (worker/capacity.py), and advertises what it can serve in Redis while it runs
(`loraplex workers` lists them).
"""

from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown

from app.config import get_settings
from app.kit.queue import CPU_QUEUE, GPU_QUEUE, celery_config

celery = Celery(
    "loraplex",
    include=[
        "worker.tasks.datasets",
        "worker.tasks.evals",
        "worker.tasks.jobs",
        "worker.tasks.maintenance",
    ],
)
settings = get_settings()
celery.conf.update(celery_config(settings))
celery.conf.task_routes = {
    "worker.tasks.datasets.*": {"queue": CPU_QUEUE},
    "worker.tasks.jobs.validate_job": {"queue": CPU_QUEUE},
    "worker.tasks.jobs.train_job": {"queue": GPU_QUEUE},
    "worker.tasks.maintenance.*": {"queue": CPU_QUEUE},
    "worker.tasks.evals.run_eval": {"queue": CPU_QUEUE},
    "worker.tasks.evals.export_adapter": {"queue": GPU_QUEUE},
}
# `celery -A worker.celery_app beat` sends these; run exactly one beat per deployment.
celery.conf.beat_schedule = {
    "expire-uploads": {"task": "worker.tasks.maintenance.expire_uploads", "schedule": 300.0},
    "requeue-stale-jobs": {
        "task": "worker.tasks.maintenance.requeue_stale_jobs",
        "schedule": settings.job_reaper_interval,
    },
}
app = celery

_advertiser: Any = None


def _consumed(app: Celery) -> list[str]:
    return sorted(app.amqp.queues.consume_from or {})


@celeryd_after_setup.connect
def consume_what_this_host_can_serve(sender: str, instance: Any, **_: Any) -> None:
    if GPU_QUEUE not in _consumed(instance.app):
        return
    from app.kit.queue import gpu_queues
    from worker.capacity import detected_gpus, gpu_memory_bytes

    memory = gpu_memory_bytes()
    for queue in gpu_queues(detected_gpus(), min(memory) if memory else None):
        if queue != GPU_QUEUE:
            instance.app.amqp.queues.select_add(queue)


@worker_ready.connect
def advertise_capacity(sender: Any, **_: Any) -> None:
    global _advertiser
    queues = _consumed(sender.app)
    if GPU_QUEUE not in queues or not settings.redis_url:
        return
    from worker.capacity import Advertiser, capacity

    _advertiser = Advertiser(settings.redis_url, capacity(sender.hostname, queues))
    _advertiser.start()


@worker_shutdown.connect
def withdraw_capacity(**_: Any) -> None:
    if _advertiser is not None:
        _advertiser.stop()
