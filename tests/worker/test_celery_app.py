from app.files.service import VALIDATE_TASK
from app.jobs.service import VALIDATE_JOB_TASK
from worker.celery_app import celery
from worker.tasks.jobs import TRAIN_TASK

# What a worker does at start-up: import every module listed in `include`.
celery.loader.import_default_modules()


def test_every_task_the_api_sends_is_registered():
    for name in (VALIDATE_TASK, VALIDATE_JOB_TASK, TRAIN_TASK):
        assert name in celery.tasks, name


def test_beat_schedule_names_registered_tasks():
    for entry in celery.conf.beat_schedule.values():
        assert entry["task"] in celery.tasks


def test_training_goes_to_the_gpu_queue_and_the_rest_to_cpu():
    routes = celery.conf.task_routes
    assert routes[TRAIN_TASK]["queue"] == "gpu"
    assert routes[VALIDATE_JOB_TASK]["queue"] == "cpu"


def test_a_task_is_acknowledged_only_after_it_ran():
    # A worker killed mid-task leaves its message unacknowledged; the Redis transport hands
    # it back only after the visibility timeout, long enough never to duplicate a training
    # run. Jobs of dead workers come back sooner through the stale-heartbeat sweep.
    assert celery.conf.task_acks_late and celery.conf.task_reject_on_worker_lost
    assert celery.conf.worker_prefetch_multiplier == 1


def test_beat_sweeps_stale_training_jobs_as_often_as_configured():
    from app.config import get_settings

    entry = celery.conf.beat_schedule["requeue-stale-jobs"]
    assert entry["task"] == "worker.tasks.maintenance.requeue_stale_jobs"
    assert entry["schedule"] == get_settings().job_reaper_interval
    assert celery.conf.task_routes["worker.tasks.maintenance.*"]["queue"] == "cpu"


def test_a_worker_outlives_a_broker_restart():
    # Redis restarting must neither end the worker (it reconnects, forever) nor cancel the
    # training task it is running.
    assert celery.conf.broker_connection_retry is True
    assert celery.conf.broker_connection_max_retries is None
    assert celery.conf.worker_cancel_long_running_tasks_on_connection_loss is False
