"""OpenChat's own JSON export: lossless (every branch, the settings, each reply's numbers).

    {"format": "openchat", "version": 1, "exported_at": "<ISO 8601>",
     "conversations": [{"id", "title", "created_at", "updated_at", "settings", "active_leaf_id",
                        "messages": [{"id", "parent_id", "role", "content", "status", "model",
                                      "finish_reason", "error", "prompt_tokens", "completion_tokens",
                                      "ttft_ms", "tokens_per_second", "omitted_messages",
                                      "created_at"}, ...]}, ...]}

Messages are listed parents first, each message's versions oldest first; `role` is user, ai or
system. Reading is strict: a value of the wrong kind is an error naming the record.
"""

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.schemas import ConversationSettings
from app.services.transfer.records import (
    FINISH_REASONS,
    MODEL_MAX_CHARS,
    STATUSES,
    RecordError,
    TransferConversation,
    TransferMessage,
    conversation_part,
    from_iso,
    optional_count,
    optional_number,
    optional_text,
    role,
    storable_text,
    title,
)

FORMAT = "openchat"
VERSION = 1
SETTINGS_KEYS = ("model", "prompt", "temperature", "top_p", "max_tokens")


def _iso(stamp: datetime | None) -> str | None:
    return stamp.isoformat().replace("+00:00", "Z") if stamp is not None else None


def message_to_dict(message: Any) -> dict[str, Any]:
    """One stored message (app.models.Message or anything with its attributes)."""
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": message.model,
        "finish_reason": message.finish_reason,
        "error": message.error,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "ttft_ms": message.ttft_ms,
        "tokens_per_second": message.tokens_per_second,
        "omitted_messages": message.omitted_messages,
        "created_at": _iso(message.created_at),
    }


def conversation_to_dict(conversation: Any, messages: list[Any]) -> dict[str, Any]:
    """One stored conversation with all its messages (parents first, versions oldest first)."""
    settings = conversation.settings or {}
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "settings": {key: settings.get(key) for key in SETTINGS_KEYS},
        "active_leaf_id": conversation.active_leaf_id,
        "messages": [message_to_dict(message) for message in messages],
    }


def envelope_head(exported_at: datetime) -> str:
    """The export's opening text, up to its conversations list (written as a stream)."""
    return f'{{"format": "{FORMAT}", "version": {VERSION}, "exported_at": "{_iso(exported_at)}", "conversations": ['


ENVELOPE_TAIL = "]}\n"


def check_version(version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError("The file says it is an OpenChat export, but its 'version' is not a number.")
    if version > VERSION:
        raise RecordError(
            f"The file is an OpenChat export of version {version}, made by a newer OpenChat; "
            f"this server reads version {VERSION}. Update this server, then import it again."
        )


def parse_conversation(record: Any) -> TransferConversation:
    listed = conversation_part(record, "messages", list)
    messages = [_parse_message(index, value) for index, value in enumerate(listed, start=1)]
    source_id = record.get("id")
    return TransferConversation(
        source_id=source_id if isinstance(source_id, str) else None,
        title=title(record.get("title")),
        created_at=from_iso(record.get("created_at"), "'created_at'"),
        updated_at=from_iso(record.get("updated_at"), "'updated_at'"),
        settings=_settings(record.get("settings")),
        messages=messages,
        active_leaf_id=optional_text(record.get("active_leaf_id"), "'active_leaf_id'"),
    )


def _settings(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError("'settings' is not a JSON object.")
    try:
        checked = ConversationSettings.model_validate({k: v for k, v in value.items() if k in SETTINGS_KEYS})
    except ValidationError as error:
        raise RecordError(f"settings: {error.errors()[0]['msg']}.") from None
    return {key: item for key, item in checked.model_dump().items() if item is not None}


def _parse_message(index: int, value: Any) -> TransferMessage:
    if not isinstance(value, dict):
        raise RecordError(f"message {index} is not a JSON object.")
    message_id = value.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise RecordError(f"message {index} has no 'id'.")
    name = f"message '{message_id}'"
    content = value.get("content")
    if not isinstance(content, str):
        raise RecordError(f"{name} has no text 'content'.")
    status = value.get("status", "complete")
    if status not in STATUSES:
        raise RecordError(f"{name} has an unknown status {status!r}: expected one of {', '.join(sorted(STATUSES))}.")
    finish_reason = value.get("finish_reason")
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        raise RecordError(f"{name} has an unknown finish_reason {finish_reason!r}.")
    return TransferMessage(
        id=message_id,
        parent_id=optional_text(value.get("parent_id"), f"{name}: 'parent_id'"),
        role=role(value.get("role"), message_id),
        content=storable_text(content, f"{name}: 'content'"),
        status=status,
        model=optional_text(value.get("model"), f"{name}: 'model'", MODEL_MAX_CHARS),
        finish_reason=finish_reason,
        error=optional_text(value.get("error"), f"{name}: 'error'"),
        prompt_tokens=optional_count(value.get("prompt_tokens"), f"{name}: 'prompt_tokens'"),
        completion_tokens=optional_count(value.get("completion_tokens"), f"{name}: 'completion_tokens'"),
        ttft_ms=optional_number(value.get("ttft_ms"), f"{name}: 'ttft_ms'"),
        tokens_per_second=optional_number(value.get("tokens_per_second"), f"{name}: 'tokens_per_second'"),
        omitted_messages=optional_count(value.get("omitted_messages"), f"{name}: 'omitted_messages'"),
        created_at=from_iso(value.get("created_at"), f"{name}: 'created_at'"),
    )
