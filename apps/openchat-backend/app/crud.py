"""Data access: all database queries live here (routes and services call these functions).

Every query that touches conversations checks the owner."""

import base64
import binascii
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, exists, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import GENERATING, INTERRUPTED, Conversation, Message, RefreshToken, User, new_id, utcnow
from app.services.titles import make_title

LOCAL_USER_EMAIL = "local@openchat.invalid"


class UnknownUserError(Exception):
    """The account a request acts for no longer exists."""


class NotFoundError(Exception):
    pass


@dataclass(frozen=True)
class IncomingMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ReplyRecord:
    """A model's reply as it is stored: what it said, how it ended, and its numbers."""

    conversation_id: str
    message_id: str
    position: int
    content: str
    status: str  # complete | cancelled | error (see Message.status)
    model: str
    finish_reason: str | None  # stop | length | cancelled; None when it failed
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    omitted_messages: int | None = None  # earlier messages left out of its prompt


# -- users and auth ------------------------------------------------------------------------


class EmailTakenError(Exception):
    pass


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def create_user(session: Session, email: str, hashed_password: str) -> User:
    """Raises EmailTakenError when an account with this email exists."""
    user = User(email=email, hashed_password=hashed_password)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise EmailTakenError(email) from error
    return user


def has_accounts(session: Session) -> bool:
    """Whether anyone has signed up (the local user of OPENCHAT_AUTH=off has no password)."""
    return bool(session.scalar(select(exists().where(User.hashed_password.is_not(None)))))


def get_or_create_local_user(session: Session) -> User:
    """The single owner of all data when OPENCHAT_AUTH=off."""
    user = get_user_by_email(session, LOCAL_USER_EMAIL)
    if user is None:
        user = User(email=LOCAL_USER_EMAIL, hashed_password=None)
        session.add(user)
        try:
            session.commit()
        except IntegrityError:  # created concurrently by another request
            session.rollback()
            user = session.scalars(select(User).where(User.email == LOCAL_USER_EMAIL)).one()
    return user


def get_refresh_token(session: Session, token_hash: str) -> RefreshToken | None:
    return session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


def start_refresh_family(session: Session, user_id: str, token_hash: str, expires_at: datetime) -> str:
    """A login: the first refresh token of a new family (reuse of any of its tokens ends the
    whole login). Returns the family's id."""
    family_id = new_id()
    session.add(RefreshToken(user_id=user_id, family_id=family_id, token_hash=token_hash, expires_at=expires_at))
    session.commit()
    return family_id


def rotate_refresh_token(session: Session, token: RefreshToken, successor_hash: str, expires_at: datetime) -> bool:
    """Mark `token` used and store its successor, in one transaction. Only one of several
    concurrent requests wins: the update is conditional, and the database serialises it (a row
    lock in PostgreSQL, the write lock in SQLite). Returns whether this request won."""
    marked = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=utcnow())
    )
    if cast(CursorResult[Any], marked).rowcount != 1:
        session.rollback()
        return False
    session.add(
        RefreshToken(user_id=token.user_id, family_id=token.family_id, token_hash=successor_hash, expires_at=expires_at)
    )
    session.commit()
    return True


def revoke_refresh_family(session: Session, family_id: str) -> None:
    """End a login: every refresh token of its family stops working (logout, or reuse detected)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()


# -- conversations --------------------------------------------------------------------------


def get_conversation(session: Session, user_id: str, conversation_id: str) -> Conversation:
    query = select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user_id)
    conversation = session.scalar(query)
    if conversation is None:
        raise NotFoundError(conversation_id)
    return conversation


def conversation_messages(
    session: Session, conversation_id: str, *, before: int | None = None, limit: int | None = None
) -> tuple[list[Message], bool]:
    """A conversation's messages, oldest first: those before position `before` (all when None),
    the latest `limit` of them (all when None). Returns them and whether earlier ones remain."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.position < before)
    query = query.order_by(Message.position.desc())
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(session.scalars(query))
    has_more = limit is not None and len(rows) > limit
    return rows[:limit][::-1], has_more


