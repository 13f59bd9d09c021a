"""Open WebUI's chat export (Settings > Chats > Export chats, or one chat's Download > JSON): a list.

    [{"id", "title", "created_at", "updated_at",           # seconds since 1970
      "chat": {"title", "models": [...], "params": {"system", "temperature", ...},
               "history": {"currentId": "<id>",
                           "messages": {"<id>": {"id", "parentId", "childrenIds", "role", "content",
                                                 "timestamp", "model", "done", "error", "usage"}}},
               "messages": [...]}}, ...]

`history` is the tree (its branches become versions); old exports have only the `messages` list,
read as one path. A reply's token counts come from `usage` (or the older `info`), in OpenAI's or
Ollama's names. Chat options that OpenChat does not accept (out of its ranges) are left out.
"""

from typing import Any

from pydantic import ValidationError

from app.schemas import ConversationSettings
from app.services.transfer.records import (
    MODEL_MAX_CHARS,
    RecordError,
    TransferConversation,
    TransferMessage,
    conversation_part,
    from_epoch,
    mapping_at,
    optional_count,
    optional_text,
    role,
    storable_text,
    title,
)

FORMAT = "open-webui"


def looks_like(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("chat"), dict)


def parse_conversation(record: Any) -> TransferConversation:
    chat = conversation_part(record, "chat", dict)
    history = chat.get("history")
    if isinstance(history, dict) and isinstance(history.get("messages"), dict):
        raw = [(key, value) for key, value in history["messages"].items()]
        current = history.get("currentId")
        linear = False
    elif isinstance(chat.get("messages"), list):
        raw = [(str(index), value) for index, value in enumerate(chat["messages"], start=1)]
        current = None
        linear = True
    else:
        raise RecordError("'chat' has neither a 'history' of messages nor a 'messages' list.")
    messages: list[TransferMessage] = []
    for key, value in raw:
        message = _message(key, value)
        if linear:  # one path, in list order
            message.parent_id = messages[-1].id if messages else None
        messages.append(message)
    source_id = record.get("id")
    return TransferConversation(
        source_id=source_id if isinstance(source_id, str) else None,
        title=title(record.get("title") or chat.get("title")),
        created_at=from_epoch(record.get("created_at"), "'created_at'"),
        updated_at=from_epoch(record.get("updated_at"), "'updated_at'"),
        settings=_settings(chat),
        messages=messages,
        active_leaf_id=current if isinstance(current, str) else None,
    )


def _message(key: str, value: Any) -> TransferMessage:
    if not isinstance(value, dict):
        raise RecordError(f"message '{key}' is not a JSON object.")
    message_id = value.get("id", key)
    if not isinstance(message_id, str) or not message_id:
        raise RecordError(f"message '{key}' has no 'id'.")
    name = f"message '{message_id}'"
    content = value.get("content")
    if not isinstance(content, str):
        raise RecordError(f"{name} has no text 'content'.")
    message_role = role(value.get("role"), message_id)
    status, error = "complete", None
    usage: dict[str, Any] = {}
    if message_role == "ai":
        if value.get("error"):
            status = "error"
            details = value["error"]
            error = details.get("content") if isinstance(details, dict) else None
            error = error if isinstance(error, str) else "The reply failed."
        elif value.get("done") is False:
            status = "interrupted"
        found = value.get("usage") or value.get("info")
        usage = found if isinstance(found, dict) else {}
    return TransferMessage(
        id=message_id,
        parent_id=optional_text(value.get("parentId"), f"{name}: 'parentId'"),
        role=message_role,
        content=storable_text(content, f"{name}: 'content'"),
        status=status,
        model=optional_text(value.get("model"), f"{name}: 'model'", MODEL_MAX_CHARS) if message_role == "ai" else None,
        finish_reason="stop" if status == "complete" and message_role == "ai" else None,
        error=optional_text(error, f"{name}: 'error'"),
        prompt_tokens=_count(usage, "prompt_tokens", "prompt_eval_count"),
        completion_tokens=_count(usage, "completion_tokens", "eval_count"),
        created_at=from_epoch(value.get("timestamp"), f"{name}: 'timestamp'"),
    )


def _count(usage: dict[str, Any], *names: str) -> int | None:
    for name in names:
        try:
            count = optional_count(usage.get(name), name)
        except RecordError:
            continue  # numbers of another provider's shape: not worth refusing the file for
        if count is not None:
            return count
    return None


def _settings(chat: dict[str, Any]) -> dict[str, Any]:
    """The chat options OpenChat has, each kept only when it is in OpenChat's range. Not the model:
    Open WebUI's model ids (Ollama's `llama3.1:8b`...) name models of another server."""
    params = mapping_at(chat, "params")
    candidates = {
        "prompt": params.get("system"),
        "temperature": params.get("temperature"),
        "top_p": params.get("top_p"),
        "max_tokens": params.get("max_tokens"),
    }
    settings: dict[str, Any] = {}
    for key, value in candidates.items():
        if value is None:
            continue
        try:
            checked = ConversationSettings.model_validate({key: value})
        except ValidationError:
            continue
        settings[key] = getattr(checked, key)
    return settings
