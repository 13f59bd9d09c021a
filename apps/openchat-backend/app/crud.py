"""Data access: all database queries live here (routes and services call these functions).

Every query that touches conversations checks the owner."""

import base64
import binascii
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Table, bindparam, delete, exists, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.models import GENERATING, INTERRUPTED, Conversation, Message, RefreshToken, User, new_id, utcnow
from app.services.titles import make_title

LOCAL_USER_EMAIL = "local@openchat.invalid"


class UnknownUserError(Exception):
    """The account a request acts for no longer exists."""


class NotFoundError(Exception):
    pass


class MessageNotFoundError(NotFoundError):
    """The conversation is the user's, but the message is not in it."""


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


def _path_cte() -> Any:
    path = select(Message.id, Message.parent_id).where(Message.id == bindparam("leaf_id")).cte("path", recursive=True)
    parent = aliased(Message)
    return path.union_all(select(parent.id, parent.parent_id).join(path, parent.id == path.c.parent_id))


# A CTE of the messages from the message `leaf_id` (a parameter) up to its root (columns id,
# parent_id): one path. Built once: building it per query (an alias, the CTE's columns) cost
# about 2 ms of CPU per stored reply.
PATH = _path_cte()


def active_leaf(session: Session, conversation_id: str) -> str | None:
    """The last message of the path shown: the conversation's active leaf, or, when it has none
    (or it is gone), its newest message."""
    leaf = session.scalar(
        select(Message.id)
        .join(Conversation, Conversation.active_leaf_id == Message.id)
        .where(Conversation.id == conversation_id, Message.conversation_id == conversation_id)
    )
    if leaf is not None:
        return leaf
    return session.scalar(
        select(Message.id)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at.desc(), Message.position.desc(), Message.id.desc())
        .limit(1)
    )


def conversation_messages(
    session: Session, conversation_id: str, *, before: int | None = None, limit: int | None = None
) -> tuple[list[Message], bool]:
    """The messages of the path shown (the active one), oldest first: those before position
    `before` (all when None), the latest `limit` of them (all when None). Returns them and
    whether earlier ones remain."""
    leaf = active_leaf(session, conversation_id)
    if leaf is None:
        return [], False
    query = select(Message).where(Message.id.in_(select(PATH.c.id)))
    if before is not None:
        query = query.where(Message.position < before)
    query = query.order_by(Message.position.desc())
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(session.scalars(query, {"leaf_id": leaf}))
    has_more = limit is not None and len(rows) > limit
    return rows[:limit][::-1], has_more


def sibling_ids(session: Session, conversation_id: str, messages: Sequence[Message]) -> dict[str, list[str]]:
    """The versions of each message (its siblings: the messages with its parent, itself
    included), oldest first, by message id."""
    parents = {message.parent_id for message in messages}
    by_parent: dict[str | None, list[str]] = {}
    known = sorted(parent for parent in parents if parent is not None)
    conditions = [Message.parent_id.in_(known[start : start + 500]) for start in range(0, len(known), 500)]
    if None in parents:
        conditions.append(Message.parent_id.is_(None))
    for start in range(0, len(conditions), 20):  # a bounded number of parameters per query
        query = (
            select(Message.id, Message.parent_id)
            .where(Message.conversation_id == conversation_id, or_(*conditions[start : start + 20]))
            .order_by(Message.created_at, Message.id)
        )
        for message_id, parent_id in session.execute(query):
            by_parent.setdefault(parent_id, []).append(message_id)
    return {message.id: by_parent.get(message.parent_id, [message.id]) for message in messages}


@dataclass(frozen=True)
class PendingReply:
    """The reply about to generate, stored with the request as `generating` (see store_reply)."""

    message_id: str
    model: str
    lease_expires_at: datetime


def check_chat_access(connection: Connection | Session, user_id: str, conversation_id: str) -> None:
    """What sync_conversation would refuse, read only: NotFoundError when the conversation is
    someone else's, UnknownUserError when the user's account is gone. A chat checks this before
    its first token and stores its messages after it (app/services/chat.py)."""
    owner = connection.scalar(select(Conversation.user_id).where(Conversation.id == conversation_id))
    if owner is not None and owner != user_id:
        raise NotFoundError(conversation_id)
    if owner is None and connection.scalar(select(User.id).where(User.id == user_id)) is None:
        raise UnknownUserError(user_id)