@dataclass(frozen=True)
class PendingReply:
    """The reply about to generate, stored with the request as `generating` (see store_reply)."""

    message_id: str
    model: str
    lease_expires_at: datetime


def sync_conversation(
    session: Session,
    user_id: str,
    conversation_id: str,
    incoming: Sequence[IncomingMessage],
    settings: dict[str, Any],
    pending: PendingReply | None = None,
) -> tuple[Conversation, int]:
    """Store what the client sent: keep the common prefix, replace the rest; and, with `pending`,
    the reply to come after it, empty and `generating` (in the same transaction).

    Returns the conversation and the position for the reply. Raises NotFoundError when
    the id belongs to someone else (it is neither read nor overwritten), UnknownUserError when
    the user's account is gone (its access token outlived it).
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is not None and conversation.user_id != user_id:
        raise NotFoundError(conversation_id)
    now = utcnow()
    if conversation is None:
        if session.get(User, user_id) is None:
            raise UnknownUserError(user_id)
        conversation = Conversation(id=conversation_id, user_id=user_id, settings=settings, created_at=now)
        session.add(conversation)
        stored: list[Message] = []
    else:
        stored = list(
            session.scalars(
                select(Message).where(Message.conversation_id == conversation_id).order_by(Message.position)
            )
        )
    common = 0
    for old, new in zip(stored, incoming, strict=False):
        if old.role != new.role or old.content != new.content:
            break
        common += 1
    if common < len(stored):  # an edited or regenerated tail replaces the stored one
        session.execute(delete(Message).where(Message.conversation_id == conversation_id, Message.position >= common))
    for position in range(common, len(incoming)):
        message = incoming[position]
        session.add(
            Message(conversation_id=conversation_id, position=position, role=message.role, content=message.content)
        )
    if pending is not None:
        session.add(
            Message(
                id=pending.message_id,
                conversation_id=conversation_id,
                position=len(incoming),
                role="ai",
                content="",
                status=GENERATING,
                model=pending.model,
                lease_expires_at=pending.lease_expires_at,
            )
        )
    conversation.settings = settings
    conversation.updated_at = now
    try:
        session.commit()
    except IntegrityError as error:
        # Another user's first message created this id between our read and write.
        session.rollback()
        raise NotFoundError(conversation_id) from error
    return conversation, len(incoming)


def store_reply(session: Session, reply: ReplyRecord) -> str | None:
    """Store the model's reply as it ended (in place of its `generating` row); give the
    conversation a title after its first exchange.

    Returns the new title, if one was set.
    """
    conversation_id, content = reply.conversation_id, reply.content
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:  # deleted while the reply was streaming
        return None
    # A concurrent request may have stored a reply at this position already.
    session.execute(
        delete(Message).where(Message.conversation_id == conversation_id, Message.position >= reply.position)
    )
    session.add(
        Message(
            id=reply.message_id,
            conversation_id=conversation_id,
            position=reply.position,
            role="ai",
            content=content,
            status=reply.status,
            model=reply.model,
            finish_reason=reply.finish_reason,
            error=reply.error,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            ttft_ms=reply.ttft_ms,
            tokens_per_second=reply.tokens_per_second,
            omitted_messages=reply.omitted_messages,
        )
    )
    title = None
    if conversation.title is None and content.strip():
        first_user = session.scalar(
            select(Message.content)
            .where(Message.conversation_id == conversation_id, Message.role == "user")
            .order_by(Message.position)
            .limit(1)
        )
        title = make_title(first_user or content)
        conversation.title = title
    conversation.updated_at = utcnow()
    session.commit()
    return title


def save_partial_replies(session: Session, partial: dict[str, str], lease_expires_at: datetime) -> None:
    """Save the text so far of replies still generating (message id -> text) and renew their lease.
    A reply that ended meanwhile (stored as it ended) or was deleted is left alone."""
    if not partial:
        return
    table = cast(Table, Message.__table__)  # a Core statement: one UPDATE run for every reply (executemany)
    statement = (
        update(table)
        .where(table.c.id == bindparam("message_id"), table.c.status == GENERATING)
        .values(content=bindparam("text"), lease_expires_at=lease_expires_at)
    )
    session.execute(statement, [{"message_id": key, "text": text} for key, text in partial.items()])
    session.commit()


def mark_interrupted(session: Session, now: datetime, live: Collection[str] = ()) -> int:
    """Mark interrupted the generating replies whose lease has lapsed: the process writing them
    is gone (killed, crashed). Their partial text stays. `live`: ids of replies the caller is
    generating, never marked. Returns how many there were."""
    statement = (
        update(Message)
        .where(Message.status == GENERATING, Message.lease_expires_at < now, Message.id.not_in(list(live)))
        .values(status=INTERRUPTED, error="The server stopped while this reply was generating.", lease_expires_at=None)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    session.commit()
    return result.rowcount


def discard_pending_reply(session: Session, message_id: str) -> None:
    """Remove a reply stored as generating that never began (its request got 429, say)."""
    session.execute(delete(Message).where(Message.id == message_id, Message.status == GENERATING))
    session.commit()


def _encode_cursor(updated_at: datetime, conversation_id: str) -> str:
    raw = f"{updated_at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, conversation_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), conversation_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("invalid cursor") from error


def list_conversations(
    session: Session, user_id: str, *, q: str | None, limit: int, cursor: str | None
) -> tuple[list[Conversation], str | None]:
    """Newest first; `q` matches titles and message content (case-insensitive)."""
    query = select(Conversation).where(Conversation.user_id == user_id)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        in_messages = exists().where(
            Message.conversation_id == Conversation.id, Message.content.ilike(pattern, escape="\\")
        )
        query = query.where(or_(Conversation.title.ilike(pattern, escape="\\"), in_messages))
    if cursor:
        stamp, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                Conversation.updated_at < stamp,
                (Conversation.updated_at == stamp) & (Conversation.id < last_id),
            )
        )
    query = query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1].updated_at, rows[-1].id)
    return rows, next_cursor


def generating_conversations(session: Session, conversation_ids: Collection[str]) -> set[str]:
    """Which of these conversations have a reply stored `generating` (by any replica)."""
    if not conversation_ids:
        return set()
    query = select(Message.conversation_id).where(
        Message.status == GENERATING, Message.conversation_id.in_(list(conversation_ids))
    )
    return set(session.scalars(query.distinct()))


def update_conversation(
    session: Session,
    user_id: str,
    conversation_id: str,
    *,
    title: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Conversation:
    """Rename the conversation and/or change the chat options in `settings` (others are kept).
    Neither moves it in the list: `updated_at` follows its messages."""
    conversation = get_conversation(session, user_id, conversation_id)
    if title is not None:
        conversation.title = title
    if settings is not None:
        conversation.settings = {**(conversation.settings or {}), **settings}  # a new dict: JSON is not mutable-tracked
    session.commit()
    return conversation


def replace_title(session: Session, conversation_id: str, old: str, new: str) -> bool:
    """Set a conversation's title to `new` if it is still `old`: not renamed, nor deleted, since.
    Its place in the list (updated_at) stays. Returns whether it was set."""
    statement = update(Conversation).where(Conversation.id == conversation_id, Conversation.title == old)
    result = cast(CursorResult[Any], session.execute(statement.values(title=new)))
    session.commit()
    return result.rowcount > 0


def delete_conversation(session: Session, user_id: str, conversation_id: str) -> None:
    conversation = get_conversation(session, user_id, conversation_id)
    session.delete(conversation)
    session.commit()


# -- health ---------------------------------------------------------------------------------


def ping_database(session: Session) -> None:
    """Raises when the database cannot answer a trivial query."""
    session.execute(text("SELECT 1"))
