"""Reads an import file record by record (ijson: one conversation in memory at a time), whatever
its format: OpenChat JSON, ChatGPT's conversations.json or Open WebUI's chat export."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson

from app.services.transfer import chatgpt, open_webui, openchat_format
from app.services.transfer.records import RecordError, TransferConversation, normalized

KNOWN_FORMATS = "an OpenChat JSON export, ChatGPT's conversations.json or Open WebUI's chat export (a .json file)"
TITLE_SHOWN_CHARS = 60


class ImportFileError(ValueError):
    """The file cannot be imported; `detail` says why (and which record, when one is to blame)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Format:
    name: str  # openchat | chatgpt | open-webui
    records_prefix: str  # where the conversations are, for ijson.items
    parse: Callable[[Any], TransferConversation]


OPENCHAT = Format(openchat_format.FORMAT, "conversations.item", openchat_format.parse_conversation)
CHATGPT = Format(chatgpt.FORMAT, "item", chatgpt.parse_conversation)
OPEN_WEBUI = Format(open_webui.FORMAT, "item", open_webui.parse_conversation)


def _reason(error: Exception) -> str:
    """The parser's reason, without the excerpt and caret it draws on the next lines."""
    return str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__


def _not_json(error: Exception) -> ImportFileError:
    return ImportFileError("invalid_json", f"The file is not valid JSON ({_reason(error)}). Choose {KNOWN_FORMATS}.")


def detect_format(file: IO[bytes]) -> Format | None:
    """The file's format; None for an empty list (nothing to import)."""
    file.seek(0)
    try:
        events = ijson.parse(file, use_float=True)
        _, first, _ = next(events)
        if first == "start_map":
            return _openchat_envelope(events)
        if first != "start_array":
            raise ImportFileError(
                "unknown_format", f"The file holds a single value, not conversations. Choose {KNOWN_FORMATS}."
            )
        if next(events)[1] == "end_array":
            for _ in events:
                pass  # anything after the list is an error
            return None  # []: nothing to import
        file.seek(0)
        record = next(ijson.items(file, "item", use_float=True))
    except StopIteration:
        raise ImportFileError("invalid_json", f"The file is empty. Choose {KNOWN_FORMATS}.") from None
    except ijson.JSONError as error:
        raise _not_json(error) from None
    if chatgpt.looks_like(record):
        return CHATGPT
    if open_webui.looks_like(record):
        return OPEN_WEBUI
    raise ImportFileError("unknown_format", f"The file's conversations are of no known format. Choose {KNOWN_FORMATS}.")


def _openchat_envelope(events: Iterator[tuple[str, str, Any]]) -> Format:
    """An object at the top: an OpenChat export if its `format` says so (and its version is one
    this server reads). Only the top level's keys are looked at."""
    found: dict[str, Any] = {}
    for prefix, event, value in events:
        if prefix in ("format", "version") and event in ("string", "number", "integer", "boolean", "null"):
            found[prefix] = value
            if len(found) == 2:
                break
    if found.get("format") != openchat_format.FORMAT:
        raise ImportFileError(
            "unknown_format", f"The file is a JSON object of no known format. Choose {KNOWN_FORMATS}."
        )
    try:
        openchat_format.check_version(found.get("version"))
    except RecordError as error:
        raise ImportFileError("unknown_format", str(error)) from None
    return OPENCHAT


def conversations(file: IO[bytes], found: Format) -> Iterator[TransferConversation]:
    """Each conversation of the file, checked and normalized, in file order. The first bad one
    raises ImportFileError naming it: "Conversation 3 ('Trip plans'): message 'abc' has no role."."""
    file.seek(0)
    number = 0
    try:
        for number, record in enumerate(ijson.items(file, found.records_prefix, use_float=True), start=1):
            try:
                yield normalized(found.parse(record))
            except RecordError as error:
                raise ImportFileError("invalid_record", f"{_record_name(number, record)}: {error}") from None
    except ijson.JSONError as error:
        raise ImportFileError(
            "invalid_json",
            f"The file is not valid JSON after conversation {number} ({_reason(error)}): "
            "it may be cut short; export it again.",
        ) from None


def _record_name(number: int, record: Any) -> str:
    shown = record.get("title") if isinstance(record, dict) else None
    if not isinstance(shown, str) or not shown.strip():
        return f"Conversation {number}"
    shown = " ".join(shown.split())
    if len(shown) > TITLE_SHOWN_CHARS:
        shown = shown[: TITLE_SHOWN_CHARS - 1] + "…"
    return f"Conversation {number} ('{shown}')"