def sync_conversation(
    session: Session,
    user_id: str,
    conversation_id: str,
    incoming: Sequence[IncomingMessage],
    settings: dict[str, Any],
    pending: PendingReply | None = None,
) -> tuple[Conversation, int]:
    """Store what the client sent, and, with `pending`, the reply to come after it, empty and
    `generating` (in the same transaction). Nothing stored is deleted: messages form a tree.

    The history is matched from the root: at each depth, a child of the message matched so far
    with the same role and content (the one on the path shown first, else the newest). The first
    message that matches none, and all after it, are stored as a new branch from there. The
    pending reply is a child of the last message, and the path shown ends with it (else with
    the last message). So an unchanged history never duplicates; a regenerated reply, or an
    edited message, becomes a sibling of the stored one.

    Returns the conversation and the position (depth) for the reply. Raises NotFoundError when
    the id belongs to someone else (it is neither read nor overwritten), UnknownUserError when
    the user's account is gone (its access token outlived it).
    """
    # Locked (PostgreSQL) so that two requests on one conversation match against each other's branches.
    conversation = session.get(Conversation, conversation_id, with_for_update=True)
    if conversation is not None and conversation.user_id != user_id:
        raise NotFoundError(conversation_id)
    now = utcnow()
    children: dict[str | None, list[Message]] = {}
    shown: set[str] = set()
    if conversation is None:
        if session.get(User, user_id) is None:
            raise UnknownUserError(user_id)
        conversation = Conversation(id=conversation_id, user_id=user_id, settings=settings, created_at=now)
        session.add(conversation)
    else:
        stored = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at, Message.position, Message.id)
        )
        by_id: dict[str, Message] = {}
        for message in stored:
            by_id[message.id] = message
            children.setdefault(message.parent_id, []).append(message)  # oldest first
        leaf = by_id.get(conversation.active_leaf_id or "")
        while leaf is not None:
            shown.add(leaf.id)
            leaf = by_id.get(leaf.parent_id or "")
    parent_id: str | None = None
    depth = 0
    for sent in incoming:
        same = [
            child for child in children.get(parent_id, []) if child.role == sent.role and child.content == sent.content
        ]
        if not same:
            break
        parent_id = next((child.id for child in same if child.id in shown), same[-1].id)
        depth += 1
    for position in range(depth, len(incoming)):  # the new branch
        sent = incoming[position]
        new = Message(
            id=new_id(),
            conversation_id=conversation_id,
            parent_id=parent_id,
            position=position,
            role=sent.role,
            content=sent.content,
            created_at=now,
        )
        session.add(new)
        parent_id = new.id
    if pending is not None:
        session.add(
            Message(
                id=pending.message_id,
                conversation_id=conversation_id,
                parent_id=parent_id,
                position=len(incoming),
                role="ai",
                content="",
                status=GENERATING,
                model=pending.model,
                lease_expires_at=pending.lease_expires_at,
                created_at=now,
            )
        )
        parent_id = pending.message_id
    conversation.active_leaf_id = parent_id
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
    """Store the model's reply as it ended, in its own row (stored `generating` with the request);
    give the conversation a title after its first exchange: the first user message of the reply's
    path (the path shown when it was sent).

    Returns the new title, if one was set.
    """
    conversation_id, content = reply.conversation_id, reply.content
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:  # deleted while the reply was streaming
        return None
    ended = (
        update(Message)
        .where(Message.id == reply.message_id, Message.conversation_id == conversation_id)
        .values(
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
            lease_expires_at=None,
        )
        # The row is not loaded in this session: nothing to update in it (evaluating the
        # statement against the session's objects cost a millisecond).
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], session.execute(ended)).rowcount == 0:  # gone with its conversation meanwhile
        session.rollback()
        return None
    title = None
    if conversation.title is None and content.strip():
        first_user = session.scalar(
            select(Message.content)
            .where(Message.id.in_(select(PATH.c.id)), Message.role == "user")
            .order_by(Message.position)
            .limit(1),
            {"leaf_id": reply.message_id},
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
    """Remove a reply stored as generating that never began (its request got 429, say); the path
    shown ends again with the message it answered (unless another has been shown since)."""
    pending = session.execute(
        select(Message.conversation_id, Message.parent_id).where(Message.id == message_id, Message.status == GENERATING)
    ).one_or_none()
    if pending is None:
        return
    conversation_id, parent_id = pending
    session.execute(delete(Message).where(Message.id == message_id, Message.status == GENERATING))
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.active_leaf_id == message_id)
        .values(active_leaf_id=parent_id)
    )
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


def show_branch(session: Session, user_id: str, conversation_id: str, message_id: str) -> Conversation:
    """Make the path shown go through `message_id` and on to the newest message below it (a
    leaf: a message is always newer than the one it follows). Raises NotFoundError when the
    conversation is not the user's or the message is not in it. Its place in the list stays."""
    conversation = get_conversation(session, user_id, conversation_id)
    found = session.scalar(
        select(Message.id).where(Message.id == message_id, Message.conversation_id == conversation_id)
    )
    if found is None:
        raise MessageNotFoundError(message_id)
    below = select(Message.id).where(Message.id == message_id).cte("below", recursive=True)
    child = aliased(Message)
    below = below.union_all(select(child.id).join(below, child.parent_id == below.c.id))
    leaf = session.scalar(
        select(Message.id)
        .where(Message.id.in_(select(below.c.id)))
        .order_by(Message.created_at.desc(), Message.position.desc(), Message.id.desc())
        .limit(1)
    )
    conversation.active_leaf_id = leaf
    session.commit()
    return conversation


# -- health ---------------------------------------------------------------------------------


def ping_database(session: Session) -> None:
    """Raises when the database cannot answer a trivial query."""
    session.execute(text("SELECT 1"))
