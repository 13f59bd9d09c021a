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
