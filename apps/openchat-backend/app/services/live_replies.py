"""Replies are stored while they generate, so that a process killed mid-reply loses nothing.

A reply's row is written with the request, empty and `generating`, with a lease (app/crud.py
sync_conversation). Every `reply_save_interval_s`, one write saves the text so far of every
reply this process is generating and renews their leases: off the token path, and holding a
database connection only for that write. A reply's final row replaces it when it ends.

A reply whose lease has lapsed was being written by a process that is gone: each process marks
such replies `interrupted` at start-up, after its migrations, and then at every save. A replica
starting beside others never touches their live replies, whose leases they keep renewing; a
reply of a process killed a moment before its restart is marked once its lease lapses, within
`reply_lease_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

import anyio
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.models import utcnow

log = logging.getLogger(__name__)


class PartialText(Protocol):
    parts: list[str]


class LiveReplies:
    def __init__(self, sessions: sessionmaker[Session], interval_s: float, lease_s: float) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self.lease = timedelta(seconds=lease_s)
        self._replies: dict[str, PartialText] = {}  # message id -> its text so far
        self._failing = False  # the last save failed (logged once, not at every interval)

    def lease_expires_at(self) -> datetime:
        return utcnow() + self.lease

    def add(self, message_id: str, reply: PartialText) -> None:
        self._replies[message_id] = reply

    def remove(self, message_id: str) -> None:
        self._replies.pop(message_id, None)

    def mark_interrupted(self, live: Collection[str] = ()) -> None:
        """Mark interrupted the replies of processes that are gone, never this one's `live` ones
        (blocking: run in a thread)."""
        with self.sessions() as session:
            count = crud.mark_interrupted(session, utcnow(), live)
        if count:
            log.warning("Marked %d replies interrupted: the server writing them stopped mid-reply", count)

    async def run(self) -> None:
        """Save and sweep every interval, until cancelled (at shutdown)."""
        while True:
            await anyio.sleep(self.interval_s)
            await self.save()

    async def save(self) -> None:
        partial = {message_id: "".join(reply.parts) for message_id, reply in self._replies.items()}

        def write() -> None:
            # The lease counts from the write: a thread may start late when the event loop is busy.
            with self.sessions() as session:
                crud.save_partial_replies(session, partial, self.lease_expires_at())
            self.mark_interrupted(partial.keys())

        try:
            await anyio.to_thread.run_sync(write)
        except Exception:  # a database that is down: the replies go on, and are saved once it is back
            if not self._failing:
                log.exception("Could not save the replies being generated; retrying every %g s", self.interval_s)
            self._failing = True
        else:
            self._failing = False
