from worker.celery_app import celery
from worker.evaluation.decision import finish_report_of
from worker.evaluation.export import run_export
from worker.evaluation.runner import run_eval as run


@celery.task(name="worker.tasks.evals.run_eval")
def run_eval(run_id: str) -> None:
    run(run_id, on_done=finish_report_of)


@celery.task(name="worker.tasks.evals.export_adapter")
def export_adapter(export_id: str) -> None:
    run_export(export_id)
