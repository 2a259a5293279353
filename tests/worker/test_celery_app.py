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
