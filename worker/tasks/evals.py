from celery import Task

from worker.celery_app import celery
from worker.evaluation.decision import finish_report_of
from worker.evaluation.export import run_export
from worker.evaluation.runner import run_eval as run


@celery.task(name="worker.tasks.evals.run_eval", bind=True)
def run_eval(self: Task, run_id: str) -> None:
    # A message the broker redelivers (its worker died mid-run) takes the run over.
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    run(run_id, on_done=finish_report_of, resume=redelivered)


@celery.task(name="worker.tasks.evals.export_adapter")
def export_adapter(export_id: str) -> None:
    run_export(export_id)
