"""Export and import against the database. Kept here rather than in app/crud.py because they read
and write whole conversations in their own transactions (an import: every conversation of a file
in one), driven by the file reader; app/crud.py keeps the per-request queries.

Import checks every conversation of the file before it stores any (nothing is stored if one is
bad), then stores them in one transaction, with new ids, owned by the importing user. Each
stored conversation keeps a digest of its source (`import_key`), so that importing it again is
counted as a duplicate and skipped.
"""

import hashlib
import json
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.models import GENERATING, INTERRUPTED, Conversation, Message, User, new_id
from app.services.titles import make_title
from app.services.transfer import openchat_format, reader
from app.services.transfer.records import TransferConversation

# Rows written per INSERT while importing (messages of several conversations at once).
BATCH_ROWS = 2000
# Conversations read per query while exporting all (one chunk of the response each).
EXPORT_BATCH = 100
INTERRUPTED_ERROR = "The reply was still generating when it was exported."


class ImportConflictError(Exception):
    """The same conversations were imported at the same time by another request."""


class ImportUserGoneError(Exception):
    """The importing user's account no longer exists."""


@dataclass
class ImportOutcome:
    imported: int = 0
    duplicates: int = 0
    conversation_ids: list[str] = field(default_factory=list)


# -- import ------------------------------------------------------------------------------------


def import_key(format_name: str, conversation: TransferConversation) -> str:
    """A digest of where a conversation comes from and what it says: the same conversation in
    the same format gives the same key; one continued since (more messages) gives another."""
    digest = hashlib.sha256()
    digest.update(json.dumps([format_name, conversation.source_id, conversation.title]).encode())
    for message in conversation.messages:
        digest.update(json.dumps([message.id, message.parent_id, message.role, message.content]).encode())
    return digest.hexdigest()


def import_file(sessions: sessionmaker[Session], user_id: str, file: IO[bytes]) -> ImportOutcome:
    """Import every conversation of `file` for `user_id`, or none (reader.ImportFileError names the
    first bad record). Blocking: run it in a thread.

    The file is read once, every record checked and turned into rows, spooled to a temporary
    file; only when all passed are the rows inserted, in one transaction: the database is written
    (and SQLite's single write lock held) only for the inserts, never while a file is parsed."""
    found = reader.detect_format(file)
    outcome = ImportOutcome()
    if found is None:
        return outcome
    with sessions() as session:
        if session.get(User, user_id) is None:
            raise ImportUserGoneError(user_id)
        query = select(Conversation.import_key).where(
            Conversation.user_id == user_id, Conversation.import_key.is_not(None)
        )
        known = set(session.scalars(query))
    with tempfile.TemporaryFile() as spool:
        rows = _Rows(spool)
        for conversation in reader.conversations(file, found):
            key = import_key(found.name, conversation)
            if key in known:
                outcome.duplicates += 1
                continue
            known.add(key)
            outcome.conversation_ids.append(rows.add(user_id, conversation, key))
        rows.flush()
        spool.seek(0)
        with sessions() as session:
            for conversations, messages in _spooled(spool):
                # Core inserts of the tables: one executemany each (the ORM's bulk insert ran a
                # statement per row here, 4 times slower). Conversations first, messages parents first.
                if conversations:
                    session.execute(insert(cast(Table, Conversation.__table__)), conversations)
                if messages:
                    session.execute(insert(cast(Table, Message.__table__)), messages)
            try:
                session.commit()
            except IntegrityError as error:  # the same key stored meanwhile, by a concurrent import
                session.rollback()
                raise ImportConflictError() from error
    outcome.imported = len(outcome.conversation_ids)
    return outcome


Rows = list[dict[str, Any]]


def _spooled(spool: IO[bytes]) -> Iterator[tuple[Rows, Rows]]:
    while True:
        try:
            # Safe: the spool is this process's own temporary file, written by _Rows.flush.
            batch: tuple[Rows, Rows] = pickle.load(spool)
        except EOFError:
            return
        yield batch


