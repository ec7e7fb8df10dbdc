"""Ratings of a session's replies: one per message per rater, a second one replaces the
first (`POST /api/v1/feedback`)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.sessions.repository import FeedbackRepository, MessageQueries, SessionRepository
from chatplane.sessions.types import FeedbackResult
from chatplane.sessions.views import session_not_found
from chatplane.storage.db import Database
from chatplane.storage.models import SessionFeedback

RATINGS = ("positive", "negative")
MAX_COMMENT = 4000


async def rate(
    db: Database,
    tenant_id: str,
    rater: str,
    *,
    session_id: str,
    message_id: str,
    rating: str,
    comment: str,
) -> FeedbackResult:
    """One rating per message per rater: a second one replaces the first."""
    if not session_id:
        raise InvalidArgument("Invalid request: sessionId is required", field="sessionId")
    if rating not in RATINGS:
        raise InvalidArgument(
            "Invalid request: rating must be positive or negative", field="rating"
        )
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument(
            f"Invalid request: comment is too long (max {MAX_COMMENT})", field="comment"
        )
    for attempt in range(2):
        try:
            return await _store(
                db,
                tenant_id,
                rater,
                session_id=session_id,
                message_id=message_id,
                rating=rating,
                comment=comment,
            )
        except IntegrityError:  # two first ratings at once: the other one won, replace it
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _store(
    db: Database,
    tenant_id: str,
    rater: str,
    *,
    session_id: str,
    message_id: str,
    rating: str,
    comment: str,
) -> FeedbackResult:
    async with db.uow() as uow:
        row = await SessionRepository(uow, tenant_id).find(session_id)
        if row is None:
            raise session_not_found()
        if (
            message_id
            and await MessageQueries(uow, tenant_id).in_session(row.id, message_id) is None
        ):
            raise NotFound("Message not found", reason="MESSAGE_NOT_FOUND", field="messageId")
        repo = FeedbackRepository(uow, tenant_id)
        existing = await repo.of_rater(row.id, message_id, rater)
        if existing is not None:
            existing.rating = rating
            existing.comment = comment
            existing.updated_at = utcnow()
            uow.add(existing)
            return FeedbackResult(existing.id, replaced=True)
        item = SessionFeedback(
            id=f"fb_{cuid()}",
            tenant_id=tenant_id,
            session_id=row.id,
            message_id=message_id,
            rater=rater,
            rating=rating,
            comment=comment,
        )
        repo.add(item)
        await uow.flush()
        return FeedbackResult(item.id, replaced=False)
