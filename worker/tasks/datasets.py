from app.db import session_scope
from app.models import File
from worker.celery_app import celery
from worker.datasets.service import validate_stored_file


@celery.task(name="worker.tasks.datasets.validate_file")
def validate_file(file_id: str) -> None:
    with session_scope() as session:
        file = session.get(File, file_id)
        if file is None:  # deleted before validation ran
            return
        validate_stored_file(session, file)
