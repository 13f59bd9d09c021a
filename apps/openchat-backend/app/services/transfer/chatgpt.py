"""ChatGPT's data export, `conversations.json`: a list of conversations, each a tree of nodes.

    {"id"/"conversation_id", "title", "create_time", "update_time", "current_node",
     "mapping": {"<node id>": {"id", "parent", "children": [...],
                               "message": null | {"id", "author": {"role"}, "create_time",
                                                  "content": {"content_type", "parts": [...]},
                                                  "status", "recipient", "metadata": {...}}}}}

Times are seconds since 1970. The tree's branches (regenerated replies, edited messages) become
OpenChat versions. Only what a reader saw is kept: user and assistant text addressed to everyone.
The empty root, system and tool messages, hidden context (custom instructions), tool calls and
messages with no text are left out, and their children hang from the nearest message kept.
Parts that are not text (images, files) are replaced by a short marker.
"""

from typing import Any

from app.services.transfer.records import (
    MODEL_MAX_CHARS,
    RecordError,
    TransferConversation,
    TransferMessage,
    conversation_part,
    from_epoch,
    mapping_at,
    optional_text,
    role,
    storable_text,
    title,
)

FORMAT = "chatgpt"
TEXT_CONTENT = {"text", "multimodal_text"}
PART_MARKERS = {"image_asset_pointer": "[image]", "audio_asset_pointer": "[audio]"}
# metadata.finish_details.type -> (status, finish_reason)
FINISH_TYPES = {
    "stop": ("complete", "stop"),
    "max_tokens": ("complete", "length"),
    "interrupted": ("cancelled", "cancelled"),
}


def looks_like(record: Any) -> bool:
    return isinstance(record, dict) and "mapping" in record


def parse_conversation(record: Any) -> TransferConversation:
    mapping = conversation_part(record, "mapping", dict)
    nodes: dict[str, dict[str, Any]] = {}
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            raise RecordError(f"node '{node_id}' is not a JSON object.")
        nodes[node_id] = node

    kept: dict[str, TransferMessage] = {}
    for node_id, node in nodes.items():
        message = _message(node_id, node)
        if message is not None:
            kept[node_id] = message
    messages = []
    for node_id, message in kept.items():
        message.parent_id = _kept_ancestor(nodes, kept, nodes[node_id].get("parent"))
        messages.append(message)

    current = record.get("current_node")
    active = _kept_ancestor(nodes, kept, current) if isinstance(current, str) else None
    source_id = record.get("conversation_id") or record.get("id")
    return TransferConversation(
        source_id=source_id if isinstance(source_id, str) else None,
        title=title(record.get("title")),
        created_at=from_epoch(record.get("create_time"), "'create_time'"),
        updated_at=from_epoch(record.get("update_time"), "'update_time'"),
        settings={},
        messages=messages,
        active_leaf_id=active,
    )


def _kept_ancestor(nodes: dict[str, dict[str, Any]], kept: dict[str, TransferMessage], node_id: Any) -> str | None:
    """`node_id` if it is kept, else its nearest kept ancestor (None: none is)."""
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id not in seen:
        if node_id in kept:
            return node_id
        seen.add(node_id)
        node = nodes.get(node_id)
        node_id = node.get("parent") if node is not None else None
    return None


def _message(node_id: str, node: dict[str, Any]) -> TransferMessage | None:
    """The node's message as OpenChat keeps it, or None when a reader never saw it."""
    message = node.get("message")
    if message is None:
        return None  # the tree's root
    name = f"message '{node_id}'"
    if not isinstance(message, dict):
        raise RecordError(f"{name} is not a JSON object.")
    author = message.get("author")
    author_role = author.get("role") if isinstance(author, dict) else None
    if author_role is None:
        raise RecordError(f"{name} has no role.")
    if author_role not in ("user", "assistant"):
        return None  # system prompts, tool results
    metadata = mapping_at(message, "metadata")
    if metadata.get("is_visually_hidden_from_conversation") or message.get("recipient") not in (None, "all"):
        return None  # hidden context, calls to tools
    content = message.get("content")
    if not isinstance(content, dict):
        raise RecordError(f"{name} has no 'content'.")
    if content.get("content_type") not in TEXT_CONTENT:
        return None  # code run by tools, browsing results, reasoning
    text = _text(name, content.get("parts"))
    if not text.strip():
        return None
    status, finish_reason = _ending(message, metadata)
    is_reply = author_role == "assistant"
    return TransferMessage(
        id=node_id,
        parent_id=None,
        role=role(author_role, node_id),
        content=storable_text(text, f"{name}: 'content'"),
        status=status if is_reply else "complete",
        model=optional_text(metadata.get("model_slug"), f"{name}: 'model_slug'", MODEL_MAX_CHARS) if is_reply else None,
        finish_reason=finish_reason if is_reply else None,
        created_at=from_epoch(message.get("create_time"), f"{name}: 'create_time'"),
    )


def _text(name: str, parts: Any) -> str:
    if not isinstance(parts, list):
        raise RecordError(f"{name} has no 'parts' list in its content.")
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            marker = PART_MARKERS.get(str(part.get("content_type")))
            if marker:
                texts.append(marker)
        elif part is not None:
            raise RecordError(f"{name} has a part that is neither text nor an attachment.")
    return "\n\n".join(text for text in texts if text)


def _ending(message: dict[str, Any], metadata: dict[str, Any]) -> tuple[str, str | None]:
    """(status, finish_reason) of a reply: how ChatGPT says it ended."""
    details = metadata.get("finish_details")
    kind = details.get("type") if isinstance(details, dict) else None
    if kind in FINISH_TYPES:
        return FINISH_TYPES[kind]
    if message.get("status") == "in_progress":
        return "interrupted", None
    return "complete", None
