"""Side effects that must wait for the database: a task to send, a blob to delete. Each is
deferred with the transaction it belongs to and carried out once the *outermost* transaction
commits; it is dropped when its transaction, or one around it, rolls back.

SQLAlchemy fires `after_commit` for a SAVEPOINT too (`session.begin_nested()`), while the
outer transaction is still open: acting there would send a task for rows no other connection
can see yet (a worker finds nothing and the task is lost), or delete a blob whose rows a later
rollback restores. So `after_commit` is ignored inside a nested transaction, and
`after_soft_rollback` drops only what the rolled-back transaction (or one inside it) deferred.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_HANDLERS: dict[str, Callable[[list[Any]], None]] = {}


def handler(kind: str) -> Callable[[Callable[[list[Any]], None]], Callable[[list[Any]], None]]:
    """Register what carries out the deferred items of `kind`, all at once, after a commit."""

    def register(function: Callable[[list[Any]], None]) -> Callable[[list[Any]], None]:
        _HANDLERS[kind] = function
        return function

    return register


def defer(session: Session, kind: str, item: Any) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(kind, []).append((transaction, item))


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    if transaction is None:  # deferred before the session began: it belongs to the outermost
        return outer.parent is None
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _carry_out(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT was released: the data is not out yet
        return
    for kind, function in _HANDLERS.items():
        items = [item for _, item in session.info.pop(kind, [])]
        if items:
            function(items)


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction: SessionTransaction) -> None:
    for kind in _HANDLERS:
        pending = session.info.get(kind)
        if pending:
            kept = [(t, item) for t, item in pending if not _within(t, previous_transaction)]
            session.info[kind] = kept
