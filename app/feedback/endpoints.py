from fastapi import APIRouter

from app.auth.dependencies import CurrentTenant, SessionDep
from app.feedback import service
from app.feedback.schemas import FeedbackCreate, FeedbackPublic
from app.usage.endpoints import Flushed

router = APIRouter(tags=["feedback"])


@router.post("/v1/feedback", response_model=FeedbackPublic)
def create_feedback(
    _: Flushed,  # the completion may still be in this process' pending batch
    tenant: CurrentTenant,
    session: SessionDep,
    body: FeedbackCreate,
) -> FeedbackPublic:
    return service.rate(session, tenant, body)
