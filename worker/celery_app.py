"""The Celery application of the worker. Start one process per queue:

celery -A worker.celery_app worker -Q cpu --concurrency 1   # dataset work
celery -A worker.celery_app worker -Q gpu --concurrency 1   # training (one job per GPU)
"""

from celery import Celery

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
