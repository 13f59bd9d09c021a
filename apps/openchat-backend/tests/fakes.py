"""Deterministic stand-ins for unit tests only: a scripted chat model and its registry."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from app.core.config import Settings
from app.llm.engine import EngineBusyError
from app.llm.registry import ChatOptions, ModelInfo, ModelRegistry

FAKE_MODEL = ModelInfo(id="fake-model", name="Fake Model", provider="local", context_length=4096)
SMALL_MODEL = ModelInfo(id="fake-small", name="Fake Small", provider="local", context_length=256)


class ScriptedChatModel(BaseChatModel):
    """Streams `tokens` one by one; can fail before or after N tokens, or pause between them.

    Asked for a whole answer at once (a summary title), it answers `title`, or raises it, once
    `title_gate` (an event) is set; it records the messages in `title_requests`."""

    tokens: list[str]
    delay: float = 0.0
    fail_at: int | None = None  # raise before token N (0 = before the first one)
    busy_retry_after: int | None = None
    finish_reason: str = "stop"
    title: str | Exception = "Greeting the fake model"
    title_gate: Any = None
    progress: list[tuple[int, int]] = Field(default_factory=list)  # (processed, total) sent before the tokens
    # Before token `pause_at`, set `paused` (an asyncio.Event) and wait for `gate` (another).
    pause_at: int | None = None
    paused: Any = None
    gate: Any = None
    produced: int = 0  # tokens streamed so far
    closed: bool = False  # its stream has ended or was closed (the model stopped)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    title_requests: list[list[BaseMessage]] = Field(default_factory=list)
    options: ChatOptions | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        if self.busy_retry_after is not None:
            raise EngineBusyError(self.busy_retry_after)
        for processed, total in self.progress:
            progress = {"processed": processed, "total": total, "cache": 0, "time_ms": 0}
            chunk = AIMessageChunk(content="", response_metadata={"prompt_progress": progress})
            yield ChatGenerationChunk(message=chunk)
        try:
            for index, token in enumerate(self.tokens):
                if self.fail_at == index:
                    raise RuntimeError("scripted failure")
                if self.pause_at == index:
                    self.paused.set()
                    await self.gate.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.produced += 1
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata={
                        "input_tokens": 11,
                        "output_tokens": len(self.tokens),
                        "total_tokens": 11 + len(self.tokens),
                    },
                    response_metadata={"finish_reason": self.finish_reason},
                )
            )
        finally:
            self.closed = True

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for token in self.tokens:
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.title_requests.append(list(messages))
        if self.title_gate is not None:
            await self.title_gate.wait()
        if isinstance(self.title, Exception):
            raise self.title
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.title))])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        # The service asks asynchronously (_agenerate); a synchronous caller gets the same answer, ungated.
        self.title_requests.append(list(messages))
        if isinstance(self.title, Exception):
            raise self.title
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.title))])


class FakeRegistry(ModelRegistry):
    """Lists two fake models; counts a token per word so trimming can be tested."""

    def __init__(self, settings: Settings, **script: Any) -> None:
        super().__init__(settings)
        self.script = script
        self.last_model: ScriptedChatModel | None = None

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(**{**FAKE_MODEL.__dict__, "default": True}),
            SMALL_MODEL,
        ]

    def default_model_id(self, models: list[ModelInfo]) -> str | None:
        return FAKE_MODEL.id

    def chat_model(self, info: ModelInfo, options: ChatOptions) -> BaseChatModel:
        script = {"tokens": ["Hello", ",", " world", "!"], **self.script}
        self.last_model = ScriptedChatModel(seen=[], options=options, **script)
        return self.last_model

    async def count_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> int:
        return sum(len(m.text.split()) + 4 for m in messages)
