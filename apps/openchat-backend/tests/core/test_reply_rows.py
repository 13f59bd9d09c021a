"""A reply's row while it generates (app/crud.py): saved partial text never overwrites a reply
that has ended, and only lapsed leases of replies nobody is writing are marked interrupted."""

from datetime import timedelta

from sqlalchemy import select

from app import crud
from app.core.db import make_engine, make_session_factory, run_migrations
from app.models import Message, utcnow


def test_saves_and_sweeps_touch_only_the_replies_they_should(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    sessions = make_session_factory(engine)
    now = utcnow()
    question = [crud.IncomingMessage(role="user", content="Hi")]
    with sessions() as session:
        user = crud.create_user(session, "u@example.com", "hash")
        # Four replies stored with their requests: one ends, one lapses, one lapses but is
        # ours (live), one is another replica's, still leased.
        lapsed = now - timedelta(seconds=1)
        leases = {"ended": now, "lapsed": lapsed, "ours": lapsed, "leased": lapsed}
        for name, lease in leases.items():
            pending = crud.PendingReply(f"reply-{name}", "m", lease)
            crud.sync_conversation(session, user.id, name, question, {}, pending)
        ended = crud.ReplyRecord("ended", "reply-ended", 1, "The whole reply", "complete", "m", "stop")
        crud.store_reply(session, ended)

        # A save that came after the end of one reply, and renews another's lease.
        crud.save_partial_replies(
            session, {"reply-ended": "The", "reply-leased": "so far"}, now + timedelta(seconds=30)
        )
        assert crud.mark_interrupted(session, now, live=["reply-ours"]) == 1

        rows = {m.id: (m.status, m.content) for m in session.scalars(select(Message).where(Message.role == "ai"))}
    assert rows == {
        "reply-ended": ("complete", "The whole reply"),
        "reply-lapsed": ("interrupted", ""),
        "reply-ours": ("generating", ""),
        "reply-leased": ("generating", "so far"),
    }
    engine.dispose()


def test_a_reply_ends_in_its_own_row_beside_its_versions_and_is_skipped_once_deleted(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    sessions = make_session_factory(engine)
    question = [crud.IncomingMessage(role="user", content="Hi")]
    lease = utcnow() + timedelta(seconds=30)
    with sessions() as session:
        user = crud.create_user(session, "u@example.com", "hash")
        # Two versions of one reply generating at once (a regenerate sent before the first ended).
        for name in ("first", "second"):
            crud.sync_conversation(session, user.id, "c", question, {}, crud.PendingReply(name, "m", lease))
        for name in ("second", "first"):  # they end in the other order
            crud.store_reply(session, crud.ReplyRecord("c", name, 1, f"The {name} reply", "complete", "m", "stop"))
        replies = {m.id: (m.status, m.content) for m in session.scalars(select(Message).where(Message.role == "ai"))}
        assert replies == {"first": ("complete", "The first reply"), "second": ("complete", "The second reply")}
        shown, _ = crud.conversation_messages(session, "c")
        assert [m.id for m in shown][1:] == ["second"]  # the newest request's reply

        # A reply that never began is removed: the path shown ends with the question again.
        crud.sync_conversation(session, user.id, "c", question, {}, crud.PendingReply("refused", "m", lease))
        crud.discard_pending_reply(session, "refused")
        shown, _ = crud.conversation_messages(session, "c")
        assert [(m.role, m.content) for m in shown] == [("user", "Hi")]

        # The conversation deleted while a reply generates: its end is not stored, and nothing fails.
        crud.sync_conversation(session, user.id, "c", question, {}, crud.PendingReply("late", "m", lease))
        crud.delete_conversation(session, user.id, "c")
        late = crud.ReplyRecord("c", "late", 1, "Too late", "complete", "m", "stop")
        assert crud.store_reply(session, late) is None
        assert session.scalars(select(Message)).all() == []
    engine.dispose()
