"""The one form every import format is read into, and its checks.

A parser (openchat_format, chatgpt, open_webui) turns one conversation record of its file into a
`TransferConversation`: messages as a tree (each with its source id and its parent's), plus the
message shown last (the active leaf). `normalized` checks the tree and puts it in storable order.
A problem with a record is a `RecordError` whose text names what is wrong, e.g. "message 'abc' has
no role."; the importer adds which conversation it was.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

ROLES = {"user": "user", "human": "user", "ai": "ai", "assistant": "ai", "system": "system"}
STATUSES = {"complete", "cancelled", "error", "generating", "interrupted"}
FINISH_REASONS = {"stop", "length", "cancelled"}
# Column sizes (app/models.py): a longer value is refused, not cut (titles are cut: see `title`).
MODEL_MAX_CHARS = 200
TITLE_MAX_CHARS = 200
# Siblings are ordered by creation time; ties are moved apart by this much, in their file order.
TIE_STEP = timedelta(microseconds=1)


class RecordError(ValueError):
    """A conversation record that cannot be imported; the text says why."""


@dataclass
class TransferMessage:
    id: str  # the source's id, unique within its conversation (new ids are given when stored)
    parent_id: str | None
    role: str  # user | ai | system
    content: str
    status: str = "complete"
    model: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    omitted_messages: int | None = None
    created_at: datetime | None = None
    depth: int = 0  # set by `normalized`: Message.position


@dataclass
class TransferConversation:
    source_id: str | None
    title: str | None
    created_at: datetime | None
    updated_at: datetime | None
    settings: dict[str, Any] = field(default_factory=dict)
    messages: list[TransferMessage] = field(default_factory=list)
    active_leaf_id: str | None = None


# -- value checks, shared by the parsers --------------------------------------------------------


Part = TypeVar("Part", dict[str, Any], list[Any])


def conversation_part(record: Any, key: str, kind: type[Part]) -> Part:
    """record[key], for a conversation record that must be a JSON object with this part (a JSON
    object or a list, as `kind` says)."""
    if not isinstance(record, dict):
        raise RecordError("it is not a JSON object.")
    value = record.get(key)
    if not isinstance(value, kind):
        raise RecordError(f"'{key}' is missing or is not {'a list' if kind is list else 'a JSON object'}.")
    return value


def mapping_at(record: dict[str, Any], key: str) -> dict[str, Any]:
    """record[key] when it is a JSON object, else an empty one (optional metadata)."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def storable_text(value: str, what: str) -> str:
    """Text as stored: refused (never altered) when a database cannot store it."""
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character (\\u0000), which cannot be stored.")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise RecordError(f"{what} contains an unpaired surrogate (\\ud800-\\udfff), which is not text.") from None
    return value


def optional_text(value: Any, what: str, max_chars: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text.")
    if max_chars is not None and len(value) > max_chars:
        raise RecordError(f"{what} is longer than {max_chars} characters.")
    return storable_text(value, what)


def optional_count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise RecordError(f"{what} must be a whole number of at least 0.")
    return int(value)


def optional_number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"{what} must be a number of at least 0.")
    return float(value)


def from_iso(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a date and time like 2026-11-28T09:30:00Z.")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"{what} must be a date and time like 2026-11-28T09:30:00Z.") from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def from_epoch(value: Any, what: str) -> datetime | None:
    """Seconds since 1970 (fractions allowed); milliseconds are recognised by their size."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"{what} must be a time in seconds since 1970.")
    seconds = value / 1000 if value > 1e11 else value  # 1e11 s is the year 5138; in ms, 1973
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"{what} is not a valid time.") from None


def title(value: Any) -> str | None:
    """A title: text cut to what the column holds; a blank one counts as none."""
    text = optional_text(value, "The title")
    if text is None or not text.strip():
        return None
    text = " ".join(text.split())
    return text if len(text) <= TITLE_MAX_CHARS else text[: TITLE_MAX_CHARS - 1] + "…"


def role(value: Any, message_id: str) -> str:
    if value is None:
        raise RecordError(f"message '{message_id}' has no role.")
    if not isinstance(value, str) or value not in ROLES:
        raise RecordError(f"message '{message_id}' has an unknown role {value!r}: expected user, assistant or system.")
    return ROLES[value]


# -- the tree -----------------------------------------------------------------------------------


def normalized(conversation: TransferConversation) -> TransferConversation:
    """The conversation checked and ready to store: ids unique, every parent present, no cycle;
    messages parents first and each one's versions (siblings) oldest first, with strictly
    increasing creation times (the order in which versions are shown); depths set; the active
    leaf one of its messages (the newest path's end when the source named none)."""
    by_id: dict[str, TransferMessage] = {}
    for message in conversation.messages:
        if message.id in by_id:
            raise RecordError(f"message '{message.id}' appears twice.")
        by_id[message.id] = message
    children: defaultdict[str | None, list[TransferMessage]] = defaultdict(list)
    for message in conversation.messages:
        if message.parent_id is not None and message.parent_id not in by_id:
            raise RecordError(f"message '{message.id}' has parent '{message.parent_id}', which is not in the file.")
        children[message.parent_id].append(message)

    fallback = conversation.created_at or conversation.updated_at or datetime.now(UTC)
    ordered: list[TransferMessage] = []
    # Breadth-first from the roots: parents before children, depth = distance from the root.
    level: list[tuple[str | None, datetime]] = [(None, fallback)]
    depth = 0
    while level:
        next_level: list[tuple[str | None, datetime]] = []
        for parent_id, parent_time in level:
            siblings = children.get(parent_id, [])
            # Sorted by time, file order breaking ties (sorted is stable).
            siblings = sorted(siblings, key=lambda m: m.created_at or parent_time)
            previous: datetime | None = None
            for sibling in siblings:
                created = sibling.created_at or parent_time
                if previous is not None and created <= previous:
                    created = previous + TIE_STEP
                previous = created
                sibling.created_at, sibling.depth = created, depth  # the parser's objects: changed in place
                ordered.append(sibling)
                next_level.append((sibling.id, created))
        level = next_level
        depth += 1
    if len(ordered) != len(conversation.messages):
        placed_ids = {message.id for message in ordered}
        stuck = sorted(message.id for message in conversation.messages if message.id not in placed_ids)
        raise RecordError(f"messages {', '.join(repr(i) for i in stuck[:3])} form a cycle of parents.")

    leaf = conversation.active_leaf_id
    if leaf is not None and leaf not in by_id:
        raise RecordError(f"the active message '{leaf}' is not one of its messages.")
    if leaf is None and ordered:
        leaf = newest_path_end(ordered)
    times = [message.created_at for message in ordered if message.created_at is not None]
    created_at = conversation.created_at or (min(times) if times else fallback)
    updated_at = conversation.updated_at or (max(times) if times else created_at)
    return replace(conversation, messages=ordered, active_leaf_id=leaf, created_at=created_at, updated_at=updated_at)


class TreeNode(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def newest_path_end(ordered: Sequence[TreeNode]) -> str:
    """The end of the path that takes the newest version at every step. `ordered`: messages
    parents first, each one's versions oldest first (the last of each sibling list is the newest)."""
    newest_child: dict[str | None, str] = {}
    for message in ordered:
        newest_child[message.parent_id] = message.id
    current = newest_child[None]
    while current in newest_child:
        current = newest_child[current]
    return current
