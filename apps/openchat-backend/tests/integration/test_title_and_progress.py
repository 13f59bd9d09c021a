"""The real 0.5B model through a real server: a summary title after the first exchange, and
the prompt progress of a long prompt before its first token."""

import time
from typing import Any

import httpx

from app.services.titles import TITLE_MAX_CHARS, make_title
from tests.integration.test_local_model import chat_body, read_stream

QUESTION = "<script>alert('xss-user')</script> how do I reverse a list in python?"


def test_the_first_exchange_gets_a_summary_title_after_end(live_server: Any) -> None:
    url = live_server(generate_titles=True)
    with httpx.Client(base_url=url, timeout=180) as client:
        found, _ = read_stream(client, chat_body("titled", QUESTION, temperature=0, max_tokens=64))
        kinds = [e["type"] for e in found]
        assert kinds[-2:] == ["title", "end"], kinds  # `end` stays the last event
        fallback = found[-2]["title"]
        assert fallback == make_title(QUESTION)
        # The summary is written after the stream has ended, and stored.
        summary = fallback
        deadline = time.monotonic() + 120
        while summary == fallback and time.monotonic() < deadline:
            time.sleep(0.5)
            summary = client.get("/api/v1/conversations/titled").json()["title"]
        assert summary != fallback and 0 < len(summary) <= TITLE_MAX_CHARS and "\n" not in summary


def test_a_users_request_takes_the_slot_of_a_summary_title(live_server: Any) -> None:
    # One slot and no waiting line: a title that kept its slot would make this user's next request a 429.
    url = live_server(generate_titles=True, local_slots=1, queue_size=0)
    question = "Explain what a Python list comprehension is. " + "Give details about its syntax. " * 30
    with httpx.Client(base_url=url, timeout=180) as client:
        body = chat_body("first", question, temperature=0, max_tokens=8)
        with client.stream("POST", "/api/v1/chat", json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if '"type":"end"' in line:
                    break  # the summary title is being written now, in the only slot
            follow = client.post("/api/v1/chat", json=chat_body("second", "Say OK.", max_tokens=4))
            assert follow.status_code == 200, follow.text
        # The summary gave its slot up: the first message cut short stays the title.
        assert client.get("/api/v1/conversations/first").json()["title"] == make_title(question)


def test_a_long_prompt_reports_progress_before_its_first_token(live_server: Any) -> None:
    url = live_server()
    lines = [f"Line {i}: the quick brown fox jumps over the lazy dog, number {i}." for i in range(110)]
    prompt = "\n".join(lines) + "\nSummarise this in a sentence."
    with httpx.Client(base_url=url, timeout=300) as client:
        found, _ = read_stream(client, chat_body("long-prompt", prompt, max_tokens=4))
    kinds = [e["type"] for e in found]
    assert "token" in kinds and kinds[-1] == "end"
    before_first_token = found[: kinds.index("token")]
    progress = [e for e in before_first_token if e["type"] == "progress"]
    prompt_tokens = found[-1]["usage"]["prompt_tokens"]
    assert prompt_tokens >= 1500
    assert progress, kinds
    assert all(0 <= e["processed"] <= e["total"] for e in progress)
    assert all(e["total"] == prompt_tokens for e in progress)
    # It moves forward: the engine reads the prompt in steps (PROMPT_BATCH_TOKENS).
    assert [e["processed"] for e in progress] == sorted(e["processed"] for e in progress)
    assert len(progress) >= 2 and progress[-1]["processed"] > progress[0]["processed"]
    assert "progress" not in kinds[kinds.index("token") :]
