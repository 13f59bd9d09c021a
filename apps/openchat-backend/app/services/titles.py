"""What a conversation's title says.

`make_title` is the immediate title (the first user message, cut short). `summarize_title` asks
the chat model for a short summary of the first exchange; `clean_title` turns the model's raw
answer into a title, or None so that the caller keeps `make_title`'s.
"""

import logging
import re

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

log = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60
# A 3-7 word title takes about 10 tokens; a few more let a chatty model finish its first line.
SUMMARY_MAX_TOKENS = 24
# Enough of each message to tell what it is about, while the prompt stays quick to process.
EXCERPT_CHARS = 1200
# Longer than this, the first line is an answer or an explanation, not a title.
SUMMARY_MAX_WORDS = 12

SUMMARY_INSTRUCTIONS = (
    "You name chat conversations. Reply with a title of 3 to 7 words that says what the "
    "conversation below is about. Reply with the title only: no quotes, no explanation."
)

_PREFIX = re.compile(r"^(?:(?:chat|conversation|suggested|short)\s+)?title\s*[:\-–—]\s*", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^(?:i'm sorry|i am sorry|sorry\b|i cannot|i can't|i can not|i'm unable|i am unable|as an ai|unfortunately)",
    re.IGNORECASE,
)
_EDGES = " \"'“”‘’«»`*#>-.,;:!?…"


def make_title(text: str) -> str:
    """A short title from the first user message: its first line, cut at a word boundary."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "New chat")
    line = " ".join(line.lstrip("#>*-` ").split())
    if len(line) <= TITLE_MAX_CHARS:
        return line or "New chat"
    cut = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0]
    return (cut if len(cut) >= 20 else line[:TITLE_MAX_CHARS]).rstrip(",.;:") + "…"


def clean_title(raw: str) -> str | None:
    """The title in a model's answer: its first non-empty line without quotes, markdown, a
    "Title:" label or final punctuation, at most TITLE_MAX_CHARS long. None when the answer
    holds no title (empty, a refusal, or a whole sentence of explanation)."""
    for line in raw.splitlines():
        title = _strip_line(line)
        if not title:
            continue
        if _REFUSAL.match(title.replace("’", "'")) or len(title.split()) > SUMMARY_MAX_WORDS:
            return None
        if not any(char.isalnum() for char in title):
            return None
        return _shorten(title)
    return None


def _strip_line(line: str) -> str:
    title = " ".join(line.split())
    for marker in ("**", "`", '"', "“", "”", "«", "»"):
        title = title.replace(marker, "")
    previous = None
    while title != previous:  # e.g. `> Title: 'Lists.'` needs several passes
        previous = title
        title = _PREFIX.sub("", title.lstrip(_EDGES)).strip(_EDGES)
    return title


def _shorten(title: str) -> str | None:
    if len(title) <= TITLE_MAX_CHARS:
        return title
    head = title[: TITLE_MAX_CHARS + 1]  # a space just after the limit is a word boundary too
    cut = head.rsplit(" ", 1)[0] if " " in head else title[:TITLE_MAX_CHARS]
    return cut.rstrip(_EDGES) or None


async def summarize_title(model: BaseChatModel, first_user_message: str, first_reply: str) -> str | None:
    """A 3-7 word title for the first exchange, from one short non-streamed completion.

    None when the model gives nothing usable or fails: a title is never worth an error, and
    the caller already has `make_title`'s.
    """
    limits: dict[str, object] = {"temperature": 0, "max_tokens": SUMMARY_MAX_TOKENS}
    from langchain_openai.chat_models.base import BaseChatOpenAI

    if isinstance(model, BaseChatOpenAI):
        # The registry's models also send the chat's `max_tokens` in extra_body, for servers
        # that read only that field: it must carry the title's limit too.
        limits["extra_body"] = {**(model.extra_body or {}), "max_tokens": SUMMARY_MAX_TOKENS}
    question, answer = first_user_message[:EXCERPT_CHARS].strip(), first_reply[:EXCERPT_CHARS].strip()
    exchange = f"User: {question}\n\nAssistant: {answer}\n\nTitle of this conversation:"
    messages = [SystemMessage(SUMMARY_INSTRUCTIONS), HumanMessage(exchange)]
    try:
        reply = await model.bind(**limits).ainvoke(messages)
    except Exception as error:  # noqa: BLE001 - any failure leaves the fallback title in place
        log.warning("Could not summarise a title: %s", error)
        return None
    return clean_title(reply.text)
