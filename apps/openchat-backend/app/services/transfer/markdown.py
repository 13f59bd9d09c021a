"""A conversation as Markdown, to read: its title, the system prompt if any, then each message of
the path shown under a heading naming who wrote it. Message text is written as it is, so its
code blocks, lists and links stay intact."""

from datetime import datetime
from typing import Any

ROLE_HEADINGS = {"user": "User", "ai": "Assistant", "system": "System"}
STATUS_NOTES = {
    "cancelled": "stopped before it finished",
    "error": "failed",
    "generating": "still generating when exported",
    "interrupted": "interrupted",
}


def conversation_markdown(conversation: Any, path: list[Any], exported_at: datetime) -> str:
    """`path`: the messages shown, oldest first (app.models.Message or alike)."""
    title = conversation.title or "Untitled conversation"
    lines = [f"# {title}", "", f"_Exported from OpenChat on {exported_at:%Y-%m-%d %H:%M} UTC._", ""]
    prompt = (conversation.settings or {}).get("prompt")
    if prompt:
        lines += ["## System prompt", "", prompt.rstrip(), ""]
    for message in path:
        heading = ROLE_HEADINGS.get(message.role, message.role)
        if message.role == "ai" and message.model:
            heading += f" · {message.model}"
        lines += [f"## {heading}", ""]
        if message.content:
            lines += [_fences_closed(message.content.rstrip()), ""]
        note = STATUS_NOTES.get(message.status)
        if note:
            lines += [f"_(This reply {note}.)_", ""]
    return "\n".join(lines)


def _fences_closed(text: str) -> str:
    """The text with a code block left open (a reply cut short) closed, so that it does not
    swallow the headings after it."""
    fence = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence) and not stripped[3:].strip(fence[0]).strip():
            fence = None
    return text if fence is None else f"{text}\n{fence}"
