"""3. Going back to a conversation: time to first token of its next turn, with and without the RAM
prompt cache of the engine (--cache-ram).

For each size: send a conversation (a history of user/ai turns sized with the engine's own
template and tokenizer), then more other conversations at once than the engine has slots (so
every slot, the first conversation's included, is taken over by another), then the first
conversation's next turn (its history, the reply it got, a short new question)."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import httpx

from benchmarks.backend import Backend, Engine
from benchmarks.common import log
from benchmarks.measure import Messages, Stream, api_chat, at_once

MAX_TOKENS = 16
OTHER_TOKENS = 150  # size of each of the other conversations: enough to take a slot over
NEXT_QUESTION = "Thanks. Can you sum that up in one short sentence?"


def _words(text: str) -> list[str]:
    return text.split()


# Words for plausible-looking generated turns.
NOUNS = _words(
    "function list dictionary cache server request response thread process socket buffer queue index "
    "parser token model vector matrix string integer file folder module class method object loop test "
    "database query table column schema record session user password message stream event handler "
    "router endpoint header payload timeout retry backoff lock mutex channel worker scheduler job task"
)
VERBS = _words(
    "returns reads writes parses sorts merges splits caches sends receives opens closes builds checks "
    "validates stores loads maps filters counts hashes encodes decodes locks retries schedules logs"
)
GLUE = _words("the a each every this that its our your")
LINKS = _words("and then but because so while when after before unless")


def sentence(rng: random.Random) -> str:
    words = []
    for clause in range(rng.randint(1, 3)):
        if clause:
            words.append(rng.choice(LINKS))
        words += [rng.choice(GLUE), rng.choice(NOUNS), rng.choice(VERBS), rng.choice(GLUE), rng.choice(NOUNS)]
        if rng.random() < 0.4:
            words += ["with", rng.choice(GLUE), rng.choice(NOUNS)]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, words: int) -> str:
    out: list[str] = []
    while sum(len(s.split()) for s in out) < words:
        out.append(sentence(rng))
    return " ".join(out)


def count_tokens(engine: Engine, messages: Messages) -> int:
    """Prompt tokens as the backend counts them: the engine's chat template, then its tokenizer."""
    roles = {"user": "user", "ai": "assistant"}
    with httpx.Client(base_url=engine.url, headers=engine.headers, timeout=60) as client:
        templated = client.post(
            "/apply-template",
            json={"messages": [{"role": roles[m["role"]], "content": m["content"]} for m in messages]},
        )
        templated.raise_for_status()
        tokens = client.post("/tokenize", json={"content": templated.json()["prompt"], "add_special": True})
        tokens.raise_for_status()
    return len(tokens.json()["tokens"])


def build_conversation(engine: Engine, seed: str, target: int) -> Messages:
    """User/ai turns of plausible-looking text, ending with a user turn, of about `target` prompt tokens."""
    rng = random.Random(seed)
    # A distinct opening: no two conversations share more than the chat template's system prompt.
    messages = [{"role": "user", "content": paragraph(rng, 20) + " How should I structure this?"}]
    tokens = count_tokens(engine, messages)
    while tokens < target * 0.97:
        remaining = target - tokens
        answer = paragraph(rng, max(4, min(150, int(remaining * 0.55))))
        question = paragraph(rng, max(4, min(30, int(remaining * 0.1)))) + " What do you think?"
        messages += [{"role": "ai", "content": answer}, {"role": "user", "content": question}]
        tokens = count_tokens(engine, messages)
    return messages


@dataclass
class ReturnResult:
    size: int  # the target
    first: Stream  # the conversation's first visit (the whole prompt computed)
    back: Stream  # its next turn after the others
    others_ok: int
    others: int


def go_back(backend: Backend, model_id: str, size: int, label: str) -> ReturnResult:
    engine = backend.engine(model_id)
    client = backend.client
    conversation = build_conversation(engine, f"{label}-{model_id}-{size}-first", size)
    conversation_id = f"bench-return-{uuid.uuid4().hex}"
    first = api_chat(client, model_id, conversation, MAX_TOKENS, conversation_id=conversation_id)
    if not first.ok:
        raise RuntimeError(f"first visit failed: {first.status} {first.error}")
    others = max(5, engine.slots + 1)
    calls: list[Callable[[], Stream]] = []
    for index in range(others):
        other = build_conversation(engine, f"{label}-{model_id}-{size}-other-{index}", OTHER_TOKENS)
        calls.append(partial(api_chat, client, model_id, other, MAX_TOKENS))
    streams, _ = at_once(calls)
    following = [
        *conversation,
        {"role": "ai", "content": first.text or "OK."},
        {"role": "user", "content": NEXT_QUESTION},
    ]
    back = api_chat(client, model_id, following, MAX_TOKENS, conversation_id=conversation_id)
    if not back.ok:
        raise RuntimeError(f"next turn failed: {back.status} {back.error}")
    return ReturnResult(size, first, back, sum(s.ok for s in streams), others)


def returning(backend: Backend, model_id: str, sizes: list[int], label: str) -> list[ReturnResult]:
    engine = backend.engine(model_id)
    log(
        f"== 3. going back to a conversation, {model_id}, {label} (--cache-ram {engine.cache_ram_mib}, "
        f"{engine.slots} slots), sizes {sizes}"
    )
    results = []
    for size in sizes:
        result = go_back(backend, model_id, size, label)
        log(
            f"   ~{size}: first visit {result.first.prompt_tokens} tokens TTFT {result.first.ttft_ms:6.0f} ms; "
            f"back: {result.back.prompt_tokens} tokens ({result.back.cached_prompt_tokens} cached) "
            f"TTFT {result.back.ttft_ms:6.0f} ms; others {result.others_ok}/{result.others} ok"
        )
        results.append(result)
    return results


def by_size(results: list[ReturnResult]) -> dict[int, ReturnResult]:
    return {r.size: r for r in results}


def ttft_or_nan(result: ReturnResult | None) -> float:
    return result.back.ttft_ms if result is not None else math.nan
