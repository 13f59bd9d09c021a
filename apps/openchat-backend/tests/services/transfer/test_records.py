"""The import's tree checks and order, the Markdown writer's code blocks, download file names."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.api.routes.transfer import attachment
from app.services.transfer.markdown import conversation_markdown
from app.services.transfer.records import RecordError, TransferConversation, TransferMessage, normalized

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def conversation(*messages: TransferMessage, leaf: str | None = None) -> TransferConversation:
    return TransferConversation(
        source_id="s", title="t", created_at=T0, updated_at=None, messages=list(messages), active_leaf_id=leaf
    )


def test_versions_without_times_keep_file_order_and_get_distinct_times() -> None:
    result = normalized(
        conversation(
            TransferMessage("b2", "q", "ai", "second"),
            TransferMessage("q", None, "user", "question"),
            TransferMessage("b1", "q", "ai", "first", created_at=T0),
            TransferMessage("b3", "q", "ai", "third"),
        )
    )
    assert [m.id for m in result.messages] == ["q", "b2", "b1", "b3"]  # parents first; ties in file order
    times = [m.created_at for m in result.messages[1:]]
    assert times == sorted(times) and len(set(times)) == 3  # versions are shown oldest first: order kept
    assert [m.depth for m in result.messages] == [0, 1, 1, 1]
    assert result.active_leaf_id == "b3"  # none named: the newest versions' path
    assert result.updated_at is not None and result.updated_at >= result.created_at


def test_a_later_version_sorts_after_an_earlier_one_whatever_the_file_order() -> None:
    late = TransferMessage("late", None, "user", "edited", created_at=datetime(2026, 1, 2, tzinfo=UTC))
    early = TransferMessage("early", None, "user", "original", created_at=T0)
    assert [m.id for m in normalized(conversation(late, early)).messages] == ["early", "late"]


def test_an_active_message_that_is_not_there_is_refused() -> None:
    with pytest.raises(RecordError, match="the active message 'x' is not one of its messages"):
        normalized(conversation(TransferMessage("q", None, "user", "hi"), leaf="x"))


def test_markdown_closes_a_code_block_cut_short_so_the_next_heading_stays_a_heading() -> None:
    messages = [
        SimpleNamespace(role="user", content="Write a loop", model=None, status="complete"),
        SimpleNamespace(role="ai", content="```python\nfor i in range(3):\n", model="m", status="cancelled"),
        SimpleNamespace(role="user", content="Thanks", model=None, status="complete"),
    ]
    text = conversation_markdown(SimpleNamespace(title="Loops", settings={}), messages, T0)
    assert (
        "```python\nfor i in range(3):\n```\n\n_(This reply stopped before it finished.)_\n\n## User\n\nThanks" in text
    )


@pytest.mark.parametrize(
    ("title", "plain", "encoded"),
    [
        (None, "conversation.md", "conversation.md"),
        ('../../etc/passwd "x"', "etc-passwd-x.md", ".. .. etc passwd x.md"),
        ("日本語", "conversation.md", "日本語.md"),
        ("Crème brûlée\r\nX-Header: 1", "Creme-brulee-X-Header-1.md", "Crème brûlée X-Header 1.md"),
    ],
)
def test_download_names_are_safe(title: str | None, plain: str, encoded: str) -> None:
    from urllib.parse import quote

    header = attachment(title, ".md")
    assert header == f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(encoded, safe='')}"
    assert "\r" not in header and "\n" not in header
