"""Database tables. Data access lives in `app/crud.py`, never in routes."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC everywhere; SQLite stores no offset, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}  # noqa: RUF012 - SQLAlchemy's own hook


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    # None for the single local user of OPENCHAT_AUTH=off, who never logs in.
    hashed_password: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_user_updated", "user_id", "updated_at", "id"),
        # A conversation is imported once per user (migration 0005); NULLs (not imported) never clash.
        Index("ux_conversations_user_import_key", "user_id", "import_key", unique=True),
    )

    # The client chooses the id (contract: `id` in POST /chat); ownership is checked on every use.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(200))
    # Last chat options used (model, prompt, temperature...), so the UI can restore them.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last message of the path shown (migration 0004): messages form a tree, one path of it is
    # shown. No foreign key: it is moved on every request, and a dangling id only means "none".
    active_leaf_id: Mapped[str | None] = mapped_column(String(32))
    # An imported conversation: a digest of its source format, id and content, so that importing
    # the same file again skips it (migration 0005). None for a conversation begun here.
    import_key: Mapped[str | None] = mapped_column(String(64))

    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation",
        order_by="Message.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


GENERATING = "generating"
INTERRUPTED = "interrupted"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_position", "conversation_id", "position"),
        # The versions of a message: its siblings, the children of one parent (migration 0004).
        Index("ix_messages_conversation_parent", "conversation_id", "parent_id"),
        # The replies generating now, by lease (migration 0003): a handful of rows, whatever the table's size.
        Index(
            "ix_messages_generating_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'generating'"),
            postgresql_where=text("status = 'generating'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The message this one answers or follows (migration 0004); None for the first message of a
    # conversation and its edited versions. Versions of a message share conversation and parent.
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE", name="fk_messages_parent_id")
    )
    # The depth on its path, 0-based: the same on every branch, so paging by `before` works on any path.
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | ai | system
    content: Mapped[str] = mapped_column(Text)
    # complete | cancelled | error for a reply that ended; `generating` while it is written (its
    # partial text saved every few seconds), `interrupted` when its server stopped meanwhile.
    status: Mapped[str] = mapped_column(String(16), default="complete")
    model: Mapped[str | None] = mapped_column(String(200))
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    # Replies: earlier messages left out of the prompt to fit the context window (migration 0002).
    omitted_messages: Mapped[int | None] = mapped_column(Integer)
    # A generating reply: the process writing it renews this every few seconds; once it has
    # passed, that process is gone and any replica marks the reply interrupted (migration 0003).
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class RefreshToken(Base):
    """One issued refresh token. Tokens of one login share a family; reuse revokes the family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