class _Rows:
    """Rows to insert, written to the spool in batches of about BATCH_ROWS messages."""

    def __init__(self, spool: IO[bytes]) -> None:
        self.spool = spool
        self.conversations: Rows = []
        self.messages: Rows = []

    def add(self, user_id: str, conversation: TransferConversation, key: str) -> str:
        conversation_id = new_id()
        new_ids = {message.id: new_id() for message in conversation.messages}
        first_user = next((m.content for m in conversation.messages if m.role == "user"), None)
        self.conversations.append(
            {
                "id": conversation_id,
                "user_id": user_id,
                "title": conversation.title or (make_title(first_user) if first_user else None),
                "settings": conversation.settings,
                "created_at": conversation.created_at,
                "updated_at": conversation.updated_at,
                "active_leaf_id": new_ids.get(conversation.active_leaf_id or ""),
                "import_key": key,
            }
        )
        for message in conversation.messages:
            generating = message.status == GENERATING  # nothing generates it here: it stopped
            self.messages.append(
                {
                    "id": new_ids[message.id],
                    "conversation_id": conversation_id,
                    "parent_id": new_ids[message.parent_id] if message.parent_id is not None else None,
                    "position": message.depth,
                    "role": message.role,
                    "content": message.content,
                    "status": INTERRUPTED if generating else message.status,
                    "model": message.model,
                    "finish_reason": message.finish_reason,
                    "error": INTERRUPTED_ERROR if generating and message.error is None else message.error,
                    "prompt_tokens": message.prompt_tokens,
                    "completion_tokens": message.completion_tokens,
                    "ttft_ms": message.ttft_ms,
                    "tokens_per_second": message.tokens_per_second,
                    "omitted_messages": message.omitted_messages,
                    "lease_expires_at": None,
                    "created_at": message.created_at,
                }
            )
        if len(self.messages) >= BATCH_ROWS:
            self.flush()
        return conversation_id

    def flush(self) -> None:
        if self.conversations or self.messages:
            pickle.dump((self.conversations, self.messages), self.spool, protocol=pickle.HIGHEST_PROTOCOL)
        self.conversations, self.messages = [], []


# -- export ------------------------------------------------------------------------------------


class ExportNotFoundError(Exception):
    pass


def conversation_with_messages(
    session: Session, user_id: str, conversation_id: str
) -> tuple[Conversation, list[Message]]:
    """The user's conversation and all its messages, parents first (position is the depth),
    each message's versions oldest first. ExportNotFoundError when it is not the user's."""
    conversation = session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user_id)
    )
    if conversation is None:
        raise ExportNotFoundError(conversation_id)
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.position, Message.created_at, Message.id)
        )
    )
    return conversation, messages


def user_conversation_ids(session: Session, user_id: str) -> list[str]:
    """The user's conversations, newest first (as listed)."""
    query = (
        select(Conversation.id)
        .where(Conversation.user_id == user_id)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
    )
    return list(session.scalars(query))


def _conversation_json(conversation: Conversation, messages: list[Message]) -> str:
    return json.dumps(openchat_format.conversation_to_dict(conversation, messages), ensure_ascii=False)


def export_one_json(conversation: Conversation, messages: list[Message], exported_at: datetime) -> str:
    """One conversation in OpenChat's export format (the same envelope as a whole export)."""
    return (
        openchat_format.envelope_head(exported_at)
        + _conversation_json(conversation, messages)
        + openchat_format.ENVELOPE_TAIL
    )


def export_all_chunks(sessions: sessionmaker[Session], user_id: str, exported_at: datetime) -> Iterator[str]:
    """All the user's conversations in OpenChat's export format, as text chunks of EXPORT_BATCH
    conversations, each batch read in its own short session: the export is sent as it is written
    and never held whole in memory. Blocking: iterate it in a thread."""
    with sessions() as session:
        ids = user_conversation_ids(session, user_id)
    yield openchat_format.envelope_head(exported_at)
    separator = ""
    for start in range(0, len(ids), EXPORT_BATCH):
        batch = ids[start : start + EXPORT_BATCH]
        with sessions() as session:
            conversations = {
                c.id: c
                for c in session.scalars(
                    select(Conversation).where(Conversation.user_id == user_id, Conversation.id.in_(batch))
                )
            }
            messages: dict[str, list[Message]] = {conversation_id: [] for conversation_id in conversations}
            query = (
                select(Message)
                .where(Message.conversation_id.in_(list(conversations)))
                .order_by(Message.conversation_id, Message.position, Message.created_at, Message.id)
            )
            for message in session.scalars(query):
                messages[message.conversation_id].append(message)
        parts = []
        for conversation_id in batch:
            if conversation_id in conversations:  # else deleted since the list was read
                parts.append(separator + _conversation_json(conversations[conversation_id], messages[conversation_id]))
                separator = ",\n"
        yield "".join(parts)
    yield openchat_format.ENVELOPE_TAIL
