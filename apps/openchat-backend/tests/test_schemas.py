"""The stream's lines: a token's line, put together by hand for speed, is the line pydantic writes
for its TokenEvent, whether the token comes as its text (as the chat service yields it) or as the event."""

from hypothesis import given
from hypothesis import strategies as st

from app.schemas import ErrorEvent, TokenEvent, ndjson_line


@given(st.text())
def test_a_tokens_line_is_the_line_pydantic_writes(text: str) -> None:
    event = TokenEvent(content=text)
    assert ndjson_line(text) == ndjson_line(event) == (event.model_dump_json() + "\n").encode()


def test_quotes_newlines_control_characters_and_unicode_are_escaped_as_pydantic_does() -> None:
    for text in ['say "hi"\n', "tab\there \\ back", "\x00\x1f\x7f", "naïve – 漢字 🙂", "\u2028\u2029"]:
        event = TokenEvent(content=text)
        assert ndjson_line(text) == ndjson_line(event) == (event.model_dump_json() + "\n").encode()


def test_other_events_are_written_by_pydantic() -> None:
    event = ErrorEvent(code="upstream_timeout", message="The model server sent nothing for 120 s.")
    assert ndjson_line(event) == (event.model_dump_json() + "\n").encode()
